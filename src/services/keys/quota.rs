//! Key quotas (SPEC §3), set by the organization's policy: live keys (not deleted, not
//! expired) per web user and per organization, and key creations per web user and hour.
//! They bound what one person (or a script with their session) can pile up; the operator's
//! commands and bulk seeding act for the operator and are not limited.

use chrono::{DateTime, Duration, Utc};
use diesel::{
    PgConnection, QueryableByName, RunQueryDsl,
    sql_types::{BigInt, Integer, Timestamptz},
};

use crate::{
    db::models::Organization,
    error::{AppError, FieldErrors},
    services::actor::{ActingUser, Actor},
};

/// The window of the creation rate.
const RATE_WINDOW: Duration = Duration::hours(1);

/// The quotas an organization's policy sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyQuotas {
    pub per_user: i32,
    pub per_organization: i32,
    pub creations_per_hour: i32,
}

impl KeyQuotas {
    pub fn of_organization(organization: &Organization) -> Self {
        Self {
            per_user: organization.key_quota_per_user,
            per_organization: organization.key_quota_per_organization,
            creations_per_hour: organization.key_creations_per_hour,
        }
    }
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

#[derive(QueryableByName)]
struct At {
    #[diesel(sql_type = Timestamptz)]
    at: DateTime<Utc>,
}

/// Live keys a user owns or created, counted up to `limit`.
fn live_keys_of_user(
    conn: &mut PgConnection,
    user_id: i64,
    limit: i32,
    now: DateTime<Utc>,
) -> diesel::QueryResult<i64> {
    diesel::sql_query(
        "SELECT count(*) AS n FROM (SELECT 1 FROM api_keys \
         WHERE (owner_user_id = $1 OR created_by_user_id = $1) \
         AND (expires_at IS NULL OR expires_at > $3) LIMIT $2) live",
    )
    .bind::<BigInt, _>(user_id)
    .bind::<Integer, _>(limit)
    .bind::<Timestamptz, _>(now)
    .get_result::<Count>(conn)
    .map(|c| c.n)
}

/// Live keys of an organization, counted up to `limit`.
fn live_keys_of_organization(
    conn: &mut PgConnection,
    organization_id: i64,
    limit: i32,
    now: DateTime<Utc>,
) -> diesel::QueryResult<i64> {
    diesel::sql_query(
        "SELECT count(*) AS n FROM (SELECT 1 FROM api_keys WHERE organization_id = $1 \
         AND (expires_at IS NULL OR expires_at > $3) LIMIT $2) live",
    )
    .bind::<BigInt, _>(organization_id)
    .bind::<Integer, _>(limit)
    .bind::<Timestamptz, _>(now)
    .get_result::<Count>(conn)
    .map(|c| c.n)
}

/// When the user's `limit`-th most recent creation within the window happened, if they made
/// that many: the rate allows another one once it leaves the window. Creations are read from
/// the audit log, so deleting keys does not make room.
fn limiting_creation(
    conn: &mut PgConnection,
    organization_id: i64,
    user_id: i64,
    limit: i32,
    now: DateTime<Utc>,
) -> diesel::QueryResult<Option<DateTime<Utc>>> {
    diesel::sql_query(
        "SELECT occurred_at AS at FROM audit_events \
         WHERE organization_id = $1 AND action = 'key.create' AND result = 'success' \
         AND ((actor_type = 'user' AND actor_id = $2) \
              OR (actor_type = 'token' AND (details -> 'token' ->> 'creator_user_id')::bigint = $2)) \
         AND occurred_at > $4 - interval '1 hour' \
         ORDER BY occurred_at DESC OFFSET $3 LIMIT 1",
    )
    .bind::<BigInt, _>(organization_id)
    .bind::<BigInt, _>(user_id)
    .bind::<Integer, _>(limit - 1)
    .bind::<Timestamptz, _>(now)
    .get_results::<At>(conn)
    .map(|rows| rows.into_iter().next().map(|row| row.at))
}

fn full(message: String) -> AppError {
    let mut errors = FieldErrors::new();
    errors.add("form", message);
    AppError::Invalid(errors)
}

/// Refuses a new key of `organization` by `actor` when a quota is full (422, said in the
/// form) or the creation rate is spent (429, with when to try again). Creations of one user
/// serialize on an advisory lock, so parallel submissions cannot overshoot.
pub fn check(conn: &mut PgConnection, actor: &Actor, organization: &Organization) -> Result<(), AppError> {
    // A token's creations count as its creator's: the quotas are per person.
    let Some(ActingUser { id: user_id, .. }) = actor.acting_user() else {
        return Ok(());
    };
    let quotas = KeyQuotas::of_organization(organization);
    diesel::sql_query("SELECT pg_advisory_xact_lock(hashtextextended('keyward.key-create', $1))")
        .bind::<BigInt, _>(user_id)
        .execute(conn)?;
    if let Some(at) = limiting_creation(conn, organization.id, user_id, quotas.creations_per_hour, actor.now)? {
        let wait = (at + RATE_WINDOW - actor.now).num_seconds().max(1);
        return Err(AppError::TooManyRequests {
            message: format!(
                "You have created {} keys in the last hour, the most the key policy allows. \
                 Try again in {} minutes.",
                quotas.creations_per_hour,
                (wait + 59) / 60
            ),
            retry_after_secs: wait as u64,
        });
    }
    if live_keys_of_user(conn, user_id, quotas.per_user, actor.now)? >= i64::from(quotas.per_user) {
        return Err(full(format!(
            "You have {} live keys, the most the key policy allows per person. Delete keys you no \
             longer use, or ask an administrator to raise the quota.",
            quotas.per_user
        )));
    }
    if live_keys_of_organization(conn, organization.id, quotas.per_organization, actor.now)?
        >= i64::from(quotas.per_organization)
    {
        return Err(full(format!(
            "{} has {} live keys, the most its key policy allows. Delete keys that are no longer \
             used, or ask an administrator to raise the quota.",
            organization.name, quotas.per_organization
        )));
    }
    Ok(())
}
