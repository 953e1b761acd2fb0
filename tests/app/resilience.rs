//! Database faults: an outage (the test cluster stopped and started again), a lost listener
//! connection (its backend terminated) and a stuck database (a table lock held): pages answer
//! the 503 page, verification fails closed, `/healthz` and static files keep answering, and
//! everything recovers by itself; the management API answers 503 problems meanwhile.

use std::time::Duration;

use diesel::{Connection, PgConnection, RunQueryDsl, connection::SimpleConnection};
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{
    PrivateCluster, SpawnOptions, TestApp, TestServer, fixtures, http_client, keys, spawn_app, spawn_app_with,
    verify_code, within,
};
use crate::management_api::{ALL, call, token};

/// A user with a personal key, signed in; returns the key's secret.
async fn bob_with_a_key(app: &TestApp) -> (crate::helpers::TestClient, String) {
    let mut conn = app.conn();
    let org = fixtures::organization(&mut conn, "acme");
    let bob = fixtures::key_owner(&mut conn, &org, "bob@acme.test");
    let (_, secret) = keys::personal(&mut conn, &app.hasher, &bob, "Resilient");
    drop(conn);
    (app.signed_in("bob@acme.test").await, secret)
}

#[actix_web::test]
async fn pages_answer_503_during_an_outage_and_recover_without_a_restart() {
    let cluster = PrivateCluster::start("pages-outage");
    let app = cluster.spawn_app().await;
    let (bob, _) = bob_with_a_key(&app).await;
    assert_eq!(bob.get("/account/keys").await.status(), StatusCode::OK);

    cluster.stop();
    for (client, path) in [(&bob, "/account/keys"), (&bob, "/account"), (&app.client(), "/login")] {
        let page = client.open(path).await;
        assert_eq!(page.status, StatusCode::SERVICE_UNAVAILABLE, "{path}");
        assert!(page.has("html body") && page.says("Temporarily unavailable"), "the 503 page for {path}: {page}");
    }
    let client = http_client();
    assert_eq!(client.get(app.url("/healthz")).send().await.unwrap().status(), StatusCode::OK);
    assert_eq!(
        client.get(app.url(keyward::routes::static_files::css_url())).send().await.unwrap().status(),
        StatusCode::OK
    );
    assert_eq!(client.get(app.url("/readyz")).send().await.unwrap().status(), StatusCode::SERVICE_UNAVAILABLE);

    cluster.start_again();
    let recovered =
        within(Duration::from_secs(15), async || bob.get("/account/keys").await.status() == StatusCode::OK).await;
    assert!(recovered, "the same session works again once the database is back");
}

#[actix_web::test]
async fn the_management_api_answers_503_problems_during_an_outage_and_recovers_without_a_restart() {
    let cluster = PrivateCluster::start("api-outage");
    let app = cluster.spawn_app().await;
    let (_, admin) = fixtures::organization_with_admin(&mut app.conn(), "acme");
    let (cached, uncached) = (token(&app, &admin, ALL), token(&app, &admin, ALL));
    // Used once, so this instance has the first token in its cache.
    assert_eq!(call(&app, Method::GET, "/api/v1/keys", &cached, None, &[]).await.0, StatusCode::OK);

    cluster.stop();
    let create = json!({ "name": "During the outage", "actions": ["positions.read"] });
    for (token, method, body) in
        [(&cached, Method::GET, None), (&cached, Method::POST, Some(create.clone())), (&uncached, Method::GET, None)]
    {
        let (status, headers, problem) = call(&app, method.clone(), "/api/v1/keys", token, body, &[]).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{method}: {problem}");
        assert_eq!(headers["content-type"], "application/problem+json", "{method}");
        assert_eq!(problem["status"], json!(503), "{method}");
    }

    cluster.start_again();
    let recovered = within(Duration::from_secs(15), async || {
        call(&app, Method::GET, "/api/v1/keys", &uncached, None, &[]).await.0 == StatusCode::OK
    })
    .await;
    assert!(recovered, "the API answers again once the database is back");
    let (status, _, key) = call(&app, Method::POST, "/api/v1/keys", &cached, Some(create), &[]).await;
    assert_eq!(status, StatusCode::CREATED, "{key}");
    assert_eq!(verify_code(&app, key["secret"].as_str().unwrap(), Some("positions.read")).await, "VALID");
}

#[actix_web::test]
async fn a_lost_listener_reconnects_and_resynchronizes_the_cache() {
    let app = spawn_app().await;
    let (_, secret) = bob_with_a_key(&app).await;
    let url = TestServer::get().url(&app.database);
    // Verified twice: the second answer comes from the cache.
    assert_eq!(verify_code(&app, &secret, Some("positions.read")).await, "VALID");
    assert_eq!(verify_code(&app, &secret, Some("positions.read")).await, "VALID");

    // A change whose notification is lost (the trigger is off for it): the cache cannot
    // know, and keeps its answer...
    let mut conn = PgConnection::establish(&url).unwrap();
    conn.batch_execute(
        "BEGIN; ALTER TABLE api_keys DISABLE TRIGGER api_keys_notify_update; \
         UPDATE api_keys SET active = false; \
         ALTER TABLE api_keys ENABLE TRIGGER api_keys_notify_update; COMMIT;",
    )
    .unwrap();
    actix_web::rt::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(verify_code(&app, &secret, Some("positions.read")).await, "VALID", "still the cached answer");

    // ...until the listener's connection is lost: on reconnecting it resynchronizes.
    let terminated: Vec<Terminated> = diesel::sql_query(
        "SELECT pg_terminate_backend(pid) AS done FROM pg_stat_activity \
         WHERE application_name = 'keyward-listener' AND datname = current_database()",
    )
    .load(&mut conn)
    .unwrap();
    assert_eq!(terminated.len(), 1, "the listener had one connection");
    let disabled =
        within(Duration::from_secs(5), async || verify_code(&app, &secret, Some("positions.read")).await == "DISABLED")
            .await;
    assert!(disabled, "the missed change is seen after the reconnect");
    // Listening again: the connection shows in pg_stat_activity a moment after the cache was
    // dropped (answers come from the database meanwhile), so wait for it on a busy machine.
    let reconnected = within(Duration::from_secs(10), async || {
        let listeners: Vec<Terminated> = diesel::sql_query(
            "SELECT true AS done FROM pg_stat_activity \
             WHERE application_name = 'keyward-listener' AND datname = current_database()",
        )
        .load(&mut conn)
        .unwrap();
        listeners.len() == 1
    })
    .await;
    assert!(reconnected, "listening again");
}

#[derive(diesel::QueryableByName)]
struct Terminated {
    #[diesel(sql_type = diesel::sql_types::Bool)]
    #[expect(dead_code, reason = "only the number of rows matters")]
    done: bool,
}

#[actix_web::test]
async fn a_stuck_database_turns_into_503s_while_health_and_static_files_answer() {
    let app = spawn_app_with(SpawnOptions {
        statement_timeout: Duration::from_millis(1500),
        checkout_timeout: Duration::from_millis(1500),
        ..SpawnOptions::default()
    })
    .await;
    let (bob, _) = bob_with_a_key(&app).await;
    let uncached = {
        let bob_user = crate::helpers::user(&app, "bob@acme.test");
        keys::personal(&mut app.conn(), &app.hasher, &bob_user, "Never verified").1
    };
    let url = TestServer::get().url(&app.database);

    // Another session holds an exclusive lock on the keys table.
    let mut holder = PgConnection::establish(&url).unwrap();
    holder.batch_execute("BEGIN; LOCK TABLE api_keys IN ACCESS EXCLUSIVE MODE").unwrap();

    // Ten pages and verifications at once: more than the pool holds.
    let mut requests = Vec::new();
    for i in 0..10 {
        let (client, app_url, secret) = (bob.http.clone(), app.url(""), uncached.clone());
        let cookie = bob.cookie().unwrap();
        requests.push(actix_web::rt::spawn(async move {
            if i % 2 == 0 {
                client.get(format!("{app_url}/account/keys")).header("cookie", cookie).send().await.unwrap().status()
            } else {
                client
                    .post(format!("{app_url}/api/v1/verify"))
                    .bearer_auth(secret)
                    .json(&json!({}))
                    .send()
                    .await
                    .unwrap()
                    .status()
            }
        }));
    }
    // Meanwhile (the lock is held until the end) liveness and static files answer. How
    // fast is for the benchmarks (`benches/recovery.rs`).
    let client = http_client();
    assert_eq!(client.get(app.url("/healthz")).send().await.unwrap().status(), StatusCode::OK);
    assert_eq!(
        client.get(app.url(keyward::routes::static_files::js_url())).send().await.unwrap().status(),
        StatusCode::OK
    );
    // The waits are bounded: every request gets its 503 while the lock is still held.
    for request in requests {
        let status = actix_web::rt::time::timeout(Duration::from_secs(60), request).await;
        assert_eq!(status.expect("an answer while the lock is held").unwrap(), StatusCode::SERVICE_UNAVAILABLE);
    }

    holder.batch_execute("COMMIT").unwrap();
    assert_eq!(bob.get("/account/keys").await.status(), StatusCode::OK);
    assert_eq!(verify_code(&app, &uncached, Some("positions.read")).await, "VALID");
}

#[actix_web::test]
async fn a_change_whose_audit_event_fails_is_not_made_and_no_secret_is_shown() {
    let app = spawn_app().await;
    let (bob, _) = bob_with_a_key(&app).await;
    let key = {
        use diesel::prelude::*;
        keyward::db::schema::api_keys::table
            .select(keyward::db::models::ApiKey::as_select())
            .first(&mut *app.conn())
            .unwrap()
    };
    let mut conn = PgConnection::establish(&TestServer::get().url(&app.database)).unwrap();
    conn.batch_execute(
        "CREATE FUNCTION refuse_audit() RETURNS trigger LANGUAGE plpgsql AS \
         $$ BEGIN RAISE EXCEPTION 'audit refused by the test'; END $$; \
         CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_events FOR EACH ROW \
         WHEN (NEW.action IN ('key.create', 'key.rename', 'key.rekey')) EXECUTE FUNCTION refuse_audit();",
    )
    .unwrap();
    let base = format!("/account/keys/{}", key.public_id);

    bob.page(&format!("{base}/rename")).await;
    let response = bob.post(&format!("{base}/rename"), &[("name", "Never renamed")]).await;
    assert!(response.status().is_server_error());
    let (_, form) = bob.page(&format!("{base}/rekey")).await;
    let response = bob
        .post(&format!("{base}/rekey"), &[("grace_minutes", "0"), ("form_token", &crate::keys::form_token(&form))])
        .await;
    assert!(response.status().is_server_error());
    assert!(!response.text().await.unwrap().contains("kw_live_"), "no secret without its key");
    let expires = (chrono::Utc::now() + chrono::Duration::days(30)).date_naive().to_string();
    let (status, body, _) = crate::keys::submit_new(
        &bob,
        "/account/keys",
        &[
            ("name", "Never created"),
            ("actions_mode", "selected"),
            ("action", "positions.read"),
            ("expires_on", &expires),
        ],
    )
    .await;
    assert!(status.is_server_error());
    assert!(!body.contains("kw_live_"), "no secret without its key");

    let now = keys::reload(&mut app.conn(), &key).unwrap();
    assert_eq!((now.name.as_str(), &now.secret_hash), ("Resilient", &key.secret_hash), "nothing changed");
    let count: i64 = {
        use diesel::prelude::*;
        keyward::db::schema::api_keys::table.count().get_result(&mut *app.conn()).unwrap()
    };
    assert_eq!(count, 1, "no key without its audit event");

    conn.batch_execute("DROP TRIGGER refuse_audit ON audit_events").unwrap();
    bob.page(&format!("{base}/rename")).await;
    let response = bob.post(&format!("{base}/rename"), &[("name", "Renamed at last")]).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(crate::helpers::audit_count(&app, "key.rename"), 1);
}

/// Outcomes of the load loops of the pool-recovery test.
#[derive(Default)]
struct LoadTally {
    /// Requests answered while the loops ran, and those that failed after the kill.
    done: usize,
    failed_after_kill: usize,
    /// Per loop: successes in a row since the kill (reset by a failure).
    in_a_row_after_kill: Vec<usize>,
}

#[actix_web::test]
async fn killed_pool_connections_cost_only_the_requests_using_them_under_load() {
    use std::sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    };
    const LOOPS: usize = 8;
    let app = spawn_app().await;
    let mut conn = app.conn();
    let org = fixtures::organization(&mut conn, "acme");
    let bob = fixtures::key_owner(&mut conn, &org, "bob@acme.test");
    let keys: Vec<_> =
        (0..LOOPS).map(|i| keys::personal(&mut conn, &app.hasher, &bob, &format!("Loop {i}")).0).collect();
    drop(conn);

    let killed = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let tally = Arc::new(Mutex::new(LoadTally { in_a_row_after_kill: vec![0; LOOPS], ..LoadTally::default() }));
    let mut loops = Vec::new();
    for (i, key) in keys.into_iter().enumerate() {
        let client = app.signed_in("bob@acme.test").await;
        // The form's CSRF token, for the changes to come.
        assert_eq!(client.page(&format!("/account/keys/{}/rename", key.public_id)).await.0, StatusCode::OK);
        let (killed, stop, tally) = (Arc::clone(&killed), Arc::clone(&stop), Arc::clone(&tally));
        loops.push(actix_web::rt::spawn(async move {
            let base = format!("/account/keys/{}", key.public_id);
            let mut round = 0usize;
            while !stop.load(Ordering::SeqCst) {
                // Mostly page loads, and key changes (transactions), all through the pool.
                let (ok, status) = if round % 4 != 3 {
                    let status = client.page(&format!("{base}/rename")).await.0;
                    (status == StatusCode::OK, status)
                } else {
                    let name = format!("Loop {i} round {round}");
                    let status = client.post(&format!("{base}/rename"), &[("name", &name)]).await.status();
                    (status == StatusCode::SEE_OTHER, status)
                };
                round += 1;
                // Think time, as from browsers: connections also sit idle when they are cut.
                actix_web::rt::time::sleep(Duration::from_millis(30)).await;
                // A request in flight when the connections are cut may fail: it counts as after.
                let after_kill = killed.load(Ordering::SeqCst);
                let mut tally = tally.lock().unwrap();
                tally.done += 1;
                if after_kill {
                    if ok {
                        tally.in_a_row_after_kill[i] += 1;
                    } else {
                        tally.failed_after_kill += 1;
                        tally.in_a_row_after_kill[i] = 0;
                    }
                } else {
                    assert!(ok, "loop {i} failed before the kill: {status}");
                }
            }
        }));
    }
    let warmed = within(Duration::from_secs(30), async || tally.lock().unwrap().done >= 4 * LOOPS).await;
    assert!(warmed, "the loops run");

    // Every pooled connection of the application is cut, in use or idle.
    let mut side = PgConnection::establish(&TestServer::get().url(&app.database)).unwrap();
    killed.store(true, Ordering::SeqCst);
    let terminated: Vec<Terminated> = diesel::sql_query(
        "SELECT pg_terminate_backend(pid) AS done FROM pg_stat_activity \
         WHERE datname = current_database() AND application_name = 'keyward'",
    )
    .load(&mut side)
    .unwrap();
    assert!(!terminated.is_empty(), "the pool had connections to cut");

    // Back to normal: every loop succeeds several times in a row (generous deadline; the
    // recovery time itself is measured by the `recovery` benchmark).
    let recovered = within(Duration::from_secs(10), async || {
        tally.lock().unwrap().in_a_row_after_kill.iter().all(|&in_a_row| in_a_row >= 5)
    })
    .await;
    stop.store(true, Ordering::SeqCst);
    for running in loops {
        running.await.unwrap();
    }
    let (in_a_row, failed) = {
        let tally = tally.lock().unwrap();
        (tally.in_a_row_after_kill.clone(), tally.failed_after_kill)
    };
    assert!(recovered, "every loop recovered: {in_a_row:?} in a row");
    // A cut connection costs the request using it (or one picking it up idle before the
    // first failure is seen): at most one request per loop in flight, never a stream of 503s.
    assert!(failed <= LOOPS, "{failed} requests failed after the kill");

    let client = app.signed_in("bob@acme.test").await;
    for _ in 0..20 {
        assert_eq!(client.get("/account/keys").await.status(), StatusCode::OK);
    }
}

#[actix_web::test]
async fn idle_pool_connections_cut_together_cost_at_most_one_request() {
    let app = spawn_app().await;
    let (bob, _) = bob_with_a_key(&app).await;
    // The pool holds four idle connections.
    let held: Vec<_> = (0..4).map(|_| app.conn()).collect();
    drop(held);
    assert_eq!(app.db.idle_connections(), 4);

    let mut side = PgConnection::establish(&TestServer::get().url(&app.database)).unwrap();
    let terminated: Vec<Terminated> = diesel::sql_query(
        "SELECT pg_terminate_backend(pid) AS done FROM pg_stat_activity \
         WHERE datname = current_database() AND application_name = 'keyward'",
    )
    .load(&mut side)
    .unwrap();
    assert_eq!(terminated.len(), 4);

    // The first request to meet a cut connection may fail; it has the others checked
    // before use, so every later one succeeds.
    let mut statuses = Vec::new();
    for _ in 0..10 {
        statuses.push(bob.get("/account/keys").await.status());
    }
    let failed = statuses.iter().filter(|s| **s != StatusCode::OK).count();
    assert!(failed <= 1, "{statuses:?}");
    assert!(statuses[1..].iter().all(|s| *s == StatusCode::OK), "{statuses:?}");
}

#[actix_web::test]
async fn a_committed_change_is_answered_as_committed_when_its_session_cannot_be_saved() {
    use diesel::prelude::*;
    use keyward::db::schema::{sessions, users};
    let app =
        spawn_app_with(SpawnOptions { statement_timeout: Duration::from_secs(1), ..SpawnOptions::default() }).await;
    let mut conn = app.conn();
    let org = fixtures::organization(&mut conn, "acme");
    let admin_user = fixtures::UserBuilder::new(&org, "admin@acme.test").admin().insert(&mut conn);
    let bob = fixtures::UserBuilder::new(&org, "bob@acme.test").insert(&mut conn);
    drop(conn);
    let admin = app.signed_in("admin@acme.test").await;
    admin.page("/admin/users").await;

    // Another session holds the administrator's session row: reading it works, writing it
    // back runs into the statement timeout.
    let mut holder = PgConnection::establish(&TestServer::get().url(&app.database)).unwrap();
    holder.batch_execute("BEGIN").unwrap();
    let held: Vec<String> = sessions::table
        .filter(sessions::user_id.eq(admin_user.id))
        .select(sessions::id)
        .for_update()
        .load(&mut holder)
        .unwrap();
    assert_eq!(held.len(), 1);

    let response = admin.post(&format!("/admin/users/{}/deactivate", bob.id), &[]).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER, "answered as committed");
    holder.batch_execute("COMMIT").unwrap();
    let active: bool = users::table.find(bob.id).select(users::active).first(&mut *app.conn()).unwrap();
    assert!(!active, "the deactivation committed");
    assert_eq!(crate::helpers::audit_count(&app, "user.deactivate"), 1, "with its audit event");
    assert_eq!(admin.get("/admin/users").await.status(), StatusCode::OK, "still signed in");
}
