//! CSRF protection for every state-changing request of the browser-facing site, in one
//! middleware so that no handler can forget it.
//!
//! A request whose method is not GET/HEAD/OPTIONS must (1) not be marked cross-site by the
//! browser (`Sec-Fetch-Site`), and (2) carry a `csrf_token` form field equal, in constant
//! time, to the token of its session. The body is read here and handed on unchanged.

use actix_session::SessionExt;
use actix_web::{
    Error,
    body::{EitherBody, MessageBody},
    dev::{Payload, ServiceRequest, ServiceResponse},
    http::{Method, header},
    middleware::Next,
    web::Bytes,
};
use subtle::ConstantTimeEq;

use crate::{auth::session, error::AppError};

/// Name of the hidden form field every form carries.
pub const FIELD: &str = "csrf_token";

/// The middleware function (`actix_web::middleware::from_fn(csrf::protect)`).
pub async fn protect<B: MessageBody + 'static>(
    mut req: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<EitherBody<B>>, Error> {
    if matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
        return next.call(req).await.map(ServiceResponse::map_into_left_body);
    }
    let cross_site = req
        .headers()
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v != "same-origin" && v != "none");
    if cross_site {
        return Ok(req.error_response(AppError::Csrf).map_into_right_body());
    }
    let is_form = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if !is_form {
        let error = AppError::BadRequest("Forms must be sent as application/x-www-form-urlencoded.".into());
        return Ok(req.error_response(error).map_into_right_body());
    }
    let body = match req.extract::<Bytes>().await {
        Ok(body) => body,
        Err(error) => return Ok(req.error_response(error).map_into_right_body()),
    };
    let submitted = token_in(&body);
    let expected = session::existing_csrf_token(&req.get_session());
    let valid = match (submitted, expected) {
        (Some(submitted), Some(expected)) => bool::from(submitted.as_bytes().ct_eq(expected.as_bytes())),
        _ => false,
    };
    if !valid {
        return Ok(req.error_response(AppError::Csrf).map_into_right_body());
    }
    req.set_payload(payload_of(body));
    next.call(req).await.map(ServiceResponse::map_into_left_body)
}

fn token_in(body: &[u8]) -> Option<String> {
    serde_urlencoded::from_bytes::<Vec<(String, String)>>(body)
        .ok()?
        .into_iter()
        .find(|(name, _)| name == FIELD)
        .map(|(_, value)| value)
}

fn payload_of(body: Bytes) -> Payload {
    let stream: std::pin::Pin<Box<dyn futures_util::Stream<Item = Result<Bytes, actix_web::error::PayloadError>>>> =
        Box::pin(futures_util::stream::once(async move { Ok(body) }));
    Payload::from(stream)
}

#[cfg(test)]
mod tests {
    use super::token_in;

    #[test]
    fn the_token_is_found_among_other_fields() {
        assert_eq!(token_in(b"name=a&csrf_token=abc%2Bd&x=1").as_deref(), Some("abc+d"));
        assert_eq!(token_in(b"name=a"), None);
    }
}
