//! The `key-expiry` job: expiry reminders (`key.expiring`) and `key.expired`.
//!
//! The rules, per key: the reminder days come from the key's organization (Admin → Key
//! policy; [`DEFAULT_DAYS`] for service providers' keys). A reminder is due once its moment
//! (the expiry minus its days) has come; of several due ones only the most urgent is sent,
//! and only if its moment came while the key had this expiry (give or take a day, because
//! expiry is chosen as a date): a key created with 3 days left gets no late 7-day reminder,
//! only the 1-day one when its time comes. Each is written once per key, days and expiry
//! (the outbox's unique index), so a second run or a second instance writes nothing more,
//! and a new expiry re-arms them all. `key.expired` goes out once for an active key that
//! expired within the last week (older expiries are not announced late).
//!
//! `key.old_secret_in_use` warns, once per grace period, that integrations still present a
//! re-keyed key's old secret in the last hour before it stops working: the old secret was
//! used in the last day (its last use is flushed like the key's). A grace period shorter
//! than that hour gets no late warning.

use chrono::{DateTime, Duration, Utc};
use diesel::{
    PgConnection,
    prelude::*,
    sql_types::{BigInt, Integer, Timestamptz},
};
use serde_json::json;

use crate::{
    db::{models::ApiKey, schema::api_keys},
    error::AppError,
    services::notifications::{EventType, emit_occasion, emit_once},
};

/// The reminder days of keys without an organization, and of a new organization.
pub const DEFAULT_DAYS: [i32; 3] = [14, 7, 1];

/// The days a reminder may be set to, and how many an organization may have.
pub const DAYS_RANGE: std::ops::RangeInclusive<i32> = 1..=365;
pub const MAX_REMINDERS: usize = 5;

/// How long after expiring a key is still announced as expired.
fn expired_window() -> Duration {
    Duration::days(7)
}

#[derive(QueryableByName)]
struct DueReminder {
    #[diesel(sql_type = BigInt)]
    key_id: i64,
    #[diesel(sql_type = Integer)]
    days: i32,
}

/// Parses reminder days as typed on the policy form ("14, 7, 1"; empty: none), most
/// distant first. The message is the field error.
pub fn parse_days(text: &str) -> Result<Vec<i32>, String> {
    let message = || {
        format!(
            "Enter up to {MAX_REMINDERS} numbers of days from {} to {}, separated by commas (such as 14, 7, 1), \
             or leave it empty for no reminders.",
            DAYS_RANGE.start(),
            DAYS_RANGE.end()
        )
    };
    let mut days = Vec::new();
    for part in text.split([',', ' ']).map(str::trim).filter(|p| !p.is_empty()) {
        match part.parse::<i32>() {
            Ok(d) if DAYS_RANGE.contains(&d) => days.push(d),
            _ => return Err(message()),
        }
    }
    days.sort_unstable_by(|a, b| b.cmp(a));
    days.dedup();
    if days.len() > MAX_REMINDERS {
        return Err(message());
    }
    Ok(days)
}

/// Writes the due reminders and expiries at `now`; idempotent. One line for the job's log.
pub fn run(conn: &mut PgConnection, now: DateTime<Utc>) -> Result<String, AppError> {
    // The most urgent due reminder of each active, unexpired key, if it is not late: its
    // moment came at most a day before the expiry was set (see the module's comment).
    let due: Vec<DueReminder> = diesel::sql_query(
        "SELECT key_id, days FROM (
             SELECT DISTINCT ON (k.id) k.id AS key_id, d.days AS days,
                    k.expires_at - make_interval(days => d.days)
                        >= COALESCE(c.changed_at, k.created_at) - make_interval(days => 1) AS timely
             FROM api_keys k
             LEFT JOIN organizations o ON o.id = k.organization_id
             LEFT JOIN key_expiry_changes c ON c.api_key_id = k.id
             CROSS JOIN LATERAL unnest(COALESCE(o.key_reminder_days, ARRAY[14, 7, 1])) AS d(days)
             WHERE k.active AND k.expires_at > $1 AND k.expires_at <= $1 + interval '366 days'
               AND k.expires_at - make_interval(days => d.days) <= $1
             ORDER BY k.id, d.days ASC
         ) most_urgent
         WHERE timely",
    )
    .bind::<Timestamptz, _>(now)
    .load(conn)?;
    let keys = load(conn, due.iter().map(|d| d.key_id).collect())?;
    let mut reminded = 0;
    for reminder in &due {
        let Some(key) = keys.iter().find(|k| k.id == reminder.key_id) else { continue };
        let occasion = format!("expiring-{}", reminder.days);
        let extra = json!({ "days_before": reminder.days, "expires_at": key.expires_at });
        if emit_occasion(conn, now, EventType::KeyExpiring, key, &occasion, extra)?.is_some() {
            reminded += 1;
        }
    }

    let expired_ids: Vec<i64> = api_keys::table
        .filter(api_keys::active.eq(true))
        .filter(api_keys::expires_at.le(now))
        .filter(api_keys::expires_at.gt(now - expired_window()))
        .select(api_keys::id)
        .load(conn)?;
    let mut expired = 0;
    for key in load(conn, expired_ids)? {
        let extra = json!({ "expires_at": key.expires_at });
        if emit_occasion(conn, now, EventType::KeyExpired, &key, "expired", extra)?.is_some() {
            expired += 1;
        }
    }
    let warned = warn_old_secrets_in_use(conn, now)?;
    Ok(format!("{reminded} expiry reminder(s), {expired} expired key(s), {warned} old secret(s) still in use"))
}

/// How long before a grace period ends `key.old_secret_in_use` is sent.
fn grace_warning() -> Duration {
    Duration::hours(1)
}

/// How recent a use of the old secret counts as "still in use".
fn recent_use() -> Duration {
    Duration::days(1)
}

/// Writes `key.old_secret_in_use` for active keys whose grace period ends within the hour
/// while their old secret was used in the last day; the number written.
fn warn_old_secrets_in_use(conn: &mut PgConnection, now: DateTime<Utc>) -> Result<usize, AppError> {
    let ids: Vec<i64> = api_keys::table
        .filter(api_keys::active.eq(true))
        .filter(api_keys::previous_secret_hash.is_not_null())
        .filter(api_keys::previous_secret_expires_at.gt(now))
        .filter(api_keys::previous_secret_expires_at.le(now + grace_warning()))
        .filter(api_keys::previous_secret_last_used_at.gt(now - recent_use()))
        .select(api_keys::id)
        .load(conn)?;
    let mut warned = 0;
    for key in load(conn, ids)? {
        let Some(grace_ends_at) = key.previous_secret_expires_at else { continue };
        // The warning's moment came before the re-key: not sent late (see the module).
        if key.rekeyed_at.is_some_and(|at| grace_ends_at - grace_warning() < at) {
            continue;
        }
        let extra = json!({
            "grace_ends_at": grace_ends_at,
            "previous_secret_last4": key.previous_secret_last4,
            "previous_secret_last_used_at": key.previous_secret_last_used_at,
        });
        let occasion = ("old-secret-in-use", grace_ends_at);
        if emit_once(conn, now, EventType::KeyOldSecretInUse, &key, occasion, extra)?.is_some() {
            warned += 1;
        }
    }
    Ok(warned)
}

fn load(conn: &mut PgConnection, ids: Vec<i64>) -> QueryResult<Vec<ApiKey>> {
    if ids.is_empty() {
        return Ok(vec![]);
    }
    api_keys::table.filter(api_keys::id.eq_any(ids)).select(ApiKey::as_select()).load(conn)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reminder_days_are_parsed_most_distant_first() {
        assert_eq!(parse_days("7, 14,1"), Ok(vec![14, 7, 1]));
        assert_eq!(parse_days(" 30 "), Ok(vec![30]));
        assert_eq!(parse_days("7,7"), Ok(vec![7]));
        assert_eq!(parse_days(""), Ok(vec![]));
        for bad in ["0", "366", "seven", "1,2,3,4,5,6", "7.5", "-1"] {
            assert!(parse_days(bad).is_err(), "{bad}");
        }
    }
}
