//! The JSON API under `/api/v1`: verification for platform services, `me` for integrators,
//! leak reports in GitHub's secret-scanning format, the OpenAPI document, and the management
//! API for scripts (`management`). No sessions, no cookies; every answer is JSON and never
//! cached. Also the reference page rendering the document (`/api/docs/`, HTML).

pub mod error;
pub mod leaks;
pub mod management;
pub mod openapi;
pub mod reference;
pub mod verify;

use actix_web::web;

pub use error::ApiError;

use actix_web::{FromRequest, HttpRequest, dev::Payload, web::Bytes};
use futures_util::future::LocalBoxFuture;

/// A request body read for the API: too large or unreadable bodies become JSON errors
/// (the API always answers in JSON), not the framework's plain-text ones; bodies with NUL
/// characters (raw or `\u0000`) are refused.
#[derive(Debug)]
pub struct ApiBody(pub Bytes);

impl FromRequest for ApiBody {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let body = Bytes::from_request(req, payload);
        Box::pin(async move {
            let body = body.await.map_err(|e| {
                if e.as_response_error().status_code() == actix_web::http::StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::PayloadTooLarge
                } else {
                    ApiError::BadRequest(format!("The request body could not be read: {e}"))
                }
            })?;
            // No text Keyward keeps may hold a NUL character (PostgreSQL cannot store it).
            if body.contains(&0) || body.windows(6).any(|w| w.eq_ignore_ascii_case(b"\\u0000")) {
                return Err(ApiError::BadRequest("Text may not contain NUL characters.".into()));
            }
            Ok(ApiBody(body))
        })
    }
}

/// Largest request body accepted by the API (a leak report batch).
pub const BODY_LIMIT: usize = 1024 * 1024;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/api/v1")
            .app_data(web::PayloadConfig::new(BODY_LIMIT))
            .service(verify::verify)
            .service(verify::me)
            .service(leaks::report)
            .service(openapi::openapi_json)
            .configure(management::configure)
            .wrap(actix_web::middleware::from_fn(management::limit::announce))
            .wrap(actix_web::middleware::from_fn(management::denied::audit_refusals))
            .default_service(web::to(|| async { Err::<actix_web::HttpResponse, _>(ApiError::NotFound) })),
    );
}
