//! Reading a key's usage counts (`key_usage_hourly`, `key_usage_daily`,
//! `key_usage_addresses`), written by the verifier's flush (`keys::verifier::tally`) and
//! rolled up by `services::usage::prune`. Every finder takes one key id: the caller has
//! already checked that the viewer may see that key.
//!
//! The hourly and daily tables never hold the same verification twice (a roll-up moves
//! rows), so reading their union is exact whatever the retention.

use chrono::{DateTime, Utc};
use diesel::{
    prelude::*,
    sql_types::{BigInt, Bool, Inet, Nullable, Text, Timestamptz},
};
use ipnetwork::IpNetwork;

/// The rows of both tables from `$2` on, as `(hour, code, action, previous_secret, count)`;
/// daily rows count at the start of their day (UTC).
const USAGE_FROM: &str = "(SELECT hour, code, action, previous_secret, count \
       FROM key_usage_hourly WHERE api_key_id = $1 AND hour >= $2 \
     UNION ALL \
     SELECT (day::timestamp AT TIME ZONE 'UTC'), code, action, previous_secret, count \
       FROM key_usage_daily WHERE api_key_id = $1 AND day >= ($2 AT TIME ZONE 'UTC')::date \
         AND (day::timestamp AT TIME ZONE 'UTC') >= $2) AS u";

/// Verifications with one code in one bucket of a chart.
#[derive(Debug, Clone, QueryableByName)]
pub struct BucketCount {
    /// The bucket's number: seconds since the epoch divided by the bucket's length.
    #[diesel(sql_type = BigInt)]
    pub bucket: i64,
    #[diesel(sql_type = Text)]
    pub code: String,
    #[diesel(sql_type = BigInt)]
    pub count: i64,
}

/// One action's use.
#[derive(Debug, Clone, QueryableByName)]
pub struct ActionUse {
    /// "" for verifications that named no action.
    #[diesel(sql_type = Text)]
    pub action: String,
    /// Verifications since the period's start, and how many of them were refused.
    #[diesel(sql_type = BigInt)]
    pub in_period: i64,
    #[diesel(sql_type = BigInt)]
    pub refused_in_period: i64,
    /// Valid verifications in the last 30 and 90 days.
    #[diesel(sql_type = BigInt)]
    pub valid_30: i64,
    #[diesel(sql_type = BigInt)]
    pub valid_90: i64,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub last_valid: Option<DateTime<Utc>>,
}

/// A recent client address of a key.
#[derive(Debug, Clone, QueryableByName)]
pub struct AddressUse {
    #[diesel(sql_type = Inet)]
    pub address: IpNetwork,
    #[diesel(sql_type = Timestamptz)]
    pub first_seen_at: DateTime<Utc>,
    #[diesel(sql_type = Timestamptz)]
    pub last_seen_at: DateTime<Utc>,
    #[diesel(sql_type = BigInt)]
    pub uses: i64,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub previous_secret_last_seen_at: Option<DateTime<Utc>>,
}

/// Verifications with one code (by one secret).
#[derive(Debug, Clone, QueryableByName)]
pub struct CodeCount {
    #[diesel(sql_type = Text)]
    pub code: String,
    #[diesel(sql_type = Bool)]
    pub previous_secret: bool,
    #[diesel(sql_type = BigInt)]
    pub count: i64,
}

/// Counts of key `key_id` from `from` on, by bucket of `bucket_seconds` and code.
pub fn buckets(
    conn: &mut PgConnection,
    key_id: i64,
    from: DateTime<Utc>,
    bucket_seconds: i64,
) -> QueryResult<Vec<BucketCount>> {
    diesel::sql_query(format!(
        "SELECT floor(extract(epoch FROM u.hour) / $3)::bigint AS bucket, u.code, sum(u.count)::bigint AS count \
         FROM {USAGE_FROM} GROUP BY 1, 2"
    ))
    .bind::<BigInt, _>(key_id)
    .bind::<Timestamptz, _>(from)
    .bind::<BigInt, _>(bucket_seconds)
    .load(conn)
}

/// The actions key `key_id` was verified for since `since_90` (90 days ago), with counts
/// since `period_from` and valid counts since `since_30` and `since_90`.
pub fn actions(
    conn: &mut PgConnection,
    key_id: i64,
    since_90: DateTime<Utc>,
    since_30: DateTime<Utc>,
    period_from: DateTime<Utc>,
) -> QueryResult<Vec<ActionUse>> {
    diesel::sql_query(format!(
        "SELECT u.action, \
                coalesce(sum(u.count) FILTER (WHERE u.hour >= $4), 0)::bigint AS in_period, \
                coalesce(sum(u.count) FILTER (WHERE u.hour >= $4 AND u.code <> 'VALID'), 0)::bigint AS refused_in_period, \
                coalesce(sum(u.count) FILTER (WHERE u.hour >= $3 AND u.code = 'VALID'), 0)::bigint AS valid_30, \
                coalesce(sum(u.count) FILTER (WHERE u.code = 'VALID'), 0)::bigint AS valid_90, \
                max(u.hour) FILTER (WHERE u.code = 'VALID') AS last_valid \
         FROM {USAGE_FROM} GROUP BY u.action ORDER BY u.action"
    ))
    .bind::<BigInt, _>(key_id)
    .bind::<Timestamptz, _>(since_90)
    .bind::<Timestamptz, _>(since_30)
    .bind::<Timestamptz, _>(period_from)
    .load(conn)
}

/// Counts of key `key_id` since `from` by code and secret.
pub fn codes(conn: &mut PgConnection, key_id: i64, from: DateTime<Utc>) -> QueryResult<Vec<CodeCount>> {
    diesel::sql_query(format!(
        "SELECT u.code, u.previous_secret, sum(u.count)::bigint AS count FROM {USAGE_FROM} \
         GROUP BY 1, 2 ORDER BY 1, 2"
    ))
    .bind::<BigInt, _>(key_id)
    .bind::<Timestamptz, _>(from)
    .load(conn)
}

/// The key's recent client addresses, the most recently seen first (ten at most are kept).
pub fn addresses(conn: &mut PgConnection, key_id: i64) -> QueryResult<Vec<AddressUse>> {
    diesel::sql_query(
        "SELECT address, first_seen_at, last_seen_at, uses, previous_secret_last_seen_at \
         FROM key_usage_addresses WHERE api_key_id = $1 ORDER BY last_seen_at DESC, address LIMIT 10",
    )
    .bind::<BigInt, _>(key_id)
    .load(conn)
}
