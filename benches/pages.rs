//! The page benchmark (SPEC §8, "large organizations stay fast"): server time of every list
//! page, search and filter at two scale points, and of sign-in, key creation and
//! verification in a large organization beside a small one.
//!
//! Run with `cargo bench --bench pages` (release build). It starts a private PostgreSQL
//! cluster in `target/`, seeds the demo data set, fills Acme with `BENCH_USERS` (10,000)
//! users and `BENCH_KEYS` (100,000) keys through the set-based bulk seeder
//! (`services::demo_bulk`, whose names make the search terms match none, ~0.1 %, ~5 % and
//! ~50 % of the rows), and asks each page `BENCH_REQUESTS` (40, at least 30) times after a
//! warm-up, one request at a time. One request at a time means the pool hands the same
//! connection out again and again (r2d2 reuses the last returned), so every statement runs
//! far past the fifth execution at which PostgreSQL may switch to a generic plan (issue 15).
//! Then it adds `BENCH_PLATFORM_ORGS` (98) organizations of `BENCH_PLATFORM_USERS` (1,000)
//! users and `BENCH_PLATFORM_KEYS` (9,184) keys each, for the platform point of about
//! 1,000,000 keys in 100 organizations, and asks every page again (0 organizations: skip).
//! Times are the server's own (`Server-Timing`), so the load generator's share of the two
//! cores does not count; the query count of each page is printed beside them.

use std::time::Duration;

use diesel::{Connection, ExpressionMethods, QueryDsl, RunQueryDsl};
use keyward::{
    db::{
        models::Organization,
        schema::{api_keys, organizations, users},
    },
    domain::NewPassword,
    services::{demo, demo_bulk},
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
    let users = env_number("BENCH_USERS", 10_000) as i64;
    let key_count = env_number("BENCH_KEYS", 100_000) as i64;
    let requests = env_number("BENCH_REQUESTS", 40).max(30) as usize;
    let platform_orgs = env_number("BENCH_PLATFORM_ORGS", 98) as i64;
    let platform_users = env_number("BENCH_PLATFORM_USERS", 1_000) as i64;
    let platform_keys = env_number("BENCH_PLATFORM_KEYS", 9_184) as i64;
    let demo_cluster = DemoCluster::start("bench-pages-cluster");
    let (url, secret, hasher) = (&demo_cluster.url, &demo_cluster.secret, &demo_cluster.hasher);
    let mut conn = demo_cluster.connect();
    let acme = Organization::find_by_slug(&mut conn, demo::DEMO_ORG_SLUG).unwrap();
    let started = std::time::Instant::now();
    demo_bulk::fill(&mut conn, acme.id, users, key_count).unwrap();
    let seeding = started.elapsed().as_secs_f64();
    diesel::sql_query("VACUUM ANALYZE").execute(&mut conn).unwrap();
    let secrets_of = |keys: Vec<(String, String)>| keys.into_iter().map(|(_, secret)| secret).collect::<Vec<_>>();
    let acme_secrets = secrets_of(keys_with_secrets(&mut conn, hasher, "alice@acme.example", 100));
    let globex_secrets = secrets_of(keys_with_secrets(&mut conn, hasher, "grace@globex.example", 100));
    // The seeded user holding the most personal keys: the heaviest "own keys" page. Bulk
    // users have no password; this one gets the demo password to sign in.
    let heavy: String = diesel::sql_query(
        "SELECT u.email FROM users u JOIN api_keys k ON k.owner_user_id = u.id \
         GROUP BY u.email ORDER BY count(*) DESC LIMIT 1",
    )
    .get_result::<HeavyUser>(&mut conn)
    .unwrap()
    .email;
    let password = NewPassword::parse(demo::DEMO_PASSWORD).unwrap();
    diesel::update(users::table.filter(users::email.eq(&heavy)))
        .set(users::password_hash.eq(keyward::auth::password::hash_now(&password)))
        .execute(&mut conn)
        .unwrap();

    let provider_id = acme.service_provider_id.expect("Acme has a provider");
    let report = actix_web::rt::System::new().block_on(async {
        let setup = Setup {
            workers: 2,
            verify_cache: true,
            usage_recording: true,
            checkout_timeout: Duration::from_secs(3),
            statement_timeout: Duration::from_secs(5),
        };
        let (addr, handle) = serve(application(url, secret, setup));
        let base = format!("http://{addr}");

        let (alice, _) = Session::sign_in(&base, "alice@acme.example").await;
        let (owner, _) = Session::sign_in(&base, &heavy).await;
        let (support, _) = Session::sign_in(&base, "support@keyward.example").await;
        let org = acme.id;
        let mut pages: Vec<(&Session, String)> = vec![(&alice, "/admin".into()), (&alice, "/admin/users".into())];
        for (term, _) in demo_bulk::TERMS.users {
            pages.push((&alice, format!("/admin/users?q={}", term.replace(' ', "+"))));
        }
        pages.extend([
            (&alice, "/admin/users?q=li&sort=last_login".into()),
            (&alice, "/admin/users?sort=email&page=40".into()),
            (&alice, "/admin/users?access=1".into()),
            (&alice, "/admin/keys".into()),
        ]);
        for (term, _) in demo_bulk::TERMS.keys {
            pages.push((&alice, format!("/admin/keys?q={term}")));
        }
        pages.extend([
            (&alice, "/admin/keys?q=e".into()),
            (&alice, "/admin/keys?state=expired".into()),
            (&alice, "/admin/keys?state=inactive&q=sync".into()),
            (&alice, "/admin/keys?owner=organization&expiring=1".into()),
            (&alice, "/admin/keys?state=active&unused=90".into()),
            (&alice, "/admin/keys?q=sync&page=40".into()),
            (&alice, "/admin/audit".into()),
            (&alice, "/admin/audit?action=key.".into()),
        ]);
        for (term, _) in demo_bulk::TERMS.keys {
            pages.push((&alice, format!("/admin/audit?target={term}")));
        }
        pages.extend([
            (&alice, "/admin/audit?actor=seed&page=40".into()),
            (&owner, "/account/keys".into()),
            (&owner, "/account/keys?q=zzqx".into()),
            (&owner, "/account/keys?q=sync".into()),
            (&support, "/staff".into()),
            (&support, "/staff/organizations".into()),
            (&support, "/staff/organizations?q=bulk".into()),
            (&support, format!("/staff/organizations/{org}")),
            (&support, format!("/staff/organizations/{org}?page=40")),
            (&support, format!("/staff/organizations/{org}/users?q=zzqx")),
            (&support, format!("/staff/organizations/{org}/users?q=ximena")),
            (&support, format!("/staff/organizations/{org}/users?page=40")),
            (&support, format!("/staff/providers/{provider_id}")),
            (&support, format!("/staff/providers/{provider_id}/keys")),
        ]);
        let mut rows = Vec::new();
        for (session, path) in &pages {
            rows.push(time_page(session, path, requests).await);
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

        // The platform point: the same pages, with ~900,000 more keys in 98 more
        // organizations, on the same server and pool.
        let mut platform = None;
        if platform_orgs > 0 {
            let started = std::time::Instant::now();
            let (url, orgs) = (url.clone(), platform_orgs);
            let total = actix_web::rt::task::spawn_blocking(move || {
                let mut conn = diesel::PgConnection::establish(&url).unwrap();
                demo_bulk::add_organizations(&mut conn, orgs, platform_users, platform_keys).unwrap();
                diesel::sql_query("VACUUM ANALYZE").execute(&mut conn).unwrap();
                let keys: i64 = api_keys::table.count().get_result(&mut conn).unwrap();
                let organizations: i64 = organizations::table.count().get_result(&mut conn).unwrap();
                (keys, organizations)
            })
            .await
            .unwrap();
            let seeded = started.elapsed().as_secs_f64();
            let mut rows = Vec::new();
            for (session, path) in &pages {
                rows.push(time_page(session, path, requests).await);
            }
            platform = Some((total, seeded, rows));
        }
        handle.stop(true).await;
        let paths: Vec<String> = pages.into_iter().map(|(_, path)| path).collect();
        (paths, rows, platform, logins, creation, verify)
    });
    drop(demo_cluster);

    let (paths, rows, platform, logins, creation, verify) = report;
    println!(
        "\nPage benchmark: {users} users and {key_count} keys added to Acme in {seeding:.1} s; {requests} requests per page, release build, server time (Server-Timing) in ms"
    );
    println!(
        "search terms (share of the bulk rows they match): keys {:?}, users {:?}",
        demo_bulk::TERMS.keys,
        demo_bulk::TERMS.users
    );
    if let Some(((keys, organizations), seeded, _)) = &platform {
        println!("platform point: {keys} keys in {organizations} organizations (added in {seeded:.1} s)");
    }
    println!("\n| page | p50 | p95 | p50, platform | p95, platform | queries |\n|---|---|---|---|---|---|");
    let mut worst: (f64, &str) = (0.0, "");
    for (i, path) in paths.iter().enumerate() {
        let (p50, p95, queries) = rows[i];
        let (b50, b95) = match &platform {
            Some((_, _, rows)) => (format!("{:.2}", rows[i].0), format!("{:.2}", rows[i].1)),
            None => ("-".into(), "-".into()),
        };
        println!("| `{path}` | {p50:.2} | {p95:.2} | {b50} | {b95} | {queries} |");
        let platform_p95 = platform.as_ref().map_or(0.0, |(_, _, rows)| rows[i].1);
        if p95.max(platform_p95) > worst.0 {
            worst = (p95.max(platform_p95), path);
        }
    }
    println!(
        "\ntarget: every list page p95 < 50 ms at both points: worst {:.2} ms ({}) -> {}",
        worst.0,
        worst.1,
        if worst.0 < 50.0 { "met" } else { "NOT met" }
    );
    println!("\nOther operations, Acme ({key_count} keys) beside Globex (a handful), server time p50 / p95 ms:");
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
