//! `keyward serve`: open the database, serve until SIGINT/SIGTERM, and stop the embedded
//! cluster cleanly. The embedded cluster is started, migrated and seeded before serving; an
//! external database (`DATABASE_URL`) is waited for in the background while already serving
//! `/healthz` (see `readiness`), because an orchestrator may start both at once.

use std::time::{Duration, Instant};

use anyhow::Context;

use crate::{
    config::Config,
    db::{self, Database, PoolOptions},
    services::demo,
    startup::{AppSettings, Application},
};

use super::DatabaseHandle;

/// The first pause between attempts to reach an external database; it doubles up to
/// [`MAX_RETRY_DELAY`].
const FIRST_RETRY_DELAY: Duration = Duration::from_millis(500);
const MAX_RETRY_DELAY: Duration = Duration::from_secs(30);
/// While waiting, a reminder is logged at most this often: an operator sees that (and why)
/// it waits, without one line per attempt.
const WAITING_LOG_INTERVAL: Duration = Duration::from_secs(60);

pub fn serve(config: Config) -> anyhow::Result<()> {
    let secret = config.resolve_secret()?;
    crate::services::usage::configure_retention(config.usage_retention);
    let handle = DatabaseHandle::open(&config)?;
    let base_url = format!("http://{}", config.addr);
    // This process started the embedded cluster, so it is there: prepare it before serving.
    let (mut embedded, external) = if handle.is_embedded() {
        report_applied(&handle.migrate()?);
        if handle.seed_demo()? {
            log::info!("seeded the demo data set");
        }
        println!("{}", demo::credentials_text(&base_url));
        (Some(handle), None)
    } else {
        (None, Some(handle))
    };
    crate::auth::password::warm_up();

    let url = embedded.as_ref().or(external.as_ref()).map(|handle| handle.url.clone()).unwrap_or_default();
    let db = Database::new(
        &url,
        &PoolOptions {
            size: config.pool_size,
            checkout_timeout: config.db_checkout_timeout,
            statement_timeout: config.statement_timeout,
        },
    );
    let settings = AppSettings {
        db,
        keys: secret.derive(),
        addr: config.addr,
        public_origin: config.public_origin.clone(),
        cookie_secure: config.cookie_secure,
        trust_forwarded: config.trust_forwarded,
        session_idle: config.session_idle,
        session_max: config.session_max,
        workers: config.workers,
        password_hashers: config.password_hashers,
        verify_cache: config.verify_cache,
        run_jobs: config.run_jobs,
        invalid_attempts_per_minute: config.invalid_attempts_per_minute,
        management_rate_per_minute: config.management_rate_per_minute,
        usage_recording: config.usage_recording,
        clock: crate::clock::Clock::system(),
        metrics_token: config.metrics_token.clone(),
        mail: config.mail.clone(),
        webhook_allow_private: config.webhook_allow_private,
    };
    let result = actix_web::rt::System::new().block_on(async move {
        let built =
            if external.is_some() { Application::build_waiting(settings) } else { Application::build(settings) };
        let app = built.with_context(|| format!("cannot listen on {}", config.addr))?;
        println!("Keyward is listening on http://{}", app.local_addr());
        if let Some(handle) = external {
            let readiness = app.readiness();
            // A thread of its own: connecting and migrating block. If the server stops
            // first, the process exits and this thread with it.
            std::thread::Builder::new()
                .name("keyward-db-wait".into())
                .spawn(move || {
                    wait_for_database(&handle);
                    readiness.set_ready();
                })
                .context("cannot start waiting for the database")?;
        }
        app.run_until_stopped().await.context("server error")
    });
    if let Some(handle) = embedded.as_mut() {
        handle.close();
    }
    result
}

fn report_applied(applied: &[String]) {
    if !applied.is_empty() {
        log::info!("applied {} migration(s)", applied.len());
    }
}

/// Migrates (as the owner) and connects as the application until both work, with
/// exponential backoff; logs the first failure, then at most every
/// [`WAITING_LOG_INTERVAL`], and how long it took once it worked.
fn wait_for_database(handle: &DatabaseHandle) {
    let started = Instant::now();
    let mut delay = FIRST_RETRY_DELAY;
    let mut last_logged: Option<Instant> = None;
    for attempt in 1_u64.. {
        let prepared = handle.migrate().and_then(|applied| db::connect(&handle.url).map(|_| applied));
        match prepared {
            Ok(applied) => {
                report_applied(&applied);
                log::info!(
                    "the database is ready after {attempt} attempt(s) in {:.1} s",
                    started.elapsed().as_secs_f64()
                );
                return;
            }
            Err(error) => {
                if last_logged.is_none_or(|at| at.elapsed() >= WAITING_LOG_INTERVAL) {
                    if last_logged.is_none() {
                        log::warn!(
                            "waiting for the database (retrying with backoff up to {} s; /readyz answers 503 \
                             meanwhile): {error:#}",
                            MAX_RETRY_DELAY.as_secs()
                        );
                    } else {
                        log::warn!(
                            "still waiting for the database after {attempt} attempts in {:.0} s: {error:#}",
                            started.elapsed().as_secs_f64()
                        );
                    }
                    last_logged = Some(Instant::now());
                }
                std::thread::sleep(delay);
                delay = (delay * 2).min(MAX_RETRY_DELAY);
            }
        }
    }
}
