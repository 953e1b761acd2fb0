//! The `webhook` channel: deliveries of the outbox's events to the endpoints administrators
//! registered, signed per the Standard Webhooks specification.
//!
//! Two steps, for two different kinds of work:
//! - the `deliver-webhooks` job ([`fan_out`]) turns each event's pending `webhook` outbox
//!   delivery into one `webhook_deliveries` row per enabled endpoint of the event's
//!   organization subscribed to its type. Pure database work, in the job's transaction, once.
//! - [`WebhookSender::send_due`] (after the jobs, in every server instance each minute and in
//!   `keyward run-jobs`) claims one due row at a time with `FOR UPDATE SKIP LOCKED`, POSTs it
//!   and records the answer in that row's own transaction. The HTTP request stays out of the
//!   jobs' transaction, so one slow endpoint holds one row, not every delivery; a process that
//!   dies mid-request rolls back to "pending" and the delivery is sent again, with the same
//!   `webhook-id` (`msg_<event id>`): at least once, deduplicated by the receiver.
//!
//! Failures are retried on [`BACKOFF`] (about a day in all); a delivery whose every attempt
//! failed is `failed`, and its endpoint is disabled with a notice (audited) until an
//! administrator enables it again. Targets on loopback, link-local and private addresses are
//! refused unless the operator allows them, on the addresses the name resolves to at each
//! delivery (a name that later resolves elsewhere — DNS rebinding — is caught there too).

use std::{
    io::Read,
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
    sync::Arc,
    time::{Duration, Instant},
};

use aes_gcm::{
    Aes256Gcm, KeyInit, Nonce,
    aead::{Aead, Payload},
};
use base64::{Engine, engine::general_purpose::STANDARD as BASE64};
use chrono::{DateTime, Utc};
use diesel::{Connection, PgConnection, prelude::*};
use hmac::{Hmac, KeyInit as HmacKeyInit, Mac};
use serde_json::json;
use sha2::Sha256;

use crate::{
    db::{
        models::{outbox::OutboxEvent, webhook::WebhookEndpoint},
        schema::{outbox_events, webhook_deliveries, webhook_endpoints},
    },
    error::AppError,
    secrets::{DerivedKeys, fill_random},
    services::{
        actor::Actor,
        audit::{self, Entry, Target},
        audit_action::AuditAction,
    },
};

/// The channel's name in `outbox_deliveries`.
pub const CHANNEL: &str = "webhook";

/// The type of the event "send test event" sends (to that one endpoint only).
pub const TEST_EVENT: &str = "webhook.test";

/// The notice to administrators that Keyward disabled a failing endpoint: mail only (a
/// receiver that keeps failing is the one place it could not go).
pub const DISABLED_EVENT: &str = "webhook.disabled";

/// The wait after each failed attempt: 30 s, 2 min, 10 min, 30 min, 1 h, 3 h, 6 h, 12 h —
/// about 23 hours from the first attempt to the last.
pub const BACKOFF: [i64; 8] = [30, 120, 600, 1800, 3600, 3 * 3600, 6 * 3600, 12 * 3600];

/// Attempts before a delivery fails for good (and its endpoint is disabled).
pub const MAX_ATTEMPTS: i32 = BACKOFF.len() as i32 + 1;

/// The most outbox events one `deliver-webhooks` run fans out (the next run takes the rest).
const FAN_OUT_BATCH: i64 = 500;

/// How long one [`WebhookSender::send_due`] keeps claiming deliveries: the server's runner
/// holds a pooled connection meanwhile, and the next minute continues.
const SEND_BUDGET: Duration = Duration::from_secs(45);

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// How much of an answer's body is read, and kept (in the delivery's error) when it failed.
const BODY_READ: u64 = 1024;
const BODY_KEPT: usize = 200;

/// The `webhook-id` of an event's deliveries: stable across retries, instances and endpoints.
pub fn webhook_id(event_id: i64) -> String {
    format!("msg_{event_id}")
}

/// The `deliver-webhooks` job: fans the due `webhook` outbox deliveries out to the
/// subscribed, enabled endpoints of their events' organizations (events of service
/// providers' keys have no endpoints yet and are done at once).
pub fn fan_out(conn: &mut PgConnection, now: DateTime<Utc>) -> Result<String, AppError> {
    let claimed = OutboxEvent::claim_due(conn, CHANNEL, now, FAN_OUT_BATCH)?;
    let mut queued = 0;
    for (delivery_id, event) in &claimed {
        if let Some(organization_id) = event.organization_id {
            let endpoints: Vec<i64> = webhook_endpoints::table
                .filter(webhook_endpoints::organization_id.eq(organization_id))
                .filter(webhook_endpoints::enabled.eq(true))
                .filter(webhook_endpoints::event_types.contains(vec![event.event_type.clone()]))
                .select(webhook_endpoints::id)
                .load(conn)?;
            queued += queue(conn, event.id, &endpoints, now)?;
        }
        OutboxEvent::delivered(conn, *delivery_id, now)?;
    }
    Ok(format!("{queued} delivery(ies) queued for {} event(s)", claimed.len()))
}

/// Writes a pending delivery of `event_id` to each endpoint, due at `now` (none twice).
fn queue(conn: &mut PgConnection, event_id: i64, endpoints: &[i64], now: DateTime<Utc>) -> QueryResult<usize> {
    if endpoints.is_empty() {
        return Ok(0);
    }
    diesel::insert_into(webhook_deliveries::table)
        .values(
            endpoints
                .iter()
                .map(|endpoint| {
                    (
                        webhook_deliveries::event_id.eq(event_id),
                        webhook_deliveries::endpoint_id.eq(*endpoint),
                        webhook_deliveries::next_attempt_at.eq(now),
                        webhook_deliveries::created_at.eq(now),
                    )
                })
                .collect::<Vec<_>>(),
        )
        .on_conflict_do_nothing()
        .execute(conn)
}

/// Writes a `webhook.test` event for `endpoint` and its one delivery, due now: the id of the
/// delivery.
pub fn queue_test(conn: &mut PgConnection, actor: &Actor, endpoint: &WebhookEndpoint) -> Result<i64, AppError> {
    let payload = json!({
        "type": TEST_EVENT,
        "occurred_at": actor.now,
        "actor": super::actor_json(actor),
        "endpoint": { "id": endpoint.id, "url": endpoint.url },
    });
    let event_id = OutboxEvent::insert(
        conn,
        &crate::db::models::outbox::NewOutboxEvent {
            event_type: TEST_EVENT,
            organization_id: Some(endpoint.organization_id),
            service_provider_id: None,
            api_key_id: None,
            user_id: None,
            occasion: None,
            key_expires_at: None,
            payload: &payload,
            created_at: actor.now,
        },
        // No channel: a test event goes to this endpoint only, and to nobody's mail.
        &[],
    )?
    .ok_or_else(|| AppError::Internal("a test event was not written".into()))?;
    queue(conn, event_id, &[endpoint.id], actor.now)?;
    audit::record(
        conn,
        actor,
        Entry::new(AuditAction::WebhookTest).organization(Some(endpoint.organization_id)).target(Target::new(
            "webhook",
            endpoint.id,
            &endpoint.url,
        )),
    )?;
    webhook_deliveries::table
        .filter(webhook_deliveries::event_id.eq(event_id))
        .select(webhook_deliveries::id)
        .first(conn)
        .map_err(AppError::from)
}

/// The body of a delivery: the Standard Webhooks envelope around the event as stored.
pub fn body(event: &OutboxEvent) -> String {
    json!({
        "type": event.event_type,
        "timestamp": event.created_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "data": event.payload,
    })
    .to_string()
}

/// `v1,<base64 of HMAC-SHA256(secret, "{id}.{timestamp}.{body}")>`, the signature of the
/// Standard Webhooks specification.
pub fn sign(secret: &[u8], id: &str, timestamp: i64, body: &str) -> String {
    let mut mac = <Hmac<Sha256> as HmacKeyInit>::new_from_slice(secret).expect("HMAC takes a key of any length");
    mac.update(format!("{id}.{timestamp}.{body}").as_bytes());
    format!("v1,{}", BASE64.encode(mac.finalize().into_bytes()))
}

/// A new signing secret: 32 random bytes.
pub fn new_secret() -> Vec<u8> {
    let mut secret = vec![0u8; 32];
    fill_random(&mut secret);
    secret
}

/// How the secret is shown (once): `whsec_` and its base64, as the specification writes it.
pub fn display_secret(secret: &[u8]) -> String {
    format!("whsec_{}", BASE64.encode(secret))
}

/// Whether an address is one webhooks must not reach unless the operator allows private
/// targets: loopback, link-local, private (RFC 1918), carrier-grade NAT, unique-local,
/// unspecified, "this network", multicast, broadcast, benchmarking, documentation, IETF
/// protocol and reserved ranges, site-local, Teredo, discard and local-use NAT64 prefixes, and
/// any of those inside IPv4-mapped, IPv4-translated, IPv4-compatible, NAT64 and 6to4 IPv6
/// addresses.
pub fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => private_v4(v4),
        IpAddr::V6(v6) => private_v6(v6),
    }
}

fn private_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        || (a == 100 && (64..128).contains(&b))
        // IETF protocol assignments (192.0.0.0/24) and benchmarking (198.18.0.0/15).
        || (a == 192 && b == 0 && c == 0)
        || (a == 198 && (b & 0xfe) == 18)
        || a >= 240
}

fn private_v6(ip: Ipv6Addr) -> bool {
    let segments = ip.segments();
    let embedded_v4 = |hi: u16, lo: u16| Ipv4Addr::new((hi >> 8) as u8, hi as u8, (lo >> 8) as u8, lo as u8);
    if let Some(v4) = ip.to_ipv4_mapped() {
        return private_v4(v4);
    }
    // ::a.b.c.d (IPv4-compatible, deprecated but still routed by some stacks).
    if segments[..6] == [0; 6] && !ip.is_loopback() && !ip.is_unspecified() {
        return private_v4(embedded_v4(segments[6], segments[7]));
    }
    // NAT64 (64:ff9b::/96) and 6to4 (2002::/16) carry an IPv4 address too.
    if segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return private_v4(embedded_v4(segments[6], segments[7]));
    }
    if segments[0] == 0x2002 {
        return private_v4(embedded_v4(segments[1], segments[2]));
    }
    // IPv4-translated (::ffff:0:a.b.c.d).
    if segments[..6] == [0, 0, 0, 0, 0xffff, 0] {
        return private_v4(embedded_v4(segments[6], segments[7]));
    }
    ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        || (segments[0] & 0xfe00) == 0xfc00
        || (segments[0] & 0xffc0) == 0xfe80
        // Site-local (fec0::/10), Teredo (2001::/32), documentation (2001:db8::/32),
        // local-use NAT64 (64:ff9b:1::/48) and discard-only (100::/64).
        || (segments[0] & 0xffc0) == 0xfec0
        || segments[..2] == [0x2001, 0]
        || segments[..2] == [0x2001, 0xdb8]
        || segments[..3] == [0x64, 0xff9b, 1]
        || segments[..4] == [0x100, 0, 0, 0]
}

/// Checks a URL an administrator gives: http or https, a host, no credentials, and (unless
/// private targets are allowed) no private address, literal or resolved. The normalized URL.
pub fn check_url(text: &str, allow_private: bool) -> Result<String, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("Enter the URL Keyward should POST events to.".into());
    }
    if text.len() > 2000 {
        return Err("Use a URL of at most 2000 characters.".into());
    }
    let url =
        reqwest::Url::parse(text).map_err(|_| "Enter a full URL, such as https://example.com/hooks.".to_string())?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err("Use an http:// or https:// URL.".into());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("Leave credentials out of the URL: each delivery is signed instead.".into());
    }
    let Some(host) = url.host() else { return Err("The URL needs a host name.".into()) };
    if !allow_private {
        let port = url.port_or_known_default().unwrap_or(443);
        let addresses: Vec<IpAddr> = match host {
            url::Host::Ipv4(ip) => vec![IpAddr::V4(ip)],
            url::Host::Ipv6(ip) => vec![IpAddr::V6(ip)],
            url::Host::Domain(name) => std::net::ToSocketAddrs::to_socket_addrs(&(name, port))
                .map_err(|_| format!("The host name {name} does not resolve."))?
                .map(|a| a.ip())
                .collect(),
        };
        if addresses.iter().any(|ip| is_private(*ip)) {
            return Err("This URL is on a loopback, link-local or private address, which this Keyward does not \
                        send webhooks to (the operator can allow it with KEYWARD_WEBHOOK_ALLOW_PRIVATE)."
                .into());
        }
    }
    // Normalizing percent-encodes what needs it, which can lengthen the URL.
    let normalized = url.to_string();
    if normalized.len() > 2000 {
        return Err("Use a URL of at most 2000 characters.".into());
    }
    Ok(normalized)
}

/// Seals signing secrets for the database (AES-256-GCM, under a key derived from the master
/// secret); the organization is authenticated data, so a sealed secret moved to another
/// organization's endpoint does not open.
#[derive(Clone)]
pub struct SecretSeal {
    cipher: Aes256Gcm,
}

const NONCE_BYTES: usize = 12;

impl SecretSeal {
    pub fn new(keys: &DerivedKeys) -> Self {
        Self { cipher: Aes256Gcm::new((&keys.webhook_seal_key).into()) }
    }

    fn label(organization_id: i64) -> String {
        format!("webhook secret of organization {organization_id}")
    }

    /// `nonce || ciphertext || tag`.
    pub fn seal(&self, organization_id: i64, secret: &[u8]) -> Result<Vec<u8>, AppError> {
        let mut nonce = [0u8; NONCE_BYTES];
        fill_random(&mut nonce);
        let label = Self::label(organization_id);
        let sealed = self
            .cipher
            .encrypt(Nonce::from_slice(&nonce), Payload { msg: secret, aad: label.as_bytes() })
            .map_err(|_| AppError::Internal("cannot seal a webhook secret".into()))?;
        Ok([nonce.as_slice(), &sealed].concat())
    }

    pub fn open(&self, organization_id: i64, sealed: &[u8]) -> Result<Vec<u8>, AppError> {
        if sealed.len() <= NONCE_BYTES {
            return Err(AppError::Internal("a sealed webhook secret is truncated".into()));
        }
        let (nonce, ciphertext) = sealed.split_at(NONCE_BYTES);
        let label = Self::label(organization_id);
        self.cipher.decrypt(Nonce::from_slice(nonce), Payload { msg: ciphertext, aad: label.as_bytes() }).map_err(
            |_| AppError::Internal(format!("a webhook secret of organization {organization_id} does not open")),
        )
    }
}

/// What one [`WebhookSender::send_due`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sent {
    pub delivered: usize,
    /// Failed attempts (retried later, or failed for good).
    pub failed: usize,
    /// Endpoints disabled because a delivery failed every attempt.
    pub disabled: usize,
}

impl std::fmt::Display for Sent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} delivered, {} failed attempt(s), {} endpoint(s) disabled",
            self.delivered, self.failed, self.disabled
        )
    }
}

/// How one attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    /// The answer's HTTP status, if one came.
    pub status: Option<u16>,
    /// Why it failed (none: a 2xx answer).
    pub error: Option<String>,
}

/// Signs and sends deliveries; one per instance (in `AppState`) and per `run-jobs`.
pub struct WebhookSender {
    seal: SecretSeal,
    allow_private: bool,
    client: std::sync::OnceLock<Result<reqwest::blocking::Client, String>>,
}

impl std::fmt::Debug for WebhookSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookSender").field("allow_private", &self.allow_private).finish_non_exhaustive()
    }
}

/// Resolves host names for the HTTP client, refusing private addresses at connection time.
struct CheckedResolver {
    allow_private: bool,
}

impl reqwest::dns::Resolve for CheckedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let allow_private = self.allow_private;
        let host = name.as_str().to_string();
        Box::pin(async move {
            let found: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let allowed: Vec<SocketAddr> = found.into_iter().filter(|a| allow_private || !is_private(a.ip())).collect();
            if allowed.is_empty() {
                return Err(format!("{host} resolves to no address webhooks may be sent to").into());
            }
            let addrs: reqwest::dns::Addrs = Box::new(allowed.into_iter());
            Ok(addrs)
        })
    }
}

impl WebhookSender {
    pub fn new(keys: &DerivedKeys, allow_private: bool) -> Self {
        Self { seal: SecretSeal::new(keys), allow_private, client: std::sync::OnceLock::new() }
    }

    pub fn seal(&self) -> &SecretSeal {
        &self.seal
    }

    pub fn allow_private(&self) -> bool {
        self.allow_private
    }

    /// The HTTP client, built on first use (a blocking client starts a thread of its own,
    /// which instances that never send need not have).
    fn client(&self) -> Result<&reqwest::blocking::Client, String> {
        self.client
            .get_or_init(|| {
                reqwest::blocking::Client::builder()
                    .connect_timeout(CONNECT_TIMEOUT)
                    .timeout(REQUEST_TIMEOUT)
                    // A redirect could lead anywhere, private addresses included: the
                    // endpoint must answer itself.
                    .redirect(reqwest::redirect::Policy::none())
                    .no_proxy()
                    .user_agent(concat!("Keyward-Webhooks/", env!("CARGO_PKG_VERSION")))
                    .dns_resolver(Arc::new(CheckedResolver { allow_private: self.allow_private }))
                    .build()
                    .map_err(|e| format!("cannot start the HTTP client: {e}"))
            })
            .as_ref()
            .map_err(Clone::clone)
    }

    /// Sends the deliveries due at `now` (or only delivery `only`), one per transaction, for
    /// at most [`SEND_BUDGET`]; what happened.
    pub fn send_due(&self, conn: &mut PgConnection, now: DateTime<Utc>, only: Option<i64>) -> Result<Sent, AppError> {
        let started = Instant::now();
        let mut sent = Sent::default();
        while started.elapsed() < SEND_BUDGET {
            let done = conn.transaction::<_, AppError, _>(|conn| self.send_one(conn, now, only, &mut sent))?;
            if !done || only.is_some() {
                break;
            }
        }
        Ok(sent)
    }

    /// Claims one due delivery and sends it, in the caller's transaction: whether there was one.
    fn send_one(
        &self,
        conn: &mut PgConnection,
        now: DateTime<Utc>,
        only: Option<i64>,
        sent: &mut Sent,
    ) -> Result<bool, AppError> {
        let enabled =
            webhook_endpoints::table.filter(webhook_endpoints::enabled.eq(true)).select(webhook_endpoints::id);
        // One delivery, or any: a range keeps the query unboxed, which `FOR UPDATE` needs.
        let (lowest, highest) = only.map_or((i64::MIN, i64::MAX), |id| (id, id));
        let claimed: Option<(i64, i64, i64, i32)> = webhook_deliveries::table
            .filter(webhook_deliveries::status.eq("pending"))
            .filter(webhook_deliveries::next_attempt_at.le(now))
            .filter(webhook_deliveries::endpoint_id.eq_any(enabled))
            .filter(webhook_deliveries::id.between(lowest, highest))
            .order((webhook_deliveries::next_attempt_at.asc(), webhook_deliveries::id.asc()))
            .select((
                webhook_deliveries::id,
                webhook_deliveries::event_id,
                webhook_deliveries::endpoint_id,
                webhook_deliveries::attempts,
            ))
            .for_update()
            .skip_locked()
            .first(conn)
            .optional()?;
        let Some((delivery_id, event_id, endpoint_id, attempts)) = claimed else { return Ok(false) };
        let endpoint: WebhookEndpoint =
            webhook_endpoints::table.find(endpoint_id).select(WebhookEndpoint::as_select()).first(conn)?;
        let event: OutboxEvent = outbox_events::table.find(event_id).select(OutboxEvent::as_select()).first(conn)?;
        let attempt = match self.seal.open(endpoint.organization_id, &endpoint.secret_sealed) {
            Ok(secret) => self.post(&endpoint.url, &secret, &event, now),
            Err(e) => {
                log::error!("webhook endpoint {}: {e}", endpoint.id);
                Attempt { status: None, error: Some("the signing secret cannot be read; rotate it".into()) }
            }
        };
        let attempts = attempts + 1;
        let status = attempt.status.map(i32::from);
        if attempt.error.is_none() {
            diesel::update(webhook_deliveries::table.find(delivery_id))
                .set((
                    webhook_deliveries::status.eq("delivered"),
                    webhook_deliveries::attempts.eq(attempts),
                    webhook_deliveries::last_attempt_at.eq(Some(now)),
                    webhook_deliveries::response_status.eq(status),
                    webhook_deliveries::last_error.eq(None::<String>),
                ))
                .execute(conn)?;
            diesel::update(webhook_endpoints::table.find(endpoint_id))
                .set(webhook_endpoints::consecutive_failures.eq(0))
                .execute(conn)?;
            sent.delivered += 1;
            return Ok(true);
        }
        sent.failed += 1;
        let error = attempt.error.unwrap_or_default();
        let gives_up = attempts >= MAX_ATTEMPTS;
        let wait = BACKOFF.get((attempts - 1).max(0) as usize).copied().unwrap_or(0);
        diesel::update(webhook_deliveries::table.find(delivery_id))
            .set((
                webhook_deliveries::status.eq(if gives_up { "failed" } else { "pending" }),
                webhook_deliveries::attempts.eq(attempts),
                webhook_deliveries::last_attempt_at.eq(Some(now)),
                webhook_deliveries::next_attempt_at.eq(now + chrono::Duration::seconds(wait)),
                webhook_deliveries::response_status.eq(status),
                webhook_deliveries::last_error.eq(Some(error.chars().take(500).collect::<String>())),
            ))
            .execute(conn)?;
        diesel::update(webhook_endpoints::table.find(endpoint_id))
            .set(webhook_endpoints::consecutive_failures.eq(webhook_endpoints::consecutive_failures + 1))
            .execute(conn)?;
        if gives_up && endpoint.enabled {
            disable_failing(conn, &endpoint, &error, now)?;
            sent.disabled += 1;
        }
        Ok(true)
    }

    /// POSTs `event` to `url`, signed with `secret`, at `now`.
    fn post(&self, url: &str, secret: &[u8], event: &OutboxEvent, now: DateTime<Utc>) -> Attempt {
        let failed = |error: String| Attempt { status: None, error: Some(error) };
        // A literal address skips the resolver: check it here.
        if let Ok(parsed) = reqwest::Url::parse(url) {
            let literal = match parsed.host() {
                Some(url::Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
                Some(url::Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
                _ => None,
            };
            if literal.is_some_and(is_private) && !self.allow_private {
                return failed("the endpoint is on a private address, which this Keyward does not send to".into());
            }
        }
        let client = match self.client() {
            Ok(client) => client,
            Err(e) => return failed(e),
        };
        let id = webhook_id(event.id);
        let timestamp = now.timestamp();
        let body = body(event);
        let signature = sign(secret, &id, timestamp, &body);
        let answer = client
            .post(url)
            .header("content-type", "application/json")
            .header("webhook-id", &id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(body)
            .send();
        match answer {
            Ok(response) => {
                let status = response.status();
                let mut excerpt = Vec::new();
                let _ = response.take(BODY_READ).read_to_end(&mut excerpt);
                if status.is_success() {
                    Attempt { status: Some(status.as_u16()), error: None }
                } else {
                    let text: String = String::from_utf8_lossy(&excerpt).chars().take(BODY_KEPT).collect();
                    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
                    let error =
                        if text.is_empty() { format!("HTTP {status}") } else { format!("HTTP {status}: {text}") };
                    Attempt { status: Some(status.as_u16()), error: Some(error) }
                }
            }
            Err(e) if e.is_timeout() => failed("no answer within 10 seconds".into()),
            Err(e) if e.is_connect() => failed(format!("cannot connect: {}", root_cause(&e))),
            Err(e) => failed(format!("the request failed: {}", root_cause(&e))),
        }
    }
}

/// The innermost error's words (reqwest's outer ones only say "error sending request").
fn root_cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut inner = error;
    while let Some(source) = inner.source() {
        inner = source;
    }
    inner.to_string()
}

/// The kind of a delivery's failure without the receiver's own words (`HTTP 500: …` →
/// `HTTP 500`).
fn failure_kind(error: &str) -> &str {
    match error.split_once(": ") {
        Some((head, _)) if head.starts_with("HTTP ") => head,
        _ => error,
    }
}

/// Disables an endpoint whose deliveries kept failing, saying why on its page and in a
/// message to the organization's administrators, audited as Keyward's doing.
fn disable_failing(
    conn: &mut PgConnection,
    endpoint: &WebhookEndpoint,
    last_error: &str,
    now: DateTime<Utc>,
) -> Result<(), AppError> {
    let reason = format!(
        "Keyward disabled this endpoint because a delivery failed every attempt for about a day (last: {}). \
         Fix the receiver, then enable it again.",
        last_error.chars().take(120).collect::<String>()
    );
    diesel::update(webhook_endpoints::table.find(endpoint.id))
        .set((
            webhook_endpoints::enabled.eq(false),
            webhook_endpoints::disabled_reason.eq(Some(reason.chars().take(300).collect::<String>())),
            webhook_endpoints::disabled_at.eq(Some(now)),
            webhook_endpoints::updated_at.eq(now),
        ))
        .execute(conn)?;
    let actor = Actor::system("run-jobs").at(now);
    let payload = json!({
        "type": DISABLED_EVENT,
        "occurred_at": now,
        "actor": super::actor_json(&actor),
        "endpoint": { "id": endpoint.id, "url": endpoint.url },
        // Only the failure's kind ("HTTP 500", a connection error): what the receiver wrote
        // stays on the endpoint's page, out of mail that Keyward signs with its name.
        "last_error": failure_kind(last_error),
    });
    OutboxEvent::insert(
        conn,
        &crate::db::models::outbox::NewOutboxEvent {
            event_type: DISABLED_EVENT,
            organization_id: Some(endpoint.organization_id),
            service_provider_id: None,
            api_key_id: None,
            user_id: None,
            occasion: None,
            key_expires_at: None,
            payload: &payload,
            created_at: now,
        },
        &[super::mail::CHANNEL],
    )?;
    audit::record(
        conn,
        &actor,
        Entry::new(AuditAction::WebhookDisable)
            .organization(Some(endpoint.organization_id))
            .target(Target::new("webhook", endpoint.id, &endpoint.url))
            .details(json!({ "cause": "failing", "consecutive_failures": endpoint.consecutive_failures + 1 })),
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_addresses_are_recognized_in_every_form() {
        for text in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "0.1.2.3",
            "100.64.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fc00::1",
            "fd12::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::127.0.0.1",
            "64:ff9b::a00:1",
            "2002:7f00:1::",
            "192.0.0.8",
            "192.0.2.1",
            "198.18.0.1",
            "198.19.255.255",
            "198.51.100.7",
            "203.0.113.9",
            "fec0::1",
            "2001::1",
            "2001:db8::1",
            "64:ff9b:1::a00:1",
            "100::1",
            "::ffff:0:10.0.0.1",
        ] {
            assert!(is_private(text.parse().unwrap()), "{text}");
        }
        for text in [
            "93.184.216.34",
            "100.128.0.1",
            "2606:4700::1111",
            "::ffff:93.184.216.34",
            "8.8.8.8",
            "198.20.0.1",
            "2001:4860::8888",
        ] {
            assert!(!is_private(text.parse().unwrap()), "{text}");
        }
    }

    #[test]
    fn mail_names_a_failure_without_the_receivers_words() {
        assert_eq!(failure_kind("HTTP 500: click https://evil.example to fix"), "HTTP 500");
        assert_eq!(failure_kind("HTTP 502"), "HTTP 502");
        assert_eq!(failure_kind("connection refused: os error 111"), "connection refused: os error 111");
    }

    #[test]
    fn urls_are_checked() {
        assert!(check_url("ftp://example.com/", true).is_err());
        assert!(check_url("https://user:pw@example.com/", true).is_err());
        assert!(check_url("http://127.0.0.1:9/hook", false).is_err());
        assert!(check_url("http://[::ffff:7f00:1]/hook", false).is_err());
        assert_eq!(check_url(" http://127.0.0.1:9/hook ", true).unwrap(), "http://127.0.0.1:9/hook");
        // Under the limit as typed, over it once percent-encoded: refused, not a database error.
        let long = format!("http://127.0.0.1/{}", "é".repeat(990));
        assert!(long.len() <= 2000 && check_url(&long, true).is_err());
    }

    #[test]
    fn signatures_follow_the_specification() {
        // The example of the Standard Webhooks reference libraries.
        let secret = BASE64.decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let body = r#"{"test": 2432232314}"#;
        assert_eq!(
            sign(&secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn backoff_spans_about_a_day() {
        let total: i64 = BACKOFF.iter().sum();
        assert!((20 * 3600..=26 * 3600).contains(&total), "{total}");
    }
}
