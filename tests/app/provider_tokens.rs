//! Service providers' management tokens: support staff create them in the browser (sudo
//! mode, shown once) and they manage that provider's keys through the management API — and
//! nothing else: no client's key, no other provider's, no users, no audit log.

use std::time::Duration;

use diesel::{Connection, prelude::*};
use keyward::{
    db::{
        models::{ServiceProvider, StaffAccount, api_key::KeyScope},
        schema::{audit_events, management_tokens as tokens_table},
    },
    domain::TokenScopes,
    services::{
        Actor,
        actor::ActorKind,
        keys::{
            KeyOp, NewKeyOwner,
            lifecycle::{self, KeyRef},
        },
        management_tokens, platform,
    },
};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::{
    fixtures,
    helpers::{TestApp, http_client, location, within},
    management_api::{call, deployment, new_token, verify},
    page::Page,
};

/// Two providers, each with a key; a client of the first with its own key; two staff.
struct Platform {
    app: TestApp,
    twin: TestApp,
    fleetlink: ServiceProvider,
    /// Public ids: the first provider's key, the other provider's, the client's.
    own_key: String,
    other_provider_key: String,
    client_key: String,
    sam: StaffAccount,
    kim: StaffAccount,
}

async fn platform() -> Platform {
    let (app, twin) = deployment().await;
    let mut conn = app.conn();
    let (fleetlink, acme) = fixtures::served_organization(&mut conn, "acme", "Fleetlink");
    let northwind = ServiceProvider::insert(&mut conn, "Northwind").unwrap();
    let admin = fixtures::admin(&mut conn, &acme, "admin@acme.test");
    let provider_key = |conn: &mut PgConnection, id: i64, name: &str| {
        let owner = NewKeyOwner::ServiceProvider { service_provider_id: id };
        fixtures::keys::create(conn, &app.hasher, owner, name, fixtures::keys::settings(None)).0.public_id
    };
    let own_key = provider_key(&mut conn, fleetlink.id, "Fleetlink telemetry");
    let other_provider_key = provider_key(&mut conn, northwind.id, "Northwind telemetry");
    let client_key = fixtures::keys::organization(&mut conn, &app.hasher, &admin, "Acme dispatch").0.public_id;
    let sam = fixtures::staff(&mut conn, "sam@support.test");
    let kim = fixtures::staff(&mut conn, "kim@support.test");
    drop(conn);
    Platform { app, twin, fleetlink, own_key, other_provider_key, client_key, sam, kim }
}

/// A token of `provider` created by `staff` through the service, as the staff page does.
fn provider_token(app: &TestApp, provider: &ServiceProvider, staff: &StaffAccount, scopes: &[&str]) -> String {
    let actor = Actor::system("test");
    let actor = Actor { kind: ActorKind::Staff { id: staff.id, email: staff.email.clone() }, ..actor };
    let new = new_token(scopes, &[]);
    let (_, secret) = app
        .conn()
        .transaction(|conn| {
            management_tokens::create_for_provider(conn, &actor, &app.hasher, provider.id, staff.id, new)
        })
        .unwrap();
    secret.expose().to_string()
}

/// Action, actor label, provider, organization, details of an audit event.
type TokenEvent = (String, String, Option<i64>, Option<i64>, Value);

fn listed_ids(page: &Value) -> Vec<String> {
    page["data"].as_array().unwrap().iter().map(|k| k["id"].as_str().unwrap().to_string()).collect()
}

#[actix_web::test]
async fn staff_create_a_providers_token_in_the_browser_see_it_once_and_revoke_it() {
    let Platform { app, fleetlink, .. } = platform().await;
    let base = format!("/staff/providers/{}/api-access", fleetlink.id);
    let sam = app.signed_in("sam@support.test").await;
    let provider_page = sam.open(&format!("/staff/providers/{}", fleetlink.id)).await;
    assert!(provider_page.has(&format!("a[href='{base}']")), "{provider_page}");
    let list = sam.open(&base).await;
    assert_eq!(list.status, StatusCode::OK);
    assert!(list.has(&format!("a[href='{base}/new']")) && list.body.contains("No management tokens yet"));

    // The form offers the key scopes only.
    let form = sam.open(&format!("{base}/new")).await;
    assert!(form.has_form(&base) && form.has("input[name=scopes][value='keys:write']"), "{form}");
    assert!(!form.has("input[name=scopes][value='users:read']") && !form.has("input[name=scopes][value='audit:read']"));
    // A forged scope beyond keys is a field error, and nothing is created.
    let form_token = form.select("input[name=form_token]").value().unwrap();
    let forged = [("name", "Reseller CI"), ("scopes", "users:read"), ("form_token", form_token.as_str())];
    let response = sam.post(&base, &forged).await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let again = Page::new(StatusCode::UNPROCESSABLE_ENTITY, response.text().await.unwrap());
    assert!(again.has("#token-scopes-error") && again.body.contains("Reseller CI"), "keeps the input: {again}");
    assert_eq!(tokens_table::table.count().get_result::<i64>(&mut *app.conn()).unwrap(), 0);

    let fields = [
        ("name", "Reseller CI"),
        ("scopes", "keys:read"),
        ("scopes", "keys:write"),
        ("expires_in_days", "30"),
        ("allowed_ips", ""),
        ("form_token", form_token.as_str()),
    ];
    let response = sam.post(&base, &fields).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers()["cache-control"].to_str().unwrap().contains("no-store"));
    let shown = Page::new(StatusCode::OK, response.text().await.unwrap());
    let token = shown.select("textarea#new-token").value().unwrap_or_default().trim().to_string();
    assert!(token.starts_with("kw_mgmt_"), "{shown}");
    assert!(shown.has(&format!("a[href='{base}']")), "Done goes back to the provider's tokens");
    assert_eq!(call(&app, Method::GET, "/api/v1/keys", &token, None, &[]).await.0, StatusCode::OK);
    let public_id = &token[8..16];
    let list = sam.open(&base).await;
    assert!(list.has(&format!("tr[data-token='{public_id}']")) && !list.body.contains(&token));
    // Its last use shows once the batch of last uses is written (never per request).
    let last_used = format!("tr[data-token='{public_id}'] td:nth-child(5) time");
    app.state.verifier.flush_usage().await.unwrap();
    assert!(sam.open(&base).await.has(&last_used));
    // The audit log has the creation, with the provider and its creator, never the secret.
    let (provider_id, details): (Option<i64>, Value) = audit_events::table
        .filter(audit_events::action.eq("management_token.create"))
        .select((audit_events::service_provider_id, audit_events::details))
        .first(&mut *app.conn())
        .unwrap();
    assert_eq!(provider_id, Some(fleetlink.id));
    assert_eq!(details["creator"], json!("sam@support.test"));
    assert!(!details.to_string().contains(&token[16..]));
    // A replayed form creates nothing.
    let replay = sam.post(&base, &fields).await;
    assert_eq!(location(&replay), base);
    assert_eq!(tokens_table::table.count().get_result::<i64>(&mut *app.conn()).unwrap(), 1);
    // Another provider's page does not know the token.
    let elsewhere = sam.get(&format!("/staff/providers/999999/api-access/{public_id}/revoke")).await;
    assert_eq!(elsewhere.status(), StatusCode::NOT_FOUND);

    // Revoke after a confirmation: refused at once.
    let confirm = sam.open(&format!("{base}/{public_id}/revoke")).await;
    assert!(confirm.has_form(&format!("{base}/{public_id}/revoke")));
    let response = sam.post(&format!("{base}/{public_id}/revoke"), &[]).await;
    assert_eq!(location(&response), base);
    assert_eq!(call(&app, Method::GET, "/api/v1/keys", &token, None, &[]).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(crate::helpers::audit_count(&app, "management_token.revoke"), 1);

    // Sudo mode: an old sign-in must be confirmed before a new token.
    app.advance(Duration::from_secs(11 * 60));
    let response = sam.get(&format!("{base}/new")).await;
    assert!(location(&response).starts_with("/staff/confirm?next="), "{response:?}");
    let response = sam.post(&base, &fields).await;
    assert!(location(&response).starts_with("/staff/confirm?next="));
    assert_eq!(tokens_table::table.count().get_result::<i64>(&mut *app.conn()).unwrap(), 1);

    // Not for organization administrators: the staff area is not theirs.
    let admin = app.signed_in("admin@acme.test").await;
    assert_eq!(admin.get(&base).await.status(), StatusCode::FORBIDDEN);
}

#[actix_web::test]
async fn a_providers_token_runs_its_keys_lifecycle_and_reaches_nothing_else() {
    let Platform { app, fleetlink, own_key, other_provider_key, client_key, sam, .. } = platform().await;
    let token = provider_token(&app, &fleetlink, &sam, &["keys:read", "keys:write"]);

    // Its list is the provider's keys: not the client's, not another provider's.
    let (status, _, page) = call(&app, Method::GET, "/api/v1/keys", &token, None, &[]).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(listed_ids(&page), vec![own_key.clone()]);
    assert_eq!(page["data"][0]["owner"], json!({ "type": "service_provider", "id": fleetlink.id }));
    for other in [&client_key, &other_provider_key] {
        for (method, path) in [
            (Method::GET, format!("/api/v1/keys/{other}")),
            (Method::GET, format!("/api/v1/keys/{other}/usage")),
            (Method::PATCH, format!("/api/v1/keys/{other}")),
            (Method::POST, format!("/api/v1/keys/{other}/deactivate")),
            (Method::POST, format!("/api/v1/keys/{other}/rekey")),
            (Method::DELETE, format!("/api/v1/keys/{other}")),
        ] {
            let body = (method == Method::PATCH).then(|| json!({ "name": "Taken" }));
            let (status, _, problem) = call(&app, method.clone(), &path, &token, body, &[]).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path}: {problem}");
        }
    }
    // Users and the audit log are no provider's.
    for path in ["/api/v1/users", "/api/v1/audit-events"] {
        assert_eq!(call(&app, Method::GET, path, &token, None, &[]).await.0, StatusCode::FORBIDDEN, "{path}");
    }

    // Create a provider key: the owner is the provider (by default, or named); nothing else.
    let (status, _, problem) = call(
        &app,
        Method::POST,
        "/api/v1/keys",
        &token,
        Some(json!({ "name": "Client's?", "owner": { "type": "organization" } })),
        &[],
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert_eq!(problem["errors"][0]["field"], json!("owner"));
    // A provider's key belongs to no organization: no asset list, no proxy user (refused,
    // never a silently wider key).
    let body = json!({ "name": "Limited", "assets": [1] });
    let (status, _, problem) = call(&app, Method::POST, "/api/v1/keys", &token, Some(body), &[]).await;
    assert_eq!((status, &problem["errors"][0]["field"]), (StatusCode::UNPROCESSABLE_ENTITY, &json!("assets")));
    let path = format!("/api/v1/keys/{own_key}");
    let body = Some(json!({ "proxy_user_id": 1 }));
    let (status, _, problem) = call(&app, Method::PATCH, &path, &token, body, &[]).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert_eq!(problem["errors"][0]["field"], json!("proxy_user_id"));
    let (status, _, created) = call(
        &app,
        Method::POST,
        "/api/v1/keys",
        &token,
        Some(json!({ "name": "Reseller sync", "owner": { "type": "service_provider" } })),
        &[("Idempotency-Key", "create-1")],
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["owner"], json!({ "type": "service_provider", "id": fleetlink.id }));
    let (id, secret) = (created["id"].as_str().unwrap().to_string(), created["secret"].as_str().unwrap().to_string());
    let (status, verified) = verify(&app, &secret).await;
    assert_eq!((status, &verified["owner"]["type"]), (StatusCode::OK, &json!("service_provider")), "{verified}");

    // Re-key with the platform's default grace: the old secret keeps working for now.
    let (status, _, rekeyed) = call(&app, Method::POST, &format!("/api/v1/keys/{id}/rekey"), &token, None, &[]).await;
    assert_eq!(status, StatusCode::OK, "{rekeyed}");
    let new_secret = rekeyed["secret"].as_str().unwrap().to_string();
    assert_ne!(new_secret, secret);
    assert_eq!(verify(&app, &secret).await.0, StatusCode::OK, "the old secret is in its grace period");
    assert_eq!(verify(&app, &new_secret).await.0, StatusCode::OK);

    // Deactivate, then delete.
    let path = format!("/api/v1/keys/{id}/deactivate");
    assert_eq!(call(&app, Method::POST, &path, &token, None, &[]).await.0, StatusCode::OK);
    assert_eq!(verify(&app, &new_secret).await.0, StatusCode::UNAUTHORIZED);
    let path = format!("/api/v1/keys/{id}");
    assert_eq!(call(&app, Method::DELETE, &path, &token, None, &[]).await.0, StatusCode::NO_CONTENT);
    assert_eq!(call(&app, Method::GET, &path, &token, None, &[]).await.0, StatusCode::NOT_FOUND);

    // Every change is the token's, under the provider, naming the specialist.
    let events: Vec<TokenEvent> = audit_events::table
        .filter(audit_events::action.like("key.%"))
        .filter(audit_events::actor_type.eq("token"))
        .order(audit_events::id.asc())
        .select((
            audit_events::action,
            audit_events::actor_label,
            audit_events::service_provider_id,
            audit_events::organization_id,
            audit_events::details,
        ))
        .load(&mut *app.conn())
        .unwrap();
    let actions: Vec<&str> = events.iter().map(|e| e.0.as_str()).collect();
    assert_eq!(actions, ["key.create", "key.rekey", "key.deactivate", "key.delete"], "{events:?}");
    for (_, label, provider, organization, details) in &events {
        assert!(label.contains("sam@support.test"), "{label}");
        assert_eq!((*provider, *organization), (Some(fleetlink.id), None));
        assert_eq!(details["token"]["creator_staff_id"], json!(sam.id));
    }

    // A read-only token reads, and changes nothing.
    let reader = provider_token(&app, &fleetlink, &sam, &["keys:read"]);
    assert_eq!(call(&app, Method::GET, &format!("/api/v1/keys/{own_key}"), &reader, None, &[]).await.0, StatusCode::OK);
    let path = format!("/api/v1/keys/{own_key}/deactivate");
    assert_eq!(call(&app, Method::POST, &path, &reader, None, &[]).await.0, StatusCode::FORBIDDEN);
    let body = Some(json!({ "name": "Nope" }));
    assert_eq!(call(&app, Method::POST, "/api/v1/keys", &reader, body, &[]).await.0, StatusCode::FORBIDDEN);
    // Refusals are in the audit log, under the provider (users and audit log of the first
    // token, the reader's two changes); the 404s above are not.
    let denied: Vec<(Option<i64>, Option<i64>, Value)> = audit_events::table
        .filter(audit_events::action.eq("access.denied"))
        .select((audit_events::service_provider_id, audit_events::organization_id, audit_events::details))
        .load(&mut *app.conn())
        .unwrap();
    assert_eq!(denied.len(), 4, "{denied:?}");
    for (provider, organization, details) in &denied {
        assert_eq!((*provider, *organization, &details["reason"]), (Some(fleetlink.id), None, &json!("scope")));
    }
    let by_reader: Vec<&Value> =
        denied.iter().map(|d| &d.2).filter(|d| d["token"]["public_id"] == json!(reader[8..16])).collect();
    assert_eq!(by_reader.len(), 2);
    assert!(by_reader.iter().all(|d| d["scope"] == json!("keys:write")), "{by_reader:?}");
}

#[actix_web::test]
async fn only_staff_create_providers_tokens_with_key_scopes_and_they_stop_with_their_creator() {
    let Platform { app, twin, fleetlink, sam, kim, own_key, .. } = platform().await;
    // Key scopes only, and staff only.
    let new = |scopes: &[&str]| new_token(scopes, &[]);
    let sam_actor = Actor { kind: ActorKind::Staff { id: sam.id, email: sam.email.clone() }, ..Actor::system("t") };
    let refused = app.conn().transaction(|conn| {
        management_tokens::create_for_provider(
            conn,
            &sam_actor,
            &app.hasher,
            fleetlink.id,
            sam.id,
            new(&["audit:read"]),
        )
    });
    assert!(matches!(refused, Err(keyward::error::AppError::Invalid(_))), "{refused:?}");
    // A specialist makes tokens acting as themselves only.
    let refused = app.conn().transaction(|conn| {
        management_tokens::create_for_provider(conn, &sam_actor, &app.hasher, fleetlink.id, kim.id, new(&["keys:read"]))
    });
    assert!(matches!(refused, Err(keyward::error::AppError::Forbidden)), "{refused:?}");

    // A token works on the twin (and is cached there) until its creator is deactivated.
    let token = provider_token(&app, &fleetlink, &sam, &["keys:read"]);
    assert_eq!(call(&twin, Method::GET, "/api/v1/keys", &token, None, &[]).await.0, StatusCode::OK);
    let kim_actor = Actor { kind: ActorKind::Staff { id: kim.id, email: kim.email.clone() }, ..Actor::system("t") };
    app.conn().transaction(|conn| platform::set_staff_active(conn, &kim_actor, sam.id, false)).unwrap();
    let deadline = keyward::keys::verifier::cache::COHERENCE_WINDOW - Duration::from_secs(1);
    let refused = within(deadline, async || {
        call(&twin, Method::GET, "/api/v1/keys", &token, None, &[]).await.0 == StatusCode::UNAUTHORIZED
    })
    .await;
    assert!(refused, "the twin drops the token of a deactivated specialist");
    // And whatever a cache still believes, the services check the specialist again.
    let token_actor = Actor {
        kind: ActorKind::ProviderToken {
            id: 1,
            public_id: token[8..16].to_string(),
            name: "Provider CI".into(),
            service_provider_id: fleetlink.id,
            scopes: TokenScopes::parse(["keys:read"]).unwrap(),
            staff_id: sam.id,
            email: sam.email.clone(),
        },
        ..Actor::system("t")
    };
    let at = KeyRef { scope: KeyScope::ServiceProvider(fleetlink.id), public_id: &own_key };
    let seen = lifecycle::visible(&mut app.conn(), &token_actor, at, KeyOp::View);
    assert!(matches!(seen, Err(keyward::error::AppError::Forbidden)), "{seen:?}");
    app.conn().transaction(|conn| platform::set_staff_active(conn, &kim_actor, sam.id, true)).unwrap();
    assert!(lifecycle::visible(&mut app.conn(), &token_actor, at, KeyOp::View).is_ok());
    let back = within(deadline, async || {
        call(&twin, Method::GET, "/api/v1/keys", &token, None, &[]).await.0 == StatusCode::OK
    })
    .await;
    assert!(back, "reactivated, the specialist's token works again");

    // A leak report revokes a provider's token like any other.
    let response = http_client()
        .post(app.url("/api/v1/leaks"))
        .json(&json!([{ "token": token, "type": "keyward_management_token", "url": "https://gist.example/2" }]))
        .send()
        .await
        .unwrap();
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer[0]["label"], json!("true_positive"));
    assert_eq!(call(&app, Method::GET, "/api/v1/keys", &token, None, &[]).await.0, StatusCode::UNAUTHORIZED);
    let provider: Option<i64> = audit_events::table
        .filter(audit_events::action.eq("management_token.revoke"))
        .select(audit_events::service_provider_id)
        .first(&mut *app.conn())
        .unwrap();
    assert_eq!(provider, Some(fleetlink.id));
}

#[actix_web::test]
async fn the_operator_creates_a_providers_token_from_the_command_line() {
    use crate::{
        cli::{SECRET, keyward, scratch_dir, text},
        helpers::TestServer,
    };
    let Platform { app, fleetlink, own_key, .. } = platform().await;
    let url = TestServer::get().url(&app.database);
    let run = |args: &[&str]| {
        keyward(&scratch_dir("provider-token"))
            .env("DATABASE_URL", &url)
            .env("KEYWARD_SECRET", SECRET)
            .args(["create-management-token", "--name", "Reseller CI"])
            .args(args)
            .output()
            .unwrap()
    };
    let provider = fleetlink.id.to_string();
    let output = run(&["--provider", &provider, "--scopes", "keys:read", "--creator", "kim@support.test"]);
    assert!(output.status.success(), "{:?}", text(&output));
    let token = text(&output).0.trim().to_string();
    assert!(token.starts_with("kw_mgmt_") && !text(&output).1.contains(&token), "only the token on stdout");
    let (status, _, page) = call(&app, Method::GET, "/api/v1/keys", &token, None, &[]).await;
    assert_eq!((status, listed_ids(&page)), (StatusCode::OK, vec![own_key]));
    let label: String = audit_events::table
        .filter(audit_events::action.eq("management_token.create"))
        .select(audit_events::actor_label)
        .first(&mut *app.conn())
        .unwrap();
    assert_eq!(label, "keyward create-management-token");

    // Refused, with a reason and nothing made: scopes beyond keys, an unknown provider or
    // staff account, both --org and --provider.
    for args in [
        vec!["--provider", &provider, "--scopes", "users:read"],
        vec!["--provider", "999999", "--scopes", "keys:read"],
        vec!["--provider", &provider, "--scopes", "keys:read", "--creator", "nobody@support.test"],
        vec!["--provider", &provider, "--org", "acme", "--scopes", "keys:read"],
    ] {
        let output = run(&args);
        assert!(!output.status.success() && !text(&output).1.trim().is_empty(), "{args:?}: {:?}", text(&output));
        assert!(text(&output).0.trim().is_empty(), "{args:?}");
    }
    assert_eq!(tokens_table::table.count().get_result::<i64>(&mut *app.conn()).unwrap(), 1);
}
