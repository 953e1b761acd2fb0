//! The key lifecycle over HTTP: create and show once, rename, edit, deactivate, reactivate,
//! re-key with grace, end grace, delete; validation, policy, ceilings, audit and tenancy.

use diesel::prelude::*;
use keyward::{
    db::{
        models::{ApiKey, AuditEvent},
        schema::{api_keys, audit_events, organizations, users},
    },
    domain::Permission,
    keys::ParsedKey,
    services::keys::NewKeyOwner,
};
use reqwest::{StatusCode, header};

use crate::helpers::{Page, TestApp, TestClient, audit_count, csrf_token, fixtures, keys, location, spawn_app};

/// The hidden `form_token` of a page.
pub(crate) fn form_token(html: &str) -> String {
    Page::new(StatusCode::OK, html.to_string()).form_token()
}

/// The key shown on a show-once page (in its read-only field).
pub(crate) fn shown_secret(html: &str) -> Option<String> {
    Page::new(StatusCode::OK, html.to_string()).select("#new-key").value()
}

/// Opens `base/new` and submits it with `fields` (CSRF and form token added).
pub(crate) async fn submit_new(
    client: &TestClient,
    base: &str,
    fields: &[(&str, &str)],
) -> (StatusCode, String, header::HeaderMap) {
    let (status, page) = client.page(&format!("{base}/new")).await;
    assert_eq!(status, StatusCode::OK, "{base}/new opens");
    let token = form_token(&page);
    let mut all = vec![("form_token", token.as_str())];
    all.extend_from_slice(fields);
    let response = client.post(base, &all).await;
    let (status, headers) = (response.status(), response.headers().clone());
    (status, response.text().await.unwrap(), headers)
}

fn in_a_month() -> String {
    (chrono::Utc::now() + chrono::Duration::days(30)).date_naive().to_string()
}

struct Acme {
    app: TestApp,
    org_id: i64,
}

/// An organization with an administrator, a user with API key access who may grant the read
/// actions, a user without access, and a second organization with its own administrator.
async fn acme() -> Acme {
    let app = spawn_app().await;
    let mut conn = app.conn();
    let org = fixtures::acme_and_globex(&mut conn);
    fixtures::reader(&mut conn, &org, "bob@acme.test");
    fixtures::UserBuilder::new(&org, "carol@acme.test").insert(&mut conn);
    fixtures::inactive_proxy(&mut conn, &org, "proxy@acme.test");
    drop(conn);
    Acme { org_id: org.id, app }
}

fn key_named(app: &TestApp, name: &str) -> ApiKey {
    api_keys::table.filter(api_keys::name.eq(name)).select(ApiKey::as_select()).first(&mut *app.conn()).unwrap()
}

#[actix_web::test]
async fn a_user_with_access_creates_a_key_and_sees_it_exactly_once() {
    let Acme { app, .. } = acme().await;
    let bob = app.signed_in("bob@acme.test").await;
    let expires = in_a_month();
    let (status, body, headers) = submit_new(
        &bob,
        "/account/keys",
        &[
            ("name", "Dispatch integration"),
            ("comment", "Used by the dispatch board"),
            ("actions_mode", "selected"),
            ("action", "positions.read"),
            ("action", "vehicles.read"),
            ("expires_on", &expires),
            ("allowed_ips", "203.0.113.0/24"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(headers.get(header::CACHE_CONTROL).unwrap().to_str().unwrap().contains("no-store"));
    let secret = shown_secret(&body).expect("the key is shown");
    let parsed = ParsedKey::parse(&secret).expect("a well-formed key");
    assert!(body.contains("Copy it now"));

    // Only the keyed hash is stored, and it matches the shown key.
    let key = key_named(&app, "Dispatch integration");
    assert_eq!(key.public_id, parsed.public_id);
    assert!(app.hasher.matches(&secret, &key.secret_hash));
    assert_eq!(key.cidrs().iter().map(|c| c.to_string()).collect::<Vec<_>>(), ["203.0.113.0/24"]);
    assert!(!key.all_actions);
    assert_eq!(ApiKey::actions_of(&mut app.conn(), &[key.id]).unwrap()[&key.id], ["positions.read", "vehicles.read"]);

    // Never again: not in the list, not on the detail page, not in the audit log.
    let (_, list) = bob.page("/account/keys").await;
    assert!(list.contains(&key.masked()) && !list.contains(&secret));
    let (_, detail) = bob.page(&format!("/account/keys/{}", key.public_id)).await;
    assert!(detail.contains("Dispatch integration") && !detail.contains(&secret));
    assert_eq!(audit_count(&app, "key.create"), 1);
    let audit: Vec<AuditEvent> = audit_events::table.select(AuditEvent::as_select()).load(&mut *app.conn()).unwrap();
    let hash_hex: String = key.secret_hash.iter().map(|b| format!("{b:02x}")).collect();
    for event in audit {
        let text = format!("{event:?}");
        assert!(!text.contains(&secret[17..]) && !text.contains(&hash_hex), "no secret or hash in {text}");
    }
}

#[actix_web::test]
async fn replaying_the_create_form_creates_nothing_and_shows_nothing() {
    let Acme { app, .. } = acme().await;
    let bob = app.signed_in("bob@acme.test").await;
    let (_, page) = bob.page("/account/keys/new").await;
    let token = form_token(&page);
    let expires = in_a_month();
    let fields = [
        ("form_token", token.as_str()),
        ("name", "Once only"),
        ("actions_mode", "selected"),
        ("action", "positions.read"),
        ("expires_on", expires.as_str()),
    ];
    let first = bob.post("/account/keys", &fields).await;
    assert_eq!(first.status(), StatusCode::OK);
    assert!(shown_secret(&first.text().await.unwrap()).is_some());

    let replay = bob.post("/account/keys", &fields).await;
    assert_eq!(replay.status(), StatusCode::SEE_OTHER);
    let key = key_named(&app, "Once only");
    assert_eq!(location(&replay), format!("/account/keys/{}", key.public_id));
    let (_, page) = bob.page(&location(&replay)).await;
    assert!(page.contains("already created") && shown_secret(&page).is_none());
    let count: i64 = api_keys::table.count().get_result(&mut *app.conn()).unwrap();
    assert_eq!(count, 1);
}

#[actix_web::test]
async fn a_user_without_api_key_access_is_told_why_and_cannot_create() {
    let Acme { app, .. } = acme().await;
    let carol = app.signed_in("carol@acme.test").await;
    let page = carol.open("/account/keys").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.says("API key access has not been granted to you"));
    // One message, said once, with what to do about it.
    let card = page.select("#no-access").text();
    assert_eq!(card.matches("API key access").count(), 1, "{card}");
    assert!(card.contains("Ask an administrator of"), "{card}");
    assert!(!page.links_to("/account/keys/new"), "no way to a form she may not use");
    assert_eq!(carol.get("/account/keys/new").await.status(), StatusCode::FORBIDDEN);
    let response = carol.post("/account/keys", &[("name", "sneaky"), ("expires_on", &in_a_month())]).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let count: i64 = api_keys::table.count().get_result(&mut *app.conn()).unwrap();
    assert_eq!(count, 0);
}

#[actix_web::test]
async fn invalid_input_is_shown_again_with_field_errors_and_the_users_input() {
    let Acme { app, .. } = acme().await;
    let bob = app.signed_in("bob@acme.test").await;
    let leaked = keys::personal(&mut app.conn(), &app.hasher, &crate::helpers::user(&app, "bob@acme.test"), "x").1;
    let (status, body, _) = submit_new(
        &bob,
        "/account/keys",
        &[
            ("name", &format!("prod {leaked}")),
            ("comment", "keep this comment"),
            ("actions_mode", "selected"),
            ("allowed_ips", "not-an-ip"),
            ("expires_on", "2001-01-01"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(body.contains("must not contain a key"), "name error");
    assert!(body.contains("Choose at least one action"), "actions error");
    assert!(body.contains("is not an IP address"), "ip error");
    assert!(body.contains("must not be in the past"), "expiry error");
    assert!(body.contains("keep this comment"), "the comment is kept");
    assert!(body.contains("aria-invalid=\"true\""));
    assert!(shown_secret(&body).is_none() || !body.contains(&leaked[..20]) || body.contains("value=\"prod"));
    let count: i64 = api_keys::table.count().get_result(&mut *app.conn()).unwrap();
    assert_eq!(count, 1, "only the fixture key exists");
}

#[actix_web::test]
async fn a_key_never_gets_more_actions_than_its_creator_may_grant() {
    let Acme { app, .. } = acme().await;
    let bob = app.signed_in("bob@acme.test").await;
    let expires = in_a_month();
    let (status, body, _) = submit_new(
        &bob,
        "/account/keys",
        &[("name", "Too much"), ("actions_mode", "selected"), ("action", "vehicles.write"), ("expires_on", &expires)],
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(body.contains("Not allowed by your roles: vehicles.write"), "{body}");
    let (status, body, _) =
        submit_new(&bob, "/account/keys", &[("name", "Everything"), ("actions_mode", "all"), ("expires_on", &expires)])
            .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(body.contains("You may not grant all actions"));
    // The form offers only what bob may grant.
    let form = bob.open("/account/keys/new").await;
    let offered = form.select("input[name=action]").attrs("value");
    assert!(offered.contains(&"positions.read".to_string()) && !offered.contains(&"vehicles.write".to_string()));
    assert!(!form.has("#actions-all"), "no choice of all actions");
}

#[actix_web::test]
async fn an_administrator_creates_an_organization_key_attributed_to_a_proxy() {
    let Acme { app, .. } = acme().await;
    let admin = app.signed_in("admin@acme.test").await;
    let expires = in_a_month();
    // Without a choice, the proxy is the administrator creating the key.
    let (status, body, _) = submit_new(
        &admin,
        "/admin/keys",
        &[("name", "Admin's bridge"), ("actions_mode", "all"), ("expires_on", &expires)],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let admin_id = crate::helpers::user(&app, "admin@acme.test").id;
    assert_eq!(key_named(&app, "Admin's bridge").proxy_user_id, Some(admin_id), "the creator by default");

    // An inactive user may be the proxy.
    let proxy = crate::helpers::user(&app, "proxy@acme.test");
    let proxy_id = proxy.id.to_string();
    let (status, body, _) = submit_new(
        &admin,
        "/admin/keys",
        &[
            ("name", "Telematics bridge"),
            ("actions_mode", "all"),
            ("expires_on", &expires),
            ("proxy_user_id", &proxy_id),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let key = key_named(&app, "Telematics bridge");
    assert_eq!(key.owner_organization_id, Some(proxy.organization_id));
    assert_eq!(key.proxy_user_id, Some(proxy.id));
    assert!(key.all_actions);
    let (_, list) = admin.page("/admin/keys").await;
    assert!(list.contains("Telematics bridge") && list.contains("via proxy"));

    // A proxy from another organization is refused.
    let globex_admin = crate::helpers::user(&app, "admin@globex.test");
    let (status, _, _) = submit_new(
        &admin,
        "/admin/keys",
        &[
            ("name", "Cross"),
            ("actions_mode", "all"),
            ("expires_on", &expires),
            ("proxy_user_id", &globex_admin.id.to_string()),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
}

#[actix_web::test]
async fn the_organizations_key_policy_bounds_the_expiry() {
    let Acme { app, org_id } = acme().await;
    diesel::update(organizations::table.find(org_id))
        .set((organizations::key_max_lifetime_days.eq(Some(90)), organizations::key_default_lifetime_days.eq(60)))
        .execute(&mut *app.conn())
        .unwrap();
    let bob = app.signed_in("bob@acme.test").await;
    let form = bob.open("/account/keys/new").await;
    let default = (chrono::Utc::now() + chrono::Duration::days(60)).date_naive().to_string();
    assert_eq!(form.field("expires_on"), Some(default), "the default expiry comes from the policy");
    assert!(!form.has("#key-never"), "never-expiring keys are not offered");
    let too_late = (chrono::Utc::now() + chrono::Duration::days(91)).date_naive().to_string();
    let base = [("name", "Long"), ("actions_mode", "selected"), ("action", "positions.read")];
    let mut fields = base.to_vec();
    fields.push(("expires_on", &too_late));
    let (status, body, _) = submit_new(&bob, "/account/keys", &fields).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(body.contains("allows at most 90 days"));
    let mut fields = base.to_vec();
    fields.push(("never_expires", "on"));
    let (status, body, _) = submit_new(&bob, "/account/keys", &fields).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(body.contains("does not allow keys that never expire"));

    diesel::update(organizations::table.find(org_id))
        .set((organizations::key_max_lifetime_days.eq(None::<i32>), organizations::key_allow_never_expires.eq(true)))
        .execute(&mut *app.conn())
        .unwrap();
    let (status, _, _) = submit_new(&bob, "/account/keys", &fields).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(key_named(&app, "Long").expires_at, None);
}

#[actix_web::test]
async fn assets_of_another_organization_cannot_be_put_on_a_key() {
    use keyward::db::models::asset::Asset;
    let Acme { app, org_id } = acme().await;
    let globex = organizations::table
        .filter(organizations::slug.eq("globex"))
        .select(organizations::id)
        .first::<i64>(&mut *app.conn())
        .unwrap();
    let theirs = Asset::insert(&mut app.conn(), globex, "VAN-9", "Their van").unwrap();
    let ours = Asset::insert(&mut app.conn(), org_id, "TRK-1", "Our truck").unwrap();
    let bob = app.signed_in("bob@acme.test").await;
    let expires = in_a_month();
    let (status, body, _) = submit_new(
        &bob,
        "/account/keys",
        &[
            ("name", "Foreign asset"),
            ("actions_mode", "selected"),
            ("action", "positions.read"),
            ("assets_mode", "selected"),
            ("asset", &theirs.id.to_string()),
            ("expires_on", &expires),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(body.contains("Choose at least one asset"));
    let (status, _, _) = submit_new(
        &bob,
        "/account/keys",
        &[
            ("name", "Own asset"),
            ("actions_mode", "selected"),
            ("action", "positions.read"),
            ("assets_mode", "selected"),
            ("asset", &ours.id.to_string()),
            ("asset", &theirs.id.to_string()),
            ("expires_on", &expires),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let key = key_named(&app, "Own asset");
    let assets = ApiKey::assets_of(&mut app.conn(), &[key.id]).unwrap();
    assert_eq!(assets[&key.id].iter().map(|a| a.1.as_str()).collect::<Vec<_>>(), ["TRK-1"]);
}

#[actix_web::test]
async fn rename_edit_deactivate_and_reactivate_are_applied_and_audited() {
    let Acme { app, .. } = acme().await;
    let bob_user = crate::helpers::user(&app, "bob@acme.test");
    let (key, secret) = keys::create(
        &mut app.conn(),
        &app.hasher,
        NewKeyOwner::Personal { user_id: bob_user.id, organization_id: bob_user.organization_id },
        "Old name",
        keys::settings(Some(&["positions.read"])),
    );
    let bob = app.signed_in("bob@acme.test").await;
    let base = format!("/account/keys/{}", key.public_id);

    bob.page(&format!("{base}/rename")).await;
    let response = bob.post(&format!("{base}/rename"), &[("name", "New name"), ("return_to", "/account/keys")]).await;
    assert_eq!(location(&response), "/account/keys");
    let (_, list) = bob.page("/account/keys").await;
    assert!(list.contains("Renamed the key to &#34;New name&#34;."), "a flash message");
    assert_eq!(keys::reload(&mut app.conn(), &key).unwrap().name, "New name");

    let response = bob.post(&format!("{base}/rename"), &[("name", "")]).await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    bob.page(&format!("{base}/rename")).await;
    let response =
        bob.post(&format!("{base}/rename"), &[("name", "Newer"), ("return_to", "/account/keys\r\nX-Evil: 1")]).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER, "a malformed return path falls back, never a 500");
    assert_eq!(location(&response), base, "to the key's own page");
    bob.page(&format!("{base}/rename")).await;
    bob.post(&format!("{base}/rename"), &[("name", "New name")]).await;

    let expires = in_a_month();
    bob.page(&format!("{base}/edit")).await;
    let response = bob
        .post(
            &format!("{base}/edit"),
            &[
                ("comment", "Now with vehicles"),
                ("actions_mode", "selected"),
                ("action", "positions.read"),
                ("action", "vehicles.read"),
                ("allowed_ips", "198.51.100.7"),
                ("expires_on", &expires),
            ],
        )
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let edited = keys::reload(&mut app.conn(), &key).unwrap();
    assert_eq!(edited.comment, "Now with vehicles");
    assert_eq!(edited.cidrs()[0].to_string(), "198.51.100.7/32");
    assert_eq!(ApiKey::action_ids(&mut app.conn(), key.id).unwrap().len(), 2);

    let response = bob
        .post(
            &format!("{base}/edit"),
            &[("actions_mode", "selected"), ("action", "vehicles.write"), ("expires_on", &expires)],
        )
        .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY, "edit cannot exceed the ceiling either");

    let (_, confirm) = bob.page(&format!("{base}/deactivate")).await;
    assert!(confirm.contains("Deactivate &#34;New name&#34;?"));
    let leaky = format!("pasted by mistake: {secret}");
    let response = bob.post(&format!("{base}/deactivate"), &[("reason", &leaky)]).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST, "a reason holding a key is refused");
    assert!(keys::reload(&mut app.conn(), &key).unwrap().active);
    bob.page(&format!("{base}/deactivate")).await;
    let response = bob.post(&format!("{base}/deactivate"), &[("reason", "rotating vendors")]).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let deactivated = keys::reload(&mut app.conn(), &key).unwrap();
    assert!(!deactivated.active);
    assert_eq!(deactivated.deactivation_reason.as_deref(), Some("rotating vendors"));

    let response = bob.post(&format!("{base}/reactivate"), &[]).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let reactivated = keys::reload(&mut app.conn(), &key).unwrap();
    assert!(reactivated.active);
    assert_eq!(reactivated.expires_at, deactivated.expires_at, "reactivation never extends the expiry");

    assert_eq!(audit_count(&app, "key.rename"), 3, "New name, Newer, New name again");
    for action in ["key.update", "key.deactivate", "key.reactivate"] {
        assert_eq!(audit_count(&app, action), 1, "{action}");
    }
}

#[actix_web::test]
async fn rekey_keeps_the_old_secret_for_the_grace_period_and_never_more_than_two() {
    let Acme { app, .. } = acme().await;
    let bob_user = crate::helpers::user(&app, "bob@acme.test");
    let (key, original) = keys::personal(&mut app.conn(), &app.hasher, &bob_user, "Rotating");
    let bob = app.signed_in("bob@acme.test").await;
    let base = format!("/account/keys/{}", key.public_id);

    let (_, form) = bob.page(&format!("{base}/rekey")).await;
    assert!(form.contains("4 hours — default"), "the organization's default grace is preselected");
    let token = form_token(&form);
    let response = bob.post(&format!("{base}/rekey"), &[("grace_minutes", "60"), ("form_token", &token)]).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers().get(header::CACHE_CONTROL).unwrap().to_str().unwrap().contains("no-store"));
    let body = response.text().await.unwrap();
    let second = shown_secret(&body).unwrap();
    assert!(body.contains("The old secret keeps working until"));
    let rekeyed = keys::reload(&mut app.conn(), &key).unwrap();
    assert_eq!(ParsedKey::parse(&second).unwrap().public_id, key.public_id, "same public id");
    assert!(app.hasher.matches(&second, &rekeyed.secret_hash));
    assert!(app.hasher.matches(&original, rekeyed.previous_secret_hash.as_ref().unwrap()));
    let grace = rekeyed.previous_secret_expires_at.unwrap() - chrono::Utc::now();
    assert!(grace > chrono::Duration::minutes(59) && grace <= chrono::Duration::minutes(60));
    let (_, detail) = bob.page(&base).await;
    assert!(detail.contains("Re-key grace period") && detail.contains("End grace now"));

    // Replaying the re-key form changes nothing and shows nothing.
    let replay = bob.post(&format!("{base}/rekey"), &[("grace_minutes", "60"), ("form_token", &token)]).await;
    assert_eq!(replay.status(), StatusCode::SEE_OTHER);
    assert!(app.hasher.matches(&second, &keys::reload(&mut app.conn(), &key).unwrap().secret_hash));

    // A second re-key during the grace period ends the original secret at once.
    let (_, form) = bob.page(&format!("{base}/rekey")).await;
    assert!(form.contains("already in a grace period"));
    let response =
        bob.post(&format!("{base}/rekey"), &[("grace_minutes", "1440"), ("form_token", &form_token(&form))]).await;
    let third = shown_secret(&response.text().await.unwrap()).unwrap();
    let again = keys::reload(&mut app.conn(), &key).unwrap();
    assert!(app.hasher.matches(&third, &again.secret_hash));
    assert!(app.hasher.matches(&second, again.previous_secret_hash.as_ref().unwrap()));
    let valid = [&original, &second, &third]
        .iter()
        .filter(|s| {
            app.hasher.matches(s, &again.secret_hash)
                || again.previous_secret_hash.as_ref().is_some_and(|h| app.hasher.matches(s, h))
        })
        .count();
    assert_eq!(valid, 2, "at most two secrets are ever valid");

    // End grace now: only the newest secret is left.
    let response = bob.post(&format!("{base}/end-grace"), &[]).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let ended = keys::reload(&mut app.conn(), &key).unwrap();
    assert!(ended.previous_secret_hash.is_none() && ended.previous_secret_expires_at.is_none());

    // Immediately: no grace at all.
    let (_, form) = bob.page(&format!("{base}/rekey")).await;
    bob.post(&format!("{base}/rekey"), &[("grace_minutes", "0"), ("form_token", &form_token(&form))]).await;
    assert!(keys::reload(&mut app.conn(), &key).unwrap().previous_secret_hash.is_none());
    // A grace period that is not offered is refused.
    let (_, form) = bob.page(&format!("{base}/rekey")).await;
    let response =
        bob.post(&format!("{base}/rekey"), &[("grace_minutes", "99999"), ("form_token", &form_token(&form))]).await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(audit_count(&app, "key.rekey"), 3);
    assert_eq!(audit_count(&app, "key.end_grace"), 1);
}

#[actix_web::test]
async fn delete_removes_the_key_for_good_and_the_audit_log_remembers_it() {
    let Acme { app, .. } = acme().await;
    let bob_user = crate::helpers::user(&app, "bob@acme.test");
    let (key, _) = keys::personal(&mut app.conn(), &app.hasher, &bob_user, "Short-lived");
    let bob = app.signed_in("bob@acme.test").await;
    let base = format!("/account/keys/{}", key.public_id);
    let (_, confirm) = bob.page(&format!("{base}/delete")).await;
    assert!(confirm.contains("Delete &#34;Short-lived&#34;?") && confirm.contains("permanent"));
    let response = bob.post(&format!("{base}/delete"), &[("return_to", &base)]).await;
    assert_eq!(location(&response), "/account/keys", "never back to the deleted key's page");
    assert!(keys::reload(&mut app.conn(), &key).is_none());
    assert_eq!(bob.get(&base).await.status(), StatusCode::NOT_FOUND);
    let tombstone: AuditEvent = audit_events::table
        .filter(audit_events::action.eq("key.delete"))
        .select(AuditEvent::as_select())
        .first(&mut *app.conn())
        .unwrap();
    assert_eq!(tombstone.target_id.as_deref(), Some(key.public_id.as_str()));
    assert_eq!(tombstone.target_label.as_deref(), Some("Short-lived"));
    assert_eq!(tombstone.actor_label, "bob@acme.test");
}

#[actix_web::test]
async fn another_organizations_key_is_not_found_and_the_probe_learns_nothing_of_it() {
    let Acme { app, .. } = acme().await;
    let bob_user = crate::helpers::user(&app, "bob@acme.test");
    let (key, _) = keys::personal(&mut app.conn(), &app.hasher, &bob_user, "Acme key");
    let intruder = app.signed_in("admin@globex.test").await;
    let denied = |app: &TestApp| -> Vec<AuditEvent> {
        audit_events::table
            .filter(audit_events::result.eq("denied"))
            .select(AuditEvent::as_select())
            .load(&mut *app.conn())
            .unwrap()
    };
    // A public id that exists elsewhere and one that exists nowhere get the same answers and
    // leave the same trace (none), so the intruder's audit log cannot tell them apart.
    let made_up = "Zz9Yy8Xx";
    for public_id in [key.public_id.as_str(), made_up] {
        let base = format!("/admin/keys/{public_id}");
        for path in ["", "/rename", "/edit", "/rekey", "/deactivate", "/delete"] {
            assert_eq!(intruder.get(&format!("{base}{path}")).await.status(), StatusCode::NOT_FOUND, "GET {path}");
        }
        intruder.page("/admin/keys").await;
        for path in ["/rename", "/deactivate", "/delete", "/end-grace"] {
            let response = intruder.post(&format!("{base}{path}"), &[("name", "pwned")]).await;
            assert_eq!(response.status(), StatusCode::NOT_FOUND, "POST {path}");
        }
        let response = intruder.post(&format!("{base}/rekey"), &[("grace_minutes", "0")]).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        assert!(denied(&app).is_empty(), "probing {public_id} left {:?}", denied(&app));
    }
    let untouched = keys::reload(&mut app.conn(), &key).unwrap();
    assert_eq!((untouched.name.as_str(), untouched.active), ("Acme key", true));
    assert_eq!(untouched.secret_hash, key.secret_hash);

    // Inside its own organization a refused attempt on an existing key is recorded.
    let member = crate::helpers::user(&app, "bob@acme.test");
    let (admins_key, _) = keys::organization(&mut app.conn(), &app.hasher, &member, "Org key");
    let bob = app.signed_in("bob@acme.test").await;
    bob.page("/account/keys").await;
    let response = bob.post(&format!("/account/keys/{}/delete", admins_key.public_id), &[]).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let recorded = denied(&app);
    assert_eq!(recorded.len(), 1);
    assert_eq!(
        (recorded[0].actor_label.as_str(), recorded[0].target_label.as_deref()),
        ("bob@acme.test", Some("Org key"))
    );
}

#[actix_web::test]
async fn the_organization_list_filters_by_owner_state_and_expiry_and_paginates() {
    let Acme { app, .. } = acme().await;
    let bob_user = crate::helpers::user(&app, "bob@acme.test");
    let proxy = crate::helpers::user(&app, "proxy@acme.test");
    let mut conn = app.conn();
    for i in 0..27 {
        keys::personal(&mut conn, &app.hasher, &bob_user, &format!("Personal {i:02}"));
    }
    let (org_key, _) = keys::organization(&mut conn, &app.hasher, &proxy, "Org bridge");
    let mut settings = keys::settings(Some(&["positions.read"]));
    settings.expiry = keyward::services::keys::ExpiryChoice::InDays(3);
    let owner = NewKeyOwner::Personal { user_id: bob_user.id, organization_id: bob_user.organization_id };
    let (soon, _) = keys::create(&mut conn, &app.hasher, owner, "Soon expiring", settings);
    diesel::update(api_keys::table.find(org_key.id)).set(api_keys::active.eq(false)).execute(&mut conn).unwrap();
    drop(conn);

    let admin = app.signed_in("admin@acme.test").await;
    // The pager's summary, and the names of the keys listed.
    let showing = |page: &Page| page.select("nav.pagination > span:first-of-type").text();
    let names = |page: &Page| page.select("tr[data-key] td:first-child a").texts();
    let page1 = admin.open("/admin/keys").await;
    assert_eq!(showing(&page1), "Showing 1–25 of 29");
    assert_eq!(page1.select("tr[data-key]").len(), 25);
    assert!(page1.has("a[rel=next]") && !page1.has("a[rel=prev]"));
    let page2 = admin.open("/admin/keys?page=2").await;
    assert_eq!(showing(&page2), "Showing 26–29 of 29");
    assert!(page2.has("a[rel=prev]") && !page2.has("a[rel=next]"));

    let org_only = admin.open("/admin/keys?owner=organization").await;
    assert_eq!(names(&org_only), ["Org bridge"]);
    let inactive = admin.open("/admin/keys?state=inactive").await;
    assert_eq!((showing(&inactive), names(&inactive)), ("Showing 1–1 of 1".into(), vec!["Org bridge".to_string()]));
    let expiring = admin.open("/admin/keys?expiring=1").await;
    assert_eq!(names(&expiring), ["Soon expiring"]);
    // Three days from today's end: "in 3 days" or "in 4 days", by the hour of the run.
    let expected = format!("expires {}", keyward::views::time::relative(soon.expires_at.unwrap(), app.now()));
    assert!(expected.starts_with("expires in 3 days") || expected.starts_with("expires in 4 days"), "{expected}");
    assert_eq!(expiring.select("tr[data-key] .badge.expiring").text(), expected, "{expiring}");
    // The date itself is in its column, for every key that has one, not only those expiring soon.
    let date = soon.expires_at.unwrap().format("%-d %b %Y").to_string();
    assert_eq!(expiring.select("tr[data-key] .key-expires").text(), date, "{expiring}");
    let dated = page1.select("tr[data-key] .key-expires time").len();
    assert!(dated > 1, "every key with an expiry shows its date: {dated}");
    let search = admin.open("/admin/keys?q=personal+0").await;
    assert_eq!(showing(&search), "Showing 1–10 of 10", "search by name");
    let none = admin.open("/admin/keys?q=nothing-like-this").await;
    assert!(none.select("tr[data-key]").is_empty() && none.says("No keys match these filters"));

    // Bob's own list shows only his keys, without the owner filter.
    let bob = app.signed_in("bob@acme.test").await;
    let own = bob.open("/account/keys").await;
    assert_eq!(showing(&own), "Showing 1–25 of 28");
    assert!(!names(&own).contains(&"Org bridge".to_string()) && !own.has("#filter-owner"));
}

#[actix_web::test]
async fn losing_api_key_access_closes_the_own_keys_pages() {
    let Acme { app, .. } = acme().await;
    let bob_user = crate::helpers::user(&app, "bob@acme.test");
    let (key, _) = keys::personal(&mut app.conn(), &app.hasher, &bob_user, "Kept");
    let bob = app.signed_in("bob@acme.test").await;
    assert_eq!(bob.page(&format!("/account/keys/{}", key.public_id)).await.0, StatusCode::OK);
    diesel::update(users::table.find(bob_user.id))
        .set(users::api_key_access.eq(false))
        .execute(&mut *app.conn())
        .unwrap();
    let (_, list) = bob.page("/account/keys").await;
    assert!(list.contains("API key access has not been granted"));
    assert_eq!(bob.get(&format!("/account/keys/{}", key.public_id)).await.status(), StatusCode::FORBIDDEN);
}

#[actix_web::test]
async fn a_key_manager_role_manages_every_key_of_the_organization() {
    let Acme { app, .. } = acme().await;
    let org = crate::helpers::user(&app, "bob@acme.test").organization_id;
    let org = keyward::db::models::Organization::find(&mut app.conn(), org).unwrap();
    fixtures::UserBuilder::new(&org, "kim@acme.test").role(&[Permission::KeysManage]).insert(&mut app.conn());
    let bob_user = crate::helpers::user(&app, "bob@acme.test");
    let (key, _) = keys::personal(&mut app.conn(), &app.hasher, &bob_user, "Bob's");
    let kim = app.signed_in("kim@acme.test").await;
    let (status, list) = kim.page("/admin/keys").await;
    assert_eq!(status, StatusCode::OK);
    assert!(list.contains("Bob&#39;s") || list.contains("Bob's"));
    let response = kim.post(&format!("/admin/keys/{}/deactivate", key.public_id), &[]).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert!(!keys::reload(&mut app.conn(), &key).unwrap().active);
    // But an administrator's Account pages only show their own keys.
    let admin = app.signed_in("admin@acme.test").await;
    assert_eq!(admin.get(&format!("/account/keys/{}", key.public_id)).await.status(), StatusCode::NOT_FOUND);
}

#[actix_web::test]
async fn create_key_prints_only_the_key() {
    let Acme { app, .. } = acme().await;
    let url = crate::helpers::TestServer::get().url(&app.database);
    // The command derives the pepper from KEYWARD_SECRET, so use its own secret and check
    // the stored hash with a hasher derived the same way.
    let secret = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_keyward"))
        .env("DATABASE_URL", &url)
        .env("KEYWARD_SECRET", secret)
        .env_remove("KEYWARD_DATA_DIR")
        .args([
            "create-key",
            "--org",
            "acme",
            "--owner",
            "bob@acme.test",
            "--name",
            "CLI key",
            "--actions",
            "positions.read",
        ])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert_eq!(stdout.lines().count(), 1, "only the key on stdout: {stdout:?}");
    let printed = stdout.trim();
    assert!(ParsedKey::parse(printed).is_some());
    let hasher =
        keyward::keys::KeyHasher::new(keyward::secrets::MasterSecret::from_base64(secret).unwrap().derive().key_pepper);
    assert!(hasher.matches(printed, &key_named(&app, "CLI key").secret_hash));

    let refused = std::process::Command::new(env!("CARGO_BIN_EXE_keyward"))
        .env("DATABASE_URL", &url)
        .env("KEYWARD_SECRET", secret)
        .args(["create-key", "--org", "acme", "--owner", "carol@acme.test", "--name", "No access"])
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("does not have API key access"));
    assert!(refused.stdout.is_empty());
}

#[actix_web::test]
async fn forms_and_pages_are_guarded_by_csrf_and_sign_in() {
    let Acme { app, .. } = acme().await;
    let bob = app.signed_in("bob@acme.test").await;
    let (_, page) = bob.page("/account/keys/new").await;
    let response = bob.post_raw("/account/keys", &[("form_token", &form_token(&page)), ("name", "x")]).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN, "no CSRF token");
    let _ = csrf_token(&page);
    assert_eq!(app.client().get("/account/keys").await.status(), StatusCode::SEE_OTHER);
    assert_eq!(app.client().get("/admin/keys").await.status(), StatusCode::SEE_OTHER);
}

#[actix_web::test]
async fn an_expired_key_stays_expired() {
    let Acme { app, .. } = acme().await;
    let bob_user = crate::helpers::user(&app, "bob@acme.test");
    let (key, _) = keys::personal(&mut app.conn(), &app.hasher, &bob_user, "Ran out");
    // The fixture's keys expire in 30 days.
    app.advance(std::time::Duration::from_secs(31 * 86_400));
    let expired = keys::reload(&mut app.conn(), &key).unwrap();
    let bob = app.signed_in("bob@acme.test").await;
    let base = format!("/account/keys/{}", key.public_id);
    let page = bob.open(&base).await;
    assert!(page.select("h1").text().contains("Ran out"), "the key's page: {page}");
    assert!(!page.links_to(&format!("{base}/edit")) && !page.links_to(&format!("{base}/rekey")), "not offered");

    // A month from the app's now: a date that would bring the key back.
    let later = (app.now() + chrono::Duration::days(30)).date_naive().to_string();
    let response = bob
        .post(
            &format!("{base}/edit"),
            &[("actions_mode", "selected"), ("action", "positions.read"), ("expires_on", &later)],
        )
        .await;
    assert_eq!(response.status(), StatusCode::CONFLICT);
    assert!(response.text().await.unwrap().contains("stays expired"));
    assert_eq!(keys::reload(&mut app.conn(), &key).unwrap().expires_at, expired.expires_at);
    // Renaming and deleting still work.
    bob.page(&format!("{base}/rename")).await;
    assert_eq!(bob.post(&format!("{base}/rename"), &[("name", "Ran out (old)")]).await.status(), StatusCode::SEE_OTHER);
}

#[actix_web::test]
async fn confirmations_say_what_happens_and_name_the_key_escaped_once() {
    let Acme { app, .. } = acme().await;
    let bob_user = crate::helpers::user(&app, "bob@acme.test");
    let (key, _) = keys::personal(&mut app.conn(), &app.hasher, &bob_user, "Fleet <sync> & co");
    let bob = app.signed_in("bob@acme.test").await;
    let base = format!("/account/keys/{}", key.public_id);
    let (_, page) = bob.page(&format!("{base}/deactivate")).await;
    assert!(page.contains("Deactivate &#34;Fleet &#60;sync&#62; &#38; co&#34;?"), "{page}");
    assert!(page.contains("Integrations using this key stop working at once."));
    let response = bob.post(&format!("{base}/deactivate"), &[]).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let (_, detail) = bob.page(&base).await;
    assert!(detail.contains("Deactivated &#34;Fleet &#60;sync&#62; &#38; co&#34;: it no longer works."), "{detail}");

    // Reactivating says until when the key still works (it never extends the expiry) …
    let (_, page) = bob.page(&format!("{base}/reactivate")).await;
    let expires = key.expires_at.unwrap().format("%Y-%m-%d").to_string();
    assert!(page.contains(&format!("It still expires on {expires} (reactivation never extends the expiry).")));
    // … or that an expired key will not work again (31 days on: the fixture's keys expire in
    // 30; the session has long ended, so sign in again).
    app.advance(std::time::Duration::from_secs(31 * 86_400));
    let bob = app.signed_in("bob@acme.test").await;
    let (_, page) = bob.page(&format!("{base}/reactivate")).await;
    assert!(page.contains("reactivating it will not make it work."), "{page}");
}
