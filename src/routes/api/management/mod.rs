//! The management API under `/api/v1/` (SPEC §4 "Management API"): keys, users and the audit
//! log for scripts and CI, authenticated by management tokens (`auth`), through the same
//! services as the pages. Conventions: RFC 9457 problem details (`problem`),
//! `Idempotency-Key` on every POST (`idempotency`), `ETag`/`If-Match` on keys, per-token
//! rate limits with `RateLimit` header fields (`limit`), cursor pagination (`cursor`).

pub mod audit;
pub mod auth;
pub mod cursor;
pub mod denied;
pub mod doc;
pub mod idempotency;
pub mod keys;
pub mod limit;
pub mod problem;
pub mod users;

use actix_web::{FromRequest, HttpRequest, dev::Payload, web, web::Bytes};
use futures_util::future::LocalBoxFuture;

use crate::routes::api::ApiBody;

/// Whether `path` is one of the management API's (their errors are problems, RFC 9457).
pub fn is_management_path(path: &str) -> bool {
    ["/api/v1/keys", "/api/v1/users", "/api/v1/audit-events"]
        .iter()
        .any(|prefix| path.strip_prefix(prefix).is_some_and(|rest| rest.is_empty() || rest.starts_with('/')))
}

/// A request body read like the rest of the API's ([`ApiBody`]: size limit, no NUL
/// characters), refused with a problem like everything else here.
#[derive(Debug)]
pub struct ProblemBody(pub Bytes);

impl FromRequest for ProblemBody {
    type Error = problem::Problem;
    type Future = LocalBoxFuture<'static, Result<Self, problem::Problem>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let body = ApiBody::from_request(req, payload);
        Box::pin(async move { body.await.map(|body| ProblemBody(body.0)).map_err(problem::Problem::from) })
    }
}

/// Registers the endpoints (inside the `/api/v1` scope). A query string or path segment the
/// endpoint cannot read is a 400 problem, like a malformed body, not the site's HTML error page.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.app_data(web::QueryConfig::default().error_handler(|e, _| problem::Problem::bad_request(e.to_string()).into()))
        .app_data(web::PathConfig::default().error_handler(|e, _| problem::Problem::bad_request(e.to_string()).into()));
    cfg.service(keys::list_keys)
        .service(keys::create_key)
        .service(keys::get_key)
        .service(keys::key_usage)
        .service(keys::update_key)
        .service(keys::delete_key)
        .service(keys::rekey_key)
        .service(keys::end_grace)
        .service(keys::deactivate)
        .service(keys::reactivate)
        .service(users::list_users)
        .service(users::set_api_key_access)
        .service(audit::list_events);
}

#[cfg(test)]
mod tests {
    use super::is_management_path;

    #[test]
    fn management_paths_are_told_from_the_rest_of_the_api() {
        for path in ["/api/v1/keys", "/api/v1/keys/ab12cd34/rekey", "/api/v1/users", "/api/v1/audit-events"] {
            assert!(is_management_path(path), "{path}");
        }
        for path in ["/api/v1/verify", "/api/v1/me", "/api/v1/keysmith", "/api/v1/leaks", "/admin/keys"] {
            assert!(!is_management_path(path), "{path}");
        }
    }
}
