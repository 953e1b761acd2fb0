//! The application as the benchmarks run it: a private cluster with the demo data, the
//! server on a free port, and keys whose secrets they know.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use actix_web::dev::ServerHandle;
use diesel::{Connection, PgConnection};
use keyward::{
    db::{Database, PoolOptions, models::User},
    devdb::{DATABASE_NAME, Durability, EmbeddedCluster},
    domain::NewPassword,
    keys::{Environment, KeyHasher},
    secrets::MasterSecret,
    services::{
        Actor, demo,
        keys::{ActionChoice, Created, ExpiryChoice, KeyInput, KeyName, NewKeyOwner, NewKeyRequest, lifecycle},
    },
    startup::{AppSettings, Application},
};

/// A throwaway PostgreSQL cluster in `target/<name>` with the schema and the demo data set,
/// and a fresh master secret; stopped and removed when dropped.
pub struct DemoCluster {
    pub cluster: EmbeddedCluster,
    pub url: String,
    pub secret: MasterSecret,
    pub hasher: KeyHasher,
    root: PathBuf,
}

impl DemoCluster {
    pub fn start(name: &str) -> Self {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target").join(name);
        let _ = std::fs::remove_dir_all(&root);
        let cluster = EmbeddedCluster::start(&root, Durability::Throwaway).expect("start the benchmark cluster");
        let url = cluster.connection_string(DATABASE_NAME);
        let mut conn = PgConnection::establish(&url).unwrap();
        keyward::db::run_migrations(&mut conn).unwrap();
        let password = NewPassword::parse(demo::DEMO_PASSWORD).unwrap();
        demo::seed(&mut conn, &keyward::auth::password::hash_now(&password)).unwrap();
        // The benchmarks create keys far faster than a person: lift the creation rate.
        diesel::RunQueryDsl::execute(
            diesel::sql_query("UPDATE organizations SET key_creations_per_hour = 1000000"),
            &mut conn,
        )
        .unwrap();
        let secret = MasterSecret::generate();
        let hasher = KeyHasher::new(secret.derive().key_pepper);
        Self { cluster, url, secret, hasher, root }
    }

    pub fn connect(&self) -> PgConnection {
        PgConnection::establish(&self.url).unwrap()
    }
}

impl Drop for DemoCluster {
    fn drop(&mut self) {
        self.cluster.stop();
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// Runs `app` on the current actix system: its address and a handle to stop it.
pub fn serve(app: Application) -> (SocketAddr, ServerHandle) {
    let (addr, handle) = (app.local_addr(), app.handle());
    actix_web::rt::spawn(app.run_until_stopped());
    (addr, handle)
}

/// How the benchmark wants the application: server workers, the key cache, and the pool's
/// checkout and statement timeouts.
pub struct Setup {
    pub workers: usize,
    pub verify_cache: bool,
    /// Count verifications per key and hour (the usage tally).
    pub usage_recording: bool,
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
        public_origin: None,
        cookie_secure: false,
        trust_forwarded: keyward::domain::client_ip::TrustForwarded::No,
        session_idle: Duration::from_secs(3600),
        session_max: Duration::from_secs(3600),
        workers: Some(setup.workers),
        password_hashers: 2,
        verify_cache: setup.verify_cache,
        invalid_attempts_per_minute: 1_000_000,
        management_rate_per_minute: 1_000_000,
        run_jobs: false,
        usage_recording: setup.usage_recording,
        clock: keyward::clock::Clock::system(),
        // Metrics are always counted; the token only lets `/metrics` answer.
        metrics_token: Some(keyward::metrics::MetricsToken::new("benchmark")),
        mail: None,
        webhook_allow_private: false,
    })
    .unwrap()
}

/// `count` personal keys (every action, every asset, expiring in 30 days: the demo policy
/// demands an expiry) of the user `owner_email`,
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
                name: KeyName::parse(&format!("Benchmark key {i}")).unwrap(),
                environment: Environment::Live,
                input: KeyInput { actions: ActionChoice::All, expiry: ExpiryChoice::InDays(30), ..KeyInput::default() },
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
