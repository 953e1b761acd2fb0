//! Passkeys (issue 17): adding and naming them, removing them, signing in and confirming it's
//! you with one — in headless Chromium with WebDriver's virtual authenticator, so every
//! ceremony is the browser's real one against the real verifier — and, over plain HTTP, what
//! the passkey addresses refuse.

use std::time::Duration;

use diesel::prelude::*;
use fantoccini::Locator;
use keyward::db::schema::{passkeys, recovery_codes};
use reqwest::{StatusCode, header};

use crate::{
    browser::Browser,
    helpers::{PASSWORD, TestApp, audit_count, fixtures, location, spawn_app},
    second_factor::{code, enrol, half_signed_in},
};

const ENROL: &str = "/login/enrol";

const SECOND_FACTOR: &str = "/login/second-factor";

/// An organization with an administrator (no second factor yet).
async fn world() -> TestApp {
    let app = spawn_app().await;
    let mut conn = app.conn();
    let org = fixtures::organization(&mut conn, "acme");
    fixtures::UserBuilder::new(&org, "admin@acme.test").admin().insert(&mut conn);
    drop(conn);
    app
}

/// Gives the password on the login page, leaving the browser at the next step.
async fn password_step(browser: &Browser, email: &str) {
    browser.goto("/login").await;
    browser.find("#email").await.send_keys(email).await.unwrap();
    browser.find("#password").await.send_keys(PASSWORD).await.unwrap();
    browser.find("form[action='/login'] button[type=submit]").await.click().await.unwrap();
}

async fn sign_out(browser: &Browser) {
    browser.find("header details.user-menu summary").await.click().await.unwrap();
    browser.find("header form[action='/logout'] button").await.click().await.unwrap();
    browser.find("#email").await;
}

/// Adds a passkey named `name` from Account → Security, as a person would.
async fn add_passkey(browser: &Browser, name: &str) {
    browser.goto("/account/security").await;
    browser.find("a[href='/account/security/passkeys/new']").await.click().await.unwrap();
    browser.find("#passkey-name").await.send_keys(name).await.unwrap();
    browser.find("form[data-passkey='create'] button[type=submit]").await.click().await.unwrap();
}

/// The recovery codes the page shows once, after "Done" was clicked.
async fn take_recovery_codes(browser: &Browser) -> Vec<String> {
    browser.wait_for_text(".show-once-notice", "will not be shown again").await;
    let codes = browser.find("#recovery-codes").await.prop("value").await.unwrap().unwrap();
    browser.find(".form-actions a.button.primary").await.click().await.unwrap();
    codes.lines().map(str::to_string).collect()
}

fn passkey_names(app: &TestApp) -> Vec<String> {
    passkeys::table.select(passkeys::name).order(passkeys::id).load(&mut app.conn()).unwrap()
}

#[actix_web::test]
async fn an_administrator_enrols_a_passkey_and_totp_and_signs_in_with_each_and_a_recovery_code_once() {
    use keyward::services::second_factor::totp;
    let app = world().await;
    let browser = Browser::open(&app, true).await;
    browser.add_virtual_authenticator().await;
    browser.sign_in("admin@acme.test").await;

    // The first passkey is the account's first second factor: recovery codes come with it.
    add_passkey(&browser, "Work laptop").await;
    let first_codes = take_recovery_codes(&browser).await;
    assert_eq!(first_codes.len(), 10, "{first_codes:?}");
    browser.wait_for_text(".flash-success", "Work laptop").await;
    browser.wait_for_text("#passkeys", "Work laptop").await;
    assert!(browser.find("#passkeys .passkey").await.text().await.unwrap().contains("never used"));
    assert_eq!(passkey_names(&app), ["Work laptop"]);

    // Then an authenticator app: the recovery codes already saved stay the ones that work.
    browser.find("form[action='/account/security/totp'] button[type=submit]").await.click().await.unwrap();
    let shown = browser.find("#totp-secret").await.text().await.unwrap().replace(' ', "");
    let secret = totp_rs::Secret::try_from_base32(&shown).unwrap().as_bytes().to_vec();
    browser.find("#code").await.send_keys(&code(&app, &secret)).await.unwrap();
    browser.find("form[action='/account/security/totp/confirm'] button[type=submit]").await.click().await.unwrap();
    browser.wait_for_text(".flash-success", "authenticator app is set up").await;
    browser.wait_for_text("#recovery-left", "10 of 10").await;
    let codes = first_codes;
    assert_eq!(audit_count(&app, "second_factor.enrol"), 2);
    sign_out(&browser).await;

    // Signing in with the passkey: the page offers it beside the code.
    app.advance(Duration::from_secs(30));
    password_step(&browser, "admin@acme.test").await;
    browser.find("form[data-passkey='get'] button[type=submit]").await.click().await.unwrap();
    browser.wait_for_text(".flash-success", "Welcome").await;
    let used: Vec<Option<chrono::DateTime<chrono::Utc>>> =
        passkeys::table.select(passkeys::last_used_at).load(&mut app.conn()).unwrap();
    assert!(used[0].is_some(), "the passkey's use is recorded");
    browser.goto("/account/security").await;
    browser.wait_for_text("#passkeys .passkey", "last used").await;
    sign_out(&browser).await;

    // With a code of the authenticator app.
    app.advance(Duration::from_secs(30));
    password_step(&browser, "admin@acme.test").await;
    let code_now = totp::code_at(&secret, app.now().timestamp()).unwrap();
    browser.find("form[action='/login/second-factor'] #code").await.send_keys(&code_now).await.unwrap();
    browser.find("form[action='/login/second-factor'] button[type=submit]").await.click().await.unwrap();
    browser.wait_for_text(".flash-success", "Welcome").await;
    sign_out(&browser).await;

    // With a recovery code, once.
    for attempt in 0..2 {
        password_step(&browser, "admin@acme.test").await;
        browser.find("form[action='/login/second-factor'] #code").await.send_keys(&codes[3]).await.unwrap();
        browser.find("form[action='/login/second-factor'] button[type=submit]").await.click().await.unwrap();
        if attempt == 0 {
            browser.wait_for_text(".flash-info", "9 left").await;
            sign_out(&browser).await;
        } else {
            browser.wait_for_text("#code-error", "not correct").await;
        }
    }
    let mut conn = app.conn();
    let methods: Vec<Option<serde_json::Value>> = keyward::db::schema::audit_events::table
        .filter(keyward::db::schema::audit_events::action.eq("login.success"))
        .order(keyward::db::schema::audit_events::id)
        .select(keyward::db::schema::audit_events::details.nullable())
        .load(&mut conn)
        .unwrap();
    let methods: Vec<String> = methods
        .iter()
        .map(|d| d.as_ref().and_then(|d| d["second_factor"].as_str()).unwrap_or("").to_string())
        .collect();
    for method in ["passkey", "totp", "recovery_code"] {
        assert!(methods.iter().any(|m| m == method), "{method} in {methods:?}");
    }
    browser.close().await;
}

#[actix_web::test]
async fn passkeys_are_named_once_each_confirm_it_is_you_and_the_last_one_takes_the_recovery_codes_along() {
    let app = world().await;
    let browser = Browser::open(&app, true).await;
    browser.add_virtual_authenticator().await;
    browser.sign_in("admin@acme.test").await;
    add_passkey(&browser, "Work laptop").await;
    take_recovery_codes(&browser).await;
    browser.wait_for_text("#passkeys", "Work laptop").await;

    // A name used already is refused before any ceremony, beside the field, keeping it.
    add_passkey(&browser, "work LAPTOP").await;
    browser.wait_for_text("[data-passkey-error]", "with this name already").await;
    assert_eq!(browser.find("#passkey-name").await.attr("aria-invalid").await.unwrap().as_deref(), Some("true"));
    // The same authenticator declines a second passkey of this account (it is excluded).
    let name = browser.find("#passkey-name").await;
    name.clear().await.unwrap();
    name.send_keys("Same laptop again").await.unwrap();
    browser.find("form[data-passkey='create'] button[type=submit]").await.click().await.unwrap();
    browser.wait_for_text("[data-passkey-error]", "has a passkey for your account already").await;
    assert_eq!(passkey_names(&app), ["Work laptop"]);

    // Eleven minutes later, removing it asks to confirm it's you: with the passkey.
    app.advance(Duration::from_secs(11 * 60));
    browser.goto("/account/security").await;
    browser.find("#passkeys a[href$='/remove']").await.click().await.unwrap();
    browser.wait_for_text("h1", "Confirm it's you").await;
    browser.find("form[data-passkey='get'] button[type=submit]").await.click().await.unwrap();
    browser.wait_for_text("h1", "Remove the passkey").await;
    browser.wait_for_text("main", "only second factor").await;
    browser.find("button.danger").await.click().await.unwrap();
    browser.wait_for_text(".flash-success", "is removed").await;
    assert!(passkey_names(&app).is_empty());
    let codes: i64 = recovery_codes::table.count().get_result(&mut app.conn()).unwrap();
    assert_eq!(codes, 0, "no second factor is left, so no recovery code either");
    assert_eq!(audit_count(&app, "second_factor.remove"), 1);
    assert_eq!(audit_count(&app, "session.confirm"), 1);
    browser.find("a[href='/account/security/passkeys/new']").await;
    browser.close().await;
}

#[actix_web::test]
async fn staff_who_must_have_a_second_factor_can_enrol_a_passkey_at_sign_in() {
    let app = spawn_app().await;
    let staff = fixtures::staff(&mut app.conn(), "kim@support.test");
    let browser = Browser::open(&app, true).await;
    browser.add_virtual_authenticator().await;
    password_step(&browser, &staff.email).await;
    browser.find("a[href='/login/enrol/passkeys/new']").await.click().await.unwrap();
    browser.find("#passkey-name").await.send_keys("Desk key").await.unwrap();
    browser.find("form[data-passkey='create'] button[type=submit]").await.click().await.unwrap();
    take_recovery_codes(&browser).await;
    browser.wait_for_text(".flash-success", "Welcome").await;
    assert_eq!(browser.client.current_url().await.unwrap().path(), "/staff");

    // And signs in with it next time.
    sign_out(&browser).await;
    password_step(&browser, &staff.email).await;
    browser.find("form[data-passkey='get'] button[type=submit]").await.click().await.unwrap();
    browser.wait_for_text(".flash-success", "Welcome").await;
    browser.close().await;
}

#[actix_web::test]
async fn without_javascript_the_second_factor_page_offers_the_code_and_says_why_not_a_passkey() {
    let app = world().await;
    let browser = Browser::open(&app, true).await;
    browser.add_virtual_authenticator().await;
    browser.sign_in("admin@acme.test").await;
    add_passkey(&browser, "Work laptop").await;
    let codes = take_recovery_codes(&browser).await;
    browser.close().await;

    let plain = Browser::open(&app, false).await;
    password_step(&plain, "admin@acme.test").await;
    plain.find("form[action='/login/second-factor'] #code").await;
    let passkey_form = plain.client.find(Locator::Css("form[data-passkey='get']")).await.unwrap();
    assert!(!passkey_form.is_displayed().await.unwrap(), "the passkey button needs JavaScript");
    plain.find("form[action='/login/second-factor'] #code").await.send_keys(&codes[0]).await.unwrap();
    plain.find("form[action='/login/second-factor'] button[type=submit]").await.click().await.unwrap();
    plain.wait_for_text(".flash-success", "Welcome").await;
    plain.close().await;
}

/// A passkey row for `email` straight in the database (its credential is not a real one: the
/// HTTP tests below never get as far as checking a signature).
fn stored_passkey(app: &TestApp, user_id: i64, name: &str) -> i64 {
    diesel::insert_into(passkeys::table)
        .values((
            passkeys::user_id.eq(user_id),
            passkeys::name.eq(name),
            passkeys::credential_id.eq(name.as_bytes()),
            passkeys::credential.eq(serde_json::json!({ "not": "a credential" })),
        ))
        .returning(passkeys::id)
        .get_result(&mut app.conn())
        .unwrap()
}

async fn json_of(response: reqwest::Response) -> serde_json::Value {
    assert!(
        response.headers().get(header::CONTENT_TYPE).is_some_and(|v| v.to_str().unwrap().contains("json")),
        "{response:?}"
    );
    response.json().await.unwrap()
}

#[actix_web::test]
async fn the_passkey_addresses_refuse_what_they_should_with_clear_answers() {
    let app = spawn_app().await;
    let mut conn = app.conn();
    let (acme, admin) = fixtures::organization_with_admin(&mut conn, "acme");
    let other = fixtures::UserBuilder::new(&acme, "other@acme.test").admin().insert(&mut conn);
    drop(conn);
    let theirs = stored_passkey(&app, other.id, "Their key");

    // Over 127.0.0.1, the pages say where passkeys work (a browser refuses them on an address).
    let client = app.signed_in(&admin.email).await;
    let page = client.open("/account/security").await;
    let origin = format!("http://localhost:{}", app.address.port());
    assert!(page.select("main").text().contains(&format!("Passkeys work only at {origin}")), "{page}");

    // A name is checked before a ceremony starts.
    client.open("/account/security/passkeys/new").await;
    let refused = client.post("/account/security/passkeys/options", &[("name", "  ")]).await;
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body = json_of(refused).await;
    assert_eq!(body["field"], "name");
    assert!(body["error"].as_str().unwrap().contains("passkey name"), "{body}");
    let started = client.post("/account/security/passkeys/options", &[("name", "Laptop")]).await;
    assert_eq!(started.status(), StatusCode::OK);
    let options = json_of(started).await;
    assert_eq!(options["publicKey"]["rp"]["id"], "localhost");
    assert!(options["publicKey"]["challenge"].as_str().is_some_and(|c| c.len() >= 32), "{options}");

    // An answer that is not a credential adds nothing, is audited, and the challenge is spent.
    let response = client.post("/account/security/passkeys", &[("name", "Laptop"), ("credential", "{}")]).await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(audit_count(&app, "second_factor.failure"), 1);
    let again = client.post("/account/security/passkeys", &[("name", "Laptop"), ("credential", "{}")]).await;
    assert_eq!(again.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(again.text().await.unwrap().contains("took too long, or the page was sent twice"));
    // Without JavaScript there is no answer at all: said so.
    let plain = client.post("/account/security/passkeys", &[("name", "Laptop")]).await;
    assert_eq!(plain.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(plain.text().await.unwrap().contains("Passkeys need JavaScript"));

    // Another account's passkey is not found (nor removed: "removed already", as for one
    // removed in another tab), and stays.
    let response = client.get(&format!("/account/security/passkeys/{theirs}/remove")).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let response = client.post(&format!("/account/security/passkeys/{theirs}/remove"), &[]).await;
    assert_eq!(location(&response), "/account/security");
    assert!(client.open("/account/security").await.select(".flash-info").text().contains("removed already"));
    assert_eq!(passkey_names(&app), ["Their key"]);
    assert_eq!(audit_count(&app, "second_factor.remove"), 0);

    // Eleven minutes on, adding one asks to confirm it's you first, the JSON address included.
    app.advance(Duration::from_secs(11 * 60));
    let stale = client.post("/account/security/passkeys/options", &[("name", "Laptop")]).await;
    assert_eq!(location(&stale), "/account/confirm?next=%2Faccount%2Fsecurity%2Fpasskeys%2Fnew");
}

#[actix_web::test]
async fn a_passkey_answer_at_sign_in_is_checked_audited_and_throttled_and_a_half_session_adds_none() {
    let app = spawn_app().await;
    let mut conn = app.conn();
    let (_, admin) = fixtures::organization_with_admin(&mut conn, "acme");
    drop(conn);
    let enrolled = enrol(&app, &app.signed_in(&admin.email).await, "/account/security").await;

    // An account without passkeys gets no passkey challenge; a session without a password none.
    let anonymous = app.client();
    anonymous.open("/login").await;
    let refused = anonymous.post("/login/passkey/options", &[]).await;
    assert_eq!(refused.status(), StatusCode::CONFLICT);
    assert!(json_of(refused).await["error"].as_str().unwrap().contains("password first"));
    let half = half_signed_in(&app, &admin.email).await;
    let none = half.post("/login/passkey/options", &[]).await;
    assert_eq!(none.status(), StatusCode::CONFLICT);
    assert!(json_of(none).await["error"].as_str().unwrap().contains("no passkey"));

    // An answer without a challenge fails like a wrong code: audited, counted, not signed in.
    let before = audit_count(&app, "second_factor.failure");
    let response = half.post("/login/passkey", &[("credential", "{\"id\":\"x\"}")]).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(response.text().await.unwrap().contains("The passkey could not be verified"));
    assert_eq!(audit_count(&app, "second_factor.failure"), before + 1);
    assert_eq!(location(&half.get("/account").await), SECOND_FACTOR);

    // A half-signed-in session reaches no passkey page of the account.
    for page in ["/account/security/passkeys/new", "/account/security"] {
        assert_eq!(location(&half.get(page).await), SECOND_FACTOR, "{page}");
    }
    let response = half.post("/account/security/passkeys/options", &[("name", "Sneaky")]).await;
    assert_eq!(location(&response), SECOND_FACTOR);

    // Enough failures throttle the code too.
    for _ in 0..12 {
        half.post("/login/passkey", &[("credential", "{}")]).await;
    }
    let throttled = half.post(SECOND_FACTOR, &[("code", &code(&app, &enrolled.secret))]).await;
    assert_eq!(throttled.status(), StatusCode::TOO_MANY_REQUESTS);
}

#[actix_web::test]
async fn a_sign_in_setting_up_a_factor_gives_it_instead_once_the_account_has_one() {
    let app = spawn_app().await;
    let staff = fixtures::staff(&mut app.conn(), "kim@support.test");
    // Three sessions past the password, each setting up a factor.
    let mut setting_up = Vec::new();
    for _ in 0..3 {
        let client = app.client();
        assert_eq!(location(&client.login(&staff.email, PASSWORD).await), ENROL);
        assert_eq!(client.open(ENROL).await.status, StatusCode::OK);
        setting_up.push(client);
    }

    // Meanwhile a passkey is added to the account (in another session): none of them may add a
    // factor of its own and be signed in by it.
    diesel::insert_into(passkeys::table)
        .values((
            passkeys::staff_id.eq(staff.id),
            passkeys::name.eq("Desk key"),
            passkeys::credential_id.eq(b"desk".as_slice()),
            passkeys::credential.eq(serde_json::json!({})),
        ))
        .execute(&mut app.conn())
        .unwrap();
    let totp = setting_up[0].post("/login/enrol/totp", &[]).await;
    assert_eq!(location(&totp), "/login");
    let options = setting_up[1].post("/login/enrol/passkeys/options", &[("name", "Mine")]).await;
    assert_eq!(options.status(), StatusCode::CONFLICT, "no challenge to answer");
    let register = setting_up[2].post("/login/enrol/passkeys", &[("name", "Mine"), ("credential", "{}")]).await;
    assert_eq!(location(&register), "/login");
    for client in &setting_up {
        assert_eq!(location(&client.get(ENROL).await), "/login");
        assert_eq!(location(&client.get("/staff").await), "/login?next=%2Fstaff");
    }
    let factors: i64 = keyward::db::schema::totp_factors::table.count().get_result(&mut app.conn()).unwrap();
    assert_eq!(factors, 0);
    assert_eq!(passkey_names(&app), ["Desk key"]);
    // A new sign-in asks for the passkey.
    assert_eq!(location(&app.client().login(&staff.email, PASSWORD).await), SECOND_FACTOR);
}

#[actix_web::test]
async fn removing_the_app_keeps_the_codes_while_a_passkey_remains_and_a_reset_removes_passkeys_too() {
    let app = spawn_app().await;
    let mut conn = app.conn();
    let (acme, admin) = fixtures::organization_with_admin(&mut conn, "acme");
    let member = fixtures::UserBuilder::new(&acme, "member@acme.test").insert(&mut conn);
    drop(conn);
    let client = app.signed_in(&member.email).await;
    enrol(&app, &client, "/account/security").await;
    stored_passkey(&app, member.id, "Laptop");

    let page = client.open("/account/security/totp/remove").await;
    assert!(page.select("main").text().contains("other second factors and your recovery codes keep working"), "{page}");
    let response = client.post("/account/security/totp/remove", &[]).await;
    assert_eq!(location(&response), "/account/security");
    let page = client.open("/account/security").await;
    assert!(page.select(".flash-success").text().contains("passkeys and recovery codes keep working"), "{page}");
    assert!(page.select("#recovery-left").text().contains("10 of 10"), "{page}");

    // An administrator's reset takes the passkeys as well, and ends the member's sessions.
    let admin_client = app.signed_in(&admin.email).await;
    admin_client.open(&format!("/admin/users/{}", member.id)).await;
    let response = admin_client.post(&format!("/admin/users/{}/reset-second-factor", member.id), &[]).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert!(passkey_names(&app).is_empty());
    let codes: i64 = recovery_codes::table.count().get_result(&mut app.conn()).unwrap();
    assert_eq!(codes, 0);
    let details: serde_json::Value = keyward::db::schema::audit_events::table
        .filter(keyward::db::schema::audit_events::action.eq("second_factor.reset"))
        .select(keyward::db::schema::audit_events::details)
        .first(&mut app.conn())
        .unwrap();
    assert_eq!(details["passkeys_removed"], 1, "{details}");
    assert_eq!(location(&client.get("/account").await), "/login?next=%2Faccount");
}
