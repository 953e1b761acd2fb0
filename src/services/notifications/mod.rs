//! Notifications (SPEC §6c, issue 19): the event catalogue and the transactional outbox.
//!
//! A service that changes a key (or a user's API key access) calls [`emit`] on the same
//! connection, inside the same transaction, as the change and its audit event: the event
//! exists exactly when the change committed. [`emit`] also writes one pending delivery per
//! channel; workers claim deliveries with `FOR UPDATE SKIP LOCKED` and deliver at least
//! once, passing the event id on as the idempotency key. Events that come from time
//! (reminders, "expired") are written by the `key-expiry` job ([`expiry`]), once per key,
//! occasion and expiry thanks to a unique index.
//!
//! Channels: `mail`, delivered by the `deliver-mail` job ([`mail`]) into the mail outbox
//! that administrators and staff read in the browser (with `KEYWARD_SMTP_URL` its messages
//! are also sent over SMTP, [`smtp`]; the weekly digest, [`digest`], writes into the same
//! outbox), and `webhook`, fanned out to the organization's endpoints by the
//! `deliver-webhooks` job and sent signed ([`webhooks`]).

pub mod digest;
pub mod expiry;
pub mod mail;
pub mod smtp;
pub mod webhooks;

use chrono::{DateTime, Utc};
use diesel::{PgConnection, QueryResult};
use serde_json::{Value, json};

use crate::{
    db::models::{
        ApiKey, User,
        outbox::{NewOutboxEvent, OutboxEvent},
    },
    services::actor::{Actor, ActorKind},
};

/// The channels every event is delivered on.
pub const CHANNELS: &[&str] = &[mail::CHANNEL, webhooks::CHANNEL];

/// The event catalogue (the README lists each with its payload).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    KeyCreated,
    KeyDeleted,
    KeyDeactivated,
    KeyExpiring,
    KeyExpired,
    KeyOldSecretInUse,
    UserApiKeyAccessLost,
}

impl EventType {
    pub fn code(self) -> &'static str {
        match self {
            EventType::KeyCreated => "key.created",
            EventType::KeyDeleted => "key.deleted",
            EventType::KeyDeactivated => "key.deactivated",
            EventType::KeyExpiring => "key.expiring",
            EventType::KeyExpired => "key.expired",
            EventType::KeyOldSecretInUse => "key.old_secret_in_use",
            EventType::UserApiKeyAccessLost => "user.api_key_access_lost",
        }
    }

    /// Whether a person may choose not to receive it (expiry reminders only: the others
    /// say something changed).
    pub fn is_reminder(code: &str) -> bool {
        code == EventType::KeyExpiring.code()
    }
}

/// Why a key was deactivated, as `key.deactivated` says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deactivation {
    /// By a person (an administrator, the owner, or staff).
    ByPerson,
    LeakReport,
    StalePolicy,
}

impl Deactivation {
    pub fn code(self) -> &'static str {
        match self {
            Deactivation::ByPerson => "person",
            Deactivation::LeakReport => "leak_report",
            Deactivation::StalePolicy => "stale_policy",
        }
    }
}

/// Who did it, as payloads say (never a secret; an email address for people).
fn actor_json(actor: &Actor) -> Value {
    let (kind, id, label) = actor.audit_identity();
    match actor.kind {
        ActorKind::System { .. } => json!({ "type": "system", "id": null, "label": label }),
        _ => json!({ "type": kind, "id": id, "label": label }),
    }
}

/// The key as every key event describes it.
pub fn key_json(key: &ApiKey) -> Value {
    let owner = key.owner();
    json!({
        "public_id": key.public_id,
        "name": key.name,
        "environment": key.environment,
        "owner": { "type": owner.kind(), "id": owner.id() },
        "organization_id": key.organization_id,
        "service_provider_id": key.owner_service_provider_id,
        "created_by_user_id": key.created_by_user_id,
        "expires_at": key.expires_at,
        "active": key.active,
    })
}

fn key_event(actor: &Actor, event_type: EventType, key: &ApiKey, extra: Value) -> Value {
    let mut payload = json!({
        "type": event_type.code(),
        "occurred_at": actor.now,
        "actor": actor_json(actor),
        "key": key_json(key),
    });
    if let (Value::Object(map), Value::Object(extra)) = (&mut payload, extra) {
        map.extend(extra);
    }
    payload
}

/// Writes a change's event about `key` (created, deleted, deactivated), with its
/// deliveries, on the change's transaction.
pub fn emit_key(
    conn: &mut PgConnection,
    actor: &Actor,
    event_type: EventType,
    key: &ApiKey,
    extra: Value,
) -> QueryResult<Option<i64>> {
    insert_key_event(conn, actor, event_type, key, None, extra)
}

/// The event of `key` with its deliveries; a time-driven one names its occasion and the
/// moment it is about (`(occasion, moment)`: the key's expiry, or the end of a grace period,
/// stored as `key_expires_at`), which the outbox writes once.
fn insert_key_event(
    conn: &mut PgConnection,
    actor: &Actor,
    event_type: EventType,
    key: &ApiKey,
    occasion: Option<(&str, DateTime<Utc>)>,
    extra: Value,
) -> QueryResult<Option<i64>> {
    let payload = key_event(actor, event_type, key, extra);
    OutboxEvent::insert(
        conn,
        &NewOutboxEvent {
            event_type: event_type.code(),
            organization_id: key.organization_id,
            service_provider_id: key.owner_service_provider_id,
            api_key_id: Some(key.id),
            user_id: None,
            occasion: occasion.map(|(occasion, _)| occasion),
            key_expires_at: occasion.map(|(_, expires_at)| expires_at),
            payload: &payload,
            created_at: actor.now,
        },
        CHANNELS,
    )
}

/// `key.deactivated`, saying why.
pub fn emit_deactivated(
    conn: &mut PgConnection,
    actor: &Actor,
    key: &ApiKey,
    why: Deactivation,
    reason: Option<&str>,
) -> QueryResult<Option<i64>> {
    emit_key(conn, actor, EventType::KeyDeactivated, key, json!({ "cause": why.code(), "reason": reason }))
}

/// A time-driven event of `key` (a reminder, "expired"): written once per key, `occasion`
/// and expiry, whichever run or instance comes first; `None` if it already was.
pub fn emit_occasion(
    conn: &mut PgConnection,
    now: DateTime<Utc>,
    event_type: EventType,
    key: &ApiKey,
    occasion: &str,
    extra: Value,
) -> QueryResult<Option<i64>> {
    let Some(expires_at) = key.expires_at else { return Ok(None) };
    emit_once(conn, now, event_type, key, (occasion, expires_at), extra)
}

/// A time-driven event of `key` about moment `about` (an expiry, or the end of a grace
/// period): written once per key, occasion and moment; `None` if it already was.
pub fn emit_once(
    conn: &mut PgConnection,
    now: DateTime<Utc>,
    event_type: EventType,
    key: &ApiKey,
    (occasion, about): (&str, DateTime<Utc>),
    extra: Value,
) -> QueryResult<Option<i64>> {
    let actor = Actor::system("run-jobs").at(now);
    insert_key_event(conn, &actor, event_type, key, Some((occasion, about)), extra)
}

/// `user.api_key_access_lost`: `user`'s personal keys stopped working.
pub fn emit_access_lost(conn: &mut PgConnection, actor: &Actor, user: &User) -> QueryResult<Option<i64>> {
    let event_type = EventType::UserApiKeyAccessLost;
    let payload = json!({
        "type": event_type.code(),
        "occurred_at": actor.now,
        "actor": actor_json(actor),
        "user": { "id": user.id, "email": user.email, "organization_id": user.organization_id },
    });
    OutboxEvent::insert(
        conn,
        &NewOutboxEvent {
            event_type: event_type.code(),
            organization_id: Some(user.organization_id),
            service_provider_id: None,
            api_key_id: None,
            user_id: Some(user.id),
            occasion: None,
            key_expires_at: None,
            payload: &payload,
            created_at: actor.now,
        },
        CHANNELS,
    )
}
