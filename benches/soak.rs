//! The soak and fault run: a mixed load (verifications, list pages, renames, key creation)
//! for a bounded time, through a database restart in the middle, then an account of every
//! change the application acknowledged.
//!
//! Run with `cargo bench --bench soak` (release build). It starts a private PostgreSQL
//! cluster in `target/`, seeds the demo data, starts the application and drives it with
//! `SOAK_WORKERS` (8) concurrent browser sessions and API clients for `SOAK_SECONDS` (30).
//! At a third of the run the cluster is stopped at once (every connection cut) for
//! `SOAK_OUTAGE_SECONDS` (3), then started again. Afterwards it checks that
//!
//! - every acknowledged rename and key creation is in the database with exactly one audit
//!   event, and
//! - no request got a 5xx outside the outage window (the outage itself plus
//!   `SOAK_RECOVERY_SECONDS` (5) for the application to notice the database is back),
//!
//! prints the counts and exits non-zero if either fails.

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use diesel::{ExpressionMethods, QueryDsl, RunQueryDsl};
use keyward::{
    db::schema::{api_keys, audit_events},
    keys::ParsedKey,
};

mod common;
use common::{
    app::{DemoCluster, Setup, application, keys_with_secrets, serve},
    http::{Session, csrf_token, percentile, server_timing},
};

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// What one request was and how it ended, at what time since the start.
#[derive(Debug, Clone)]
struct Outcome {
    at: Duration,
    kind: &'static str,
    status: u16,
    server_ms: f64,
}

/// Changes the application acknowledged (a redirect after a rename, a shown secret).
#[derive(Debug, Default)]
struct Acknowledged {
    renames: Vec<String>,
    created: Vec<String>,
}

struct Shared {
    started: Instant,
    outcomes: Mutex<Vec<Outcome>>,
    acknowledged: Mutex<Acknowledged>,
}

impl Shared {
    fn record(&self, kind: &'static str, response: &reqwest::Response) {
        let outcome = Outcome {
            at: self.started.elapsed(),
            kind,
            status: response.status().as_u16(),
            server_ms: server_timing(response).0,
        };
        self.outcomes.lock().unwrap().push(outcome);
    }
}

/// One worker: a signed-in administrator doing a mix of everything until `until`.
async fn worker(id: usize, base: String, keys: Arc<Vec<(String, String)>>, shared: Arc<Shared>, until: Instant) {
    let (session, _) = Session::sign_in(&base, "alice@acme.example").await;
    let api = reqwest::Client::new();
    let mut n = 0usize;
    while Instant::now() < until {
        n += 1;
        let (public_id, secret) = &keys[(id * 7919 + n) % keys.len()];
        match n % 10 {
            0..4 => {
                let response = common::http::verify(&api, &base, secret).await;
                shared.record("verify", &response);
            }
            4..6 => {
                let response = session.get("/account/keys?q=soak").await;
                shared.record("list", &response);
            }
            6..9 => {
                let page = session.get(&format!("/account/keys/{public_id}/rename")).await;
                shared.record("rename form", &page);
                if page.status() != 200 {
                    continue;
                }
                let token = csrf_token(&page.text().await.unwrap());
                let name = format!("soak {id}-{n}");
                let response = session
                    .post(&format!("/account/keys/{public_id}/rename"), &[("csrf_token", &token), ("name", &name)])
                    .await;
                shared.record("rename", &response);
                if response.status() == 303 {
                    shared.acknowledged.lock().unwrap().renames.push(name);
                }
            }
            _ => {
                let page = session.get("/account/keys/new").await;
                shared.record("create form", &page);
                if page.status() != 200 {
                    continue;
                }
                let form = page.text().await.unwrap();
                let response = session.create_key(&form, &format!("soak created {id}-{n}")).await;
                shared.record("create", &response);
                if response.status() == 200 {
                    let body = response.text().await.unwrap();
                    if let Some(start) = body.find("value=\"kw_") {
                        let secret = &body[start + 7..start + 7 + body[start + 7..].find('"').unwrap()];
                        let public_id = ParsedKey::parse(secret).expect("a shown key").public_id.to_string();
                        shared.acknowledged.lock().unwrap().created.push(public_id);
                    }
                }
            }
        }
    }
}

fn main() {
    let seconds = env_number("SOAK_SECONDS", 30);
    let workers = env_number("SOAK_WORKERS", 8) as usize;
    let outage = Duration::from_secs(env_number("SOAK_OUTAGE_SECONDS", 3));
    let recovery = Duration::from_secs(env_number("SOAK_RECOVERY_SECONDS", 5));
    let demo_cluster = DemoCluster::start("soak-cluster");
    let (url, secret) = (&demo_cluster.url, &demo_cluster.secret);
    let mut conn = demo_cluster.connect();
    let keys = Arc::new(keys_with_secrets(&mut conn, &demo_cluster.hasher, "alice@acme.example", 40));
    drop(conn);

    let shared = Arc::new(Shared {
        started: Instant::now(),
        outcomes: Mutex::new(Vec::new()),
        acknowledged: Mutex::new(Acknowledged::default()),
    });
    let window = actix_web::rt::System::new().block_on(async {
        let setup = Setup {
            workers: 2,
            verify_cache: true,
            usage_recording: true,
            checkout_timeout: Duration::from_secs(1),
            statement_timeout: Duration::from_secs(2),
        };
        let (addr, handle) = serve(application(url, secret, setup));
        let base = format!("http://{addr}");

        let until = Instant::now() + Duration::from_secs(seconds);
        let tasks: Vec<_> = (0..workers)
            .map(|id| actix_web::rt::spawn(worker(id, base.clone(), Arc::clone(&keys), Arc::clone(&shared), until)))
            .collect();
        actix_web::rt::time::sleep(Duration::from_secs(seconds / 3)).await;
        let outage_started = shared.started.elapsed();
        demo_cluster.cluster.stop_now();
        actix_web::rt::time::sleep(outage).await;
        demo_cluster.cluster.restart().expect("restart the soak cluster");
        let outage_ended = shared.started.elapsed();
        for task in tasks {
            task.await.unwrap();
        }
        handle.stop(true).await;
        (outage_started, outage_ended + recovery)
    });

    // The account: every acknowledged change is there, with exactly one audit event.
    let mut conn = demo_cluster.connect();
    let acknowledged = shared.acknowledged.lock().unwrap();
    let mut lost = Vec::new();
    for name in &acknowledged.renames {
        let events: i64 = audit_events::table
            .filter(audit_events::action.eq("key.rename"))
            .filter(audit_events::target_label.eq(name))
            .filter(audit_events::result.eq("success"))
            .count()
            .get_result(&mut conn)
            .unwrap();
        if events != 1 {
            lost.push(format!("rename to {name:?}: {events} audit events"));
        }
    }
    for public_id in &acknowledged.created {
        let rows: i64 =
            api_keys::table.filter(api_keys::public_id.eq(public_id)).count().get_result(&mut conn).unwrap();
        let events: i64 = audit_events::table
            .filter(audit_events::action.eq("key.create"))
            .filter(audit_events::target_id.eq(public_id))
            .count()
            .get_result(&mut conn)
            .unwrap();
        if rows != 1 || events != 1 {
            lost.push(format!("created {public_id}: {rows} rows, {events} audit events"));
        }
    }
    drop(conn);
    drop(demo_cluster);

    let outcomes = shared.outcomes.lock().unwrap();
    let in_window = |o: &Outcome| o.at >= window.0 && o.at <= window.1;
    let mut by_kind: BTreeMap<&str, BTreeMap<u16, usize>> = BTreeMap::new();
    for outcome in outcomes.iter() {
        *by_kind.entry(outcome.kind).or_default().entry(outcome.status).or_default() += 1;
    }
    let stray: Vec<&Outcome> = outcomes.iter().filter(|o| o.status >= 500 && !in_window(o)).collect();
    let mut times: Vec<f64> = outcomes.iter().filter(|o| !in_window(o)).map(|o| o.server_ms).collect();
    times.sort_by(|a, b| a.partial_cmp(b).unwrap());

    println!(
        "\nSoak: {workers} workers for {seconds} s, database stopped at {:.1} s for {} s (window until {:.1} s)",
        window.0.as_secs_f64(),
        outage.as_secs(),
        window.1.as_secs_f64()
    );
    println!("{:<14} statuses", "request");
    for (kind, statuses) in &by_kind {
        let list: Vec<String> = statuses.iter().map(|(status, count)| format!("{status}: {count}")).collect();
        println!("{kind:<14} {}", list.join(", "));
    }
    if !times.is_empty() {
        println!(
            "server time outside the outage: p50 {:.2} ms, p95 {:.2} ms, {} requests",
            percentile(&times, 0.5),
            percentile(&times, 0.95),
            times.len()
        );
    }
    println!(
        "acknowledged: {} renames, {} created keys; lost or doubled: {}",
        acknowledged.renames.len(),
        acknowledged.created.len(),
        lost.len()
    );
    println!("5xx outside the outage window: {}", stray.len());
    for problem in lost.iter().take(10) {
        println!("  {problem}");
    }
    for outcome in stray.iter().take(10) {
        println!("  {outcome:?}");
    }
    let passed = lost.is_empty() && stray.is_empty() && !acknowledged.renames.is_empty();
    println!("result: {}", if passed { "PASSED" } else { "FAILED" });
    if !passed {
        std::process::exit(1);
    }
}
