//! The verification benchmark (SPEC §8): throughput and latency of `/healthz`, cached verify
//! and uncached verify on the same server, measured in one run and printed as ratios.
//!
//! Run with `cargo bench --bench verify` (release build). It starts a private PostgreSQL
//! cluster in `target/`, seeds 1,000 keys, starts three instances on that database — one with
//! the key cache and usage counting (the default), one with the cache and without usage
//! counting (what counting costs), one without the cache (the uncached path) — and drives
//! each endpoint in turn with
//! 64 persistent HTTP/1.1 connections from a load generator on the same machine, in
//! alternating rounds. Environment: `BENCH_SECONDS` (default 2) per endpoint and round,
//! `BENCH_ROUNDS` (default 9: on two shared cores one round's ratio
//! moves by ±0.03, the median of nine is steady), `BENCH_SERVER_WORKERS` (default 1: with the load generator on
//! the same two-core machine, one core each; more threads than cores measures the operating
//! system's scheduler more than the server), `BENCH_CONNECTIONS` (default 64),
//! `BENCH_CLIENT_THREADS` (default 1: the load generator shares the two cores with the
//! server, and more client threads than cores only adds scheduling noise to the latencies).

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use http_body_util::{BodyExt, Full};
use hyper::{Request, body::Bytes};
use hyper_util::rt::TokioIo;
use keyward::{secrets::MasterSecret, startup::Application};

#[path = "common/app.rs"]
mod app;
use app::{DemoCluster, Setup, application, keys_with_secrets, serve};

const KEYS: usize = 1000;

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// One endpoint to measure: method, path, and the bodies/keys to rotate through.
#[derive(Clone)]
struct Target {
    label: &'static str,
    addr: SocketAddr,
    path: &'static str,
    post: bool,
    keys: Arc<Vec<String>>,
}

struct Measurement {
    label: &'static str,
    requests: u64,
    seconds: f64,
    p50_ms: f64,
    p99_ms: f64,
    errors: u64,
}

impl Measurement {
    fn throughput(&self) -> f64 {
        self.requests as f64 / self.seconds
    }
}

/// Drives `target` with `connections` persistent connections for `duration` (after a warm-up).
async fn measure(target: Target, connections: usize, warmup: Duration, duration: Duration) -> Measurement {
    let measuring = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for worker in 0..connections {
        let (target, measuring, stop) = (target.clone(), Arc::clone(&measuring), Arc::clone(&stop));
        tasks.push(tokio::spawn(async move {
            let stream = tokio::net::TcpStream::connect(target.addr).await.expect("connect");
            stream.set_nodelay(true).unwrap();
            let (mut sender, connection) =
                hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.expect("handshake");
            tokio::spawn(connection);
            let mut latencies: Vec<u32> = Vec::with_capacity(200_000);
            let (mut errors, mut i) = (0u64, worker);
            while !stop.load(Ordering::Relaxed) {
                let mut request = Request::builder().uri(target.path).header("host", "bench");
                let body = if target.post {
                    let key = &target.keys[i % target.keys.len()];
                    i += connections;
                    request = request
                        .method("POST")
                        .header("authorization", format!("Bearer {key}"))
                        .header("content-type", "application/json");
                    if std::env::var("BENCH_NO_BODY").is_ok() {
                        Full::new(Bytes::new())
                    } else {
                        Full::new(Bytes::from_static(br#"{"action":"positions.read"}"#))
                    }
                } else {
                    Full::new(Bytes::new())
                };
                let started = Instant::now();
                let response = sender.send_request(request.body(body).unwrap()).await.expect("request");
                let ok = response.status().is_success();
                response.into_body().collect().await.expect("body");
                if measuring.load(Ordering::Relaxed) {
                    latencies.push(started.elapsed().as_micros() as u32);
                    if !ok {
                        errors += 1;
                    }
                }
            }
            (latencies, errors)
        }));
    }
    tokio::time::sleep(warmup).await;
    measuring.store(true, Ordering::Relaxed);
    let started = Instant::now();
    tokio::time::sleep(duration).await;
    measuring.store(false, Ordering::Relaxed);
    let seconds = started.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    let mut all = Vec::new();
    let mut errors = 0;
    for task in tasks {
        let (latencies, e) = task.await.unwrap();
        all.extend(latencies);
        errors += e;
    }
    all.sort_unstable();
    let percentile = |p: f64| {
        all.get(((all.len() as f64 * p) as usize).min(all.len().saturating_sub(1))).copied().unwrap_or(0) as f64
            / 1000.0
    };
    Measurement {
        label: target.label,
        requests: all.len() as u64,
        seconds,
        p50_ms: percentile(0.50),
        p99_ms: percentile(0.99),
        errors,
    }
}

fn app(url: &str, secret: &MasterSecret, cache: bool, usage_recording: bool) -> Application {
    let setup = Setup {
        workers: env_number("BENCH_SERVER_WORKERS", 1) as usize,
        verify_cache: cache,
        usage_recording,
        checkout_timeout: Duration::from_secs(3),
        statement_timeout: Duration::from_secs(5),
    };
    application(url, secret, setup)
}

/// `(steal, total)` jiffies of all CPUs so far, from `/proc/stat` (steal: time the hypervisor
/// gave this machine's CPUs to someone else).
fn cpu_jiffies() -> (u64, u64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let fields: Vec<u64> =
        stat.lines().next().unwrap_or_default().split_whitespace().skip(1).filter_map(|v| v.parse().ok()).collect();
    (fields.get(7).copied().unwrap_or(0), fields.iter().take(8).sum())
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(|a, b| a.partial_cmp(b).unwrap());
    values[values.len() / 2]
}

fn main() {
    let seconds = env_number("BENCH_SECONDS", 2);
    let rounds = env_number("BENCH_ROUNDS", 9) as usize;
    let connections = env_number("BENCH_CONNECTIONS", 64) as usize;
    let demo_cluster = DemoCluster::start("bench-cluster");
    let (url, secret) = (&demo_cluster.url, &demo_cluster.secret);
    let keys = keys_with_secrets(&mut demo_cluster.connect(), &demo_cluster.hasher, "alice@acme.example", KEYS);
    let keys = Arc::new(keys.into_iter().map(|(_, secret)| secret).collect::<Vec<_>>());

    let (steal_before, total_before) = cpu_jiffies();
    let rounds_measured = actix_web::rt::System::new().block_on(async {
        let (cached_addr, cached) = serve(app(url, secret, true, true));
        let (quiet_addr, quiet) = serve(app(url, secret, true, false));
        let (uncached_addr, uncached) = serve(app(url, secret, false, true));
        let handles = [cached, quiet, uncached];
        // The load generator runs on its own runtime, beside the server's workers.
        let client_threads = env_number("BENCH_CLIENT_THREADS", 1) as usize;
        let client =
            tokio::runtime::Builder::new_multi_thread().worker_threads(client_threads).enable_all().build().unwrap();
        let duration = Duration::from_secs(seconds);
        let warmup = Duration::from_millis(500);
        let targets = [
            Target { label: "/healthz", addr: cached_addr, path: "/healthz", post: false, keys: Arc::clone(&keys) },
            Target {
                label: "verify (cached)",
                addr: cached_addr,
                path: "/api/v1/verify",
                post: true,
                keys: Arc::clone(&keys),
            },
            Target {
                label: "verify (no usage)",
                addr: quiet_addr,
                path: "/api/v1/verify",
                post: true,
                keys: Arc::clone(&keys),
            },
            Target {
                label: "verify (uncached)",
                addr: uncached_addr,
                path: "/api/v1/verify",
                post: true,
                keys: Arc::clone(&keys),
            },
        ];
        let only = std::env::var("BENCH_ONLY").ok();
        let targets: Vec<Target> =
            targets.into_iter().filter(|t| only.as_deref().is_none_or(|o| t.label.contains(o))).collect();
        // Endpoints take turns, round after round, so a change in the machine's speed during
        // the run (CPU steal on a shared host) affects them alike.
        let mut rounds_measured: Vec<Vec<Measurement>> = Vec::new();
        for _ in 0..rounds {
            let mut round = Vec::new();
            for target in targets.iter().cloned() {
                let handle = client.handle().clone();
                let measured = tokio::task::spawn_blocking(move || {
                    handle.block_on(measure(target, connections, warmup, duration))
                })
                .await
                .unwrap();
                round.push(measured);
            }
            rounds_measured.push(round);
        }
        for handle in handles {
            handle.stop(true).await;
        }
        client.shutdown_background();
        rounds_measured
    });
    let (steal_after, total_after) = cpu_jiffies();
    drop(demo_cluster);
    let steal = 100.0 * (steal_after - steal_before) as f64 / (total_after - total_before).max(1) as f64;

    // Pool each endpoint's rounds: median throughput, latencies over all rounds.
    let endpoints = rounds_measured[0].len();
    println!(
        "\nVerification benchmark: {connections} connections, {rounds} rounds x {seconds} s per endpoint, release build, {} CPUs, {steal:.0}% CPU steal during the run",
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
    );
    println!(
        "{:<20} {:>12} {:>10} {:>10} {:>12} {:>8}",
        "endpoint", "requests/s", "p50 ms", "p99 ms", "vs healthz", "errors"
    );
    let mut summary = Vec::new();
    for e in 0..endpoints {
        let label = rounds_measured[0][e].label;
        let throughput = median(rounds_measured.iter().map(|r| r[e].throughput()).collect());
        let ratio = median(rounds_measured.iter().map(|r| r[e].throughput() / r[0].throughput()).collect());
        let p50 = median(rounds_measured.iter().map(|r| r[e].p50_ms).collect());
        let p99 = median(rounds_measured.iter().map(|r| r[e].p99_ms).collect());
        let errors: u64 = rounds_measured.iter().map(|r| r[e].errors).sum();
        let requests: u64 = rounds_measured.iter().map(|r| r[e].requests).sum();
        println!("{label:<20} {throughput:>12.0} {p50:>10.2} {p99:>10.2} {ratio:>12.2} {errors:>8}");
        summary.push((label, ratio, p99, errors, requests));
    }
    println!("(medians over the rounds; the ratio is taken within each round)");
    if let Some((_, ratio, p99, _, _)) = summary.iter().find(|s| s.0 == "verify (cached)") {
        println!(
            "\ntarget: cached verify >= 0.60 x /healthz throughput: {ratio:.2} -> {}",
            if *ratio >= 0.60 { "met" } else { "NOT met" }
        );
        println!(
            "target: cached verify p99 < 5 ms at {connections} connections: {p99:.2} ms -> {}",
            if *p99 < 5.0 { "met" } else { "NOT met" }
        );
        println!(
            "target: cached verify with usage counting >= 0.70 x /healthz throughput: {ratio:.2} -> {}",
            if *ratio >= 0.70 { "met" } else { "NOT met" }
        );
        if let Some((_, off, _, _, _)) = summary.iter().find(|s| s.0 == "verify (no usage)") {
            println!("usage counting on / off: {ratio:.2} / {off:.2} x /healthz ({:.2})", ratio / off);
        }
    }
    assert!(summary.iter().all(|s| s.3 == 0 && s.4 > 0), "every request must succeed");
}
