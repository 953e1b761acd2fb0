//! Refused calls of live management tokens in the audit log: a 403 for a missing scope, for
//! the creator's lost rights or for an address outside the token's ranges is one
//! `access.denied` event as the token (never with its secret); a 401 of a made-up token and a
//! 404 write nothing.

use std::time::Duration;

use diesel::{Connection, prelude::*};
use keyward::db::{
    privileges::APP_ROLE,
    schema::{audit_events, users},
};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::{
    fixtures,
    helpers::{TestApp, TestServer, spawn_app, within},
    management_api::{ALL, call, token, token_from},
};

/// `(actor_type, actor_id, organization_id, result, details)` of every `access.denied` event.
type Denied = (String, Option<i64>, Option<i64>, String, Value);

fn denied_events(app: &TestApp) -> Vec<Denied> {
    audit_events::table
        .filter(audit_events::action.eq("access.denied"))
        .order(audit_events::id.asc())
        .select((
            audit_events::actor_type,
            audit_events::actor_id,
            audit_events::organization_id,
            audit_events::result,
            audit_events::details,
        ))
        .load(&mut *app.conn())
        .unwrap()
}

/// The id of the token whose secret is `secret` (`kw_mgmt_<public id>_…`).
fn token_id(app: &TestApp, secret: &str) -> i64 {
    use keyward::db::schema::management_tokens;
    let rows: Vec<(i64, String)> = management_tokens::table
        .select((management_tokens::id, management_tokens::public_id))
        .load(&mut *app.conn())
        .unwrap();
    rows.into_iter().find(|(_, public_id)| secret.contains(public_id.as_str())).expect("the token's row").0
}

/// Asserts the one new event is the token's refusal of `method path` for `reason`.
fn assert_denied(event: &Denied, token_id: i64, organization_id: i64, method: &str, path: &str, reason: &str) {
    let (actor_type, actor_id, organization, result, details) = event;
    assert_eq!(
        (actor_type.as_str(), *actor_id, *organization, result.as_str()),
        ("token", Some(token_id), Some(organization_id), "denied"),
        "{details}"
    );
    assert_eq!(
        (&details["method"], &details["path"], &details["reason"]),
        (&json!(method), &json!(path), &json!(reason))
    );
}

#[actix_web::test]
async fn a_token_refused_for_its_scope_or_its_creators_rights_is_in_the_audit_log_as_the_token() {
    let app = spawn_app().await;
    let (acme, admin) = fixtures::organization_with_admin(&mut app.conn(), "acme");
    let reader = token(&app, &admin, &["keys:read"]);
    let reader_id = token_id(&app, &reader);

    // Nothing for a 401 of made-up tokens, nor for a 404.
    for made_up in ["garbage", "kw_mgmt_garbage"] {
        let (status, _, _) = call(&app, Method::POST, "/api/v1/keys", made_up, Some(json!({ "name": "x" })), &[]).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(call(&app, Method::GET, "/api/v1/keys/AAAAAAAA", &reader, None, &[]).await.0, StatusCode::NOT_FOUND);
    assert_eq!(denied_events(&app), []);

    // A missing scope: 403, one event naming it; the refused key does not exist.
    let (status, _, _) = call(&app, Method::POST, "/api/v1/keys", &reader, Some(json!({ "name": "Nope" })), &[]).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let events = denied_events(&app);
    assert_eq!(events.len(), 1, "{events:?}");
    assert_denied(&events[0], reader_id, acme.id, "POST", "/api/v1/keys", "scope");
    assert_eq!(events[0].4["scope"], "keys:write");
    assert_eq!(events[0].4["token"]["creator_user_id"], admin.id);
    let keys: i64 = keyward::db::schema::api_keys::table.count().get_result(&mut *app.conn()).unwrap();
    assert_eq!(keys, 0);

    // Another token reads it back through the API, as the token.
    let auditor = token(&app, &admin, ALL);
    let (status, _, listed) =
        call(&app, Method::GET, "/api/v1/audit-events?action=access.denied", &auditor, None, &[]).await;
    assert_eq!(status, StatusCode::OK, "{listed}");
    assert_eq!(listed["data"].as_array().map(Vec::len), Some(1), "{listed}");

    // The creator loses the right to manage users: the token's next call is refused for it.
    fixtures::admin(&mut app.conn(), &acme, "second@acme.test");
    diesel::update(users::table.find(admin.id)).set(users::is_admin.eq(false)).execute(&mut *app.conn()).unwrap();
    let demoted = within(Duration::from_secs(5), async || {
        call(&app, Method::GET, "/api/v1/users", &auditor, None, &[]).await.0 == StatusCode::FORBIDDEN
    })
    .await;
    assert!(demoted, "users:read needs the creator to manage users");
    let events = denied_events(&app);
    let last = events.last().unwrap();
    assert_denied(last, token_id(&app, &auditor), acme.id, "GET", "/api/v1/users", "creator_rights");
    // A service's refusal (an organization key needs "Key: Manage") is the creator's rights too.
    let before = events.len();
    let (status, _, _) = call(&app, Method::POST, "/api/v1/keys", &auditor, Some(json!({ "name": "Org" })), &[]).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let events = denied_events(&app);
    assert_eq!(events.len(), before + 1);
    assert_denied(events.last().unwrap(), token_id(&app, &auditor), acme.id, "POST", "/api/v1/keys", "creator_rights");

    // No event carries a secret.
    for event in &events {
        let text = event.4.to_string();
        for secret in [&reader, &auditor] {
            let tail = secret.rsplit('_').next().unwrap();
            assert!(!text.contains(secret.as_str()) && !text.contains(tail), "{text}");
        }
    }
}

#[actix_web::test]
async fn a_token_used_from_outside_its_address_ranges_is_refused_audited_and_still_counted() {
    let app = spawn_app().await;
    let (acme, admin) = fixtures::organization_with_admin(&mut app.conn(), "acme");
    let office = token_from(&app, &admin, &["keys:read"], &["10.0.0.0/8"]);
    let (status, headers, problem) = call(&app, Method::GET, "/api/v1/keys", &office, None, &[]).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{problem}");
    // Counted against the token's rate limit, so refused calls cannot flood the log.
    assert!(headers.contains_key("ratelimit"), "{headers:?}");
    let events = denied_events(&app);
    assert_eq!(events.len(), 1, "{events:?}");
    assert_denied(&events[0], token_id(&app, &office), acme.id, "GET", "/api/v1/keys", "address");
    assert!(!events[0].4.to_string().contains(office.rsplit('_').next().unwrap()));

    // An event that cannot be written leaves the answer a 403 (the failure is only logged).
    let mut owner = PgConnection::establish(&TestServer::get().url(&app.database)).unwrap();
    diesel::sql_query(format!("REVOKE INSERT ON audit_events FROM {APP_ROLE}")).execute(&mut owner).unwrap();
    let (status, _, problem) = call(&app, Method::GET, "/api/v1/keys", &office, None, &[]).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{problem}");
    assert_eq!(denied_events(&app).len(), 1);
}
