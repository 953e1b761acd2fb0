//! The management API's rate limit is one per token for the whole deployment: instances on
//! one database count into the same window, with the configured limit announced in
//! `RateLimit-Policy`, what is left in `RateLimit`, and `Retry-After` on 429; refused calls
//! count too, so a token's `access.denied` events never outnumber its quota.

use std::time::Duration;

use chrono::Timelike;
use diesel::prelude::*;
use keyward::{db::schema::audit_events, secrets::MasterSecret};
use reqwest::{Method, StatusCode, header::HeaderMap};
use serde_json::json;

use crate::{
    fixtures,
    helpers::{SpawnOptions, TestApp, spawn_app_with},
    management_api::{call, token},
};

const LIMIT: u32 = 5;

/// Two instances of one deployment on one database, each allowing `LIMIT` per minute, their
/// clocks moved together to the start of a minute so that the test's few requests fall into
/// one window (it has almost a minute of real time for them).
async fn deployment() -> (TestApp, TestApp) {
    let secret = MasterSecret::generate();
    let options = SpawnOptions { secret: Some(secret), management_rate_per_minute: LIMIT, ..SpawnOptions::default() };
    let app = spawn_app_with(options.clone()).await;
    let twin = spawn_app_with(SpawnOptions { database: Some(app.database.clone()), ..options }).await;
    let now = app.state.clock.now();
    let to_next_minute = Duration::from_secs(60 - u64::from(now.second()))
        - Duration::from_nanos(u64::from(now.nanosecond()))
        + Duration::from_millis(100);
    app.advance(to_next_minute);
    twin.advance(to_next_minute);
    (app, twin)
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> &'a str {
    headers.get(name).map(|v| v.to_str().unwrap()).unwrap_or_default()
}

/// `t=` of the `RateLimit` field.
fn reset_secs(headers: &HeaderMap) -> u64 {
    header(headers, "ratelimit").rsplit("t=").next().unwrap().parse().unwrap()
}

#[actix_web::test]
async fn requests_spread_over_two_instances_share_one_limit() {
    let (app, twin) = deployment().await;
    let admin = fixtures::organization_with_admin(&mut app.conn(), "acme").1;
    let reader = token(&app, &admin, &["keys:read"]);
    let other = token(&app, &admin, &["keys:read"]);

    for n in 1..=LIMIT {
        let instance = if n % 2 == 0 { &twin } else { &app };
        let (status, headers, body) = call(instance, Method::GET, "/api/v1/keys", &reader, None, &[]).await;
        assert_eq!(status, StatusCode::OK, "request {n}: {body}");
        assert_eq!(header(&headers, "ratelimit-policy"), format!("\"per-token\";q={LIMIT};w=60"));
        assert!(
            header(&headers, "ratelimit").starts_with(&format!("\"per-token\";r={};t=", LIMIT - n)),
            "request {n}: {headers:?}"
        );
        assert!((1..=60).contains(&reset_secs(&headers)), "{headers:?}");
    }
    for instance in [&app, &twin] {
        let (status, headers, problem) = call(instance, Method::GET, "/api/v1/keys", &reader, None, &[]).await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{problem}");
        let retry_after: u64 = header(&headers, "retry-after").parse().unwrap();
        assert!((1..=60).contains(&retry_after), "{headers:?}");
        assert_eq!(retry_after, reset_secs(&headers));
        assert!(header(&headers, "ratelimit").starts_with("\"per-token\";r=0;t="), "{headers:?}");
        assert_eq!(header(&headers, "ratelimit-policy"), format!("\"per-token\";q={LIMIT};w=60"));
        assert_eq!(problem["status"], 429);
    }
    // Once an instance knows the token is over, it refuses without counting in the database:
    // one write per instance past the limit, however many more requests come.
    for instance in [&app, &twin, &app, &twin] {
        assert_eq!(
            call(instance, Method::GET, "/api/v1/keys", &reader, None, &[]).await.0,
            StatusCode::TOO_MANY_REQUESTS
        );
    }
    let counted: Vec<i32> = keyward::db::schema::management_rate_windows::table
        .select(keyward::db::schema::management_rate_windows::requests)
        .load(&mut *app.conn())
        .unwrap();
    assert_eq!(counted, [LIMIT as i32 + 2]);
    // Another token has its own quota.
    assert_eq!(call(&twin, Method::GET, "/api/v1/keys", &other, None, &[]).await.0, StatusCode::OK);

    // The next window starts afresh (on the clocks of both instances).
    for instance in [&app, &twin] {
        instance.advance(Duration::from_secs(60));
    }
    let (status, headers, _) = call(&twin, Method::GET, "/api/v1/keys", &reader, None, &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert!(header(&headers, "ratelimit").starts_with(&format!("\"per-token\";r={};t=", LIMIT - 1)), "{headers:?}");

    // The job deletes the windows that are over, and keeps the current one.
    app.advance(Duration::from_secs(60));
    let windows =
        || -> i64 { keyward::db::schema::management_rate_windows::table.count().get_result(&mut *app.conn()).unwrap() };
    assert_eq!(windows(), 3, "two windows of the reader, one of the other token");
    let now = app.state.clock.now();
    keyward::services::management_rate::prune_job(&mut app.conn(), now).unwrap();
    assert_eq!(windows(), 1, "the window just over is kept, the older ones go");
}

#[actix_web::test]
async fn refused_calls_spend_the_quota_so_a_token_cannot_write_more_denials_than_its_limit() {
    let (app, twin) = deployment().await;
    let admin = fixtures::organization_with_admin(&mut app.conn(), "acme").1;
    let reader = token(&app, &admin, &["keys:read"]);
    let mut statuses = Vec::new();
    for n in 0..LIMIT + 3 {
        let instance = if n % 2 == 0 { &app } else { &twin };
        let body = Some(json!({ "name": "Nope" }));
        statuses.push(call(instance, Method::POST, "/api/v1/keys", &reader, body, &[]).await.0);
    }
    let forbidden = statuses.iter().filter(|s| **s == StatusCode::FORBIDDEN).count();
    let limited = statuses.iter().filter(|s| **s == StatusCode::TOO_MANY_REQUESTS).count();
    assert_eq!((forbidden, limited), (LIMIT as usize, 3), "{statuses:?}");
    let denied: i64 = audit_events::table
        .filter(audit_events::action.eq("access.denied"))
        .count()
        .get_result(&mut *app.conn())
        .unwrap();
    assert_eq!(denied, i64::from(LIMIT), "one event per 403, none for the 429s");
}
