//! Account → Security lists the account's signed-in sessions (issue 17, item 8): when each
//! signed in, when it was last seen, from which address and browser, which one is this one;
//! and signs out any other one, or all others — never another account's.

use std::time::Duration;

use reqwest::StatusCode;

use crate::helpers::{PASSWORD, TestApp, TestClient, audit_count, fixtures, location, spawn_app};

const FIREFOX: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0";
const SAFARI: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1";
const CHROME: &str =
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";

async fn signed_in_from(app: &TestApp, email: &str, agent: &str) -> TestClient {
    // Through the second factor where the account has (or must set up) one.
    app.sign_in(app.client_with_agent(agent), email, PASSWORD).await
}

/// The listed sessions as (browser cell text, has a sign-out form, is marked current).
async fn listed(client: &TestClient, base: &str) -> Vec<(String, Option<String>, bool)> {
    let page = client.open(base).await;
    assert_eq!(page.status, StatusCode::OK, "{page}");
    let rows = page.select("#sessions tbody tr");
    let mut out = Vec::new();
    for i in 0..rows.len() {
        let row = page.select(&format!("#sessions tbody tr:nth-child({})", i + 1));
        let browser = page.select(&format!("#sessions tbody tr:nth-child({}) .session-browser", i + 1)).text();
        let action = page.select(&format!("#sessions tbody tr:nth-child({}) form", i + 1)).attr("action");
        let current = row.attr("class").unwrap_or_default().contains("current");
        out.push((browser.split_whitespace().collect::<Vec<_>>().join(" "), action, current));
    }
    out
}

#[actix_web::test]
async fn the_list_names_each_browser_marks_this_one_and_signs_out_another() {
    let app = spawn_app().await;
    let (_, admin) = fixtures::organization_with_admin(&mut app.conn(), "acme");
    let laptop = signed_in_from(&app, &admin.email, FIREFOX).await;
    app.advance(Duration::from_secs(120));
    let phone = signed_in_from(&app, &admin.email, SAFARI).await;

    let sessions = listed(&laptop, "/account/security").await;
    assert_eq!(sessions.len(), 2, "{sessions:?}");
    let mine = sessions.iter().find(|s| s.2).expect("this session is marked");
    assert_eq!(mine.0, "Firefox on Linux This session");
    assert!(mine.1.is_none(), "this session signs out from the menu, not here");
    let other = sessions.iter().find(|s| !s.2).unwrap();
    assert_eq!(other.0, "Safari on iOS");
    let page = laptop.open("/account/security").await;
    assert!(page.select("#sessions").text().contains("127.0.0.1"), "the address is shown: {page}");
    assert!(page.has_form("/account/security/sessions/end-others"));

    // The phone's view marks the phone.
    let from_phone = listed(&phone, "/account/security").await;
    assert_eq!(from_phone.iter().find(|s| s.2).unwrap().0, "Safari on iOS This session");

    let end = other.1.clone().expect("another session has a sign-out form");
    let response = laptop.post(&end, &[]).await;
    assert_eq!(location(&response), "/account/security");
    assert_eq!(audit_count(&app, "session.end"), 1);
    assert!(location(&phone.get("/account").await).starts_with("/login"), "the phone is signed out");
    assert_eq!(laptop.open("/account").await.status, StatusCode::OK, "the laptop is not");
    assert_eq!(listed(&laptop, "/account/security").await.len(), 1);
    // Once ended, its handle names nothing.
    assert_eq!(laptop.post(&end, &[]).await.status(), StatusCode::NOT_FOUND);
}

#[actix_web::test]
async fn all_others_ends_every_session_but_this_one() {
    let app = spawn_app().await;
    let (_, admin) = fixtures::organization_with_admin(&mut app.conn(), "acme");
    let here = signed_in_from(&app, &admin.email, FIREFOX).await;
    let others = [signed_in_from(&app, &admin.email, SAFARI).await, signed_in_from(&app, &admin.email, CHROME).await];
    assert_eq!(listed(&here, "/account/security").await.len(), 3);

    let response = here.post("/account/security/sessions/end-others", &[]).await;
    assert_eq!(location(&response), "/account/security");
    for other in &others {
        assert!(location(&other.get("/account").await).starts_with("/login"));
    }
    let left = listed(&here, "/account/security").await;
    assert_eq!(left.len(), 1);
    assert!(left[0].2);
    assert_eq!(audit_count(&app, "session.end"), 1, "one event names both sessions");
}

#[actix_web::test]
async fn nobody_ends_another_accounts_session() {
    let app = spawn_app().await;
    let (organization, admin) = fixtures::organization_with_admin(&mut app.conn(), "acme");
    fixtures::reader(&mut app.conn(), &organization, "bob@acme.test");
    fixtures::staff(&mut app.conn(), "sam@support.test");
    let bob = signed_in_from(&app, "bob@acme.test", CHROME).await;
    let bobs_session = listed(&bob, "/account/security").await;
    let bob_end = {
        // Bob's own handle, as another of his sessions would see it.
        let second = signed_in_from(&app, "bob@acme.test", FIREFOX).await;
        listed(&second, "/account/security").await.into_iter().find(|s| !s.2).unwrap().1.unwrap()
    };
    assert_eq!(bobs_session.len(), 1);

    let alice = signed_in_from(&app, &admin.email, FIREFOX).await;
    alice.fetch_csrf_token("/account/security").await;
    assert_eq!(alice.post(&bob_end, &[]).await.status(), StatusCode::NOT_FOUND);
    let sam = signed_in_from(&app, "sam@support.test", FIREFOX).await;
    sam.fetch_csrf_token("/staff/security").await;
    let staff_path = bob_end.replace("/account/", "/staff/");
    assert_eq!(sam.post(&staff_path, &[]).await.status(), StatusCode::NOT_FOUND);
    // "All others" of another account leaves Bob alone too.
    alice.post("/account/security/sessions/end-others", &[]).await;
    assert_eq!(bob.open("/account").await.status, StatusCode::OK, "Bob is still signed in");
    assert_eq!(audit_count(&app, "session.end"), 0);
    // Without the session's CSRF token, nothing ends.
    let forged = bob.post_raw(&bob_end, &[]).await;
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    // Staff see their own sessions under Staff → Security.
    let staff_list = listed(&sam, "/staff/security").await;
    assert_eq!(staff_list.len(), 1);
    assert!(staff_list[0].2);
}

#[actix_web::test]
async fn last_seen_moves_at_most_once_a_minute() {
    let app = spawn_app().await;
    let (_, admin) = fixtures::organization_with_admin(&mut app.conn(), "acme");
    let client = signed_in_from(&app, &admin.email, FIREFOX).await;
    let seen = || {
        use diesel::prelude::*;
        use keyward::db::schema::sessions;
        sessions::table
            .filter(sessions::user_id.eq(admin.id))
            .select(sessions::last_seen_at)
            .first::<chrono::DateTime<chrono::Utc>>(&mut *app.conn())
            .unwrap()
    };
    client.get("/account").await;
    let first = seen();
    client.get("/account").await;
    assert_eq!(seen(), first, "a page view within the minute writes nothing");
    app.advance(Duration::from_secs(5 * 60));
    client.get("/account").await;
    assert!(seen() >= first + chrono::Duration::minutes(5), "a later view is noted");
    let page = client.open("/account/security").await;
    assert!(page.select("#sessions").text().contains("just now"), "{page}");
}
