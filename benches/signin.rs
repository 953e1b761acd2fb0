//! The sign-in memory benchmark (SPEC §8, "1,000 sign-ins at 16 concurrent keep the process
//! under 150 MB"): the resident memory of a real `keyward serve` process before, during and
//! after a burst of sign-ins, and the sign-in latency.
//!
//! Run with `cargo bench --bench signin` (release build). It starts a private PostgreSQL
//! cluster in `target/`, seeds the demo data set, starts the `keyward` binary on it as a
//! child process (so the memory measured is the server's alone, not the load generator's)
//! trusting `X-Forwarded-For`, and sends `BENCH_SIGNINS` (1,000) sign-ins with
//! `BENCH_CONCURRENCY` (16) at once: half to demo accounts with the right password, half to
//! unknown emails, each from its own forwarded address so the sign-in throttle never
//! answers in the hashing's place. It prints the server's resident memory at the start
//! (`VmRSS`), its peak (`VmHWM`, kept by the kernel) and at the end (after
//! `BENCH_SETTLE_SECONDS` (2) of quiet), and the p50/p95 of the sign-in requests as the
//! client saw them (queueing for a hasher included), then exits non-zero if a sign-in got a
//! wrong answer or the memory targets are missed (peak under 150 MB, end within 20 MB of
//! the start). `KEYWARD_PASSWORD_HASHERS` and `KEYWARD_WORKERS`, if set, reach the server.

use std::{
    net::TcpListener,
    path::PathBuf,
    process::{Child, Command, Stdio},
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use base64::{Engine, engine::general_purpose::STANDARD as BASE64};
use diesel::{Connection, PgConnection};
use keyward::{
    devdb::{DATABASE_NAME, Durability, EmbeddedCluster},
    domain::NewPassword,
    secrets::MasterSecret,
    services::demo,
};
use reqwest::{Client, StatusCode, header};

/// Accounts of the demo data set that sign in with [`demo::DEMO_PASSWORD`].
const ACCOUNTS: [&str; 7] = [
    "alice@acme.example",
    "bob@acme.example",
    "carol@acme.example",
    "dave@acme.example",
    "grace@globex.example",
    "henry@globex.example",
    "support@keyward.example",
];

const PEAK_TARGET_MB: f64 = 150.0;
const GROWTH_TARGET_MB: f64 = 20.0;

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// A `kB` line of `/proc/<pid>/status` (`VmRSS`, `VmHWM`), in MB.
fn status_mb(pid: u32, field: &str) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("the server is running");
    let line = status.lines().find(|l| l.starts_with(field)).unwrap_or_else(|| panic!("{field} in /proc status"));
    let kb: f64 = line.split_whitespace().nth(1).and_then(|v| v.parse().ok()).expect("a number of kB");
    kb / 1024.0
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1]
}

/// Stops the server when the benchmark ends, however it ends.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_server(url: &str, secret: &MasterSecret, port: u16) -> Server {
    let mut command = Command::new(env!("CARGO_BIN_EXE_keyward"));
    for (name, _) in std::env::vars() {
        let passed_on = name == "KEYWARD_PASSWORD_HASHERS" || name == "KEYWARD_WORKERS";
        if name == "DATABASE_URL" || (name.starts_with("KEYWARD_") && !passed_on) {
            command.env_remove(name);
        }
    }
    let child = command
        .arg("serve")
        .env("DATABASE_URL", url)
        .env("KEYWARD_SECRET", BASE64.encode(secret.as_bytes()))
        .env("KEYWARD_ADDR", format!("127.0.0.1:{port}"))
        .env("KEYWARD_COOKIE_SECURE", "false")
        .env("KEYWARD_TRUST_FORWARDED", "x-forwarded-for")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .expect("start keyward serve");
    Server(child)
}

fn session_cookie(response: &reqwest::Response) -> Option<String> {
    response
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or_default().to_string())
        .find(|pair| pair.starts_with("keyward_session=") && pair.len() > "keyward_session=".len())
}

fn csrf_token(html: &str) -> String {
    let marker = "name=\"csrf_token\" value=\"";
    let start = html.find(marker).expect("a CSRF token") + marker.len();
    html[start..start + html[start..].find('"').unwrap()].to_string()
}

/// Sign-in number `n`: its email, the status it must get, and its forwarded address.
fn attempt(n: usize) -> (String, StatusCode, String) {
    let address = format!("10.{}.{}.{}", (n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff);
    if n.is_multiple_of(2) {
        (ACCOUNTS[(n / 2) % ACCOUNTS.len()].to_string(), StatusCode::SEE_OTHER, address)
    } else {
        (format!("nobody-{n}@unknown.example"), StatusCode::UNAUTHORIZED, address)
    }
}

/// One sign-in through the login form: the client-side time of the POST, or what went wrong.
async fn sign_in(http: &Client, base: &str, n: usize) -> Result<f64, String> {
    let (email, expected, address) = attempt(n);
    let page = http.get(format!("{base}/login")).header("x-forwarded-for", &address).send().await;
    let page = page.map_err(|e| format!("GET /login: {e}"))?;
    let cookie = session_cookie(&page).ok_or("no session cookie")?;
    let token = csrf_token(&page.text().await.map_err(|e| e.to_string())?);
    let started = Instant::now();
    let response = http
        .post(format!("{base}/login"))
        .header(header::COOKIE, &cookie)
        .header("x-forwarded-for", &address)
        .form(&[("csrf_token", token.as_str()), ("email", &email), ("password", demo::DEMO_PASSWORD)])
        .send()
        .await
        .map_err(|e| format!("POST /login: {e}"))?;
    let status = response.status();
    response.bytes().await.map_err(|e| e.to_string())?;
    let millis = started.elapsed().as_secs_f64() * 1000.0;
    if status == expected { Ok(millis) } else { Err(format!("{email}: {status}, expected {expected}")) }
}

fn main() {
    let signins = env_number("BENCH_SIGNINS", 1000) as usize;
    let concurrency = env_number("BENCH_CONCURRENCY", 16) as usize;
    let settle = Duration::from_secs(env_number("BENCH_SETTLE_SECONDS", 2));

    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target").join("signin-cluster");
    let _ = std::fs::remove_dir_all(&root);
    let mut cluster = EmbeddedCluster::start(&root, Durability::Throwaway).expect("start the benchmark cluster");
    let url = cluster.connection_string(DATABASE_NAME);
    {
        let mut conn = PgConnection::establish(&url).unwrap();
        keyward::db::run_migrations(&mut conn).unwrap();
        let password = NewPassword::parse(demo::DEMO_PASSWORD).unwrap();
        demo::seed(&mut conn, &keyward::auth::password::hash_now(&password)).unwrap();
    }
    let secret = MasterSecret::generate();
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let server = start_server(&url, &secret, port);
    let pid = server.0.id();
    let base = format!("http://127.0.0.1:{port}");

    let outcome = actix_web::rt::System::new().block_on(async {
        let http = Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            match http.get(format!("{base}/readyz")).send().await {
                Ok(response) if response.status() == 200 => break,
                _ if Instant::now() > deadline => panic!("the server did not become ready within 60 s"),
                _ => actix_web::rt::time::sleep(Duration::from_millis(100)).await,
            }
        }
        let start_mb = status_mb(pid, "VmRSS:");
        let next = Arc::new(AtomicUsize::new(0));
        let times = Arc::new(Mutex::new(Vec::with_capacity(signins)));
        let errors = Arc::new(Mutex::new(Vec::new()));
        let started = Instant::now();
        let tasks: Vec<_> = (0..concurrency)
            .map(|_| {
                let (http, base, next) = (http.clone(), base.clone(), Arc::clone(&next));
                let (times, errors) = (Arc::clone(&times), Arc::clone(&errors));
                actix_web::rt::spawn(async move {
                    loop {
                        let n = next.fetch_add(1, Ordering::Relaxed);
                        if n >= signins {
                            break;
                        }
                        match sign_in(&http, &base, n).await {
                            Ok(millis) => times.lock().unwrap().push(millis),
                            Err(e) => errors.lock().unwrap().push(e),
                        }
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        let elapsed = started.elapsed();
        let peak_mb = status_mb(pid, "VmHWM:");
        actix_web::rt::time::sleep(settle).await;
        let final_mb = status_mb(pid, "VmRSS:");
        let mut times = std::mem::take(&mut *times.lock().unwrap());
        times.sort_by(|a, b| a.partial_cmp(b).unwrap());
        let errors = std::mem::take(&mut *errors.lock().unwrap());
        (start_mb, peak_mb, final_mb, times, errors, elapsed)
    });
    drop(server);
    cluster.stop();
    let _ = std::fs::remove_dir_all(&root);

    let (start_mb, peak_mb, final_mb, times, errors, elapsed) = outcome;
    let hashers = std::env::var("KEYWARD_PASSWORD_HASHERS").unwrap_or_else(|_| "default".into());
    println!("\nSign-in: {signins} sign-ins at {concurrency} concurrent (password hashers: {hashers})");
    println!("server RSS: start {start_mb:.1} MB, peak {peak_mb:.1} MB, end {final_mb:.1} MB");
    if !times.is_empty() {
        println!(
            "sign-in (client side): p50 {:.1} ms, p95 {:.1} ms; {} answered in {:.1} s ({:.0}/s)",
            percentile(&times, 0.5),
            percentile(&times, 0.95),
            times.len(),
            elapsed.as_secs_f64(),
            times.len() as f64 / elapsed.as_secs_f64()
        );
    }
    println!("wrong answers: {}", errors.len());
    for error in errors.iter().take(10) {
        println!("  {error}");
    }
    let memory_ok = peak_mb < PEAK_TARGET_MB && final_mb - start_mb <= GROWTH_TARGET_MB;
    println!(
        "targets: peak < {PEAK_TARGET_MB} MB, end within {GROWTH_TARGET_MB} MB of start: {}",
        if memory_ok { "met" } else { "MISSED" }
    );
    let passed = memory_ok && errors.is_empty();
    println!("result: {}", if passed { "PASSED" } else { "FAILED" });
    if !passed {
        std::process::exit(1);
    }
}
