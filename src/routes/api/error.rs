//! API errors as JSON: `{"error": "...", "message": "..."}` with the right status.

use actix_web::{HttpResponse, ResponseError, http::StatusCode};
use serde_json::json;

use crate::error::AppError;

/// A request the API cannot answer with a verification verdict.
#[derive(Debug)]
pub enum ApiError {
    /// Malformed request (body, headers, content type).
    BadRequest(String),
    NotFound,
    PayloadTooLarge,
    /// The database cannot be reached and the answer is not known: fail closed.
    Unavailable,
    Internal,
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{self:?}")
    }
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
        response.json(json!({ "error": error, "message": message }))
    }
}
