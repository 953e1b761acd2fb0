//! The management API over HTTP: a token from `create-management-token` runs a key's whole
//! lifecycle (seen by the verification API, on a second instance too), every change is in the
//! audit log as the token; tokens are capped by their creator (at creation and at use), never
//! reach another tenant, and follow the conventions (problem+json, Idempotency-Key, ETag).

use std::time::Duration;

use diesel::{Connection, prelude::*};
use keyward::{
    db::{
        models::{User, management_token::TokenTenant},
        schema::{api_keys, audit_events, users},
    },
    domain::TokenScopes,
    secrets::MasterSecret,
    services::{
        Actor,
        keys::KeyName,
        management_tokens::{self, NewToken},
    },
};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::{
    cli::{SECRET, keyward, scratch_dir, text},
    fixtures::{self, UserBuilder},
    helpers::{SpawnOptions, TestApp, TestServer, http_client, spawn_app_with, within},
};

/// The app and a twin instance of the same deployment, sharing the CLI's master secret.
pub(crate) async fn deployment() -> (TestApp, TestApp) {
    let secret = MasterSecret::from_base64(SECRET).unwrap();
    let app = spawn_app_with(SpawnOptions { secret: Some(secret.clone()), ..SpawnOptions::default() }).await;
    let twin = spawn_app_with(SpawnOptions {
        database: Some(app.database.clone()),
        secret: Some(secret),
        ..SpawnOptions::default()
    })
    .await;
    (app, twin)
}

/// What a test asks the token service for: a token named "CI" with `scopes`, usable from
/// `cidrs` (empty: anywhere), for 30 days.
pub(crate) fn new_token(scopes: &[&str], cidrs: &[&str]) -> NewToken {
    NewToken {
        name: KeyName::parse("CI").unwrap(),
        scopes: TokenScopes::parse(scopes.iter().copied()).unwrap(),
        cidrs: cidrs.iter().map(|c| c.parse().unwrap()).collect(),
        lifetime_days: 30,
    }
}

/// A token of `creator` with `scopes`, made by the token service as the operator would.
pub(crate) fn token(app: &TestApp, creator: &User, scopes: &[&str]) -> String {
    token_from(app, creator, scopes, &[])
}

/// A token of `creator` with `scopes`, usable only from `cidrs` (empty: anywhere).
pub(crate) fn token_from(app: &TestApp, creator: &User, scopes: &[&str], cidrs: &[&str]) -> String {
    let (_, secret) = app
        .conn()
        .transaction(|conn| {
            let actor = Actor::system("create-management-token");
            let (organization_id, user_id) = (creator.organization_id, creator.id);
            management_tokens::create(conn, &actor, &app.hasher, organization_id, user_id, new_token(scopes, cidrs))
        })
        .unwrap();
    secret.expose().to_string()
}

pub(crate) const ALL: &[&str] = &["keys:read", "keys:write", "users:read", "users:access", "audit:read"];

/// One call of the management API: status, headers, JSON body (Null when empty).
pub(crate) async fn call(
    app: &TestApp,
    method: Method,
    path: &str,
    token: &str,
    body: Option<Value>,
    headers: &[(&str, &str)],
) -> (StatusCode, reqwest::header::HeaderMap, Value) {
    let mut request = http_client().request(method, app.url(path)).bearer_auth(token);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let (status, headers) = (response.status(), response.headers().clone());
    let body = response.json::<Value>().await.unwrap_or(Value::Null);
    (status, headers, body)
}

pub(crate) async fn verify(app: &TestApp, secret: &str) -> (StatusCode, Value) {
    let response =
        http_client().post(app.url("/api/v1/verify")).bearer_auth(secret).json(&json!({})).send().await.unwrap();
    (response.status(), response.json::<Value>().await.unwrap())
}

/// The actor type and details of every `key.*` event, oldest first.
fn key_events(app: &TestApp) -> Vec<(String, String, Value)> {
    audit_events::table
        .filter(audit_events::action.like("key.%"))
        .order(audit_events::id.asc())
        .select((audit_events::action, audit_events::actor_type, audit_events::details))
        .load(&mut *app.conn())
        .unwrap()
}

#[actix_web::test]
async fn a_token_from_the_cli_runs_a_keys_whole_lifecycle_and_every_call_is_audited_as_the_token() {
    let (app, twin) = deployment().await;
    let (acme, admin) = fixtures::organization_with_admin(&mut app.conn(), "acme");
    let url = TestServer::get().url(&app.database);
    let output = keyward(&scratch_dir("mgmt-token"))
        .env("DATABASE_URL", &url)
        .env("KEYWARD_SECRET", SECRET)
        .args(["create-management-token", "--org", "acme", "--name", "CI rotation", "--scopes"])
        .arg(ALL.join(","))
        .args(["--expires-in-days", "30"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{:?}", text(&output));
    let (stdout, stderr) = text(&output);
    let token = stdout.trim().to_string();
    assert!(stdout.lines().count() == 1 && token.starts_with("kw_mgmt_"), "only the token on stdout: {stdout:?}");
    assert!(!stderr.contains(&token), "the token is never logged");

    // Create an organization key (attributed to the token's creator by default).
    let (status, headers, created) = call(
        &app,
        Method::POST,
        "/api/v1/keys",
        &token,
        Some(json!({ "name": "Dispatch sync", "actions": ["positions.read"] })),
        &[],
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert!(headers.contains_key("ratelimit"), "{headers:?}");
    let id = created["id"].as_str().unwrap().to_string();
    let secret = created["secret"].as_str().unwrap().to_string();
    assert_eq!(created["owner"], json!({ "type": "organization", "id": acme.id }));
    assert_eq!(created["proxy_user_id"], json!(admin.id));
    assert_eq!(created["actions"], json!(["positions.read"]));
    assert_eq!(verify(&app, &secret).await.0, StatusCode::OK);
    assert_eq!(verify(&twin, &secret).await.0, StatusCode::OK, "now cached on the twin");

    // Re-key with an hour of grace: a new secret, and the old one rotates out.
    let path = format!("/api/v1/keys/{id}");
    let (status, _, rekeyed) =
        call(&app, Method::POST, &format!("{path}/rekey"), &token, Some(json!({ "grace_minutes": 60 })), &[]).await;
    assert_eq!(status, StatusCode::OK, "{rekeyed}");
    let new_secret = rekeyed["secret"].as_str().unwrap().to_string();
    assert_ne!(new_secret, secret);
    assert_eq!(rekeyed["rotating"], json!(true));
    // The instance's cache learns of the re-key from the change notice.
    let rotating = within(Duration::from_secs(5), async || {
        let (status, old) = verify(&app, &secret).await;
        status == StatusCode::OK && old["rotating"] == json!(true)
    })
    .await;
    assert!(rotating, "the old secret works during its grace period, marked as rotating");
    assert_eq!(verify(&app, &new_secret).await.0, StatusCode::OK);
    let (status, _, ended) = call(&app, Method::POST, &format!("{path}/end-grace"), &token, None, &[]).await;
    assert_eq!((status, &ended["rotating"]), (StatusCode::OK, &json!(false)));
    let ended =
        within(Duration::from_secs(5), async || verify(&app, &secret).await.0 == StatusCode::UNAUTHORIZED).await;
    assert!(ended, "the old secret ended");
    assert_eq!(verify(&twin, &new_secret).await.0, StatusCode::OK);

    // Deactivate: the twin refuses the key once the change notice arrives.
    let (status, _, deactivated) = call(
        &app,
        Method::POST,
        &format!("{path}/deactivate"),
        &token,
        Some(json!({ "reason": "Rotating the CI" })),
        &[],
    )
    .await;
    assert_eq!((status, &deactivated["active"]), (StatusCode::OK, &json!(false)));
    let deadline = keyward::keys::verifier::cache::COHERENCE_WINDOW - Duration::from_secs(1);
    let refused = within(deadline, async || {
        let (status, body) = verify(&twin, &new_secret).await;
        status == StatusCode::UNAUTHORIZED && body["code"] == json!("DISABLED")
    })
    .await;
    assert!(refused, "the second instance refuses the deactivated key");
    let (status, _, reactivated) = call(&app, Method::POST, &format!("{path}/reactivate"), &token, None, &[]).await;
    assert_eq!((status, &reactivated["active"]), (StatusCode::OK, &json!(true)));

    // Delete: gone for the API and for verification.
    let (status, _, _) = call(&app, Method::DELETE, &path, &token, None, &[]).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(call(&app, Method::GET, &path, &token, None, &[]).await.0, StatusCode::NOT_FOUND);
    let gone =
        within(Duration::from_secs(5), async || verify(&app, &new_secret).await.1["code"] == json!("NOT_FOUND")).await;
    assert!(gone, "a deleted key stops working");

    // Every change is the token's, naming its creator.
    let events = key_events(&app);
    let actions: Vec<&str> = events.iter().map(|(a, ..)| a.as_str()).collect();
    assert_eq!(
        actions,
        ["key.create", "key.rekey", "key.end_grace", "key.deactivate", "key.reactivate", "key.delete"],
        "{events:?}"
    );
    for (action, actor, details) in &events {
        assert_eq!(actor, "token", "{action}");
        assert_eq!(details["token"]["creator"], json!(admin.email), "{action}: {details}");
    }
    // …and the audit log reads back through the API.
    let (status, _, log) = call(&app, Method::GET, "/api/v1/audit-events?action=key.&limit=2", &token, None, &[]).await;
    assert_eq!(status, StatusCode::OK, "{log}");
    assert_eq!(log["data"][0]["action"], json!("key.delete"));
    assert_eq!(log["data"][0]["actor"]["type"], json!("token"));
    let next = log["next_cursor"].as_str().unwrap();
    let (_, _, page) =
        call(&app, Method::GET, &format!("/api/v1/audit-events?action=key.&limit=10&cursor={next}"), &token, None, &[])
            .await;
    assert_eq!(page["data"].as_array().unwrap().len(), 4, "the rest, without repeats: {page}");
}

#[actix_web::test]
async fn a_token_never_passes_verification_and_a_key_never_opens_the_management_api() {
    let (app, _twin) = deployment().await;
    let (_, admin) = fixtures::organization_with_admin(&mut app.conn(), "acme");
    let token = token(&app, &admin, ALL);
    let (status, body) = verify(&app, &token).await;
    assert_eq!((status, &body["code"]), (StatusCode::UNAUTHORIZED, &json!("NOT_FOUND")));
    let (_, key) = fixtures::keys::organization(&mut app.conn(), &app.hasher, &admin, "Platform");
    let (status, headers, problem) = call(&app, Method::GET, "/api/v1/keys", &key, None, &[]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(headers["content-type"], "application/problem+json");
    assert_eq!(problem["status"], json!(401));
    assert_eq!(call(&app, Method::GET, "/api/v1/keys", "", None, &[]).await.0, StatusCode::UNAUTHORIZED);
    // The token itself works, and says how much of its quota is left.
    let (status, headers, _) = call(&app, Method::GET, "/api/v1/keys", &token, None, &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert!(headers["ratelimit-policy"].to_str().unwrap().contains("w=60"));
    assert!(headers["ratelimit"].to_str().unwrap().contains(";r="));
}

#[actix_web::test]
async fn a_revoked_token_is_refused_on_another_instance_and_a_leak_report_revokes_one() {
    let (app, twin) = deployment().await;
    let (acme, admin) = fixtures::organization_with_admin(&mut app.conn(), "acme");
    let token = token(&app, &admin, &["keys:read"]);
    assert_eq!(call(&twin, Method::GET, "/api/v1/keys", &token, None, &[]).await.0, StatusCode::OK, "cached");
    let public_id = &token[8..16];
    app.conn()
        .transaction(|conn| {
            management_tokens::revoke(conn, &Actor::system("test"), TokenTenant::Organization(acme.id), public_id)
        })
        .unwrap();
    let deadline = keyward::keys::verifier::cache::COHERENCE_WINDOW - Duration::from_secs(1);
    let refused = within(deadline, async || {
        call(&twin, Method::GET, "/api/v1/keys", &token, None, &[]).await.0 == StatusCode::UNAUTHORIZED
    })
    .await;
    assert!(refused, "the twin drops the revoked token");

    let leaked = self::token(&app, &admin, &["keys:read"]);
    assert_eq!(call(&twin, Method::GET, "/api/v1/keys", &leaked, None, &[]).await.0, StatusCode::OK);
    let response = http_client()
        .post(app.url("/api/v1/leaks"))
        .json(&json!([{ "token": leaked, "type": "keyward_management_token", "url": "https://gist.example/1" }]))
        .send()
        .await
        .unwrap();
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer[0]["label"], json!("true_positive"));
    let refused = within(deadline, async || {
        call(&twin, Method::GET, "/api/v1/keys", &leaked, None, &[]).await.0 == StatusCode::UNAUTHORIZED
    })
    .await;
    assert!(refused, "a reported token is revoked everywhere");
    assert_eq!(crate::helpers::audit_count(&app, "management_token.revoke"), 2);
}

#[actix_web::test]
async fn tokens_are_capped_by_their_scopes_and_their_creators_rights_at_creation_and_at_use() {
    let (app, _twin) = deployment().await;
    let mut conn = app.conn();
    let (acme, admin) = fixtures::organization_with_admin(&mut conn, "acme");
    let globex = fixtures::organization_with_admin(&mut conn, "globex").1;
    let member = fixtures::key_owner(&mut conn, &acme, "member@acme.test");
    let (globex_key, _) = fixtures::keys::organization(&mut conn, &app.hasher, &globex, "Theirs");
    let (acme_key, _) = fixtures::keys::organization(&mut conn, &app.hasher, &admin, "Ours");
    drop(conn);

    // At creation: nothing beyond the creator's permissions.
    let refused = app.conn().transaction(|conn| {
        management_tokens::create(
            conn,
            &Actor::system("test"),
            &app.hasher,
            acme.id,
            member.id,
            NewToken {
                name: KeyName::parse("Too much").unwrap(),
                scopes: TokenScopes::parse(["keys:write", "users:read"]).unwrap(),
                cidrs: vec![],
                lifetime_days: 30,
            },
        )
    });
    assert!(
        matches!(refused, Err(keyward::error::AppError::Invalid(ref e)) if e.get("scopes").is_some()),
        "{refused:?}"
    );

    // Scope × operation.
    let reader = token(&app, &admin, &["keys:read"]);
    let body = json!({ "name": "Nope" });
    assert_eq!(
        call(&app, Method::POST, "/api/v1/keys", &reader, Some(body.clone()), &[]).await.0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(call(&app, Method::GET, "/api/v1/users", &reader, None, &[]).await.0, StatusCode::FORBIDDEN);
    assert_eq!(call(&app, Method::GET, "/api/v1/audit-events", &reader, None, &[]).await.0, StatusCode::FORBIDDEN);
    let ours = format!("/api/v1/keys/{}", acme_key.public_id);
    assert_eq!(call(&app, Method::GET, &ours, &reader, None, &[]).await.0, StatusCode::OK);
    assert_eq!(call(&app, Method::DELETE, &ours, &reader, None, &[]).await.0, StatusCode::FORBIDDEN);

    // Tenant: another organization's key is "not found", exactly like a missing one.
    let writer = token(&app, &admin, ALL);
    for path in [format!("/api/v1/keys/{}", globex_key.public_id), "/api/v1/keys/AAAAAAAA".to_string()] {
        for (method, body) in
            [(Method::GET, None), (Method::PATCH, Some(json!({ "name": "Mine" }))), (Method::DELETE, None)]
        {
            let (status, _, problem) = call(&app, method.clone(), &path, &writer, body, &[]).await;
            assert_eq!(
                (status, &problem["detail"]),
                (StatusCode::NOT_FOUND, &json!("There is no such resource.")),
                "{method} {path}"
            );
        }
    }
    let (_, _, listed) = call(&app, Method::GET, "/api/v1/keys", &writer, None, &[]).await;
    let ids: Vec<&str> = listed["data"].as_array().unwrap().iter().map(|k| k["id"].as_str().unwrap()).collect();
    assert_eq!(ids, [acme_key.public_id.as_str()]);

    // Creator's ceiling at use: a member with API key access but no "Key: Manage" creates
    // their own keys through a token, not the organization's.
    let own = token(&app, &member, &["keys:read", "keys:write"]);
    let (status, _, _) = call(&app, Method::POST, "/api/v1/keys", &own, Some(json!({ "name": "Org key" })), &[]).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _, personal) = call(
        &app,
        Method::POST,
        "/api/v1/keys",
        &own,
        Some(json!({ "name": "Mine", "owner": { "type": "user", "id": member.id } })),
        &[],
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{personal}");
    assert_eq!(call(&app, Method::GET, &ours, &own, None, &[]).await.0, StatusCode::NOT_FOUND, "not theirs to see");

    // The creator is demoted: the same token loses what the rights gave, at once.
    assert_eq!(call(&app, Method::GET, "/api/v1/users", &writer, None, &[]).await.0, StatusCode::OK);
    fixtures::admin(&mut app.conn(), &acme, "second@acme.test");
    diesel::update(users::table.find(admin.id)).set(users::is_admin.eq(false)).execute(&mut *app.conn()).unwrap();
    let demoted = within(Duration::from_secs(5), async || {
        call(&app, Method::GET, "/api/v1/users", &writer, None, &[]).await.0 == StatusCode::FORBIDDEN
    })
    .await;
    assert!(demoted, "users:read needs the creator to manage users");
    let (status, _, _) = call(&app, Method::POST, "/api/v1/keys", &writer, Some(json!({ "name": "After" })), &[]).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "no longer allowed to create organization keys");
    assert_eq!(call(&app, Method::DELETE, &ours, &writer, None, &[]).await.0, StatusCode::NOT_FOUND);
    // Deactivated: the token is powerless.
    diesel::update(users::table.find(member.id)).set(users::active.eq(false)).execute(&mut *app.conn()).unwrap();
    let dead = within(Duration::from_secs(5), async || {
        call(&app, Method::GET, "/api/v1/keys", &own, None, &[]).await.0 == StatusCode::UNAUTHORIZED
    })
    .await;
    assert!(dead, "a deactivated creator's token is refused");
    assert_eq!(api_keys::table.count().get_result::<i64>(&mut *app.conn()).unwrap(), 3);
}

#[actix_web::test]
async fn idempotency_keys_replay_the_first_answer_without_the_secret() {
    let (app, _twin) = deployment().await;
    let (_, admin) = fixtures::organization_with_admin(&mut app.conn(), "acme");
    let token = token(&app, &admin, ALL);
    let body = json!({ "name": "Once", "actions": ["positions.read"] });
    let headers = [("Idempotency-Key", "8e0b1c8e-create")];
    let (status, _, first) = call(&app, Method::POST, "/api/v1/keys", &token, Some(body.clone()), &headers).await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    assert!(first["secret"].as_str().is_some_and(|s| s.starts_with("kw_live_")));
    let (status, replay_headers, again) = call(&app, Method::POST, "/api/v1/keys", &token, Some(body), &headers).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(replay_headers["idempotency-replayed"], "true");
    assert_eq!(again["id"], first["id"]);
    assert_eq!(again["secret"], Value::Null);
    assert!(again["notice"].as_str().unwrap().contains("not shown again"));
    assert_eq!(api_keys::table.count().get_result::<i64>(&mut *app.conn()).unwrap(), 1, "one key");
    // The same request spelt differently by another JSON library is the same retry.
    let respelt = http_client()
        .post(app.url("/api/v1/keys"))
        .bearer_auth(&token)
        .header("Idempotency-Key", "8e0b1c8e-create")
        .header("Content-Type", "application/json")
        .body(r#"{ "actions" : [ "positions.read" ], "name" : "Once" }"#)
        .send()
        .await
        .unwrap();
    assert_eq!(respelt.headers()["idempotency-replayed"], "true");
    assert_eq!(respelt.json::<Value>().await.unwrap()["id"], first["id"]);
    let (status, _, problem) =
        call(&app, Method::POST, "/api/v1/keys", &token, Some(json!({ "name": "Other" })), &headers).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(problem["errors"][0]["field"], "Idempotency-Key");

    // A re-key retried is not a second secret.
    let rekey = format!("/api/v1/keys/{}/rekey", first["id"].as_str().unwrap());
    let headers = [("Idempotency-Key", "rekey-1")];
    let (_, _, one) = call(&app, Method::POST, &rekey, &token, Some(json!({ "grace_minutes": 0 })), &headers).await;
    let (_, _, two) = call(&app, Method::POST, &rekey, &token, Some(json!({ "grace_minutes": 0 })), &headers).await;
    assert!(one["secret"].is_string() && two["secret"].is_null(), "{one} {two}");
    assert_eq!(crate::helpers::audit_count(&app, "key.rekey"), 1);

    // A token that may write but not read gets its first answer again too.
    let writer = self::token(&app, &admin, &["keys:write"]);
    let headers = [("Idempotency-Key", "write-only-1")];
    let body = json!({ "name": "Writer's", "actions": ["positions.read"] });
    let (status, _, first) = call(&app, Method::POST, "/api/v1/keys", &writer, Some(body.clone()), &headers).await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    let (status, replay_headers, again) = call(&app, Method::POST, "/api/v1/keys", &writer, Some(body), &headers).await;
    assert_eq!((status, &replay_headers["idempotency-replayed"]), (StatusCode::CREATED, &"true".parse().unwrap()));
    assert_eq!((&again["id"], &again["secret"]), (&first["id"], &Value::Null));

    // A retry is answered under the creator's rights as they are now: once they may no
    // longer see the key, the stored answer is not given again.
    diesel::update(users::table.find(admin.id)).set(users::is_admin.eq(false)).execute(&mut *app.conn()).unwrap();
    let body = json!({ "name": "Once", "actions": ["positions.read"] });
    let headers = [("Idempotency-Key", "8e0b1c8e-create")];
    let (status, replay_headers, problem) =
        call(&app, Method::POST, "/api/v1/keys", &token, Some(body), &headers).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{problem}");
    assert!(replay_headers.get("idempotency-replayed").is_none() && problem.get("secret").is_none());
    let headers = [("Idempotency-Key", "rekey-1")];
    let (status, _, _) = call(&app, Method::POST, &rekey, &token, Some(json!({ "grace_minutes": 0 })), &headers).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[actix_web::test]
async fn reads_carry_an_etag_and_a_stale_if_match_is_refused() {
    let (app, _twin) = deployment().await;
    let (_, admin) = fixtures::organization_with_admin(&mut app.conn(), "acme");
    let (key, _) = fixtures::keys::organization(&mut app.conn(), &app.hasher, &admin, "Tagged");
    let token = token(&app, &admin, ALL);
    let path = format!("/api/v1/keys/{}", key.public_id);
    let (status, headers, _) = call(&app, Method::GET, &path, &token, None, &[]).await;
    assert_eq!(status, StatusCode::OK);
    let etag = headers["etag"].to_str().unwrap().to_string();
    let rename = json!({ "name": "Renamed", "comment": "Nightly sync" });
    let (status, _, problem) =
        call(&app, Method::PATCH, &path, &token, Some(rename.clone()), &[("If-Match", "\"stale\"")]).await;
    assert_eq!((status, &problem["status"]), (StatusCode::PRECONDITION_FAILED, &json!(412)));
    let (status, headers, changed) =
        call(&app, Method::PATCH, &path, &token, Some(rename), &[("If-Match", &etag)]).await;
    assert_eq!(status, StatusCode::OK, "{changed}");
    assert_eq!((&changed["name"], &changed["comment"]), (&json!("Renamed"), &json!("Nightly sync")));
    assert_ne!(headers["etag"].to_str().unwrap(), etag);
    let (status, _, _) =
        call(&app, Method::PATCH, &path, &token, Some(json!({ "name": "Again" })), &[("If-Match", &etag)]).await;
    assert_eq!(status, StatusCode::PRECONDITION_FAILED, "the old validator no longer matches");
}

#[actix_web::test]
async fn bad_input_is_a_problem_with_field_errors() {
    let (app, _twin) = deployment().await;
    let (_, admin) = fixtures::organization_with_admin(&mut app.conn(), "acme");
    let token = token(&app, &admin, ALL);
    let (status, headers, problem) = call(
        &app,
        Method::POST,
        "/api/v1/keys",
        &token,
        Some(json!({ "name": "", "allowed_ips": ["300.1.1.1"], "actions": ["no.such.action"] })),
        &[],
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(headers["content-type"], "application/problem+json");
    let fields: Vec<&str> =
        problem["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
    assert!(fields.contains(&"name") && fields.contains(&"allowed_ips"), "{problem}");
    let (status, _, problem) = call(
        &app,
        Method::POST,
        "/api/v1/keys",
        &token,
        Some(json!({ "name": "Ok", "actions": ["no.such.action"] })),
        &[],
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(problem["errors"][0]["field"], "actions", "{problem}");
    let response = http_client()
        .post(app.url("/api/v1/keys"))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(response.headers()["content-type"], "application/problem+json");
    assert_eq!(api_keys::table.count().get_result::<i64>(&mut *app.conn()).unwrap(), 0);
}

#[actix_web::test]
async fn a_token_grants_and_revokes_api_key_access_as_its_creator() {
    let (app, _twin) = deployment().await;
    let (acme, admin) = fixtures::organization_with_admin(&mut app.conn(), "acme");
    let member = UserBuilder::new(&acme, "member@acme.test").insert(&mut app.conn());
    let token = token(&app, &admin, &["users:read", "users:access"]);
    let (status, _, listed) = call(&app, Method::GET, "/api/v1/users?limit=1", &token, None, &[]).await;
    assert_eq!(status, StatusCode::OK);
    let cursor = listed["next_cursor"].as_str().unwrap();
    let (_, _, rest) = call(&app, Method::GET, &format!("/api/v1/users?cursor={cursor}"), &token, None, &[]).await;
    assert_eq!(rest["data"][0]["email"], json!("member@acme.test"));
    let path = format!("/api/v1/users/{}/api-key-access", member.id);
    let (status, _, user) = call(&app, Method::PUT, &path, &token, Some(json!({ "granted": true })), &[]).await;
    assert_eq!((status, &user["api_key_access"]), (StatusCode::OK, &json!(true)), "{user}");
    let actor: String = audit_events::table
        .filter(audit_events::action.eq("user.api_key_access_grant"))
        .select(audit_events::actor_type)
        .first(&mut *app.conn())
        .unwrap();
    assert_eq!(actor, "token");
    let other = fixtures::organization_with_admin(&mut app.conn(), "globex").1;
    let path = format!("/api/v1/users/{}/api-key-access", other.id);
    assert_eq!(
        call(&app, Method::PUT, &path, &token, Some(json!({ "granted": false })), &[]).await.0,
        StatusCode::NOT_FOUND
    );
}

#[actix_web::test]
async fn administrators_create_a_token_in_the_browser_after_proving_it_is_them_see_it_once_and_revoke_it() {
    use keyward::db::schema::management_tokens;
    let app = crate::helpers::spawn_app().await;
    let (acme, admin) = fixtures::organization_with_admin(&mut app.conn(), "acme");
    let manager = fixtures::key_manager(&mut app.conn(), &acme, "keys@acme.test", &[]);
    let client = app.signed_in(&admin.email).await;
    let list = client.open("/admin/api-access").await;
    assert_eq!(list.status, StatusCode::OK);
    assert!(list.has("a[href='/admin/api-access/new']"));
    let form = client.open("/admin/api-access/new").await;
    assert!(form.has_form("/admin/api-access") && form.has("input[name=scopes][value='keys:write']"), "{form}");

    let form_token = form.select("input[name=form_token]").value().unwrap();
    let fields = [
        ("name", "CI rotation"),
        ("scopes", "keys:read"),
        ("scopes", "keys:write"),
        ("expires_in_days", "30"),
        ("allowed_ips", ""),
        ("form_token", form_token.as_str()),
    ];
    let response = client.post("/admin/api-access", &fields).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers()["cache-control"].to_str().unwrap().contains("no-store"));
    let shown = crate::page::Page::new(StatusCode::OK, response.text().await.unwrap());
    let token = shown.select("textarea#new-token").value().unwrap_or_default().trim().to_string();
    assert!(token.starts_with("kw_mgmt_"), "{shown}");
    assert_eq!(call(&app, Method::GET, "/api/v1/keys", &token, None, &[]).await.0, StatusCode::OK);
    // Listed, masked: never shown again.
    let list = client.open("/admin/api-access").await;
    let public_id = &token[8..16];
    assert!(list.has(&format!("tr[data-token='{public_id}']")) && !list.body.contains(&token));
    assert!(list.has(".flash-success") && list.says("Created the token \"CI rotation\"."), "{list}");
    // The row says whom the token acts as and where it may be used from.
    let row = list.select(&format!("tr[data-token='{public_id}'] td")).texts();
    assert!(row.contains(&admin.display_name) && row.iter().any(|cell| cell == "Any address"), "{row:?}");
    assert_eq!(crate::helpers::audit_count(&app, "management_token.create"), 1);
    // Submitting the same form again (refresh, back) creates nothing and shows nothing.
    let replay = client.post("/admin/api-access", &fields).await;
    assert_eq!(crate::helpers::location(&replay), "/admin/api-access");
    assert_eq!(crate::helpers::audit_count(&app, "management_token.create"), 1);

    // Forms open in two tabs each create their own token.
    let first_tab = client.open("/admin/api-access/new").await.select("input[name=form_token]").value().unwrap();
    let second_tab = client.open("/admin/api-access/new").await.select("input[name=form_token]").value().unwrap();
    for (name, tab) in [("First tab", &first_tab), ("Second tab", &second_tab)] {
        let fields = [("name", name), ("scopes", "keys:read"), ("allowed_ips", "10.0.0.0/8"), ("form_token", tab)];
        assert_eq!(client.post("/admin/api-access", &fields).await.status(), StatusCode::OK, "{name}");
    }
    assert_eq!(crate::helpers::audit_count(&app, "management_token.create"), 3);
    assert!(client.open("/admin/api-access").await.select("td").texts().contains(&"10.0.0.0/8".to_string()));

    // Bad input: the form again with the field errors, nothing created.
    let form = client.open("/admin/api-access/new").await;
    let form_token = form.select("input[name=form_token]").value().unwrap();
    let response = client
        .post("/admin/api-access", &[("name", ""), ("expires_in_days", "900"), ("form_token", &form_token)])
        .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let again = crate::page::Page::new(StatusCode::UNPROCESSABLE_ENTITY, response.text().await.unwrap());
    assert!(again.has("#token-name-error") && again.has("#token-scopes-error") && again.has("#token-expires-error"));
    // The scopes' error is tied to the group and to its first box, which takes the focus.
    assert!(again.has("fieldset[aria-describedby='token-scopes-error']"), "{again}");
    let first_scope = again.select("input[name=scopes]");
    assert_eq!(first_scope.attr("aria-invalid").as_deref(), Some("true"));
    assert_eq!(first_scope.attr("aria-describedby").as_deref(), Some("token-scopes-error"));

    // Revoke, after a confirmation: refused at once.
    let confirm = client.open(&format!("/admin/api-access/{public_id}/revoke")).await;
    assert!(confirm.has_form(&format!("/admin/api-access/{public_id}/revoke")));
    let response = client.post(&format!("/admin/api-access/{public_id}/revoke"), &[]).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(call(&app, Method::GET, "/api/v1/keys", &token, None, &[]).await.0, StatusCode::UNAUTHORIZED);
    assert!(client.open("/admin/api-access").await.says("Revoked the token \"CI rotation\"."));
    // A revoked token is not offered for revocation again, and a second submission says so.
    let again = client.get(&format!("/admin/api-access/{public_id}/revoke")).await;
    assert_eq!(crate::helpers::location(&again), "/admin/api-access");
    client.post(&format!("/admin/api-access/{public_id}/revoke"), &[]).await;
    let list = client.open("/admin/api-access").await;
    assert!(list.has(".flash-info") && list.says("The token \"CI rotation\" was already revoked"), "{list}");
    assert_eq!(crate::helpers::audit_count(&app, "management_token.revoke"), 1);

    // Sudo mode: a sign-in older than ten minutes must be confirmed first.
    app.advance(Duration::from_secs(11 * 60));
    let response = client.get("/admin/api-access/new").await;
    assert!(crate::helpers::location(&response).starts_with("/account/confirm?next="), "{response:?}");
    let response = client.post("/admin/api-access", &fields).await;
    assert!(crate::helpers::location(&response).starts_with("/account/confirm?next="));
    assert_eq!(management_tokens::table.count().get_result::<i64>(&mut *app.conn()).unwrap(), 3);

    // Only administrators.
    let other = app.signed_in(&manager.email).await;
    assert_eq!(other.get("/admin/api-access").await.status(), StatusCode::FORBIDDEN);
}

#[actix_web::test]
async fn a_keys_usage_reads_back_its_verifications_by_day() {
    let (app, _twin) = deployment().await;
    let (_, admin) = fixtures::organization_with_admin(&mut app.conn(), "acme");
    let (key, secret) = fixtures::keys::organization(&mut app.conn(), &app.hasher, &admin, "Busy");
    for _ in 0..3 {
        assert_eq!(verify(&app, &secret).await.0, StatusCode::OK);
    }
    app.state.verifier.flush_usage().await.unwrap();
    let token = token(&app, &admin, &["keys:read"]);
    let path = format!("/api/v1/keys/{}/usage?days=7", key.public_id);
    let (status, _, usage) = call(&app, Method::GET, &path, &token, None, &[]).await;
    assert_eq!(status, StatusCode::OK, "{usage}");
    let valid: i64 = usage["daily"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["code"] == json!("VALID"))
        .map(|d| d["count"].as_i64().unwrap())
        .sum();
    assert_eq!(valid, 3, "{usage}");
    assert_eq!(usage["addresses"][0]["address"], json!("127.0.0.1"));
    let bad = format!("/api/v1/keys/{}/usage?days=0", key.public_id);
    assert_eq!(call(&app, Method::GET, &bad, &token, None, &[]).await.0, StatusCode::UNPROCESSABLE_ENTITY);
}
