//! API errors as JSON: `{"error": "...", "message": "..."}` with the right status.

use actix_web::{HttpResponse, ResponseError, http::StatusCode};
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::AppError;

/// The body of every API error but a verification verdict.
// The OpenAPI document's `Error` schema is derived from this type.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Error)]
pub struct ErrorBody<'a> {
    /// A stable, machine-readable code.
    #[schema(example = "invalid_request")]
    pub error: &'a str,
    /// What went wrong, for people.
    pub message: &'a str,
}

/// A request the API cannot answer with a verification verdict. The `Display` text is for
/// logs; the JSON body is chosen in [`ResponseError::error_response`].
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Malformed request (body, headers, content type).
    #[error("bad request: {0}")]
    BadRequest(String),
    #[error("not found")]
    NotFound,
    #[error("payload too large")]
    PayloadTooLarge,
    /// The database cannot be reached and the answer is not known: fail closed.
    #[error("database unavailable")]
    Unavailable,
    #[error("internal error")]
    Internal,
}

impl From<AppError> for ApiError {
    fn from(error: AppError) -> Self {
        match error {
            AppError::Unavailable => ApiError::Unavailable,
            AppError::BadRequest(m) => ApiError::BadRequest(m),
            AppError::NotFound => ApiError::NotFound,
            other => {
                log::error!("api: {other}");
                ApiError::Internal
            }
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let (error, message) = match self {
            ApiError::BadRequest(m) => ("invalid_request", m.as_str()),
            ApiError::NotFound => ("not_found", "There is no such API endpoint."),
            ApiError::PayloadTooLarge => ("payload_too_large", "The request body is too large."),
            ApiError::Unavailable => {
                ("unavailable", "The key store cannot be reached; the answer is unknown. Retry shortly.")
            }
            ApiError::Internal => ("internal_error", "Something went wrong."),
        };
        let mut response = HttpResponse::build(self.status_code());
        if let ApiError::Unavailable = self {
            response.insert_header(("Retry-After", "2"));
        }
        response.json(ErrorBody { error, message })
    }
}
