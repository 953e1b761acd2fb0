//! `keyward serve`: open (and in embedded mode start, migrate and seed) the database, then
//! serve until SIGINT/SIGTERM, and stop the embedded cluster cleanly.

use crate::{
    config::Config,
    db::{Database, PoolOptions},
    services::demo,
    startup::{AppSettings, Application},
};

use super::DatabaseHandle;

pub fn serve(config: Config) -> Result<(), String> {
    let secret = config.resolve_secret().map_err(|e| e.to_string())?;
    let mut handle = DatabaseHandle::open(&config)?;
    let applied = handle.migrate()?;
    if !applied.is_empty() {
        log::info!("applied {} migration(s)", applied.len());
    }
    let base_url = format!("http://{}", config.addr);
    if handle.is_embedded() {
        if handle.seed_demo()? {
            log::info!("seeded the demo data set");
        }
        println!("{}", demo::credentials_text(&base_url));
    }
    crate::auth::password::warm_up();

    let db = Database::new(
        &handle.url,
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
        invalid_attempts_per_minute: config.invalid_attempts_per_minute,
    };
    let result = actix_web::rt::System::new().block_on(async move {
        let app = Application::build(settings).map_err(|e| format!("cannot listen on {}: {e}", config.addr))?;
        println!("Keyward is listening on http://{}", app.local_addr());
        app.run_until_stopped().await.map_err(|e| format!("server error: {e}"))
    });
    handle.close();
    result
}
