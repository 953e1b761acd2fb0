//! The application as the benchmarks run it, and keys whose secrets they know.

use std::time::Duration;

use diesel::{Connection, PgConnection};
use keyward::{
    db::{Database, PoolOptions, models::User},
    keys::{Environment, KeyHasher},
    secrets::MasterSecret,
    services::{
        Actor,
        keys::{ActionScope, AssetScope, Created, KeySettings, NewKeyOwner, NewKeyRequest, lifecycle},
    },
    startup::{AppSettings, Application},
};

/// How the benchmark wants the application: server workers, the key cache, and the pool's
/// checkout and statement timeouts.
pub struct Setup {
    pub workers: usize,
    pub verify_cache: bool,
    pub checkout_timeout: Duration,
    pub statement_timeout: Duration,
}

/// The application on `url`, on a free port of 127.0.0.1 (not yet running).
pub fn application(url: &str, secret: &MasterSecret, setup: Setup) -> Application {
    let db = Database::new(
        url,
        &PoolOptions { size: 10, checkout_timeout: setup.checkout_timeout, statement_timeout: setup.statement_timeout },
    );
    Application::build(AppSettings {
        db,
        keys: secret.derive(),
        addr: "127.0.0.1:0".parse().unwrap(),
        cookie_secure: false,
        trust_forwarded: false,
        session_idle: Duration::from_secs(3600),
        session_max: Duration::from_secs(3600),
        workers: Some(setup.workers),
        verify_cache: setup.verify_cache,
        invalid_attempts_per_minute: 1_000_000,
    })
    .unwrap()
}

/// `count` personal keys (every action, every asset, no expiry) of the user `owner_email`,
/// created through the key service: `(public id, secret)` of each.
pub fn keys_with_secrets(
    conn: &mut PgConnection,
    hasher: &KeyHasher,
    owner_email: &str,
    count: usize,
) -> Vec<(String, String)> {
    let owner = User::find_by_email(conn, owner_email).unwrap().expect("the key owner exists");
    (0..count)
        .map(|i| {
            let request = NewKeyRequest {
                owner: NewKeyOwner::Personal { user_id: owner.id, organization_id: owner.organization_id },
                name: format!("Benchmark key {i}"),
                environment: Environment::Live,
                settings: KeySettings {
                    comment: String::new(),
                    actions: ActionScope::All,
                    assets: AssetScope::All,
                    cidrs: vec![],
                    expires_at: None,
                    proxy_user_id: None,
                },
                form_token: None,
            };
            let created = conn.transaction(|conn| lifecycle::create(conn, &Actor::system("bench"), hasher, request));
            match created.unwrap() {
                Created::New { key, secret } => (key.public_id, secret.expose().to_string()),
                Created::Replayed(_) => unreachable!("no form token"),
            }
        })
        .collect()
}
