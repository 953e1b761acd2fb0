//! The OpenAPI 3.1 document of the API, generated from the handlers' annotations
//! (`#[utoipa::path]`) and the request and answer types (`ToSchema`), and served at
//! `GET /api/v1/openapi.json`. New endpoints are listed in [`ApiDoc`] or merged in
//! [`document`].

use std::sync::LazyLock;

use actix_web::{HttpResponse, get};
use utoipa::{
    Modify, OpenApi,
    openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme},
};

use crate::routes::api::{error::ErrorBody, leaks, verify};

/// The API's own endpoints. Schemas referenced by the operations are collected on their own.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Keyward API",
        version = "1.0.0",
        description = "Verification of API keys for the platform's services, key self-inspection for \
            integrators, leak reports, and the management API for scripts (keys, users' API key \
            access, the audit log) with a management token. Keys and tokens are sent only in the \
            `Authorization` header (`Bearer kw_…`), never in the URL. Every answer is JSON and must \
            not be cached (`Cache-Control: no-store`). Errors of verification, `me` and leak reports \
            (other than verdicts) are `{\"error\", \"message\"}`; the management API's are \
            `application/problem+json` (RFC 9457).",
        license(name = "MIT OR Apache-2.0"),
    ),
    servers((url = "/api/v1", description = "This Keyward instance")),
    paths(verify::verify, verify::me, leaks::report, openapi_json),
    components(schemas(ErrorBody)),
    modifiers(&SecuritySchemes),
    tags(
        (name = "verification", description = "For the platform's services and integrators: is this key valid, and what may it do?"),
        (name = "leaks", description = "Reports of leaked keys (GitHub secret-scanning partner format)"),
        (name = "meta", description = "This document"),
    ),
)]
pub struct ApiDoc;

/// The bearer schemes: a Keyward key for verification, a management token for the
/// management API (its operations refer to it as `managementToken`).
struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "apiKey",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("kw_(live|test)_<8 base62>_<49 base62>")
                    .description(Some("A Keyward API key"))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "managementToken",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("kw_mgmt_<8 base62>_<49 base62>")
                    .description(Some(
                        "A management token (Admin → API access, or `keyward create-management-token`; a \
                         service provider's from Staff → Service providers, for the provider's keys only); \
                         opens only the management API",
                    ))
                    .build(),
            ),
        );
    }
}

/// The whole document: [`ApiDoc`] and the documents of the API's other parts.
pub fn document() -> utoipa::openapi::OpenApi {
    // Each part's paths, schemas and tags are added where the name is new (a schema named like
    // one of ours, e.g. `Error`, is dropped: ours is kept). Parts declare no `servers` (paths
    // are relative to `/api/v1` here) and name the schemes declared above.
    ApiDoc::openapi().merge_from(crate::routes::api::management::doc::ManagementApiDoc::openapi())
}

/// The document as served, built once.
static DOCUMENT: LazyLock<String> =
    LazyLock::new(|| document().to_json().expect("the OpenAPI document serializes to JSON"));

/// This document.
#[utoipa::path(
    tag = "meta",
    operation_id = "openapi",
    responses((status = 200, description = "The OpenAPI 3.1 document of this API", content_type = "application/json", body = Object)),
)]
#[get("/openapi.json")]
pub async fn openapi_json() -> HttpResponse {
    // Like every API answer, not cached (the global `no-store`): the document changes with
    // a release, and it is small.
    HttpResponse::Ok().content_type("application/json").body(DOCUMENT.as_str())
}
