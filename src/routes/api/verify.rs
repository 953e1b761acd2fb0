//! `POST /api/v1/verify` and `GET /api/v1/me`.

use actix_web::{
    HttpRequest, HttpResponse, get,
    http::header::{self, HeaderValue},
    post, web,
};
use serde::{Deserialize, Serialize};

use crate::{
    domain::ClientIp,
    keys::verifier::{Attempt, Code, Scope, Verdict},
    routes::api::ApiError,
    state::AppState,
};

/// The optional body of a verification request.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerifyBody {
    action: Option<String>,
    asset: Option<String>,
}

#[derive(Serialize)]
struct Owner<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    id: &'a str,
}

#[derive(Serialize)]
struct AttributeTo<'a> {
    user_id: Option<&'a str>,
    key_name: &'a str,
}

#[derive(Serialize)]
struct KeyBody<'a> {
    key_id: &'a str,
    name: &'a str,
    environment: &'a str,
    owner: Owner<'a>,
    organization_id: Option<&'a str>,
    attribute_to: AttributeTo<'a>,
    actions: &'a Scope,
    assets: &'a Scope,
    expires_at: Option<&'a str>,
    rotating: bool,
}

#[derive(Serialize)]
struct VerdictBody<'a> {
    valid: bool,
    code: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<&'static str>,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    key: Option<KeyBody<'a>>,
}

/// The key from `Authorization: Bearer <key>`; the key is never taken from anywhere else.
fn bearer(req: &HttpRequest) -> Option<&str> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

fn parse_body(req: &HttpRequest, body: &[u8]) -> Result<VerifyBody, ApiError> {
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
    let key = verdict.key.as_deref().map(|key| KeyBody {
        key_id: &key.public_id,
        name: &key.name,
        environment: &key.environment,
        owner: Owner { kind: key.owner.kind(), id: &key.owner_id },
        organization_id: key.organization_id_text.as_deref(),
        attribute_to: AttributeTo { user_id: key.attribute_to_user_id.as_deref(), key_name: &key.name },
        actions: &key.actions,
        assets: &key.assets,
        expires_at: key.expires_at_text.as_deref(),
        rotating: verdict.sunset.is_some(),
    });
    let body = VerdictBody {
        valid: verdict.code == Code::Valid,
        code: verdict.code.as_str(),
        message: verdict.code.message(),
        key,
    };
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
    response.json(body)
}

async fn decide(
    state: &AppState,
    req: &HttpRequest,
    action: Option<&str>,
    asset: Option<&str>,
) -> Result<HttpResponse, ApiError> {
    let attempt = Attempt { key: bearer(req).unwrap_or_default(), action, asset, client_ip: ClientIp::of(req).0 };
    let verdict = state.verifier.verify(attempt).await?;
    Ok(respond(&verdict))
}

#[post("/verify")]
pub async fn verify(req: HttpRequest, state: web::Data<AppState>, body: web::Bytes) -> Result<HttpResponse, ApiError> {
    let body = parse_body(&req, &body)?;
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
