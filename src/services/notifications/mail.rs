//! The `mail` channel: the `deliver-mail` job turns pending deliveries into plain-text
//! messages, one per recipient, in the mail outbox (`mail_messages`). That outbox is what
//! administrators read at Admin → Notifications and staff at Staff → Notifications; with
//! `KEYWARD_SMTP_URL` its messages are also sent by email (see [`super::smtp`]).
//!
//! Who receives what: a personal key's owner; for an organization's key its creator and
//! (unless the organization chose "its creator only" on its key policy) the organization's
//! administrators; for a service provider's key every active staff account;
//! for `user.api_key_access_lost` the user. People who chose not to get reminders get no
//! `key.expiring`. The notice that Keyward disabled a failing webhook endpoint
//! (`webhook.disabled`, mail only) goes to the organization's administrators. Recipients are settled when the message is written (an administrator
//! added since the change is told too). Links are stored as paths and built on the public
//! URL when shown, so a job needs no configuration.

use chrono::{DateTime, Utc};
use diesel::{PgConnection, prelude::*};
use serde_json::Value;

use crate::{
    db::{
        models::outbox::{MailMessage, NewMailMessage, OutboxEvent},
        schema::{organizations, staff_accounts, users},
    },
    error::AppError,
    services::notifications::EventType,
};

/// The channel's name in `outbox_deliveries`.
pub const CHANNEL: &str = "mail";

/// The most deliveries one run takes (the next run takes the rest).
const BATCH: i64 = 500;

/// Someone a message goes to.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Recipient {
    User { id: i64, email: String },
    Staff { id: i64, email: String },
}

/// Delivers the pending `mail` deliveries due at `now` into the outbox; each delivery and
/// its messages commit together (a rerun after a crash writes no message twice).
pub fn deliver(conn: &mut PgConnection, now: DateTime<Utc>) -> Result<String, AppError> {
    let claimed = OutboxEvent::claim_due(conn, CHANNEL, now, BATCH)?;
    let mut written = 0;
    for (delivery_id, event) in &claimed {
        let (subject, body) = text(event);
        for recipient in recipients(conn, event)? {
            let link = link_path(event, &recipient);
            let (user_id, staff_id, email) = match &recipient {
                Recipient::User { id, email } => (Some(*id), None, email.as_str()),
                Recipient::Staff { id, email } => (None, Some(*id), email.as_str()),
            };
            let message = NewMailMessage {
                event_id: Some(event.id),
                organization_id: event.organization_id,
                service_provider_id: event.service_provider_id,
                recipient_user_id: user_id,
                recipient_staff_id: staff_id,
                recipient_email: email,
                subject: &subject,
                body: &body,
                link_path: link.as_deref(),
                created_at: now,
                next_send_at: Some(now),
                digest_week: None,
                digest: None,
            };
            if MailMessage::insert(conn, &message)? {
                written += 1;
            }
        }
        OutboxEvent::delivered(conn, *delivery_id, now)?;
    }
    Ok(format!("{written} message(s) for {} event(s)", claimed.len()))
}

fn str_at<'a>(value: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter().try_fold(value, |v, k| v.get(k)).and_then(Value::as_str)
}

/// A timestamp of the payload as a message writes it.
fn moment_at(value: &Value, path: &[&str]) -> Option<String> {
    let at = DateTime::parse_from_rfc3339(str_at(value, path)?).ok()?;
    Some(at.with_timezone(&Utc).format("%Y-%m-%d %H:%M UTC").to_string())
}

fn i64_at(value: &Value, path: &[&str]) -> Option<i64> {
    path.iter().try_fold(value, |v, k| v.get(k)).and_then(Value::as_i64)
}

fn recipients(conn: &mut PgConnection, event: &OutboxEvent) -> QueryResult<Vec<Recipient>> {
    let payload = &event.payload;
    let reminder = EventType::is_reminder(&event.event_type);
    let mut user_ids: Vec<i64> = Vec::new();
    let mut admins_of: Option<i64> = None;
    let mut staff = false;
    if event.event_type == EventType::UserApiKeyAccessLost.code() {
        user_ids.extend(event.user_id);
    } else if event.event_type == super::webhooks::DISABLED_EVENT {
        admins_of = event.organization_id;
    } else {
        match (str_at(payload, &["key", "owner", "type"]), i64_at(payload, &["key", "owner", "id"])) {
            (Some("user"), Some(id)) => user_ids.push(id),
            (Some("organization"), Some(id)) => {
                user_ids.extend(i64_at(payload, &["key", "created_by_user_id"]));
                // The organization's choice as it is when the message is written.
                let notify_admins: Option<bool> = organizations::table
                    .find(id)
                    .select(organizations::notify_admins_of_keys)
                    .first(conn)
                    .optional()?;
                if notify_admins.unwrap_or(true) {
                    admins_of = Some(id);
                }
            }
            (Some("service_provider"), Some(_)) => staff = true,
            _ => {}
        }
    }
    let mut query = users::table
        .filter(users::active.eq(true))
        .select((users::id, users::email, users::organization_id))
        .into_boxed();
    query = match admins_of {
        Some(org) => query.filter(users::id.eq_any(user_ids).or(users::organization_id.eq(org).and(users::is_admin))),
        None => query.filter(users::id.eq_any(user_ids)),
    };
    if reminder {
        query = query.filter(users::receive_reminders.eq(true));
    }
    let found: Vec<(i64, String, i64)> = query.order(users::id.asc()).load(conn)?;
    // One query, so each person once (a creator who is also an administrator); only people
    // of the event's organization.
    let mut all: Vec<Recipient> = found
        .into_iter()
        .filter(|(_, _, org)| event.organization_id.is_none_or(|o| o == *org))
        .map(|(id, email, _)| Recipient::User { id, email })
        .collect();
    if staff {
        let accounts: Vec<(i64, String)> = staff_accounts::table
            .filter(staff_accounts::active.eq(true))
            .order(staff_accounts::id.asc())
            .select((staff_accounts::id, staff_accounts::email))
            .load(conn)?;
        all.extend(accounts.into_iter().map(|(id, email)| Recipient::Staff { id, email }));
    }
    Ok(all)
}

/// The page a recipient opens about the event, as a path.
fn link_path(event: &OutboxEvent, recipient: &Recipient) -> Option<String> {
    let payload = &event.payload;
    if event.event_type == EventType::KeyDeleted.code() {
        return None;
    }
    if event.event_type == EventType::UserApiKeyAccessLost.code() {
        return Some("/account".into());
    }
    if event.event_type == super::webhooks::DISABLED_EVENT {
        return i64_at(payload, &["endpoint", "id"]).map(|id| format!("/admin/webhooks/{id}"));
    }
    let public_id = str_at(payload, &["key", "public_id"])?;
    match (str_at(payload, &["key", "owner", "type"])?, recipient) {
        ("user", _) => Some(format!("/account/keys/{public_id}")),
        ("organization", _) => Some(format!("/admin/keys/{public_id}")),
        ("service_provider", Recipient::Staff { .. }) => {
            let provider = i64_at(payload, &["key", "owner", "id"])?;
            Some(format!("/staff/providers/{provider}/keys/{public_id}"))
        }
        _ => None,
    }
}

/// The subject and plain-text body of an event's message (the same for every recipient).
fn text(event: &OutboxEvent) -> (String, String) {
    let payload = &event.payload;
    let name = str_at(payload, &["key", "name"]).unwrap_or("");
    let public_id = str_at(payload, &["key", "public_id"]).unwrap_or("");
    let by = str_at(payload, &["actor", "label"]).unwrap_or("");
    let expires = moment_at(payload, &["key", "expires_at"]);
    let about = format!("The API key \u{201c}{name}\u{201d} ({public_id})");
    let code = event.event_type.as_str();
    let (subject, body) = if code == EventType::KeyCreated.code() {
        let until = expires.as_deref().map_or("It never expires.".to_string(), |at| format!("It expires {at}."));
        (format!("API key \u{201c}{name}\u{201d} was created"), format!("{about} was created by {by}. {until}"))
    } else if code == EventType::KeyDeleted.code() {
        (
            format!("API key \u{201c}{name}\u{201d} was deleted"),
            format!("{about} was deleted by {by}. Integrations still using it are refused."),
        )
    } else if code == EventType::KeyDeactivated.code() {
        let reason = str_at(payload, &["reason"]);
        let why = match str_at(payload, &["cause"]) {
            Some("leak_report") => "because its secret was reported as leaked".to_string(),
            Some("stale_policy") => "by the organization's key policy for unused keys".to_string(),
            _ => match reason.filter(|r| !r.is_empty()) {
                Some(reason) => format!("by {by} (\u{201c}{reason}\u{201d})"),
                None => format!("by {by}"),
            },
        };
        (
            format!("API key \u{201c}{name}\u{201d} was deactivated"),
            format!("{about} was deactivated {why}. Integrations using it are refused until it is reactivated."),
        )
    } else if code == EventType::KeyExpiring.code() {
        let days = i64_at(payload, &["days_before"]).unwrap_or(0);
        let at = expires.unwrap_or_default();
        (
            format!("API key \u{201c}{name}\u{201d} expires in {}", crate::views::words::counted(days, "day")),
            format!(
                "{about} expires {at}. After that, integrations using it are refused. Create a replacement and \
                 switch your integrations to it before then, or extend its expiry if the policy allows."
            ),
        )
    } else if code == EventType::KeyExpired.code() {
        let at = expires.unwrap_or_default();
        (
            format!("API key \u{201c}{name}\u{201d} has expired"),
            format!("{about} expired {at}. Integrations using it are refused; create a new key to replace it."),
        )
    } else if code == EventType::KeyOldSecretInUse.code() {
        let ends = moment_at(payload, &["grace_ends_at"]).unwrap_or_default();
        let last4 = str_at(payload, &["previous_secret_last4"]).unwrap_or("");
        (
            format!("API key \u{201c}{name}\u{201d}: its old secret is still in use"),
            format!(
                "{about} was re-keyed, and its old secret (ending in {last4}) was still used in the last day. \
                 It stops working {ends}: switch the integrations still using it to the new secret before then, \
                 or they will be refused."
            ),
        )
    } else if code == EventType::UserApiKeyAccessLost.code() {
        (
            "You no longer have API key access".to_string(),
            format!(
                "{by} removed your API key access. Your personal API keys stopped working; an administrator can \
                 grant access again."
            ),
        )
    } else if code == super::webhooks::DISABLED_EVENT {
        let url = str_at(payload, &["endpoint", "url"]).unwrap_or("");
        let last_error = str_at(payload, &["last_error"]).unwrap_or("");
        (
            "A webhook endpoint was disabled".to_string(),
            format!(
                "Keyward disabled the webhook endpoint {url} because a delivery to it failed every attempt for about \
                 a day (last: {last_error}). Nothing is sent to it until an administrator enables it again on its \
                 page."
            ),
        )
    } else {
        (format!("Keyward: {code}"), String::new())
    };
    (subject, body)
}
