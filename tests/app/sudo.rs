//! Sudo mode (issue 17, item 5): adding or removing a second factor, new recovery codes, a
//! service provider's new key and granting administrator rights ask for a fresh proof of the
//! person — a code (or recovery code) of their second factor, or their password without
//! one — once the sign-in or the last confirmation is older than 10 minutes. Time moves with
//! the injected clock.

use std::time::Duration;

use diesel::prelude::*;
use keyward::{
    db::{models::ServiceProvider, schema::audit_events},
    services::login::ACCOUNT_FROM_ADDRESS_LIMIT,
};
use reqwest::StatusCode;

use crate::{
    helpers::{PASSWORD, TestApp, TestClient, audit_count, fixtures, location, spawn_app, user},
    second_factor::{code, enrol, wrong_code},
};

const STALE: Duration = Duration::from_secs(10 * 60 + 1);

/// The confirm page's address when it returns to `next`.
fn confirm_at(page: &str, next: &str) -> String {
    format!("{page}?{}", serde_html_form::to_string([("next", next)]).unwrap())
}

/// Audit events of `action` whose details name `stage`.
fn count_at_stage(app: &TestApp, action: &str, stage: &str) -> i64 {
    audit_events::table
        .filter(audit_events::action.eq(action))
        .select(audit_events::details)
        .load::<serde_json::Value>(&mut *app.conn())
        .unwrap()
        .iter()
        .filter(|d| d["stage"] == stage)
        .count() as i64
}

async fn grant_admin(client: &TestClient, id: i64) -> reqwest::Response {
    client.post(&format!("/admin/users/{id}/edit"), &[("display_name", "Promoted"), ("is_admin", "on")]).await
}

#[actix_web::test]
async fn a_sign_in_is_fresh_for_ten_minutes_then_each_gated_action_asks_for_the_password() {
    let app = spawn_app().await;
    let (organization, admin) = fixtures::organization_with_admin(&mut app.conn(), "acme");
    let bob = fixtures::reader(&mut app.conn(), &organization, "bob@acme.test");
    let carol = fixtures::reader(&mut app.conn(), &organization, "carol@acme.test");
    let client = app.signed_in(&admin.email).await;
    client.fetch_csrf_token("/account/security").await;

    // Signing in counts as fresh.
    assert_eq!(location(&grant_admin(&client, bob.id).await), format!("/admin/users/{}", bob.id));
    assert!(user(&app, "bob@acme.test").is_admin);

    app.advance(STALE);
    let edit = format!("/admin/users/{}/edit", carol.id);
    let asks = [
        (grant_admin(&client, carol.id).await, edit.clone()),
        (
            client
                .post(
                    "/admin/users",
                    &[
                        ("email", "boss@acme.test"),
                        ("display_name", "Boss"),
                        ("is_admin", "on"),
                        ("password_mode", "link"),
                    ],
                )
                .await,
            "/admin/users/new".to_string(),
        ),
        (client.post("/account/security/totp", &[]).await, "/account/security".to_string()),
    ];
    for (response, next) in asks {
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{next}");
        assert_eq!(location(&response), confirm_at("/account/confirm", &next));
    }
    assert!(!user(&app, "carol@acme.test").is_admin, "nothing was granted");
    assert_eq!(audit_count(&app, "user.create"), 0);
    assert_eq!(audit_count(&app, "second_factor.enrol"), 0);
    // Editing a name, or keeping an administrator one, is not gated.
    let bob_edit = format!("/admin/users/{}/edit", bob.id);
    let rename = client.post(&bob_edit, &[("display_name", "Bob"), ("is_admin", "on")]).await;
    assert_eq!(location(&rename), format!("/admin/users/{}", bob.id));

    // Without a second factor, the page asks for the password.
    let page = client.open(&confirm_at("/account/confirm", &edit)).await;
    assert_eq!(page.status, StatusCode::OK, "{page}");
    assert!(page.has_form("/account/confirm") && page.has("input[name=password]") && !page.has("input[name=code]"));
    assert_eq!(page.field("next").as_deref(), Some(edit.as_str()));
    let wrong = client.post("/account/confirm", &[("password", "not the password"), ("next", &edit)]).await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(count_at_stage(&app, "login.failure", "confirm"), 1, "audited like a failed sign-in");
    let right = client.post("/account/confirm", &[("password", PASSWORD), ("next", &edit)]).await;
    assert_eq!(location(&right), edit, "back to the page that asked");
    assert_eq!(audit_count(&app, "session.confirm"), 1);
    assert_eq!(location(&grant_admin(&client, carol.id).await), format!("/admin/users/{}", carol.id));
    assert!(user(&app, "carol@acme.test").is_admin);

    // Fresh again for ten minutes from the confirmation, then stale again.
    app.advance(Duration::from_secs(9 * 60));
    assert_eq!(location(&client.post("/account/security/totp", &[]).await), "/account/security/totp");
    app.advance(Duration::from_secs(2 * 60));
    let confirm = confirm_at("/account/confirm", "/account/security/totp");
    let response = client.post("/account/security/totp/confirm", &[("code", "000000")]).await;
    assert_eq!(location(&response), confirm);
}

#[actix_web::test]
async fn with_a_second_factor_the_gate_asks_for_a_code_or_a_recovery_code() {
    let app = spawn_app().await;
    let (_, admin) = fixtures::organization_with_admin(&mut app.conn(), "acme");
    let client = app.signed_in(&admin.email).await;
    let enrolled = enrol(&app, &client, "/account/security").await;

    app.advance(STALE);
    let remove = "/account/security/totp/remove";
    assert_eq!(location(&client.get(remove).await), confirm_at("/account/confirm", remove));
    assert_eq!(location(&client.post(remove, &[]).await), confirm_at("/account/confirm", remove));
    let regenerate = client.post("/account/security/recovery-codes", &[]).await;
    assert_eq!(location(&regenerate), confirm_at("/account/confirm", "/account/security"));

    let page = client.open(&confirm_at("/account/confirm", remove)).await;
    assert!(page.has("input[name=code]") && !page.has("input[name=password]"), "{page}");
    // The password is no proof here: the second factor is asked for.
    let response = client.post("/account/confirm", &[("password", PASSWORD), ("next", remove)]).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let wrong = wrong_code(&app, &enrolled.secret);
    let response = client.post("/account/confirm", &[("code", &wrong), ("next", remove)]).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(count_at_stage(&app, "second_factor.failure", "confirm"), 2);
    let right = client.post("/account/confirm", &[("code", &code(&app, &enrolled.secret)), ("next", remove)]).await;
    assert_eq!(location(&right), remove);
    assert!(client.open(remove).await.has_form(remove));

    // A recovery code proves it too, once.
    app.advance(STALE);
    let recovery = &enrolled.recovery_codes[0];
    let next = "/account/security";
    assert_eq!(location(&client.post("/account/confirm", &[("code", recovery), ("next", next)]).await), next);
    assert_eq!(count_at_stage(&app, "second_factor.recovery_code_use", "confirm"), 1);
    app.advance(STALE);
    let again = client.post("/account/confirm", &[("code", recovery), ("next", next)]).await;
    assert_eq!(again.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(audit_count(&app, "second_factor.remove"), 0);
}

#[actix_web::test]
async fn wrong_confirmations_are_throttled_with_sign_in_failures() {
    let app = spawn_app().await;
    let (_, admin) = fixtures::organization_with_admin(&mut app.conn(), "acme");
    let client = app.signed_in(&admin.email).await;
    client.fetch_csrf_token("/account").await;
    app.advance(STALE);

    for attempt in 0..ACCOUNT_FROM_ADDRESS_LIMIT {
        let response = client.post("/account/confirm", &[("password", "guess")]).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "attempt {attempt}");
    }
    let throttled = client.post("/account/confirm", &[("password", PASSWORD)]).await;
    assert_eq!(throttled.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(count_at_stage(&app, "second_factor.failure", "confirm"), 1, "the refusal is recorded");
    assert_eq!(
        location(&client.post("/account/security/totp", &[]).await),
        confirm_at("/account/confirm", "/account/security")
    );
    // The same throttle as signing in: the password is refused there too from here.
    let login = app.client().login(&admin.email, PASSWORD).await;
    assert_eq!(login.status(), StatusCode::TOO_MANY_REQUESTS);
}

#[actix_web::test]
async fn the_confirm_page_returns_only_to_local_pages() {
    let app = spawn_app().await;
    let (_, admin) = fixtures::organization_with_admin(&mut app.conn(), "acme");
    let client = app.signed_in(&admin.email).await;
    // Fresh: the page goes straight on, but never off the site.
    for bad in ["https://evil.example/", "//evil.example", "/\\evil.example", "/account/confirm", "/logout"] {
        let response = client.get(&confirm_at("/account/confirm", bad)).await;
        assert_eq!(location(&response), "/account", "{bad}");
    }
    app.advance(STALE);
    let page = client.open(&confirm_at("/account/confirm", "https://evil.example/")).await;
    assert_eq!(page.field("next").as_deref(), Some("/account"));
    let response = client.post("/account/confirm", &[("password", PASSWORD), ("next", "//evil.example")]).await;
    assert_eq!(location(&response), "/account");
    // A signed-out browser is sent to sign in first.
    assert!(location(&app.client().get("/account/confirm").await).starts_with("/login"));
}

#[actix_web::test]
async fn cancel_on_the_confirm_page_goes_back_to_where_the_person_came_from() {
    let app = spawn_app().await;
    let (_, admin) = fixtures::organization_with_admin(&mut app.conn(), "acme");
    let client = app.signed_in(&admin.email).await;
    app.advance(STALE);
    let next = "/admin/api-access/new";
    let confirm = confirm_at("/account/confirm", next);
    assert_eq!(location(&client.get(next).await), confirm);
    let cancel = |page: &crate::page::Page| page.select("form#confirm-form a.button").attr("href").unwrap();

    // The browser still names the list the "New token" link was on (a redirect keeps the
    // Referer): Cancel goes there, not to the page that asked (it would only ask again).
    let page = client.open_from(&confirm, &app.url("/admin/api-access")).await;
    assert_eq!((cancel(&page), page.field("next").unwrap()), ("/admin/api-access".into(), next.into()));
    // A failed attempt keeps it.
    let wrong = [("password", "not it"), ("next", next), ("back", "/admin/api-access")];
    let response = client.post("/account/confirm", &wrong).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(cancel(&crate::page::Page::parse(&response.text().await.unwrap())), "/admin/api-access");

    // Another site, the asking page itself, the confirm page or no Referer at all: home.
    for referer in [
        "https://evil.example/admin/api-access".to_string(),
        app.url(next),
        app.url(&confirm),
        "not an address".to_string(),
    ] {
        assert_eq!(cancel(&client.open_from(&confirm, &referer).await), "/account", "{referer}");
    }
    assert_eq!(cancel(&client.open(&confirm).await), "/account");
    for back in ["//evil.example", next] {
        let response = client.post("/account/confirm", &[("password", "not it"), ("next", next), ("back", back)]).await;
        assert_eq!(cancel(&crate::page::Page::parse(&response.text().await.unwrap())), "/account", "{back}");
    }
}

#[actix_web::test]
async fn staff_confirm_before_creating_a_service_providers_key() {
    let app = spawn_app().await;
    let provider = ServiceProvider::insert(&mut app.conn(), "Fleetlink").unwrap();
    fixtures::staff(&mut app.conn(), "sam@support.test");
    let sam = app.signed_in("sam@support.test").await;
    let new = format!("/staff/providers/{}/keys/new", provider.id);
    assert_eq!(sam.open(&new).await.status, StatusCode::OK, "fresh after signing in");

    app.advance(STALE);
    assert_eq!(location(&sam.get(&new).await), confirm_at("/staff/confirm", &new));
    sam.fetch_csrf_token("/staff").await;
    let base = format!("/staff/providers/{}/keys", provider.id);
    let create = sam.post(&base, &[("name", "Sneaky"), ("actions_mode", "all"), ("assets_mode", "all")]).await;
    assert_eq!(location(&create), confirm_at("/staff/confirm", &new));
    assert_eq!(audit_count(&app, "key.create"), 0);

    let page = sam.open(&confirm_at("/staff/confirm", &new)).await;
    assert!(page.has_form("/staff/confirm"), "{page}");
    // Staff always have a second factor (set up at their first sign-in): a code proves it.
    let wrong = sam.post("/staff/confirm", &[("code", "000000"), ("next", &new)]).await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(count_at_stage(&app, "second_factor.failure", "confirm"), 1);
    let code = app.factors.fresh_code("sam@support.test");
    let right = sam.post("/staff/confirm", &[("code", code.as_str()), ("next", &new)]).await;
    assert_eq!(location(&right), new);
    assert_eq!(sam.open(&new).await.status, StatusCode::OK);
}
