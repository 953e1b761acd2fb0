//! Webhooks (issue 19, item 3): endpoints on Admin → Webhooks, deliveries from the outbox to a
//! real HTTP receiver started here, which checks every signature itself with the documented
//! algorithm (HMAC-SHA256 of `{webhook-id}.{webhook-timestamp}.{body}` under the `whsec_`
//! secret's bytes); once per event from two `run-jobs` instances run twice; nothing lost when
//! a runner is killed mid-request; backing off and disabling a failing endpoint; refusing
//! private targets; the secret shown once; the test event; who may see what.

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration as StdDuration,
};

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use base64::{Engine, engine::general_purpose::STANDARD as BASE64};
use chrono::{Duration, Utc};
use diesel::prelude::*;
use hmac::{Hmac, KeyInit, Mac};
use keyward::{
    db::{
        models::{ApiKey, Organization, webhook::WebhookDelivery},
        schema::{api_keys, jobs, outbox_events, webhook_deliveries, webhook_endpoints},
    },
    secrets::MasterSecret,
    services::notifications::webhooks::{BACKOFF, MAX_ATTEMPTS, Sent},
};
use reqwest::StatusCode;
use sha2::Sha256;

use crate::{
    cli::{SECRET, keyward, scratch_dir, text},
    helpers::{
        SpawnOptions, TestApp, TestClient, TestServer, audit_count, expires_in, fixtures, keys, location, make_due,
        spawn_app_with, within,
    },
    smtp::SmtpServer,
};

/// How the receiver answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// 200 when the signature checks out, 401 when not.
    Accept,
    /// 500, whatever came.
    Fail,
    /// Holds the request without answering (a receiver that hangs).
    Hang,
}

/// One request the receiver got.
#[derive(Debug, Clone)]
struct Received {
    id: String,
    body: serde_json::Value,
    /// Whether the signature checked out against the secret the receiver knew then.
    valid: bool,
}

#[derive(Default)]
struct Shared {
    secret: Mutex<Option<String>>,
    mode: Mutex<Option<Mode>>,
    received: Mutex<Vec<Received>>,
}

/// A real HTTP receiver on 127.0.0.1 that checks signatures as the README says to.
struct Receiver {
    address: SocketAddr,
    shared: Arc<Shared>,
    handle: actix_web::dev::ServerHandle,
}

/// The Standard Webhooks check, written from the specification (not from Keyward's code):
/// any `v1,` signature of the header equal to the HMAC of the signed content.
fn signature_checks_out(secret: &str, id: &str, timestamp: &str, body: &[u8], header: &str) -> bool {
    let Some(key) = secret.strip_prefix("whsec_").and_then(|k| BASE64.decode(k).ok()) else { return false };
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&key).unwrap();
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(body);
    let expected = BASE64.encode(mac.finalize().into_bytes());
    header.split(' ').filter_map(|s| s.strip_prefix("v1,")).any(|given| given == expected)
}

async fn receive(req: HttpRequest, body: web::Bytes, shared: web::Data<Shared>) -> HttpResponse {
    let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    let (id, timestamp, signature) = (header("webhook-id"), header("webhook-timestamp"), header("webhook-signature"));
    let secret = shared.secret.lock().unwrap().clone();
    let valid = secret.is_some_and(|s| signature_checks_out(&s, &id, &timestamp, &body, &signature));
    let fresh = timestamp.parse::<i64>().is_ok_and(|t| (t - Utc::now().timestamp()).abs() < 3 * 86_400);
    let json = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
    shared.received.lock().unwrap().push(Received { id, body: json, valid: valid && fresh });
    let mode = shared.mode.lock().unwrap().unwrap_or(Mode::Accept);
    match mode {
        Mode::Accept if valid => HttpResponse::Ok().body("thanks"),
        Mode::Accept => HttpResponse::Unauthorized().body("bad signature"),
        Mode::Fail => HttpResponse::InternalServerError().body("the receiver is broken\nfor now"),
        Mode::Hang => {
            actix_web::rt::time::sleep(StdDuration::from_secs(600)).await;
            HttpResponse::Ok().finish()
        }
    }
}

impl Receiver {
    fn start() -> Receiver {
        let shared = Arc::new(Shared::default());
        let data = web::Data::from(shared.clone());
        let server = HttpServer::new(move || App::new().app_data(data.clone()).default_service(web::to(receive)))
            .workers(1)
            .bind("127.0.0.1:0")
            .unwrap();
        let address = server.addrs()[0];
        let server = server.run();
        let handle = server.handle();
        actix_web::rt::spawn(server);
        Receiver { address, shared, handle }
    }

    fn url(&self) -> String {
        format!("http://{}/hooks", self.address)
    }

    fn knows(&self, secret: &str) {
        *self.shared.secret.lock().unwrap() = Some(secret.to_string());
    }

    fn set(&self, mode: Mode) {
        *self.shared.mode.lock().unwrap() = Some(mode);
    }

    fn received(&self) -> Vec<Received> {
        self.shared.received.lock().unwrap().clone()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let handle = self.handle.clone();
        actix_web::rt::spawn(async move { handle.stop(false).await });
    }
}

/// Acme with its administrator signed in, an organization key, and Globex with its own.
struct World {
    app: TestApp,
    acme: Organization,
    admin: TestClient,
    key: ApiKey,
}

async fn world(allow_private: bool) -> World {
    let app = spawn_app_with(SpawnOptions {
        webhook_allow_private: allow_private,
        // `run-jobs` runs with this secret: it must open what the app sealed.
        secret: Some(MasterSecret::from_base64(SECRET).unwrap()),
        ..SpawnOptions::default()
    })
    .await;
    let mut conn = app.conn();
    let (acme, admin) = fixtures::organization_with_admin(&mut conn, "acme");
    let (key, _) = keys::organization(&mut conn, &app.hasher, &admin, "Billing sync");
    fixtures::organization_with_admin(&mut conn, "globex");
    drop(conn);
    let admin = app.signed_in("admin@acme.test").await;
    World { app, acme, admin, key }
}

/// Adds an endpoint through the form: its id and the secret the page showed.
async fn add_endpoint(client: &TestClient, url: &str, event_types: &[&str]) -> (i64, String) {
    client.fetch_csrf_token("/admin/webhooks/new").await;
    let mut fields = vec![("url", url), ("description", "Our receiver")];
    fields.extend(event_types.iter().map(|t| ("event_type", *t)));
    let response = client.post("/admin/webhooks", &fields).await;
    assert_eq!(response.status(), StatusCode::OK);
    let no_store = response.headers().get("cache-control").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    assert!(no_store.contains("no-store"), "{no_store}");
    let page = crate::helpers::Page::parse(&response.text().await.unwrap());
    let secret = page.select("#webhook-secret").text();
    assert!(secret.starts_with("whsec_"), "{page}");
    let done = page.select("[data-dialog-done]").attr("href").unwrap();
    let id = done.rsplit('/').next().unwrap().parse().unwrap();
    (id, secret)
}

/// Sends what is due at the app's clock, as a server instance's runner does after the jobs.
async fn send_due(app: &TestApp) -> Sent {
    let (state, now) = (app.state.clone(), app.now());
    web::block(move || state.webhooks.send_due(&mut state.db.get().unwrap(), now, None).unwrap()).await.unwrap()
}

/// Runs the due jobs (the fan-out among them) at the app's clock, as a server instance would.
fn run_jobs_now(app: &TestApp) {
    diesel::update(jobs::table)
        .set(jobs::next_run_at.eq(Utc::now() - Duration::minutes(1)))
        .execute(&mut *app.conn())
        .unwrap();
    for run in keyward::jobs::run_due(&mut app.conn(), app.now()).unwrap() {
        assert!(!matches!(run.outcome, keyward::jobs::Outcome::Failed(_)), "{run}");
    }
}

fn run_jobs_process(app: &TestApp) -> std::process::Child {
    run_jobs_process_mailing(app, None)
}

/// Two `run-jobs` processes at once, twice, each round finding every job due again (nothing
/// may be sent twice); with mail to `smtp_url` when given.
fn run_twice_from_two_instances(app: &TestApp, smtp_url: Option<&str>) {
    for round in 0..2 {
        let (first, second) = (run_jobs_process_mailing(app, smtp_url), run_jobs_process_mailing(app, smtp_url));
        let outputs = [first.wait_with_output().unwrap(), second.wait_with_output().unwrap()];
        let said: Vec<_> = outputs.iter().map(text).collect();
        assert!(outputs.iter().all(|o| o.status.success()), "round {round}: {said:?}");
        make_due(app);
    }
}

/// `keyward run-jobs` on `app`'s database as another instance, sending mail to `smtp_url`
/// when given.
fn run_jobs_process_mailing(app: &TestApp, smtp_url: Option<&str>) -> std::process::Child {
    let mut command = keyward(&scratch_dir("run-jobs-webhooks"));
    if let Some(url) = smtp_url {
        command.env("KEYWARD_SMTP_URL", url);
    }
    command
        .env("DATABASE_URL", TestServer::get().url(&app.database))
        .env("KEYWARD_SECRET", SECRET)
        .env("KEYWARD_WEBHOOK_ALLOW_PRIVATE", "true")
        .arg("run-jobs")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

fn deliveries(app: &TestApp, endpoint: i64) -> Vec<WebhookDelivery> {
    webhook_deliveries::table
        .filter(webhook_deliveries::endpoint_id.eq(endpoint))
        .order(webhook_deliveries::id.asc())
        .select(WebhookDelivery::as_select())
        .load(&mut *app.conn())
        .unwrap()
}

fn event_id_of(app: &TestApp, event_type: &str, key: &ApiKey) -> i64 {
    outbox_events::table
        .filter(outbox_events::event_type.eq(event_type))
        .filter(outbox_events::api_key_id.eq(key.id))
        .select(outbox_events::id)
        .first(&mut *app.conn())
        .unwrap()
}

#[actix_web::test]
async fn a_key_seven_days_from_expiry_yields_exactly_one_signed_delivery_from_two_runners_run_twice() {
    let w = world(true).await;
    let app = &w.app;
    let receiver = Receiver::start();
    let (endpoint, secret) = add_endpoint(&w.admin, &receiver.url(), &["key.expiring"]).await;
    receiver.knows(&secret);
    expires_in(app, &w.key, Duration::days(7) - Duration::hours(1));

    run_twice_from_two_instances(app, None);

    let event_id = event_id_of(app, "key.expiring", &w.key);
    let received = receiver.received();
    assert_eq!(received.len(), 1, "exactly one delivery: {received:?}");
    let delivery = &received[0];
    assert!(delivery.valid, "the signature checks out with the secret shown once");
    assert_eq!(delivery.id, format!("msg_{event_id}"));
    assert_eq!(delivery.body["type"], "key.expiring");
    assert_eq!(delivery.body["data"]["type"], "key.expiring");
    assert_eq!(delivery.body["data"]["days_before"], 7);
    assert_eq!(delivery.body["data"]["key"]["public_id"], w.key.public_id.as_str());
    assert!(delivery.body["timestamp"].is_string());
    let rows = deliveries(app, endpoint);
    assert_eq!(rows.len(), 1);
    assert_eq!((rows[0].status.as_str(), rows[0].attempts, rows[0].response_status), ("delivered", 1, Some(200)));

    // The log shows it.
    let page = w.admin.open(&format!("/admin/webhooks/{endpoint}")).await;
    assert_eq!(page.select("[data-delivery][data-status=delivered]").len(), 1, "{page}");
    assert!(page.says(&format!("msg_{event_id}")));
}

#[actix_web::test]
async fn a_key_seven_days_from_expiry_yields_exactly_one_email_and_one_webhook_delivery_from_two_instances() {
    let w = world(true).await;
    let app = &w.app;
    let (receiver, relay) = (Receiver::start(), SmtpServer::start());
    let (_, secret) = add_endpoint(&w.admin, &receiver.url(), &["key.expiring"]).await;
    receiver.knows(&secret);
    expires_in(app, &w.key, Duration::days(7) - Duration::hours(1));

    // Two instances (`run-jobs` processes with mail and webhooks configured), each run twice.
    run_twice_from_two_instances(app, Some(&relay.url()));

    let mail = relay.wait_for(1).await;
    let reminders: Vec<_> = mail.iter().filter(|m| m.subject().contains("expires in 7 days")).collect();
    assert_eq!(reminders.len(), 1, "exactly one email: {mail:#?}");
    assert_eq!(reminders[0].to, ["admin@acme.test"], "the key's creator, who is the administrator");
    let received = receiver.received();
    assert_eq!(received.len(), 1, "exactly one webhook delivery: {received:?}");
    assert!(received[0].valid && received[0].body["type"] == "key.expiring");
}

#[actix_web::test]
async fn a_runner_killed_mid_delivery_loses_nothing_and_the_retry_carries_the_same_webhook_id() {
    let w = world(true).await;
    let app = &w.app;
    let receiver = Receiver::start();
    let (endpoint, secret) = add_endpoint(&w.admin, &receiver.url(), &["key.expiring"]).await;
    receiver.knows(&secret);
    receiver.set(Mode::Hang);
    expires_in(app, &w.key, Duration::days(7) - Duration::hours(1));

    let mut runner = run_jobs_process(app);
    assert!(
        within(StdDuration::from_secs(60), async || !receiver.received().is_empty()).await,
        "the runner's request reaches the receiver"
    );
    // Killed while the receiver holds its request: its transaction never commits.
    runner.kill().unwrap();
    runner.wait().unwrap();

    receiver.set(Mode::Accept);
    // The dead runner's lock goes when the server notices the connection closed.
    assert!(
        within(StdDuration::from_secs(30), async || {
            send_due(app).await;
            deliveries(app, endpoint).iter().all(|d| d.status == "delivered")
        })
        .await,
        "the delivery is sent again: {:?}",
        deliveries(app, endpoint)
    );
    let received = receiver.received();
    assert_eq!(received.len(), 2, "{received:?}");
    let event_id = event_id_of(app, "key.expiring", &w.key);
    assert!(received.iter().all(|r| r.id == format!("msg_{event_id}") && r.valid), "{received:?}");
    let rows = deliveries(app, endpoint);
    assert_eq!(rows.len(), 1, "one delivery, not two");
    assert_eq!(rows[0].attempts, 1, "the killed attempt recorded nothing");
}

#[actix_web::test]
async fn a_failing_endpoint_backs_off_for_about_a_day_and_is_then_disabled_with_a_notice() {
    let w = world(true).await;
    let app = &w.app;
    let receiver = Receiver::start();
    let (endpoint, secret) = add_endpoint(&w.admin, &receiver.url(), &["key.deleted"]).await;
    receiver.knows(&secret);
    receiver.set(Mode::Fail);

    // The test event is the first attempt, sent at once.
    let response = w.admin.post(&format!("/admin/webhooks/{endpoint}/test"), &[]).await;
    assert_eq!(location(&response), format!("/admin/webhooks/{endpoint}"));
    let page = w.admin.open(&format!("/admin/webhooks/{endpoint}")).await;
    assert!(page.says("did not accept it"), "{page}");
    assert!(page.says("HTTP 500"), "the answer's status and an excerpt: {page}");

    for (attempt, wait) in BACKOFF.iter().enumerate() {
        let row = &deliveries(app, endpoint)[0];
        assert_eq!(row.attempts, attempt as i32 + 1);
        assert_eq!(row.status, "pending");
        assert_eq!(row.next_attempt_at - row.last_attempt_at.unwrap(), Duration::seconds(*wait), "attempt {attempt}");
        // Not due a second early.
        app.advance(StdDuration::from_secs(*wait as u64 - 1));
        assert_eq!(send_due(app).await, Sent::default(), "attempt {attempt}: not due yet");
        app.advance(StdDuration::from_secs(1));
        assert_eq!(send_due(app).await.failed, 1, "attempt {attempt}");
    }

    let row = &deliveries(app, endpoint)[0];
    assert_eq!((row.status.as_str(), row.attempts, row.response_status), ("failed", MAX_ATTEMPTS, Some(500)));
    let (enabled, reason): (bool, Option<String>) = webhook_endpoints::table
        .find(endpoint)
        .select((webhook_endpoints::enabled, webhook_endpoints::disabled_reason))
        .first(&mut *app.conn())
        .unwrap();
    assert!(!enabled, "disabled after every attempt failed");
    assert!(reason.is_some_and(|r| r.contains("HTTP 500")));
    assert_eq!(audit_count(app, "webhook.disable"), 1);
    let received = receiver.received();
    assert_eq!(received.len(), MAX_ATTEMPTS as usize);
    assert!(received.iter().all(|r| r.valid && r.id == received[0].id), "every retry, the same webhook-id");

    // A disabled endpoint gets nothing new, and says why (to a new session: a day went by).
    let admin = app.signed_in("admin@acme.test").await;
    let list = admin.open("/admin/webhooks").await;
    assert!(list.has("[data-webhooks-failing]"), "{list}");
    let page = admin.open(&format!("/admin/webhooks/{endpoint}")).await;
    assert!(page.select("[data-webhook-disabled]").text().contains("failed every attempt"), "{page}");
    diesel::delete(api_keys::table.find(w.key.id)).execute(&mut *app.conn()).unwrap();
    keyward::services::notifications::emit_key(
        &mut app.conn(),
        &keyward::services::actor::Actor::system("test").at(app.now()),
        keyward::services::notifications::EventType::KeyDeleted,
        &w.key,
        serde_json::json!({}),
    )
    .unwrap();
    run_jobs_now(app);
    assert_eq!(deliveries(app, endpoint).len(), 1, "no delivery queued for a disabled endpoint");
    // The administrators are told by mail (the outbox, without SMTP), with a link to it.
    let told: Vec<(String, String, Option<String>)> = keyward::db::schema::mail_messages::table
        .filter(keyward::db::schema::mail_messages::subject.eq("A webhook endpoint was disabled"))
        .select((
            keyward::db::schema::mail_messages::recipient_email,
            keyward::db::schema::mail_messages::body,
            keyward::db::schema::mail_messages::link_path,
        ))
        .load(&mut *app.conn())
        .unwrap();
    assert_eq!(told.len(), 1, "{told:?}");
    assert_eq!(told[0].0, "admin@acme.test");
    assert!(told[0].1.contains(&receiver.url()) && told[0].1.contains("HTTP 500"), "{told:?}");
    assert_eq!(told[0].2.as_deref(), Some(format!("/admin/webhooks/{endpoint}").as_str()));

    // Enabled again: the notice goes, and deliveries flow.
    receiver.set(Mode::Accept);
    let response = admin.post(&format!("/admin/webhooks/{endpoint}/enable"), &[]).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let page = admin.open(&format!("/admin/webhooks/{endpoint}")).await;
    assert!(!page.has("[data-webhook-disabled]"), "{page}");
    admin.post(&format!("/admin/webhooks/{endpoint}/test"), &[]).await;
    assert!(admin.open(&format!("/admin/webhooks/{endpoint}")).await.says("answered with success"));
}

#[actix_web::test]
async fn private_targets_are_refused_without_the_operators_permission_at_registration_and_at_delivery() {
    let w = world(false).await;
    let app = &w.app;
    let receiver = Receiver::start();
    w.admin.fetch_csrf_token("/admin/webhooks/new").await;
    for url in [
        receiver.url(),
        format!("http://localhost:{}/hooks", receiver.address.port()),
        format!("http://[::ffff:127.0.0.1]:{}/hooks", receiver.address.port()),
        "http://10.0.0.8/hooks".to_string(),
        "http://169.254.169.254/latest".to_string(),
    ] {
        let response = w.admin.post("/admin/webhooks", &[("url", &url), ("event_type", "key.created")]).await;
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY, "{url}");
        let page = crate::helpers::Page::parse(&response.text().await.unwrap());
        assert!(page.says("KEYWARD_WEBHOOK_ALLOW_PRIVATE"), "{url}: {page}");
        assert_eq!(page.field("url").as_deref(), Some(url.as_str()), "the input is kept");
    }
    let bad = w.admin.post("/admin/webhooks", &[("url", "ftp://example.com/"), ("event_type", "nope")]).await;
    assert_eq!(bad.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let page = crate::helpers::Page::parse(&bad.text().await.unwrap());
    assert!(page.says("http:// or https://") && page.says("at least one event type"), "{page}");
    let count: i64 = webhook_endpoints::table.count().get_result(&mut *app.conn()).unwrap();
    assert_eq!(count, 0);

    // An endpoint whose name resolves to a private address by the time of delivery (DNS
    // rebinding), or stored by other means: refused when sending, the receiver untouched.
    let secret = keyward::services::notifications::webhooks::new_secret();
    let sealed = app.state.webhooks.seal().seal(w.acme.id, &secret).unwrap();
    for url in [format!("http://localhost:{}/hooks", receiver.address.port()), receiver.url()] {
        let id: i64 = diesel::insert_into(webhook_endpoints::table)
            .values((
                webhook_endpoints::organization_id.eq(w.acme.id),
                webhook_endpoints::url.eq(&url),
                webhook_endpoints::event_types.eq(vec!["key.created".to_string()]),
                webhook_endpoints::secret_sealed.eq(&sealed),
                webhook_endpoints::created_at.eq(Utc::now()),
                webhook_endpoints::updated_at.eq(Utc::now()),
            ))
            .returning(webhook_endpoints::id)
            .get_result(&mut *app.conn())
            .unwrap();
        let response = w.admin.post(&format!("/admin/webhooks/{id}/test"), &[]).await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        let row = &deliveries(app, id)[0];
        assert_eq!((row.status.as_str(), row.response_status), ("pending", None), "{url}");
        assert!(
            row.last_error.as_deref().is_some_and(|e| e.contains("private") || e.contains("no address")),
            "{row:?}"
        );
    }
    assert!(receiver.received().is_empty(), "nothing reached the private address");
}

#[actix_web::test]
async fn the_secret_is_shown_once_sealed_at_rest_and_a_rotated_one_signs_from_then_on() {
    let w = world(true).await;
    let app = &w.app;
    let receiver = Receiver::start();
    let (endpoint, secret) = add_endpoint(&w.admin, &receiver.url(), &["key.created", "key.deleted"]).await;
    assert_eq!(audit_count(app, "webhook.create"), 1);

    let page = w.admin.open(&format!("/admin/webhooks/{endpoint}")).await;
    assert!(!page.body.contains(&secret) && !page.body.contains("whsec_"), "the endpoint page never shows it");
    let list = w.admin.open("/admin/webhooks").await;
    assert!(!list.body.contains(&secret));
    let sealed: Vec<u8> = webhook_endpoints::table
        .find(endpoint)
        .select(webhook_endpoints::secret_sealed)
        .first(&mut *app.conn())
        .unwrap();
    let raw = BASE64.decode(secret.trim_start_matches("whsec_")).unwrap();
    assert_eq!(raw.len(), 32);
    assert!(!sealed.windows(raw.len()).any(|w| w == raw.as_slice()), "stored sealed, not as is");

    // Rotating shows a new one; deliveries are signed with it (the old one no longer works).
    w.admin.fetch_csrf_token(&format!("/admin/webhooks/{endpoint}/rotate")).await;
    let response = w.admin.post(&format!("/admin/webhooks/{endpoint}/rotate"), &[]).await;
    assert_eq!(response.status(), StatusCode::OK);
    let rotated = crate::helpers::Page::parse(&response.text().await.unwrap()).select("#webhook-secret").text();
    assert!(rotated.starts_with("whsec_") && rotated != secret);
    assert_eq!(audit_count(app, "webhook.rotate_secret"), 1);
    receiver.knows(&secret);
    w.admin.post(&format!("/admin/webhooks/{endpoint}/test"), &[]).await;
    assert!(!receiver.received()[0].valid, "the old secret no longer verifies");
    receiver.knows(&rotated);
    app.advance(StdDuration::from_secs(BACKOFF[0] as u64));
    assert_eq!(send_due(app).await.delivered, 1);
    assert!(receiver.received()[1].valid);

    // Revealing a secret asks for a recent sign-in (sudo mode), like adding an endpoint.
    app.advance(StdDuration::from_secs(11 * 60));
    let response = w.admin.post(&format!("/admin/webhooks/{endpoint}/rotate"), &[]).await;
    assert!(location(&response).starts_with("/account/confirm"), "{}", location(&response));
    assert!(location(&w.admin.get("/admin/webhooks/new").await).starts_with("/account/confirm"));
    assert_eq!(audit_count(app, "webhook.rotate_secret"), 1, "not rotated without the confirmation");
}

#[actix_web::test]
async fn send_test_event_delivers_a_signed_test_event_and_logs_it() {
    let w = world(true).await;
    let app = &w.app;
    let receiver = Receiver::start();
    let (endpoint, secret) = add_endpoint(&w.admin, &receiver.url(), &["key.created"]).await;
    receiver.knows(&secret);
    let response = w.admin.post(&format!("/admin/webhooks/{endpoint}/test"), &[]).await;
    assert_eq!(location(&response), format!("/admin/webhooks/{endpoint}"));
    let page = w.admin.open(&format!("/admin/webhooks/{endpoint}")).await;
    assert!(page.says("answered with success"), "{page}");
    assert_eq!(page.select("[data-delivery][data-status=delivered]").len(), 1);
    assert!(page.says("HTTP 200"));
    let received = receiver.received();
    assert_eq!(received.len(), 1);
    assert!(received[0].valid);
    assert_eq!(received[0].body["type"], "webhook.test");
    assert_eq!(received[0].body["data"]["endpoint"]["id"], endpoint);
    assert_eq!(audit_count(app, "webhook.test"), 1);
    // Only to this endpoint, and to nobody's mail.
    let other = Receiver::start();
    add_endpoint(&w.admin, &other.url(), &["key.created"]).await;
    run_jobs_now(app);
    send_due(app).await;
    assert!(other.received().iter().all(|r| r.body["type"] != "webhook.test"));
    let mail: i64 = keyward::db::schema::mail_messages::table.count().get_result(&mut *app.conn()).unwrap();
    let test_mail: i64 = keyward::db::schema::mail_messages::table
        .inner_join(outbox_events::table)
        .filter(outbox_events::event_type.eq("webhook.test"))
        .count()
        .get_result(&mut *app.conn())
        .unwrap();
    assert_eq!(test_mail, 0, "of {mail} messages");
}

#[actix_web::test]
async fn only_the_organizations_administrators_reach_its_webhooks() {
    let w = world(true).await;
    let app = &w.app;
    let receiver = Receiver::start();
    let (endpoint, _) = add_endpoint(&w.admin, &receiver.url(), &["key.created"]).await;
    fixtures::key_owner(&mut app.conn(), &w.acme, "bob@acme.test");
    let bob = app.signed_in("bob@acme.test").await;
    for path in ["/admin/webhooks".to_string(), "/admin/webhooks/new".into(), format!("/admin/webhooks/{endpoint}")] {
        assert_eq!(bob.get(&path).await.status(), StatusCode::FORBIDDEN, "{path}");
    }
    bob.fetch_csrf_token("/account").await;
    let response = bob.post(&format!("/admin/webhooks/{endpoint}/delete"), &[]).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);

    let globex = app.signed_in("admin@globex.test").await;
    assert!(!globex.open("/admin/webhooks").await.body.contains(&receiver.url()), "another organization's list");
    for path in [format!("/admin/webhooks/{endpoint}"), format!("/admin/webhooks/{endpoint}/delete")] {
        assert_eq!(globex.get(&path).await.status(), StatusCode::NOT_FOUND, "{path}");
    }
    globex.fetch_csrf_token("/admin/webhooks").await;
    for action in ["test", "disable", "rotate", "delete"] {
        let response = globex.post(&format!("/admin/webhooks/{endpoint}/{action}"), &[]).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{action}");
    }
    assert!(receiver.received().is_empty());
    let enabled: bool =
        webhook_endpoints::table.find(endpoint).select(webhook_endpoints::enabled).first(&mut *app.conn()).unwrap();
    assert!(enabled, "untouched");

    // Its own administrator deletes it, after a confirmation page.
    let confirm = w.admin.open(&format!("/admin/webhooks/{endpoint}/delete")).await;
    assert!(confirm.has_form(&format!("/admin/webhooks/{endpoint}/delete")));
    let response = w.admin.post(&format!("/admin/webhooks/{endpoint}/delete"), &[]).await;
    assert_eq!(location(&response), "/admin/webhooks");
    assert_eq!(audit_count(app, "webhook.delete"), 1);
    assert!(w.admin.open("/admin/webhooks").await.says("No webhook endpoints yet"));
}

#[actix_web::test]
async fn in_a_browser_an_administrator_adds_an_endpoint_copies_its_secret_and_sends_a_test_event() {
    use crate::browser::Browser;
    let w = world(true).await;
    let receiver = Receiver::start();
    let browser = Browser::open(&w.app, true).await;
    browser.sign_in("admin@acme.test").await;
    browser.goto("/admin/webhooks").await;
    browser.axe("document").await;
    browser.open_dialog(".page-head a[data-dialog]").await;
    browser.find("dialog #webhook-url").await.send_keys(&receiver.url()).await.unwrap();
    browser.axe("dialog[open]").await;
    browser.find("dialog button[type=submit]").await.click().await.unwrap();

    let secret = browser.find("dialog[open] #webhook-secret").await.prop("value").await.unwrap().unwrap();
    assert!(secret.starts_with("whsec_"), "{secret}");
    browser.axe("dialog[open]").await;
    receiver.knows(&secret);
    browser.find("dialog[open] [data-dialog-done]").await.click().await.unwrap();
    browser.wait_for_text("h1", &receiver.url()).await;
    assert!(!browser.client.source().await.unwrap().contains(&secret), "the secret is gone from the page");

    browser.find("form[action$='/test'] button").await.click().await.unwrap();
    browser.wait_for_text(".flash-success", "answered with success").await;
    browser.axe("document").await;
    assert!(receiver.received().iter().all(|r| r.valid));
    assert_eq!(receiver.received().len(), 1);
    browser.close().await;
}
