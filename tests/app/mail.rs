//! Mail over SMTP (issue 19, items 2, 5 and 6), against a real SMTP server (aiosmtpd, see
//! `smtp`): the outbox sent once per recipient by two `run-jobs` runners run twice, multipart
//! plain + HTML with absolute links and an unsubscribe header, the reminders preference and
//! the organization's choice of recipients, retries while the relay is down, the weekly
//! digest, and forgotten passwords.

use chrono::{Duration, Utc};
use diesel::prelude::*;
use keyward::db::{
    models::{ApiKey, outbox::MailMessage},
    schema::{api_keys, audit_events, mail_messages, organizations, outbox_events, password_links},
};
use reqwest::StatusCode;

use crate::{
    cli::{SECRET, keyward, scratch_dir, text},
    helpers::{
        PASSWORD, SpawnOptions, TestApp, TestServer, audit_count, expires_in, fixtures, keys, location, make_due,
        spawn_app, spawn_app_with, user,
    },
    smtp::{Received, SmtpServer, free_port, url_of},
};

const PUBLIC: &str = "https://keys.example.test";

async fn app_with_smtp(url: String) -> TestApp {
    spawn_app_with(SpawnOptions { smtp_url: Some(url), public_origin: Some(PUBLIC.into()), ..SpawnOptions::default() })
        .await
}

/// Runs the due jobs and sends the due mail at the application's clock, as a server would.
fn run_jobs_now(app: &TestApp) -> Vec<String> {
    make_due(app);
    let runs = keyward::jobs::run_due_and_send(&mut app.conn(), app.now(), app.state.mailer.as_ref()).unwrap();
    runs.iter().map(ToString::to_string).collect()
}

fn messages(app: &TestApp) -> Vec<MailMessage> {
    mail_messages::table.order(mail_messages::id.asc()).select(MailMessage::as_select()).load(&mut *app.conn()).unwrap()
}

fn to_of(received: &[Received]) -> Vec<String> {
    let mut to: Vec<String> = received.iter().flat_map(|r| r.to.clone()).collect();
    to.sort();
    to
}

struct Acme {
    app: TestApp,
    bob_key: ApiKey,
    org_key: ApiKey,
}

/// Acme with two administrators (admin@, dana@), Bob with a personal key, and an
/// organization key created by Carol.
async fn acme(app: TestApp) -> Acme {
    let mut conn = app.conn();
    let (acme, _) = fixtures::organization_with_admin(&mut conn, "acme");
    fixtures::admin(&mut conn, &acme, "dana@acme.test");
    let bob = fixtures::key_owner(&mut conn, &acme, "bob@acme.test");
    let carol = fixtures::key_owner(&mut conn, &acme, "carol@acme.test");
    let (bob_key, _) = keys::personal(&mut conn, &app.hasher, &bob, "Bob's integration");
    let (org_key, _) = keys::organization(&mut conn, &app.hasher, &bob, "Billing <sync>");
    diesel::update(api_keys::table.find(org_key.id))
        .set(api_keys::created_by_user_id.eq(Some(carol.id)))
        .execute(&mut conn)
        .unwrap();
    // The tests start from an empty outbox (not with the fixtures' "key created" events).
    diesel::delete(outbox_events::table).execute(&mut conn).unwrap();
    drop(conn);
    let org_key = keys::reload(&mut app.conn(), &org_key).unwrap();
    Acme { app, bob_key, org_key }
}

fn run_jobs_process(app: &TestApp, smtp_url: &str) -> std::process::Child {
    keyward(&scratch_dir("run-jobs-mail"))
        .env("DATABASE_URL", TestServer::get().url(&app.database))
        .env("KEYWARD_SECRET", SECRET)
        .env("KEYWARD_SMTP_URL", smtp_url)
        .env("KEYWARD_PUBLIC_URL", PUBLIC)
        .env("KEYWARD_MAIL_FROM", "Keyward <keyward@keys.example.test>")
        .arg("run-jobs")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

#[actix_web::test]
async fn a_key_seven_days_from_expiry_is_mailed_once_per_recipient_by_two_runners_run_twice() {
    let server = SmtpServer::start();
    let w = acme(spawn_app().await).await;
    let app = &w.app;
    expires_in(app, &w.bob_key, Duration::days(7) - Duration::hours(1));
    expires_in(app, &w.org_key, Duration::days(7) - Duration::hours(1));

    for round in 0..2 {
        let (first, second) = (run_jobs_process(app, &server.url()), run_jobs_process(app, &server.url()));
        let outputs = [first.wait_with_output().unwrap(), second.wait_with_output().unwrap()];
        let said: Vec<_> = outputs.iter().map(text).collect();
        assert!(outputs.iter().all(|o| o.status.success()), "{round}: {said:?}");
        make_due(app);
    }

    let received = server.wait_for(4).await;
    assert_eq!(
        to_of(&received),
        ["admin@acme.test", "bob@acme.test", "carol@acme.test", "dana@acme.test"],
        "exactly one message each: {received:#?}"
    );
    assert!(received.iter().all(|r| r.subject().contains("expires in 7 days")), "{received:#?}");
    assert!(messages(app).iter().all(|m| m.sent_at.is_some() && m.send_attempts == 1), "all marked sent once");

    let to_carol = received.iter().find(|r| r.to == ["carol@acme.test"]).unwrap();
    let link = format!("{PUBLIC}/admin/keys/{}", w.org_key.public_id);
    assert_eq!(to_carol.content_type, "multipart/alternative");
    assert!(to_carol.text.contains(&link), "plain text with the absolute link: {}", to_carol.text);
    assert!(to_carol.html.contains(&format!("href=\"{link}\"")), "HTML with the link: {}", to_carol.html);
    assert!(to_carol.html.contains("Billing &#60;sync&#62;"), "the key's name escaped: {}", to_carol.html);
    assert!(!to_carol.html.contains("Billing <sync>"));
    assert_eq!(to_carol.header("List-Unsubscribe"), format!("<{PUBLIC}/account>"));
    assert!(to_carol.text.contains(&format!("turn them off on your account page: {PUBLIC}/account")));
    assert_eq!(to_carol.header("From"), "Keyward <keyward@keys.example.test>");
    let message = messages(app).into_iter().find(|m| m.recipient_email == "carol@acme.test").unwrap();
    assert_eq!(
        to_carol.header("Message-ID"),
        format!("<keyward-mail-{}@keys.example.test>", message.id),
        "derived from the message's row, so a second send is recognisable"
    );
    let to_bob = received.iter().find(|r| r.to == ["bob@acme.test"]).unwrap();
    assert!(to_bob.text.contains(&format!("{PUBLIC}/account/keys/{}", w.bob_key.public_id)));
}

#[actix_web::test]
async fn the_reminders_preference_and_the_organizations_choice_decide_who_is_mailed() {
    let server = SmtpServer::start();
    let w = acme(app_with_smtp(server.url()).await).await;
    let app = &w.app;

    // Bob turns reminders off on his account page.
    let bob = app.signed_in("bob@acme.test").await;
    bob.fetch_csrf_token("/account").await;
    assert_eq!(location(&bob.post("/account/notifications", &[]).await), "/account");
    // The administrators choose that only a key's creator is told.
    let admin = app.signed_in("admin@acme.test").await;
    let page = admin.open("/admin/policy").await;
    assert!(page.has("select[name=key_mail_to] option[value=creator_and_admins][selected]"), "on by default");
    admin.fetch_csrf_token("/admin/policy").await;
    let response = admin
        .post(
            "/admin/policy",
            &[
                ("default_lifetime_days", "365"),
                ("default_grace_minutes", "0"),
                ("second_factor_required_for", "nobody"),
                ("key_mail_to", "creator"),
            ],
        )
        .await;
    assert_eq!(location(&response), "/admin/policy");
    let notify: bool = organizations::table
        .filter(organizations::slug.eq("acme"))
        .select(organizations::notify_admins_of_keys)
        .first(&mut *app.conn())
        .unwrap();
    assert!(!notify);
    assert!(admin.open("/admin/policy").await.has("option[value=creator][selected]"));

    expires_in(app, &w.bob_key, Duration::days(7) - Duration::hours(1));
    expires_in(app, &w.org_key, Duration::days(7) - Duration::hours(1));
    run_jobs_now(app);
    let received = server.wait_for(1).await;
    assert_eq!(to_of(&received), ["carol@acme.test"], "no reminder for Bob, none for the administrators");

    // A deactivation is not a reminder: Bob hears of it.
    diesel::update(api_keys::table.find(w.bob_key.id))
        .set(api_keys::active.eq(false))
        .execute(&mut *app.conn())
        .unwrap();
    let actor = keyward::services::Actor::system("test").at(app.now());
    let key = keys::reload(&mut app.conn(), &w.bob_key).unwrap();
    keyward::services::notifications::emit_deactivated(
        &mut app.conn(),
        &actor,
        &key,
        keyward::services::notifications::Deactivation::ByPerson,
        None,
    )
    .unwrap();
    run_jobs_now(app);
    let received = server.wait_for(2).await;
    assert_eq!(received[1].to, ["bob@acme.test"]);
    assert!(received[1].subject().contains("was deactivated"));
    assert_eq!(server.received().len(), 2);
}

#[actix_web::test]
async fn mail_is_tried_again_later_while_the_relay_is_down_and_not_lost() {
    let port = free_port();
    let w = acme(app_with_smtp(url_of(port)).await).await;
    let app = &w.app;
    expires_in(app, &w.bob_key, Duration::days(7) - Duration::hours(1));
    let runs = run_jobs_now(app);
    assert!(runs.iter().any(|r| r.starts_with("send-mail: 0 message(s) sent, 1 failed")), "{runs:?}");
    let message = messages(app).pop().unwrap();
    assert_eq!((message.send_attempts, message.sent_at), (1, None));
    assert!(message.send_error.is_some());
    assert_eq!(message.next_send_at, Some(message.created_at + Duration::minutes(1)), "the first pause is a minute");

    // The administrators see that it was not sent yet.
    let admin = app.signed_in("admin@acme.test").await;
    let page = admin.open("/admin/notifications").await;
    assert!(page.select(".message-delivery").text().contains("Not sent by email yet: 1 attempt(s) failed"), "{page}");

    let server = SmtpServer::start_on(port);
    run_jobs_now(app);
    assert!(server.received().is_empty(), "not before its next attempt");
    app.advance(std::time::Duration::from_secs(90));
    run_jobs_now(app);
    let received = server.wait_for(1).await;
    assert_eq!(received[0].to, ["bob@acme.test"]);
    let message = messages(app).pop().unwrap();
    assert_eq!((message.send_attempts, message.send_error, message.next_send_at), (2, None, None));
    assert!(message.sent_at.is_some());
    let page = admin.open("/admin/notifications").await;
    assert!(page.select(".message-delivery").text().contains("Sent by email"), "{page}");
}

#[actix_web::test]
async fn mail_that_cannot_be_sent_for_a_day_is_given_up_and_says_so() {
    let w = acme(app_with_smtp(url_of(free_port())).await).await;
    let app = &w.app;
    expires_in(app, &w.bob_key, Duration::days(7) - Duration::hours(1));
    run_jobs_now(app);
    app.advance(std::time::Duration::from_secs(25 * 3600));
    run_jobs_now(app);
    let message = messages(app).into_iter().find(|m| m.recipient_email == "bob@acme.test").unwrap();
    assert_eq!((message.next_send_at, message.sent_at), (None, None));
    assert!(message.send_error.unwrap().starts_with("Given up after a day."));
}

#[actix_web::test]
async fn without_smtp_mail_stays_in_the_outbox_and_forgotten_passwords_go_to_an_administrator() {
    let w = acme(spawn_app().await).await;
    let app = &w.app;
    expires_in(app, &w.bob_key, Duration::days(7) - Duration::hours(1));
    run_jobs_now(app);
    let message = messages(app).pop().unwrap();
    assert_eq!((message.send_attempts, message.sent_at), (0, None), "nothing tried");
    let admin = app.signed_in("admin@acme.test").await;
    let page = admin.open("/admin/notifications").await;
    assert!(page.select(".message-subject").text().contains("expires in 7 days"), "{page}");
    assert!(!page.has(".message-delivery"), "no word about email without it: {page}");

    let visitor = app.client();
    let login = visitor.open("/login").await;
    assert!(!login.has("a[href='/password/forgot']"), "{login}");
    assert!(login.says("Ask an administrator of your organization to reset it."));
    let forgot = visitor.open("/password/forgot").await;
    assert_eq!(forgot.status, StatusCode::OK);
    assert!(forgot.says("Ask an administrator of your organization"), "{forgot}");
    assert!(!forgot.has("input[name=email]"));
}

/// The link in a password reset mail, as a path.
fn reset_path(mail: &Received) -> String {
    let start = mail.text.find(&format!("{PUBLIC}/password/")).expect("a reset link") + PUBLIC.len();
    mail.text[start..].split_whitespace().next().unwrap().to_string()
}

#[actix_web::test]
async fn a_forgotten_password_is_reset_through_a_mailed_link_that_works_once() {
    let server = SmtpServer::start();
    let w = acme(app_with_smtp(server.url()).await).await;
    let app = &w.app;
    let elsewhere = app.signed_in("bob@acme.test").await;

    let visitor = app.client();
    let login = visitor.open("/login").await;
    assert!(login.has("a[href='/password/forgot']"), "{login}");
    visitor.fetch_csrf_token("/password/forgot").await;
    // An unknown address gets the same answer, and no mail.
    let unknown = visitor.post("/password/forgot", &[("email", "nobody@acme.test")]).await;
    assert_eq!(unknown.status(), StatusCode::OK);
    let unknown = crate::page::Page::parse(&unknown.text().await.unwrap());
    let known = visitor.post("/password/forgot", &[("email", " Bob@Acme.test ")]).await;
    assert_eq!(known.status(), StatusCode::OK);
    let known = crate::page::Page::parse(&known.text().await.unwrap());
    assert_eq!(unknown.select("#reset-sent").text(), known.select("#reset-sent").text());
    assert!(known.select("#reset-sent").text().contains("If an account exists for that address"), "{known}");

    let received = server.wait_for(1).await;
    assert_eq!(received.len(), 1, "only the known address got mail");
    let mail = &received[0];
    assert_eq!(mail.to, ["bob@acme.test"]);
    assert_eq!(mail.subject(), "Choose a new Keyward password");
    let path = reset_path(mail);
    assert!(mail.html.contains(&format!("href=\"{PUBLIC}{path}\"")), "{}", mail.html);
    // The token is in no stored message (administrators read those) and in no audit entry.
    let token = path.trim_start_matches("/password/");
    assert!(messages(app).iter().all(|m| !m.body.contains(token)));
    let details: Vec<serde_json::Value> =
        audit_events::table.select(audit_events::details).load(&mut *app.conn()).unwrap();
    assert!(details.iter().all(|d| !d.to_string().contains(token)));
    let expiry: chrono::DateTime<Utc> =
        password_links::table.select(password_links::expires_at).first(&mut *app.conn()).unwrap();
    assert!(expiry > Utc::now() + Duration::minutes(55) && expiry <= Utc::now() + Duration::minutes(61), "an hour");

    let page = visitor.open(&path).await;
    assert_eq!(page.status, StatusCode::OK, "{page}");
    visitor.fetch_csrf_token(&path).await;
    let new_password = "a brand new passphrase";
    let response = visitor.post(&path, &[("password", new_password), ("confirm", new_password)]).await;
    assert_eq!(location(&response), "/login");
    assert!(location(&elsewhere.get("/account").await).starts_with("/login"), "the other session ended");
    // Once only.
    let again = visitor.open(&path).await;
    assert_eq!(again.status, StatusCode::BAD_REQUEST);
    assert!(again.says("This link has expired or was already used"), "{again}");
    let response = app.client().login("bob@acme.test", PASSWORD).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "the old password no longer works");
    let signed_in = app.signed_in_with("bob@acme.test", new_password).await;
    assert_eq!(signed_in.get("/account").await.status(), StatusCode::OK);
}

#[actix_web::test]
async fn an_expired_reset_link_is_refused_and_requests_are_throttled_per_address() {
    let server = SmtpServer::start();
    let w = acme(app_with_smtp(server.url()).await).await;
    let app = &w.app;
    let visitor = app.client();
    visitor.fetch_csrf_token("/password/forgot").await;
    visitor.post("/password/forgot", &[("email", "carol@acme.test")]).await;
    let path = reset_path(&server.wait_for(1).await[0]);
    diesel::update(password_links::table)
        .set(password_links::expires_at.eq(Utc::now() - Duration::minutes(1)))
        .execute(&mut *app.conn())
        .unwrap();
    let page = visitor.open(&path).await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    assert!(page.says("This link has expired or was already used"), "{page}");
    let response = visitor.post(&path, &[("password", "another passphrase"), ("confirm", "another passphrase")]).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(audit_count(app, "user.password_set"), 0, "the password stays");

    // Five requests for one address within the window, then no more (known or not).
    for _ in 0..5 {
        let response = visitor.post("/password/forgot", &[("email", "ghost@acme.test")]).await;
        assert_eq!(response.status(), StatusCode::OK);
    }
    let response = visitor.post("/password/forgot", &[("email", "ghost@acme.test")]).await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(response.text().await.unwrap().contains("Too many requests for a new password"));
    let denied: i64 = audit_events::table
        .filter(audit_events::action.eq("login.password_reset_request"))
        .filter(audit_events::result.eq("denied"))
        .count()
        .get_result(&mut *app.conn())
        .unwrap();
    assert_eq!(denied, 1);
    // Bad input is a clear 422, not a 500.
    let response = visitor.post("/password/forgot", &[("email", "not an address")]).await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
}

#[actix_web::test]
async fn administrators_who_want_it_get_a_weekly_digest_once_a_week() {
    let server = SmtpServer::start();
    let w = acme(app_with_smtp(server.url()).await).await;
    let app = &w.app;
    let mut conn = app.conn();
    let (_, globex_admin) = fixtures::organization_with_admin(&mut conn, "globex");
    let bob = user(app, "bob@acme.test");
    let (stale, _) = keys::personal(&mut conn, &app.hasher, &bob, "Old cron job");
    let (leaked, _) = keys::personal(&mut conn, &app.hasher, &bob, "Pasted in a gist");
    diesel::update(api_keys::table.find(stale.id))
        .set(api_keys::created_at.eq(Utc::now() - Duration::days(200)))
        .execute(&mut conn)
        .unwrap();
    diesel::update(api_keys::table.find(leaked.id))
        .set((
            api_keys::active.eq(false),
            api_keys::deactivation_reason.eq(keyward::services::keys::lifecycle::LEAKED),
            api_keys::deactivated_at.eq(Some(Utc::now() - Duration::days(1))),
        ))
        .execute(&mut conn)
        .unwrap();
    drop(conn);
    expires_in(app, &w.org_key, Duration::days(10));
    expires_in(app, &w.bob_key, Duration::days(40));

    // Off by default; Acme's admin and Globex's turn it on, Dana does not.
    for (email, path) in [("admin@acme.test", "/account"), (globex_admin.email.as_str(), "/account")] {
        let client = app.signed_in(email).await;
        let page = client.open(path).await;
        assert!(page.has("input[name=receive_digest]") && !page.has("input[name=receive_digest][checked]"));
        client.fetch_csrf_token(path).await;
        client.post("/account/notifications", &[("receive_reminders", "on"), ("receive_digest", "on")]).await;
        assert!(client.open(path).await.has("input[name=receive_digest][checked]"));
    }
    assert!(!app.signed_in("bob@acme.test").await.open("/account").await.has("input[name=receive_digest]"));

    run_jobs_now(app);
    run_jobs_now(app);
    let received = server.wait_for(2).await;
    let digests: Vec<&Received> = received.iter().filter(|r| r.subject().contains("weekly digest")).collect();
    assert_eq!(digests.len(), 2, "one each, once: {received:#?}");
    let acme = digests.iter().find(|r| r.to == ["admin@acme.test"]).unwrap();
    let link = |key: &ApiKey| format!("{PUBLIC}/admin/keys/{}", key.public_id);
    assert!(acme.text.contains("Keys expiring in the next 30 days"), "{}", acme.text);
    assert!(acme.text.contains(&link(&w.org_key)), "expiring in 10 days: {}", acme.text);
    assert!(!acme.text.contains(&link(&w.bob_key)), "40 days is not soon");
    assert!(acme.text.contains(&link(&stale)), "unused for 200 days: {}", acme.text);
    assert!(acme.text.contains(&link(&leaked)), "leaked yesterday: {}", acme.text);
    assert!(acme.html.contains(&format!("href=\"{}\"", link(&leaked))), "{}", acme.html);
    let globex = digests.iter().find(|r| r.to == [globex_admin.email.clone()]).unwrap();
    for empty in ["No key expires in the next 30 days.", "No active key has gone unused", "No key was reported"] {
        assert!(globex.text.contains(empty), "{empty}: {}", globex.text);
        assert!(globex.html.contains(empty), "{empty}: {}", globex.html);
    }

    // A week later, the next one.
    app.advance(std::time::Duration::from_secs(7 * 24 * 3600));
    run_jobs_now(app);
    run_jobs_now(app);
    let received = server.wait_for(4).await;
    assert_eq!(received.iter().filter(|r| r.subject().contains("weekly digest")).count(), 4, "{received:#?}");
}

/// Asks for a reset link for `email` on the sign-in page's form, as a visitor.
async fn ask_for_reset(app: &TestApp, email: &str) {
    let visitor = app.client();
    visitor.fetch_csrf_token("/password/forgot").await;
    assert_eq!(visitor.post("/password/forgot", &[("email", email)]).await.status(), StatusCode::OK);
}

#[actix_web::test]
async fn support_staff_reset_a_forgotten_password_the_same_way_and_keep_their_second_factor() {
    let server = SmtpServer::start();
    let app = app_with_smtp(server.url()).await;
    let staff = fixtures::staff(&mut app.conn(), "support@keyward.test");

    ask_for_reset(&app, "Support@Keyward.test").await;
    let received = server.wait_for(1).await;
    assert_eq!(received[0].to, ["support@keyward.test"]);
    let path = reset_path(&received[0]);
    let visitor = app.client();
    let page = visitor.open(&path).await;
    assert!(page.says("support@keyward.test"), "{page}");
    visitor.fetch_csrf_token(&path).await;
    let new_password = "a support specialist's passphrase";
    let response = visitor.post(&path, &[("password", new_password), ("confirm", new_password)]).await;
    assert_eq!(location(&response), "/login");
    assert_eq!(audit_count(&app, "staff.password_set"), 1);
    let staff_links: i64 = password_links::table
        .filter(password_links::staff_id.eq(staff.id))
        .filter(password_links::used_at.is_not_null())
        .count()
        .get_result(&mut *app.conn())
        .unwrap();
    assert_eq!(staff_links, 1, "the link is used up");

    assert_eq!(app.client().login("support@keyward.test", PASSWORD).await.status(), StatusCode::UNAUTHORIZED);
    // The new password opens only the first step: staff still set up or give a second factor.
    let signing_in = app.client().login("support@keyward.test", new_password).await;
    assert_eq!(signing_in.status(), StatusCode::SEE_OTHER);
    assert!(location(&signing_in).starts_with("/login/"), "{}", location(&signing_in));
}

#[actix_web::test]
async fn asking_for_a_reset_on_the_sign_in_page_leaves_an_administrators_invitation_working() {
    let server = SmtpServer::start();
    let app = app_with_smtp(server.url()).await;
    fixtures::organization_with_admin(&mut app.conn(), "acme");
    let admin = app.signed_in("admin@acme.test").await;
    admin.page("/admin/users/new").await;
    let fields = [("email", "nina@acme.test"), ("display_name", "Nina New"), ("password_mode", "link")];
    let created = admin.post("/admin/users", &fields).await;
    let page = crate::page::Page::parse(&created.text().await.unwrap());
    let invitation = page.select("#password-link").value().expect("the invitation link");
    let invitation = invitation[invitation.find("/password/").unwrap()..].to_string();

    // Anyone may type Nina's address on the sign-in page: her invitation still works.
    ask_for_reset(&app, "nina@acme.test").await;
    server.wait_for(1).await;
    assert_eq!(app.client().open(&invitation).await.status, StatusCode::OK, "the invitation works");
}
