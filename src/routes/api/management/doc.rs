//! The OpenAPI description of the management API, generated from the handlers' annotations
//! (`utoipa`): merged by the main document into `/api/v1/openapi.json`.

use utoipa::{
    Modify, OpenApi,
    openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme},
};

use super::{audit, keys, problem, users};

/// Declares the bearer scheme every management endpoint names.
struct ManagementToken;

impl Modify for ManagementToken {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "management_token",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("kw_mgmt_…")
                    .description(Some("A management token (Admin → API access, or `keyward create-management-token`)."))
                    .build(),
            ),
        );
    }
}

/// The management API's paths and schemas.
#[derive(OpenApi)]
#[openapi(
    paths(
        keys::list_keys,
        keys::create_key,
        keys::get_key,
        keys::key_usage,
        keys::update_key,
        keys::delete_key,
        keys::rekey_key,
        keys::end_grace,
        keys::deactivate,
        keys::reactivate,
        users::list_users,
        users::set_api_key_access,
        audit::list_events,
    ),
    components(schemas(
        keys::KeyView,
        keys::KeyPage,
        keys::IssuedKey,
        keys::CreateKeyBody,
        keys::UpdateKeyBody,
        keys::RekeyBody,
        keys::DeactivateBody,
        keys::OwnerBody,
        keys::UsageView,
        keys::DailyCount,
        keys::AddressView,
        users::UserView,
        users::UserPage,
        users::AccessBody,
        audit::EventView,
        audit::EventPage,
        problem::Problem,
        problem::FieldProblem,
    )),
    modifiers(&ManagementToken),
    tags(
        (name = "keys", description = "The key lifecycle (scopes keys:read, keys:write)."),
        (name = "users", description = "Users and their API key access (scopes users:read, users:access)."),
        (name = "audit", description = "The audit log (scope audit:read)."),
    )
)]
pub struct ManagementApiDoc;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_endpoint_is_described_with_the_bearer_scheme() {
        let doc = ManagementApiDoc::openapi();
        let json = serde_json::to_value(&doc).unwrap();
        for path in [
            "/api/v1/keys",
            "/api/v1/keys/{id}",
            "/api/v1/keys/{id}/rekey",
            "/api/v1/keys/{id}/usage",
            "/api/v1/keys/{id}/end-grace",
            "/api/v1/keys/{id}/deactivate",
            "/api/v1/keys/{id}/reactivate",
            "/api/v1/users",
            "/api/v1/users/{id}/api-key-access",
            "/api/v1/audit-events",
        ] {
            assert!(json["paths"][path].is_object(), "{path} is described");
        }
        assert_eq!(json["components"]["securitySchemes"]["management_token"]["scheme"], "bearer");
        assert!(json["components"]["schemas"]["Problem"].is_object());
    }
}
