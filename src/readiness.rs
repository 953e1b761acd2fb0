//! Whether this instance may use its database yet, and what it answers until then.
//!
//! With an external database `keyward serve` binds first and connects and migrates in the
//! background (an orchestrator may start the database and Keyward at once). Until that
//! succeeds `/healthz` answers 200, `/readyz` 503, and every request that would need the
//! database gets the usual "temporarily unavailable" 503 (JSON under `/api/`), instead of
//! reaching tables that may not exist yet.

use std::sync::atomic::{AtomicBool, Ordering};

use actix_web::{
    ResponseError,
    body::{EitherBody, MessageBody},
    dev::{ServiceRequest, ServiceResponse},
    middleware::Next,
    web,
};
use tokio::sync::Notify;

use crate::{error::AppError, routes::api::error::ApiError, state::AppState};

/// Set once the database is reachable and migrated; never unset (a later outage is the
/// pool's business, and `/readyz` still checks a round trip).
#[derive(Debug, Default)]
pub struct Readiness {
    ready: AtomicBool,
    changed: Notify,
}

impl Readiness {
    /// Ready from the start (the database was prepared before serving).
    pub fn ready() -> Self {
        Self { ready: AtomicBool::new(true), changed: Notify::new() }
    }

    /// Not ready until [`Readiness::set_ready`].
    pub fn waiting() -> Self {
        Self::default()
    }

    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    /// Marks the database usable (from any thread) and wakes whoever waits for it.
    pub fn set_ready(&self) {
        self.ready.store(true, Ordering::Release);
        self.changed.notify_waiters();
    }

    /// Returns once the database is usable.
    pub async fn wait(&self) {
        loop {
            // Registered before the check, so a `set_ready` in between is not missed.
            let notified = self.changed.notified();
            if self.is_ready() {
                return;
            }
            notified.await;
        }
    }
}

/// Paths that never touch the database, so they are served while waiting for it.
fn needs_no_database(path: &str) -> bool {
    path == "/healthz" || path == "/readyz" || path.starts_with("/static/")
}

/// Middleware: 503 for every request that needs the database while it is not ready yet.
pub async fn until_ready<B: MessageBody + 'static>(
    req: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<EitherBody<B>>, actix_web::Error> {
    let ready = req.app_data::<web::Data<AppState>>().is_none_or(|state| state.readiness.is_ready());
    // The metrics need no database, and operators want them most while it is away; without
    // a metrics token `/metrics` is an unknown page and waits like any other.
    let metrics = req.path() == "/metrics" && req.app_data::<web::Data<crate::metrics::Exposition>>().is_some();
    if ready || metrics || needs_no_database(req.path()) {
        return next.call(req).await.map(ServiceResponse::map_into_left_body);
    }
    let response = if req.path().starts_with("/api/") {
        ApiError::Unavailable.error_response()
    } else {
        AppError::Unavailable.error_response()
    };
    Ok(req.into_response(response).map_into_right_body())
}

#[cfg(test)]
mod tests {
    use std::{sync::Arc, time::Duration};

    use super::{Readiness, needs_no_database};

    #[test]
    fn only_probes_and_static_files_skip_the_wait() {
        assert!(needs_no_database("/healthz") && needs_no_database("/readyz") && needs_no_database("/static/app.css"));
        assert!(!needs_no_database("/login") && !needs_no_database("/api/v1/verify") && !needs_no_database("/"));
    }

    #[actix_web::test]
    async fn waiters_wake_when_another_thread_sets_ready() {
        let readiness = Arc::new(Readiness::waiting());
        assert!(!readiness.is_ready());
        let setter = Arc::clone(&readiness);
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            setter.set_ready();
        });
        let woke = tokio::time::timeout(Duration::from_secs(30), readiness.wait()).await;
        assert!(woke.is_ok() && readiness.is_ready());
    }
}
