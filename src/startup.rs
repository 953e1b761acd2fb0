//! `Application::build`: binds the listener (port 0 in tests), wires the database, sessions,
//! middleware and routes, and starts background jobs.

use std::{io, net::SocketAddr, net::TcpListener, time::Duration};

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
    auth::{csrf, session_store::PgSessionStore},
    db::{Database, models::session as session_rows},
    domain::client_ip::TrustForwarded,
    error::AppError,
    http::{request_log, security_headers},
    keys::KeyHasher,
    routes,
    secrets::DerivedKeys,
    state::AppState,
};

/// Everything `Application::build` needs, already parsed.
#[derive(Debug, Clone)]
pub struct AppSettings {
    pub db: Database,
    pub keys: DerivedKeys,
    pub addr: SocketAddr,
    pub cookie_secure: bool,
    pub trust_forwarded: bool,
    pub session_idle: Duration,
    pub session_max: Duration,
    pub workers: Option<usize>,
}

/// A bound, running HTTP server.
pub struct Application {
    server: Server,
    local_addr: SocketAddr,
}

/// Largest form body accepted (key dialogs with long asset lists stay far below it).
const FORM_LIMIT: usize = 64 * 1024;

impl Application {
    /// Binds `settings.addr` and starts serving (on the current actix system).
    pub fn build(settings: AppSettings) -> io::Result<Self> {
        let listener = TcpListener::bind(settings.addr)?;
        let local_addr = listener.local_addr()?;
        let state = web::Data::new(AppState {
            db: settings.db.clone(),
            session_max: settings.session_max,
            hasher: KeyHasher::new(settings.keys.key_pepper),
        });
        let trust = web::Data::new(TrustForwarded(settings.trust_forwarded));
        let store = PgSessionStore::new(settings.db.clone());
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
            App::new()
                .app_data(state.clone())
                .app_data(trust.clone())
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
                .wrap(security_headers(cookie_secure).into_iter().fold(DefaultHeaders::new(), DefaultHeaders::add))
                .wrap(from_fn(request_log))
                .configure(routes::configure_public)
                .service(
                    web::scope("")
                        .wrap(from_fn(csrf::protect))
                        .wrap(sessions)
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
        spawn_session_cleanup(settings.db);
        Ok(Self { server, local_addr })
    }

    /// The address actually bound (the port is chosen by the OS when 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// A handle to stop the server.
    pub fn handle(&self) -> actix_web::dev::ServerHandle {
        self.server.handle()
    }

    /// Serves until the server is stopped (SIGINT/SIGTERM stop it gracefully).
    pub async fn run_until_stopped(self) -> io::Result<()> {
        self.server.await
    }
}

/// Deletes expired sessions every ten minutes.
fn spawn_session_cleanup(db: Database) {
    actix_web::rt::spawn(async move {
        let mut interval = actix_web::rt::time::interval(Duration::from_secs(600));
        loop {
            interval.tick().await;
            match db.run(|conn| Ok(session_rows::delete_expired(conn)?)).await {
                Ok(0) => {}
                Ok(n) => log::debug!("removed {n} expired sessions"),
                Err(e) => log::warn!("session cleanup failed: {e}"),
            }
        }
    });
}
