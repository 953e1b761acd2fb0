//! Second factor (issue 17): enrolling an authenticator app from Account → Security (users and
//! staff), signing in with a code or a recovery code, the half-signed-in session that opens
//! nothing else, replay, throttling, removal, and the audit trail of each. Codes are computed
//! here from the secret the page shows, at the application's (injected) clock.

use std::time::Duration;

use diesel::{connection::SimpleConnection, prelude::*};
use keyward::{
    db::schema::totp_factors,
    services::{login::ACCOUNT_FROM_ADDRESS_LIMIT, second_factor::totp},
};
use reqwest::{StatusCode, header};

use crate::helpers::{Page, TestApp, TestClient, audit_count, fixtures, location, spawn_app};

const SECOND_FACTOR: &str = "/login/second-factor";
const ENROL: &str = "/login/enrol";

/// An enrolled authenticator as the test holds it: its secret and the recovery codes shown.
pub(crate) struct Enrolled {
    pub(crate) secret: Vec<u8>,
    pub(crate) recovery_codes: Vec<String>,
}

/// The code of `secret` at the application's clock.
pub(crate) fn code(app: &TestApp, secret: &[u8]) -> String {
    totp::code_at(secret, app.now().timestamp()).unwrap()
}

/// Six digits that are none of the codes accepted around now.
pub(crate) fn wrong_code(app: &TestApp, secret: &[u8]) -> String {
    let now = app.now().timestamp();
    let accepted: Vec<String> = (-2..=2).map(|s| totp::code_at(secret, now + s * totp::STEP_SECS).unwrap()).collect();
    (0..1_000_000).map(|n| format!("{n:06}")).find(|c| !accepted.contains(c)).unwrap()
}

/// The secret shown on the setup page (grouped base32), decoded.
fn shown_secret(page: &Page) -> Vec<u8> {
    let text = page.select("#totp-secret").text().replace(' ', "");
    totp_rs::Secret::try_from_base32(&text).expect("the page shows a base32 secret").as_bytes().to_vec()
}

fn shown_codes(page: &Page) -> Vec<String> {
    page.select("#recovery-codes").text().split_whitespace().map(str::to_string).collect()
}

/// Starts an enrolment under `base` and returns the setup page.
async fn start_enrolment(client: &TestClient, base: &str) -> Page {
    client.fetch_csrf_token(base).await;
    let response = client.post(&format!("{base}/totp"), &[]).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), format!("{base}/totp"));
    let page = client.open(&format!("{base}/totp")).await;
    assert_eq!(page.status, StatusCode::OK, "{page}");
    page
}

/// Enrols an authenticator for the signed-in `client` under `base`, then moves the clock to
/// the next time step (the enrolment code's step is spent).
pub(crate) async fn enrol(app: &TestApp, client: &TestClient, base: &str) -> Enrolled {
    let setup = start_enrolment(client, base).await;
    let secret = shown_secret(&setup);
    let response = client.post(&format!("{base}/totp/confirm"), &[("code", &code(app, &secret))]).await;
    assert_eq!(response.status(), StatusCode::OK);
    let page = Page::new(StatusCode::OK, response.text().await.unwrap());
    let recovery_codes = shown_codes(&page);
    assert_eq!(recovery_codes.len(), 10, "{page}");
    app.advance(Duration::from_secs(30));
    Enrolled { secret, recovery_codes }
}

/// A client that gave the right password for `email` and is now asked for the second factor.
pub(crate) async fn half_signed_in(app: &TestApp, email: &str) -> TestClient {
    let client = app.client();
    let response = client.login(email, crate::helpers::PASSWORD).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), SECOND_FACTOR, "{email} is asked for the second factor");
    let page = client.open(SECOND_FACTOR).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.has_form(SECOND_FACTOR), "{page}");
    client
}

/// A client signed in as `email` with the password and a code of `secret`.
pub(crate) async fn signed_in_with_code(app: &TestApp, email: &str, secret: &[u8]) -> TestClient {
    let client = half_signed_in(app, email).await;
    let response = give_code(&client, &code(app, secret)).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_ne!(location(&response), SECOND_FACTOR);
    // A later sign-in in the same step needs the next step's code.
    app.advance(Duration::from_secs(30));
    client
}

async fn give_code(client: &TestClient, code: &str) -> reqwest::Response {
    client.post(SECOND_FACTOR, &[("code", code)]).await
}

#[actix_web::test]
async fn an_authenticator_counts_only_after_a_correct_code_and_its_secret_is_sealed() {
    let app = spawn_app().await;
    let (_, admin) = fixtures::organization_with_admin(&mut app.conn(), "acme");
    let client = app.signed_in(&admin.email).await;
    let account = client.open("/account").await;
    assert!(account.select("nav.sidebar a").attrs("href").contains(&"/account/security".to_string()));
    let security = client.open("/account/security").await;
    assert!(security.has_form("/account/security/totp"), "{security}");

    let setup = start_enrolment(&client, "/account/security").await;
    let secret = shown_secret(&setup);
    assert_eq!(secret.len(), 20);
    let qr = setup.select("img.qr-code").attr("src").unwrap();
    assert!(qr.starts_with("data:image/svg+xml;base64,"), "{qr}");
    let uri = setup.select(".totp-uri").text();
    assert!(uri.starts_with("otpauth://totp/Keyward:"), "{uri}");
    assert!(uri.contains(&admin.email.replace('@', "%40")) && uri.contains("issuer=Keyward"), "{uri}");
    // The pending secret lives server-side: the form carries no secret to trust.
    assert!(setup.field("secret").is_none());
    // Reloading the page shows the same pending secret.
    assert_eq!(shown_secret(&client.open("/account/security/totp").await), secret);

    let wrong = client.post("/account/security/totp/confirm", &[("code", &wrong_code(&app, &secret))]).await;
    assert_eq!(wrong.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(audit_count(&app, "second_factor.failure"), 1);
    assert_eq!(audit_count(&app, "second_factor.enrol"), 0);
    // Not enrolled yet: the password alone still signs in.
    assert_eq!(location(&app.client().login(&admin.email, crate::helpers::PASSWORD).await), "/account");

    let response = client.post("/account/security/totp/confirm", &[("code", &code(&app, &secret))]).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers()[header::CACHE_CONTROL].to_str().unwrap().contains("no-store"));
    let page = Page::new(StatusCode::OK, response.text().await.unwrap());
    assert!(page.has(".show-once-notice"), "{page}");
    let codes = shown_codes(&page);
    assert_eq!(codes.len(), 10);
    assert!(codes.iter().all(|c| c.len() == 11), "{codes:?}");
    assert_eq!(audit_count(&app, "second_factor.enrol"), 1);

    let sealed: Vec<u8> = totp_factors::table.select(totp_factors::secret_sealed).first(&mut *app.conn()).unwrap();
    assert!(!sealed.windows(secret.len()).any(|w| w == secret.as_slice()), "the secret is not stored as such");
    let security = client.open("/account/security").await;
    assert!(security.says("10 of 10 recovery codes left"), "{security}");
    assert!(!security.has_form("/account/security/totp"));
    // A second set-up is refused while one is on: the enrolled secret stays as it was.
    let again = client.post("/account/security/totp", &[]).await;
    assert_eq!(location(&again), "/account/security");
    let still: Vec<u8> = totp_factors::table.select(totp_factors::secret_sealed).first(&mut *app.conn()).unwrap();
    assert_eq!(still, sealed);

    app.advance(Duration::from_secs(30));
    assert_eq!(location(&app.client().login(&admin.email, crate::helpers::PASSWORD).await), SECOND_FACTOR);
}

#[actix_web::test]
async fn signing_in_asks_for_a_code_renews_the_session_at_each_step_and_accepts_a_code_once() {
    let app = spawn_app().await;
    let (_, admin) = fixtures::organization_with_admin(&mut app.conn(), "acme");
    let enrolled = enrol(&app, &app.signed_in(&admin.email).await, "/account/security").await;

    let client = app.client();
    client.open("/login").await;
    let anonymous = client.cookie().expect("the login page's session");
    let response = client.login(&admin.email, crate::helpers::PASSWORD).await;
    assert_eq!(location(&response), SECOND_FACTOR);
    let half = client.cookie().unwrap();
    assert_ne!(half, anonymous, "the password step renews the session");
    assert_eq!(audit_count(&app, "login.second_factor_asked"), 1);
    assert_eq!(audit_count(&app, "login.success"), 1, "only the enrolling sign-in so far");

    let current = code(&app, &enrolled.secret);
    let page = client.open(SECOND_FACTOR).await;
    assert!(page.says("authenticator app"), "{page}");
    let response = give_code(&client, &current).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), "/account");
    let full = client.cookie().unwrap();
    assert_ne!(full, half, "the second step renews the session");
    assert_eq!(client.open("/account").await.status, StatusCode::OK);
    assert_eq!(audit_count(&app, "login.success"), 2);

    // The old half-signed-in cookie is worth nothing now.
    let stale = app.client();
    stale.set_cookie(Some(half));
    assert_eq!(location(&stale.get("/account").await), "/login?next=%2Faccount");

    // The same code (same time step) is refused to a second sign-in: it was used.
    let second = half_signed_in(&app, &admin.email).await;
    let replay = give_code(&second, &current).await;
    assert_eq!(replay.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(location(&second.get("/account").await), SECOND_FACTOR);
    // The next step's code works.
    app.advance(Duration::from_secs(30));
    let response = give_code(&second, &code(&app, &enrolled.secret)).await;
    assert_eq!(location(&response), "/account");
    assert_eq!(audit_count(&app, "second_factor.failure"), 1, "the replay was recorded");
}

#[actix_web::test]
async fn a_half_signed_in_session_opens_nothing_but_the_second_factor_page_and_expires() {
    let app = spawn_app().await;
    let mut conn = app.conn();
    let (acme, admin) = fixtures::organization_with_admin(&mut conn, "acme");
    let proxy = fixtures::key_owner(&mut conn, &acme, "proxy@acme.test");
    let (key, _) = fixtures::keys::organization(&mut conn, &app.hasher, &proxy, "Telematics");
    drop(conn);
    let enrolled = enrol(&app, &app.signed_in(&admin.email).await, "/account/security").await;

    // Every page an administrator is offered, and a key's pages, as the administrator sees them.
    let full = signed_in_with_code(&app, &admin.email, &enrolled.secret).await;
    let mut pages: Vec<String> = full.open("/account").await.select("nav.sidebar a").attrs("href");
    assert!(pages.len() >= 9, "{pages:?}");
    for key_page in ["", "/rename", "/edit", "/rekey"] {
        pages.push(format!("/admin/keys/{}{key_page}", key.public_id));
    }
    pages.extend(["/", "/login", "/account/keys/new", "/staff", "/staff/providers"].map(str::to_string));
    for page in &pages {
        assert_ne!(full.get(page).await.status(), StatusCode::NOT_FOUND, "{page} exists");
    }

    let half = half_signed_in(&app, &admin.email).await;
    for page in &pages {
        let response = half.get(page).await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{page}");
        assert_eq!(location(&response), SECOND_FACTOR, "{page}");
    }
    // Forms too, with the session's own CSRF token.
    half.fetch_csrf_token(SECOND_FACTOR).await;
    for (form, fields) in [
        ("/account/keys", vec![("name", "sneaky")]),
        ("/account/security/totp/remove", vec![("password", crate::helpers::PASSWORD)]),
        ("/admin/users", vec![("email", "new@acme.test"), ("display_name", "New")]),
    ] {
        let response = half.post(form, &fields).await;
        assert_eq!(location(&response), SECOND_FACTOR, "{form}");
    }
    // The JSON API answers 401: a session cookie is no credential there.
    let api = half.get("/api/v1/me").await;
    assert_eq!(api.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(audit_count(&app, "key.create"), 1, "the fixture key only");

    // Five minutes to give the code, then the password is asked again.
    app.advance(Duration::from_secs(5 * 60 + 1));
    assert_eq!(location(&half.get("/account").await), "/login?next=%2Faccount");
    let late = half_signed_in(&app, &admin.email).await;
    app.advance(Duration::from_secs(5 * 60 + 1));
    let response = give_code(&late, &code(&app, &enrolled.secret)).await;
    assert_eq!(location(&response), "/login?expired=1");
    assert_eq!(location(&late.get("/account").await), "/login?next=%2Faccount");
}

#[actix_web::test]
async fn recovery_codes_work_exactly_once_each_and_new_ones_replace_them() {
    let app = spawn_app().await;
    let (acme, _) = fixtures::organization_with_admin(&mut app.conn(), "acme");
    let member = fixtures::UserBuilder::new(&acme, "member@acme.test").insert(&mut app.conn());
    let client = app.signed_in(&member.email).await;
    let enrolled = enrol(&app, &client, "/account/security").await;
    let codes = &enrolled.recovery_codes;

    let first = half_signed_in(&app, &member.email).await;
    assert_eq!(location(&give_code(&first, &codes[0]).await), "/account");
    assert!(first.open("/account").await.says("9 left"));
    assert_eq!(audit_count(&app, "second_factor.recovery_code_use"), 1);

    let again = half_signed_in(&app, &member.email).await;
    assert_eq!(give_code(&again, &codes[0]).await.status(), StatusCode::UNAUTHORIZED, "a code works once");
    // Typed in capitals and without the dash, another code still works.
    let typed = codes[1].replace('-', "").to_uppercase();
    assert_eq!(location(&give_code(&again, &typed).await), "/account");
    assert!(client.open("/account/security").await.says("8 of 10 recovery codes left"));

    let response = client.post("/account/security/recovery-codes", &[]).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers()[header::CACHE_CONTROL].to_str().unwrap().contains("no-store"));
    let fresh = shown_codes(&Page::new(StatusCode::OK, response.text().await.unwrap()));
    assert_eq!(fresh.len(), 10);
    assert_eq!(audit_count(&app, "second_factor.recovery_codes_regenerate"), 1);

    let old = half_signed_in(&app, &member.email).await;
    assert_eq!(give_code(&old, &codes[2]).await.status(), StatusCode::UNAUTHORIZED, "old codes stop working");
    assert_eq!(location(&give_code(&old, &fresh[0]).await), "/account");
    assert_eq!(audit_count(&app, "second_factor.failure"), 2);
}

#[actix_web::test]
async fn wrong_codes_are_throttled_like_passwords_and_audited() {
    let app = spawn_app().await;
    let (_, admin) = fixtures::organization_with_admin(&mut app.conn(), "acme");
    let enrolled = enrol(&app, &app.signed_in(&admin.email).await, "/account/security").await;

    let client = half_signed_in(&app, &admin.email).await;
    for attempt in 0..ACCOUNT_FROM_ADDRESS_LIMIT {
        let response = give_code(&client, &wrong_code(&app, &enrolled.secret)).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "attempt {attempt}");
        let page = Page::new(StatusCode::UNAUTHORIZED, response.text().await.unwrap());
        assert!(page.says("not correct"), "{page}");
    }
    assert_eq!(audit_count(&app, "second_factor.failure"), ACCOUNT_FROM_ADDRESS_LIMIT);
    // Now even the right code is refused from here, and so is the password.
    let throttled = give_code(&client, &code(&app, &enrolled.secret)).await;
    assert_eq!(throttled.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(location(&client.get("/account").await), SECOND_FACTOR);
    let response = app.client().login(&admin.email, crate::helpers::PASSWORD).await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(audit_count(&app, "second_factor.failure"), ACCOUNT_FROM_ADDRESS_LIMIT + 1, "the refusal is recorded");
}

#[actix_web::test]
async fn removing_the_authenticator_ends_the_code_step() {
    let app = spawn_app().await;
    let (_, admin) = fixtures::organization_with_admin(&mut app.conn(), "acme");
    let client = app.signed_in(&admin.email).await;
    let enrolled = enrol(&app, &client, "/account/security").await;
    let pending = half_signed_in(&app, &admin.email).await;

    // Signed in moments ago: sudo mode lets the removal through (see `sudo` for the rest).
    let form = client.open("/account/security/totp/remove").await;
    assert!(form.has_form("/account/security/totp/remove"), "{form}");
    assert_eq!(audit_count(&app, "second_factor.remove"), 0);
    let response = client.post("/account/security/totp/remove", &[]).await;
    assert_eq!(location(&response), "/account/security");
    assert_eq!(audit_count(&app, "second_factor.remove"), 1);
    assert!(client.open("/account/security").await.has_form("/account/security/totp"));

    assert_eq!(location(&app.client().login(&admin.email, crate::helpers::PASSWORD).await), "/account");
    // A half-signed-in session from before the removal cannot finish with the old app's code.
    let response = give_code(&pending, &code(&app, &enrolled.secret)).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(location(&pending.get("/account").await), SECOND_FACTOR);
}

#[actix_web::test]
async fn staff_enrol_and_sign_in_with_a_code_and_their_half_session_opens_no_staff_page() {
    let app = spawn_app().await;
    let staff = fixtures::staff(&mut app.conn(), "support@keyward.test");
    // Staff must have a second factor: the first sign-in sets one up.
    let client = app.client();
    assert_eq!(location(&client.login(&staff.email, crate::helpers::PASSWORD).await), ENROL);
    assert_eq!(location(&client.get("/staff").await), ENROL);
    let enrolled = enrol(&app, &client, ENROL).await;
    assert_eq!(audit_count(&app, "second_factor.enrol"), 1);
    let home = client.open("/staff").await;
    let nav = home.select("nav.sidebar a").attrs("href");
    assert!(nav.contains(&"/staff/security".to_string()), "{nav:?}");
    assert!(client.open("/staff/security").await.says("10 of 10 recovery codes left"));

    let half = half_signed_in(&app, &staff.email).await;
    for page in nav.iter().map(String::as_str).chain(["/account", "/admin"]) {
        assert_eq!(location(&half.get(page).await), SECOND_FACTOR, "{page}");
    }
    let response = give_code(&half, &code(&app, &enrolled.secret)).await;
    assert_eq!(location(&response), "/staff");
    assert_eq!(half.open("/staff/security").await.status, StatusCode::OK);

    let other = half_signed_in(&app, &staff.email).await;
    assert_eq!(location(&give_code(&other, &enrolled.recovery_codes[9]).await), "/staff");
    assert_eq!(audit_count(&app, "second_factor.recovery_code_use"), 1);
}

#[actix_web::test]
async fn an_account_deactivated_after_its_password_cannot_finish_signing_in() {
    let app = spawn_app().await;
    let (acme, _) = fixtures::organization_with_admin(&mut app.conn(), "acme");
    let member = fixtures::UserBuilder::new(&acme, "member@acme.test").insert(&mut app.conn());
    let enrolled = enrol(&app, &app.signed_in(&member.email).await, "/account/security").await;
    let half = half_signed_in(&app, &member.email).await;
    diesel::update(keyward::db::schema::users::table.find(member.id))
        .set(keyward::db::schema::users::active.eq(false))
        .execute(&mut *app.conn())
        .unwrap();
    let response = give_code(&half, &code(&app, &enrolled.secret)).await;
    assert_eq!(location(&response), "/login");
    assert_eq!(location(&half.get("/account").await), "/login?next=%2Faccount");
    assert_eq!(audit_count(&app, "login.success"), 1, "only the enrolling sign-in");
}

/// Backends of this test's database waiting for a lock.
fn lock_waiters(app: &TestApp) -> i64 {
    diesel::sql_query(
        "SELECT count(*) AS count FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'",
    )
    .get_result::<Count>(&mut *app.conn())
    .unwrap()
    .count
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    count: i64,
}

#[actix_web::test]
async fn two_changes_of_an_accounts_factors_at_once_run_one_after_the_other() {
    let app = spawn_app().await;
    let (acme, _) = fixtures::organization_with_admin(&mut app.conn(), "acme");
    let member = fixtures::UserBuilder::new(&acme, "member@acme.test").insert(&mut app.conn());
    let client = app.signed_in(&member.email).await;
    enrol(&app, &client, "/account/security").await;

    // Two tabs ask for new recovery codes while something else holds the codes: both reach
    // the database before either can replace them. Replacing is "delete all, insert ten",
    // so two interleaved replacements would leave twenty working codes.
    let mut holder = app.conn();
    holder.batch_execute("BEGIN").unwrap();
    diesel::sql_query("SELECT id FROM recovery_codes WHERE user_id = $1 FOR UPDATE")
        .bind::<diesel::sql_types::BigInt, _>(member.id)
        .execute(&mut *holder)
        .unwrap();
    let release = async {
        let both_waiting = crate::helpers::within(Duration::from_secs(20), async || lock_waiters(&app) == 2).await;
        holder.batch_execute("COMMIT").unwrap();
        both_waiting
    };
    let (first, second, both_waiting) = futures_util::future::join3(
        client.post("/account/security/recovery-codes", &[]),
        client.post("/account/security/recovery-codes", &[]),
        release,
    )
    .await;
    assert!(both_waiting, "both requests reached the database");
    assert_eq!((first.status(), second.status()), (StatusCode::OK, StatusCode::OK));
    let working: i64 = keyward::db::schema::recovery_codes::table
        .filter(keyward::db::schema::recovery_codes::user_id.eq(member.id))
        .count()
        .get_result(&mut *app.conn())
        .unwrap();
    assert_eq!(working, 10, "one set of codes works: the one shown last");
    assert_eq!(audit_count(&app, "second_factor.recovery_codes_regenerate"), 2);
}
