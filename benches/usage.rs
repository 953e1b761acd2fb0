//! The usage benchmark (issue 18): what counting costs on the verification path, how long the
//! flush of 10,000 active keys takes, and the server time of a busy key's page over 90 days
//! of hourly counts.
//!
//! Run with `cargo bench --bench usage` (release build). It starts a private PostgreSQL
//! cluster in `target/`, seeds the demo data set and `BENCH_KEYS` (10,000) keys in Acme, and:
//! 1. counts `BENCH_RECORDS` (2,000,000) verifications in memory on one thread, spread over
//!    the 10,000 keys, three actions and two outcomes (nanoseconds per count);
//! 2. writes the counts of 10,000 active keys (three actions, two outcomes, one address
//!    each: 60,000 count rows) `BENCH_FLUSHES` (5) times, each one batch (ms per flush);
//! 3. fills 90 days of hourly counts for one busy key (every action of the catalog, four outcomes, some with
//!    the old secret) and 13 months of daily ones, and asks its page for
//!    each period `BENCH_REQUESTS` (40) times after a warm-up: server time (`Server-Timing`)
//!    p50 / p95 and the number of queries.

use std::time::{Duration, Instant};

use chrono::Utc;
use diesel::{RunQueryDsl, sql_types::BigInt};
use keyward::{
    db::models::Organization,
    keys::verifier::{
        Code,
        tally::{self, UsageTally, Use},
    },
    services::{demo, demo_bulk},
};

#[expect(dead_code, reason = "the helpers are shared by the benchmarks; this one uses part of them")]
mod common;
use common::{
    app::{DemoCluster, Setup, application, keys_with_secrets, serve},
    http::{Session, percentile, server_timing},
};

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

#[derive(diesel::QueryableByName)]
struct Id {
    #[diesel(sql_type = BigInt)]
    id: i64,
}

fn main() {
    let key_count = env_number("BENCH_KEYS", 10_000) as i64;
    let records = env_number("BENCH_RECORDS", 2_000_000) as usize;
    let flushes = env_number("BENCH_FLUSHES", 5) as usize;
    let requests = env_number("BENCH_REQUESTS", 40) as usize;
    let demo_cluster = DemoCluster::start("bench-usage-cluster");
    let (url, secret, hasher) = (&demo_cluster.url, &demo_cluster.secret, &demo_cluster.hasher);
    let mut conn = demo_cluster.connect();
    let acme = Organization::find_by_slug(&mut conn, demo::DEMO_ORG_SLUG).unwrap();
    demo_bulk::fill(&mut conn, acme.id, 100, key_count).unwrap();
    let ids: Vec<i64> = diesel::sql_query(format!("SELECT id FROM api_keys ORDER BY id DESC LIMIT {key_count}"))
        .load::<Id>(&mut conn)
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect();

    // 1. Counting in memory.
    let actions = ["positions.read", "vehicles.read", "reports.read"];
    let codes = [Code::Valid, Code::ForbiddenAsset];
    let now = Utc::now();
    let counter = UsageTally::new(true);
    let started = Instant::now();
    for i in 0..records {
        counter.record(Use {
            key_id: ids[i % ids.len()],
            at: now,
            code: codes[(i / 7) % 2],
            action: actions[(i / 3) % 3],
            previous: false,
            address: Some(std::net::IpAddr::from([10, 0, (i % 3) as u8, 1])),
        });
    }
    let record_ns = started.elapsed().as_nanos() as f64 / records as f64;

    // 2. Flushing 10,000 active keys.
    let mut flush_ms = Vec::new();
    let mut rows = 0;
    for _ in 0..flushes {
        let batch = {
            let counter = UsageTally::new(true);
            for &key_id in &ids {
                for action in actions {
                    for code in codes {
                        let address = Some(std::net::IpAddr::from([192, 0, 2, 1]));
                        counter.record(Use { key_id, at: now, code, action, previous: false, address });
                    }
                }
            }
            counter.take()
        };
        rows = batch.keys() * actions.len() * codes.len();
        let started = Instant::now();
        tally::write(&mut conn, &batch).unwrap();
        flush_ms.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    flush_ms.sort_by(|a, b| a.partial_cmp(b).unwrap());

    // 3. A busy key's page.
    let (busy_public_id, _) = keys_with_secrets(&mut conn, hasher, "alice@acme.example", 1).remove(0);
    let busy: i64 = diesel::sql_query(format!("SELECT id FROM api_keys WHERE public_id = '{busy_public_id}'"))
        .get_result::<Id>(&mut conn)
        .unwrap()
        .id;
    let filled = Instant::now();
    diesel::sql_query(format!(
        "INSERT INTO key_usage_hourly (api_key_id, hour, code, action, previous_secret, count) \
         SELECT {busy}, date_trunc('hour', now()) - make_interval(hours => h), c.code, a.code, \
                c.code = 'VALID' AND h % 11 = 0, 1 + (h * 13 + length(a.code) * 7) % 500 \
         FROM generate_series(0, 90 * 24 - 1) h, \
              (SELECT code FROM api_actions ORDER BY code LIMIT 10) a, \
              (VALUES ('VALID'), ('FORBIDDEN_ASSET'), ('FORBIDDEN_IP'), ('NOT_FOUND')) c(code) \
         WHERE c.code = 'VALID' OR (h + length(a.code)) % 3 = 0"
    ))
    .execute(&mut conn)
    .unwrap();
    diesel::sql_query(format!(
        "INSERT INTO key_usage_daily (api_key_id, day, code, action, previous_secret, count) \
         SELECT api_key_id, (hour AT TIME ZONE 'UTC')::date, code, action, previous_secret, sum(count) \
         FROM key_usage_hourly WHERE api_key_id = {busy} GROUP BY 1, 2, 3, 4, 5 \
         UNION ALL \
         SELECT {busy}, (now() - make_interval(days => d))::date, 'VALID', a.code, false, 1000 + d \
         FROM generate_series(91, 395) d, (SELECT code FROM api_actions ORDER BY code LIMIT 10) a"
    ))
    .execute(&mut conn)
    .unwrap();
    diesel::sql_query(format!(
        "INSERT INTO key_usage_addresses (api_key_id, address, first_seen_at, last_seen_at, uses) \
         SELECT {busy}, ('198.51.100.' || a)::inet, now() - interval '80 days', now() - make_interval(mins => a), 1000 * a \
         FROM generate_series(1, 10) a"
    ))
    .execute(&mut conn)
    .unwrap();
    let hourly_rows: i64 =
        diesel::sql_query(format!("SELECT count(*) AS id FROM key_usage_hourly WHERE api_key_id = {busy}"))
            .get_result::<Id>(&mut conn)
            .unwrap()
            .id;
    let fill_seconds = filled.elapsed().as_secs_f64();
    diesel::sql_query("VACUUM ANALYZE").execute(&mut conn).unwrap();
    // The same page of a key without any usage, for the share of the usage panel.
    let (quiet_public_id, _) = keys_with_secrets(&mut conn, hasher, "alice@acme.example", 1).remove(0);
    // The panel's queries alone, on one connection (database time without the HTTP path).
    let queries_ms = {
        use keyward::db::models::key_usage;
        let now = Utc::now();
        let mut times = Vec::new();
        for _ in 0..requests {
            let started = Instant::now();
            key_usage::buckets(&mut conn, busy, now - chrono::Duration::days(30), 86_400).unwrap();
            let day = |days: i64| (now - chrono::Duration::days(days)).date_naive();
            key_usage::actions(&mut conn, busy, day(90), day(30)).unwrap();
            key_usage::addresses(&mut conn, busy).unwrap();
            times.push(started.elapsed().as_secs_f64() * 1000.0);
        }
        times.sort_by(|a, b| a.partial_cmp(b).unwrap());
        (percentile(&times, 0.5), percentile(&times, 0.95))
    };

    let pages = actix_web::rt::System::new().block_on(async {
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
        let mut results = Vec::new();
        let paths = ["24h", "7d", "30d"]
            .map(|period| (period, format!("/admin/keys/{busy_public_id}?period={period}")))
            .into_iter()
            .chain([
                ("no usage", format!("/admin/keys/{quiet_public_id}")),
                // Asked again last: the first pages measured can share the machine with the
                // database's own work after the seeding.
                ("24h again", format!("/admin/keys/{busy_public_id}?period=24h")),
            ]);
        for (period, path) in paths {
            for _ in 0..3 {
                let response = alice.get(&path).await;
                assert_eq!(response.status(), 200, "{path}");
                response.bytes().await.unwrap();
            }
            let mut times = Vec::new();
            let mut queries = 0;
            for _ in 0..requests {
                let response = alice.get(&path).await;
                let (millis, q) = server_timing(&response);
                response.bytes().await.unwrap();
                times.push(millis);
                queries = q;
            }
            times.sort_by(|a, b| a.partial_cmp(b).unwrap());
            results.push((period, percentile(&times, 0.5), percentile(&times, 0.95), queries));
        }
        handle.stop(true).await;
        results
    });
    drop(demo_cluster);

    println!("\nUsage benchmark, release build, {} CPUs", std::thread::available_parallelism().map_or(1, |n| n.get()));
    println!(
        "counting in memory: {record_ns:.0} ns per verification ({records} counts over {} keys, one thread)",
        ids.len()
    );
    println!(
        "flush of {} active keys ({rows} count rows, {} addresses), one batch: p50 {:.0} ms, max {:.0} ms over {flushes} flushes",
        ids.len(),
        ids.len(),
        percentile(&flush_ms, 0.5),
        flush_ms.last().copied().unwrap_or(f64::NAN)
    );
    println!(
        "busy key: {hourly_rows} hourly rows over 90 days, 13 months of daily rows (filled in {fill_seconds:.1} s); key page, server time:"
    );
    println!("{:<10} {:>8} {:>8} {:>8}", "period", "p50 ms", "p95 ms", "queries");
    for (period, p50, p95, queries) in &pages {
        println!("{period:<10} {p50:>8.1} {p95:>8.1} {queries:>8}");
    }
    println!(
        "the usage panel's queries (30 days) on one connection: p50 {:.1} ms, p95 {:.1} ms",
        queries_ms.0, queries_ms.1
    );
    let worst = pages.iter().filter(|p| p.0 != "no usage").map(|p| p.2).fold(0.0, f64::max);
    println!(
        "\ntarget: busy key page < 50 ms server time (p95): {worst:.1} ms -> {}",
        if worst < 50.0 { "met" } else { "NOT met" }
    );
}
