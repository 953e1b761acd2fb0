//! Errors of the management API as RFC 9457 `application/problem+json`: `type`, `title`,
//! `status`, `detail`, and for invalid input `errors` (one `{field, message}` per problem,
//! from the services' own field errors). 401/403/404 say nothing about other tenants'
//! objects: another organization's key is "not found", exactly like a missing one.

use actix_web::{
    HttpResponse, ResponseError,
    http::{StatusCode, header},
};
use serde::Serialize;

use super::denied::Refusal;
use crate::{error::AppError, routes::api::ApiError};

/// The media type of problem details.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// One invalid field.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct FieldProblem {
    pub field: String,
    pub message: String,
}

/// A problem detail. `Display` is for logs.
#[derive(Debug, Clone, Serialize, thiserror::Error, utoipa::ToSchema)]
#[error("{status} {title}: {detail}")]
pub struct Problem {
    #[serde(rename = "type")]
    #[schema(value_type = String)]
    pub kind: &'static str,
    #[schema(value_type = String)]
    pub title: &'static str,
    pub status: u16,
    pub detail: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldProblem>,
    #[serde(skip)]
    pub retry_after_secs: Option<u64>,
    /// Why a live token was refused (403s only), for the audit log (see `denied`).
    #[serde(skip)]
    pub refusal: Option<Refusal>,
}

impl Problem {
    pub fn new(status: StatusCode, detail: impl Into<String>) -> Self {
        Self {
            kind: "about:blank",
            title: status.canonical_reason().unwrap_or("Error"),
            status: status.as_u16(),
            detail: detail.into(),
            errors: Vec::new(),
            retry_after_secs: None,
            refusal: None,
        }
    }

    /// The token is missing, malformed, unknown, revoked, expired or its creator may no
    /// longer act: one answer for all, so a caller learns nothing about other tokens.
    pub fn unauthenticated() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "Send a valid, unrevoked management token as `Authorization: Bearer kw_mgmt_…`.",
        )
    }

    /// The token lacks the scope (or its creator the permission) for this operation.
    pub fn forbidden(refusal: Refusal, detail: impl Into<String>) -> Self {
        let mut problem = Self::new(StatusCode::FORBIDDEN, detail);
        problem.refusal = Some(refusal);
        problem
    }

    pub fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "There is no such resource.")
    }

    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, detail)
    }

    /// Invalid input with one field error.
    pub fn invalid_field(field: &str, message: impl Into<String>) -> Self {
        let mut problem = Self::new(StatusCode::UNPROCESSABLE_ENTITY, "The request has invalid fields.");
        problem.kind = "urn:keyward:problem:invalid-fields";
        problem.errors.push(FieldProblem { field: field.to_string(), message: message.into() });
        problem
    }
}

/// The API's name of a field the services name after a form field.
fn api_field(field: &str) -> &str {
    match field {
        "expires_on" => "expires_at",
        "grace" => "grace_minutes",
        "form" => "",
        other => other,
    }
}

impl From<AppError> for Problem {
    fn from(error: AppError) -> Self {
        match error {
            AppError::Invalid(errors) => {
                let mut problem = Self::new(StatusCode::UNPROCESSABLE_ENTITY, errors.to_string());
                problem.kind = "urn:keyward:problem:invalid-fields";
                problem.errors = errors
                    .iter()
                    .map(|(field, message)| FieldProblem {
                        field: api_field(field).to_string(),
                        message: message.into(),
                    })
                    .collect();
                problem
            }
            AppError::NotFound => Self::not_found(),
            // The handlers check the scopes first: a service's refusal is the creator's rights.
            AppError::Forbidden => Self::forbidden(
                Refusal::CreatorRights,
                "The token's scopes, or its creator's current rights, do not allow this.",
            ),
            AppError::BadRequest(message) => Self::bad_request(message),
            AppError::Conflict(message) => Self::new(StatusCode::CONFLICT, message),
            AppError::TooManyRequests { message, retry_after_secs } => {
                let mut problem = Self::new(StatusCode::TOO_MANY_REQUESTS, message);
                problem.retry_after_secs = Some(retry_after_secs);
                problem
            }
            AppError::Unavailable => {
                let mut problem =
                    Self::new(StatusCode::SERVICE_UNAVAILABLE, "The database cannot be reached; retry shortly.");
                problem.retry_after_secs = Some(2);
                problem
            }
            // Session states cannot occur with a token; anything else is a bug.
            other => {
                log::error!("management api: {other}");
                Self::new(StatusCode::INTERNAL_SERVER_ERROR, "Something went wrong.")
            }
        }
    }
}

impl From<ApiError> for Problem {
    fn from(error: ApiError) -> Self {
        match error {
            ApiError::BadRequest(message) => Self::bad_request(message),
            ApiError::NotFound => Self::not_found(),
            ApiError::PayloadTooLarge => Self::new(StatusCode::PAYLOAD_TOO_LARGE, "The request body is too large."),
            ApiError::Unavailable => AppError::Unavailable.into(),
            ApiError::Internal => Self::new(StatusCode::INTERNAL_SERVER_ERROR, "Something went wrong."),
        }
    }
}

impl ResponseError for Problem {
    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status_code());
        response.insert_header((header::CACHE_CONTROL, "no-store"));
        if let Some(secs) = self.retry_after_secs {
            response.insert_header((header::RETRY_AFTER, secs.to_string()));
        }
        if self.status == 401 {
            response.insert_header((header::WWW_AUTHENTICATE, "Bearer realm=\"keyward-management\""));
        }
        let body = serde_json::to_vec(self).unwrap_or_default();
        response.content_type(PROBLEM_JSON).body(body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::FieldErrors;

    #[test]
    fn field_errors_become_problem_errors_named_as_the_api_names_them() {
        let mut errors = FieldErrors::new();
        errors.add("expires_on", "Too late.");
        errors.add("actions", "Unknown action.");
        let problem = Problem::from(AppError::Invalid(errors));
        assert_eq!(problem.status, 422);
        let json = serde_json::to_value(&problem).unwrap();
        assert_eq!(json["errors"][0]["field"], "expires_at");
        assert_eq!(json["errors"][1]["message"], "Unknown action.");
        assert_eq!(json["type"], "urn:keyward:problem:invalid-fields");
    }
}
