//! The page benchmark (SPEC §8, "large organizations stay fast"): server time of every list
//! page at 10,000 users and 100,000 keys, and of sign-in, key creation and verification in
//! that organization beside a small one, measured in one run.
//!
//! Run with `cargo bench --bench pages` (release build). It starts a private PostgreSQL
//! cluster in `target/`, seeds the demo data set, fills Acme with `BENCH_USERS` (10,000)
//! users and `BENCH_KEYS` (100,000) keys through `keyward seed-demo`'s bulk loader, and asks
//! each page `BENCH_REQUESTS` (40) times after a warm-up, one request at a time. Times are
//! the server's own (`Server-Timing`), so the load generator's share of the two cores does
//! not count; the query count of each page is printed beside them.

use std::time::Duration;

use diesel::RunQueryDsl;
use keyward::{
    db::models::Organization,
    domain::NewPassword,
    services::{
        demo,
        demo_volume::{self, Volume},
    },
};
use reqwest::Client;

mod common;
use common::{
    app::{DemoCluster, Setup, application, keys_with_secrets, serve},
    http::{Session, percentile, server_timing},
};

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// p50, p95 and queries of `requests` GETs of `path` (after a warm-up).
async fn time_page(session: &Session, path: &str, requests: usize) -> (f64, f64, u32) {
    for _ in 0..3 {
        let response = session.get(path).await;
        assert_eq!(response.status(), 200, "{path}");
        response.bytes().await.unwrap();
    }
    let mut times = Vec::with_capacity(requests);
    let mut queries = 0;
    for _ in 0..requests {
        let response = session.get(path).await;
        let (millis, q) = server_timing(&response);
        response.bytes().await.unwrap();
        times.push(millis);
        queries = q;
    }
    times.sort_by(|a, b| a.partial_cmp(b).unwrap());
    (percentile(&times, 0.5), percentile(&times, 0.95), queries)
}

/// Server-time p50/p95 of verifying each secret once (uncached: the first call loads the
/// key) and then again (cached).
async fn time_verify(base: &str, secrets: &[String]) -> [(f64, f64); 2] {
    let http = Client::new();
    let mut rounds = [Vec::new(), Vec::new()];
    for round in &mut rounds {
        for secret in secrets {
            let response = common::http::verify(&http, base, secret).await;
            assert_eq!(response.status(), 200);
            round.push(server_timing(&response).0);
            response.bytes().await.unwrap();
        }
        round.sort_by(|a, b| a.partial_cmp(b).unwrap());
    }
    rounds.map(|times| (percentile(&times, 0.5), percentile(&times, 0.95)))
}

/// Server-time p50/p95 of creating `count` personal keys through the browser form.
async fn time_key_creation(session: &Session, count: usize) -> (f64, f64) {
    let mut times = Vec::new();
    for i in 0..count {
        let form = session.get("/account/keys/new").await.text().await.unwrap();
        let response = session.create_key(&form, &format!("Created in the benchmark {i}")).await;
        assert_eq!(response.status(), 200, "the key is created and shown");
        times.push(server_timing(&response).0);
        response.bytes().await.unwrap();
    }
    times.sort_by(|a, b| a.partial_cmp(b).unwrap());
    (percentile(&times, 0.5), percentile(&times, 0.95))
}

fn main() {
    let users = env_number("BENCH_USERS", 10_000) as usize;
    let key_count = env_number("BENCH_KEYS", 100_000) as usize;
    let requests = env_number("BENCH_REQUESTS", 40) as usize;
    let demo_cluster = DemoCluster::start("bench-pages-cluster");
    let (url, secret, hasher) = (&demo_cluster.url, &demo_cluster.secret, &demo_cluster.hasher);
    let mut conn = demo_cluster.connect();
    let acme = Organization::find_by_slug(&mut conn, demo::DEMO_ORG_SLUG).unwrap();
    let started = std::time::Instant::now();
    let password = NewPassword::parse(demo::DEMO_PASSWORD).unwrap();
    let hash = keyward::auth::password::hash_now(&password);
    let added =
        demo_volume::fill(&mut conn, hasher, &acme, Some(&hash), Volume { users, keys: key_count }, 42).unwrap();
    let seeding = started.elapsed().as_secs_f64();
    diesel::sql_query("VACUUM ANALYZE").execute(&mut conn).unwrap();
    let secrets_of = |keys: Vec<(String, String)>| keys.into_iter().map(|(_, secret)| secret).collect::<Vec<_>>();
    let acme_secrets = secrets_of(keys_with_secrets(&mut conn, hasher, "alice@acme.example", 100));
    let globex_secrets = secrets_of(keys_with_secrets(&mut conn, hasher, "grace@globex.example", 100));
    // The seeded user holding the most personal keys: the heaviest "own keys" page.
    let heavy: String = diesel::sql_query(
        "SELECT u.email FROM users u JOIN api_keys k ON k.owner_user_id = u.id \
         GROUP BY u.email ORDER BY count(*) DESC LIMIT 1",
    )
    .get_result::<HeavyUser>(&mut conn)
    .unwrap()
    .email;
    drop(conn);

    let provider_id = acme.service_provider_id.expect("Acme has a provider");
    let report = actix_web::rt::System::new().block_on(async {
        let setup = Setup {
            workers: 2,
            verify_cache: true,
            checkout_timeout: Duration::from_secs(3),
            statement_timeout: Duration::from_secs(5),
        };
        let (addr, handle) = serve(application(url, secret, setup));
        let base = format!("http://{addr}");

        let (alice, _) = Session::sign_in(&base, "alice@acme.example").await;
        let (owner, _) = Session::sign_in(&base, &heavy).await;
        let (support, _) = Session::sign_in(&base, "support@keyward.example").await;
        let pages: Vec<(&Session, String)> = vec![
            (&alice, "/admin/users".into()),
            (&alice, "/admin/users?q=ana".into()),
            (&alice, "/admin/users?q=li&sort=last_login".into()),
            (&alice, "/admin/users?sort=email&page=300".into()),
            (&alice, "/admin/keys".into()),
            (&alice, "/admin/keys?q=export".into()),
            (&alice, "/admin/keys?q=e".into()),
            (&alice, "/admin/keys?state=expired".into()),
            (&alice, "/admin/keys?owner=organization&expiring=1".into()),
            (&alice, "/admin/keys?page=400".into()),
            (&alice, "/admin/audit".into()),
            (&alice, "/admin/audit?action=key.".into()),
            (&alice, "/admin/audit?target=dispatch".into()),
            (&alice, "/admin/audit?actor=seed&page=200".into()),
            (&owner, "/account/keys".into()),
            (&owner, "/account/keys?q=sync".into()),
            (&support, "/staff".into()),
            (&support, "/staff/organizations".into()),
            (&support, format!("/staff/organizations/{}", acme.id)),
            (&support, format!("/staff/organizations/{}?page=300", acme.id)),
            (&support, format!("/staff/organizations/{}/users?q=ana", acme.id)),
            (&support, format!("/staff/organizations/{}/users?page=300", acme.id)),
            (&support, format!("/staff/providers/{provider_id}")),
            (&support, format!("/staff/providers/{provider_id}/keys")),
        ];
        let mut rows = Vec::new();
        for (session, path) in &pages {
            let (p50, p95, queries) = time_page(session, path, requests).await;
            rows.push((path.clone(), p50, p95, queries));
        }

        let mut logins = [Vec::new(), Vec::new()];
        for _ in 0..10 {
            for (i, email) in ["alice@acme.example", "grace@globex.example"].iter().enumerate() {
                logins[i].push(Session::sign_in(&base, email).await.1);
            }
        }
        let logins = logins.map(|mut times| {
            times.sort_by(|a, b| a.partial_cmp(b).unwrap());
            (percentile(&times, 0.5), percentile(&times, 0.95))
        });
        let (grace, _) = Session::sign_in(&base, "grace@globex.example").await;
        let creation = [time_key_creation(&alice, 20).await, time_key_creation(&grace, 20).await];
        let verify = [time_verify(&base, &acme_secrets).await, time_verify(&base, &globex_secrets).await];
        handle.stop(true).await;
        (rows, logins, creation, verify)
    });
    drop(demo_cluster);

    let (rows, logins, creation, verify) = report;
    println!(
        "\nPage benchmark: {} users and {} keys added to Acme in {seeding:.1} s; {requests} requests per page, release build, server time (Server-Timing)",
        added.users, added.keys
    );
    println!("{:<48} {:>8} {:>8} {:>8}", "page", "p50 ms", "p95 ms", "queries");
    for (path, p50, p95, queries) in &rows {
        println!("{path:<48} {p50:>8.2} {p95:>8.2} {queries:>8}");
    }
    let (worst_path, _, worst, _) =
        rows.iter().max_by(|a, b| a.2.partial_cmp(&b.2).unwrap()).expect("pages were measured");
    println!(
        "\ntarget: every list page p95 < 50 ms: worst {worst:.2} ms ({worst_path}) -> {}",
        if *worst < 50.0 { "met" } else { "NOT met" }
    );
    println!("\nOther operations, Acme ({} keys) beside Globex (a handful), server time p50 / p95 ms:", added.keys);
    println!("{:<24} {:>18} {:>18}", "operation", "Acme", "Globex");
    let pair = |(p50, p95): (f64, f64)| format!("{p50:.2} / {p95:.2}");
    println!("{:<24} {:>18} {:>18}", "sign in (argon2)", pair(logins[0]), pair(logins[1]));
    println!("{:<24} {:>18} {:>18}", "create a key", pair(creation[0]), pair(creation[1]));
    println!("{:<24} {:>18} {:>18}", "verify (uncached)", pair(verify[0][0]), pair(verify[1][0]));
    println!("{:<24} {:>18} {:>18}", "verify (cached)", pair(verify[0][1]), pair(verify[1][1]));
}

#[derive(diesel::QueryableByName)]
struct HeavyUser {
    #[diesel(sql_type = diesel::sql_types::Text)]
    email: String,
}
