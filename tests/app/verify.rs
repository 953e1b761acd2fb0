//! The verification API: every code and status, grace periods, attribution, throttling,
//! leak reports, last access, cache coherence across instances, and failing closed.

use std::time::{Duration, Instant};

use diesel::prelude::*;
use keyward::{
    db::{
        models::{
            ApiKey, AuditEvent, User,
            api_key::NewApiKey,
            asset::{Asset, AssetGroup},
        },
        schema::{api_keys, audit_events, users},
    },
    keys::{Environment, GeneratedKey},
    services::{
        Actor,
        keys::{AssetScope, NewKeyOwner, lifecycle},
    },
};
use reqwest::{Response, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{SpawnOptions, TestApp, fixtures, http_client, keys, spawn_app_with, user, within};

/// POSTs to /api/v1/verify with `key` as the bearer token and `body` as JSON.
async fn verify(app: &TestApp, key: &str, body: Value) -> (StatusCode, Value, reqwest::header::HeaderMap) {
    let response = http_client().post(app.url("/api/v1/verify")).bearer_auth(key).json(&body).send().await.unwrap();
    split(response).await
}

async fn split(response: Response) -> (StatusCode, Value, reqwest::header::HeaderMap) {
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.json::<Value>().await.unwrap_or(Value::Null);
    (status, body, headers)
}

struct Acme {
    app: TestApp,
    bob: User,
    proxy: User,
}

async fn acme_with(options: SpawnOptions) -> Acme {
    let app = spawn_app_with(options).await;
    let mut conn = app.conn();
    let org = fixtures::organization(&mut conn, "acme");
    let bob = fixtures::reader(&mut conn, &org, "bob@acme.test");
    let proxy = fixtures::inactive_proxy(&mut conn, &org, "proxy@acme.test");
    drop(conn);
    Acme { app, bob, proxy }
}

async fn acme() -> Acme {
    acme_with(SpawnOptions::default()).await
}

#[actix_web::test]
async fn a_valid_key_is_described_and_attributed() {
    let Acme { app, bob, proxy } = acme().await;
    let (key, secret) = keys::personal(&mut app.conn(), &app.hasher, &bob, "Dispatch");
    let (status, body, headers) = verify(&app, &secret, json!({ "action": "positions.read" })).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["valid"], json!(true));
    assert_eq!(body["code"], json!("VALID"));
    assert_eq!(body["key_id"], json!(key.public_id));
    assert_eq!(body["name"], json!("Dispatch"));
    assert_eq!(body["owner"], json!({ "type": "user", "id": bob.id.to_string() }));
    assert_eq!(body["organization_id"], json!(bob.organization_id.to_string()));
    assert_eq!(body["attribute_to"], json!({ "user_id": bob.id.to_string(), "key_name": "Dispatch" }));
    assert_eq!(body["actions"], json!(["positions.read"]));
    assert_eq!(body["assets"], json!("all"));
    assert_eq!(body["rotating"], json!(false));
    assert!(body["expires_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(headers.get("cache-control").unwrap(), "no-store");

    // An organization key is attributed to its proxy, even an inactive one.
    let (_, org_secret) = keys::organization(&mut app.conn(), &app.hasher, &proxy, "Bridge");
    let (status, body, _) = verify(&app, &org_secret, json!({})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["owner"]["type"], json!("organization"));
    assert_eq!(body["attribute_to"]["user_id"], json!(proxy.id.to_string()));
    assert_eq!(body["actions"], json!("all"));

    // /me says the same about the key.
    let me = http_client().get(app.url("/api/v1/me")).bearer_auth(&secret).send().await.unwrap();
    let (status, body, _) = split(me).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["key_id"], json!(key.public_id));
}

#[actix_web::test]
async fn unknown_malformed_and_deleted_keys_are_not_found() {
    let Acme { app, bob, .. } = acme().await;
    let (key, secret) = keys::personal(&mut app.conn(), &app.hasher, &bob, "Doomed");
    let unknown = GeneratedKey::generate(Environment::Live);
    let mut bad_checksum = secret.clone();
    bad_checksum.pop();
    bad_checksum.push(if secret.ends_with('A') { 'B' } else { 'A' });
    let wrong_secret = GeneratedKey::with_public_id(Environment::Live, &key.public_id);
    for candidate in [
        unknown.expose(),
        "not a key",
        "",
        &bad_checksum,
        wrong_secret.expose(),
        &secret.replace("kw_live_", "kw_test_"),
    ] {
        let (status, body, headers) = verify(&app, candidate, json!({})).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{candidate:?}");
        assert_eq!(
            body,
            json!({ "valid": false, "code": "NOT_FOUND", "message": "The key is unknown, malformed or deleted." })
        );
        assert!(headers.get("www-authenticate").is_some());
    }
    // No header at all, or the key in the URL, is the same as no key.
    let response = http_client().post(app.url(&format!("/api/v1/verify?key={secret}"))).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let response =
        http_client().post(app.url("/api/v1/verify")).basic_auth(&secret, None::<&str>).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);

    lifecycle::delete(&mut app.conn(), &Actor::system("test"), keys::at(&key)).unwrap();
    assert_eq!(eventually(&app, &secret, "NOT_FOUND").await, "NOT_FOUND");
}

#[actix_web::test]
async fn expired_and_disabled_keys_are_refused() {
    let Acme { app, bob, proxy } = acme().await;
    let mut settings = keys::settings(Some(&["positions.read"]));
    // Expiry dates are days: the key works until the end of today (UTC).
    settings.expiry = keyward::services::keys::ExpiryChoice::On(app.now().date_naive());
    let owner = NewKeyOwner::Personal { user_id: bob.id, organization_id: bob.organization_id };
    let (expired, expired_secret) = keys::create(&mut app.conn(), &app.hasher, owner, "Expired", settings);
    assert_eq!(verify(&app, &expired_secret, json!({})).await.0, StatusCode::OK, "valid until the end of today");
    app.advance(Duration::from_secs(24 * 3600));
    let (status, body, _) = verify(&app, &expired_secret, json!({})).await;
    assert_eq!((status, body["code"].clone()), (StatusCode::UNAUTHORIZED, json!("EXPIRED")));
    assert_eq!(body["key_id"], json!(expired.public_id), "the holder learns which key it is");

    let (off, off_secret) = keys::personal(&mut app.conn(), &app.hasher, &bob, "Off");
    lifecycle::set_active(&mut app.conn(), &Actor::system("test"), keys::at(&off), false, None).unwrap();
    let (status, body, _) = verify(&app, &off_secret, json!({})).await;
    assert_eq!((status, body["code"].clone()), (StatusCode::UNAUTHORIZED, json!("DISABLED")));

    // The owner loses API key access: personal keys stop; organization keys keep working
    // through their proxy (whose state does not matter).
    let (_, personal) = keys::personal(&mut app.conn(), &app.hasher, &bob, "Personal");
    let (_, organization) = keys::organization(&mut app.conn(), &app.hasher, &proxy, "Org");
    assert_eq!(verify(&app, &personal, json!({})).await.0, StatusCode::OK);
    diesel::update(users::table.find(bob.id)).set(users::api_key_access.eq(false)).execute(&mut *app.conn()).unwrap();
    assert_eq!(eventually(&app, &personal, "DISABLED").await, "DISABLED", "lost access stops personal keys");
    diesel::update(users::table.find(bob.id)).set(users::api_key_access.eq(true)).execute(&mut *app.conn()).unwrap();
    assert_eq!(eventually(&app, &personal, "VALID").await, "VALID", "regained access restores them");
    diesel::update(users::table.find(bob.id)).set(users::active.eq(false)).execute(&mut *app.conn()).unwrap();
    assert_eq!(eventually(&app, &personal, "DISABLED").await, "DISABLED", "a deactivated owner's keys stop");
    assert_eq!(verify(&app, &organization, json!({})).await.0, StatusCode::OK);
}

/// Verifies `secret` until its key stays in the cache: the fixtures' change notices arrive
/// asynchronously and may evict a fresh entry.
async fn cache_settled(app: &TestApp, key: &ApiKey, secret: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        assert_eq!(verify(app, secret, json!({})).await.0, StatusCode::OK);
        actix_web::rt::time::sleep(Duration::from_millis(100)).await;
        if matches!(app.state.verifier.cache.get(&key.public_id), keyward::keys::verifier::cache::Lookup::Found(_)) {
            return;
        }
        assert!(Instant::now() < deadline, "the key gets cached");
    }
}

/// Polls verification of `secret` until it answers `code` (cache invalidation is
/// asynchronous); returns the last code seen, after at most a generous deadline.
async fn eventually(app: &TestApp, secret: &str, code: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, body, _) = verify(app, secret, json!({})).await;
        let seen = body["code"].as_str().unwrap_or_default().to_string();
        if seen == code || Instant::now() > deadline {
            return seen;
        }
        actix_web::rt::time::sleep(Duration::from_millis(10)).await;
    }
}

#[actix_web::test]
async fn actions_assets_and_addresses_are_enforced() {
    let Acme { app, bob, .. } = acme().await;
    let mut conn = app.conn();
    let t1 = Asset::insert(&mut conn, bob.organization_id, "TRK-1", "Truck 1").unwrap();
    let t2 = Asset::insert(&mut conn, bob.organization_id, "TRK-2", "Truck 2").unwrap();
    Asset::insert(&mut conn, bob.organization_id, "TRK-9", "Truck 9").unwrap();
    let group = AssetGroup::insert(&mut conn, bob.organization_id, "North", &[t2.id]).unwrap();
    let mut settings = keys::settings(Some(&["positions.read"]));
    settings.assets = AssetScope::Only { asset_ids: vec![t1.id], group_ids: vec![group.id] };
    settings.cidrs = vec!["127.0.0.0/8".parse().unwrap()];
    let (_, secret) = keys::create(
        &mut conn,
        &app.hasher,
        NewKeyOwner::Personal { user_id: bob.id, organization_id: bob.organization_id },
        "Scoped",
        settings.clone(),
    );
    settings.cidrs = vec!["203.0.113.0/24".parse().unwrap()];
    let (_, elsewhere) = keys::create(
        &mut conn,
        &app.hasher,
        NewKeyOwner::Personal { user_id: bob.id, organization_id: bob.organization_id },
        "Elsewhere",
        settings,
    );
    drop(conn);

    let cases = [
        (json!({ "action": "positions.read", "asset": "TRK-1" }), StatusCode::OK, "VALID"),
        (json!({ "action": "positions.read", "asset": "TRK-2" }), StatusCode::OK, "VALID"),
        (json!({ "action": "vehicles.write", "asset": "TRK-1" }), StatusCode::FORBIDDEN, "FORBIDDEN_ACTION"),
        (json!({ "action": "no.such" }), StatusCode::FORBIDDEN, "FORBIDDEN_ACTION"),
        (json!({ "action": "positions.read", "asset": "TRK-9" }), StatusCode::FORBIDDEN, "FORBIDDEN_ASSET"),
        (json!({ "asset": "TRK-1" }), StatusCode::OK, "VALID"),
    ];
    for (body, status, code) in cases {
        let (got_status, got, _) = verify(&app, &secret, body.clone()).await;
        assert_eq!((got_status, got["code"].as_str().unwrap()), (status, code), "{body}");
    }
    let (_, body, _) = verify(&app, &secret, json!({})).await;
    assert_eq!(body["assets"], json!(["TRK-1", "TRK-2"]), "groups expand to their members");
    let (status, body, _) = verify(&app, &elsewhere, json!({ "action": "positions.read" })).await;
    assert_eq!((status, body["code"].as_str().unwrap()), (StatusCode::FORBIDDEN, "FORBIDDEN_IP"));

    // The key never does more than its owner may do now.
    let (_, all_of_bob) = keys::create(
        &mut app.conn(),
        &app.hasher,
        NewKeyOwner::Personal { user_id: bob.id, organization_id: bob.organization_id },
        "Bob's widest",
        keys::settings(Some(&["positions.read", "vehicles.read"])),
    );
    diesel::sql_query(
        "DELETE FROM role_api_actions WHERE api_action_id = (SELECT id FROM api_actions WHERE code = 'vehicles.read')",
    )
    .execute(&mut *app.conn())
    .unwrap();
    let narrowed = within(Duration::from_secs(10), async || {
        let (_, body, _) = verify(&app, &all_of_bob, json!({ "action": "vehicles.read" })).await;
        body["code"] == json!("FORBIDDEN_ACTION")
    })
    .await;
    assert!(narrowed, "the role change reaches the cache");
}

#[actix_web::test]
async fn malformed_requests_get_clear_json_errors() {
    let Acme { app, bob, .. } = acme().await;
    let (_, secret) = keys::personal(&mut app.conn(), &app.hasher, &bob, "K");
    let client = http_client();
    let cases: Vec<(Option<&str>, &str)> = vec![
        (Some("application/json"), "{not json"),
        (Some("application/json"), r#"{"action": "positions.read", "extra": 1}"#),
        (Some("application/json"), r#"{"action": 5}"#),
        (Some("text/plain"), r#"{"action": "positions.read"}"#),
    ];
    for (content_type, body) in cases {
        let mut request = client.post(app.url("/api/v1/verify")).bearer_auth(&secret).body(body.to_string());
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        let (status, json, _) = split(request.send().await.unwrap()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(json["error"], json!("invalid_request"));
    }
    let (status, json, _) = split(client.get(app.url("/api/v1/nothing")).send().await.unwrap()).await;
    assert_eq!((status, json["error"].as_str()), (StatusCode::NOT_FOUND, Some("not_found")));
    let big = "x".repeat(2 * 1024 * 1024);
    let response = client.post(app.url("/api/v1/verify")).bearer_auth(&secret).body(big).send().await.unwrap();
    let (status, json, _) = split(response).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(json["error"].is_string(), "the API answers in JSON even here: {json}");
}

#[actix_web::test]
async fn the_old_secret_works_during_its_grace_period_with_deprecation_headers() {
    let Acme { app, bob, .. } = acme().await;
    let (key, old) = keys::personal(&mut app.conn(), &app.hasher, &bob, "Rotating");
    assert_eq!(verify(&app, &old, json!({})).await.0, StatusCode::OK);
    let new =
        match lifecycle::rekey(&mut app.conn(), &Actor::system("test"), &app.hasher, keys::at(&key), 60, None, None)
            .unwrap()
        {
            lifecycle::Rekeyed::New { secret, .. } => secret.expose().to_string(),
            lifecycle::Rekeyed::Replayed(_) => unreachable!(),
        };
    // The re-key reached the cache: the old secret now answers as rotating.
    let deadline = Instant::now() + Duration::from_secs(10);
    let (status, body, headers) = loop {
        let answer = verify(&app, &old, json!({})).await;
        if answer.1["rotating"] == json!(true) || Instant::now() > deadline {
            break answer;
        }
        actix_web::rt::time::sleep(Duration::from_millis(10)).await;
    };
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["rotating"], json!(true));
    assert!(headers.get("deprecation").unwrap().to_str().unwrap().starts_with('@'));
    let sunset = headers.get("sunset").unwrap().to_str().unwrap().to_string();
    assert!(sunset.ends_with("GMT"), "{sunset}");
    let (status, body, headers) = verify(&app, &new, json!({})).await;
    assert_eq!((status, body["rotating"].clone()), (StatusCode::OK, json!(false)));
    assert!(headers.get("sunset").is_none());

    // The key page tells that the old secret is still being used.
    app.state.verifier.flush_usage().await.unwrap();
    let used: Option<chrono::DateTime<chrono::Utc>> =
        api_keys::table.find(key.id).select(api_keys::previous_secret_last_used_at).first(&mut *app.conn()).unwrap();
    assert!(used.is_some(), "the old secret's last use is recorded");
    let bob_client = app.signed_in("bob@acme.test").await;
    let (_, page) = bob_client.page(&format!("/account/keys/{}", key.public_id)).await;
    assert!(page.contains("it is still being used"), "the detail page says so");

    // The grace period (60 minutes) ends: the old secret stops.
    app.advance(Duration::from_secs(59 * 60));
    assert_eq!(verify(&app, &old, json!({})).await.1["rotating"], json!(true), "still in its grace period");
    app.advance(Duration::from_secs(2 * 60));
    assert_eq!(verify(&app, &old, json!({})).await.1["code"], json!("NOT_FOUND"));
    assert_eq!(verify(&app, &new, json!({})).await.0, StatusCode::OK);
}

#[actix_web::test]
async fn a_change_reaches_the_cache_of_another_instance_by_its_change_notice() {
    let Acme { app: first, bob, .. } = acme().await;
    // A second instance on the same database with the same master secret.
    let twin = spawn_app_with(SpawnOptions {
        database: Some(first.database.clone()),
        secret: Some(first.secret.clone()),
        ..SpawnOptions::default()
    })
    .await;
    let (key, secret) = keys::personal(&mut first.conn(), &first.hasher, &bob, "Shared");
    assert_eq!(verify(&first, &secret, json!({})).await.0, StatusCode::OK);
    assert_eq!(verify(&twin, &secret, json!({})).await.0, StatusCode::OK, "now cached on the twin");
    let admin = {
        let org = keyward::db::models::Organization::find(&mut first.conn(), bob.organization_id).unwrap();
        fixtures::UserBuilder::new(&org, "boss@acme.test").admin().insert(&mut first.conn());
        first.signed_in("boss@acme.test").await
    };
    admin.page("/admin/keys").await;
    let response = admin.post(&format!("/admin/keys/{}/deactivate", key.public_id), &[]).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    // Only the change notice can tell the twin before its cached entry would be re-read
    // anyway (after the coherence window): how fast it arrives is the benchmarks' business.
    let deadline = keyward::keys::verifier::cache::COHERENCE_WINDOW - Duration::from_secs(1);
    let refused = within(deadline, async || {
        let (status, body, _) = verify(&twin, &secret, json!({})).await;
        status == StatusCode::UNAUTHORIZED && body["code"] == json!("DISABLED")
    })
    .await;
    assert!(refused, "the second instance refuses the deactivated key");
}

#[actix_web::test]
async fn a_key_created_after_a_miss_is_not_refused() {
    let Acme { app, bob, .. } = acme().await;
    let generated = GeneratedKey::generate(Environment::Live);
    assert_eq!(verify(&app, generated.expose(), json!({})).await.1["code"], json!("NOT_FOUND"));
    // The same key appears (as if created on another instance).
    let hash = app.hasher.hash(generated.expose());
    ApiKey::insert(
        &mut app.conn(),
        &NewApiKey {
            public_id: &generated.public_id,
            environment: "live",
            organization_id: Some(bob.organization_id),
            owner_user_id: Some(bob.id),
            owner_organization_id: None,
            owner_service_provider_id: None,
            name: "Late",
            comment: "",
            all_actions: false,
            all_assets: true,
            allowed_cidrs: vec![],
            expires_at: None,
            proxy_user_id: None,
            secret_hash: &hash,
            secret_last4: &generated.last4(),
            created_by_user_id: None,
            created_by_staff_id: None,
            create_token: None,
        },
    )
    .unwrap();
    assert_eq!(eventually(&app, generated.expose(), "VALID").await, "VALID");
}

#[actix_web::test]
async fn invalid_attempts_are_throttled_per_address_without_slowing_valid_keys() {
    let Acme { app, bob, .. } =
        acme_with(SpawnOptions { invalid_attempts_per_minute: 3, ..SpawnOptions::default() }).await;
    let (key, secret) = keys::personal(&mut app.conn(), &app.hasher, &bob, "Good");
    cache_settled(&app, &key, &secret).await;
    for _ in 0..3 {
        let unknown = GeneratedKey::generate(Environment::Live);
        assert_eq!(verify(&app, unknown.expose(), json!({})).await.0, StatusCode::UNAUTHORIZED);
    }
    let unknown = GeneratedKey::generate(Environment::Live);
    assert_eq!(verify(&app, unknown.expose(), json!({})).await.0, StatusCode::UNAUTHORIZED, "the fourth is counted");
    let (status, body, _) = verify(&app, GeneratedKey::generate(Environment::Live).expose(), json!({})).await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::TOO_MANY_REQUESTS, Some("RATE_LIMITED")));
    // The valid, known key from the same address still works.
    assert_eq!(verify(&app, &secret, json!({})).await.0, StatusCode::OK);
}

#[actix_web::test]
async fn a_batch_of_leak_reports_is_answered_whole_and_its_misses_throttle_the_next() {
    let Acme { app, bob, .. } =
        acme_with(SpawnOptions { invalid_attempts_per_minute: 3, ..SpawnOptions::default() }).await;
    let (key, secret) = keys::personal(&mut app.conn(), &app.hasher, &bob, "Found last");
    // Many stale tokens first, the live leaked key last (as a scanner may send them).
    let mut reports: Vec<Value> = (0..20)
        .map(|_| {
            let token = GeneratedKey::generate(Environment::Live).expose().to_string();
            json!({ "token": token, "type": "keyward_api_key", "url": "https://example.com", "source": "content" })
        })
        .collect();
    reports
        .push(json!({ "token": secret, "type": "keyward_api_key", "url": "https://example.com", "source": "content" }));
    let response = http_client().post(app.url("/api/v1/leaks")).json(&reports).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let labels: Value = response.json().await.unwrap();
    assert_eq!(labels[20]["label"], json!("true_positive"), "the live key at the end is found");
    assert!(!keys::reload(&mut app.conn(), &key).unwrap().active);
    // The misses count: the next report from this address waits.
    let again = http_client().post(app.url("/api/v1/leaks")).json(&reports[..1]).send().await.unwrap();
    assert_eq!(again.status(), StatusCode::TOO_MANY_REQUESTS);
}

#[actix_web::test]
async fn leaked_keys_are_deactivated_at_once_and_the_report_is_audited() {
    let Acme { app, bob, .. } = acme().await;
    let (key, secret) = keys::personal(&mut app.conn(), &app.hasher, &bob, "Leaky");
    assert_eq!(verify(&app, &secret, json!({})).await.0, StatusCode::OK);
    let unknown = GeneratedKey::generate(Environment::Test);
    let report = json!([
        { "token": secret, "type": "keyward_api_key", "url": "https://github.com/acme/app/blob/main/.env", "source": "content" },
        { "token": "kw_live_not-a-key", "type": "keyward_api_key", "url": "https://example.com", "source": "commit" },
        { "token": unknown.expose(), "type": "keyward_api_key", "url": "https://example.com/2", "source": "issue" }
    ]);
    let response = http_client().post(app.url("/api/v1/leaks")).json(&report).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let labels: Value = response.json().await.unwrap();
    assert_eq!(labels[0], json!({ "token_raw": secret, "token_type": "keyward_api_key", "label": "true_positive" }));
    assert_eq!(labels[1]["label"], json!("false_positive"));
    assert_eq!(labels[2]["label"], json!("false_positive"));

    assert!(!keys::reload(&mut app.conn(), &key).unwrap().active);
    assert_eq!(eventually(&app, &secret, "DISABLED").await, "DISABLED");
    let event: AuditEvent = audit_events::table
        .filter(audit_events::action.eq("key.leak_report"))
        .select(AuditEvent::as_select())
        .first(&mut *app.conn())
        .unwrap();
    assert_eq!(event.details["url"], json!("https://github.com/acme/app/blob/main/.env"));
    assert_eq!(event.details["source"], json!("content"));
    assert_eq!(event.organization_id, Some(bob.organization_id));
    assert!(!format!("{event:?}").contains(&secret[17..]), "no secret in the audit log");

    let bad = http_client().post(app.url("/api/v1/leaks")).json(&json!({ "token": "x" })).send().await.unwrap();
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);

    // The leaked secret never works again: reactivation waits for a re-key, which ends it at
    // once whatever grace period is chosen.
    let owner = app.signed_in("bob@acme.test").await;
    let base = format!("/account/keys/{}", key.public_id);
    let (_, page) = owner.page(&base).await;
    assert!(page.contains("Its secret leaked: re-key it, then reactivate."));
    let refused = owner.post(&format!("{base}/reactivate"), &[]).await;
    assert_eq!(refused.status(), StatusCode::CONFLICT);
    assert!(refused.text().await.unwrap().contains("Re-key it first"));
    assert!(!keys::reload(&mut app.conn(), &key).unwrap().active);
    let new =
        match lifecycle::rekey(&mut app.conn(), &Actor::system("test"), &app.hasher, keys::at(&key), 60, None, None)
            .unwrap()
        {
            lifecycle::Rekeyed::New { secret, .. } => secret.expose().to_string(),
            lifecycle::Rekeyed::Replayed(_) => unreachable!(),
        };
    let rekeyed = keys::reload(&mut app.conn(), &key).unwrap();
    assert!(rekeyed.previous_secret_hash.is_none(), "no grace for a leaked secret");
    assert_eq!(owner.post(&format!("{base}/reactivate"), &[]).await.status(), StatusCode::SEE_OTHER);
    assert_eq!(eventually(&app, &new, "VALID").await, "VALID");
    assert_eq!(eventually(&app, &secret, "NOT_FOUND").await, "NOT_FOUND");
}

#[actix_web::test]
async fn last_access_is_batched_and_written_at_most_once_a_minute() {
    let Acme { app, bob, .. } = acme().await;
    let (key, secret) = keys::personal(&mut app.conn(), &app.hasher, &bob, "Busy");
    for _ in 0..20 {
        assert_eq!(verify(&app, &secret, json!({})).await.0, StatusCode::OK);
    }
    let stored = |app: &TestApp| keys::reload(&mut app.conn(), &key).unwrap();
    assert!(stored(&app).last_used_at.is_none(), "nothing is written on the request path");
    assert_eq!(app.state.verifier.usage.pending(), 1, "twenty uses, one pending record");
    assert_eq!(app.state.verifier.flush_usage().await.unwrap(), 1);
    let first = stored(&app);
    assert!(first.last_used_at.is_some());
    assert_eq!(first.last_used_ip.unwrap().ip().to_string(), "127.0.0.1");

    verify(&app, &secret, json!({})).await;
    assert_eq!(app.state.verifier.flush_usage().await.unwrap(), 0, "written less than a minute ago");
    assert_eq!(stored(&app).last_used_at, first.last_used_at);

    // The lists show it.
    let bob_client = app.signed_in("bob@acme.test").await;
    let page = bob_client.open("/account/keys").await;
    assert_eq!(page.select("tr[data-key] .key-used .sub").text(), "from 127.0.0.1", "last access address in the list");
    let _ = user(&app, "bob@acme.test");
}

#[actix_web::test]
async fn verification_fails_closed_while_the_database_is_down() {
    let cluster = crate::helpers::PrivateCluster::start("verify-fault");
    let app = cluster.spawn_app().await;
    let mut conn = app.conn();
    let org = fixtures::organization(&mut conn, "acme");
    let bob = fixtures::key_owner(&mut conn, &org, "bob@acme.test");
    let (cached_key, cached) = keys::personal(&mut conn, &app.hasher, &bob, "Cached");
    let (_, uncached) = keys::personal(&mut conn, &app.hasher, &bob, "Uncached");
    drop(conn);
    cache_settled(&app, &cached_key, &cached).await;

    cluster.stop();
    let unknown = GeneratedKey::generate(Environment::Live);
    for candidate in [uncached.as_str(), unknown.expose()] {
        let (status, body, headers) = verify(&app, candidate, json!({})).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "never a guess for {candidate}");
        assert_eq!(body["error"], json!("unavailable"));
        assert!(headers.get("retry-after").is_some());
    }
    // Malformed keys are answered without the database.
    assert_eq!(verify(&app, "kw_live_garbage", json!({})).await.0, StatusCode::UNAUTHORIZED);
    // A key the cache vouches for keeps working.
    assert_eq!(verify(&app, &cached, json!({})).await.0, StatusCode::OK);

    cluster.start_again();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (status, _, _) = verify(&app, &uncached, json!({})).await;
        if status == StatusCode::OK {
            break;
        }
        assert!(Instant::now() < deadline, "recovered without a restart (got {status})");
        actix_web::rt::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = user;
}
