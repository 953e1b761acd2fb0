//! The staff console: service providers and their keys, client organizations (read-only
//! but for incident deactivation), the API action catalog, staff accounts, and the rule that
//! staff never create or re-key a client's key by any request.

use diesel::prelude::*;
use keyward::{
    db::{
        models::{ApiKey, AuditEvent, Organization, ServiceProvider, StaffAccount, organization::NewOrganization},
        schema::{api_keys, audit_events},
    },
    keys::ParsedKey,
};
use reqwest::StatusCode;
use serde_json::json;

use crate::{
    helpers::{
        PASSWORD, Page, TestApp, audit_count, fixtures, keys, location, spawn_app, user, verifies_as, verify_code,
    },
    keys::{form_token, shown_secret, submit_new},
};

struct Platform {
    app: TestApp,
    provider: ServiceProvider,
    client: Organization,
}

/// A service provider with one client organization (an administrator, a user with a personal
/// key) and two staff accounts.
async fn platform() -> Platform {
    let app = spawn_app().await;
    let mut conn = app.conn();
    let provider = ServiceProvider::insert(&mut conn, "Fleetlink").unwrap();
    let client = Organization::insert(
        &mut conn,
        &NewOrganization { slug: "acme", name: "Acme Haulage", service_provider_id: Some(provider.id) },
    )
    .unwrap();
    fixtures::UserBuilder::new(&client, "admin@acme.test").admin().insert(&mut conn);
    fixtures::key_owner(&mut conn, &client, "bob@acme.test");
    fixtures::staff(&mut conn, "sam@support.test");
    fixtures::staff(&mut conn, "kim@support.test");
    drop(conn);
    Platform { app, provider, client }
}

fn events(app: &TestApp, action: &str) -> Vec<AuditEvent> {
    audit_events::table
        .filter(audit_events::action.eq(action))
        .order(audit_events::id)
        .select(AuditEvent::as_select())
        .load(&mut *app.conn())
        .unwrap()
}

fn denied_by_staff(app: &TestApp) -> Vec<AuditEvent> {
    audit_events::table
        .filter(audit_events::result.eq("denied"))
        .filter(audit_events::actor_type.eq("staff"))
        .select(AuditEvent::as_select())
        .load(&mut *app.conn())
        .unwrap()
}

fn key_count(app: &TestApp) -> i64 {
    api_keys::table.count().get_result(&mut *app.conn()).unwrap()
}

#[actix_web::test]
async fn staff_list_create_and_rename_service_providers() {
    let Platform { app, provider, .. } = platform().await;
    let sam = app.signed_in("sam@support.test").await;
    let (status, list) = sam.page("/staff/providers").await;
    assert_eq!(status, StatusCode::OK);
    assert!(list.contains("Fleetlink"));

    sam.page("/staff/providers/new").await;
    let response = sam.post("/staff/providers", &[("name", "  Northwind Telematics ")]).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let created =
        ServiceProvider::list_all(&mut app.conn()).unwrap().into_iter().find(|p| p.id != provider.id).unwrap();
    assert_eq!(created.name, "Northwind Telematics");
    assert_eq!(location(&response), format!("/staff/providers/{}", created.id));
    let (_, page) = sam.page(&location(&response)).await;
    assert!(page.contains("Added Northwind Telematics."), "a flash message");

    for (name, error) in [("", "name"), ("fleetlink", "exists already")] {
        let response = sam.post("/staff/providers", &[("name", name)]).await;
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY, "{name:?}");
        let body = response.text().await.unwrap();
        assert!(body.contains(error) && body.contains(&format!("value=\"{name}\"")), "{body}");
    }

    sam.page(&format!("/staff/providers/{}/rename", created.id)).await;
    let response = sam.post(&format!("/staff/providers/{}/rename", created.id), &[("name", "Northwind")]).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(ServiceProvider::find(&mut app.conn(), created.id).unwrap().name, "Northwind");

    // The provider's page lists its client organizations.
    let (_, page) = sam.page(&format!("/staff/providers/{}", provider.id)).await;
    assert!(page.contains("Acme Haulage") && page.contains("Manage API keys"));
    assert!(page.contains("0 API keys."), "counted without \"(s)\"");
    assert_eq!(sam.get("/staff/providers/999999").await.status(), StatusCode::NOT_FOUND);

    let rename = &events(&app, "service_provider.rename")[0];
    assert_eq!((rename.actor_label.as_str(), rename.service_provider_id), ("sam@support.test", Some(created.id)));
    assert_eq!(rename.details["from"], json!("Northwind Telematics"));
    assert_eq!(audit_count(&app, "service_provider.create"), 1);

    // Web users cannot manage providers.
    let admin = app.signed_in("admin@acme.test").await;
    admin.page("/account").await;
    assert_eq!(admin.post("/staff/providers", &[("name", "Mine")]).await.status(), StatusCode::FORBIDDEN);
    assert_eq!(ServiceProvider::list_all(&mut app.conn()).unwrap().len(), 2);
}

#[actix_web::test]
async fn staff_select_a_provider_and_create_rekey_and_delete_its_key() {
    let Platform { app, provider, .. } = platform().await;
    let sam = app.signed_in("sam@support.test").await;
    let (_, overview) = sam.page("/staff").await;
    assert!(overview.contains("Select service provider"));
    let response = sam.get(&format!("/staff/providers/select?id={}", provider.id)).await;
    let base = location(&response);
    assert_eq!(base, format!("/staff/providers/{}/keys", provider.id));
    assert_eq!(sam.get("/staff/providers/select?id=424242").await.status(), StatusCode::NOT_FOUND);

    let expires = (chrono::Utc::now() + chrono::Duration::days(90)).date_naive().to_string();
    let (_, empty) = sam.page(&base).await;
    assert!(empty.contains("empty-state"));
    let (status, body, _) = submit_new(
        &sam,
        &base,
        &[
            ("name", "Locator Control Manager"),
            ("actions_mode", "all"),
            ("assets_mode", "all"),
            ("expires_on", &expires),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let secret = shown_secret(&body).expect("the key is shown once");
    let key = keys::find(&mut app.conn(), ParsedKey::parse(&secret).unwrap().public_id).unwrap().unwrap();
    assert_eq!(key.owner_service_provider_id, Some(provider.id));
    assert_eq!(key.organization_id, None);
    let sam_id = StaffAccount::find_by_email(&mut app.conn(), "sam@support.test").unwrap().unwrap().id;
    assert_eq!(key.created_by_staff_id, Some(sam_id));
    assert!(verifies_as(&app, &secret, Some("positions.read"), "VALID").await);
    let (_, list) = sam.page(&base).await;
    assert!(list.contains(&key.masked()) && !list.contains(&secret), "masked in the list, never the secret");

    let key_base = format!("{base}/{}", key.public_id);
    sam.page(&format!("{key_base}/rename")).await;
    let response = sam.post(&format!("{key_base}/rename"), &[("name", "LCM production")]).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);

    let (_, form) = sam.page(&format!("{key_base}/rekey")).await;
    let response =
        sam.post(&format!("{key_base}/rekey"), &[("grace_minutes", "0"), ("form_token", &form_token(&form))]).await;
    assert_eq!(response.status(), StatusCode::OK);
    let second = shown_secret(&response.text().await.unwrap()).unwrap();
    assert!(verifies_as(&app, &secret, None, "NOT_FOUND").await, "the old secret stops at once");
    assert!(verifies_as(&app, &second, None, "VALID").await);

    sam.page(&key_base).await;
    assert_eq!(
        sam.post(&format!("{key_base}/deactivate"), &[("reason", "paused")]).await.status(),
        StatusCode::SEE_OTHER
    );
    assert!(verifies_as(&app, &second, None, "DISABLED").await);
    assert_eq!(sam.post(&format!("{key_base}/reactivate"), &[]).await.status(), StatusCode::SEE_OTHER);
    assert!(verifies_as(&app, &second, None, "VALID").await);
    let response = sam.post(&format!("{key_base}/delete"), &[]).await;
    assert_eq!(location(&response), base);
    assert!(keys::reload(&mut app.conn(), &key).is_none());
    assert!(verifies_as(&app, &second, None, "NOT_FOUND").await);

    for action in ["key.create", "key.rename", "key.rekey", "key.deactivate", "key.reactivate", "key.delete"] {
        let recorded = events(&app, action);
        assert_eq!(recorded.len(), 1, "{action}");
        let event = &recorded[0];
        assert_eq!(event.actor_type, "staff", "{action}");
        assert_eq!(event.actor_label, "sam@support.test", "{action}");
        assert_eq!(event.service_provider_id, Some(provider.id), "{action}");
        assert_eq!(event.target_id.as_deref(), Some(key.public_id.as_str()), "{action}");
        assert!(!format!("{event:?}").contains(&secret[17..]), "no secret in the audit log");
    }

    // Web users, even the client's administrator, cannot reach a provider's keys.
    let admin = app.signed_in("admin@acme.test").await;
    assert_eq!(admin.get(&base).await.status(), StatusCode::FORBIDDEN);
    admin.page("/account").await;
    let response = admin.post(&base, &[("name", "sneaky"), ("actions_mode", "all")]).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(key_count(&app), 0);
}

#[actix_web::test]
async fn staff_browse_a_client_read_only_and_deactivate_a_key_in_an_incident() {
    let Platform { app, client, .. } = platform().await;
    let bob = user(&app, "bob@acme.test");
    let (key, secret) = keys::personal(&mut app.conn(), &app.hasher, &bob, "Dispatch board");
    let sam = app.signed_in("sam@support.test").await;

    let (_, list) = sam.page("/staff/organizations").await;
    assert!(list.contains("Acme Haulage") && list.contains("Fleetlink"));
    let org_page = format!("/staff/organizations/{}", client.id);
    let (status, page) = sam.page(&org_page).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("bob@acme.test") && page.contains("admin@acme.test"));
    assert!(page.contains("Dispatch board") && page.contains(&key.masked()));
    assert!(!page.contains(&secret) && !page.contains("/rekey") && !page.contains("New API key"), "read-only");

    // Every user, searchable, on the organization's users page.
    let (status, users) = sam.page(&format!("{org_page}/users?q=bob")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(users.contains("bob@acme.test") && !users.contains("admin@acme.test"), "{users}");

    let deactivate = format!("{org_page}/keys/{}/deactivate", key.public_id);
    let (status, confirm) = sam.page(&deactivate).await;
    assert_eq!(status, StatusCode::OK);
    assert!(Page::parse(&confirm).has("form textarea[name=reason], form input[name=reason]"));
    for reason in ["", "   ", &format!("found {secret} in a paste")] {
        let response = sam.post(&deactivate, &[("reason", reason)]).await;
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY, "{reason:?}");
    }
    assert!(keys::reload(&mut app.conn(), &key).unwrap().active);

    let response = sam.post(&deactivate, &[("reason", "Key seen in a public repository, ticket 4711")]).await;
    assert_eq!(location(&response), org_page);
    let (_, page) = sam.page(&org_page).await;
    assert!(page.contains("Deactivated the client&#39;s key") || page.contains("Deactivated the client's key"));
    let stopped = keys::reload(&mut app.conn(), &key).unwrap();
    assert!(!stopped.active);
    assert_eq!(stopped.deactivation_reason.as_deref(), Some("Key seen in a public repository, ticket 4711"));
    assert!(verifies_as(&app, &secret, Some("positions.read"), "DISABLED").await);
    let event = &events(&app, "key.deactivate")[0];
    assert_eq!((event.actor_type.as_str(), event.actor_label.as_str()), ("staff", "sam@support.test"));
    assert_eq!(event.organization_id, Some(client.id));
    assert_eq!(event.details["reason"], json!("Key seen in a public repository, ticket 4711"));

    // A key of another organization is not reachable through this one.
    let other = fixtures::organization(&mut app.conn(), "globex");
    let carol = fixtures::key_owner(&mut app.conn(), &other, "carol@globex.test");
    let (foreign, _) = keys::personal(&mut app.conn(), &app.hasher, &carol, "Globex key");
    let response = sam.post(&format!("{org_page}/keys/{}/deactivate", foreign.public_id), &[("reason", "x")]).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert!(keys::reload(&mut app.conn(), &foreign).unwrap().active);
}

#[actix_web::test]
async fn staff_never_create_or_rekey_a_client_key_by_any_request() {
    let Platform { app, provider, client } = platform().await;
    let admin = user(&app, "admin@acme.test");
    let bob = user(&app, "bob@acme.test");
    let (org_key, _) = keys::organization(&mut app.conn(), &app.hasher, &admin, "Client org key");
    let (personal, _) = keys::personal(&mut app.conn(), &app.hasher, &bob, "Client personal key");
    let sam = app.signed_in("sam@support.test").await;
    sam.page("/staff").await;
    let create = [("name", "Planted"), ("actions_mode", "all"), ("assets_mode", "all"), ("form_token", "t1")];
    let rekey = [("grace_minutes", "0"), ("form_token", "t2")];

    let org = client.id;
    let sp = provider.id;
    type Attempt<'a> = (String, &'a [(&'a str, &'a str)], StatusCode);
    let attempts: Vec<Attempt> = vec![
        (format!("/staff/organizations/{org}/keys"), &create, StatusCode::FORBIDDEN),
        (format!("/staff/organizations/{org}/keys/{}/rekey", org_key.public_id), &rekey, StatusCode::FORBIDDEN),
        ("/admin/keys".into(), &create, StatusCode::FORBIDDEN),
        ("/account/keys".into(), &create, StatusCode::FORBIDDEN),
        (format!("/admin/keys/{}/rekey", org_key.public_id), &rekey, StatusCode::FORBIDDEN),
        (format!("/account/keys/{}/rekey", personal.public_id), &rekey, StatusCode::FORBIDDEN),
        // A provider's pages reach only that provider's keys: a client key is not there.
        (format!("/staff/providers/{sp}/keys/{}/rekey", org_key.public_id), &rekey, StatusCode::NOT_FOUND),
        (format!("/staff/providers/{sp}/keys/{}/rekey", personal.public_id), &rekey, StatusCode::NOT_FOUND),
    ];
    for (path, fields, expected) in &attempts {
        let denied_before = denied_by_staff(&app).len();
        let response = sam.post(path, fields).await;
        assert_eq!(response.status(), *expected, "POST {path}");
        if *expected == StatusCode::FORBIDDEN {
            assert_eq!(denied_by_staff(&app).len(), denied_before + 1, "POST {path} leaves a denied audit entry");
        }
    }
    assert_eq!(key_count(&app), 2, "no key was created");
    assert_eq!(keys::reload(&mut app.conn(), &org_key).unwrap().secret_hash, org_key.secret_hash);
    assert_eq!(keys::reload(&mut app.conn(), &personal).unwrap().secret_hash, personal.secret_hash);
    assert!(keys::reload(&mut app.conn(), &org_key).unwrap().previous_secret_hash.is_none());
    assert!(denied_by_staff(&app).iter().all(|e| e.actor_label == "sam@support.test"));
    let staff_changes: i64 = audit_events::table
        .filter(audit_events::actor_type.eq("staff"))
        .filter(audit_events::result.ne("denied"))
        .filter(audit_events::action.like("key.%"))
        .count()
        .get_result(&mut *app.conn())
        .unwrap();
    assert_eq!(staff_changes, 0, "nothing but denied attempts");
}

#[actix_web::test]
async fn the_action_catalog_grows_and_retired_actions_leave_every_key() {
    let Platform { app, .. } = platform().await;
    let admin = user(&app, "admin@acme.test");
    let bob = user(&app, "bob@acme.test");
    let (all_actions, all_secret) = keys::organization(&mut app.conn(), &app.hasher, &admin, "Everything");
    let (listed, listed_secret) = keys::personal(&mut app.conn(), &app.hasher, &bob, "Positions only");
    let sam = app.signed_in("sam@support.test").await;

    // An action that is not in the catalog is refused even to a key allowed "all" actions.
    assert_eq!(verify_code(&app, &all_secret, Some("trips.read")).await, "FORBIDDEN_ACTION");

    sam.page("/staff/actions/new").await;
    for (code, error) in [("Trips", "dotted lower-case"), ("positions.read", "exists already")] {
        let response = sam.post("/staff/actions", &[("code", code), ("description", "x")]).await;
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY, "{code}");
        assert!(response.text().await.unwrap().contains(error), "{code}");
    }
    let response = sam.post("/staff/actions", &[("code", "trips.read"), ("description", "Read trips")]).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let (_, catalog) = sam.page("/staff/actions").await;
    assert!(catalog.contains("trips.read") && catalog.contains("Read trips"));
    assert!(verifies_as(&app, &all_secret, Some("trips.read"), "VALID").await, "new actions reach 'all'");

    let trips_id: i64 = keyward::db::schema::api_actions::table
        .filter(keyward::db::schema::api_actions::code.eq("trips.read"))
        .select(keyward::db::schema::api_actions::id)
        .first(&mut *app.conn())
        .unwrap();
    sam.page(&format!("/staff/actions/{trips_id}/edit")).await;
    let response = sam
        .post(
            &format!("/staff/actions/{trips_id}/edit"),
            &[("code", "trips.read"), ("description", "Read trips and stops")],
        )
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert!(sam.page("/staff/actions").await.1.contains("Read trips and stops"));

    // Retiring shows how many keys list the action first.
    let positions_id: i64 = keyward::db::schema::api_actions::table
        .filter(keyward::db::schema::api_actions::code.eq("positions.read"))
        .select(keyward::db::schema::api_actions::id)
        .first(&mut *app.conn())
        .unwrap();
    assert_eq!(verify_code(&app, &listed_secret, Some("positions.read")).await, "VALID");
    let (_, confirm) = sam.page(&format!("/staff/actions/{positions_id}/retire")).await;
    assert!(confirm.contains("Keys listing this action (1 key) lose it"), "{confirm}");
    let response = sam.post(&format!("/staff/actions/{positions_id}/retire"), &[]).await;
    assert_eq!(location(&response), "/staff/actions");
    assert!(sam.page("/staff/actions").await.1.contains("Retired positions.read; 1 key lost it."));
    assert_eq!(ApiKey::action_ids(&mut app.conn(), listed.id).unwrap().len(), 0);
    for secret in [&listed_secret, &all_secret] {
        assert!(verifies_as(&app, secret, Some("positions.read"), "FORBIDDEN_ACTION").await);
    }
    assert_eq!(verify_code(&app, &all_secret, Some("vehicles.read")).await, "VALID", "other actions stay");
    assert!(keys::reload(&mut app.conn(), &all_actions).unwrap().all_actions);

    sam.page("/staff/actions").await;
    sam.post(&format!("/staff/actions/{positions_id}/retire"), &[]).await;
    assert!(sam.page("/staff/actions").await.1.contains("retired already"));
    let retire = &events(&app, "api_action.retire")[0];
    assert_eq!((retire.actor_label.as_str(), retire.details["keys_losing_it"].clone()), ("sam@support.test", json!(1)));
    assert_eq!(audit_count(&app, "api_action.retire"), 1);
    assert_eq!(audit_count(&app, "api_action.create"), 1);
    assert_eq!(audit_count(&app, "api_action.describe"), 1);
}

#[actix_web::test]
async fn staff_accounts_are_managed_and_one_always_stays_active() {
    let Platform { app, .. } = platform().await;
    let sam = app.signed_in("sam@support.test").await;
    let kim = app.signed_in("kim@support.test").await;
    let (_, list) = sam.page("/staff/accounts").await;
    assert!(list.contains("sam@support.test") && list.contains("kim@support.test"));

    sam.page("/staff/accounts/new").await;
    let response =
        sam.post("/staff/accounts", &[("email", "not-an-email"), ("display_name", "Lee"), ("password", "x")]).await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let response = sam
        .post(
            "/staff/accounts",
            &[("email", "lee@support.test"), ("display_name", "Lee"), ("password", "a long password")],
        )
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(app.client().login("lee@support.test", "a long password").await.status(), StatusCode::SEE_OTHER);

    let kim_id = StaffAccount::find_by_email(&mut app.conn(), "kim@support.test").unwrap().unwrap().id;
    let (_, confirm) = sam.page(&format!("/staff/accounts/{kim_id}/deactivate")).await;
    assert!(confirm.contains("signed out everywhere"));
    let response = sam.post(&format!("/staff/accounts/{kim_id}/deactivate"), &[]).await;
    assert_eq!(location(&response), "/staff/accounts");
    assert_eq!(kim.get("/staff").await.status(), StatusCode::SEE_OTHER, "kim's session ended");
    assert_eq!(app.client().login("kim@support.test", PASSWORD).await.status(), StatusCode::UNAUTHORIZED);
    let event = &events(&app, "staff.deactivate")[0];
    assert_eq!(
        (event.actor_label.as_str(), event.target_label.as_deref()),
        ("sam@support.test", Some("kim@support.test"))
    );
    assert_eq!(event.details["sessions_ended"], json!(1));

    let lee_id = StaffAccount::find_by_email(&mut app.conn(), "lee@support.test").unwrap().unwrap().id;
    sam.page("/staff/accounts").await;
    sam.post(&format!("/staff/accounts/{lee_id}/deactivate"), &[]).await;
    let sam_id = StaffAccount::find_by_email(&mut app.conn(), "sam@support.test").unwrap().unwrap().id;
    sam.page("/staff/accounts").await;
    sam.post(&format!("/staff/accounts/{sam_id}/deactivate"), &[]).await;
    let (_, list) = sam.page("/staff/accounts").await;
    assert!(list.contains("This is the last active staff account."), "{list}");
    assert!(StaffAccount::find(&mut app.conn(), sam_id).unwrap().active);

    let response = sam.post(&format!("/staff/accounts/{kim_id}/reactivate"), &[]).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(app.client().login("kim@support.test", PASSWORD).await.status(), StatusCode::SEE_OTHER);
}

#[actix_web::test]
async fn staff_search_and_page_through_client_organizations() {
    let Platform { app, provider, .. } = platform().await;
    for i in 0..30 {
        fixtures::organization(&mut app.conn(), &format!("tenant-{i:02}"));
    }
    let sam = app.signed_in("sam@support.test").await;
    let (_, first) = sam.page("/staff/organizations").await;
    assert_eq!(first.matches("data-org=").count(), 25);
    assert!(first.contains("of 31") && first.contains("rel=\"next\""), "paged");
    let (_, second) = sam.page("/staff/organizations?page=2").await;
    assert_eq!(second.matches("data-org=").count(), 6);

    let (_, found) = sam.page("/staff/organizations?q=tenant-0").await;
    assert_eq!(found.matches("data-org=").count(), 10, "tenant-00 … tenant-09");
    let (_, none) = sam.page("/staff/organizations?q=nothing-like-this").await;
    assert!(none.contains("No organization matches"));

    let (_, clients) = sam.page(&format!("/staff/organizations?provider={}", provider.id)).await;
    assert_eq!(clients.matches("data-org=").count(), 1);
    assert!(clients.contains("Acme Haulage") && clients.contains("of Fleetlink"));
    let (_, overview) = sam.page("/staff").await;
    assert!(overview.contains("All organizations, with search"));
}
