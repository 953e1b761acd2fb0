//! How fast a change made through the management API reaches another instance (issue 20):
//! two application instances share one database; a management token creates a key through
//! `POST /api/v1/keys` on the first, then, round after round, `POST …/deactivate` on the
//! first and verification on the second until the second refuses the key (and
//! `…/reactivate` until it accepts it again). Revoking a token is timed the same way: from
//! the revocation's commit until the second instance's management API answers 401.
//!
//! Run with `cargo bench --bench propagation` (release build). `PROPAGATION_ROUNDS` (30).
//! The second instance learns of each change from PostgreSQL's `NOTIFY` (see
//! `keys::verifier::listener`); the target is under a second. It exits non-zero if any
//! change took longer.

use std::time::{Duration, Instant};

use diesel::Connection;
use keyward::{
    db::models::{User, management_token::TokenTenant},
    domain::TokenScopes,
    services::{
        Actor,
        keys::KeyName,
        management_tokens::{self, NewToken},
    },
};
use serde_json::{Value, json};

#[path = "common/app.rs"]
#[expect(dead_code, reason = "this benchmark creates its key through the API, not with the key helper")]
mod app;
use app::{DemoCluster, Setup, application, serve};

const TARGET: Duration = Duration::from_secs(1);
/// The longest one poll waits before the change counts as not propagated.
const GIVE_UP: Duration = Duration::from_secs(5);

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// A management token of `creator` with every scope, made as the operator's command makes it.
fn token(conn: &mut diesel::PgConnection, hasher: &keyward::keys::KeyHasher, creator: &User, name: &str) -> String {
    let new = NewToken {
        name: KeyName::parse(name).unwrap(),
        scopes: TokenScopes::parse(["keys:read", "keys:write", "users:read", "users:access", "audit:read"]).unwrap(),
        cidrs: vec![],
        lifetime_days: 30,
    };
    let actor = Actor::system("create-management-token");
    let (_, secret) = conn
        .transaction(|conn| management_tokens::create(conn, &actor, hasher, creator.organization_id, creator.id, new))
        .unwrap();
    secret.expose().to_string()
}

/// The verification code of `secret` on `base`.
async fn verify_code(client: &reqwest::Client, base: &str, secret: &str) -> String {
    let answer: Value = client
        .post(format!("{base}/api/v1/verify"))
        .bearer_auth(secret)
        .json(&json!({}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    answer["code"].as_str().unwrap_or_default().to_string()
}

/// Polls `check` until it holds: the time it took, or `None` after [`GIVE_UP`].
async fn until(mut check: impl AsyncFnMut() -> bool) -> Option<Duration> {
    let started = Instant::now();
    while started.elapsed() < GIVE_UP {
        if check().await {
            return Some(started.elapsed());
        }
    }
    None
}

fn summary(label: &str, times: &[Option<Duration>]) -> bool {
    let mut ms: Vec<f64> = times.iter().flatten().map(|d| d.as_secs_f64() * 1000.0).collect();
    ms.sort_by(f64::total_cmp);
    let missed = times.iter().filter(|t| t.is_none_or(|d| d > TARGET)).count();
    // The nearest rank: few samples, and the tail is the point.
    let at = |p: f64| ms.get(((ms.len() as f64 * p).ceil() as usize).saturating_sub(1)).copied().unwrap_or(f64::NAN);
    println!(
        "{label:<40} {:>6} {:>9.2} {:>9.2} {:>9.2} {:>8}",
        times.len(),
        at(0.5),
        at(0.95),
        ms.last().copied().unwrap_or(f64::NAN),
        missed
    );
    missed == 0
}

fn main() {
    let rounds = env_number("PROPAGATION_ROUNDS", 30) as usize;
    let demo_cluster = DemoCluster::start("propagation-cluster");
    let mut conn = demo_cluster.connect();
    let alice = User::find_by_email(&mut conn, "alice@acme.example").unwrap().expect("the demo administrator");
    let main_token = token(&mut conn, &demo_cluster.hasher, &alice, "Propagation");
    let (url, secret) = (&demo_cluster.url, &demo_cluster.secret);

    let (deactivations, reactivations, revocations) = actix_web::rt::System::new().block_on(async {
        let mut bases = Vec::new();
        let mut handles = Vec::new();
        for _ in 0..2 {
            let setup = Setup {
                workers: 1,
                verify_cache: true,
                usage_recording: true,
                checkout_timeout: Duration::from_secs(2),
                statement_timeout: Duration::from_secs(5),
            };
            let (addr, handle) = serve(application(url, secret, setup));
            bases.push(format!("http://{addr}"));
            handles.push(handle);
        }
        let (first, second) = (&bases[0], &bases[1]);
        let client = reqwest::Client::new();
        let created: Value = client
            .post(format!("{first}/api/v1/keys"))
            .bearer_auth(&main_token)
            .json(&json!({ "name": "Propagation", "owner": { "type": "user", "id": alice.id } }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let (public_id, key) = (
            created["id"].as_str().unwrap_or_else(|| panic!("the key was created: {created}")).to_string(),
            created["secret"].as_str().unwrap().to_string(),
        );
        until(async || verify_code(&client, second, &key).await == "VALID").await.expect("the key verifies");

        let (mut deactivations, mut reactivations) = (Vec::new(), Vec::new());
        for _ in 0..rounds {
            for (action, wanted, times) in
                [("deactivate", false, &mut deactivations), ("reactivate", true, &mut reactivations)]
            {
                let response = client
                    .post(format!("{first}/api/v1/keys/{public_id}/{action}"))
                    .bearer_auth(&main_token)
                    .json(&json!({}))
                    .send()
                    .await
                    .unwrap();
                assert!(response.status().is_success(), "{action}: {}", response.status());
                let took = until(async || (verify_code(&client, second, &key).await == "VALID") == wanted).await;
                times.push(took);
            }
        }

        let mut revocations = Vec::new();
        for round in 0..rounds.min(10) {
            let revoked = token(&mut conn, &demo_cluster.hasher, &alice, &format!("Revoked {round}"));
            let on_second = async || {
                let response =
                    client.get(format!("{second}/api/v1/keys?limit=1")).bearer_auth(&revoked).send().await.unwrap();
                response.status()
            };
            assert!(on_second().await.is_success(), "the token works on the second instance first");
            let token_id = keyward::keys::ParsedToken::parse(&revoked).unwrap().public_id.to_string();
            conn.transaction(|conn| {
                management_tokens::revoke(
                    conn,
                    &Actor::system("bench"),
                    TokenTenant::Organization(alice.organization_id),
                    &token_id,
                )
            })
            .unwrap();
            revocations.push(until(async || on_second().await == reqwest::StatusCode::UNAUTHORIZED).await);
        }
        for handle in handles {
            handle.stop(true).await;
        }
        (deactivations, reactivations, revocations)
    });
    drop(demo_cluster);

    println!("\nPropagation to a second instance (ms, from the first instance's answer or the commit)");
    println!("{:<40} {:>6} {:>9} {:>9} {:>9} {:>8}", "change", "n", "p50", "p95", "max", "> 1 s");
    let mut met = summary("deactivate (API) → verify refuses", &deactivations);
    met &= summary("reactivate (API) → verify accepts", &reactivations);
    met &= summary("token revoked → management API 401", &revocations);
    println!(
        "target: every change on the second instance within {} s: {}",
        TARGET.as_secs(),
        if met { "met" } else { "NOT met" }
    );
    if !met {
        std::process::exit(1);
    }
}
