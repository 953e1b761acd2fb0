//! `GET /metrics`: refused without the configured bearer token (and absent without one),
//! Prometheus text that parses, verification and sign-in counters that move exactly, and
//! request histograms labelled by route pattern, never by raw path.

use std::{collections::HashMap, time::Duration};

use reqwest::{StatusCode, header};
use serde_json::json;

use crate::helpers::{SpawnOptions, TestApp, fixtures, http_client, keys, spawn_app, spawn_app_with, within};

const TOKEN: &str = "metrics-token-for-tests-0123456789";

async fn app_with_metrics() -> TestApp {
    spawn_app_with(SpawnOptions { metrics_token: Some(TOKEN.into()), ..SpawnOptions::default() }).await
}

/// One sample line: `name{label="value",…} value`.
#[derive(Debug, Clone)]
struct Sample {
    name: String,
    labels: Vec<(String, String)>,
    value: f64,
}

impl Sample {
    fn label(&self, name: &str) -> Option<&str> {
        self.labels.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

/// A scrape, parsed: every line checked against the text exposition format (0.0.4).
struct Scrape {
    text: String,
    samples: Vec<Sample>,
    types: HashMap<String, String>,
}

impl Scrape {
    /// The value of the sample `name` with exactly these labels (0 if absent).
    fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.samples
            .iter()
            .find(|s| {
                s.name == name && s.labels.len() == labels.len() && labels.iter().all(|(k, v)| s.label(k) == Some(v))
            })
            .map_or(0.0, |s| s.value)
    }

    fn verifications(&self, code: &str) -> f64 {
        self.value("keyward_verifications_total", &[("code", code)])
    }

    fn sign_ins(&self, step: &str, outcome: &str) -> f64 {
        self.value("keyward_sign_ins_total", &[("step", step), ("outcome", outcome)])
    }
}

fn is_metric_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

fn is_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Parses `{a="x",b="y\"z"}` at the start of `rest`: the labels and what follows.
fn parse_labels(rest: &str, line: &str) -> (Vec<(String, String)>, String) {
    let mut labels = Vec::new();
    let mut chars = rest.strip_prefix('{').expect("labels open with {").chars().peekable();
    loop {
        if chars.peek() == Some(&'}') {
            chars.next();
            break;
        }
        let name: String = chars.by_ref().take_while(|c| *c != '=').collect();
        assert!(is_label_name(&name), "label name {name:?} in {line:?}");
        assert_eq!(chars.next(), Some('"'), "label value is quoted in {line:?}");
        let mut value = String::new();
        loop {
            match chars.next().unwrap_or_else(|| panic!("unterminated label value in {line:?}")) {
                '\\' => match chars.next() {
                    Some('\\') => value.push('\\'),
                    Some('"') => value.push('"'),
                    Some('n') => value.push('\n'),
                    other => panic!("bad escape {other:?} in {line:?}"),
                },
                '"' => break,
                '\n' => panic!("raw newline in {line:?}"),
                c => value.push(c),
            }
        }
        labels.push((name, value));
        match chars.next() {
            Some(',') => {}
            Some('}') => break,
            other => panic!("expected , or }} after a label, got {other:?} in {line:?}"),
        }
    }
    (labels, chars.collect())
}

/// Parses the exposition, panicking on any line outside the format.
fn parse(text: String) -> Scrape {
    let mut samples = Vec::new();
    let mut types = HashMap::new();
    let mut helped = std::collections::HashSet::new();
    for line in text.lines() {
        if let Some(help) = line.strip_prefix("# HELP ") {
            let (name, _) = help.split_once(' ').unwrap_or_else(|| panic!("HELP without text: {line:?}"));
            assert!(is_metric_name(name) && helped.insert(name.to_string()), "one HELP per family: {line:?}");
        } else if let Some(declared) = line.strip_prefix("# TYPE ") {
            let (name, kind) = declared.split_once(' ').unwrap_or_else(|| panic!("TYPE without type: {line:?}"));
            assert!(is_metric_name(name), "{line:?}");
            assert!(["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind), "{line:?}");
            assert!(types.insert(name.to_string(), kind.to_string()).is_none(), "one TYPE per family: {line:?}");
        } else {
            assert!(!line.starts_with('#') && !line.is_empty(), "unexpected line {line:?}");
            let name_end = line.find(['{', ' ']).unwrap_or_else(|| panic!("sample without value: {line:?}"));
            let name = &line[..name_end];
            assert!(is_metric_name(name), "{line:?}");
            let (labels, rest) = if line[name_end..].starts_with('{') {
                parse_labels(&line[name_end..], line)
            } else {
                (Vec::new(), line[name_end..].to_string())
            };
            let value = rest.strip_prefix(' ').unwrap_or_else(|| panic!("one space before the value: {line:?}"));
            let value: f64 = match value {
                "+Inf" => f64::INFINITY,
                "-Inf" => f64::NEG_INFINITY,
                v => v.parse().unwrap_or_else(|_| panic!("value of {line:?}")),
            };
            // Each sample belongs to a declared family (histograms through their suffixes).
            let family = ["_bucket", "_sum", "_count"]
                .iter()
                .filter_map(|suffix| name.strip_suffix(suffix))
                .find(|base| types.get(*base).is_some_and(|t| t == "histogram"))
                .unwrap_or(name);
            let family = if types.contains_key(family) { family } else { name.strip_suffix("_total").unwrap_or(name) };
            assert!(
                types.contains_key(family) || types.contains_key(&format!("{family}_total")),
                "sample of an undeclared family: {line:?}"
            );
            samples.push(Sample { name: name.to_string(), labels, value });
        }
    }
    Scrape { text, samples, types }
}

async fn scrape(app: &TestApp) -> Scrape {
    let response = http_client().get(app.url("/metrics")).bearer_auth(TOKEN).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers().get(header::SET_COOKIE).is_none(), "no session for /metrics");
    let content_type = response.headers()[header::CONTENT_TYPE].to_str().unwrap().to_string();
    assert!(content_type.starts_with("text/plain; version=0.0.4"), "{content_type}");
    parse(response.text().await.unwrap())
}

#[actix_web::test]
async fn metrics_answer_only_with_the_configured_token() {
    // Without KEYWARD_METRICS_TOKEN, /metrics is an unknown page like any other.
    let plain = spawn_app().await;
    let unknown = http_client().get(plain.url("/no-such-page")).send().await.unwrap();
    let (unknown_status, unknown_type) = (unknown.status(), unknown.headers()[header::CONTENT_TYPE].clone());
    let unknown_body = unknown.text().await.unwrap();
    for authorization in [None, Some(TOKEN)] {
        let mut request = http_client().get(plain.url("/metrics"));
        if let Some(token) = authorization {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        assert_eq!((response.status(), &response.headers()[header::CONTENT_TYPE]), (unknown_status, &unknown_type));
        assert!(response.headers().get(header::WWW_AUTHENTICATE).is_none());
        assert_eq!(response.text().await.unwrap(), unknown_body, "the same page as an unknown address");
    }

    // With it: 401 and a Bearer challenge for no token, a wrong one, or another scheme.
    let app = app_with_metrics().await;
    let wrong = format!("{TOKEN}x");
    let attempts = [
        None,
        Some(format!("Bearer {wrong}")),
        Some(format!("Bearer {}", &TOKEN[..TOKEN.len() - 1])),
        Some("Bearer ".to_string()),
        Some(format!("Basic {TOKEN}")),
        Some(TOKEN.to_string()),
    ];
    for authorization in attempts {
        let mut request = http_client().get(app.url("/metrics"));
        if let Some(value) = &authorization {
            request = request.header(header::AUTHORIZATION, value);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{authorization:?}");
        let challenge = response.headers()[header::WWW_AUTHENTICATE].to_str().unwrap();
        assert!(challenge.starts_with("Bearer"), "{challenge}");
        assert!(response.headers().get(header::SET_COOKIE).is_none(), "no session for /metrics");
        let body = response.text().await.unwrap();
        assert!(!body.contains("keyward_"), "nothing is disclosed: {body}");
    }
    // The scheme is case-insensitive, as for the verification API.
    let response =
        http_client().get(app.url("/metrics")).header(header::AUTHORIZATION, format!("bearer {TOKEN}")).send().await;
    assert_eq!(response.unwrap().status(), StatusCode::OK);
    let scrape = scrape(&app).await;
    for family in [
        "keyward_verifications",
        "keyward_sign_ins",
        "keyward_key_cache_hits",
        "keyward_key_cache_misses",
        "keyward_key_cache_entries",
        "keyward_key_listener_connected",
        "keyward_db_pool_connections_in_use",
        "keyward_db_pool_waiting",
        "keyward_http_request_duration_seconds",
    ] {
        assert!(
            scrape.types.contains_key(family) || scrape.types.contains_key(&format!("{family}_total")),
            "{family} is exposed:\n{}",
            scrape.text
        );
    }
}

#[actix_web::test]
async fn verifications_move_exactly_their_codes_counters_and_the_cache_counts() {
    let app = app_with_metrics().await;
    let owner = {
        let mut conn = app.conn();
        let org = fixtures::organization(&mut conn, "acme");
        fixtures::reader(&mut conn, &org, "bob@acme.test")
    };
    let (_, secret) = keys::personal(&mut app.conn(), &app.hasher, &owner, "Dispatch");
    let verify = async |key: &str, body: serde_json::Value| {
        let response = http_client().post(app.url("/api/v1/verify")).bearer_auth(key).json(&body).send().await;
        let answer: serde_json::Value = response.unwrap().json().await.unwrap();
        answer["code"].as_str().unwrap().to_string()
    };

    // The cache vouches for keys once its listener is connected: wait for that, then until
    // a verification of the key is answered from memory.
    let connected = within(Duration::from_secs(10), async || {
        scrape(&app).await.value("keyward_key_listener_connected", &[]) == 1.0
    })
    .await;
    assert!(connected, "the key listener connects");
    let cached = within(Duration::from_secs(10), async || {
        let before = scrape(&app).await.value("keyward_key_cache_hits_total", &[]);
        assert_eq!(verify(&secret, json!({})).await, "VALID");
        scrape(&app).await.value("keyward_key_cache_hits_total", &[]) == before + 1.0
    })
    .await;
    assert!(cached, "a verification of a known key is a cache hit");

    let before = scrape(&app).await;
    assert_eq!(verify(&secret, json!({ "action": "positions.read" })).await, "VALID");
    assert_eq!(verify(&secret, json!({ "action": "vehicles.write" })).await, "FORBIDDEN_ACTION");
    assert_eq!(verify("kw_live_not-a-key", json!({})).await, "NOT_FOUND");
    assert_eq!(verify("kw_live_still-not-a-key", json!({})).await, "NOT_FOUND");
    let after = scrape(&app).await;

    for (code, moved) in [
        ("VALID", 1.0),
        ("FORBIDDEN_ACTION", 1.0),
        ("NOT_FOUND", 2.0),
        ("EXPIRED", 0.0),
        ("DISABLED", 0.0),
        ("FORBIDDEN_ASSET", 0.0),
        ("FORBIDDEN_IP", 0.0),
        ("RATE_LIMITED", 0.0),
        ("UNAVAILABLE", 0.0),
    ] {
        assert_eq!(after.verifications(code) - before.verifications(code), moved, "{code}");
    }
    // Malformed keys are refused before any lookup; the two others were served from memory.
    let hits = after.value("keyward_key_cache_hits_total", &[]) - before.value("keyward_key_cache_hits_total", &[]);
    let misses =
        after.value("keyward_key_cache_misses_total", &[]) - before.value("keyward_key_cache_misses_total", &[]);
    assert_eq!((hits, misses), (2.0, 0.0));
    assert!(after.value("keyward_key_cache_entries", &[]) >= 1.0);
    assert!(after.value("keyward_db_pool_connections_max", &[]) >= 1.0);
    assert!(after.value("keyward_db_pool_waiting", &[]) >= 0.0);
    assert!(!after.text.contains(&secret), "a key never appears in the metrics");
}

#[actix_web::test]
async fn sign_in_outcomes_are_counted() {
    let app = app_with_metrics().await;
    {
        let mut conn = app.conn();
        let org = fixtures::organization(&mut conn, "acme");
        fixtures::reader(&mut conn, &org, "bob@acme.test");
    }
    let before = scrape(&app).await;
    let response = app.client().login("bob@acme.test", "not the password").await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let failed = scrape(&app).await;
    assert_eq!(failed.sign_ins("password", "failure") - before.sign_ins("password", "failure"), 1.0);
    assert_eq!(failed.sign_ins("password", "success"), before.sign_ins("password", "success"));

    app.signed_in("bob@acme.test").await;
    let signed_in = scrape(&app).await;
    assert_eq!(signed_in.sign_ins("password", "success") - failed.sign_ins("password", "success"), 1.0);
    assert_eq!(signed_in.sign_ins("password", "failure"), failed.sign_ins("password", "failure"));
    assert!(!signed_in.text.contains("bob@acme.test"), "no account appears in the metrics");
}

#[actix_web::test]
async fn request_durations_are_labelled_by_route_pattern_never_by_path() {
    let app = app_with_metrics().await;
    let owner = {
        let mut conn = app.conn();
        let org = fixtures::organization(&mut conn, "acme");
        fixtures::reader(&mut conn, &org, "bob@acme.test")
    };
    let (key, secret) = keys::personal(&mut app.conn(), &app.hasher, &owner, "Dispatch");
    let client = app.signed_in("bob@acme.test").await;
    let path = format!("/account/keys/{}", key.public_id);
    assert_eq!(client.get(&path).await.status(), StatusCode::OK);
    assert_eq!(client.get(&path).await.status(), StatusCode::OK);
    assert_eq!(client.get("/no-such-page-4711").await.status(), StatusCode::NOT_FOUND);
    let response = http_client().post(app.url("/api/v1/verify")).bearer_auth(&secret).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);

    let scrape = scrape(&app).await;
    let count = |method: &str, route: &str| {
        scrape.value("keyward_http_request_duration_seconds_count", &[("method", method), ("route", route)])
    };
    assert!(count("GET", "/account/keys/{public_id}") >= 2.0, "{}", scrape.text);
    assert!(count("POST", "/api/v1/verify") >= 1.0, "{}", scrape.text);
    assert!(count("GET", "unmatched") >= 1.0, "{}", scrape.text);
    assert!(!scrape.text.contains(&key.public_id), "no raw path with an id:\n{}", scrape.text);
    assert!(!scrape.text.contains("4711"), "no raw path of an unknown page");

    // Every histogram's buckets are cumulative and end at +Inf with its count.
    let histogram =
        |s: &Sample| s.label("route") == Some("/account/keys/{public_id}") && s.label("method") == Some("GET");
    let buckets: Vec<&Sample> = scrape
        .samples
        .iter()
        .filter(|s| s.name == "keyward_http_request_duration_seconds_bucket" && histogram(s))
        .collect();
    assert!(buckets.len() > 2);
    assert!(buckets.windows(2).all(|w| w[0].value <= w[1].value), "cumulative buckets");
    let last = buckets.last().unwrap();
    assert_eq!(last.label("le"), Some("+Inf"));
    assert_eq!(last.value, count("GET", "/account/keys/{public_id}"));
    let sum = scrape.value(
        "keyward_http_request_duration_seconds_sum",
        &[("method", "GET"), ("route", "/account/keys/{public_id}")],
    );
    assert!(sum > 0.0);
}

#[actix_web::test]
async fn requests_waiting_for_a_pooled_connection_are_counted() {
    // A long checkout timeout: the request must still be waiting when it is looked at.
    let app = spawn_app_with(SpawnOptions {
        metrics_token: Some(TOKEN.into()),
        checkout_timeout: Duration::from_secs(60),
        ..SpawnOptions::default()
    })
    .await;
    let max = scrape(&app).await.value("keyward_db_pool_connections_max", &[]);
    // The test holds every connection of the application's pool.
    let held: Vec<_> = (0..max as usize).map(|_| app.conn()).collect();
    let url = app.url("/readyz");
    let pending = actix_web::rt::spawn(async move { http_client().get(url).send().await.unwrap().status() });
    let waiting = within(Duration::from_secs(20), async || {
        let scrape = scrape(&app).await;
        scrape.value("keyward_db_pool_waiting", &[]) == 1.0
            && scrape.value("keyward_db_pool_connections_in_use", &[]) == max
    })
    .await;
    assert!(waiting, "the request waits for a connection, and the pool is all in use");
    drop(held);
    assert_eq!(pending.await.unwrap(), StatusCode::OK);
    assert!(
        within(Duration::from_secs(20), async || scrape(&app).await.value("keyward_db_pool_waiting", &[]) == 0.0).await
    );
}
