//! Pool recovery: how much a killed database connection costs. Two application instances
//! share one database under a mixed load (verifications, list pages, renames, key creation); after a
//! while every pool connection of both is terminated on the server
//! (`pg_terminate_backend` of each backend whose `application_name` is `keyward`), and the
//! load goes on. Issue 13 allows a killed connection to cost the requests that were using
//! it, nothing more: each instance must be back to normal within 2 s.
//!
//! Run with `cargo bench --bench recovery` (release build). `RECOVERY_WORKERS` (8) clients,
//! spread over the two instances, run for `RECOVERY_BEFORE_SECONDS` (4) before the kill and
//! `RECOVERY_AFTER_SECONDS` (8) after it. Per instance it prints the requests and failures
//! (5xx) after the kill, the time from the kill to the last failure, and to the 20th
//! success in a row after it ("normal again"); it exits non-zero if an instance failed a
//! request before the kill or was not normal again within 2 s.

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use diesel::RunQueryDsl;

mod common;
use common::{
    app::{DemoCluster, Setup, application, keys_with_secrets, serve},
    http::{Session, csrf_token, percentile, server_timing},
};

const INSTANCES: usize = 2;
/// Successes in a row that count as "back to normal".
const NORMAL_STREAK: usize = 20;
/// Issue 13's bound on recovery.
const TARGET: Duration = Duration::from_secs(2);

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// When (since the start) a request to which instance completed, and whether it failed.
#[derive(Debug, Clone, Copy)]
struct Outcome {
    at: Duration,
    instance: usize,
    failed: bool,
    /// The server's own time for the request (`Server-Timing`).
    server_ms: f64,
}

struct Shared {
    started: Instant,
    outcomes: Mutex<Vec<Outcome>>,
}

impl Shared {
    fn record(&self, instance: usize, response: &reqwest::Response) {
        let outcome = Outcome {
            at: self.started.elapsed(),
            instance,
            failed: response.status().is_server_error(),
            server_ms: server_timing(response).0,
        };
        self.outcomes.lock().unwrap().push(outcome);
    }
}

/// One client of `instance`: a signed-in administrator verifying keys, listing, renaming
/// and creating them until `until`.
async fn worker(
    id: usize,
    instance: usize,
    base: String,
    keys: Arc<Vec<(String, String)>>,
    shared: Arc<Shared>,
    until: Instant,
) {
    let (session, _) = Session::sign_in(&base, "alice@acme.example").await;
    let api = reqwest::Client::new();
    let mut n = 0usize;
    while Instant::now() < until {
        n += 1;
        let (public_id, secret) = &keys[(id * 7919 + n) % keys.len()];
        match n % 10 {
            0..5 => {
                let response = common::http::verify(&api, &base, secret).await;
                shared.record(instance, &response);
            }
            5..8 => {
                let response = session.get("/account/keys?q=recovery").await;
                shared.record(instance, &response);
            }
            8 => {
                let page = session.get(&format!("/account/keys/{public_id}/rename")).await;
                shared.record(instance, &page);
                if page.status() != 200 {
                    continue;
                }
                let token = csrf_token(&page.text().await.unwrap());
                let name = format!("recovery {id}-{n}");
                let response = session
                    .post(&format!("/account/keys/{public_id}/rename"), &[("csrf_token", &token), ("name", &name)])
                    .await;
                shared.record(instance, &response);
            }
            _ => {
                let page = session.get("/account/keys/new").await;
                shared.record(instance, &page);
                if page.status() != 200 {
                    continue;
                }
                let form = page.text().await.unwrap();
                let response = session.create_key(&form, &format!("recovery created {id}-{n}")).await;
                shared.record(instance, &response);
            }
        }
    }
}

/// What the kill cost one instance.
struct Recovery {
    requests: usize,
    failed: usize,
    failed_before: usize,
    /// From the kill to the last failed request (none: nothing failed).
    last_failure: Option<Duration>,
    /// From the kill to the [`NORMAL_STREAK`]th success in a row after the last failure.
    normal_again: Option<Duration>,
    /// Server time p95 (ms) before the kill, and once normal again.
    p95_before: f64,
    p95_after: f64,
}

fn p95(outcomes: &[&Outcome]) -> f64 {
    let mut times: Vec<f64> = outcomes.iter().map(|o| o.server_ms).filter(|ms| ms.is_finite()).collect();
    times.sort_by(f64::total_cmp);
    if times.is_empty() { f64::NAN } else { percentile(&times, 0.95) }
}

fn recovery(outcomes: &[Outcome], instance: usize, kill: Duration) -> Recovery {
    let mine: Vec<&Outcome> = outcomes.iter().filter(|o| o.instance == instance).collect();
    let failed_before = mine.iter().filter(|o| o.at < kill && o.failed).count();
    let p95_before = p95(&mine.iter().copied().filter(|o| o.at < kill).collect::<Vec<_>>());
    let after: Vec<&Outcome> = mine.into_iter().filter(|o| o.at >= kill).collect();
    let last_failure = after.iter().rev().find(|o| o.failed).map(|o| o.at);
    let since = last_failure.unwrap_or(kill);
    let normal_again = after.iter().filter(|o| o.at > since).nth(NORMAL_STREAK - 1).map(|o| o.at - kill);
    let p95_after =
        p95(&after.iter().copied().filter(|o| normal_again.is_some_and(|d| o.at - kill > d)).collect::<Vec<_>>());
    Recovery {
        p95_before,
        p95_after,
        requests: after.len(),
        failed: after.iter().filter(|o| o.failed).count(),
        failed_before,
        last_failure: last_failure.map(|at| at - kill),
        normal_again,
    }
}

fn seconds(duration: Option<Duration>) -> String {
    duration.map_or_else(|| "-".to_string(), |d| format!("{:.3} s", d.as_secs_f64()))
}

fn main() {
    let workers = env_number("RECOVERY_WORKERS", 8) as usize;
    let before = Duration::from_secs(env_number("RECOVERY_BEFORE_SECONDS", 4));
    let after = Duration::from_secs(env_number("RECOVERY_AFTER_SECONDS", 8));
    let demo_cluster = DemoCluster::start("recovery-cluster");
    let (url, secret) = (&demo_cluster.url, &demo_cluster.secret);
    let mut conn = demo_cluster.connect();
    let keys = Arc::new(keys_with_secrets(&mut conn, &demo_cluster.hasher, "alice@acme.example", 40));

    let shared = Arc::new(Shared { started: Instant::now(), outcomes: Mutex::new(Vec::new()) });
    let (kill, terminated) = actix_web::rt::System::new().block_on(async {
        let mut bases = Vec::new();
        let mut handles = Vec::new();
        for _ in 0..INSTANCES {
            let setup = Setup {
                workers: 2,
                verify_cache: true,
                usage_recording: true,
                checkout_timeout: Duration::from_secs(1),
                statement_timeout: Duration::from_secs(2),
            };
            let (addr, handle) = serve(application(url, secret, setup));
            bases.push(format!("http://{addr}"));
            handles.push(handle);
        }
        let until = Instant::now() + before + after;
        let tasks: Vec<_> = (0..workers)
            .map(|id| {
                let instance = id % INSTANCES;
                actix_web::rt::spawn(worker(
                    id,
                    instance,
                    bases[instance].clone(),
                    Arc::clone(&keys),
                    Arc::clone(&shared),
                    until,
                ))
            })
            .collect();
        actix_web::rt::time::sleep(before).await;
        #[derive(diesel::QueryableByName)]
        struct Terminated {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        let kill = shared.started.elapsed();
        let terminated: Terminated = diesel::sql_query(
            "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) AS n FROM pg_stat_activity \
             WHERE application_name = 'keyward'",
        )
        .get_result(&mut conn)
        .unwrap();
        for task in tasks {
            task.await.unwrap();
        }
        for handle in handles {
            handle.stop(true).await;
        }
        (kill, terminated.n)
    });
    drop(demo_cluster);

    let outcomes = shared.outcomes.lock().unwrap();
    println!(
        "\nRecovery: {INSTANCES} instances, {workers} clients; {terminated} pool connections terminated at {:.1} s, \
         load for {} s more",
        kill.as_secs_f64(),
        after.as_secs()
    );
    println!(
        "instance  requests after  failed  failed before  last failure  normal again ({NORMAL_STREAK} ok in a row)"
    );
    let mut passed = terminated > 0;
    for instance in 0..INSTANCES {
        let r = recovery(&outcomes, instance, kill);
        println!(
            "{instance:<9} {:<15} {:<7} {:<14} {:<13} {:<34} {:.1} / {:.1} ms",
            r.requests,
            r.failed,
            r.failed_before,
            seconds(r.last_failure),
            seconds(r.normal_again),
            r.p95_before,
            r.p95_after
        );
        passed &= r.failed_before == 0 && r.normal_again.is_some_and(|d| d <= TARGET);
    }
    println!(
        "result: {} (target: normal again within {} s)",
        if passed { "PASSED" } else { "FAILED" },
        TARGET.as_secs()
    );
    if !passed {
        std::process::exit(1);
    }
}
