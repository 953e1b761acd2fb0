//! Stale keys (issue 18, items 4 and 6): the key lists' `unused=30|90|never` filters, the
//! organization policy "deactivate keys unused for N days" on Admin → Key policy, and the
//! `stale-keys` background job that applies it — through `keyward run-jobs`, two runners at
//! once, a server instance on its own, and the injected clock — exactly once, audited, and
//! shown on the key's page.

use std::{collections::BTreeSet, time::Duration as StdDuration};

use chrono::{DateTime, Duration, Utc};
use diesel::prelude::*;
use keyward::db::{
    models::{ApiKey, AuditEvent, Organization},
    schema::{api_keys, audit_events, jobs, organizations},
};
use reqwest::StatusCode;

use crate::{
    cli::{SECRET, keyward, scratch_dir, text},
    helpers::{
        Page, SpawnOptions, TestApp, TestClient, TestServer, audit_count, fixtures, keys, location, make_due,
        spawn_app, spawn_app_with, within,
    },
};

/// Sets a key's creation and last use to that long before `now`, as time would have.
fn age(app: &TestApp, key: &ApiKey, created: Duration, last_used: Option<Duration>) {
    let now = Utc::now();
    diesel::update(api_keys::table.find(key.id))
        .set((api_keys::created_at.eq(now - created), api_keys::last_used_at.eq(last_used.map(|d| now - d))))
        .execute(&mut *app.conn())
        .unwrap();
}

fn set_policy(app: &TestApp, organization: &Organization, days: Option<i32>) {
    diesel::update(organizations::table.find(organization.id))
        .set(organizations::deactivate_unused_after_days.eq(days))
        .execute(&mut *app.conn())
        .unwrap();
}

fn listed(page: &Page) -> BTreeSet<String> {
    page.select("tr[data-key]").attrs("data-key").into_iter().collect()
}

fn ids(keys: &[&ApiKey]) -> BTreeSet<String> {
    keys.iter().map(|k| k.public_id.clone()).collect()
}

async fn open_ok(client: &TestClient, path: &str) -> Page {
    let page = client.open(path).await;
    assert_eq!(page.status, StatusCode::OK, "{path}: {page}");
    page
}

fn reload(app: &TestApp, key: &ApiKey) -> ApiKey {
    keys::reload(&mut app.conn(), key).unwrap()
}

/// The policy's deactivations, oldest first.
fn policy_deactivations(app: &TestApp) -> Vec<AuditEvent> {
    audit_events::table
        .filter(audit_events::action.eq("key.deactivate"))
        .order(audit_events::id.asc())
        .select(AuditEvent::as_select())
        .load(&mut *app.conn())
        .unwrap()
}

#[actix_web::test]
async fn the_unused_filters_list_keys_unused_for_30_or_90_days_or_never_used_counting_from_creation() {
    let app = spawn_app().await;
    let mut conn = app.conn();
    let (acme, admin) = fixtures::organization_with_admin(&mut conn, "acme");
    let bob = fixtures::reader(&mut conn, &acme, "bob@acme.test");
    let (fresh_never, _) = keys::personal(&mut conn, &app.hasher, &bob, "Fresh, never used");
    let (month_never, _) = keys::personal(&mut conn, &app.hasher, &bob, "45 days old, never used");
    let (old_never, _) = keys::organization(&mut conn, &app.hasher, &admin, "100 days old, never used");
    let (used_yesterday, _) = keys::personal(&mut conn, &app.hasher, &bob, "Used yesterday");
    let (used_40, _) = keys::personal(&mut conn, &app.hasher, &bob, "Used 40 days ago");
    let (used_100, _) = keys::organization(&mut conn, &app.hasher, &admin, "Used 100 days ago");
    // Another tenant's stale keys never show.
    let globex_admin = fixtures::organization_with_admin(&mut conn, "globex").1;
    let (globex_key, _) = keys::organization(&mut conn, &app.hasher, &globex_admin, "Globex, never used");
    drop(conn);
    age(&app, &month_never, Duration::days(45), None);
    age(&app, &old_never, Duration::days(100), None);
    age(&app, &used_yesterday, Duration::days(200), Some(Duration::days(1)));
    age(&app, &used_40, Duration::days(300), Some(Duration::days(40)));
    age(&app, &used_100, Duration::days(300), Some(Duration::days(100)));
    age(&app, &globex_key, Duration::days(400), None);
    let admin = app.signed_in(&admin.email).await;

    let page = open_ok(&admin, "/admin/keys?unused=30").await;
    assert_eq!(listed(&page), ids(&[&month_never, &old_never, &used_40, &used_100]), "{page}");
    assert_eq!(page.field("unused").as_deref(), Some("30"), "the filter shows as applied");
    let page = open_ok(&admin, "/admin/keys?unused=90").await;
    assert_eq!(listed(&page), ids(&[&old_never, &used_100]), "never used counts from creation: {page}");
    let page = open_ok(&admin, "/admin/keys?unused=never").await;
    assert_eq!(listed(&page), ids(&[&fresh_never, &month_never, &old_never]), "{page}");
    assert_eq!(page.field("unused").as_deref(), Some("never"));

    // The filter bar offers the three (and "any time"); other filters are kept with it.
    let offered = page.select("select[name=unused] option").attrs("value");
    assert_eq!(offered, ["", "30", "90", "never"], "{page}");
    let page = open_ok(&admin, "/admin/keys?unused=never&q=45+days").await;
    assert_eq!(listed(&page), ids(&[&month_never]));
    assert_eq!(page.field("q").as_deref(), Some("45 days"));
    let deactivate = format!("/admin/keys/{}/deactivate", used_100.public_id);
    admin.fetch_csrf_token(&deactivate).await;
    assert_eq!(admin.post(&deactivate, &[("reason", "")]).await.status(), StatusCode::SEE_OTHER);
    let page = open_ok(&admin, "/admin/keys?unused=90&state=active").await;
    assert_eq!(listed(&page), ids(&[&old_never]), "{page}");
    // A span from a link that the bar does not offer is offered while applied.
    let page = open_ok(&admin, "/admin/keys?unused=45").await;
    assert_eq!(listed(&page), ids(&[&month_never, &old_never, &used_100]));
    assert_eq!(page.field("unused").as_deref(), Some("45"));
    for bad in ["sometimes", "0", "Never", "3651"] {
        assert_eq!(admin.get(&format!("/admin/keys?unused={bad}")).await.status(), StatusCode::BAD_REQUEST, "{bad}");
    }

    // Time moves on the application's clock: a month later, the fresh key is stale too.
    app.advance(StdDuration::from_secs(31 * 86_400));
    let admin = app.signed_in("admin@acme.test").await;
    let page = open_ok(&admin, "/admin/keys?unused=30").await;
    assert!(listed(&page).contains(&fresh_never.public_id), "{page}");
    assert!(listed(&page).contains(&used_yesterday.public_id), "used 32 days ago by the clock");
    let page = open_ok(&admin, "/admin/keys?unused=90").await;
    assert_eq!(listed(&page), ids(&[&old_never, &used_100]), "76 days is not 90: {page}");
}

/// Posts the Key policy form with `unused_days` for the stale-key policy.
async fn post_policy(admin: &TestClient, unused_days: &str) -> reqwest::Response {
    admin
        .post(
            "/admin/policy",
            &[
                ("default_lifetime_days", "365"),
                ("default_grace_minutes", "0"),
                ("second_factor_required_for", "nobody"),
                ("deactivate_unused_after_days", unused_days),
            ],
        )
        .await
}

#[actix_web::test]
async fn administrators_set_the_stale_key_policy_with_field_errors_for_bad_values_and_each_change_audited() {
    let app = spawn_app().await;
    let (acme, admin) = fixtures::organization_with_admin(&mut app.conn(), "acme");
    let policy = |app: &TestApp| Organization::find(&mut app.conn(), acme.id).unwrap().deactivate_unused_after_days;
    assert_eq!(policy(&app), None, "off by default");
    let admin = app.signed_in(&admin.email).await;
    let page = open_ok(&admin, "/admin/policy").await;
    assert_eq!(page.field("deactivate_unused_after_days").as_deref(), Some(""), "{page}");

    // Without the session's CSRF token, nothing changes.
    let response = admin
        .post_raw("/admin/policy", &[("default_lifetime_days", "365"), ("deactivate_unused_after_days", "30")])
        .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(policy(&app), None);

    admin.fetch_csrf_token("/admin/policy").await;
    let response = post_policy(&admin, "90").await;
    assert_eq!(location(&response), "/admin/policy");
    assert_eq!(policy(&app), Some(90));
    let page = open_ok(&admin, "/admin/policy").await;
    assert_eq!(page.field("deactivate_unused_after_days").as_deref(), Some("90"));
    let last: AuditEvent = audit_events::table
        .filter(audit_events::action.eq("organization.policy_update"))
        .order(audit_events::id.desc())
        .select(AuditEvent::as_select())
        .first(&mut *app.conn())
        .unwrap();
    assert_eq!(last.details["from"]["deactivate_unused_after_days"], serde_json::Value::Null);
    assert_eq!(last.details["to"]["deactivate_unused_after_days"], 90);
    assert_eq!(last.actor_label, "admin@acme.test");

    for bad in ["3", "3651", "ninety", "90.5", "-90"] {
        let response = post_policy(&admin, bad).await;
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
        let page = Page::parse(&response.text().await.unwrap());
        assert_eq!(page.field("deactivate_unused_after_days").as_deref(), Some(bad), "keeps what was typed");
        let error = page.select("#policy-unused-error").text();
        assert!(error.contains("from 7 to 3650"), "{bad}: {page}");
        assert_eq!(policy(&app), Some(90), "{bad}");
    }
    assert_eq!(audit_count(&app, "organization.policy_update"), 1);

    // A form without the field (an older page, a script) leaves it; an empty field turns it off.
    let response =
        admin.post("/admin/policy", &[("default_lifetime_days", "365"), ("default_grace_minutes", "0")]).await;
    assert_eq!(location(&response), "/admin/policy");
    assert_eq!(policy(&app), Some(90));
    assert_eq!(location(&post_policy(&admin, "").await), "/admin/policy");
    assert_eq!(policy(&app), None);
    assert_eq!(audit_count(&app, "organization.policy_update"), 3);
}

/// Acme with the policy at 90 days and keys of every kind the job must tell apart; Globex,
/// without the policy, with a stale key of its own.
struct World {
    app: TestApp,
    acme: Organization,
    admin_email: String,
    stale_used: ApiKey,
    stale_never_used: ApiKey,
    stale_secret: String,
    fresh: ApiKey,
    used_recently: ApiKey,
    expired: ApiKey,
    already_inactive: ApiKey,
    globex_stale: ApiKey,
}

async fn world() -> World {
    let app = spawn_app().await;
    let mut conn = app.conn();
    let (acme, admin) = fixtures::organization_with_admin(&mut conn, "acme");
    let bob = fixtures::reader(&mut conn, &acme, "bob@acme.test");
    let (stale_used, stale_secret) = keys::personal(&mut conn, &app.hasher, &bob, "Used 120 days ago");
    let (stale_never_used, _) = keys::organization(&mut conn, &app.hasher, &admin, "Never used, 100 days old");
    let (fresh, _) = keys::personal(&mut conn, &app.hasher, &bob, "Fresh");
    let (used_recently, _) = keys::personal(&mut conn, &app.hasher, &bob, "Used last week");
    let (expired, _) = keys::personal(&mut conn, &app.hasher, &bob, "Expired");
    let (already_inactive, _) = keys::personal(&mut conn, &app.hasher, &bob, "Deactivated by Bob");
    let globex_admin = fixtures::organization_with_admin(&mut conn, "globex").1;
    let (globex_stale, _) = keys::organization(&mut conn, &app.hasher, &globex_admin, "Globex, stale");
    diesel::update(api_keys::table.find(expired.id))
        .set(api_keys::expires_at.eq(Some(Utc::now() - Duration::days(1))))
        .execute(&mut conn)
        .unwrap();
    diesel::update(api_keys::table.find(already_inactive.id))
        .set((api_keys::active.eq(false), api_keys::deactivation_reason.eq(Some("not needed"))))
        .execute(&mut conn)
        .unwrap();
    drop(conn);
    age(&app, &stale_used, Duration::days(400), Some(Duration::days(120)));
    age(&app, &stale_never_used, Duration::days(100), None);
    age(&app, &used_recently, Duration::days(400), Some(Duration::days(7)));
    age(&app, &expired, Duration::days(400), None);
    age(&app, &already_inactive, Duration::days(400), None);
    age(&app, &globex_stale, Duration::days(400), None);
    set_policy(&app, &acme, Some(90));
    World {
        app,
        acme,
        admin_email: admin.email,
        stale_used,
        stale_never_used,
        stale_secret,
        fresh,
        used_recently,
        expired,
        already_inactive,
        globex_stale,
    }
}

/// `keyward run-jobs` against the app's database; returns its standard output.
fn run_jobs(app: &TestApp) -> std::process::Output {
    keyward(&scratch_dir("run-jobs"))
        .env("DATABASE_URL", TestServer::get().url(&app.database))
        .env("KEYWARD_SECRET", SECRET)
        .arg("run-jobs")
        .output()
        .unwrap()
}

#[actix_web::test]
async fn run_jobs_deactivates_the_stale_keys_once_audits_each_with_its_reason_and_the_key_page_shows_it() {
    let w = world().await;
    let app = &w.app;

    let output = run_jobs(app);
    assert!(output.status.success(), "{:?}", text(&output));
    let (stdout, _) = text(&output);
    assert!(stdout.contains("stale-keys: deactivated 2 stale key(s)"), "{stdout}");

    let reason = "Not used for 90 days: deactivated by the organization's key policy";
    for key in [&w.stale_used, &w.stale_never_used] {
        let key = reload(app, key);
        assert!(!key.active, "{}", key.name);
        assert_eq!(key.deactivation_reason.as_deref(), Some(reason));
    }
    for key in [&w.fresh, &w.used_recently, &w.expired, &w.globex_stale] {
        assert!(reload(app, key).active, "{} is left alone", key.name);
    }
    assert_eq!(reload(app, &w.already_inactive).deactivation_reason.as_deref(), Some("not needed"));
    let events = policy_deactivations(app);
    assert_eq!(events.len(), 2);
    let targets: BTreeSet<String> = events.iter().filter_map(|e| e.target_id.clone()).collect();
    assert_eq!(targets, ids(&[&w.stale_used, &w.stale_never_used]));
    for event in &events {
        assert_eq!((event.actor_type.as_str(), event.organization_id), ("system", Some(w.acme.id)));
        assert_eq!(event.details["reason"], reason);
        assert_eq!(event.details["policy"]["deactivate_unused_after_days"], 90);
    }
    // The deactivated key stops verifying (the cache hears of the change).
    let disabled = within(StdDuration::from_secs(10), async || {
        crate::helpers::verify_code(app, &w.stale_secret, None).await == "DISABLED"
    })
    .await;
    assert!(disabled, "a deactivated key does not verify");

    // Run again: not due, nothing more.
    let output = run_jobs(app);
    assert!(output.status.success(), "{:?}", text(&output));
    assert!(text(&output).0.contains("stale-keys: not due until"), "{:?}", text(&output));
    // Due again (an hour later, say): the job finds nothing more to do.
    make_due(app);
    let output = run_jobs(app);
    assert!(text(&output).0.contains("stale-keys: deactivated 0 stale key(s)"), "{:?}", text(&output));
    assert_eq!(policy_deactivations(app).len(), 2);

    // The key page says why, in its state and in its history.
    let admin = app.signed_in(&w.admin_email).await;
    let page = open_ok(&admin, &format!("/admin/keys/{}", w.stale_used.public_id)).await;
    let deactivated = page.select("dd").texts().into_iter().find(|t| t.contains(reason));
    assert!(deactivated.is_some(), "{page}");
    assert_eq!(page.select("table.history .history-note").text().trim(), format!("— {reason}"), "{page}");
}

#[actix_web::test]
async fn two_runners_at_once_deactivate_each_stale_key_once() {
    let w = world().await;
    let app = &w.app;
    let url = TestServer::get().url(&app.database);
    let spawn = || {
        keyward(&scratch_dir("run-jobs-twice"))
            .env("DATABASE_URL", &url)
            .env("KEYWARD_SECRET", SECRET)
            .arg("run-jobs")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    for round in 0..3 {
        let (first, second) = (spawn(), spawn());
        let outputs = [first.wait_with_output().unwrap(), second.wait_with_output().unwrap()];
        assert!(
            outputs.iter().all(|o| o.status.success()),
            "{round}: {:?}",
            outputs.iter().map(text).collect::<Vec<_>>()
        );
        let ran = outputs.iter().filter(|o| text(o).0.contains("stale-keys: deactivated")).count();
        assert!(ran <= 1, "round {round}: both ran: {:?}", outputs.iter().map(text).collect::<Vec<_>>());
        make_due(app);
    }
    assert_eq!(policy_deactivations(app).len(), 2, "each stale key deactivated and audited once");
    assert!(!reload(app, &w.stale_used).active && !reload(app, &w.stale_never_used).active);
}

#[actix_web::test]
async fn a_reactivated_key_counts_from_its_reactivation_on_the_applications_clock() {
    let w = world().await;
    let app = &w.app;
    let now = app.now();
    let runs = keyward::jobs::run_due(&mut app.conn(), now).unwrap();
    assert_eq!(runs[0].to_string(), "stale-keys: deactivated 2 stale key(s) in 1 organization(s) with the policy");

    // The administrator switches one on again: the next run leaves it alone.
    let admin = app.signed_in(&w.admin_email).await;
    let reactivate = format!("/admin/keys/{}/reactivate", w.stale_never_used.public_id);
    admin.fetch_csrf_token(&reactivate).await;
    assert_eq!(admin.post(&reactivate, &[]).await.status(), StatusCode::SEE_OTHER);
    assert!(reload(app, &w.stale_never_used).active);
    make_due(app);
    let runs = keyward::jobs::run_due(&mut app.conn(), app.now()).unwrap();
    assert!(runs[0].to_string().contains("deactivated 0"), "{}", runs[0]);
    assert!(reload(app, &w.stale_never_used).active);

    // 91 days later on the application's clock, it and the fresh key are stale; the key used
    // last week is too by then (all three still unexpired). Nothing happens before that.
    let later = Some(Utc::now() + Duration::days(365));
    diesel::update(api_keys::table.filter(api_keys::id.eq_any([
        w.stale_never_used.id,
        w.fresh.id,
        w.used_recently.id,
    ])))
    .set(api_keys::expires_at.eq(later))
    .execute(&mut *app.conn())
    .unwrap();
    app.advance(StdDuration::from_secs(60 * 86_400));
    make_due(app);
    let runs = keyward::jobs::run_due(&mut app.conn(), app.now()).unwrap();
    assert!(runs[0].to_string().contains("deactivated 0"), "{}", runs[0]);
    app.advance(StdDuration::from_secs(31 * 86_400));
    make_due(app);
    let runs = keyward::jobs::run_due(&mut app.conn(), app.now()).unwrap();
    assert!(runs[0].to_string().contains("deactivated 3"), "{}", runs[0]);
    for key in [&w.stale_never_used, &w.fresh, &w.used_recently] {
        assert!(!reload(app, key).active, "{}", key.name);
    }
    assert_eq!(policy_deactivations(app).len(), 5);
    // The run's time was the application's clock.
    let deactivated_at = reload(app, &w.fresh).deactivated_at.unwrap();
    assert!(deactivated_at - Utc::now() > Duration::days(90), "{deactivated_at}");
}

#[actix_web::test]
async fn a_server_instance_runs_due_jobs_by_itself() {
    let w = world().await;
    let app = &w.app;
    let options = SpawnOptions { database: Some(app.database.clone()), run_jobs: true, ..SpawnOptions::default() };
    let first = spawn_app_with(options).await;
    let deactivated = within(StdDuration::from_secs(30), async || {
        !reload(app, &w.stale_used).active && !reload(app, &w.stale_never_used).active
    })
    .await;
    assert!(deactivated, "the server ran the due job at start");
    assert_eq!(policy_deactivations(app).len(), 2);
    let ran_at: Option<DateTime<Utc>> =
        jobs::table.find("stale-keys").select(jobs::last_run_at).first(&mut *app.conn()).unwrap();
    assert!(ran_at.is_some());
    drop(first);
}

/// Runs of [`counted_job`] so far.
static COUNTED_RUNS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// A job that counts its runs and takes a while, so that a second runner comes while the
/// first still holds it.
fn counted_job(_conn: &mut PgConnection, _now: DateTime<Utc>) -> Result<String, keyward::error::AppError> {
    COUNTED_RUNS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    std::thread::sleep(StdDuration::from_millis(300));
    Ok("counted".into())
}

#[actix_web::test]
async fn runners_side_by_side_run_a_registered_job_once_per_period() {
    use keyward::jobs::{Job, Outcome, run_due_of};
    const REGISTRY: &[Job] = &[Job { name: "test-counted", every: StdDuration::from_secs(3600), run: counted_job }];
    use chrono::SubsecRound;
    let app = spawn_app().await;
    // PostgreSQL keeps microseconds.
    let now = app.now().trunc_subsecs(6);
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(2));
    let runners: Vec<_> = (0..2)
        .map(|_| {
            let (db, barrier) = (app.db.clone(), barrier.clone());
            std::thread::spawn(move || {
                let mut conn = db.get().unwrap();
                barrier.wait();
                run_due_of(&mut conn, REGISTRY, now).unwrap().remove(0).outcome
            })
        })
        .collect();
    let outcomes: Vec<Outcome> = runners.into_iter().map(|r| r.join().unwrap()).collect();
    assert_eq!(COUNTED_RUNS.load(std::sync::atomic::Ordering::SeqCst), 1, "{outcomes:?}");
    assert_eq!(outcomes.iter().filter(|o| **o == Outcome::Ran("counted".into())).count(), 1, "{outcomes:?}");
    assert!(
        outcomes.iter().all(|o| matches!(o, Outcome::Ran(_) | Outcome::Elsewhere | Outcome::NotDue(_))),
        "{outcomes:?}"
    );
    // Within its period it is not due, on any runner; after it, it runs again, once.
    let again = run_due_of(&mut app.conn(), REGISTRY, now + Duration::minutes(59)).unwrap();
    assert!(matches!(again[0].outcome, Outcome::NotDue(at) if at == now + Duration::hours(1)), "{again:?}");
    let later = run_due_of(&mut app.conn(), REGISTRY, now + Duration::hours(1)).unwrap();
    assert_eq!(later[0].outcome, Outcome::Ran("counted".into()));
    assert_eq!(COUNTED_RUNS.load(std::sync::atomic::Ordering::SeqCst), 2);
    let (last_run, outcome): (Option<DateTime<Utc>>, String) = jobs::table
        .find("test-counted")
        .select((jobs::last_run_at, jobs::last_outcome))
        .first(&mut *app.conn())
        .unwrap();
    assert_eq!((last_run, outcome.as_str()), (Some(now + Duration::hours(1)), "counted"));
}

#[actix_web::test]
async fn the_overview_lists_the_stalest_active_keys_with_links_to_them_and_to_all_of_them() {
    let app = spawn_app().await;
    let mut conn = app.conn();
    let (acme, admin) = fixtures::organization_with_admin(&mut conn, "acme");
    let bob = fixtures::reader(&mut conn, &acme, "bob@acme.test");
    fixtures::UserBuilder::new(&acme, "audrey@acme.test")
        .role(&[keyward::domain::Permission::AuditRead])
        .insert(&mut conn);
    let mut make = |name: &str| keys::personal(&mut conn, &app.hasher, &bob, name).0;
    let (used_200, never_150, never_120, used_100, used_95, used_91, used_10, inactive, expired) = (
        make("Used 200 days ago"),
        make("Never used, 150 days old"),
        make("Never used, 120 days old"),
        make("Used 100 days ago"),
        make("Used 95 days ago"),
        make("Used 91 days ago"),
        make("Used 10 days ago"),
        make("Inactive, used 300 days ago"),
        make("Expired, never used"),
    );
    let globex_admin = fixtures::organization_with_admin(&mut conn, "globex").1;
    let globex = keys::organization(&mut conn, &app.hasher, &globex_admin, "Globex, stalest of all").0;
    diesel::update(api_keys::table.find(inactive.id)).set(api_keys::active.eq(false)).execute(&mut conn).unwrap();
    diesel::update(api_keys::table.find(expired.id))
        .set(api_keys::expires_at.eq(Some(Utc::now() - Duration::days(1))))
        .execute(&mut conn)
        .unwrap();
    drop(conn);
    for (key, created, used) in [
        (&used_200, 400, Some(200)),
        (&never_150, 150, None),
        (&never_120, 120, None),
        (&used_100, 400, Some(100)),
        (&used_95, 400, Some(95)),
        (&used_91, 400, Some(91)),
        (&used_10, 400, Some(10)),
        (&inactive, 400, Some(300)),
        (&expired, 400, None),
        (&globex, 900, None),
    ] {
        age(&app, key, Duration::days(created), used.map(Duration::days));
    }
    set_policy(&app, &acme, Some(180));

    let admin_client = app.signed_in(&admin.email).await;
    let page = open_ok(&admin_client, "/admin").await;
    let shown = page.select("section.overview-stale tr[data-stale-key]").attrs("data-stale-key");
    let expected: Vec<String> =
        [&used_200, &never_150, &never_120, &used_100, &used_95].iter().map(|k| k.public_id.clone()).collect();
    assert_eq!(shown, expected, "the five stalest active keys, stalest first: {page}");
    for key in [&used_200, &never_150] {
        assert!(page.links_to(&format!("/admin/keys/{}", key.public_id)), "{page}");
    }
    assert!(page.links_to("/admin/keys?state=active&unused=90"));
    let never_row = page.select(&format!("tr[data-stale-key=\"{}\"]", never_150.public_id)).text();
    assert!(never_row.contains("Never (created"), "{never_row}");
    assert!(page.select("section.overview-stale").text().contains("deactivates keys unused for 180 days"));
    let policy = page.select("dl.details").text();
    assert!(policy.contains("After 180 days unused"), "{policy}");

    // Those who may not see the keys do not see them here either.
    let auditor = open_ok(&app.signed_in("audrey@acme.test").await, "/admin").await;
    assert!(!auditor.has("section.overview-stale"), "{auditor}");
}
