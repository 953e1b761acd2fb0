//! Reading a key's usage counts (`key_usage_hourly`, `key_usage_daily`,
//! `key_usage_addresses`), written by the verifier's flush (`keys::verifier::tally`) and
//! pruned by `services::usage::prune`. Every finder takes one key id (the caller has already
//! checked that the viewer may see that key), but the organization-wide two at the end
//! (the admin overview's busiest keys and refusals), which take the organization's id.
//!
//! Every count is in both tables (per hour and per UTC day), so a finder reads one of them:
//! the hours for the last day or week, the days for 30 and 90 days (a busy key has a few
//! rows per day instead of a few hundred).

use chrono::{DateTime, NaiveDate, Utc};
use diesel::{
    prelude::*,
    sql_types::{BigInt, Bool, Date, Inet, Nullable, Text, Timestamptz},
};
use ipnetwork::IpNetwork;

/// Verifications with one code in one bucket of a chart.
#[derive(Debug, Clone, QueryableByName)]
pub struct BucketCount {
    /// The bucket's number: seconds since the epoch divided by the bucket's length.
    #[diesel(sql_type = BigInt)]
    pub bucket: i64,
    #[diesel(sql_type = Text)]
    pub code: String,
    /// "" for verifications that named no action.
    #[diesel(sql_type = Text)]
    pub action: String,
    #[diesel(sql_type = BigInt)]
    pub count: i64,
}

/// One action's valid use.
#[derive(Debug, Clone, QueryableByName)]
pub struct ActionUse {
    #[diesel(sql_type = Text)]
    pub action: String,
    /// Valid verifications in the last 30 and 90 days (whole UTC days).
    #[diesel(sql_type = BigInt)]
    pub valid_30: i64,
    #[diesel(sql_type = BigInt)]
    pub valid_90: i64,
    /// The last day (UTC) of a valid verification.
    #[diesel(sql_type = Nullable<Date>)]
    pub last_valid: Option<NaiveDate>,
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

/// Counts of key `key_id` from `from` on, by bucket of `bucket_seconds`, code and action:
/// from the daily counts when buckets are whole days (`from` a day's start), else from the
/// hourly ones.
pub fn buckets(
    conn: &mut PgConnection,
    key_id: i64,
    from: DateTime<Utc>,
    bucket_seconds: i64,
) -> QueryResult<Vec<BucketCount>> {
    let query = if bucket_seconds % 86_400 == 0 {
        "SELECT floor(extract(epoch FROM (day::timestamp AT TIME ZONE 'UTC')) / $3)::bigint AS bucket, \
                code, action, sum(count)::bigint AS count \
         FROM key_usage_daily WHERE api_key_id = $1 AND day >= ($2 AT TIME ZONE 'UTC')::date \
         GROUP BY 1, 2, 3"
    } else {
        "SELECT floor(extract(epoch FROM hour) / $3)::bigint AS bucket, code, action, sum(count)::bigint AS count \
         FROM key_usage_hourly WHERE api_key_id = $1 AND hour >= $2 GROUP BY 1, 2, 3"
    };
    diesel::sql_query(query)
        .bind::<BigInt, _>(key_id)
        .bind::<Timestamptz, _>(from)
        .bind::<BigInt, _>(bucket_seconds)
        .load(conn)
}

/// The actions key `key_id` was validly verified for since the day `since_90`, with the
/// counts since `since_30` and since `since_90` (daily counts).
pub fn actions(
    conn: &mut PgConnection,
    key_id: i64,
    since_90: NaiveDate,
    since_30: NaiveDate,
) -> QueryResult<Vec<ActionUse>> {
    diesel::sql_query(
        "SELECT action, \
                coalesce(sum(count) FILTER (WHERE day >= $3), 0)::bigint AS valid_30, \
                sum(count)::bigint AS valid_90, max(day) AS last_valid \
         FROM key_usage_daily WHERE api_key_id = $1 AND code = 'VALID' AND day >= $2 \
         GROUP BY action ORDER BY action",
    )
    .bind::<BigInt, _>(key_id)
    .bind::<Date, _>(since_90)
    .bind::<Date, _>(since_30)
    .load(conn)
}

/// Counts of key `key_id` since `from` by code and secret (hourly counts: for a grace
/// period, at most a week).
pub fn codes(conn: &mut PgConnection, key_id: i64, from: DateTime<Utc>) -> QueryResult<Vec<CodeCount>> {
    diesel::sql_query(
        "SELECT code, previous_secret, sum(count)::bigint AS count FROM key_usage_hourly \
         WHERE api_key_id = $1 AND hour >= $2 GROUP BY 1, 2 ORDER BY 1, 2",
    )
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

/// One of an organization's busiest keys over some days.
#[derive(Debug, Clone, QueryableByName)]
pub struct BusyKey {
    #[diesel(sql_type = Text)]
    pub public_id: String,
    #[diesel(sql_type = Text)]
    pub name: String,
    #[diesel(sql_type = BigInt)]
    pub total: i64,
    #[diesel(sql_type = BigInt)]
    pub refused: i64,
}

/// The `limit` keys of organization `organization_id` verified most often since day `from`
/// (daily counts), busiest first.
pub fn busiest(
    conn: &mut PgConnection,
    organization_id: i64,
    from: NaiveDate,
    limit: i64,
) -> QueryResult<Vec<BusyKey>> {
    diesel::sql_query(
        "SELECT k.public_id, k.name, sum(d.count)::bigint AS total, \
                (sum(d.count) FILTER (WHERE d.code <> 'VALID'))::bigint AS refused \
         FROM key_usage_daily d JOIN api_keys k ON k.id = d.api_key_id \
         WHERE k.organization_id = $1 AND d.day >= $2 \
         GROUP BY k.id, k.public_id, k.name ORDER BY total DESC, k.id LIMIT $3",
    )
    .bind::<BigInt, _>(organization_id)
    .bind::<Date, _>(from)
    .bind::<BigInt, _>(limit)
    .load::<BusyKeyRow>(conn)
    .map(|rows| rows.into_iter().map(BusyKeyRow::into_busy).collect())
}

/// [`BusyKey`] as read: `refused` is NULL for a key refused nothing.
#[derive(QueryableByName)]
struct BusyKeyRow {
    #[diesel(sql_type = Text)]
    public_id: String,
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = BigInt)]
    total: i64,
    #[diesel(sql_type = Nullable<BigInt>)]
    refused: Option<i64>,
}

impl BusyKeyRow {
    fn into_busy(self) -> BusyKey {
        BusyKey { public_id: self.public_id, name: self.name, total: self.total, refused: self.refused.unwrap_or(0) }
    }
}

/// Refused verifications of one code on one day, across an organization's keys.
#[derive(Debug, Clone, QueryableByName)]
pub struct DailyRefusals {
    #[diesel(sql_type = Date)]
    pub day: NaiveDate,
    #[diesel(sql_type = Text)]
    pub code: String,
    #[diesel(sql_type = BigInt)]
    pub count: i64,
}

/// The refused verifications of organization `organization_id`'s keys since day `from`, by
/// day and code.
pub fn refusals_by_day(
    conn: &mut PgConnection,
    organization_id: i64,
    from: NaiveDate,
) -> QueryResult<Vec<DailyRefusals>> {
    diesel::sql_query(
        "SELECT d.day, d.code, sum(d.count)::bigint AS count \
         FROM key_usage_daily d JOIN api_keys k ON k.id = d.api_key_id \
         WHERE k.organization_id = $1 AND d.day >= $2 AND d.code <> 'VALID' \
         GROUP BY 1, 2 ORDER BY 1, 2",
    )
    .bind::<BigInt, _>(organization_id)
    .bind::<Date, _>(from)
    .load(conn)
}
