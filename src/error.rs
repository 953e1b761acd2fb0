//! `AppError`: the one place where failures become HTTP responses. Pages get a friendly
//! error page (never internals); the JSON API maps its own errors in `routes::api`.

use actix_web::{
    HttpResponse, ResponseError,
    http::{StatusCode, header},
};
use askama::Template;

/// The page where a half-signed-in session gives its second factor.
pub const SECOND_FACTOR_PATH: &str = "/login/second-factor";
/// Where a session that must set up a second factor before it counts does so.
pub const ENROL_PATH: &str = "/login/enrol";

/// Everything a browser-facing handler can fail with. The `Display` text is for logs and the
/// terminal; what a browser sees is chosen in [`ResponseError::error_response`].
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// Not signed in: redirect to the login page, which returns to the page named here.
    #[error("login required")]
    LoginRequired(Option<String>),
    /// Half-signed-in (password given, second factor due): only the second-factor page opens.
    #[error("second factor required")]
    SecondFactorRequired,
    /// A sensitive action and no recent proof of the person (sudo mode, `auth::sudo`): the
    /// confirm `page`, which returns to `next`.
    #[error("confirmation required")]
    ConfirmIdentity { page: &'static str, next: String },
    /// Password given, but a second factor the policy requires is not set up: only the
    /// enrolment pages open.
    #[error("second factor enrolment required")]
    EnrolmentRequired,
    /// Signed in, but this area is not for this account.
    #[error("forbidden")]
    Forbidden,
    /// Missing, or belonging to another organization (which must look the same).
    #[error("not found")]
    NotFound,
    /// The request itself is malformed.
    #[error("bad request: {0}")]
    BadRequest(String),
    /// Form input that fails validation; handlers re-render the form with these (422).
    #[error("invalid input: {0}")]
    Invalid(FieldErrors),
    /// A form was submitted without a valid CSRF token (or from another site).
    #[error("missing or invalid CSRF token")]
    Csrf,
    /// The change conflicts with the current state (duplicate name, concurrent change…).
    #[error("conflict: {0}")]
    Conflict(String),
    /// Too many attempts; the message says when to try again, as does `Retry-After`.
    #[error("too many requests: {message}")]
    TooManyRequests { message: String, retry_after_secs: u64 },
    /// The database cannot be reached or is too slow right now.
    #[error("database unavailable")]
    Unavailable,
    /// A bug or an unexpected failure; the detail is logged, never shown.
    #[error("internal error: {0}")]
    Internal(String),
}

/// Validation messages by form field, in the order they were found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldErrors(Vec<(&'static str, String)>);

impl FieldErrors {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn add(&mut self, field: &'static str, message: impl Into<String>) {
        self.0.push((field, message.into()));
    }

    /// The values of the fields that parsed (zipped into one `Option`) if no field failed,
    /// else every error. A value is missing only when its field has an error, so no caller
    /// needs to `expect` one.
    pub fn finish<T>(self, values: Option<T>) -> Result<T, AppError> {
        match values {
            Some(values) if self.is_empty() => Ok(values),
            _ => Err(AppError::Invalid(self)),
        }
    }

    /// Adds every error of `other`.
    pub fn extend(&mut self, other: FieldErrors) {
        self.0.extend(other.0);
    }

    /// The first message for `field`, if any.
    pub fn get(&self, field: &str) -> Option<&str> {
        self.0.iter().find(|(f, _)| *f == field).map(|(_, m)| m.as_str())
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&'static str, &str)> {
        self.0.iter().map(|(f, m)| (*f, m.as_str()))
    }

    /// `Ok(())` when there are no errors, else `AppError::Invalid`.
    pub fn into_result(self) -> Result<(), AppError> {
        if self.is_empty() { Ok(()) } else { Err(AppError::Invalid(self)) }
    }

    /// Keeps the value of `result`, or records its message under `field`.
    pub fn take<T, E: std::fmt::Display>(&mut self, field: &'static str, result: Result<T, E>) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(message) => {
                self.add(field, message.to_string());
                None
            }
        }
    }
}

impl std::fmt::Display for FieldErrors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let messages: Vec<&str> = self.0.iter().map(|(_, m)| m.as_str()).collect();
        f.write_str(&messages.join(" "))
    }
}

/// A single-field validation error.
pub fn invalid(field: &'static str, message: impl Into<String>) -> AppError {
    let mut errors = FieldErrors::new();
    errors.add(field, message);
    AppError::Invalid(errors)
}

/// Result type of handlers and services.
pub type AppResult<T> = Result<T, AppError>;

impl From<diesel::result::Error> for AppError {
    fn from(error: diesel::result::Error) -> Self {
        use diesel::result::{DatabaseErrorKind as Kind, Error};
        match error {
            Error::NotFound => AppError::NotFound,
            Error::DatabaseError(Kind::UniqueViolation, _) => AppError::Conflict("That already exists.".into()),
            Error::DatabaseError(Kind::SerializationFailure, _) => {
                AppError::Conflict("Someone else changed this at the same time; please try again.".into())
            }
            // Diesel reports a lost connection by kind (libpq's connection status or a
            // connection-class SQLSTATE), so no message needs to be searched for it.
            Error::DatabaseError(Kind::ClosedConnection | Kind::UnableToSendCommand, _)
            | Error::BrokenTransactionManager => unavailable(&error),
            // A commit whose outcome is unknown because the connection went away.
            Error::RollbackErrorOnCommit { commit_error, .. } => AppError::from(*commit_error),
            Error::DatabaseError(Kind::Unknown, ref info) if is_timeout(info.message()) => unavailable(&error),
            other => AppError::Internal(other.to_string()),
        }
    }
}

/// A 503 whose cause is logged with the request it failed (the page only says "try again").
fn unavailable(cause: &diesel::result::Error) -> AppError {
    log::warn!("{} database unavailable: {cause}", crate::request_id::label());
    AppError::Unavailable
}

/// A statement cancelled by the server (statement or lock timeout, an operator's
/// `pg_cancel_backend`, a replica conflict) is "try again later", not a bug. PostgreSQL
/// reports these with SQLSTATE 57014/55P03/40001, which diesel does not expose, so the
/// fixed start of the server's message is matched.
fn is_timeout(message: &str) -> bool {
    message.starts_with("canceling statement due to ")
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    status: u16,
    title: &'a str,
    message: &'a str,
}

impl ResponseError for AppError {
    fn status_code(&self) -> StatusCode {
        match self {
            AppError::LoginRequired(_)
            | AppError::SecondFactorRequired
            | AppError::ConfirmIdentity { .. }
            | AppError::EnrolmentRequired => StatusCode::SEE_OTHER,
            AppError::Forbidden | AppError::Csrf => StatusCode::FORBIDDEN,
            AppError::NotFound => StatusCode::NOT_FOUND,
            AppError::BadRequest(_) => StatusCode::BAD_REQUEST,
            AppError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            AppError::Conflict(_) => StatusCode::CONFLICT,
            AppError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            AppError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        if let AppError::LoginRequired(next) = self {
            let next = next.as_deref().and_then(|path| crate::views::paths::safe_local_path(path, "/"));
            let location = match next {
                Some(path) => format!("/login?{}", serde_html_form::to_string([("next", path)]).unwrap_or_default()),
                None => "/login".to_string(),
            };
            return HttpResponse::SeeOther().insert_header((header::LOCATION, location)).finish();
        }
        if let AppError::ConfirmIdentity { page, next } = self {
            let location = match crate::views::paths::safe_local_path(next, "/") {
                Some(path) => format!("{page}?{}", serde_html_form::to_string([("next", path)]).unwrap_or_default()),
                None => page.to_string(),
            };
            return HttpResponse::SeeOther().insert_header((header::LOCATION, location)).finish();
        }
        if let AppError::SecondFactorRequired = self {
            return HttpResponse::SeeOther().insert_header((header::LOCATION, SECOND_FACTOR_PATH)).finish();
        }
        if let AppError::EnrolmentRequired = self {
            return HttpResponse::SeeOther().insert_header((header::LOCATION, ENROL_PATH)).finish();
        }
        if let AppError::Internal(detail) = self {
            log::error!("{} internal error: {detail}", crate::request_id::label());
        }
        let summary;
        let (title, message): (&str, &str) = match self {
            AppError::Forbidden => ("Not allowed", "Your account cannot open this page."),
            AppError::NotFound => ("Not found", "There is nothing here, or it is not yours to see."),
            AppError::BadRequest(m) => ("Bad request", m),
            AppError::Invalid(errors) => {
                summary = errors.to_string();
                ("Please check your input", &summary)
            }
            AppError::Csrf => (
                "Form expired",
                "This form was open too long or came from another site. Go back, reload the page and try again.",
            ),
            AppError::Conflict(m) => ("Conflict", m),
            AppError::TooManyRequests { message, .. } => ("Too many attempts", message),
            AppError::Unavailable => (
                "Temporarily unavailable",
                "Keyward cannot reach its database right now. Please try again in a moment.",
            ),
            AppError::Internal(_)
            | AppError::LoginRequired(_)
            | AppError::SecondFactorRequired
            | AppError::ConfirmIdentity { .. }
            | AppError::EnrolmentRequired => ("Something went wrong", "The problem has been logged. Please try again."),
        };
        let status = self.status_code();
        let page = ErrorPage { status: status.as_u16(), title, message };
        let body = page.render().unwrap_or_else(|_| title.to_string());
        let mut response = HttpResponse::build(status);
        response.content_type("text/html; charset=utf-8");
        match self {
            AppError::Unavailable => {
                response.insert_header((header::RETRY_AFTER, "5"));
            }
            AppError::TooManyRequests { retry_after_secs, .. } => {
                response.insert_header((header::RETRY_AFTER, retry_after_secs.to_string()));
            }
            _ => {}
        }
        response.body(body)
    }
}

#[cfg(test)]
mod tests {
    use diesel::result::{DatabaseErrorKind as Kind, Error};

    use super::AppError;

    fn database_error(kind: Kind, message: &str) -> AppError {
        AppError::from(Error::DatabaseError(kind, Box::new(message.to_string())))
    }

    #[test]
    fn lost_connections_and_timeouts_are_unavailable() {
        for (kind, message) in [
            (Kind::ClosedConnection, "terminating connection due to administrator command"),
            (Kind::UnableToSendCommand, "no connection to the server"),
            (Kind::Unknown, "canceling statement due to statement timeout"),
            (Kind::Unknown, "canceling statement due to lock timeout"),
        ] {
            assert!(matches!(database_error(kind, message), AppError::Unavailable), "{message}");
        }
        assert!(matches!(AppError::from(Error::BrokenTransactionManager), AppError::Unavailable));
    }

    #[test]
    fn a_bug_that_mentions_a_connection_is_not_an_outage() {
        let error = database_error(Kind::Unknown, "column \"connection_id\" does not exist");
        assert!(matches!(error, AppError::Internal(_)), "{error:?}");
        let error = database_error(Kind::CheckViolation, "new row violates check constraint \"connection_limit\"");
        assert!(matches!(error, AppError::Internal(_)), "{error:?}");
    }
}
