//! `Application::build`: binds the listener (port 0 in tests), wires the database, sessions,
//! middleware and routes, and starts background jobs (once the database is ready).

use std::{io, net::SocketAddr, net::TcpListener, sync::Arc, time::Duration};

use actix_session::{
    SessionMiddleware,
    config::{BrowserSession, TtlExtensionPolicy},
};
use actix_web::{
    App, HttpServer,
    cookie::{Key, SameSite},
    dev::Server,
    middleware::{DefaultHeaders, from_fn},
    web,
};

use crate::{
    auth::{
        csrf,
        password::PasswordHashers,
        session_store::{self, PgSessionStore},
    },
    clock::Clock,
    db::{Database, models::session as session_rows},
    domain::client_ip::TrustForwarded,
    error::AppError,
    http::{head_as_get, refuse_oversized_headers, request_log, security_headers},
    jobs,
    keys::{
        KeyHasher,
        verifier::{
            Verifier,
            listener::{self, ListenerHandle},
            usage,
        },
    },
    metrics::{self, Exposition, Metrics, MetricsToken},
    readiness::{self, Readiness},
    routes,
    secrets::DerivedKeys,
    services::{
        notifications::{
            smtp::{Mailer, SmtpSettings},
            webhooks::WebhookSender,
        },
        second_factor::SecondFactorKeys,
    },
    state::AppState,
};

/// Everything `Application::build` needs, already parsed.
#[derive(Debug, Clone)]
pub struct AppSettings {
    pub db: Database,
    pub keys: DerivedKeys,
    pub addr: SocketAddr,
    /// The configured public origin (`KEYWARD_PUBLIC_URL`); forms must come from it.
    pub public_origin: Option<String>,
    pub cookie_secure: bool,
    pub trust_forwarded: TrustForwarded,
    pub session_idle: Duration,
    pub session_max: Duration,
    pub workers: Option<usize>,
    /// Threads hashing passwords: the most hashes computed at once.
    pub password_hashers: usize,
    /// Serve known keys from memory (off only to measure the uncached path).
    pub verify_cache: bool,
    /// Invalid verification attempts allowed per client address per minute.
    pub invalid_attempts_per_minute: u32,
    /// Requests per management token per minute, counted across all instances.
    pub management_rate_per_minute: u32,
    /// Run due background jobs every minute (off: `keyward run-jobs` from cron does).
    pub run_jobs: bool,
    /// Count verifications per key and hour (off only to measure what counting costs).
    pub usage_recording: bool,
    /// The time sessions, keys and pages are measured against (`Clock::system()` but in tests).
    pub clock: Clock,
    /// The bearer token of `GET /metrics` (`KEYWARD_METRICS_TOKEN`); without it there is no
    /// such page.
    pub metrics_token: Option<MetricsToken>,
    /// The SMTP relay (`KEYWARD_SMTP_URL`); none: mail stays in the browser's outbox.
    pub mail: Option<SmtpSettings>,
    /// Webhook endpoints may be on private addresses (`KEYWARD_WEBHOOK_ALLOW_PRIVATE`).
    pub webhook_allow_private: bool,
}

/// A bound, running HTTP server.
pub struct Application {
    server: Server,
    local_addr: SocketAddr,
    state: web::Data<AppState>,
    listener: ListenerHandle,
}

/// How often usage counts are written, and last-use records (each key at most once a minute).
const USAGE_FLUSH_INTERVAL: Duration = Duration::from_secs(10);

/// Largest form body accepted (key dialogs with long asset lists stay far below it).
const FORM_LIMIT: usize = 64 * 1024;

impl Application {
    /// Binds `settings.addr` and starts serving (on the current actix system), with the
    /// database ready (migrated) already.
    pub fn build(settings: AppSettings) -> io::Result<Self> {
        Self::build_with(settings, Readiness::ready())
    }

    /// Binds and starts serving before the database is known to be usable: requests that
    /// need it get a 503, and the key listener and background jobs wait, until
    /// [`Readiness::set_ready`] is called on [`Application::readiness`].
    pub fn build_waiting(settings: AppSettings) -> io::Result<Self> {
        Self::build_with(settings, Readiness::waiting())
    }

    fn build_with(settings: AppSettings, readiness: Readiness) -> io::Result<Self> {
        let readiness = Arc::new(readiness);
        let listener = TcpListener::bind(settings.addr)?;
        let local_addr = listener.local_addr()?;
        let hasher = KeyHasher::new(settings.keys.key_pepper);
        let verifier = Arc::new(Verifier::new(
            settings.db.clone(),
            hasher.clone(),
            settings.verify_cache,
            settings.invalid_attempts_per_minute,
            settings.clock.clone(),
            settings.usage_recording,
        ));
        let key_listener =
            listener::spawn(settings.db.url().to_string(), Arc::clone(&verifier), Arc::clone(&readiness));
        let passwords = PasswordHashers::start(settings.password_hashers)?;
        // Passkeys belong to a domain name: the public URL's, else this port on localhost.
        let passkey_origin =
            settings.public_origin.clone().unwrap_or_else(|| format!("http://localhost:{}", local_addr.port()));
        let second_factor = SecondFactorKeys::new(&settings.keys, &passkey_origin);
        if let Err(why) = &second_factor.passkeys {
            log::warn!("passkeys are off: {why}");
        }
        let counters = Arc::new(Metrics::default());
        let exposition = settings.metrics_token.clone().map(|token| {
            web::Data::new(Exposition::new(
                token,
                Arc::clone(&counters),
                Arc::clone(&verifier),
                key_listener.connected_flag(),
                settings.db.clone(),
            ))
        });
        // Links in mail are built on the public URL; without one, on this listener's address.
        let mail_base = settings.public_origin.clone().unwrap_or_else(|| format!("http://{local_addr}"));
        let mailer =
            settings.mail.as_ref().map(|smtp| Mailer::new(smtp, &mail_base)).transpose().map_err(io::Error::other)?;
        if mailer.is_some() && settings.public_origin.is_none() {
            log::warn!("mail is sent with links to {mail_base}: set KEYWARD_PUBLIC_URL to the address people use");
        }
        let state = web::Data::new(AppState {
            db: settings.db.clone(),
            mailer,
            session_max: settings.session_max,
            hasher,
            verifier,
            management_limits: Arc::new(routes::api::management::limit::RateLimits::new(
                settings.management_rate_per_minute,
            )),
            passwords,
            readiness,
            second_factor,
            clock: settings.clock.clone(),
            metrics: counters,
            webhooks: Arc::new(WebhookSender::new(&settings.keys, settings.webhook_allow_private)),
        });
        let trust = web::Data::new(settings.trust_forwarded);
        let site = web::Data::new(csrf::SiteOrigin::new(settings.public_origin.clone(), settings.cookie_secure));
        let shared_state = state.clone();
        let store = PgSessionStore::new(settings.db.clone(), settings.clock.clone());
        let cookie_key = Key::from(&settings.keys.cookie_key);
        let cookie_secure = settings.cookie_secure;
        let idle = actix_web::cookie::time::Duration::seconds(settings.session_idle.as_secs() as i64);

        let mut server = HttpServer::new(move || {
            let sessions = SessionMiddleware::builder(store.clone(), cookie_key.clone())
                // The `__Host-` prefix pins the cookie to this host and path and demands HTTPS.
                .cookie_name(if cookie_secure { "__Host-keyward".into() } else { "keyward_session".into() })
                .cookie_secure(cookie_secure)
                .cookie_http_only(true)
                .cookie_same_site(SameSite::Strict)
                .cookie_path("/".into())
                .session_lifecycle(
                    BrowserSession::default()
                        .state_ttl(idle)
                        .state_ttl_extension_policy(TtlExtensionPolicy::OnEveryRequest),
                )
                .build();
            let mut app = App::new();
            // Without a token there is no `/metrics` at all: it answers as any unknown page.
            if let Some(exposition) = &exposition {
                app = app.app_data(exposition.clone()).service(routes::metrics::metrics);
            }
            app.app_data(state.clone())
                .app_data(trust.clone())
                .app_data(site.clone())
                .app_data(
                    web::FormConfig::default()
                        .limit(FORM_LIMIT)
                        .error_handler(|e, _| AppError::BadRequest(format!("The form could not be read: {e}")).into()),
                )
                .app_data(web::QueryConfig::default().error_handler(|e, _| {
                    AppError::BadRequest(format!("The address has an invalid parameter: {e}")).into()
                }))
                .app_data(web::PathConfig::default().error_handler(|_, _| AppError::NotFound.into()))
                .app_data(web::PayloadConfig::new(FORM_LIMIT))
                .wrap(from_fn(routes::extract::refuse_nul_in_address))
                .wrap(from_fn(head_as_get))
                .wrap(from_fn(crate::http::dialog_detours))
                .wrap(from_fn(refuse_oversized_headers))
                .wrap(security_headers(cookie_secure).into_iter().fold(DefaultHeaders::new(), DefaultHeaders::add))
                .wrap(from_fn(readiness::until_ready))
                .wrap(from_fn(request_log))
                .wrap(from_fn(metrics::http::observe))
                .configure(routes::configure_public)
                .service(
                    web::scope("")
                        .wrap(from_fn(csrf::protect))
                        .wrap(sessions)
                        .wrap(from_fn(session_store::unavailable_as_503))
                        .configure(routes::configure_pages)
                        .default_service(web::to(routes::not_found)),
                )
        })
        .listen(listener)?
        .shutdown_timeout(10);
        if let Some(workers) = settings.workers {
            server = server.workers(workers);
        }
        let server = server.run();
        spawn_session_cleanup(settings.db, Arc::clone(&shared_state.readiness), shared_state.clock.clone());
        spawn_usage_flush(shared_state.clone());
        if settings.run_jobs {
            spawn_jobs(shared_state.clone());
        }
        Ok(Self { server, local_addr, state: shared_state, listener: key_listener })
    }

    /// The shared state (tests use it to flush usage or look at the cache).
    pub fn state(&self) -> web::Data<AppState> {
        self.state.clone()
    }

    /// Whether the database is usable yet; `serve` sets it once connected and migrated.
    pub fn readiness(&self) -> Arc<Readiness> {
        Arc::clone(&self.state.readiness)
    }

    /// The address actually bound (the port is chosen by the OS when 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// A handle to stop the server.
    pub fn handle(&self) -> actix_web::dev::ServerHandle {
        self.server.handle()
    }

    /// Serves until the server is stopped (SIGINT/SIGTERM stop it gracefully: in-flight
    /// requests finish), then stops the listener and writes the usage counts and last-use
    /// records still held.
    pub async fn run_until_stopped(mut self) -> io::Result<()> {
        let result = self.server.await;
        self.listener.stop();
        match self.state.verifier.flush_tally().await {
            Ok(0) => {}
            Ok(keys) => log::info!("wrote the usage counts of {keys} key(s) before stopping"),
            Err(e) => log::warn!("could not write the usage counts before stopping: {e}"),
        }
        let tokens = self.state.verifier.token_usage.take_all();
        if let Err(e) = self.state.verifier.flush_token_usage(tokens).await {
            log::warn!("could not write the last use of management tokens before stopping: {e}");
        }
        let pending = self.state.verifier.usage.take_all();
        if !pending.is_empty() {
            let count = pending.len();
            match self.state.db.run(move |conn| Ok(usage::write(conn, &pending)?)).await {
                Ok(()) => log::info!("wrote the last use of {count} key(s) before stopping"),
                Err(e) => log::warn!("could not write the last use of {count} key(s) before stopping: {e}"),
            }
        }
        result
    }
}

/// Writes usage counts and last-use records and tidies the invalid-attempt throttle, every
/// few seconds.
fn spawn_usage_flush(state: web::Data<AppState>) {
    actix_web::rt::spawn(async move {
        state.readiness.wait().await;
        let mut interval = actix_web::rt::time::interval(USAGE_FLUSH_INTERVAL);
        loop {
            interval.tick().await;
            state.verifier.throttle.tidy();
            if let Err(e) = state.verifier.flush_usage().await {
                log::warn!("writing key usage failed (kept for the next attempt): {e}");
            }
        }
    });
}

/// Runs the background jobs that are due, every minute (see `jobs`): a deployment of one
/// instance needs no cron, and instances side by side never run one job twice for a period.
fn spawn_jobs(state: web::Data<AppState>) {
    actix_web::rt::spawn(async move {
        state.readiness.wait().await;
        let mut interval = actix_web::rt::time::interval(jobs::TICK);
        loop {
            interval.tick().await;
            let now = state.clock.now();
            // Failures of single jobs are logged by the runner; this is the database itself.
            let mailer = state.mailer.clone();
            if let Err(e) = state.db.run(move |conn| Ok(jobs::run_due_and_send(conn, now, mailer.as_ref())?)).await {
                log::warn!("running due background jobs failed (tried again in a minute): {e}");
            }
            // Webhooks are sent outside the jobs' transactions, each in its own (see
            // `services::notifications::webhooks`), at the clock of this moment.
            let sender = Arc::clone(&state.webhooks);
            let now = state.clock.now();
            if let Err(e) = state.db.run(move |conn| sender.send_due(conn, now, None)).await {
                log::warn!("sending due webhooks failed (tried again in a minute): {e}");
            }
        }
    });
}

/// Deletes expired sessions every ten minutes.
fn spawn_session_cleanup(db: Database, readiness: Arc<Readiness>, clock: Clock) {
    actix_web::rt::spawn(async move {
        readiness.wait().await;
        let mut interval = actix_web::rt::time::interval(Duration::from_secs(600));
        loop {
            interval.tick().await;
            let now = clock.now();
            match db.run(move |conn| Ok(session_rows::delete_expired(conn, now)?)).await {
                Ok(0) => {}
                Ok(n) => log::debug!("removed {n} expired sessions"),
                Err(e) => log::warn!("session cleanup failed: {e}"),
            }
        }
    });
}
