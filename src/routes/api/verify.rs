//! `POST /api/v1/verify` and `GET /api/v1/me`.

use std::borrow::Cow;

use actix_web::{
    HttpRequest, HttpResponse, get,
    http::header::{self, HeaderValue},
    post, web,
};
use serde::{Deserialize, Serialize};

use crate::{
    domain::ClientIp,
    error::AppError,
    keys::verifier::{Attempt, Code, Verdict},
    metrics::Verification,
    routes::api::{ApiBody, ApiError},
    state::AppState,
};

/// The optional body of a verification request (borrowed from the request when possible).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerifyBody<'a> {
    #[serde(borrow)]
    action: Option<Cow<'a, str>>,
    #[serde(borrow)]
    asset: Option<Cow<'a, str>>,
}

/// An answer without key fields (unknown key, throttled).
#[derive(Serialize)]
struct BareVerdict {
    valid: bool,
    code: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<&'static str>,
}

/// The answer body. For a key the caller holds, the key's fields come pre-serialized from
/// the cache, so answering is a few byte copies.
fn body(verdict: &Verdict) -> Vec<u8> {
    let code = verdict.code;
    let Some(key) = verdict.key.as_deref() else {
        let bare = BareVerdict { valid: false, code: code.as_str(), message: code.message() };
        return serde_json::to_vec(&bare).expect("serializing plain strings cannot fail");
    };
    let mut out = Vec::with_capacity(key.answer_fields.len() + 160);
    out.extend_from_slice(if code == Code::Valid {
        b"{\"valid\":true,\"code\":\""
    } else {
        b"{\"valid\":false,\"code\":\""
    });
    out.extend_from_slice(code.as_str().as_bytes());
    out.push(b'"');
    if let Some(message) = code.message() {
        out.extend_from_slice(b",\"message\":");
        serde_json::to_writer(&mut out, message).expect("writing to a Vec cannot fail");
    }
    out.push(b',');
    out.extend_from_slice(key.answer_fields.as_bytes());
    out.extend_from_slice(if verdict.sunset.is_some() { b",\"rotating\":true}" } else { b",\"rotating\":false}" });
    out
}

/// The key from `Authorization: Bearer <key>`; the key is never taken from anywhere else.
fn bearer(req: &HttpRequest) -> Option<&str> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

fn parse_body<'a>(req: &HttpRequest, body: &'a [u8]) -> Result<VerifyBody<'a>, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(VerifyBody::default());
    }
    let json = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_none_or(|v| v.starts_with("application/json"));
    if !json {
        return Err(ApiError::BadRequest("Send the body as application/json.".into()));
    }
    serde_json::from_slice(body).map_err(|e| {
        ApiError::BadRequest(format!("The body must be {{\"action\": \"…\", \"asset\": \"…\"}} (both optional): {e}"))
    })
}

/// The JSON answer for `verdict`, with `Deprecation`/`Sunset` while an old secret is used.
fn respond(verdict: &Verdict) -> HttpResponse {
    let status = actix_web::http::StatusCode::from_u16(verdict.code.status()).expect("a valid status");
    let mut response = HttpResponse::build(status);
    if matches!(verdict.code, Code::NotFound | Code::Expired | Code::Disabled) {
        response.insert_header((header::WWW_AUTHENTICATE, "Bearer realm=\"keyward\""));
    }
    if let (Some(sunset), Some(key)) = (verdict.sunset, verdict.key.as_deref()) {
        // RFC 9745 (structured date) and RFC 8594 (HTTP date): integrators notice on their own.
        let deprecated = key.rekeyed_at.unwrap_or(sunset).timestamp();
        if let Ok(value) = HeaderValue::from_str(&format!("@{deprecated}")) {
            response.insert_header(("Deprecation", value));
        }
        if let Ok(value) = HeaderValue::from_str(&sunset.format("%a, %d %b %Y %H:%M:%S GMT").to_string()) {
            response.insert_header(("Sunset", value));
        }
    }
    response.content_type("application/json").body(body(verdict))
}

async fn decide(
    state: &AppState,
    req: &HttpRequest,
    action: Option<&str>,
    asset: Option<&str>,
) -> Result<HttpResponse, ApiError> {
    let attempt = Attempt { key: bearer(req).unwrap_or_default(), action, asset, client_ip: ClientIp::of(req).0 };
    let verdict = match state.verifier.verify(attempt).await {
        Ok(verdict) => verdict,
        Err(e) => {
            let unavailable = matches!(e, AppError::Unavailable);
            state.metrics.verification(if unavailable { Verification::Unavailable } else { Verification::Error });
            return Err(e.into());
        }
    };
    state.metrics.verification(Verification::Answered(verdict.code));
    Ok(respond(&verdict))
}

#[post("/verify")]
pub async fn verify(req: HttpRequest, state: web::Data<AppState>, body: ApiBody) -> Result<HttpResponse, ApiError> {
    let body = parse_body(&req, &body.0)?;
    decide(&state, &req, body.action.as_deref(), body.asset.as_deref()).await
}

/// What the presented key is and may do (for integrators debugging their setup).
#[get("/me")]
pub async fn me(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    decide(&state, &req, None, None).await
}

#[cfg(test)]
mod tests {
    use actix_web::test::TestRequest;

    use super::bearer;

    #[test]
    fn only_a_bearer_authorization_carries_the_key() {
        let req = TestRequest::default().insert_header(("Authorization", "Bearer  kw_live_x ")).to_http_request();
        assert_eq!(bearer(&req), Some("kw_live_x"));
        let req = TestRequest::default().insert_header(("Authorization", "bearer abc")).to_http_request();
        assert_eq!(bearer(&req), Some("abc"));
        let req = TestRequest::default().insert_header(("Authorization", "Basic abc")).to_http_request();
        assert_eq!(bearer(&req), None);
        let req = TestRequest::default().uri("/api/v1/verify?key=kw_live_x").to_http_request();
        assert_eq!(bearer(&req), None, "a key in the URL is never accepted");
    }
}
