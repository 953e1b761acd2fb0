//! Usage insight (issue 18): verifications counted per key and hour by every instance and
//! merged exactly on the key page, the old secret's use during a grace period, the recent
//! client addresses, the least-privilege suggestion and its preselected edit dialog, and the
//! retention job.

use std::time::{Duration, Instant};

use diesel::{prelude::*, sql_types::BigInt};
use keyward::{
    db::models::{ApiKey, User},
    keys::{Environment, GeneratedKey},
    services::{
        Actor,
        keys::lifecycle,
        usage::{self, Pruned, Retention},
    },
};
use reqwest::StatusCode;
use serde_json::{Value, json};

use fantoccini::Locator;

use crate::{
    browser::Browser,
    helpers::{SpawnOptions, TestApp, fixtures, http_client, keys, spawn_app_with},
    page::Page,
};

/// Verifies `key` for `action` (from `from`, sent as the trusted `X-Forwarded-For`): the code.
async fn verify_from(app: &TestApp, key: &str, action: Option<&str>, from: Option<&str>) -> Value {
    let body = match action {
        Some(action) => json!({ "action": action }),
        None => json!({}),
    };
    let mut request = http_client().post(app.url("/api/v1/verify")).bearer_auth(key).json(&body);
    if let Some(from) = from {
        request = request.header("x-forwarded-for", from);
    }
    request.send().await.unwrap().json::<Value>().await.unwrap()
}

async fn verify(app: &TestApp, key: &str, action: Option<&str>) -> String {
    verify_from(app, key, action, None).await["code"].as_str().unwrap().to_string()
}

struct Acme {
    app: TestApp,
    org: keyward::db::models::Organization,
    bob: User,
}

/// An organization with Bob, who may use keys for `positions.read` and `vehicles.read`.
async fn acme(options: SpawnOptions) -> Acme {
    let app = spawn_app_with(options).await;
    let mut conn = app.conn();
    let org = fixtures::organization(&mut conn, "acme");
    let bob = fixtures::reader(&mut conn, &org, "bob@acme.test");
    drop(conn);
    Acme { app, org, bob }
}

fn both_reads(app: &TestApp, bob: &User, name: &str) -> (ApiKey, String) {
    keys::personal_with(&mut app.conn(), &app.hasher, bob, Some(&["positions.read", "vehicles.read"]), name)
}

/// The number shown on the usage stat card `which` (total, valid, refused).
fn stat(page: &Page, which: &str) -> i64 {
    page.select(&format!("[data-usage=\"{which}\"] .stat-number")).text().parse().unwrap()
}

/// The count of outcome `code` in the page's table of outcomes (0 when absent).
fn outcome(page: &Page, code: &str) -> i64 {
    let cell = page.select(&format!(".usage-codes tr[data-code=\"{code}\"] td")).text();
    if cell.is_empty() { 0 } else { cell.parse().unwrap() }
}

#[actix_web::test]
async fn verifications_through_two_instances_add_up_exactly_on_the_key_page() {
    let Acme { app, bob, .. } = acme(SpawnOptions::default()).await;
    let second = spawn_app_with(SpawnOptions {
        database: Some(app.database.clone()),
        secret: Some(app.secret.clone()),
        ..SpawnOptions::default()
    })
    .await;
    let (key, secret) = both_reads(&app, &bob, "Shared");
    let wrong = GeneratedKey::with_public_id(Environment::Live, &key.public_id);
    for _ in 0..7 {
        assert_eq!(verify(&app, &secret, Some("positions.read")).await, "VALID");
    }
    for _ in 0..2 {
        assert_eq!(verify(&app, &secret, Some("dispatch.create")).await, "FORBIDDEN_ACTION");
    }
    for _ in 0..5 {
        assert_eq!(verify(&second, &secret, Some("positions.read")).await, "VALID");
    }
    assert_eq!(verify(&second, &secret, None).await, "VALID");
    assert_eq!(verify(&second, wrong.expose(), Some("positions.read")).await, "NOT_FOUND");
    assert_eq!(verify(&second, &secret, Some("made.up.action")).await, "FORBIDDEN_ACTION");
    // Each instance flushes on its own; the upserts add up.
    assert_eq!(app.state.verifier.flush_tally().await.unwrap(), 1);
    assert_eq!(second.state.verifier.flush_tally().await.unwrap(), 1);
    assert_eq!(app.state.verifier.flush_tally().await.unwrap(), 0, "nothing is written twice");

    let bob_client = app.signed_in("bob@acme.test").await;
    let base = format!("/account/keys/{}", key.public_id);
    let page = bob_client.open(&base).await;
    assert_eq!((stat(&page, "total"), stat(&page, "valid"), stat(&page, "refused")), (17, 13, 4));
    assert_eq!(outcome(&page, "VALID"), 13);
    assert_eq!(outcome(&page, "FORBIDDEN_ACTION"), 3);
    assert_eq!(outcome(&page, "NOT_FOUND"), 1, "a wrong secret for this key counts for it");
    let action = |label: &str| page.select(&format!(".usage-actions tr[data-action=\"{label}\"] td")).texts();
    assert_eq!(action("positions.read")[..3], ["13", "1", "12"], "in the period, refused, valid in 30 days");
    assert_eq!(action("dispatch.create")[..2], ["2", "2"]);
    assert_eq!(action("(other)")[..2], ["1", "1"], "an action outside the catalog is not named");
    assert_eq!(action("(no action named)")[..2], ["1", "0"]);
    // The chart and its table say the same.
    let bars = page.select("svg rect.valid").len() + page.select("svg rect.refused").len();
    assert!(bars >= 1, "the chart draws the hour");
    let table_valid: i64 =
        page.select(".chart-table tbody td:nth-child(2)").texts().iter().map(|t| t.parse::<i64>().unwrap()).sum();
    assert_eq!(table_valid, 13);
    assert!(page.select("svg[role=img] title").text().contains("24 hours"));

    // Other periods count the same verifications; an unknown period is a clear 400.
    for period in ["7d", "30d"] {
        let page = bob_client.open(&format!("{base}?period={period}")).await;
        assert_eq!(stat(&page, "total"), 17, "{period}");
        let current = page.select(".period-switch a[aria-current=page]").attr("href").unwrap();
        assert_eq!(current, format!("{base}?period={period}#usage"));
    }
    let (status, _) = bob_client.page(&format!("{base}?period=1y")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[actix_web::test]
async fn the_old_secret_is_counted_apart_during_its_grace_period() {
    let Acme { app, bob, .. } = acme(SpawnOptions::default()).await;
    let (key, old) = both_reads(&app, &bob, "Rotating");
    assert_eq!(verify(&app, &old, None).await, "VALID");
    let new =
        match lifecycle::rekey(&mut app.conn(), &Actor::system("test"), &app.hasher, keys::at(&key), 60, None, None)
            .unwrap()
        {
            lifecycle::Rekeyed::New { secret, .. } => secret.expose().to_string(),
            lifecycle::Rekeyed::Replayed(_) => unreachable!(),
        };
    // Until the re-key reaches the cache the old secret is still the current one.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut as_current = 1;
    loop {
        let answer = verify_from(&app, &old, None, None).await;
        if answer["rotating"] == json!(true) {
            break;
        }
        as_current += 1;
        assert!(Instant::now() < deadline, "the re-key reaches the cache");
        actix_web::rt::time::sleep(Duration::from_millis(10)).await;
    }
    for _ in 0..3 {
        assert_eq!(verify(&app, &old, Some("positions.read")).await, "VALID");
    }
    assert_eq!(verify(&app, &old, Some("vehicles.write")).await, "FORBIDDEN_ACTION");
    for _ in 0..2 {
        assert_eq!(verify(&app, &new, None).await, "VALID");
    }
    app.state.verifier.flush_usage().await.unwrap();

    let page = app.signed_in("bob@acme.test").await.open(&format!("/account/keys/{}", key.public_id)).await;
    let grace = page.select("[data-grace-usage]");
    assert_eq!(grace.attr("data-grace-usage").unwrap(), "5", "1 + 3 valid and 1 refused with the old secret");
    assert!(grace.text().contains("127.0.0.1"), "from where");
    assert_eq!(stat(&page, "total"), as_current + 5 + 2, "the old secret's use is use of the key");
    assert!(page.select("tr[data-address=\"127.0.0.1\"]").text().contains("old secret"));

    // Once the grace period is over, the page no longer speaks of it.
    app.advance(Duration::from_secs(61 * 60));
    let page = app.signed_in("bob@acme.test").await.open(&format!("/account/keys/{}", key.public_id)).await;
    assert!(!page.has("[data-grace-usage]"));
}

#[actix_web::test]
async fn the_ten_most_recent_client_addresses_are_kept_with_first_and_last_seen() {
    let options = SpawnOptions {
        trust_forwarded: keyward::domain::client_ip::TrustForwarded::XForwardedFor,
        ..SpawnOptions::default()
    };
    let Acme { app, bob, .. } = acme(options).await;
    let (key, secret) = both_reads(&app, &bob, "Travelling");
    let from = |i: u8| format!("192.0.2.{i}");
    for i in 1..=6 {
        assert_eq!(verify_from(&app, &secret, None, Some(&from(i))).await["code"], "VALID");
    }
    app.state.verifier.flush_tally().await.unwrap();
    app.advance(Duration::from_secs(600));
    for i in 7..=12 {
        assert_eq!(verify_from(&app, &secret, None, Some(&from(i))).await["code"], "VALID");
    }
    verify_from(&app, &secret, None, Some(&from(3))).await;
    // Naming the key with a wrong secret does not make an address one of its clients.
    let wrong = GeneratedKey::with_public_id(Environment::Live, &key.public_id);
    assert_eq!(verify_from(&app, wrong.expose(), None, Some("203.0.113.9")).await["code"], "NOT_FOUND");
    app.state.verifier.flush_tally().await.unwrap();

    let page = app.signed_in("bob@acme.test").await.open(&format!("/account/keys/{}", key.public_id)).await;
    let shown = page.select("tr[data-address]").attrs("data-address");
    assert_eq!(shown.len(), 10, "ten distinct addresses: {shown:?}");
    assert_eq!(shown[0], from(3), "the most recently seen first");
    for gone in [from(1), from(2), "203.0.113.9".to_string()] {
        assert!(!shown.contains(&gone), "{gone} is not kept");
    }
    let times = page.select(&format!("tr[data-address=\"{}\"] time", from(3))).attrs("datetime");
    let at = |i: usize| times[i].parse::<chrono::DateTime<chrono::Utc>>().unwrap();
    let (first, last) = (at(0), at(1));
    assert!(last - first >= chrono::Duration::minutes(9), "first seen {first}, last seen {last}");
    let uses = page.select(&format!("tr[data-address=\"{}\"] td", from(3))).texts();
    assert_eq!(uses.last().unwrap(), "2");
    let rows: i64 = diesel::sql_query("SELECT count(*) AS n FROM key_usage_addresses")
        .get_result::<Count>(&mut *app.conn())
        .unwrap()
        .n;
    assert_eq!(rows, 10, "the table keeps ten too");
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

#[actix_web::test]
async fn a_key_that_used_fewer_actions_is_suggested_narrowing_with_the_used_ones_preselected() {
    let Acme { app, bob, .. } = acme(SpawnOptions::default()).await;
    let (wide, wide_secret) = both_reads(&app, &bob, "Wide");
    let (exact, exact_secret) = keys::personal(&mut app.conn(), &app.hasher, &bob, "Exact");
    let (idle, _) = both_reads(&app, &bob, "Idle");
    for _ in 0..3 {
        assert_eq!(verify(&app, &wide_secret, Some("positions.read")).await, "VALID");
        assert_eq!(verify(&app, &exact_secret, Some("positions.read")).await, "VALID");
    }
    // A refused action is no use of it.
    assert_eq!(verify(&app, &wide_secret, Some("vehicles.write")).await, "FORBIDDEN_ACTION");
    app.state.verifier.flush_usage().await.unwrap();

    let client = app.signed_in("bob@acme.test").await;
    let exact_page = client.open(&format!("/account/keys/{}", exact.public_id)).await;
    assert!(!exact_page.has("[data-suggestion]"), "it uses all it may do");
    let idle_page = client.open(&format!("/account/keys/{}", idle.public_id)).await;
    assert!(!idle_page.has("[data-suggestion]"), "no use, nothing to narrow to");

    let base = format!("/account/keys/{}", wide.public_id);
    let page = client.open(&base).await;
    let suggestion = page.select("[data-suggestion=narrow]");
    assert!(suggestion.text().contains("vehicles.read"), "names the unused action: {}", suggestion.text());
    let link = page.select("[data-suggestion=narrow] a").attr("href").unwrap();
    assert_eq!(link, format!("{base}/edit?actions=used"));

    let form = client.open(&link).await;
    assert_eq!(form.field("actions_mode").unwrap(), "selected");
    assert_eq!(form.fields("action"), ["positions.read"], "only the used action is ticked");
    assert!(form.select("input[name=action]").len() >= 2, "the others stay offered");
    // Saving it is an ordinary edit.
    let mut fields: Vec<(String, String)> = Vec::new();
    for name in ["comment", "actions_mode", "assets_mode", "allowed_ips", "expires_on", "return_to"] {
        if let Some(value) = form.field(name) {
            fields.push((name.to_string(), value));
        }
    }
    fields.extend(form.fields("action").into_iter().map(|a| ("action".to_string(), a)));
    let pairs: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let response = client.post(&format!("{base}/edit"), &pairs).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let narrowed = ApiKey::actions_of(&mut app.conn(), &[wide.id]).unwrap().remove(&wide.id);
    assert_eq!(narrowed.unwrap(), ["positions.read"]);
    let page = client.open(&base).await;
    assert!(!page.has("[data-suggestion]"), "nothing left to narrow");
    let (status, _) = client.page(&format!("{base}/edit?actions=everything")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[actix_web::test]
async fn the_preselection_never_offers_more_than_the_editor_may_grant() {
    let Acme { app, org, .. } = acme(SpawnOptions::default()).await;
    let manager = fixtures::key_manager(&mut app.conn(), &org, "mia@acme.test", &["positions.read"]);
    let (key, secret) = keys::organization(&mut app.conn(), &app.hasher, &manager, "Everything");
    assert_eq!(verify(&app, &secret, Some("positions.read")).await, "VALID");
    assert_eq!(verify(&app, &secret, Some("vehicles.write")).await, "VALID");
    app.state.verifier.flush_tally().await.unwrap();

    let client = app.signed_in("mia@acme.test").await;
    let base = format!("/admin/keys/{}", key.public_id);
    let page = client.open(&base).await;
    assert!(page.has("[data-suggestion=narrow]"), "an all-actions key that used two actions");
    let form = client.open(&format!("{base}/edit?actions=used")).await;
    assert_eq!(form.fields("action"), ["positions.read"], "vehicles.write is beyond Mia's power");
}

fn sums(app: &TestApp) -> (i64, i64) {
    let sum = |table: &str| {
        diesel::sql_query(format!("SELECT coalesce(sum(count), 0)::bigint AS n FROM {table}"))
            .get_result::<Count>(&mut *app.conn())
            .unwrap()
            .n
    };
    (sum("key_usage_hourly"), sum("key_usage_daily"))
}

#[actix_web::test]
async fn the_retention_job_drops_hours_then_days_past_their_retention() {
    let Acme { app, bob, .. } = acme(SpawnOptions::default()).await;
    let (key, secret) = both_reads(&app, &bob, "Long lived");
    for _ in 0..3 {
        verify(&app, &secret, Some("positions.read")).await;
    }
    app.state.verifier.flush_tally().await.unwrap();
    app.advance(Duration::from_secs(2 * 86_400));
    for _ in 0..2 {
        verify(&app, &secret, Some("positions.read")).await;
    }
    app.state.verifier.flush_tally().await.unwrap();
    let default = Retention::default();
    assert_eq!(usage::prune(&mut app.conn(), app.now(), &default).unwrap(), Pruned::default(), "all within 90 days");
    assert_eq!(sums(&app), (5, 5), "every count per hour and per day");

    // With one day of hourly counts, the first day's hours go and the last day's stay.
    let short = Retention { hourly_days: 1, daily_months: 1 };
    let prune = |app: &TestApp| usage::prune(&mut app.conn(), app.now(), &short).unwrap();
    let pruned = prune(&app);
    assert!(pruned.hourly_deleted >= 1 && pruned.daily_deleted == 0 && pruned.addresses_deleted == 0, "{pruned:?}");
    assert_eq!(sums(&app), (2, 5), "the days keep what the hours drop");
    assert_eq!(prune(&app), Pruned::default(), "a second run finds nothing to do");
    // The 90-day comparison reads the days: it still sees the first use.
    let page = app.signed_in("bob@acme.test").await.open(&format!("/account/keys/{}", key.public_id)).await;
    let cells = page.select(".usage-actions tr[data-action=\"positions.read\"] td").texts();
    assert_eq!(cells[3], "5", "valid in 90 days, from the daily counts");

    // Forty days later (a month of daily counts) nothing is left.
    app.advance(Duration::from_secs(40 * 86_400));
    let pruned = prune(&app);
    assert!(pruned.hourly_deleted >= 1 && pruned.daily_deleted >= 2 && pruned.addresses_deleted == 1, "{pruned:?}");
    assert_eq!(sums(&app), (0, 0));
}

#[actix_web::test]
async fn the_usage_chart_reads_and_switches_periods_with_and_without_javascript() {
    let Acme { app, bob, .. } = acme(SpawnOptions::default()).await;
    let (key, secret) = both_reads(&app, &bob, "Charted");
    for _ in 0..4 {
        assert_eq!(verify(&app, &secret, Some("positions.read")).await, "VALID");
    }
    assert_eq!(verify(&app, &secret, Some("dispatch.create")).await, "FORBIDDEN_ACTION");
    app.state.verifier.flush_tally().await.unwrap();
    let base = format!("/account/keys/{}", key.public_id);

    for javascript in [true, false] {
        let browser = Browser::open(&app, javascript).await;
        browser.sign_in("bob@acme.test").await;
        browser.goto(&base).await;
        for series in ["valid", "refused"] {
            let bar = browser.find(&format!("svg[role=img] rect.{series}")).await;
            assert!(bar.is_displayed().await.unwrap(), "{series} bar shown (JavaScript: {javascript})");
            let (_, _, width, height) = bar.rectangle().await.unwrap();
            assert!(width > 1.0 && height > 1.0, "{series} bar drawn: {width}×{height} (JavaScript: {javascript})");
        }
        // The table alternative opens natively.
        browser.find(".chart-table summary").await.click().await.unwrap();
        assert!(browser.find(".chart-table table").await.is_displayed().await.unwrap());

        browser.find(".period-switch a[href$='period=7d#usage']").await.click().await.unwrap();
        browser.wait_for_text(".period-switch a[aria-current=page]", "7 days").await;
        browser.wait_for_text("[data-usage=total] .stat-number", "5").await;
        let title = browser.find("svg[role=img] title").await.prop("textContent").await.unwrap().unwrap();
        assert_eq!(title, "Verifications of this key, last 7 days");

        // The suggestion opens the edit dialog (a page without JavaScript) with the used action.
        let suggestion = "[data-suggestion=narrow] a[href$='/edit?actions=used']";
        if javascript {
            browser.open_dialog(suggestion).await;
        } else {
            browser.find(suggestion).await.click().await.unwrap();
            browser.wait_for_text("h1", "Edit").await;
            assert!(browser.client.find(Locator::Css("dialog")).await.is_err(), "no dialog without JavaScript");
        }
        let checked = |code: &'static str| {
            let browser = &browser;
            async move {
                let input = browser.find(&format!("input[name=action][value='{code}']")).await;
                input.prop("checked").await.unwrap().as_deref() == Some("true")
            }
        };
        assert!(checked("positions.read").await, "used, so ticked (JavaScript: {javascript})");
        assert!(!checked("vehicles.read").await, "unused, so not ticked (JavaScript: {javascript})");
        browser.close().await;
    }
}

#[actix_web::test]
async fn the_admin_overview_lists_the_busiest_keys_and_the_trend_of_refusals_by_code() {
    let Acme { app, org, bob } = acme(SpawnOptions::default()).await;
    let admin = fixtures::UserBuilder::new(&org, "admin@acme.test").admin().insert(&mut app.conn());
    let (busy, busy_secret) = both_reads(&app, &bob, "Busy");
    let (_, quiet_secret) = both_reads(&app, &bob, "Quiet");
    let mut conn = app.conn();
    let globex = fixtures::organization(&mut conn, "globex");
    let gina = fixtures::reader(&mut conn, &globex, "gina@globex.test");
    drop(conn);
    let (_, elsewhere) = both_reads(&app, &gina, "Elsewhere");
    for _ in 0..3 {
        assert_eq!(verify(&app, &busy_secret, Some("positions.read")).await, "VALID");
    }
    for _ in 0..2 {
        assert_eq!(verify(&app, &busy_secret, Some("dispatch.create")).await, "FORBIDDEN_ACTION");
    }
    assert_eq!(verify(&app, &quiet_secret, None).await, "VALID");
    for _ in 0..9 {
        verify(&app, &elsewhere, Some("dispatch.create")).await;
    }
    app.state.verifier.flush_tally().await.unwrap();
    // Ten days ago the busy key was refused more: this week's refusals are down.
    let ten_days_ago = (app.now() - chrono::Duration::days(10)).date_naive();
    diesel::sql_query(
        "INSERT INTO key_usage_daily (api_key_id, day, code, action, previous_secret, count) \
         VALUES ($1, $2, 'FORBIDDEN_ACTION', 'dispatch.create', false, 5)",
    )
    .bind::<BigInt, _>(busy.id)
    .bind::<diesel::sql_types::Date, _>(ten_days_ago)
    .execute(&mut app.conn())
    .unwrap();

    let client = app.signed_in(&admin.email).await;
    let page = client.open("/admin").await;
    let rows: Vec<String> = page.select("#busiest-keys tbody tr").texts();
    assert_eq!(rows.len(), 2, "{rows:?}: the other organization's key is not listed");
    assert!(rows[0].contains("Busy") && rows[0].contains("10") && rows[0].contains('7'), "{rows:?}");
    assert!(rows[1].contains("Quiet") && rows[1].contains('1') && rows[1].contains('0'), "{rows:?}");
    assert_eq!(page.select("#busiest-keys a").attrs("href")[0], format!("/admin/keys/{}", busy.public_id));
    let trend = page.select("#refusal-trend tr[data-code=\"FORBIDDEN_ACTION\"] td").texts();
    assert_eq!(trend[1..], ["5", "2", "down 3"], "{trend:?}");
    assert_eq!(page.select("#refusal-trend tbody tr").texts().len(), 1, "only this organization's refusals");

    // An auditor, who sees the overview but not the keys, sees neither.
    fixtures::UserBuilder::new(&org, "audrey@acme.test")
        .role(&[keyward::domain::Permission::AuditRead])
        .insert(&mut app.conn());
    let page = app.signed_in("audrey@acme.test").await.open("/admin").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.select("#busiest-keys").texts().is_empty() && page.select("#refusal-trend").texts().is_empty());
}
