//! The audit log nobody can rewrite: the application's role may only read and append, no
//! role may change or remove events in ordinary statements, deletions never touch them, and
//! the operator's purge removes old events as the owner and records itself. And the log as
//! administrators read it: names, relative times with the exact time, escaped details.

use diesel::{PgConnection, prelude::*, sql_types::Timestamptz};
use keyward::{
    db::{
        models::{AuditEvent, Organization},
        schema::{audit_events, organizations, staff_accounts},
    },
    services::{
        Actor,
        audit::{self, Entry},
    },
};

use crate::{
    cli::{SECRET, keyward, scratch_dir, text},
    helpers::{TestApp, TestServer, fixtures, keys, spawn_app},
};

/// Every audit event, oldest first.
fn all_events(conn: &mut PgConnection) -> Vec<AuditEvent> {
    audit_events::table.select(AuditEvent::as_select()).order(audit_events::id).load(conn).unwrap()
}

/// An organization with a user, a key and a role, and their audit trail.
fn organization_with_history(app: &TestApp, slug: &str) -> Organization {
    let mut conn = app.conn();
    let org = fixtures::organization(&mut conn, slug);
    let user = fixtures::UserBuilder::new(&org, &format!("ann@{slug}.test"))
        .api_key_access()
        .may_grant(&["positions.read"])
        .role(&[keyward::domain::Permission::KeysOwn])
        .insert(&mut conn);
    keys::personal(&mut conn, &app.hasher, &user, "Ann's key");
    let actor = Actor::system("test");
    audit::record(&mut conn, &actor, Entry::new(audit::AuditAction::UserCreate).organization(Some(org.id))).unwrap();
    org
}

/// The error of a statement that must fail, as text.
fn refused(conn: &mut PgConnection, sql: &str) -> String {
    match diesel::sql_query(sql).execute(conn) {
        Ok(rows) => panic!("{sql} was allowed ({rows} rows)"),
        Err(e) => e.to_string(),
    }
}

#[actix_web::test]
async fn the_applications_role_can_read_and_append_audit_events_but_never_change_them() {
    let app = spawn_app().await;
    organization_with_history(&app, "acme");
    let mut conn = app.conn();
    let before = all_events(&mut conn);
    assert!(before.len() >= 2, "the fixtures left a trail");

    for sql in [
        "UPDATE audit_events SET actor_label = 'someone else'",
        "DELETE FROM audit_events",
        "TRUNCATE audit_events",
        "ALTER TABLE audit_events DISABLE TRIGGER audit_events_append_only",
        "DROP TRIGGER audit_events_append_only ON audit_events",
        "DROP TABLE audit_events",
        "DELETE FROM __diesel_schema_migrations",
    ] {
        let error = refused(&mut conn, sql);
        assert!(error.contains("permission denied") || error.contains("must be owner"), "{sql}: {error}");
    }
    // The purge's setting is open to every role, and opens nothing to this one.
    let error = refused(
        &mut conn,
        "WITH s AS (SELECT set_config('keyward.audit_purge', '2999-01-01', false)) \
         DELETE FROM audit_events WHERE id IN (SELECT id FROM audit_events, s)",
    );
    assert!(error.contains("permission denied"), "{error}");
    assert_eq!(all_events(&mut conn), before, "nothing changed");
}

#[actix_web::test]
async fn not_even_the_owner_changes_or_removes_audit_events_in_ordinary_statements() {
    let app = spawn_app().await;
    organization_with_history(&app, "acme");
    let mut owner = app.owner_conn();
    let before = all_events(&mut owner);

    for sql in [
        "UPDATE audit_events SET actor_label = 'someone else'",
        "DELETE FROM audit_events",
        "TRUNCATE audit_events",
        // The purge's setting alone is not enough: only older events, and only by the owner.
        "BEGIN; SET LOCAL keyward.audit_purge = '1999-01-01'; DELETE FROM audit_events; COMMIT",
    ] {
        let result = diesel::connection::SimpleConnection::batch_execute(&mut owner, sql);
        let error = result.expect_err(sql).to_string();
        assert!(error.contains("audit events cannot be changed or removed"), "{sql}: {error}");
        let _ = diesel::connection::SimpleConnection::batch_execute(&mut owner, "ROLLBACK");
    }
    assert_eq!(all_events(&mut owner), before, "nothing changed");
}

#[actix_web::test]
async fn deleting_organizations_users_keys_and_staff_never_changes_audit_events() {
    let app = spawn_app().await;
    let acme = organization_with_history(&app, "acme");
    organization_with_history(&app, "globex");
    let staff = fixtures::staff(&mut app.conn(), "sam@keyward.test");
    let before = all_events(&mut app.conn());

    // What the application deletes itself, as its role...
    let key = keyward::db::schema::api_keys::table
        .select(keyward::db::models::ApiKey::as_select())
        .first(&mut *app.conn())
        .unwrap();
    keyward::db::models::ApiKey::delete(&mut app.conn(), key.id).unwrap();
    // ...and what only the owner could: every cascade from an organization (users, keys,
    // roles, assets, sessions) and a staff account.
    let mut owner = app.owner_conn();
    diesel::delete(organizations::table.find(acme.id)).execute(&mut owner).unwrap();
    diesel::delete(staff_accounts::table.find(staff.id)).execute(&mut owner).unwrap();

    assert_eq!(all_events(&mut owner), before, "every event is still there, unchanged");
}

/// Inserts an event of `organization` that occurred at `at` (as the application's role).
fn event_at(app: &TestApp, organization: Option<i64>, at: &str) {
    diesel::sql_query(
        "INSERT INTO audit_events (organization_id, actor_type, action, result, occurred_at) \
         VALUES ($1, 'system', 'key.create', 'success', $2)",
    )
    .bind::<diesel::sql_types::Nullable<diesel::sql_types::BigInt>, _>(organization)
    .bind::<Timestamptz, _>(chrono::DateTime::parse_from_rfc3339(at).unwrap().to_utc())
    .execute(&mut *app.conn())
    .unwrap();
}

#[actix_web::test]
async fn purge_audit_removes_old_events_as_the_owner_and_records_itself_in_each_organization() {
    let app = spawn_app().await;
    let acme = fixtures::organization(&mut app.conn(), "acme");
    let globex = fixtures::organization(&mut app.conn(), "globex");
    for at in ["2020-01-01T00:00:00Z", "2020-06-30T23:59:59Z", "2021-01-01T00:00:00Z"] {
        event_at(&app, Some(acme.id), at);
    }
    event_at(&app, Some(globex.id), "2020-03-01T00:00:00Z");
    event_at(&app, None, "2019-03-01T00:00:00Z");
    let total = all_events(&mut app.conn()).len();
    let server = TestServer::get();
    let dir = scratch_dir("purge");
    let purge = |database_url: String, migrate_url: Option<String>| {
        let mut command = keyward(&dir);
        command.env("DATABASE_URL", database_url).env("KEYWARD_SECRET", SECRET);
        if let Some(url) = migrate_url {
            command.env("KEYWARD_MIGRATE_URL", url);
        }
        command.args(["purge-audit", "--before", "2021-01-01"]).output().unwrap()
    };

    // The application's role may not purge, whatever it tries.
    let output = purge(server.app_url(&app.database), None);
    assert_eq!(output.status.code(), Some(1));
    assert!(text(&output).1.contains("only the owner of the tables may purge"), "{:?}", text(&output));
    assert_eq!(all_events(&mut app.conn()).len(), total, "nothing removed");

    // The owner, named by KEYWARD_MIGRATE_URL beside the application's DATABASE_URL, may.
    let output = purge(server.app_url(&app.database), Some(server.url(&app.database)));
    assert!(output.status.success(), "{:?}", text(&output));
    assert!(text(&output).0.contains("Removed 4 audit event(s)"), "{:?}", text(&output));

    let events = all_events(&mut app.conn());
    let cutoff = chrono::DateTime::parse_from_rfc3339("2021-01-01T00:00:00Z").unwrap().to_utc();
    assert!(events.iter().all(|e| e.occurred_at >= cutoff), "every older event is gone");
    let purges: Vec<&AuditEvent> = events.iter().filter(|e| e.action == "audit.purge").collect();
    let of = |org: Option<i64>| purges.iter().find(|e| e.organization_id == org).expect("a purge record");
    assert_eq!(purges.len(), 3, "one per organization that lost events, and one platform-wide");
    assert_eq!(of(Some(acme.id)).details["deleted"], 2);
    assert_eq!(of(Some(globex.id)).details["deleted"], 1);
    let platform = of(None);
    assert_eq!(platform.details["deleted"], 4);
    assert_eq!(platform.details["before"], "2021-01-01T00:00:00+00:00");
    assert_eq!((platform.actor_type.as_str(), platform.actor_label.as_str()), ("system", "keyward purge-audit"));
    assert!(events.iter().any(|e| e.organization_id == Some(acme.id) && e.action == "key.create"), "newer kept");

    // A cutoff in the future is refused, and the protection is back after the purge.
    let mut command = keyward(&dir);
    command.env("DATABASE_URL", server.url(&app.database)).env("KEYWARD_SECRET", SECRET);
    let output = command.args(["purge-audit", "--before", "2999-01-01"]).output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(text(&output).1.contains("in the future"), "{:?}", text(&output));
    let error = refused(&mut app.owner_conn(), "DELETE FROM audit_events");
    assert!(error.contains("audit events cannot be changed or removed"), "{error}");
}

#[actix_web::test]
async fn grant_app_role_gives_an_operators_role_what_the_application_needs_and_no_more() {
    let app = spawn_app().await;
    let server = TestServer::get();
    let mut owner = app.owner_conn();
    keyward::db::privileges::ensure_login_role(&mut owner, "keyward_ops_test").unwrap();
    let dir = scratch_dir("grant");
    let grant = |role: &str| {
        keyward(&dir)
            .env("DATABASE_URL", server.url(&app.database))
            .env("KEYWARD_SECRET", SECRET)
            .args(["grant-app-role", "--role", role])
            .output()
            .unwrap()
    };
    // The owner of the tables may never be the application's role.
    let current: String = diesel::select(diesel::dsl::sql::<diesel::sql_types::Text>("current_user::text"))
        .get_result(&mut owner)
        .unwrap();
    let output = grant(&current);
    assert_eq!(output.status.code(), Some(1));
    assert!(text(&output).1.contains("does not own the tables"), "{:?}", text(&output));

    let output = grant("keyward_ops_test");
    assert!(output.status.success(), "{:?}", text(&output));
    diesel::connection::SimpleConnection::batch_execute(&mut owner, "SET ROLE keyward_ops_test").unwrap();
    let org = fixtures::organization(&mut owner, "acme");
    audit::record(
        &mut owner,
        &Actor::system("test"),
        Entry::new(audit::AuditAction::UserCreate).organization(Some(org.id)),
    )
    .unwrap();
    let error = refused(&mut owner, "UPDATE audit_events SET actor_label = 'x'");
    assert!(error.contains("permission denied"), "{error}");
    let error = refused(&mut owner, "CREATE TABLE intruder (id int)");
    assert!(error.contains("permission denied"), "{error}");
}

/// Inserts an event of `organization` by the user `actor` (or by the system), `hours_ago`,
/// with `details`.
fn event_by(
    app: &TestApp,
    organization: i64,
    actor: Option<&keyward::db::models::User>,
    hours_ago: i64,
    details: serde_json::Value,
) {
    use diesel::sql_types::{BigInt, Jsonb, Nullable, Text};
    diesel::sql_query(
        "INSERT INTO audit_events (organization_id, actor_type, actor_id, actor_label, action, target_type, \
         target_id, target_label, result, occurred_at, details) \
         VALUES ($1, $2, $3, $4, 'key.update', 'api_key', 'Abc12345', 'Dispatch', 'success', $5, $6)",
    )
    .bind::<BigInt, _>(organization)
    .bind::<Text, _>(if actor.is_some() { "user" } else { "system" })
    .bind::<Nullable<BigInt>, _>(actor.map(|u| u.id))
    .bind::<Text, _>(actor.map_or("keyward test".to_string(), |u| u.email.clone()))
    .bind::<Timestamptz, _>(chrono::Utc::now() - chrono::Duration::hours(hours_ago))
    .bind::<Jsonb, _>(details)
    .execute(&mut *app.conn())
    .unwrap();
}

#[actix_web::test]
async fn the_audit_log_shows_names_relative_times_and_details_as_escaped_key_value_pairs() {
    let app = spawn_app().await;
    let mut conn = app.conn();
    let acme = fixtures::organization(&mut conn, "acme");
    let admin = fixtures::admin(&mut conn, &acme, "admin@acme.test");
    let globex = fixtures::organization(&mut conn, "globex");
    let stranger = fixtures::admin(&mut conn, &globex, "eve@globex.test");
    drop(conn);
    let hostile = "<script>alert(1)</script>";
    let long = format!("{} {}", "<img src=x onerror=alert(2)>", "x".repeat(120));
    event_by(
        &app,
        acme.id,
        Some(&admin),
        3,
        serde_json::json!({
            "reason": hostile,
            "actions": ["positions.read", "<b>bold</b>"],
            "note": long,
            "scope": {"all_assets": false, "cidrs": ["10.0.0.0/8"]},
            "attributed_to_user_id": 7,
        }),
    );
    // An event naming a user of another organization as its actor never shows that user's name.
    event_by(&app, acme.id, Some(&stranger), 5, serde_json::json!({}));

    let client = app.signed_in("admin@acme.test").await;
    let page = client.open("/admin/audit?action=key.update").await;
    assert_eq!(page.status, reqwest::StatusCode::OK, "{page}");
    let rows = page.select("table.audit tbody tr");
    assert_eq!(rows.len(), 2, "{page}");

    // When: relative, with the exact UTC time in the title and the machine time beside it.
    let when = page.select("table.audit tbody tr:first-child td.audit-when time");
    assert_eq!(when.text(), "3 hours ago");
    let iso = when.attr("datetime").unwrap();
    let at = chrono::DateTime::parse_from_rfc3339(&iso).unwrap().to_utc();
    assert_eq!(when.attr("title").unwrap(), at.format("%Y-%m-%d %H:%M UTC").to_string());
    assert!((chrono::Utc::now() - at - chrono::Duration::hours(3)).num_minutes().abs() <= 1, "{iso}");

    // Who: the name, the email beside it; a stranger's name is not looked up.
    let who = page.select("table.audit tbody tr:first-child td.audit-who");
    assert_eq!(page.select("table.audit tbody tr:first-child .actor-name").text(), "admin");
    assert_eq!(page.select("table.audit tbody tr:first-child .actor-label").text(), "admin@acme.test");
    assert_eq!(who.text(), "admin admin@acme.test");
    assert_eq!(page.select("table.audit tbody tr:nth-child(2) td.audit-who").text(), "eve@globex.test");

    // Details: readable pairs, the first two at once, the rest one click away; long values
    // folded; everything escaped.
    let details = "table.audit tbody tr:first-child td.audit-details";
    let keys = page.select(&format!("{details} dt")).texts();
    assert_eq!(keys, ["actions", "attributed to user id", "note", "reason", "scope"], "{page}");
    let values = page.select(&format!("{details} dd")).texts();
    assert_eq!(values[0], "positions.read, <b>bold</b>");
    assert_eq!(values[1], "7");
    assert_eq!(page.select(&format!("{details} dd details .kv-full")).text(), long);
    assert!(page.select(&format!("{details} dd details summary")).text().len() < long.len());
    assert_eq!(values[3], hostile);
    assert_eq!(values[4], r#"{"all_assets":false,"cidrs":["10.0.0.0/8"]}"#);
    assert_eq!(page.select(&format!("{details} details.kv-more > summary")).text(), "3 more");
    assert!(!page.body.contains(hostile) && !page.body.contains("<img src=x") && !page.body.contains("<b>bold"));
    assert!(page.body.contains("&#60;script&#62;alert(1)"), "escaped, not dropped: {page}");
    // An event without details has none to show.
    assert!(page.select("table.audit tbody tr:nth-child(2) td.audit-details dl").is_empty());

    // The filters stay one form with its actions, and the CSV keeps the raw JSON.
    assert!(page.has("form.audit-filters .filter-actions button[type=submit]"));
    let csv = client.get("/admin/audit.csv?action=key.update").await.text().await.unwrap();
    assert!(csv.contains("attributed_to_user_id") && csv.contains("admin@acme.test"), "{csv}");
}

#[actix_web::test]
async fn in_the_browser_the_audit_filters_sit_on_one_line_with_their_actions() {
    let app = spawn_app().await;
    let acme = fixtures::organization(&mut app.conn(), "acme");
    fixtures::admin(&mut app.conn(), &acme, "admin@acme.test");
    let browser = crate::browser::Browser::open(&app, true).await;
    browser.sign_in("admin@acme.test").await;
    // Filtered, so "Clear filters" is there too.
    browser.goto("/admin/audit?actor=admin").await;
    let bottoms = browser
        .js("return Array.from(document.querySelectorAll('.audit-filters > *'))
               .map(e => Math.round(e.getBoundingClientRect().bottom))")
        .await;
    let bottoms: Vec<i64> = serde_json::from_value(bottoms).unwrap();
    assert_eq!(bottoms.len(), 8, "six fields, the datalist and the actions: {bottoms:?}");
    let shown: Vec<i64> = bottoms.into_iter().filter(|b| *b > 0).collect();
    assert!(shown.windows(2).all(|w| (w[0] - w[1]).abs() <= 2), "one line at 1280 px: {shown:?}");
    let clear = browser.js("return document.querySelector('.filter-actions a').getBoundingClientRect().right").await;
    let width = browser.js("return document.documentElement.clientWidth").await;
    assert!(clear.as_f64().unwrap() <= width.as_f64().unwrap(), "Clear filters within the page");
    // Side by side, none drawn over its neighbour: each control ends before the next field begins.
    let overlaps = browser
        .js("const fields = Array.from(document.querySelectorAll('.audit-filters > .field'));
             return fields.slice(1).flatMap((f, i) => {
               const control = fields[i].querySelector('input, select').getBoundingClientRect();
               return control.right > f.getBoundingClientRect().left + 1 ? [fields[i].textContent.trim()] : [];
             })")
        .await;
    assert_eq!(overlaps, serde_json::json!([]), "controls overlapping the next field");
    browser.close().await;
}
