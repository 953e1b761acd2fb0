//! The test harness: a shared PostgreSQL server (the embedded mechanism of `keyward::devdb`
//! in `target/tmp`, or `TEST_DATABASE_URL`), a migrated template database, `spawn_app()`
//! building the real `Application` on port 0 against a fresh copy of it, and an HTTP client
//! that keeps the session cookie where tests can see and replay it.
//!
//! As in the embedded default, the tables belong to the server's superuser (who migrates)
//! and the application runs as the least-privileged `keyward_app` role, so every test also
//! checks that the application needs no more than that role is granted.

use std::{
    collections::HashMap,
    net::SocketAddr,
    path::PathBuf,
    sync::{Arc, LazyLock, Mutex, OnceLock},
    time::Duration,
};

use diesel::{Connection, PgConnection, RunQueryDsl};
use keyward::{
    db::{
        Database, PoolOptions,
        privileges::{self, APP_ROLE},
    },
    devdb::{Durability, EmbeddedCluster},
    domain::NewPassword,
    secrets::MasterSecret,
    startup::{AppSettings, Application},
};
use reqwest::{Response, StatusCode, header};

pub(crate) use crate::{
    fixtures::{self, keys},
    page::Page,
};

/// Password of every account the fixtures create.
pub const PASSWORD: &str = "correct horse battery";

/// Hashing once saves ~30 ms per fixture account.
pub static PASSWORD_HASH: LazyLock<String> =
    LazyLock::new(|| keyward::auth::password::hash_now(&NewPassword::parse(PASSWORD).unwrap()));

/// The PostgreSQL server all tests share.
pub struct TestServer {
    embedded: Option<EmbeddedCluster>,
    /// Connection string of a database on that server, with `{db}` where the name goes: as
    /// the owner of the tables.
    pattern: String,
    /// The same as the application's least-privileged role.
    app_pattern: String,
    pub template: String,
}

static SERVER: OnceLock<TestServer> = OnceLock::new();

extern "C" fn stop_test_cluster() {
    if let Some(cluster) = SERVER.get().and_then(|s| s.embedded.as_ref())
        && cluster.started_here()
    {
        cluster.stop_now();
    }
}

impl TestServer {
    pub fn get() -> &'static TestServer {
        SERVER.get_or_init(|| {
            let (embedded, pattern, app_pattern) = match std::env::var("TEST_DATABASE_URL") {
                // On a server of the tester's, whose passwords we do not know, the app takes
                // the role on connecting (the tester's role must be a member of it).
                Ok(url) => (None, replace_database(&url, "{db}"), with_role(&replace_database(&url, "{db}"), APP_ROLE)),
                Err(_) => {
                    let root = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("keyward-test-cluster");
                    let cluster = EmbeddedCluster::start(&root, Durability::Throwaway).expect("start the test cluster");
                    let pattern = cluster.connection_string("{db}");
                    let app_pattern = cluster.connection_string_as("{db}", APP_ROLE);
                    (Some(cluster), pattern, app_pattern)
                }
            };
            if embedded.as_ref().is_some_and(EmbeddedCluster::started_here) {
                #[expect(unsafe_code, reason = "atexit is the only hook that runs after the test harness finishes")]
                unsafe {
                    libc::atexit(stop_test_cluster);
                }
            }
            let template = format!("keyward_tpl_{}", env!("KEYWARD_MIGRATIONS_FINGERPRINT"));
            let server = TestServer { embedded, pattern, app_pattern, template };
            privileges::ensure_login_role(&mut server.admin(), APP_ROLE).expect("create the application's role");
            server.ensure_template();
            server
        })
    }

    /// A connection string for `database` as the owner of the tables.
    pub fn url(&self, database: &str) -> String {
        self.pattern.replace("{db}", database)
    }

    /// A connection string for `database` as the application's least-privileged role.
    pub fn app_url(&self, database: &str) -> String {
        self.app_pattern.replace("{db}", database)
    }

    fn admin(&self) -> PgConnection {
        PgConnection::establish(&self.url("postgres")).expect("connect to the test server")
    }

    /// Builds the migrated template under a temporary name and renames it into place, so a
    /// half-built template is never used; concurrent builders lose the rename race harmlessly.
    fn ensure_template(&self) {
        let mut admin = self.admin();
        if database_exists(&mut admin, &self.template) {
            return;
        }
        let building = format!("{}_build_{}", self.template, std::process::id());
        diesel::sql_query(format!("DROP DATABASE IF EXISTS \"{building}\"")).execute(&mut admin).unwrap();
        diesel::sql_query(format!("CREATE DATABASE \"{building}\"")).execute(&mut admin).unwrap();
        {
            let mut conn = PgConnection::establish(&self.url(&building)).unwrap();
            keyward::db::run_migrations(&mut conn).expect("migrate the template");
            // Grants are copied with the template into every test database.
            privileges::grant_app_role(&mut conn, APP_ROLE).expect("grant the application's role");
        }
        let renamed = diesel::sql_query(format!("ALTER DATABASE \"{building}\" RENAME TO \"{}\"", self.template))
            .execute(&mut admin);
        if renamed.is_err() {
            let _ = diesel::sql_query(format!("DROP DATABASE IF EXISTS \"{building}\"")).execute(&mut admin);
        }
    }

    /// A fresh database cloned from the template.
    pub fn create_database(&self) -> String {
        let name =
            format!("keyward_test_{}", keyward::secrets::random_token(9).to_lowercase().replace(['-', '_'], "x"));
        let mut admin = self.admin();
        // CREATE DATABASE … TEMPLATE fails while another session is connected to the
        // template; only a concurrent template build does that, briefly.
        for attempt in 0.. {
            match diesel::sql_query(format!("CREATE DATABASE \"{name}\" TEMPLATE \"{}\"", self.template))
                .execute(&mut admin)
            {
                Ok(_) => break,
                Err(e) if attempt < 50 => {
                    let _ = e;
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(e) => panic!("cannot create a test database: {e}"),
            }
        }
        name
    }

    pub fn drop_database(&self, name: &str) {
        let mut admin = self.admin();
        let _ = diesel::sql_query(format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)")).execute(&mut admin);
    }
}

fn database_exists(conn: &mut PgConnection, name: &str) -> bool {
    #[derive(diesel::QueryableByName)]
    struct Count {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let count: Count = diesel::sql_query(format!("SELECT count(*) AS n FROM pg_database WHERE datname = '{name}'"))
        .get_result(conn)
        .unwrap();
    count.n > 0
}

/// `url` with the libpq option that makes the session take `role` once connected.
fn with_role(url: &str, role: &str) -> String {
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}options=-c%20role%3D{role}")
}

/// `postgres://u:p@h:5432/name?x=y` with the database name replaced.
fn replace_database(url: &str, database: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, format!("?{query}")),
        None => (url, String::new()),
    };
    let scheme_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    let path_start = base[scheme_end..].find('/').map(|i| i + scheme_end).unwrap_or(base.len());
    format!("{}/{database}{query}", &base[..path_start])
}

/// A running application on its own database.
pub struct TestApp {
    pub address: SocketAddr,
    pub database: String,
    pub db: Database,
    /// The application's key hasher (its pepper), to check stored hashes.
    pub hasher: keyward::keys::KeyHasher,
    pub secret: MasterSecret,
    /// The application's shared state (verifier, cache, usage recorder).
    pub state: actix_web::web::Data<keyward::state::AppState>,
    /// Moves the application's clock (see [`TestApp::advance`]).
    clock: keyward::clock::ClockHandle,
    /// The authenticators the sign-in helpers set up (see [`TestApp::signed_in_with`]).
    pub factors: Factors,
    handle: actix_web::dev::ServerHandle,
    owns_database: bool,
}

/// Options of [`spawn_app_with`].
#[derive(Clone)]
pub struct SpawnOptions {
    pub session_idle: Duration,
    pub session_max: Duration,
    pub verify_cache: bool,
    pub invalid_attempts_per_minute: u32,
    /// `KEYWARD_MANAGEMENT_RATE_PER_MINUTE`.
    pub management_rate_per_minute: u32,
    /// Use this existing database instead of a fresh one (a second instance).
    pub database: Option<String>,
    /// Use this master secret (a second instance of the same deployment).
    pub secret: Option<MasterSecret>,
    /// Use this connection string instead of the shared test server (fault tests).
    pub url: Option<String>,
    /// Pool checkout and statement timeouts (bounded-wait tests).
    pub checkout_timeout: Duration,
    pub statement_timeout: Duration,
    /// The forwarded header to trust (tests that act from several client addresses).
    pub trust_forwarded: keyward::domain::client_ip::TrustForwarded,
    /// The configured public origin (`KEYWARD_PUBLIC_URL`).
    pub public_origin: Option<String>,
    /// Password hashing threads (tests of the bound set 1).
    pub password_hashers: usize,
    /// Run due background jobs in the server. Off unless a test asks: a run at start-up
    /// would race the fixtures of tests that drive the jobs themselves (`run-jobs`).
    pub run_jobs: bool,
    /// `KEYWARD_METRICS_TOKEN` (unset: no `/metrics`).
    pub metrics_token: Option<String>,
    /// `KEYWARD_SMTP_URL` (unset: mail stays in the browser's outbox).
    pub smtp_url: Option<String>,
    /// `KEYWARD_WEBHOOK_ALLOW_PRIVATE` (the tests' receivers are on 127.0.0.1).
    pub webhook_allow_private: bool,
}

impl Default for SpawnOptions {
    fn default() -> Self {
        Self {
            session_idle: Duration::from_secs(1800),
            session_max: Duration::from_secs(12 * 3600),
            verify_cache: true,
            invalid_attempts_per_minute: 1000,
            management_rate_per_minute: 600,
            database: None,
            secret: None,
            url: None,
            checkout_timeout: Duration::from_secs(3),
            statement_timeout: Duration::from_secs(5),
            trust_forwarded: keyward::domain::client_ip::TrustForwarded::No,
            public_origin: None,
            password_hashers: 2,
            run_jobs: false,
            metrics_token: None,
            smtp_url: None,
            webhook_allow_private: false,
        }
    }
}

/// Starts the application on a fresh database.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(SpawnOptions::default()).await
}

pub async fn spawn_app_with(options: SpawnOptions) -> TestApp {
    let server = TestServer::get();
    let owns_database = options.database.is_none() && options.url.is_none();
    let database = match (&options.database, &options.url) {
        (Some(name), _) => name.clone(),
        (None, Some(_)) => keyward::devdb::DATABASE_NAME.to_string(),
        (None, None) => server.create_database(),
    };
    let url = options.url.clone().unwrap_or_else(|| server.app_url(&database));
    let db = Database::new(
        &url,
        &PoolOptions {
            size: 4,
            checkout_timeout: options.checkout_timeout,
            statement_timeout: options.statement_timeout,
        },
    );
    let secret = options.secret.clone().unwrap_or_else(MasterSecret::generate);
    let hasher = keyward::keys::KeyHasher::new(secret.derive().key_pepper);
    let (clock, clock_handle) = keyward::clock::Clock::adjustable();
    let app = Application::build(AppSettings {
        db: db.clone(),
        keys: secret.derive(),
        addr: "127.0.0.1:0".parse().unwrap(),
        public_origin: options.public_origin.clone(),
        cookie_secure: false,
        trust_forwarded: options.trust_forwarded,
        session_idle: options.session_idle,
        session_max: options.session_max,
        workers: Some(2),
        password_hashers: options.password_hashers,
        verify_cache: options.verify_cache,
        invalid_attempts_per_minute: options.invalid_attempts_per_minute,
        management_rate_per_minute: options.management_rate_per_minute,
        run_jobs: options.run_jobs,
        usage_recording: true,
        clock,
        metrics_token: options.metrics_token.as_deref().map(keyward::metrics::MetricsToken::new),
        mail: options.smtp_url.as_deref().map(|url| {
            keyward::services::notifications::smtp::SmtpSettings::parse(
                url,
                keyward::services::notifications::smtp::DEFAULT_FROM,
            )
            .expect("a usable SMTP URL")
        }),
        webhook_allow_private: options.webhook_allow_private,
    })
    .expect("build the application");
    let address = app.local_addr();
    let handle = app.handle();
    let state = app.state();
    actix_web::rt::spawn(app.run_until_stopped());
    let factors = Factors { secrets: Arc::default(), state: state.clone(), db: db.clone() };
    TestApp { address, database, db, hasher, secret, handle, state, clock: clock_handle, factors, owns_database }
}

/// Where a session that must set up a second factor is sent after its password.
pub const ENROL: &str = "/login/enrol";
/// Where a session with a second factor gives it after its password.
pub const SECOND_FACTOR: &str = "/login/second-factor";

/// The authenticator secrets that the sign-in helpers enrolled, by email, so that a later
/// sign-in of the same account (staff must have a second factor) can give a code.
#[derive(Clone)]
pub struct Factors {
    secrets: Arc<Mutex<HashMap<String, Vec<u8>>>>,
    state: actix_web::web::Data<keyward::state::AppState>,
    db: Database,
}

impl Factors {
    pub fn remember(&self, email: &str, secret: Vec<u8>) {
        self.secrets.lock().unwrap().insert(email.to_lowercase(), secret);
    }

    /// The code of `secret` at the application's clock.
    pub fn code_at_now(&self, secret: &[u8]) -> String {
        keyward::services::second_factor::totp::code_at(secret, self.state.clock.now().timestamp()).unwrap()
    }

    /// A code of `email`'s remembered authenticator that the application accepts now. Tests
    /// sign one account in many times within one 30-second step, so the helper forgets the
    /// step last used (replay protection has its own tests in second_factor.rs).
    pub fn fresh_code(&self, email: &str) -> String {
        use diesel::{BoolExpressionMethods, ExpressionMethods, QueryDsl};
        use keyward::db::schema::{staff_accounts, totp_factors, users};
        let secret = self.secrets.lock().unwrap().get(&email.to_lowercase()).cloned();
        let secret = secret.unwrap_or_else(|| panic!("no authenticator remembered for {email}"));
        let mut conn = self.db.get().unwrap();
        let staff = staff_accounts::table.filter(staff_accounts::email.eq(email)).select(staff_accounts::id);
        let user = users::table.filter(users::email.eq(email)).select(users::id);
        diesel::update(
            totp_factors::table.filter(
                totp_factors::staff_id.eq_any(staff.nullable()).or(totp_factors::user_id.eq_any(user.nullable())),
            ),
        )
        .set(totp_factors::last_used_step.eq(None::<i64>))
        .execute(&mut *conn)
        .unwrap();
        self.code_at_now(&secret)
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    /// Moves this application's clock forward by `by`: sessions, key expiry, grace periods
    /// and the times on its pages all see the later time (the database's own `now()` does not).
    pub fn advance(&self, by: Duration) {
        self.clock.advance(by);
    }

    /// The time as this application sees it.
    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.state.clock.now()
    }

    /// A synchronous connection to this app's database, for fixtures and assertions: from
    /// the app's own pool, so with the app's (least) privileges.
    pub fn conn(&self) -> keyward::db::PooledPg {
        self.db.get().expect("a database connection")
    }

    /// A connection to this app's database as the owner of the tables (the role that
    /// migrates), for what the application itself may not do.
    pub fn owner_conn(&self) -> PgConnection {
        PgConnection::establish(&TestServer::get().url(&self.database)).expect("an owner's connection")
    }

    /// A browser-like client: keeps the session cookie, never follows redirects.
    pub fn client(&self) -> TestClient {
        TestClientFor::new(&self.url(""))
    }

    /// A browser-like client that names itself with `user_agent`.
    pub fn client_with_agent(&self, user_agent: &str) -> TestClient {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .pool_idle_timeout(Duration::from_secs(2))
            .user_agent(user_agent)
            .build()
            .unwrap();
        TestClient { base: self.url(""), http, cookie: Mutex::new(None), csrf: Mutex::new(None) }
    }

    /// A client signed in as `email` (with the fixtures' password).
    pub async fn signed_in(&self, email: &str) -> TestClient {
        self.signed_in_with(email, PASSWORD).await
    }

    /// A client signed in as `email` with `password`. An account that must set up a second
    /// factor (staff, or a policy) enrols an authenticator on the way, as a person would, and
    /// later sign-ins give its code.
    pub async fn signed_in_with(&self, email: &str, password: &str) -> TestClient {
        self.sign_in(self.client(), email, password).await
    }

    /// Signs `client` in as `email` (see [`TestApp::signed_in_with`]).
    pub async fn sign_in(&self, client: TestClient, email: &str, password: &str) -> TestClient {
        let response = client.login(email, password).await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "login of {email} should succeed");
        match location(&response).as_str() {
            ENROL => {
                let secret = self.enrol_at_sign_in(&client).await;
                self.factors.remember(email, secret);
            }
            SECOND_FACTOR => {
                client.fetch_csrf_token(SECOND_FACTOR).await;
                let response = client.post(SECOND_FACTOR, &[("code", &self.factors.fresh_code(email))]).await;
                assert_eq!(response.status(), StatusCode::SEE_OTHER, "the code of {email} should be accepted");
                assert_ne!(location(&response), SECOND_FACTOR);
            }
            _ => {}
        }
        client
    }

    /// Sets up an authenticator on the enrolment pages of `client`, a session sent there
    /// after its password, and returns its secret; the session is signed in then.
    pub async fn enrol_at_sign_in(&self, client: &TestClient) -> Vec<u8> {
        let page = client.open(ENROL).await;
        assert_eq!(page.status, StatusCode::OK, "{page}");
        assert!(page.has_form("/login/enrol/totp"), "{page}");
        client.fetch_csrf_token(ENROL).await;
        let response = client.post("/login/enrol/totp", &[]).await;
        assert_eq!(location(&response), "/login/enrol/totp");
        let setup = client.open("/login/enrol/totp").await;
        let text = setup.select("#totp-secret").text().replace(' ', "");
        let secret = totp_rs::Secret::try_from_base32(&text).expect("a base32 secret").as_bytes().to_vec();
        let response = client.post("/login/enrol/totp/confirm", &[("code", &self.factors.code_at_now(&secret))]).await;
        assert_eq!(response.status(), StatusCode::OK, "the enrolment code should be accepted");
        // The session changed keys and CSRF token on signing in.
        *client.csrf.lock().unwrap() = None;
        secret
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        drop(self.handle.stop(false));
        if self.owns_database {
            TestServer::get().drop_database(&self.database);
        }
    }
}

pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        // Idle connections are dropped well before the server's 5 s keep-alive closes them:
        // reusing one the server is closing fails the request (a flake on a busy machine).
        .pool_idle_timeout(Duration::from_secs(2))
        .build()
        .unwrap()
}

/// Builds a [`TestClient`] for any base URL (e.g. a `keyward` process started by a test).
pub struct TestClientFor;

impl TestClientFor {
    #[expect(clippy::new_ret_no_self, reason = "a constructor namespace for TestClient")]
    pub fn new(base: &str) -> TestClient {
        TestClient { base: base.to_string(), http: http_client(), cookie: Mutex::new(None), csrf: Mutex::new(None) }
    }
}

/// An HTTP client with one session cookie under the test's control.
pub struct TestClient {
    base: String,
    pub http: reqwest::Client,
    cookie: Mutex<Option<String>>,
    csrf: Mutex<Option<String>>,
}

/// Name of the session cookie on plain HTTP.
pub const SESSION_COOKIE: &str = "keyward_session";

impl TestClient {
    /// The current `name=value` session cookie.
    pub fn cookie(&self) -> Option<String> {
        self.cookie.lock().unwrap().clone()
    }

    pub fn set_cookie(&self, cookie: Option<String>) {
        *self.cookie.lock().unwrap() = cookie;
    }

    fn remember(&self, response: &Response) {
        for value in response.headers().get_all(header::SET_COOKIE) {
            let value = value.to_str().unwrap();
            let pair = value.split(';').next().unwrap().trim().to_string();
            if pair.starts_with(&format!("{SESSION_COOKIE}=")) {
                let removed = value.contains("Max-Age=0") || pair.ends_with('=');
                *self.cookie.lock().unwrap() = if removed { None } else { Some(pair) };
            }
        }
    }

    fn with_cookie(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match self.cookie() {
            Some(cookie) => request.header(header::COOKIE, cookie),
            None => request,
        }
    }

    pub async fn get(&self, path: &str) -> Response {
        let response = self.with_cookie(self.http.get(format!("{}{path}", self.base))).send().await.unwrap();
        self.remember(&response);
        response
    }

    /// GET a page and parse it, remembering its CSRF token.
    pub async fn open(&self, path: &str) -> Page {
        self.read(self.get(path).await).await
    }

    /// GET a page as a browser does after a link on `referer` (a full address) led there.
    pub async fn open_from(&self, path: &str, referer: &str) -> Page {
        let request = self.http.get(format!("{}{path}", self.base)).header(header::REFERER, referer);
        let response = self.with_cookie(request).send().await.unwrap();
        self.remember(&response);
        self.read(response).await
    }

    /// Parses a page, remembering its CSRF token.
    async fn read(&self, response: Response) -> Page {
        let status = response.status();
        let page = Page::new(status, response.text().await.unwrap());
        if let Some(token) = page.csrf_token() {
            *self.csrf.lock().unwrap() = Some(token);
        }
        page
    }

    /// GET a page and return its body, remembering its CSRF token.
    pub async fn page(&self, path: &str) -> (StatusCode, String) {
        let page = self.open(path).await;
        (page.status, page.body)
    }

    /// Fetches the session's CSRF token once, from `path` (a page the account may open),
    /// for all the posts that follow: it stays the same until the next sign-in.
    pub async fn fetch_csrf_token(&self, path: &str) {
        let page = self.open(path).await;
        assert!(page.csrf_token().is_some(), "{path} carries the session's CSRF token: {page}");
    }

    /// POST a form as-is (no CSRF token added).
    pub async fn post_raw(&self, path: &str, fields: &[(&str, &str)]) -> Response {
        let response =
            self.with_cookie(self.http.post(format!("{}{path}", self.base))).form(fields).send().await.unwrap();
        self.remember(&response);
        response
    }

    /// POST a form with the CSRF token of the last page fetched (fetching `/account` or
    /// `/login` first if no page was).
    pub async fn post(&self, path: &str, fields: &[(&str, &str)]) -> Response {
        let token = self.csrf.lock().unwrap().clone();
        let token = match token {
            Some(token) => token,
            None => {
                let page = self.open("/login").await;
                page.csrf_token().or_else(|| self.csrf.lock().unwrap().clone()).expect("a CSRF token")
            }
        };
        let mut all: Vec<(&str, &str)> = vec![("csrf_token", &token)];
        all.extend_from_slice(fields);
        self.post_raw(path, &all).await
    }

    /// Signs in through the login form.
    pub async fn login(&self, email: &str, password: &str) -> Response {
        let token = self.open("/login").await.csrf_token().expect("the login page has a CSRF token");
        let response =
            self.post_raw("/login", &[("csrf_token", &token), ("email", email), ("password", password)]).await;
        // The session's token changes at sign-in.
        *self.csrf.lock().unwrap() = None;
        response
    }
}

/// The value of the first `csrf_token` field in `html`.
pub fn csrf_token(html: &str) -> Option<String> {
    Page::new(StatusCode::OK, html.to_string()).csrf_token()
}

pub fn location(response: &Response) -> String {
    response.headers().get(header::LOCATION).map(|v| v.to_str().unwrap().to_string()).unwrap_or_default()
}

/// A PostgreSQL cluster of one test's own, for tests that stop and start the server.
pub struct PrivateCluster {
    cluster: EmbeddedCluster,
    root: PathBuf,
}

impl PrivateCluster {
    pub fn start(name: &str) -> Self {
        let root = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("{name}-{}", keyward::secrets::random_token(6).replace(['-', '_'], "x")));
        let cluster = EmbeddedCluster::start(&root, Durability::Throwaway).expect("start a private cluster");
        let mut conn = PgConnection::establish(&cluster.connection_string(keyward::devdb::DATABASE_NAME)).unwrap();
        keyward::db::run_migrations(&mut conn).unwrap();
        privileges::ensure_login_role(&mut conn, APP_ROLE).unwrap();
        privileges::grant_app_role(&mut conn, APP_ROLE).unwrap();
        Self { cluster, root }
    }

    /// The application's connection string (its least-privileged role).
    pub fn url(&self) -> String {
        self.cluster.connection_string_as(keyward::devdb::DATABASE_NAME, APP_ROLE)
    }

    /// An application on this cluster's database.
    pub async fn spawn_app(&self) -> TestApp {
        spawn_app_with(SpawnOptions { url: Some(self.url()), ..SpawnOptions::default() }).await
    }

    /// Stops the server (fast shutdown: every connection is cut).
    pub fn stop(&self) {
        self.cluster.stop_now();
    }

    pub fn start_again(&self) {
        self.cluster.restart().expect("restart the private cluster");
    }
}

impl Drop for PrivateCluster {
    fn drop(&mut self) {
        self.cluster.stop_now();
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// The code `secret` verifies as (for `action`, if given), or the API's error code.
pub async fn verify_code(app: &TestApp, secret: &str, action: Option<&str>) -> String {
    let body = match action {
        Some(action) => serde_json::json!({ "action": action }),
        None => serde_json::json!({}),
    };
    let response = http_client().post(app.url("/api/v1/verify")).bearer_auth(secret).json(&body).send().await.unwrap();
    let answer: serde_json::Value = response.json().await.unwrap_or_default();
    answer["code"].as_str().or(answer["error"].as_str()).unwrap_or_default().to_string()
}

/// Polls `check` every 20 ms until it holds, for at most `limit` (for what happens
/// asynchronously: cache invalidation, reconnecting).
pub async fn within(limit: Duration, mut check: impl AsyncFnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + limit;
    while std::time::Instant::now() < deadline {
        if check().await {
            return true;
        }
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

/// Whether `secret` comes to verify as `code` (for `action`) within two seconds.
pub async fn verifies_as(app: &TestApp, secret: &str, action: Option<&str>, code: &str) -> bool {
    within(Duration::from_secs(2), async || verify_code(app, secret, action).await == code).await
}

/// The user with `email` (fixtures).
pub fn user(app: &TestApp, email: &str) -> keyward::db::models::User {
    keyward::db::models::User::find_by_email(&mut app.conn(), email).unwrap().expect("the user exists")
}

/// Counts audit events with `action` in the app's database.
/// Makes every registered background job due now (as if its period had passed).
pub fn make_due(app: &TestApp) {
    use diesel::ExpressionMethods;
    diesel::update(keyward::db::schema::jobs::table)
        .set(keyward::db::schema::jobs::next_run_at.eq(chrono::Utc::now() - chrono::Duration::minutes(1)))
        .execute(&mut *app.conn())
        .unwrap();
}

/// Sets `key`'s expiry to `left` from now (the database notes the change: reminders re-arm).
pub fn expires_in(app: &TestApp, key: &keyward::db::models::ApiKey, left: chrono::Duration) {
    use diesel::{ExpressionMethods, QueryDsl};
    use keyward::db::schema::api_keys;
    diesel::update(api_keys::table.find(key.id))
        .set(api_keys::expires_at.eq(Some(chrono::Utc::now() + left)))
        .execute(&mut *app.conn())
        .unwrap();
}

pub fn audit_count(app: &TestApp, action: &str) -> i64 {
    use diesel::prelude::*;
    use keyward::db::schema::audit_events;
    audit_events::table.filter(audit_events::action.eq(action)).count().get_result(&mut *app.conn()).unwrap()
}

#[test]
fn database_names_are_replaced_in_urls() {
    assert_eq!(
        replace_database("postgres://u:p@h:5432/db?sslmode=disable", "x"),
        "postgres://u:p@h:5432/x?sslmode=disable"
    );
    assert_eq!(with_role("postgres://h/x?a=b", "r"), "postgres://h/x?a=b&options=-c%20role%3Dr");
    assert_eq!(replace_database("postgres://h", "x"), "postgres://h/x");
}
