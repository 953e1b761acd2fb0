//! What issue 16's users tripped over, walked through in a real browser: a key whose owner
//! lost access reads Disabled and why, granting access says what it allows, an administrator
//! adds a key for a user from their page, a re-key's old secret shows its use within
//! seconds, and a provider's key pages name the provider in every dialog.

use serde_json::json;

use crate::{
    browser::Browser,
    helpers::{TestApp, fixtures, keys, spawn_app, user, verify_code},
};

/// Acme (served by Fleetlink) with an administrator, Bob (API key access, read actions),
/// Carol (a key of hers, then her access taken away) and Erin (access, no API actions).
async fn world() -> TestApp {
    let app = spawn_app().await;
    let mut conn = app.conn();
    let (_, acme) = fixtures::served_organization(&mut conn, "acme", "Fleetlink");
    fixtures::admin(&mut conn, &acme, "admin@acme.test");
    fixtures::reader(&mut conn, &acme, "bob@acme.test");
    let carol = fixtures::reader(&mut conn, &acme, "carol@acme.test");
    keys::personal(&mut conn, &app.hasher, &carol, "Carol's sync");
    {
        use diesel::prelude::*;
        use keyward::db::schema::users;
        diesel::update(users::table.find(carol.id)).set(users::api_key_access.eq(false)).execute(&mut conn).unwrap();
    }
    fixtures::UserBuilder::new(&acme, "erin@acme.test")
        .role(&[keyward::domain::Permission::KeysManage])
        .insert(&mut conn);
    fixtures::staff(&mut conn, "sam@support.test");
    drop(conn);
    app
}

#[actix_web::test]
async fn an_administrator_sees_true_states_grants_knowingly_and_adds_a_key_for_a_user() {
    let app = world().await;
    let browser = Browser::open(&app, true).await;
    browser.sign_in("admin@acme.test").await;

    // 1. Carol's key reads Disabled, with the reason, in the organization's list.
    browser.goto("/admin/keys").await;
    browser.wait_for_text("tr[data-key] .key-state", "Disabled").await;
    browser.wait_for_text("tr[data-key] .key-state .state-reason", "owner has no API key access").await;

    // 3. Granting access says what the person could put on keys, or warns.
    let carol = user(&app, "carol@acme.test");
    browser.goto(&format!("/admin/users/{}", carol.id)).await;
    browser.open_dialog("a.switch").await;
    browser.wait_for_text("dialog[open]", "with positions.read").await;
    browser.axe("dialog[open]").await;
    browser.find("dialog[open] .dialog-close").await.click().await.unwrap();
    browser.wait_gone("dialog[open]").await;
    let erin = user(&app, "erin@acme.test");
    browser.goto(&format!("/admin/users/{}", erin.id)).await;
    browser.wait_for_text("main", "Their roles allow no API actions").await;

    // 6. A key for Bob from his page: created in a dialog, shown once, listed on his page.
    let bob = user(&app, "bob@acme.test");
    browser.goto(&format!("/admin/users/{}", bob.id)).await;
    browser.open_dialog("#user-keys a[data-dialog][href$='/keys/new']").await;
    browser.find("dialog[open] #key-name").await.send_keys("Bob's dashboard").await.unwrap();
    browser.find("dialog[open] button[type=submit]").await.click().await.unwrap();
    let secret = browser.find("dialog[open] #new-key").await.prop("value").await.unwrap().unwrap();
    assert_eq!(verify_code(&app, &secret, Some("positions.read")).await, "VALID");
    browser.find("dialog[open] [data-dialog-done]").await.click().await.unwrap();
    browser.wait_gone("dialog[open]").await;
    browser.goto(&format!("/admin/users/{}", bob.id)).await;
    browser.wait_for_text("#user-keys tr[data-key]", "Bob's dashboard").await;

    // 7. Re-keyed with a grace period, the old secret's use shows within seconds.
    browser.goto("/admin/keys?q=dashboard").await;
    browser.menu_item("tr[data-key] a[href*='/rekey']").await;
    browser.find("dialog[open] #rekey-grace").await.select_by_value("60").await.unwrap();
    browser.find("dialog[open] button[type=submit]").await.click().await.unwrap();
    browser.find("dialog[open] #new-key").await;
    browser.find("dialog[open] [data-dialog-done]").await.click().await.unwrap();
    browser.wait_gone("dialog[open]").await;
    browser.goto("/admin/keys?q=dashboard").await;
    browser.find("tr[data-key] .key-name a").await.click().await.unwrap();
    browser.wait_for_text("#grace-heading", "Re-key grace period").await;
    browser.wait_for_text("main", "a use shows here within about ten seconds").await;
    assert_eq!(verify_code(&app, &secret, Some("positions.read")).await, "VALID", "the old secret still works");
    app.state.verifier.flush_usage().await.unwrap();
    browser.client.refresh().await.unwrap();
    browser.wait_for_text("main", "it is still being used").await;
    browser.close().await;
}

#[actix_web::test]
async fn support_staff_see_the_provider_named_in_its_key_pages_and_every_dialog() {
    let app = world().await;
    let browser = Browser::open(&app, true).await;
    browser.sign_in("sam@support.test").await;
    browser.goto("/staff/providers").await;
    browser.find("main a[href$='/keys']").await.click().await.unwrap();
    browser.wait_for_text("h1", "API keys of Fleetlink").await;
    let dialog = browser.open_dialog(".page-head a[data-dialog]").await;
    assert!(dialog.text().await.unwrap().contains("Fleetlink"));
    browser.find("dialog[open] #key-name").await.send_keys("Locator control").await.unwrap();
    browser.find("dialog[open] button[type=submit]").await.click().await.unwrap();
    browser.find("dialog[open] #new-key").await;
    browser.find("dialog[open] [data-dialog-done]").await.click().await.unwrap();
    browser.wait_gone("dialog[open]").await;
    for op in ["rename", "rekey", "deactivate", "delete"] {
        browser.menu_item(&format!("tr[data-key] a[href*='/{op}']")).await;
        browser.wait_for_text("dialog[open] .dialog-head .eyebrow", "Keys of Fleetlink").await;
        let heading_seen = browser
            .js("const e = document.querySelector('dialog[open] .eyebrow').getBoundingClientRect(); \
                 return e.height > 0 && e.top >= 0")
            .await;
        assert_eq!(heading_seen, json!(true), "{op}: the provider is named where the eye lands");
        browser.find("dialog[open] .dialog-close").await.click().await.unwrap();
        browser.wait_gone("dialog[open]").await;
    }
    browser.close().await;
}
