//! The OpenAPI description of the management API, generated from the handlers' annotations
//! (`utoipa`): merged by the main document into `/api/v1/openapi.json`, which declares the
//! `managementToken` scheme its operations name and the `/api/v1` server its paths are under.

use utoipa::{
    Modify, OpenApi,
    openapi::{Content, RefOr, ResponseBuilder, path::Operation},
};

use super::{
    audit, keys,
    problem::{self, PROBLEM_JSON},
    users,
};

/// Every operation can refuse a token (401, 403), a request it cannot read (400: a malformed
/// query string, path segment or body; 413: a body too large), invalid values (422) or one
/// request too many (429), with a problem; the handlers'
/// annotations list what is particular to them.
struct CommonProblems;

impl Modify for CommonProblems {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let problem = || Content::new(Some(RefOr::Ref(utoipa::openapi::Ref::from_schema_name("Problem"))));
        let common = [
            ("400", "The request cannot be read: a malformed query string, path segment or body"),
            ("401", "Missing, unknown, revoked or expired token, or its creator may no longer act"),
            ("403", "The token lacks the scope, or its creator the right"),
            ("422", "Invalid values (`errors` names each field)"),
            ("429", "Rate limited (see Retry-After)"),
        ];
        for item in openapi.paths.paths.values_mut() {
            let operations: [&mut Option<Operation>; 5] =
                [&mut item.get, &mut item.post, &mut item.put, &mut item.patch, &mut item.delete];
            for operation in operations.into_iter().flatten() {
                let with_body = operation.request_body.is_some();
                let too_large = with_body.then_some(("413", "The body is larger than the API accepts (1 MiB)"));
                for (status, description) in common.into_iter().chain(too_large) {
                    operation.responses.responses.entry(status.to_string()).or_insert_with(|| {
                        RefOr::T(
                            ResponseBuilder::new().description(description).content(PROBLEM_JSON, problem()).build(),
                        )
                    });
                }
            }
        }
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
    modifiers(&CommonProblems),
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
            "/keys",
            "/keys/{id}",
            "/keys/{id}/rekey",
            "/keys/{id}/usage",
            "/keys/{id}/end-grace",
            "/keys/{id}/deactivate",
            "/keys/{id}/reactivate",
            "/users",
            "/users/{id}/api-key-access",
            "/audit-events",
        ] {
            assert!(json["paths"][path].is_object(), "{path} is described");
        }
        let op = &json["paths"]["/keys"]["get"];
        for status in ["400", "401", "403", "422", "429"] {
            assert!(op["responses"][status]["content"]["application/problem+json"].is_object(), "{status}");
        }
        assert!(json["paths"]["/keys"]["post"]["responses"]["413"].is_object(), "with a body");
        assert!(op["responses"]["413"].is_null(), "without one");
        assert_eq!(
            op["security"][0]["managementToken"],
            serde_json::json!([]),
            "the scheme the main document declares"
        );
        assert!(json["components"]["schemas"]["Problem"].is_object());
    }
}
