//! The JSON API under `/api/v1`: verification for platform services, `me` for integrators,
//! leak reports in GitHub's secret-scanning format, and the OpenAPI document. No sessions,
//! no cookies; every answer is JSON and never cached.

pub mod error;
pub mod leaks;
pub mod openapi;
pub mod verify;

use actix_web::web;

pub use error::ApiError;

/// Largest request body accepted by the API (a leak report batch).
pub const BODY_LIMIT: usize = 1024 * 1024;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/api/v1")
            .app_data(web::PayloadConfig::new(BODY_LIMIT))
            .service(verify::verify)
            .service(verify::me)
            .service(leaks::report)
            .service(openapi::document)
            .default_service(web::to(|| async { Err::<actix_web::HttpResponse, _>(ApiError::NotFound) })),
    );
}
