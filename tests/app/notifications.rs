//! Notifications (issue 19, items 1, 4 and the no-SMTP part of 2): events written to the
//! transactional outbox with their change, expiry reminders and "expired" from the
//! `key-expiry` job (once per key and occasion, never late, re-armed by a new expiry), the
//! `deliver-mail` job writing one message per recipient, the outbox pages of administrators
//! and staff, the reminder days on Admin → Key policy, and the personal preference.

use std::{collections::BTreeMap, time::Duration as StdDuration};

use chrono::{DateTime, Duration, Utc};
use diesel::{connection::SimpleConnection, prelude::*};
use keyward::{
    db::{
        models::{ApiKey, Organization, outbox::OutboxEvent},
        schema::{api_keys, mail_messages, outbox_events, users},
    },
    services::keys::{NewKeyOwner, lifecycle},
};
use reqwest::StatusCode;

use crate::{
    cli::{SECRET, keyward, scratch_dir, text},
    helpers::{
        Page, SpawnOptions, TestApp, TestServer, audit_count, expires_in, fixtures, http_client, keys, location,
        make_due, spawn_app, spawn_app_with, verify_code, within,
    },
};

/// Runs the due jobs at the application's clock, as a server instance would.
fn run_jobs_now(app: &TestApp) {
    make_due(app);
    for run in keyward::jobs::run_due(&mut app.conn(), app.now()).unwrap() {
        assert!(!matches!(run.outcome, keyward::jobs::Outcome::Failed(_)), "{run}");
    }
}

/// The events of `event_type` about `key`, oldest first.
fn events(app: &TestApp, event_type: &str, key: &ApiKey) -> Vec<OutboxEvent> {
    outbox_events::table
        .filter(outbox_events::event_type.eq(event_type))
        .filter(outbox_events::api_key_id.eq(key.id))
        .order(outbox_events::id.asc())
        .select(OutboxEvent::as_select())
        .load(&mut *app.conn())
        .unwrap()
}

/// How many messages of `event_type` each address got about `key`.
fn mail_about(app: &TestApp, event_type: &str, key: &ApiKey) -> BTreeMap<String, usize> {
    let to: Vec<String> = mail_messages::table
        .inner_join(outbox_events::table)
        .filter(outbox_events::event_type.eq(event_type))
        .filter(outbox_events::api_key_id.eq(key.id))
        .select(mail_messages::recipient_email)
        .load(&mut *app.conn())
        .unwrap();
    let mut counted = BTreeMap::new();
    for email in to {
        *counted.entry(email).or_insert(0) += 1;
    }
    counted
}

fn once_each(emails: &[&str]) -> BTreeMap<String, usize> {
    emails.iter().map(|e| (e.to_string(), 1)).collect()
}

/// The most urgent reminder each `key.expiring` event was, with the expiry it was about.
fn reminders(app: &TestApp, key: &ApiKey) -> Vec<(i64, Option<DateTime<Utc>>)> {
    events(app, "key.expiring", key)
        .iter()
        .map(|e| (e.payload["days_before"].as_i64().unwrap(), e.key_expires_at))
        .collect()
}

async fn open_ok(client: &crate::helpers::TestClient, path: &str) -> Page {
    let page = client.open(path).await;
    assert_eq!(page.status, StatusCode::OK, "{path}: {page}");
    page
}

struct Acme {
    app: TestApp,
    acme: Organization,
    bob_key: ApiKey,
    org_key: ApiKey,
    globex_key: ApiKey,
}

/// Acme with two administrators, Bob (a key owner) with a personal key, and an organization
/// key Carol (no administrator) created; Globex with its own administrator and key.
async fn acme() -> Acme {
    let app = spawn_app().await;
    let mut conn = app.conn();
    let (acme, _admin) = fixtures::organization_with_admin(&mut conn, "acme");
    fixtures::admin(&mut conn, &acme, "dana@acme.test");
    let bob = fixtures::key_owner(&mut conn, &acme, "bob@acme.test");
    let carol = fixtures::key_owner(&mut conn, &acme, "carol@acme.test");
    let (bob_key, _) = keys::personal(&mut conn, &app.hasher, &bob, "Bob's integration");
    let (org_key, _) = keys::organization(&mut conn, &app.hasher, &bob, "Billing sync");
    diesel::update(api_keys::table.find(org_key.id))
        .set(api_keys::created_by_user_id.eq(Some(carol.id)))
        .execute(&mut conn)
        .unwrap();
    let (_, globex_admin) = fixtures::organization_with_admin(&mut conn, "globex");
    let (globex_key, _) = keys::organization(&mut conn, &app.hasher, &globex_admin, "Globex sync");
    drop(conn);
    let org_key = keys::reload(&mut app.conn(), &org_key).unwrap();
    Acme { app, acme, bob_key, org_key, globex_key }
}

fn run_jobs_process(app: &TestApp) -> std::process::Child {
    keyward(&scratch_dir("run-jobs-notify"))
        .env("DATABASE_URL", TestServer::get().url(&app.database))
        .env("KEYWARD_SECRET", SECRET)
        .arg("run-jobs")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

#[actix_web::test]
async fn a_key_seven_days_from_expiry_yields_exactly_one_message_per_recipient_from_two_runners_run_twice() {
    let w = acme().await;
    let app = &w.app;
    expires_in(app, &w.bob_key, Duration::days(7) - Duration::hours(1));
    expires_in(app, &w.org_key, Duration::days(7) - Duration::hours(1));
    expires_in(app, &w.globex_key, Duration::days(30));

    for round in 0..2 {
        let (first, second) = (run_jobs_process(app), run_jobs_process(app));
        let outputs = [first.wait_with_output().unwrap(), second.wait_with_output().unwrap()];
        let said: Vec<_> = outputs.iter().map(text).collect();
        assert!(outputs.iter().all(|o| o.status.success()), "{round}: {said:?}");
        let ran = said.iter().filter(|(out, _)| out.contains("key-expiry: 2 expiry reminder(s)")).count();
        assert!(ran <= 1, "round {round}: both wrote the reminders: {said:?}");
        // The second round finds every job due again: nothing may be written twice.
        make_due(app);
    }

    assert_eq!(reminders(app, &w.bob_key).len(), 1);
    assert_eq!(reminders(app, &w.org_key)[0].0, 7, "the 7-day reminder");
    assert_eq!(reminders(app, &w.org_key).len(), 1);
    assert!(reminders(app, &w.globex_key).is_empty(), "30 days left: no reminder yet");
    assert_eq!(mail_about(app, "key.expiring", &w.bob_key), once_each(&["bob@acme.test"]), "the owner");
    assert_eq!(
        mail_about(app, "key.expiring", &w.org_key),
        once_each(&["admin@acme.test", "carol@acme.test", "dana@acme.test"]),
        "the creator and the administrators"
    );
    let event = &events(app, "key.expiring", &w.org_key)[0];
    assert_eq!(event.payload["type"], "key.expiring");
    assert_eq!(event.payload["key"]["public_id"], w.org_key.public_id.as_str());
    assert_eq!(event.payload["key"]["owner"]["type"], "organization");
    assert_eq!(event.organization_id, Some(w.acme.id));
}

#[actix_web::test]
async fn a_key_created_with_three_days_left_gets_no_late_reminder_only_the_one_day_one_when_its_time_comes() {
    let w = acme().await;
    let app = &w.app;
    // An old key whose expiry is brought to 3 days from now: counted from the change, the
    // 14- and 7-day moments were missed, whatever the key's age.
    diesel::update(api_keys::table.find(w.bob_key.id))
        .set(api_keys::created_at.eq(Utc::now() - Duration::days(60)))
        .execute(&mut *app.conn())
        .unwrap();
    expires_in(app, &w.bob_key, Duration::days(3));
    run_jobs_now(app);
    assert!(reminders(app, &w.bob_key).is_empty(), "the 14- and 7-day moments passed before: not sent late");

    app.advance(StdDuration::from_secs(2 * 86_400 + 3_600));
    run_jobs_now(app);
    run_jobs_now(app);
    assert_eq!(reminders(app, &w.bob_key).iter().map(|r| r.0).collect::<Vec<_>>(), [1], "only the 1-day one");
    assert_eq!(mail_about(app, "key.expiring", &w.bob_key), once_each(&["bob@acme.test"]));
    let subject: String = mail_messages::table
        .filter(mail_messages::recipient_email.eq("bob@acme.test"))
        .order(mail_messages::id.desc())
        .select(mail_messages::subject)
        .first(&mut *app.conn())
        .unwrap();
    assert_eq!(subject, "API key \u{201c}Bob's integration\u{201d} expires in 1 day");

    // When it expires, "expired" goes out once.
    app.advance(StdDuration::from_secs(86_400));
    run_jobs_now(app);
    run_jobs_now(app);
    assert_eq!(events(app, "key.expired", &w.bob_key).len(), 1);
    assert_eq!(mail_about(app, "key.expired", &w.bob_key), once_each(&["bob@acme.test"]));
}

#[actix_web::test]
async fn changing_a_keys_expiry_re_arms_its_reminders() {
    let w = acme().await;
    let app = &w.app;
    expires_in(app, &w.bob_key, Duration::days(7) - Duration::hours(1));
    run_jobs_now(app);
    assert_eq!(reminders(app, &w.bob_key).len(), 1);

    // Bob moves the expiry 12 days out: the 14-day moment had passed, the 7-day one is ahead.
    let bob = app.signed_in("bob@acme.test").await;
    let base = format!("/account/keys/{}", w.bob_key.public_id);
    bob.fetch_csrf_token(&format!("{base}/edit")).await;
    let later = (Utc::now() + Duration::days(12)).date_naive().to_string();
    let response = bob
        .post(
            &format!("{base}/edit"),
            &[("actions_mode", "selected"), ("action", "positions.read"), ("expires_on", &later)],
        )
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    run_jobs_now(app);
    assert_eq!(reminders(app, &w.bob_key).len(), 1, "nothing is due for the new expiry yet");

    app.advance(StdDuration::from_secs(6 * 86_400));
    run_jobs_now(app);
    run_jobs_now(app);
    let sent = reminders(app, &w.bob_key);
    assert_eq!(sent.iter().map(|r| r.0).collect::<Vec<_>>(), [7, 7], "{sent:?}");
    assert_ne!(sent[0].1, sent[1].1, "one per expiry");
    assert_eq!(sent[1].1, keys::reload(&mut app.conn(), &w.bob_key).unwrap().expires_at);
    assert_eq!(mail_about(app, "key.expiring", &w.bob_key), [("bob@acme.test".to_string(), 2)].into());
}

#[actix_web::test]
async fn an_event_is_written_in_the_same_transaction_as_its_change_and_audit_event() {
    let w = acme().await;
    let app = &w.app;
    let admin = app.signed_in("admin@acme.test").await;
    let base = format!("/admin/keys/{}", w.org_key.public_id);

    // The outbox refuses the event: the deletion and its audit event roll back with it.
    app.owner_conn()
        .batch_execute(
            "ALTER TABLE outbox_events ADD CONSTRAINT test_refuse CHECK (event_type <> 'key.deleted') NOT VALID",
        )
        .unwrap();
    admin.fetch_csrf_token(&format!("{base}/delete")).await;
    let response = admin.post(&format!("{base}/delete"), &[]).await;
    assert!(response.status().is_server_error(), "{}", response.status());
    assert!(keys::reload(&mut app.conn(), &w.org_key).is_some(), "the key is still there");
    assert_eq!(audit_count(app, "key.delete"), 0);

    // The audit log refuses: no event is left behind either.
    app.owner_conn()
        .batch_execute(
            "ALTER TABLE outbox_events DROP CONSTRAINT test_refuse;
             ALTER TABLE audit_events ADD CONSTRAINT test_refuse CHECK (action <> 'key.deactivate') NOT VALID",
        )
        .unwrap();
    admin.fetch_csrf_token(&format!("{base}/deactivate")).await;
    let response = admin.post(&format!("{base}/deactivate"), &[("reason", "rotation")]).await;
    assert!(response.status().is_server_error(), "{}", response.status());
    assert!(keys::reload(&mut app.conn(), &w.org_key).unwrap().active);
    assert!(events(app, "key.deactivated", &w.org_key).is_empty());

    // Without the faults, each change commits with its one audit event and its one event.
    app.owner_conn().batch_execute("ALTER TABLE audit_events DROP CONSTRAINT test_refuse").unwrap();
    admin.fetch_csrf_token(&format!("{base}/deactivate")).await;
    assert_eq!(
        admin.post(&format!("{base}/deactivate"), &[("reason", "rotation")]).await.status(),
        StatusCode::SEE_OTHER
    );
    let deactivated = events(app, "key.deactivated", &w.org_key);
    assert_eq!(deactivated.len(), 1);
    assert_eq!(deactivated[0].payload["cause"], "person");
    assert_eq!(deactivated[0].payload["reason"], "rotation");
    assert_eq!(deactivated[0].payload["actor"]["label"], "admin@acme.test");
    admin.fetch_csrf_token(&format!("{base}/delete")).await;
    assert_eq!(admin.post(&format!("{base}/delete"), &[]).await.status(), StatusCode::SEE_OTHER);
    assert_eq!((audit_count(app, "key.delete"), events(app, "key.deleted", &w.org_key).len()), (1, 1));
    assert_eq!(events(app, "key.created", &w.org_key).len(), 1, "its creation was an event too");
}

#[actix_web::test]
async fn administrators_read_their_organizations_mail_newest_first_paginated_with_an_empty_state() {
    let app = spawn_app().await;
    let (acme, admin) = fixtures::organization_with_admin(&mut app.conn(), "acme");
    let bob = fixtures::key_owner(&mut app.conn(), &acme, "bob@acme.test");
    let (_, globex_admin) = fixtures::organization_with_admin(&mut app.conn(), "globex");
    let admin_client = app.signed_in(&admin.email).await;
    let page = open_ok(&admin_client, "/admin/notifications").await;
    assert!(page.links_to("/admin/notifications"), "in the admin navigation: {page}");
    assert!(page.select(".empty-state").text().contains("No messages yet"), "{page}");

    let mut created = Vec::new();
    for n in 1..=27 {
        created.push(keys::organization(&mut app.conn(), &app.hasher, &bob, &format!("Acme key {n}")).0);
    }
    keys::organization(&mut app.conn(), &app.hasher, &globex_admin, "Globex secret project");
    run_jobs_now(&app);

    let page = open_ok(&admin_client, "/admin/notifications").await;
    assert_eq!(page.select("tr[data-message]").len(), 25, "{page}");
    let subjects = page.select(".message-subject").texts();
    assert_eq!(subjects[0], "API key \u{201c}Acme key 27\u{201d} was created", "newest first");
    assert_eq!(subjects[24], "API key \u{201c}Acme key 3\u{201d} was created");
    let newest = &created[26];
    let link = page.select(".message-link").attrs("href");
    assert_eq!(link[0], format!("/admin/keys/{}", newest.public_id), "relative without a public URL");
    assert!(page.select(".message-to").texts().iter().all(|to| to == "admin@acme.test"));
    assert!(page.links_to("/admin/notifications?page=2"));
    let page = open_ok(&admin_client, "/admin/notifications?page=2").await;
    assert_eq!(page.select(".message-subject").texts().len(), 2);
    assert!(!page.says("Globex"), "another organization's mail never shows: {page}");

    // Not for people who are not administrators.
    let bob_client = app.signed_in("bob@acme.test").await;
    assert!(bob_client.get("/admin/notifications").await.status().is_client_error());

    // With a public URL, links are built on it; another instance of the same deployment.
    let options = SpawnOptions {
        database: Some(app.database.clone()),
        secret: Some(app.secret.clone()),
        public_origin: Some("https://keys.example.com".into()),
        ..SpawnOptions::default()
    };
    let second = spawn_app_with(options).await;
    let globex = second.signed_in("admin@globex.test").await;
    let page = open_ok(&globex, "/admin/notifications").await;
    assert_eq!(page.select(".message-subject").texts(), ["API key \u{201c}Globex secret project\u{201d} was created"]);
    let link = page.select(".message-link").attr("href").unwrap();
    assert!(link.starts_with("https://keys.example.com/admin/keys/"), "{link}");
}

#[actix_web::test]
async fn staff_read_the_mail_about_service_providers_keys() {
    let app = spawn_app().await;
    let (provider, _) = fixtures::served_organization(&mut app.conn(), "acme", "Fleetco");
    fixtures::staff(&mut app.conn(), "sam@support.test");
    let (_, admin) = fixtures::organization_with_admin(&mut app.conn(), "globex");
    let sam = app.signed_in("sam@support.test").await;
    let page = open_ok(&sam, "/staff/notifications").await;
    assert!(page.links_to("/staff/notifications") && page.has(".empty-state"), "{page}");

    let owner = NewKeyOwner::ServiceProvider { service_provider_id: provider.id };
    let (key, _) = keys::create(&mut app.conn(), &app.hasher, owner, "Fleetco uplink", keys::settings(None));
    keys::organization(&mut app.conn(), &app.hasher, &admin, "Globex sync");
    expires_in(&app, &key, Duration::days(14) - Duration::hours(1));
    run_jobs_now(&app);

    let page = open_ok(&sam, "/staff/notifications").await;
    assert_eq!(
        page.select(".message-subject").texts(),
        [
            "API key \u{201c}Fleetco uplink\u{201d} expires in 14 days",
            "API key \u{201c}Fleetco uplink\u{201d} was created"
        ],
        "{page}"
    );
    let link = page.select(".message-link").attrs("href");
    assert_eq!(link[0], format!("/staff/providers/{}/keys/{}", provider.id, key.public_id));
    assert_eq!(open_ok(&sam, &link[0]).await.status, StatusCode::OK, "the link opens the key");
}

#[actix_web::test]
async fn a_person_who_turns_reminders_off_gets_none_but_still_hears_of_a_deactivation() {
    let w = acme().await;
    let app = &w.app;
    let bob = app.signed_in("bob@acme.test").await;
    let page = open_ok(&bob, "/account").await;
    assert!(page.has("input[name=receive_reminders][checked]"), "on by default: {page}");

    // Without the session's CSRF token nothing changes.
    let response = bob.post_raw("/account/notifications", &[]).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    bob.fetch_csrf_token("/account").await;
    let response = bob.post("/account/notifications", &[]).await;
    assert_eq!(location(&response), "/account");
    let page = open_ok(&bob, "/account").await;
    assert!(page.says("You will no longer get reminders"), "a flash says so: {page}");
    assert!(!page.has("input[name=receive_reminders][checked]"));
    let receives = |app: &TestApp| -> bool {
        users::table
            .filter(users::email.eq("bob@acme.test"))
            .select(users::receive_reminders)
            .first(&mut *app.conn())
            .unwrap()
    };
    assert!(!receives(app));
    assert_eq!(audit_count(app, "user.notification_preference"), 1);

    expires_in(app, &w.bob_key, Duration::days(7) - Duration::hours(1));
    run_jobs_now(app);
    assert_eq!(reminders(app, &w.bob_key).len(), 1, "the event is still written (for other channels)");
    assert!(mail_about(app, "key.expiring", &w.bob_key).is_empty(), "but Bob gets no reminder");

    let admin = app.signed_in("admin@acme.test").await;
    let deactivate = format!("/admin/keys/{}/deactivate", w.bob_key.public_id);
    admin.fetch_csrf_token(&deactivate).await;
    assert_eq!(admin.post(&deactivate, &[("reason", "")]).await.status(), StatusCode::SEE_OTHER);
    run_jobs_now(app);
    assert_eq!(mail_about(app, "key.deactivated", &w.bob_key), once_each(&["bob@acme.test"]));

    // Back on: the next reminder reaches him.
    bob.fetch_csrf_token("/account").await;
    bob.post("/account/notifications", &[("receive_reminders", "on")]).await;
    assert!(receives(app));
}

#[actix_web::test]
async fn administrators_set_the_reminder_days_with_field_errors_and_the_job_follows_them() {
    let w = acme().await;
    let app = &w.app;
    let admin = app.signed_in("admin@acme.test").await;
    let page = open_ok(&admin, "/admin/policy").await;
    assert_eq!(page.field("key_reminder_days").as_deref(), Some("14, 7, 1"), "{page}");
    admin.fetch_csrf_token("/admin/policy").await;
    let post = |days: &'static str| {
        let admin = &admin;
        async move {
            admin
                .post(
                    "/admin/policy",
                    &[
                        ("default_lifetime_days", "365"),
                        ("default_grace_minutes", "0"),
                        ("second_factor_required_for", "nobody"),
                        ("key_reminder_days", days),
                    ],
                )
                .await
        }
    };
    for bad in ["0", "400", "soon", "1,2,3,4,5,6"] {
        let response = post(bad).await;
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
        let page = Page::parse(&response.text().await.unwrap());
        assert_eq!(page.field("key_reminder_days").as_deref(), Some(bad), "keeps what was typed");
        assert!(page.select("#policy-reminders-error").text().contains("from 1 to 365"), "{bad}: {page}");
    }
    assert_eq!(location(&post("30 ,3").await), "/admin/policy");
    let days = Organization::find(&mut app.conn(), w.acme.id).unwrap().reminder_days();
    assert_eq!(days, [30, 3]);
    assert_eq!(audit_count(app, "organization.policy_update"), 1);

    expires_in(app, &w.org_key, Duration::days(30) - Duration::hours(1));
    expires_in(app, &w.bob_key, Duration::days(7) - Duration::hours(1));
    expires_in(app, &w.globex_key, Duration::days(7) - Duration::hours(1));
    run_jobs_now(app);
    assert_eq!(reminders(app, &w.org_key).iter().map(|r| r.0).collect::<Vec<_>>(), [30]);
    assert!(reminders(app, &w.bob_key).is_empty(), "7 is no longer one of Acme's days");
    assert_eq!(reminders(app, &w.globex_key).len(), 1, "Globex keeps 14, 7, 1");
}

#[actix_web::test]
async fn leak_reports_the_stale_key_policy_and_lost_access_are_events_with_their_messages() {
    let app = spawn_app().await;
    let (acme, _admin) = fixtures::organization_with_admin(&mut app.conn(), "acme");
    let bob = fixtures::key_owner(&mut app.conn(), &acme, "bob@acme.test");
    let (leaked, secret) = keys::personal(&mut app.conn(), &app.hasher, &bob, "Leaked one");
    let (stale, _) = keys::organization(&mut app.conn(), &app.hasher, &bob, "Forgotten one");
    diesel::update(api_keys::table.find(stale.id))
        .set(api_keys::created_at.eq(Utc::now() - Duration::days(100)))
        .execute(&mut *app.conn())
        .unwrap();
    diesel::update(keyward::db::schema::organizations::table.find(acme.id))
        .set(keyward::db::schema::organizations::deactivate_unused_after_days.eq(Some(90)))
        .execute(&mut *app.conn())
        .unwrap();

    let report = serde_json::json!([{ "token": secret, "type": "keyward_api_key", "url": "https://example.com/x", "source": "content" }]);
    let response = http_client().post(app.url("/api/v1/leaks")).json(&report).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let leak = events(&app, "key.deactivated", &leaked);
    assert_eq!(leak.len(), 1);
    assert_eq!(leak[0].payload["cause"], "leak_report");

    run_jobs_now(&app);
    let policy = events(&app, "key.deactivated", &stale);
    assert_eq!(policy.len(), 1);
    assert_eq!(policy[0].payload["cause"], "stale_policy");
    assert_eq!(policy[0].payload["actor"]["type"], "system");
    assert_eq!(mail_about(&app, "key.deactivated", &leaked), once_each(&["bob@acme.test"]));
    assert_eq!(mail_about(&app, "key.deactivated", &stale), once_each(&["admin@acme.test"]));

    let admin = app.signed_in("admin@acme.test").await;
    let access = format!("/admin/users/{}/access", bob.id);
    admin.fetch_csrf_token(&access).await;
    assert_eq!(admin.post(&access, &[("grant", "0")]).await.status(), StatusCode::SEE_OTHER);
    run_jobs_now(&app);
    let lost: Vec<(String, Option<String>)> = mail_messages::table
        .inner_join(outbox_events::table)
        .filter(outbox_events::event_type.eq("user.api_key_access_lost"))
        .select((mail_messages::recipient_email, mail_messages::link_path))
        .load(&mut *app.conn())
        .unwrap();
    assert_eq!(lost, [("bob@acme.test".to_string(), Some("/account".to_string()))]);
    let page = open_ok(&admin, "/admin/notifications").await;
    assert_eq!(page.select(".message-subject").texts()[0], "You no longer have API key access", "{page}");
    assert!(page.says("was deactivated by the organization's key policy"), "{page}");
}

/// Re-keys `key` at the application's clock with `grace_minutes`; the new secret.
fn rekey_with_grace(app: &TestApp, key: &ApiKey, grace_minutes: i32) -> String {
    let actor = keyward::services::Actor::system("test").at(app.now());
    match lifecycle::rekey(&mut app.conn(), &actor, &app.hasher, keys::at(key), grace_minutes, None, None).unwrap() {
        lifecycle::Rekeyed::New { secret, .. } => secret.expose().to_string(),
        lifecycle::Rekeyed::Replayed(_) => unreachable!("no token given"),
    }
}

/// Once the re-key to `new` reached the cache, verifies once with the `old` secret during its
/// grace period and flushes that use.
async fn use_old_secret(app: &TestApp, old: &str, new: &str) {
    let reached = within(StdDuration::from_secs(10), async || verify_code(app, new, None).await == "VALID").await;
    assert!(reached, "the re-key reaches the cache");
    let answer: serde_json::Value = http_client()
        .post(app.url("/api/v1/verify"))
        .bearer_auth(old)
        .json(&serde_json::json!({}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!((answer["code"].as_str(), answer["rotating"].as_bool()), (Some("VALID"), Some(true)), "{answer}");
    app.state.verifier.flush_usage().await.unwrap();
}

#[actix_web::test]
async fn an_old_secret_still_used_an_hour_before_its_grace_ends_is_announced_once() {
    let app = spawn_app().await;
    let mut conn = app.conn();
    let (acme, _admin) = fixtures::organization_with_admin(&mut conn, "acme");
    let bob = fixtures::key_owner(&mut conn, &acme, "bob@acme.test");
    let (used, used_old) = keys::personal(&mut conn, &app.hasher, &bob, "Still on the old secret");
    let (switched, _) = keys::personal(&mut conn, &app.hasher, &bob, "Switched in time");
    let (short, short_old) = keys::personal(&mut conn, &app.hasher, &bob, "Short grace");
    drop(conn);

    // Three re-keys with grace: one whose old secret stays in use, one whose old secret is
    // never presented again, and one whose 15-minute grace was already inside the last hour.
    let used_new = rekey_with_grace(&app, &used, 240);
    let switched_new = rekey_with_grace(&app, &switched, 240);
    let short_new = rekey_with_grace(&app, &short, 15);
    use_old_secret(&app, &used_old, &used_new).await;
    use_old_secret(&app, &short_old, &short_new).await;

    run_jobs_now(&app);
    assert!(events(&app, "key.old_secret_in_use", &used).is_empty(), "four hours left: too early");

    app.advance(StdDuration::from_secs(3 * 3_600 + 10 * 60));
    run_jobs_now(&app);
    run_jobs_now(&app);
    let warned = events(&app, "key.old_secret_in_use", &used);
    assert_eq!(warned.len(), 1, "once, however often the job runs");
    let rekeyed = keys::reload(&mut app.conn(), &used).unwrap();
    assert_eq!(warned[0].key_expires_at, rekeyed.previous_secret_expires_at, "about this grace period");
    assert_eq!(warned[0].payload["previous_secret_last4"], rekeyed.previous_secret_last4.unwrap());
    assert!(events(&app, "key.old_secret_in_use", &switched).is_empty(), "its old secret was not used");
    assert!(events(&app, "key.old_secret_in_use", &short).is_empty(), "its moment came before the re-key");
    assert_eq!(mail_about(&app, "key.old_secret_in_use", &used), once_each(&["bob@acme.test"]));
    let (subject, body): (String, String) = mail_messages::table
        .filter(mail_messages::event_id.eq(warned[0].id))
        .select((mail_messages::subject, mail_messages::body))
        .first(&mut *app.conn())
        .unwrap();
    assert_eq!(subject, "API key \u{201c}Still on the old secret\u{201d}: its old secret is still in use");
    assert!(body.contains("stops working"), "{body}");

    // Each grace period is its own occasion: the key whose old secret went unused is warned
    // about once its next re-key's old secret is used (with an hour's grace, at once).
    let newest = rekey_with_grace(&app, &switched, 60);
    use_old_secret(&app, &switched_new, &newest).await;
    run_jobs_now(&app);
    run_jobs_now(&app);
    assert_eq!(events(&app, "key.old_secret_in_use", &switched).len(), 1);
    assert_eq!(events(&app, "key.old_secret_in_use", &used).len(), 1);
}
