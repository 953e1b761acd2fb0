//! The management API under `/api/v1/` (SPEC §4 "Management API"): keys, users and the audit
//! log for scripts and CI, authenticated by management tokens (`auth`), through the same
//! services as the pages. Conventions: RFC 9457 problem details (`problem`),
//! `Idempotency-Key` on every POST (`idempotency`), `ETag`/`If-Match` on keys, per-token
//! rate limits with `RateLimit` header fields (`limit`), cursor pagination (`cursor`).

pub mod audit;
pub mod auth;
pub mod cursor;
pub mod doc;
pub mod idempotency;
pub mod keys;
pub mod limit;
pub mod problem;
pub mod users;

use actix_web::web;

/// Registers the endpoints (inside the `/api/v1` scope).
pub fn configure(cfg: &mut web::ServiceConfig) {
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
