//! The operator commands, run as the real `keyward` binary.

use std::{
    net::TcpListener,
    path::{Path, PathBuf},
    process::{Command, Output, Stdio},
    time::{Duration, Instant},
};

use diesel::prelude::*;
use keyward::db::{models::User, schema::organizations};
use reqwest::StatusCode;

use crate::helpers::{TestServer, http_client, location, spawn_app};

pub(crate) const SECRET: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

pub(crate) fn scratch_dir(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}-{}", keyward::secrets::random_token(6)));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `keyward` with a clean Keyward environment, run from an empty directory (no `.env`).
pub(crate) fn keyward(dir: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_keyward"));
    command.current_dir(dir).stdin(Stdio::null()).env("RUST_LOG", "info");
    for (name, _) in std::env::vars() {
        if name == "DATABASE_URL" || name.starts_with("KEYWARD_") {
            command.env_remove(name);
        }
    }
    command
}

pub(crate) fn text(output: &Output) -> (String, String) {
    (String::from_utf8_lossy(&output.stdout).into_owned(), String::from_utf8_lossy(&output.stderr).into_owned())
}

#[test]
fn help_lists_every_command() {
    let output = keyward(&scratch_dir("help")).arg("--help").output().unwrap();
    assert!(output.status.success());
    let (stdout, _) = text(&output);
    for command in [
        "serve",
        "migrate",
        "seed-demo",
        "create-staff",
        "create-user",
        "create-org",
        "reset-second-factor",
        "run-jobs",
    ] {
        assert!(stdout.contains(command), "--help lists {command}: {stdout}");
    }
}

#[test]
fn help_lists_every_variable_without_the_values_of_secrets() {
    let database_url = "postgres://keyward:db-password-do-not-print@db.internal/keyward";
    let migrate_url = "postgres://owner:owner-password-do-not-print@db.internal/keyward";
    for flag in ["--help", "-h"] {
        let output = keyward(&scratch_dir("help-env"))
            .env("DATABASE_URL", database_url)
            .env("KEYWARD_MIGRATE_URL", migrate_url)
            .env("KEYWARD_SECRET", SECRET)
            .env("KEYWARD_ADDR", "127.0.0.1:9191")
            .arg(flag)
            .output()
            .unwrap();
        assert!(output.status.success());
        let (stdout, stderr) = text(&output);
        for variable in [
            "DATABASE_URL",
            "KEYWARD_MIGRATE_URL",
            "KEYWARD_ADDR",
            "KEYWARD_PUBLIC_URL",
            "KEYWARD_DATA_DIR",
            "KEYWARD_SECRET",
            "KEYWARD_COOKIE_SECURE",
            "KEYWARD_TRUST_FORWARDED",
            "KEYWARD_POOL_SIZE",
            "KEYWARD_DB_CHECKOUT_TIMEOUT_MS",
            "KEYWARD_STATEMENT_TIMEOUT_MS",
            "KEYWARD_SESSION_IDLE_MINUTES",
            "KEYWARD_SESSION_MAX_HOURS",
            "KEYWARD_WORKERS",
            "KEYWARD_PASSWORD_HASHERS",
            "KEYWARD_VERIFY_CACHE",
            "KEYWARD_VERIFY_INVALID_PER_MINUTE",
            "KEYWARD_MANAGEMENT_RATE_PER_MINUTE",
            "KEYWARD_RUN_JOBS",
            "KEYWARD_PG_BIN",
            "RUST_LOG",
        ] {
            assert!(stdout.contains(&format!("[env: {variable}")), "{flag} lists {variable}: {stdout}");
        }
        for secret in ["db-password-do-not-print", "owner-password-do-not-print", SECRET] {
            assert!(!stdout.contains(secret) && !stderr.contains(secret), "{flag} prints a secret: {stdout}");
        }
        // Values that are no secret are shown, so an operator sees what is in effect.
        assert!(stdout.contains("[env: KEYWARD_ADDR=127.0.0.1:9191]"), "{stdout}");
    }
    let output = keyward(&scratch_dir("help-password"))
        .env("KEYWARD_PASSWORD", "password-do-not-print")
        .args(["create-user", "--help"])
        .output()
        .unwrap();
    let (stdout, _) = text(&output);
    assert!(stdout.contains("[env: KEYWARD_PASSWORD]"), "{stdout}");
    assert!(!stdout.contains("password-do-not-print"), "{stdout}");
}

#[test]
fn a_bad_configuration_value_is_refused_naming_its_variable() {
    let dir = scratch_dir("bad-config");
    for (variable, value) in [
        ("KEYWARD_POOL_SIZE", "many"),
        ("KEYWARD_ADDR", "localhost"),
        ("KEYWARD_COOKIE_SECURE", "maybe"),
        ("KEYWARD_TRUST_FORWARDED", "true"),
        ("KEYWARD_PUBLIC_URL", "keys.example.com"),
        ("KEYWARD_MANAGEMENT_RATE_PER_MINUTE", "0"),
    ] {
        // Refused while parsing, before any database is opened.
        let output = keyward(&dir).env(variable, value).arg("migrate").output().unwrap();
        assert_eq!(output.status.code(), Some(2), "{variable}={value}: {:?}", text(&output));
        let (_, stderr) = text(&output);
        assert!(stderr.contains(variable) && stderr.contains(value), "{variable}={value}: {stderr}");
    }
    // A bad secret is named, never quoted.
    let bad_secret = "not-base64-but-still-secret";
    let output = keyward(&dir).env("KEYWARD_SECRET", bad_secret).arg("migrate").output().unwrap();
    assert_eq!(output.status.code(), Some(1), "{:?}", text(&output));
    let (stdout, stderr) = text(&output);
    assert!(stderr.contains("KEYWARD_SECRET must be base64"), "{stderr}");
    assert!(!stdout.contains(bad_secret) && !stderr.contains(bad_secret), "{stderr}");
}

#[test]
fn a_blank_variable_counts_as_unset() {
    // Blank DATABASE_URL means the embedded cluster, where KEYWARD_MIGRATE_URL has no place;
    // the blank pool size is its default rather than an invalid number.
    let output = keyward(&scratch_dir("blank-config"))
        .env("DATABASE_URL", "")
        .env("KEYWARD_POOL_SIZE", " ")
        .env("KEYWARD_MIGRATE_URL", "postgres://owner@db.internal/keyward")
        .arg("migrate")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "{:?}", text(&output));
    assert!(text(&output).1.contains("KEYWARD_MIGRATE_URL goes with DATABASE_URL"), "{:?}", text(&output));
}

#[test]
fn an_unknown_command_or_missing_argument_fails_clearly() {
    let dir = scratch_dir("bad-args");
    let output = keyward(&dir).arg("frobnicate").output().unwrap();
    assert!(!output.status.success());
    let output = keyward(&dir).args(["create-user", "--email", "a@b.test"]).output().unwrap();
    assert!(!output.status.success());
    assert!(text(&output).1.contains("--org"), "names the missing argument");
}

#[test]
fn an_external_database_without_a_master_secret_is_refused() {
    let output = keyward(&scratch_dir("no-secret"))
        .env("DATABASE_URL", "postgres://nowhere/keyward")
        .arg("serve")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(text(&output).1.contains("KEYWARD_SECRET is required"));
}

#[actix_web::test]
async fn operators_create_an_organization_users_and_staff_who_can_then_sign_in() {
    let app = spawn_app().await;
    let url = TestServer::get().url(&app.database);
    let dir = scratch_dir("create");
    let run = |args: &[&str]| {
        keyward(&dir)
            .env("DATABASE_URL", &url)
            .env("KEYWARD_SECRET", SECRET)
            .env("KEYWARD_PASSWORD", "a long enough password")
            .args(args)
            .output()
            .unwrap()
    };

    let output = run(&["create-org", "--name", "Initech Corp"]);
    assert!(output.status.success(), "{:?}", text(&output));
    assert!(text(&output).0.contains("slug initech-corp"));
    let output =
        run(&["create-user", "--org", "initech-corp", "--email", "Peter@Initech.test", "--admin", "--api-key-access"]);
    assert!(output.status.success(), "{:?}", text(&output));
    let output = run(&["create-staff", "--email", "help@platform.test", "--name", "Helpdesk"]);
    assert!(output.status.success(), "{:?}", text(&output));
    // It says how the new account signs in: a second factor set up at the first sign-in.
    let said = text(&output).0;
    assert!(said.contains("at the first sign-in") && said.contains("authenticator app"), "{said}");

    let peter = User::find_by_email(&mut app.conn(), "peter@initech.test").unwrap().unwrap();
    assert!(peter.is_admin && peter.api_key_access);
    assert_eq!(crate::helpers::audit_count(&app, "user.create"), 1);
    assert_eq!(crate::helpers::audit_count(&app, "organization.create"), 1);

    let client = app.client();
    let response = client.login("peter@initech.test", "a long enough password").await;
    assert_eq!(location(&response), "/account");
    let staff = app.client();
    let response = staff.login("help@platform.test", "a long enough password").await;
    assert_eq!(location(&response), crate::helpers::ENROL);
    app.enrol_at_sign_in(&staff).await;
    assert_eq!(staff.get("/staff").await.status(), StatusCode::OK);
}

#[actix_web::test]
async fn reset_second_factor_removes_the_factors_and_ends_the_sessions_of_the_account_with_that_email() {
    use keyward::db::schema::{audit_events, totp_factors};
    let app = spawn_app().await;
    let mut conn = app.conn();
    let (acme, admin) = crate::helpers::fixtures::organization_with_admin(&mut conn, "acme");
    let staff = crate::helpers::fixtures::staff(&mut conn, "sam@support.test");
    diesel::update(organizations::table.find(acme.id))
        .set(organizations::second_factor_required_for.eq("administrators"))
        .execute(&mut conn)
        .unwrap();
    drop(conn);
    // Both set up an authenticator at their first sign-in, and stay signed in.
    let admin_client = app.signed_in(&admin.email).await;
    let staff_client = app.signed_in(&staff.email).await;
    let factors = || totp_factors::table.count().get_result::<i64>(&mut *app.conn()).unwrap();
    assert_eq!(factors(), 2);
    let url = TestServer::get().url(&app.database);
    let run = |args: &[&str]| {
        keyward(&scratch_dir("reset-factor"))
            .env("DATABASE_URL", &url)
            .env("KEYWARD_SECRET", SECRET)
            .args(args)
            .output()
            .unwrap()
    };

    let output = run(&["reset-second-factor", "--email", "Admin@Acme.test"]);
    assert!(output.status.success(), "{:?}", text(&output));
    assert!(text(&output).0.contains("ended 1 session"), "{:?}", text(&output));
    assert_eq!(factors(), 1, "the staff account's is left");
    assert_eq!(location(&admin_client.get("/account").await), "/login?next=%2Faccount");
    assert_eq!(staff_client.get("/staff").await.status(), StatusCode::OK);
    let (actor, organization): (String, Option<i64>) = audit_events::table
        .filter(audit_events::action.eq("second_factor.reset"))
        .select((audit_events::actor_type, audit_events::organization_id))
        .first(&mut *app.conn())
        .unwrap();
    assert_eq!((actor.as_str(), organization), ("system", Some(acme.id)));
    // The administrator sets up a new one at the next sign-in (the policy still requires it).
    assert_eq!(location(&app.client().login(&admin.email, crate::helpers::PASSWORD).await), crate::helpers::ENROL);

    let output = run(&["reset-second-factor", "--email", "sam@support.test"]);
    assert!(output.status.success(), "{:?}", text(&output));
    assert_eq!(factors(), 0);
    assert_eq!(location(&staff_client.get("/staff").await), "/login?next=%2Fstaff");
    assert_eq!(crate::helpers::audit_count(&app, "second_factor.reset"), 2);

    let output = run(&["reset-second-factor", "--email", "nobody@acme.test"]);
    assert!(!output.status.success());
    assert!(text(&output).1.contains("no staff account or user"), "{:?}", text(&output));
    assert_eq!(crate::helpers::audit_count(&app, "second_factor.reset"), 2);
}

#[actix_web::test]
async fn seed_demo_fills_an_organization_with_users_keys_and_their_audit_trail() {
    use keyward::db::schema::{api_keys, audit_events, users};
    let app = spawn_app().await;
    crate::helpers::fixtures::organization(&mut app.conn(), "initech");
    let url = TestServer::get().url(&app.database);
    let dir = scratch_dir("seed-volume");
    let run = |args: &[&str]| {
        keyward(&dir).env("DATABASE_URL", &url).env("KEYWARD_SECRET", SECRET).args(args).output().unwrap()
    };
    let output = run(&["seed-demo", "--keys", "5", "--org", "initech"]);
    assert!(!output.status.success());
    assert!(text(&output).1.contains("initech has no users to own keys"), "{:?}", text(&output));
    let output = run(&["seed-demo", "--users", "40", "--keys", "150", "--org", "initech", "--demo-password"]);
    assert!(output.status.success(), "{:?}", text(&output));
    assert!(
        text(&output).0.contains("Added 40 users, 150 keys and 190 audit events to initech"),
        "{:?}",
        text(&output)
    );
    let mut conn = app.conn();
    let org_id: i64 = organizations::table
        .filter(organizations::slug.eq("initech"))
        .select(organizations::id)
        .first(&mut conn)
        .unwrap();
    let keys: i64 = api_keys::table.filter(api_keys::organization_id.eq(org_id)).count().get_result(&mut conn).unwrap();
    let people: i64 = users::table.filter(users::organization_id.eq(org_id)).count().get_result(&mut conn).unwrap();
    let events: i64 =
        audit_events::table.filter(audit_events::organization_id.eq(org_id)).count().get_result(&mut conn).unwrap();
    assert_eq!((people, keys, events), (40, 150, 190));
    // Personal keys belong to users with API key access, in the same organization.
    let stray: i64 = api_keys::table
        .inner_join(users::table.on(users::id.nullable().eq(api_keys::owner_user_id)))
        .filter(users::api_key_access.eq(false).or(users::organization_id.ne(org_id)))
        .count()
        .get_result(&mut conn)
        .unwrap();
    assert_eq!(stray, 0);
    assert!(
        organizations::table.filter(organizations::slug.eq("acme")).count().get_result::<i64>(&mut conn).unwrap() == 0,
        "filling another organization does not seed the demo data set"
    );
    // Seeded users (the active ones: some are deactivated) sign in with the demo password.
    let email: String = users::table
        .filter(users::organization_id.eq(org_id))
        .filter(users::active.eq(true))
        .select(users::email)
        .first(&mut conn)
        .unwrap();
    drop(conn);
    assert_eq!(app.client().login(&email, "keyward-demo").await.status(), StatusCode::SEE_OTHER);

    // More keys for the users it has; users added without --demo-password cannot sign in.
    let output = run(&["seed-demo", "--users", "3", "--keys", "10", "--org", "initech"]);
    assert!(output.status.success(), "{:?}", text(&output));
    let mut conn = app.conn();
    let keys: i64 = api_keys::table.filter(api_keys::organization_id.eq(org_id)).count().get_result(&mut conn).unwrap();
    let without_password: i64 = users::table
        .filter(users::organization_id.eq(org_id))
        .filter(users::password_hash.is_null())
        .count()
        .get_result(&mut conn)
        .unwrap();
    assert_eq!((keys, without_password), (160, 3));
    drop(conn);

    let output = run(&["seed-demo", "--users", "1", "--org", "nowhere"]);
    assert!(!output.status.success());
    assert!(text(&output).1.contains("no organization with slug \"nowhere\""), "{:?}", text(&output));
}

#[actix_web::test]
async fn bad_operator_input_exits_non_zero_and_changes_nothing() {
    let app = spawn_app().await;
    let url = TestServer::get().url(&app.database);
    let dir = scratch_dir("bad-input");
    let run = |args: &[&str], password: &str| {
        keyward(&dir)
            .env("DATABASE_URL", &url)
            .env("KEYWARD_SECRET", SECRET)
            .env("KEYWARD_PASSWORD", password)
            .args(args)
            .output()
            .unwrap()
    };
    let cases: Vec<(Vec<&str>, &str, &str)> = vec![
        (vec!["create-user", "--org", "nope", "--email", "a@b.test"], "a long enough password", "no organization"),
        (vec!["create-org", "--name", "X", "--slug", "Bad Slug"], "a long enough password", "lower-case"),
        (vec!["create-org", "--name", "X", "--provider", "999"], "a long enough password", "no service provider"),
        (vec!["create-staff", "--email", "not-an-email"], "a long enough password", "email address"),
        (vec!["create-staff", "--email", "ok@staff.test"], "short", "at least 10"),
    ];
    for (args, password, expected) in cases {
        let output = run(&args, password);
        assert_eq!(output.status.code(), Some(1), "{args:?}");
        let (_, stderr) = text(&output);
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }
    let organizations: i64 = organizations::table.count().get_result(&mut *app.conn()).unwrap();
    assert_eq!(organizations, 0);

    assert!(run(&["create-org", "--name", "Dup", "--slug", "dup"], "x").status.success());
    let output = run(&["create-org", "--name", "Dup again", "--slug", "dup"], "x");
    assert_eq!(output.status.code(), Some(1));
    assert!(text(&output).1.contains("already taken"));
}

#[test]
fn migrate_brings_an_empty_database_up_to_date() {
    let server = TestServer::get();
    let name = format!("keyward_migrate_{}", keyward::secrets::random_token(6).to_lowercase().replace(['-', '_'], "x"));
    let mut admin = PgConnection::establish(&server.url("postgres")).unwrap();
    diesel::sql_query(format!("CREATE DATABASE \"{name}\"")).execute(&mut admin).unwrap();
    let dir = scratch_dir("migrate");
    let run = || {
        keyward(&dir)
            .env("DATABASE_URL", server.url(&name))
            .env("KEYWARD_SECRET", SECRET)
            .arg("migrate")
            .output()
            .unwrap()
    };
    let first = run();
    assert!(first.status.success(), "{:?}", text(&first));
    assert!(text(&first).0.contains("applied"));
    let second = run();
    assert!(text(&second).0.contains("up to date"));
    server.drop_database(&name);
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

async fn wait_until_healthy(base: &str, child: &mut std::process::Child) {
    wait_for_ok(base, "/healthz", child).await;
}

/// Until the server also has its database (with `DATABASE_URL` it listens before that).
async fn wait_until_ready(base: &str, child: &mut std::process::Child) {
    wait_for_ok(base, "/readyz", child).await;
}

async fn wait_for_ok(base: &str, path: &str, child: &mut std::process::Child) {
    // A deadline so a server that never answers fails the test instead of hanging it.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Ok(response) = http_client().get(format!("{base}{path}")).send().await
            && response.status() == StatusCode::OK
        {
            return;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("keyward exited early with {status}");
        }
        assert!(Instant::now() < deadline, "keyward did not answer {path} with 200");
        actix_web::rt::time::sleep(Duration::from_millis(200)).await;
    }
}

fn stop(child: &mut std::process::Child) -> std::process::ExitStatus {
    use nix::{sys::signal, unistd::Pid};
    signal::kill(Pid::from_raw(child.id() as i32), signal::Signal::SIGTERM).unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(Instant::now() < deadline, "keyward did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[actix_web::test]
async fn the_embedded_default_starts_seeds_serves_and_stops_cleanly() {
    let dir = scratch_dir("embedded");
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let start = || {
        keyward(&dir)
            .env("KEYWARD_DATA_DIR", dir.join("data"))
            .env("KEYWARD_ADDR", format!("127.0.0.1:{port}"))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };

    let mut child = start();
    wait_until_healthy(&base, &mut child).await;
    assert_eq!(http_client().get(format!("{base}/readyz")).send().await.unwrap().status(), StatusCode::OK);
    // The demo administrator signs in with the documented credentials.
    let client = crate::helpers::TestClientFor::new(&base);
    let response = client.login("alice@acme.example", keyward::services::demo::DEMO_PASSWORD).await;
    assert_eq!(location(&response), "/account");
    assert_eq!(client.get("/admin").await.status(), StatusCode::OK);
    // The server and its key listener connect as the least-privileged role, not as the
    // cluster's superuser who owns the tables.
    let cluster = keyward::devdb::EmbeddedCluster::start(&dir.join("data"), keyward::devdb::Durability::Durable)
        .expect("attach to the running cluster");
    assert!(!cluster.started_here());
    let roles = cluster
        .psql(
            keyward::devdb::DATABASE_NAME,
            "SELECT string_agg(DISTINCT usename, ',') FROM pg_stat_activity \
             WHERE application_name IN ('keyward', 'keyward-listener')",
        )
        .unwrap();
    assert_eq!(roles.trim(), keyward::db::privileges::APP_ROLE, "the application's connections");
    assert!(stop(&mut child).success(), "a clean exit on SIGTERM");
    let output = child.wait_with_output().unwrap();
    let (stdout, stderr) = text(&output);
    assert!(stdout.contains("alice@acme.example") && stdout.contains("keyward-demo"), "credentials printed: {stdout}");
    assert!(stderr.contains("seeded the demo data set"), "{stderr}");
    assert!(stderr.contains("embedded PostgreSQL cluster stopped"), "{stderr}");
    assert!(dir.join("data").join("secret").exists(), "a master secret is generated into the data dir");

    // The second start reuses the cluster and its data, and seeds nothing.
    let mut child = start();
    wait_until_healthy(&base, &mut child).await;
    let response = crate::helpers::TestClientFor::new(&base).login("alice@acme.example", "keyward-demo").await;
    assert_eq!(location(&response), "/account");
    assert!(stop(&mut child).success());
    let (_, stderr) = text(&child.wait_with_output().unwrap());
    assert!(!stderr.contains("seeded the demo data set"), "{stderr}");
}

#[actix_web::test]
async fn sigterm_lets_in_flight_requests_finish_and_writes_the_last_use_and_usage_counts() {
    use diesel::connection::SimpleConnection;
    let app = spawn_app().await;
    let url = TestServer::get().url(&app.database);
    let hasher =
        keyward::keys::KeyHasher::new(keyward::secrets::MasterSecret::from_base64(SECRET).unwrap().derive().key_pepper);
    let org = crate::helpers::fixtures::organization(&mut app.conn(), "acme");
    let bob = crate::helpers::fixtures::key_owner(&mut app.conn(), &org, "bob@acme.test");
    let (used, used_secret) = crate::helpers::keys::personal(&mut app.conn(), &hasher, &bob, "Used before the stop");
    let (_, in_flight_secret) = crate::helpers::keys::personal(&mut app.conn(), &hasher, &bob, "Asked during the stop");

    let dir = scratch_dir("graceful");
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut child = keyward(&dir)
        .env("DATABASE_URL", &url)
        .env("KEYWARD_SECRET", SECRET)
        .env("KEYWARD_ADDR", format!("127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_until_ready(&base, &mut child).await;
    let verify = |secret: String| {
        let base = base.clone();
        async move { http_client().post(format!("{base}/api/v1/verify")).bearer_auth(secret).send().await.unwrap().status() }
    };
    assert_eq!(verify(used_secret).await, StatusCode::OK);

    // A request held up by a lock is in flight when SIGTERM arrives.
    let mut holder = PgConnection::establish(&url).unwrap();
    holder.batch_execute("BEGIN; LOCK TABLE api_keys IN ACCESS EXCLUSIVE MODE").unwrap();
    let in_flight = actix_web::rt::spawn(verify(in_flight_secret));
    let mut watcher = PgConnection::establish(&url).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let waiting: i64 = diesel::dsl::sql::<diesel::sql_types::BigInt>(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()",
        )
        .get_result(&mut watcher)
        .unwrap();
        if waiting > 0 {
            break;
        }
        assert!(Instant::now() < deadline, "the request reaches the database");
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), nix::sys::signal::Signal::SIGTERM).unwrap();
    // The signal is acted on (no new connections are accepted), and yet the process stays
    // for the request in flight.
    let closed = crate::helpers::within(Duration::from_secs(60), async || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err()
    })
    .await;
    assert!(closed, "SIGTERM stops accepting connections");
    assert!(child.try_wait().unwrap().is_none(), "still serving the request in flight");
    holder.batch_execute("COMMIT").unwrap();
    assert_eq!(in_flight.await.unwrap(), StatusCode::OK, "the request in flight finished");
    assert!(stop(&mut child).success(), "a clean exit");

    let last_used = crate::helpers::keys::reload(&mut app.conn(), &used).unwrap().last_used_at;
    assert!(last_used.is_some(), "the last-use batch was written on the way out");
    let counted: i64 = diesel::dsl::sql::<diesel::sql_types::BigInt>(
        "SELECT coalesce(sum(count), 0)::bigint FROM key_usage_hourly WHERE code = 'VALID'",
    )
    .get_result(&mut *app.conn())
    .unwrap();
    assert_eq!(counted, 2, "the usage counts too, the request in flight included");
}

#[actix_web::test]
async fn serve_waits_for_an_external_database_that_appears_later() {
    let server = TestServer::get();
    // A database that does not exist yet: the orchestrator is still starting it.
    let name = format!("keyward_late_{}", keyward::secrets::random_token(6).to_lowercase().replace(['-', '_'], "x"));
    let dir = scratch_dir("late-database");
    let log_path = dir.join("stderr.log");
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut child = keyward(&dir)
        .env("DATABASE_URL", server.url(&name))
        .env("KEYWARD_SECRET", SECRET)
        .env("KEYWARD_ADDR", format!("127.0.0.1:{port}"))
        .arg("serve")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log_path).unwrap())
        .spawn()
        .unwrap();
    let log = || std::fs::read_to_string(&log_path).unwrap_or_default();
    let waiting_lines = |log: &str| log.lines().filter(|line| line.contains("waiting for the database")).count();

    wait_until_healthy(&base, &mut child).await;
    let client = http_client();
    let readyz = client.get(format!("{base}/readyz")).send().await.unwrap();
    assert_eq!(readyz.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(readyz.text().await.unwrap().contains("waiting for the database"));
    let page = client.get(format!("{base}/login")).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::SERVICE_UNAVAILABLE, "pages answer the unavailable page meanwhile");
    assert!(page.text().await.unwrap().contains("Temporarily unavailable"));
    let api = client.post(format!("{base}/api/v1/verify")).bearer_auth("kw_x").send().await.unwrap();
    assert_eq!(api.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(api.json::<serde_json::Value>().await.unwrap()["error"], "unavailable");
    assert!(
        crate::helpers::within(Duration::from_secs(60), async || waiting_lines(&log()) > 0).await,
        "the wait is logged: {}",
        log()
    );
    // A one-shot command does not wait: it fails at once with one clear line.
    let migrate = keyward(&dir)
        .env("DATABASE_URL", server.url(&name))
        .env("KEYWARD_SECRET", SECRET)
        .arg("migrate")
        .output()
        .unwrap();
    assert_eq!(migrate.status.code(), Some(1));
    assert!(text(&migrate).1.contains("error: cannot connect to the database"), "{:?}", text(&migrate));
    // Let a few attempts fail (the backoff starts at half a second) before the database appears.
    actix_web::rt::time::sleep(Duration::from_secs(4)).await;
    assert!(child.try_wait().unwrap().is_none(), "still running: {}", log());

    let mut admin = PgConnection::establish(&server.url("postgres")).unwrap();
    diesel::sql_query(format!("CREATE DATABASE \"{name}\"")).execute(&mut admin).unwrap();
    let ready = crate::helpers::within(Duration::from_secs(60), async || {
        client.get(format!("{base}/readyz")).send().await.is_ok_and(|r| r.status() == StatusCode::OK)
    })
    .await;
    assert!(ready, "ready once the database exists: {}", log());
    assert_eq!(client.get(format!("{base}/login")).send().await.unwrap().status(), StatusCode::OK);
    assert!(stop(&mut child).success());

    let log = log();
    let attempts: u64 = log
        .split("the database is ready after ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("readiness is logged: {log}"));
    assert!(attempts >= 2, "{log}");
    assert_eq!(waiting_lines(&log), 1, "the wait is logged once, not once per attempt ({attempts} attempts): {log}");
    assert!(log.contains("applied"), "the late database was migrated: {log}");
    server.drop_database(&name);
}
