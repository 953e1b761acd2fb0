//! Signing in and out, sessions and throttling.

use diesel::prelude::*;
use keyward::db::schema::{sessions, users};
use reqwest::StatusCode;

use std::time::Duration;

use crate::helpers::{
    PASSWORD, Page, SpawnOptions, audit_count, csrf_token, fixtures, location, spawn_app, spawn_app_with,
};

#[actix_web::test]
async fn a_web_user_signs_in_and_lands_on_their_account() {
    let app = spawn_app().await;
    let org = fixtures::organization(&mut app.conn(), "acme");
    fixtures::UserBuilder::new(&org, "ann@acme.test").insert(&mut app.conn());
    let client = app.client();

    let response = client.login("Ann@Acme.test", PASSWORD).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), "/account");
    let (status, body) = client.page("/account").await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("Welcome, ann."), "a welcome flash: {body}");
    assert!(body.contains("ann@acme.test"));
    assert_eq!(audit_count(&app, "login.success"), 1);
}

#[actix_web::test]
async fn staff_sign_in_lands_on_the_staff_console() {
    let app = spawn_app().await;
    fixtures::staff(&mut app.conn(), "sam@support.test");
    let client = app.client();
    let response = client.login("sam@support.test", PASSWORD).await;
    // Staff must have a second factor: the first sign-in sets one up, then lands on the console.
    assert_eq!(location(&response), crate::helpers::ENROL);
    app.enrol_at_sign_in(&client).await;
    let (status, body) = client.page("/staff").await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("Staff console"));
}

#[actix_web::test]
async fn wrong_passwords_and_unknown_emails_get_the_same_generic_refusal() {
    let app = spawn_app().await;
    let org = fixtures::organization(&mut app.conn(), "acme");
    fixtures::UserBuilder::new(&org, "ann@acme.test").insert(&mut app.conn());
    let client = app.client();

    let wrong = client.login("ann@acme.test", "not the password").await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let wrong_body = wrong.text().await.unwrap();
    let unknown = client.login("nobody@acme.test", "not the password").await;
    assert_eq!(unknown.status(), StatusCode::UNAUTHORIZED);
    let unknown_body = unknown.text().await.unwrap();

    assert!(wrong_body.contains("Email or password is incorrect."));
    assert!(unknown_body.contains("Email or password is incorrect."));
    assert_eq!(Page::parse(&wrong_body).field("email").as_deref(), Some("ann@acme.test"), "the form keeps the email");
    assert_eq!(audit_count(&app, "login.failure"), 2);
    assert_eq!(client.page("/account").await.0, StatusCode::SEE_OTHER, "still signed out");
}

#[actix_web::test]
async fn an_inactive_user_cannot_sign_in() {
    let app = spawn_app().await;
    let org = fixtures::organization(&mut app.conn(), "acme");
    fixtures::UserBuilder::new(&org, "gone@acme.test").inactive().insert(&mut app.conn());
    let response = app.client().login("gone@acme.test", PASSWORD).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

#[actix_web::test]
async fn signing_in_renews_the_session_key_and_the_csrf_token() {
    let app = spawn_app().await;
    let org = fixtures::organization(&mut app.conn(), "acme");
    fixtures::UserBuilder::new(&org, "ann@acme.test").insert(&mut app.conn());
    let client = app.client();
    let (_, login_page) = client.page("/login").await;
    let before = client.cookie().expect("the login page starts a session");
    let token_before = csrf_token(&login_page).unwrap();

    client.login("ann@acme.test", PASSWORD).await;
    let after = client.cookie().expect("signed in");
    assert_ne!(before, after, "a pre-login session key must not survive sign-in");
    let (_, account) = client.page("/account").await;
    assert_ne!(csrf_token(&account).unwrap(), token_before);

    // The pre-login cookie is not a way in.
    client.set_cookie(Some(before));
    assert_eq!(client.get("/account").await.status(), StatusCode::SEE_OTHER);
}

#[actix_web::test]
async fn logout_makes_the_old_cookie_useless() {
    let app = spawn_app().await;
    let org = fixtures::organization(&mut app.conn(), "acme");
    fixtures::UserBuilder::new(&org, "ann@acme.test").insert(&mut app.conn());
    let client = app.signed_in("ann@acme.test").await;
    let cookie = client.cookie().unwrap();
    assert_eq!(client.page("/account").await.0, StatusCode::OK);

    let response = client.post("/logout", &[]).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), "/login?signed_out=1");
    let remaining: i64 = sessions::table.count().get_result(&mut *app.conn()).unwrap();
    assert_eq!(remaining, 0, "the session is deleted from the store");

    // Replaying the old cookie gets nowhere.
    client.set_cookie(Some(cookie.clone()));
    let replay = client.get("/account").await;
    assert_eq!(replay.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&replay), "/login?next=%2Faccount");

    // A request that writes to the replayed session (the login page stores a CSRF token)
    // recreates its row, but never with the signed-out actor in it.
    client.set_cookie(Some(cookie));
    let (status, _) = client.page("/login").await;
    assert_eq!(status, StatusCode::OK);
    let replay = client.post("/logout", &[]).await;
    assert_eq!(replay.status(), StatusCode::SEE_OTHER);
    let replay = client.get("/account").await;
    assert_eq!(location(&replay), "/login?next=%2Faccount", "the revived session is not signed in");
}

#[actix_web::test]
async fn logout_is_a_post() {
    let app = spawn_app().await;
    let response = app.client().get("/logout").await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}

#[actix_web::test]
async fn a_deactivated_user_is_signed_out_on_the_next_request() {
    let app = spawn_app().await;
    let org = fixtures::organization(&mut app.conn(), "acme");
    let ann = fixtures::UserBuilder::new(&org, "ann@acme.test").insert(&mut app.conn());
    let client = app.signed_in("ann@acme.test").await;
    assert_eq!(client.page("/account").await.0, StatusCode::OK);

    diesel::update(users::table.find(ann.id)).set(users::active.eq(false)).execute(&mut *app.conn()).unwrap();
    assert_eq!(client.get("/account").await.status(), StatusCode::SEE_OTHER);
}

#[actix_web::test]
async fn an_idle_session_expires() {
    let app = spawn_app().await;
    let org = fixtures::organization(&mut app.conn(), "acme");
    fixtures::UserBuilder::new(&org, "ann@acme.test").insert(&mut app.conn());
    let client = app.signed_in("ann@acme.test").await;
    app.advance(Duration::from_secs(29 * 60));
    assert_eq!(client.page("/account").await.0, StatusCode::OK, "29 idle minutes of 30");
    // That request extended the session: 30 minutes from there are fine, 31 are not.
    app.advance(Duration::from_secs(29 * 60));
    assert_eq!(client.page("/account").await.0, StatusCode::OK, "each request restarts the idle time");
    app.advance(Duration::from_secs(31 * 60));
    assert_eq!(client.get("/account").await.status(), StatusCode::SEE_OTHER);
}

#[actix_web::test]
async fn a_session_older_than_the_absolute_limit_is_signed_out() {
    // An idle limit longer than the absolute one, so that only the absolute limit can end
    // the session here.
    let app =
        spawn_app_with(SpawnOptions { session_idle: Duration::from_secs(24 * 3600), ..SpawnOptions::default() }).await;
    let org = fixtures::organization(&mut app.conn(), "acme");
    fixtures::UserBuilder::new(&org, "ann@acme.test").insert(&mut app.conn());
    let client = app.signed_in("ann@acme.test").await;
    assert_eq!(client.page("/account").await.0, StatusCode::OK);
    // The limit is 12 hours, however busy the session.
    app.advance(Duration::from_secs(11 * 3600 + 3000));
    assert_eq!(client.page("/account").await.0, StatusCode::OK, "11 h 50 min after signing in");
    app.advance(Duration::from_secs(20 * 60));
    assert_eq!(client.get("/account").await.status(), StatusCode::SEE_OTHER);
}

#[actix_web::test]
async fn signing_in_returns_to_the_page_first_asked_for() {
    let app = spawn_app().await;
    let org = fixtures::organization(&mut app.conn(), "acme");
    fixtures::UserBuilder::new(&org, "ann@acme.test").admin().insert(&mut app.conn());
    let client = app.client();
    let response = client.get("/admin/keys?page=2").await;
    assert_eq!(location(&response), "/login?next=%2Fadmin%2Fkeys%3Fpage%3D2");
    let stored: i64 = sessions::table.count().get_result(&mut *app.conn()).unwrap();
    assert_eq!(stored, 0, "an anonymous request stores no session");

    let (_, body) = client.page(&location(&response)).await;
    assert_eq!(Page::parse(&body).field("next").as_deref(), Some("/admin/keys?page=2"), "{body}");
    let token = csrf_token(&body).unwrap();
    let fields = [("csrf_token", token.as_str()), ("email", "ann@acme.test"), ("password", PASSWORD)];
    let mut with_next = fields.to_vec();
    with_next.push(("next", "/admin/keys?page=2"));
    let response = client.post_raw("/login", &with_next).await;
    assert_eq!(location(&response), "/admin/keys?page=2");
}

#[actix_web::test]
async fn signing_in_never_follows_a_foreign_or_malformed_next() {
    let app = spawn_app().await;
    let org = fixtures::organization(&mut app.conn(), "acme");
    fixtures::UserBuilder::new(&org, "ann@acme.test").insert(&mut app.conn());
    for next in ["https://evil.example/", "//evil.example/x", "/account\r\nSet-Cookie: a=b", "/login", "/\\evil"] {
        let client = app.client();
        let (status, body) = client.page(&format!("/login?next={}", next.replace('/', "%2F"))).await;
        assert_eq!(status, StatusCode::OK);
        assert!(!Page::parse(&body).has("[name=next]"), "{next:?} is not carried in the form");
        let token = csrf_token(&body).unwrap();
        let fields =
            [("csrf_token", token.as_str()), ("email", "ann@acme.test"), ("password", PASSWORD), ("next", next)];
        let response = client.post_raw("/login", &fields).await;
        assert_eq!(location(&response), "/account", "{next:?}");
    }
}

#[actix_web::test]
async fn repeated_failures_throttle_the_account_even_with_the_right_password() {
    let app = spawn_app().await;
    let org = fixtures::organization(&mut app.conn(), "acme");
    fixtures::UserBuilder::new(&org, "ann@acme.test").insert(&mut app.conn());
    let client = app.client();
    for _ in 0..keyward::services::login::ACCOUNT_FROM_ADDRESS_LIMIT {
        assert_eq!(client.login("ann@acme.test", "wrong password!").await.status(), StatusCode::UNAUTHORIZED);
    }
    let throttled = client.login("ann@acme.test", PASSWORD).await;
    assert_eq!(throttled.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(throttled.text().await.unwrap().contains("Too many failed sign-in attempts"));
    assert_eq!(client.get("/account").await.status(), StatusCode::SEE_OTHER, "not signed in");

    // Another account from the same address is not affected yet.
    fixtures::UserBuilder::new(&org, "bea@acme.test").insert(&mut app.conn());
    assert_eq!(app.client().login("bea@acme.test", PASSWORD).await.status(), StatusCode::SEE_OTHER);
}

#[actix_web::test]
async fn repeated_failures_from_one_address_throttle_every_account() {
    let app = spawn_app().await;
    let org = fixtures::organization(&mut app.conn(), "acme");
    fixtures::UserBuilder::new(&org, "ann@acme.test").insert(&mut app.conn());
    let client = app.client();
    for i in 0..keyward::services::login::IP_LIMIT {
        let response = client.login(&format!("guess{i}@acme.test"), "wrong password!").await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
    assert_eq!(client.login("ann@acme.test", PASSWORD).await.status(), StatusCode::TOO_MANY_REQUESTS);
}

/// Signs in from the client address `from` (sent as the trusted `X-Forwarded-For`).
async fn login_from(app: &crate::helpers::TestApp, from: &str, email: &str, password: &str) -> StatusCode {
    let http = crate::helpers::http_client();
    let page = http.get(app.url("/login")).header("x-forwarded-for", from).send().await.unwrap();
    let cookie = page.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_string();
    let token = csrf_token(&page.text().await.unwrap()).unwrap();
    http.post(app.url("/login"))
        .header("x-forwarded-for", from)
        .header("cookie", cookie)
        .form(&[("csrf_token", token.as_str()), ("email", email), ("password", password)])
        .send()
        .await
        .unwrap()
        .status()
}

#[actix_web::test]
async fn one_address_cannot_lock_an_account_out_but_many_together_throttle_it() {
    use keyward::services::login::{ACCOUNT_FROM_ADDRESS_LIMIT, ACCOUNT_LIMIT};
    let app = spawn_app_with(SpawnOptions {
        trust_forwarded: keyward::domain::client_ip::TrustForwarded::XForwardedFor,
        ..Default::default()
    })
    .await;
    let org = fixtures::organization(&mut app.conn(), "acme");
    fixtures::UserBuilder::new(&org, "ann@acme.test").insert(&mut app.conn());

    // Someone who knows Ann's email guesses from their machine: they stop themselves only.
    for _ in 0..ACCOUNT_FROM_ADDRESS_LIMIT {
        assert_eq!(login_from(&app, "198.51.100.1", "ann@acme.test", "guess!guess!").await, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(login_from(&app, "198.51.100.1", "ann@acme.test", PASSWORD).await, StatusCode::TOO_MANY_REQUESTS);
    // Going on from there is refused without counting against Ann's account.
    for _ in 0..ACCOUNT_LIMIT {
        let status = login_from(&app, "198.51.100.1", "ann@acme.test", "guess!guess!").await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    }
    assert_eq!(login_from(&app, "203.0.113.7", "ann@acme.test", PASSWORD).await, StatusCode::SEE_OTHER, "Ann is not");

    // Many addresses together reach the account's own limit.
    let mut failures = ACCOUNT_FROM_ADDRESS_LIMIT;
    let mut address = 10;
    while failures < ACCOUNT_LIMIT {
        for _ in 0..ACCOUNT_FROM_ADDRESS_LIMIT.min(ACCOUNT_LIMIT - failures) {
            let status = login_from(&app, &format!("198.51.100.{address}"), "ann@acme.test", "guess!guess!").await;
            assert_eq!(status, StatusCode::UNAUTHORIZED);
            failures += 1;
        }
        address += 1;
    }
    assert_eq!(login_from(&app, "203.0.113.8", "ann@acme.test", PASSWORD).await, StatusCode::TOO_MANY_REQUESTS);
}

/// With a single hashing thread every sign-in queues for it: each still gets its own
/// answer (right password, wrong password, unknown email), none is lost or mixed up with
/// another's, and the audit log records each once.
#[actix_web::test]
async fn with_one_password_hasher_concurrent_sign_ins_each_get_their_own_answer() {
    let app = spawn_app_with(SpawnOptions {
        trust_forwarded: keyward::domain::client_ip::TrustForwarded::XForwardedFor,
        password_hashers: 1,
        ..Default::default()
    })
    .await;
    assert_eq!(app.state.passwords.threads(), 1);
    let org = fixtures::organization(&mut app.conn(), "acme");
    fixtures::UserBuilder::new(&org, "ann@acme.test").insert(&mut app.conn());
    fixtures::UserBuilder::new(&org, "ben@acme.test").admin().insert(&mut app.conn());
    fixtures::staff(&mut app.conn(), "sam@support.test");
    let accounts = ["ann@acme.test", "ben@acme.test", "sam@support.test"];

    let attempts: Vec<(String, String, &str, StatusCode)> = (0..24)
        .map(|i| {
            let from = format!("198.51.100.{}", i + 1);
            let account = accounts[i % accounts.len()].to_string();
            match i % 3 {
                0 => (from, account, PASSWORD, StatusCode::SEE_OTHER),
                1 => (from, account, "not the password", StatusCode::UNAUTHORIZED),
                _ => (from, format!("nobody{i}@acme.test"), PASSWORD, StatusCode::UNAUTHORIZED),
            }
        })
        .collect();
    let statuses = futures_util::future::join_all(
        attempts.iter().map(|(from, email, password, _)| login_from(&app, from, email, password)),
    )
    .await;

    for ((from, email, password, expected), status) in attempts.iter().zip(statuses) {
        assert_eq!(status, *expected, "{email} with {password:?} from {from}");
    }
    assert_eq!(audit_count(&app, "login.success"), 8);
    assert_eq!(audit_count(&app, "login.failure"), 16);
}
