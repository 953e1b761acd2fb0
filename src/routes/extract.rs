//! `HtmlForm<T>`: form bodies as browsers send them, with repeated fields (`action=a&action=b`)
//! collected into `Vec`s (`web::Form`'s serde_urlencoded cannot), and parse failures as a
//! clear 400 page rather than a plain-text error. NUL characters are refused in forms and
//! addresses alike: no text Keyward keeps may hold one (PostgreSQL cannot store it). Also the
//! ids in addresses (`IdPath`, `path_id`).

use actix_web::{FromRequest, HttpRequest, dev::Payload, web::Bytes};
use futures_util::future::LocalBoxFuture;
use serde::de::DeserializeOwned;

use crate::error::AppError;

/// A form body deserialized with `serde_html_form`.
#[derive(Debug, Clone)]
pub struct HtmlForm<T>(pub T);

impl<T> HtmlForm<T> {
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T: DeserializeOwned + 'static> FromRequest for HtmlForm<T> {
    type Error = AppError;
    type Future = LocalBoxFuture<'static, Result<Self, AppError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let body = Bytes::from_request(req, payload);
        Box::pin(async move {
            let body = body.await.map_err(|e| AppError::BadRequest(format!("The form could not be read: {e}")))?;
            if contains_nul(&body) {
                return Err(AppError::BadRequest("Text may not contain NUL characters.".into()));
            }
            serde_html_form::from_bytes(&body)
                .map(HtmlForm)
                .map_err(|e| AppError::BadRequest(format!("The form could not be read: {e}")))
        })
    }
}

/// A page of one thing (`…/{id}/…`): who is asking (`T`, an account extractor such as
/// `OrgAdmin`) and the `{id}`, a positive number (anything else is "not found").
pub struct IdPath<T> {
    pub who: T,
    pub id: i64,
}

impl<T: FromRequest<Error = AppError, Future: 'static> + 'static> FromRequest for IdPath<T> {
    type Error = AppError;
    type Future = LocalBoxFuture<'static, Result<Self, AppError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let who_and_id = who_then_id::<T>(req, payload, "id");
        Box::pin(async move { who_and_id.await.map(|(who, id)| IdPath { who, id }) })
    }
}

/// Who is asking (`T`), then the positive id in the path segment `name`. Who is asking is
/// settled first, so a caller who may not see these pages (or is signed out) learns nothing
/// from the address: the same 403 or sign-in as for any other id.
pub fn who_then_id<T: FromRequest<Error = AppError, Future: 'static>>(
    req: &HttpRequest,
    payload: &mut Payload,
    name: &str,
) -> LocalBoxFuture<'static, Result<(T, i64), AppError>> {
    let who = T::from_request(req, payload);
    let id = path_id(req, name);
    Box::pin(async move { Ok((who.await?, id?)) })
}

/// A positive id from the path segment `name`; anything else (negative, zero, too large,
/// not a number) is "not found".
pub fn path_id(req: &HttpRequest, name: &str) -> Result<i64, AppError> {
    req.match_info().get(name).and_then(|id| id.parse().ok()).filter(|id| *id > 0).ok_or(AppError::NotFound)
}

/// Whether URL-encoded `bytes` hold a NUL character, raw or percent-encoded.
pub fn contains_nul(bytes: &[u8]) -> bool {
    bytes.contains(&0) || bytes.windows(3).any(|w| w[0] == b'%' && w[1] == b'0' && w[2] == b'0')
}

/// Middleware: an address (path or query) with a NUL character is a 400, before any handler.
pub async fn refuse_nul_in_address(
    req: actix_web::dev::ServiceRequest,
    next: actix_web::middleware::Next<impl actix_web::body::MessageBody + 'static>,
) -> Result<actix_web::dev::ServiceResponse<impl actix_web::body::MessageBody>, actix_web::Error> {
    let address = req.uri().path_and_query().map(|p| p.as_str()).unwrap_or_default();
    if contains_nul(address.as_bytes()) {
        const MESSAGE: &str = "Addresses may not contain NUL characters.";
        // The API answers in JSON (the management API with a problem), the pages with the
        // error page.
        let response = if crate::routes::api::management::is_management_path(req.path()) {
            req.error_response(crate::routes::api::management::problem::Problem::bad_request(MESSAGE))
        } else if req.path().starts_with("/api/") {
            req.error_response(crate::routes::api::ApiError::BadRequest(MESSAGE.into()))
        } else {
            req.error_response(AppError::BadRequest(MESSAGE.into()))
        };
        return Ok(response.map_into_right_body());
    }
    next.call(req).await.map(actix_web::dev::ServiceResponse::map_into_left_body)
}

#[cfg(test)]
mod tests {
    use super::contains_nul;

    #[test]
    fn nul_characters_are_found_raw_or_encoded() {
        assert!(contains_nul(b"name=a%00b"));
        assert!(contains_nul(&[b'a', 0]));
        assert!(!contains_nul(b"name=100%25&x=%200"));
    }
}
