//! `POST /api/v1/verify` and `GET /api/v1/me`, and the schemas of their answers in the
//! OpenAPI document.

use std::borrow::Cow;

use actix_web::{
    HttpRequest, HttpResponse, get,
    http::header::{self, HeaderValue},
    post, web,
};
use serde::{Deserialize, Serialize};
// Only the derive is imported: utoipa's generated code names its traits in full, and an
// import of them would make those names "unnecessary qualifications".
use utoipa::ToSchema;

use crate::{
    domain::ClientIp,
    error::AppError,
    keys::verifier::{Attempt, Code, Verdict},
    metrics::Verification,
    routes::api::{ApiBody, ApiError, error::ErrorBody},
    state::AppState,
};

/// What the key is to do. Both are optional; without them only the key itself is checked.
// Borrowed from the request when possible.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = VerifyRequest)]
pub struct VerifyBody<'a> {
    /// An API action of the platform's catalog.
    #[serde(borrow)]
    #[schema(value_type = Option<String>, example = "positions.read")]
    action: Option<Cow<'a, str>>,
    /// The platform's identifier of an asset.
    #[serde(borrow)]
    #[schema(value_type = Option<String>, example = "TRK-101")]
    asset: Option<Cow<'a, str>>,
}

/// A verification answer. The key's fields are there whenever the caller proved they hold the
/// key (every code but `NOT_FOUND` and `RATE_LIMITED`); `message` with every code but `VALID`.
// For the OpenAPI document only: the answer itself is written by `body` (below), with the
// key's fields pre-serialized by `keys::verifier::load::answer_fields`.
#[derive(ToSchema)]
#[schema(as = Verdict)]
pub struct VerdictSchema {
    pub valid: bool,
    pub code: CodeSchema,
    #[schema(nullable = false)]
    pub message: Option<String>,
    /// The key's public id.
    #[schema(nullable = false, example = "QKdAMVub")]
    pub key_id: Option<String>,
    #[schema(nullable = false)]
    pub name: Option<String>,
    #[schema(nullable = false)]
    pub environment: Option<EnvironmentSchema>,
    #[schema(nullable = false)]
    pub owner: Option<OwnerSchema>,
    /// The organization the key belongs to (none for a service provider's key).
    pub organization_id: Option<String>,
    #[schema(nullable = false)]
    pub attribute_to: Option<AttributeToSchema>,
    #[schema(nullable = false)]
    pub actions: Option<ScopeSchema>,
    #[schema(nullable = false)]
    pub assets: Option<ScopeSchema>,
    pub expires_at: Option<chrono::DateTime<chrono::Utc>>,
    /// The old secret of a re-keyed key was used during its grace period.
    #[schema(nullable = false)]
    pub rotating: Option<bool>,
}

/// A key's environment, as in its prefix (`kw_live_`, `kw_test_`).
#[derive(ToSchema)]
#[schema(as = Environment, rename_all = "lowercase")]
pub enum EnvironmentSchema {
    Live,
    Test,
}

/// Who owns the key.
#[derive(ToSchema)]
#[schema(as = Owner)]
pub struct OwnerSchema {
    #[schema(rename = "type")]
    pub kind: OwnerKindSchema,
    pub id: String,
}

#[derive(ToSchema)]
#[schema(as = OwnerKind, rename_all = "snake_case")]
pub enum OwnerKindSchema {
    User,
    Organization,
    ServiceProvider,
}

/// The user calls with the key are attributed to: the proxy user of an organization key, the
/// owner of a personal key.
#[derive(ToSchema)]
#[schema(as = AttributeTo)]
pub struct AttributeToSchema {
    pub user_id: Option<String>,
    pub key_name: String,
}

/// The answer codes, taken from [`Code::ALL`] so the document cannot miss one.
pub struct CodeSchema;

impl utoipa::PartialSchema for CodeSchema {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::Type::String)
            .enum_values(Some(Code::ALL.map(Code::as_str)))
            .description(Some("The verdict; the status code follows from it."))
            .into()
    }
}

impl ToSchema for CodeSchema {
    fn name() -> Cow<'static, str> {
        "Code".into()
    }
}

/// The actions or assets of a key: `"all"` or a list (as `keys::verifier::Scope` writes them).
pub struct ScopeSchema;

impl utoipa::PartialSchema for ScopeSchema {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::Schema> {
        use utoipa::openapi::{ArrayBuilder, ObjectBuilder, OneOfBuilder, Type};
        OneOfBuilder::new()
            .item(ObjectBuilder::new().schema_type(Type::String).enum_values(Some(["all"])))
            .item(ArrayBuilder::new().items(ObjectBuilder::new().schema_type(Type::String)))
            .into()
    }
}

impl ToSchema for ScopeSchema {
    fn name() -> Cow<'static, str> {
        "Scope".into()
    }
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
    // `null` is no body too (the document allows it, as JSON for "nothing").
    serde_json::from_slice::<Option<VerifyBody>>(body).map(Option::unwrap_or_default).map_err(|e| {
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

/// Is the presented key valid for this action on this asset?
///
/// Checks, in order: format and checksum (no database work for a malformed key), existence,
/// active, expiry, owner state, allowed IP ranges, action, asset. While a re-keyed key's old
/// secret is used in its grace period, the answer says `rotating: true` and carries
/// `Deprecation` and `Sunset` headers.
#[utoipa::path(
    tag = "verification",
    operation_id = "verifyKey",
    security(("apiKey" = [])),
    request_body(
        content = Option<VerifyBody>,
        content_type = "application/json",
        description = "What the key is to do; without a body (or with `{}`) only the key itself is checked.",
    ),
    responses(
        (status = 200, description = "`VALID`", body = VerdictSchema, headers(
            ("Deprecation" = String, description = "RFC 9745: the key was re-keyed at this time (`@<unix seconds>`); only with `rotating: true`"),
            ("Sunset" = String, description = "RFC 8594: when the old secret stops working; only with `rotating: true`"),
        )),
        (status = 400, description = "A malformed body", body = ErrorBody),
        (status = 401, description = "`NOT_FOUND` (unknown, malformed, bad checksum, deleted), `EXPIRED` or `DISABLED`",
            body = VerdictSchema, headers(("WWW-Authenticate" = String))),
        (status = 403, description = "`FORBIDDEN_IP`, `FORBIDDEN_ACTION` or `FORBIDDEN_ASSET`", body = VerdictSchema),
        (status = 413, description = "The body is over 1 MiB", body = ErrorBody),
        (status = 429, description = "`RATE_LIMITED`: too many invalid attempts from this address", body = VerdictSchema),
        (status = 503, description = "The key store cannot be reached and the answer is unknown (fails closed)",
            body = ErrorBody, headers(("Retry-After" = u32, description = "Seconds"))),
    ),
)]
#[post("/verify")]
pub async fn verify(req: HttpRequest, state: web::Data<AppState>, body: ApiBody) -> Result<HttpResponse, ApiError> {
    let body = parse_body(&req, &body.0)?;
    decide(&state, &req, body.action.as_deref(), body.asset.as_deref()).await
}

/// What the presented key is and may do (for integrators debugging their setup).
///
/// The same answer as a verification without action or asset.
#[utoipa::path(
    tag = "verification",
    operation_id = "describeKey",
    security(("apiKey" = [])),
    responses(
        (status = 200, description = "`VALID`", body = VerdictSchema, headers(
            ("Deprecation" = String, description = "RFC 9745; only with `rotating: true`"),
            ("Sunset" = String, description = "RFC 8594; only with `rotating: true`"),
        )),
        (status = 401, description = "`NOT_FOUND`, `EXPIRED` or `DISABLED`", body = VerdictSchema,
            headers(("WWW-Authenticate" = String))),
        (status = 403, description = "`FORBIDDEN_IP`", body = VerdictSchema),
        (status = 429, description = "`RATE_LIMITED`", body = VerdictSchema),
        (status = 503, description = "The key store cannot be reached (fails closed)", body = ErrorBody,
            headers(("Retry-After" = u32, description = "Seconds"))),
    ),
)]
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
