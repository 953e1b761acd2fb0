//! CSRF protection for every state-changing request of the browser-facing site, in one
//! middleware so that no handler can forget it.
//!
//! A request whose method is not GET/HEAD/OPTIONS must (1) not be marked cross-site by the
//! browser (`Sec-Fetch-Site`), (2) not name another site in `Origin` (`null` included: the
//! browser hides the origin of sandboxed and privacy-sensitive contexts), and (3) carry a
//! `csrf_token` form field equal, in constant time, to the token of its session. The body is
//! read here and handed on unchanged. The bearer-key API (`/api/v1/…`) has no session and is
//! not behind this middleware.

use actix_session::SessionExt;
use actix_web::{
    Error,
    body::{EitherBody, MessageBody},
    dev::{ConnectionInfo, Payload, ServiceRequest, ServiceResponse},
    http::{Method, header},
    middleware::Next,
    web::{self, Bytes},
};
use subtle::ConstantTimeEq;

use crate::{auth::session, error::AppError};

/// Name of the hidden form field every form carries.
pub const FIELD: &str = "csrf_token";

/// This site's origin, as browsers write it in `Origin`.
#[derive(Debug, Clone)]
pub struct SiteOrigin {
    /// The configured public URL's origin (`KEYWARD_PUBLIC_URL`), if any.
    configured: Option<String>,
    /// The site is served over HTTPS (secure cookies): a proxy may terminate TLS and talk
    /// plain HTTP to us, so the request's own scheme would be wrong.
    https: bool,
}

impl SiteOrigin {
    pub fn new(configured: Option<String>, https: bool) -> Self {
        Self { configured: configured.map(|o| normalize(&o)), https }
    }

    /// `path` as a link for messages read or sent elsewhere: on the configured public URL,
    /// else as it is (relative, for the browser to resolve).
    pub fn link(&self, path: &str) -> String {
        match &self.configured {
            Some(origin) => format!("{origin}{path}"),
            None => path.to_string(),
        }
    }

    /// This site's origin for a request that arrived with `info`: the configured public URL's,
    /// else the request's host (over `https` when the site is). Absolute links (a set-password
    /// link) are built on it too.
    pub fn for_request(&self, info: &ConnectionInfo) -> String {
        match &self.configured {
            Some(configured) => configured.clone(),
            None => {
                let scheme = if self.https { "https" } else { info.scheme() };
                normalize(&format!("{scheme}://{}", info.host()))
            }
        }
    }

    /// Whether `origin` (an `Origin` header) is another site than the one `req` reached.
    fn is_foreign(&self, origin: &str, req: &ServiceRequest) -> bool {
        normalize(origin) != self.for_request(&req.connection_info())
    }
}

/// `scheme://host[:port]` in lower case, without the scheme's default port or a trailing slash.
fn normalize(origin: &str) -> String {
    let origin = origin.trim().trim_end_matches('/').to_ascii_lowercase();
    for (scheme, port) in [("http://", ":80"), ("https://", ":443")] {
        if origin.starts_with(scheme) && origin.ends_with(port) {
            return origin[..origin.len() - port.len()].to_string();
        }
    }
    origin
}

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
    let site = req.app_data::<web::Data<SiteOrigin>>().map(|site| site.get_ref().clone());
    let foreign_origin = match (req.headers().get(header::ORIGIN), site) {
        (Some(origin), Some(site)) => origin.to_str().map_or(true, |origin| site.is_foreign(origin, &req)),
        // Without the application's settings (never in the application), refuse any origin.
        (Some(_), None) => true,
        (None, _) => false,
    };
    if cross_site || foreign_origin {
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
    use super::{normalize, token_in};

    #[test]
    fn origins_compare_without_case_default_ports_or_trailing_slashes() {
        assert_eq!(normalize("HTTPS://Keys.Example.com:443/"), "https://keys.example.com");
        assert_eq!(normalize("http://127.0.0.1:80"), "http://127.0.0.1");
        assert_eq!(normalize("http://127.0.0.1:8080"), "http://127.0.0.1:8080");
        assert_eq!(normalize("https://h:80"), "https://h:80");
        assert_eq!(normalize("null"), "null");
    }

    #[test]
    fn the_token_is_found_among_other_fields() {
        assert_eq!(token_in(b"name=a&csrf_token=abc%2Bd&x=1").as_deref(), Some("abc+d"));
        assert_eq!(token_in(b"name=a"), None);
    }
}
