//! The notification outbox: events written with the changes they describe, their pending
//! deliveries per channel, and the mail messages the `mail` channel wrote (see
//! `services::notifications`).

use chrono::{DateTime, Utc};
use diesel::prelude::*;

use crate::{
    db::{
        count::CountRows,
        schema::{mail_messages, outbox_deliveries, outbox_events},
    },
    views::pager::MAX_COUNTED,
};

/// One event of the catalogue, as stored.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Identifiable)]
#[diesel(table_name = outbox_events)]
pub struct OutboxEvent {
    /// Also the idempotency key every channel passes on.
    pub id: i64,
    pub event_type: String,
    pub organization_id: Option<i64>,
    pub service_provider_id: Option<i64>,
    pub api_key_id: Option<i64>,
    pub user_id: Option<i64>,
    pub occasion: Option<String>,
    pub key_expires_at: Option<DateTime<Utc>>,
    pub payload: serde_json::Value,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = outbox_events)]
pub struct NewOutboxEvent<'a> {
    pub event_type: &'a str,
    pub organization_id: Option<i64>,
    pub service_provider_id: Option<i64>,
    pub api_key_id: Option<i64>,
    pub user_id: Option<i64>,
    pub occasion: Option<&'a str>,
    pub key_expires_at: Option<DateTime<Utc>>,
    pub payload: &'a serde_json::Value,
    /// The application's clock: also when its deliveries are first due.
    pub created_at: DateTime<Utc>,
}

impl OutboxEvent {
    /// Writes `event` and one pending delivery per channel. An event of an occasion that
    /// already had its event (another run, another instance) writes nothing: `None`.
    pub fn insert(conn: &mut PgConnection, event: &NewOutboxEvent<'_>, channels: &[&str]) -> QueryResult<Option<i64>> {
        let id: Option<i64> = diesel::insert_into(outbox_events::table)
            .values(event)
            .on_conflict_do_nothing()
            .returning(outbox_events::id)
            .get_result(conn)
            .optional()?;
        if let Some(id) = id {
            diesel::insert_into(outbox_deliveries::table)
                .values(
                    channels
                        .iter()
                        .map(|c| {
                            (
                                outbox_deliveries::event_id.eq(id),
                                outbox_deliveries::channel.eq(*c),
                                outbox_deliveries::next_attempt_at.eq(event.created_at),
                            )
                        })
                        .collect::<Vec<_>>(),
                )
                .execute(conn)?;
        }
        Ok(id)
    }

    /// Claims up to `limit` deliveries of `channel` due at `now`, oldest first, locking them
    /// (`FOR UPDATE SKIP LOCKED`: concurrent workers take different ones) until the caller's
    /// transaction ends; with their events.
    pub fn claim_due(
        conn: &mut PgConnection,
        channel: &str,
        now: DateTime<Utc>,
        limit: i64,
    ) -> QueryResult<Vec<(i64, OutboxEvent)>> {
        let ids: Vec<(i64, i64)> = outbox_deliveries::table
            .filter(outbox_deliveries::channel.eq(channel))
            .filter(outbox_deliveries::delivered_at.is_null())
            .filter(outbox_deliveries::next_attempt_at.le(now))
            .order(outbox_deliveries::id.asc())
            .limit(limit)
            .select((outbox_deliveries::id, outbox_deliveries::event_id))
            .for_update()
            .skip_locked()
            .load(conn)?;
        let event_ids: Vec<i64> = ids.iter().map(|(_, e)| *e).collect();
        let events: Vec<OutboxEvent> = outbox_events::table
            .filter(outbox_events::id.eq_any(&event_ids))
            .select(OutboxEvent::as_select())
            .load(conn)?;
        Ok(ids
            .into_iter()
            .filter_map(|(delivery, event)| events.iter().find(|e| e.id == event).map(|e| (delivery, e.clone())))
            .collect())
    }

    /// Marks a claimed delivery done at `now`.
    pub fn delivered(conn: &mut PgConnection, delivery_id: i64, now: DateTime<Utc>) -> QueryResult<()> {
        diesel::update(outbox_deliveries::table.find(delivery_id))
            .set((
                outbox_deliveries::delivered_at.eq(Some(now)),
                outbox_deliveries::attempts.eq(outbox_deliveries::attempts + 1),
            ))
            .execute(conn)
            .map(|_| ())
    }
}

/// A message of the mail outbox.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Identifiable)]
#[diesel(table_name = mail_messages)]
pub struct MailMessage {
    pub id: i64,
    /// The event it tells of; `None` for a weekly digest.
    pub event_id: Option<i64>,
    pub organization_id: Option<i64>,
    pub service_provider_id: Option<i64>,
    pub recipient_user_id: Option<i64>,
    pub recipient_staff_id: Option<i64>,
    pub recipient_email: String,
    pub subject: String,
    pub body: String,
    pub link_path: Option<String>,
    pub created_at: DateTime<Utc>,
    /// When SMTP accepted it (with `KEYWARD_SMTP_URL`).
    pub sent_at: Option<DateTime<Utc>>,
    pub send_attempts: i32,
    /// What the last failed attempt to send it said.
    pub send_error: Option<String>,
    /// When it is next tried over SMTP; `None`: not any more (sent, or given up).
    pub next_send_at: Option<DateTime<Utc>>,
    /// The Monday of a weekly digest's week.
    pub digest_week: Option<chrono::NaiveDate>,
    /// A weekly digest's sections (see `services::notifications::digest`).
    pub digest: Option<serde_json::Value>,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = mail_messages)]
pub struct NewMailMessage<'a> {
    pub event_id: Option<i64>,
    pub organization_id: Option<i64>,
    pub service_provider_id: Option<i64>,
    pub recipient_user_id: Option<i64>,
    pub recipient_staff_id: Option<i64>,
    pub recipient_email: &'a str,
    pub subject: &'a str,
    pub body: &'a str,
    pub link_path: Option<&'a str>,
    pub created_at: DateTime<Utc>,
    /// When SMTP should first try it: its creation.
    pub next_send_at: Option<DateTime<Utc>>,
    pub digest_week: Option<chrono::NaiveDate>,
    pub digest: Option<&'a serde_json::Value>,
}

/// Whose messages a list shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MailScope {
    /// Everything sent about an organization's keys and people.
    Organization(i64),
    /// What staff were sent (about service providers' keys).
    Staff,
}

impl MailMessage {
    /// Writes `message` unless its recipient already has this event's message (a delivery
    /// retried after a crash): whether it was written.
    pub fn insert(conn: &mut PgConnection, message: &NewMailMessage<'_>) -> QueryResult<bool> {
        diesel::insert_into(mail_messages::table).values(message).on_conflict_do_nothing().execute(conn).map(|n| n > 0)
    }

    fn scoped(scope: MailScope) -> mail_messages::BoxedQuery<'static, diesel::pg::Pg> {
        let query = mail_messages::table.into_boxed();
        match scope {
            MailScope::Organization(id) => query.filter(mail_messages::organization_id.eq(id)),
            MailScope::Staff => query.filter(mail_messages::recipient_staff_id.is_not_null()),
        }
    }

    /// One page of the scope's messages, newest first.
    pub fn list(conn: &mut PgConnection, scope: MailScope, offset: i64, limit: i64) -> QueryResult<Vec<MailMessage>> {
        Self::scoped(scope)
            .order(mail_messages::id.desc())
            .offset(offset)
            .limit(limit)
            .select(MailMessage::as_select())
            .load(conn)
    }

    /// The scope's messages, counted up to [`MAX_COUNTED`] + 1.
    pub fn count(conn: &mut PgConnection, scope: MailScope) -> QueryResult<i64> {
        CountRows(Self::scoped(scope).select(mail_messages::id).limit(MAX_COUNTED + 1)).get_result(conn)
    }
}
