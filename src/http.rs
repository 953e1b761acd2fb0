//! HTTP-wide middleware: security headers on every response, one log line per request
//! (with a request id, echoed in `X-Request-Id`, and the server time and database queries,
//! echoed in `Server-Timing`), 431 for an oversized request header, `HEAD` answered like
//! `GET`, and a dialog's form sent on to a page it must not open in the dialog. Paths are logged without query strings, and request bodies and headers never, so no
//! secret reaches the log.

use std::{
    sync::{
        LazyLock,
        atomic::{AtomicU64, Ordering},
    },
    time::Instant,
};

use crate::db::query_count::{self, QueryCount};
use actix_web::{
    Error, HttpResponse,
    body::MessageBody,
    dev::{ServiceRequest, ServiceResponse},
    http::{
        Method, StatusCode,
        header::{self, HeaderName, HeaderValue},
    },
    middleware::Next,
};

/// Headers sent with every response unless a handler set its own value (`Cache-Control`).
pub fn security_headers(https: bool) -> Vec<(HeaderName, HeaderValue)> {
    let mut headers = vec![
        (
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(
                "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                 connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
            ),
        ),
        (header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
        (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
        (header::REFERRER_POLICY, HeaderValue::from_static("same-origin")),
        (
            HeaderName::from_static("permissions-policy"),
            HeaderValue::from_static("camera=(), microphone=(), geolocation=(), payment=()"),
        ),
        (HeaderName::from_static("cross-origin-opener-policy"), HeaderValue::from_static("same-origin")),
        // Pages show personal data and (once) secrets: never store them in any cache.
        (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
    ];
    if https {
        headers.push((header::STRICT_TRANSPORT_SECURITY, HeaderValue::from_static("max-age=31536000")));
    }
    headers
}

/// A random per-process prefix and a counter: unique across instances and restarts, and
/// without a system call per request (this runs on the verification hot path too).
fn next_request_id() -> String {
    static PREFIX: LazyLock<String> = LazyLock::new(|| crate::secrets::random_token(3));
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    format!("{}-{:x}", *PREFIX, COUNTER.fetch_add(1, Ordering::Relaxed))
}

/// Logs `request-id method path status duration` for every request.
pub async fn request_log(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let started = Instant::now();
    let request_id = next_request_id();
    let method = req.method().clone();
    let path = req.path().to_owned();
    let queries = QueryCount::default();
    let id: std::sync::Arc<str> = std::sync::Arc::from(request_id.as_str());
    let served = crate::request_id::scope(id, query_count::counting(queries.clone(), next.call(req)));
    let mut response = match served.await {
        Ok(response) => response,
        Err(error) => {
            // Middleware below turns its errors into responses; anything else is still logged.
            let status = error.as_response_error().status_code();
            log::warn!("{request_id} {method} {path} {} (middleware error)", status.as_u16());
            return Err(error);
        }
    };
    let status = response.status();
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert(HeaderName::from_static("x-request-id"), value);
    }
    let (millis, queries) = (started.elapsed().as_secs_f64() * 1e3, queries.get());
    // Server time and query count, for browsers' developer tools and the page benchmark.
    if let Ok(value) = HeaderValue::from_str(&format!("app;dur={millis:.2}, db;desc=\"{queries} queries\"")) {
        response.headers_mut().insert(HeaderName::from_static("server-timing"), value);
    }
    if status.is_server_error() {
        log::warn!("{request_id} {method} {path} {} {millis:.1}ms {queries}q", status.as_u16());
    } else {
        log::info!("{request_id} {method} {path} {} {millis:.1}ms {queries}q", status.as_u16());
    }
    Ok(response)
}

/// Longest single request header (name and value) accepted. The HTTP parser itself only
/// limits the whole head (128 KiB); no header Keyward reads comes near this.
pub const MAX_HEADER_BYTES: usize = 16 * 1024;

/// Answers 431 to a request with a header over [`MAX_HEADER_BYTES`], before any handler.
pub async fn refuse_oversized_headers(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let oversized = req.headers().iter().any(|(name, value)| name.as_str().len() + value.len() > MAX_HEADER_BYTES);
    if oversized {
        let response = HttpResponse::build(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE)
            .content_type("text/plain; charset=utf-8")
            .body("A request header is too large (the limit is 16 KiB per header).");
        return Ok(req.into_response(response).map_into_right_body());
    }
    next.call(req).await.map(ServiceResponse::map_into_left_body)
}

/// Routes `HEAD` like `GET`, so every page answers it. The HTTP/1 encoder knows the request
/// was `HEAD` and sends the headers (with the body's length) without the body.
pub async fn head_as_get(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    if req.method() == Method::HEAD {
        req.head_mut().method = Method::GET;
    }
    next.call(req).await
}

/// The header `static/js/app.js` sends with a form it submits from a dialog.
const DIALOG_REQUEST: &str = "x-keyward-dialog";
/// The header that tells it to leave the dialog for this page instead.
const NAVIGATE: HeaderName = HeaderName::from_static("x-keyward-navigate");

/// A form submitted from a dialog follows no redirect (a success's next page shows the flash
/// message, which the page itself must load). A redirect to "Confirm it's you" or to sign in
/// again is no success, though: for a dialog's request it becomes a 200 naming that page in
/// `X-Keyward-Navigate`, and the script goes there instead of closing the dialog as if done.
pub async fn dialog_detours(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let from_dialog = req.headers().contains_key(DIALOG_REQUEST);
    let mut response = next.call(req).await?;
    if !from_dialog || response.status() != StatusCode::SEE_OTHER {
        return Ok(response);
    }
    let detour = response
        .headers()
        .get(header::LOCATION)
        .filter(|location| {
            let path = location.to_str().unwrap_or_default();
            let path = path.split('?').next().unwrap_or_default();
            ["/account/confirm", "/staff/confirm", "/login", "/login/second-factor", "/login/enrol"].contains(&path)
        })
        .cloned();
    if let Some(location) = detour {
        *response.response_mut().status_mut() = StatusCode::OK;
        response.headers_mut().remove(header::LOCATION);
        response.headers_mut().insert(NAVIGATE, location);
    }
    Ok(response)
}
