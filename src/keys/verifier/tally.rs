//! Usage counts of keys (issue 18): per key and hour, verifications by outcome code, action
//! and secret (current, or the previous one during its grace period), and the recent
//! distinct client addresses. Counted in memory on the verification path and written by the
//! periodic flush in one bounded batch: one upsert per table that *adds* to what is stored,
//! so the counts of any number of instances add up exactly. Counts go to the hourly table
//! and, added up per UTC day, to the daily one, so that pages over 30 or 90 days read a
//! row per day instead of one per hour.
//!
//! The hot path takes one of [`SHARDS`] small locks (by key id), so verifications of
//! different keys rarely wait for each other; it allocates only the first time a key, an
//! hour or an action is seen in a flush period. Everything is bounded: at most
//! [`MAX_ACTIONS`] distinct actions per key and hour (the rest count as [`OTHER_ACTION`])
//! and [`MAX_ADDRESSES`] addresses per key.

use std::{collections::HashMap, net::IpAddr, sync::Mutex};

use chrono::{DateTime, Utc};
use diesel::{
    prelude::*,
    sql_types::{Array, BigInt, Bool, Inet, Nullable, Text, Timestamptz},
};
use ipnetwork::IpNetwork;

use super::Code;

/// Independent locks the counters are spread over.
pub const SHARDS: usize = 16;
/// Distinct actions counted per key and hour; further ones count as [`OTHER_ACTION`].
pub const MAX_ACTIONS: usize = 20;
/// Distinct client addresses kept per key (the most recently seen).
pub const MAX_ADDRESSES: usize = 10;
/// The action of verifications whose action is not told apart (past [`MAX_ACTIONS`], or
/// not an action of the catalog).
pub const OTHER_ACTION: &str = "(other)";
/// Longest action code recorded as given.
const MAX_ACTION_LEN: usize = 64;

/// Counters of one action in one hour: by outcome code, then current (0) or previous (1)
/// secret.
type Counters = [u64; Code::ALL.len() * 2];

#[derive(Debug, Clone)]
struct HourTally {
    /// Hours since the Unix epoch.
    hour: i64,
    actions: Vec<(Box<str>, Counters)>,
}

/// A client address that presented the key's secret.
#[derive(Debug, Clone, PartialEq)]
pub struct Seen {
    pub ip: IpAddr,
    pub first: DateTime<Utc>,
    pub last: DateTime<Utc>,
    pub uses: u64,
    /// Last use of the previous secret (during its grace period) from this address.
    pub previous_last: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Default)]
struct KeyTally {
    hours: Vec<HourTally>,
    addresses: Vec<Seen>,
}

/// One verification to count.
#[derive(Debug, Clone, Copy)]
pub struct Use<'a> {
    pub key_id: i64,
    pub at: DateTime<Utc>,
    pub code: Code,
    /// The action as it should be counted (see [`action_label`]); "" when none was named.
    pub action: &'a str,
    pub previous: bool,
    /// The client address, when the caller proved they hold a secret of the key (an
    /// address that merely named the key's public id must not push real clients out).
    pub address: Option<IpAddr>,
}

/// The in-memory counters of one instance.
#[derive(Debug)]
pub struct UsageTally {
    enabled: bool,
    shards: Box<[Mutex<HashMap<i64, KeyTally>>]>,
}

impl Default for UsageTally {
    fn default() -> Self {
        Self::new(true)
    }
}

/// What a flush writes: rows of counts and of addresses, each key, hour, code, action and
/// secret once (so one upsert can merge them).
#[derive(Debug, Clone, Default)]
pub struct TallyBatch {
    keys: Vec<(i64, KeyTally)>,
}

impl TallyBatch {
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Keys in the batch.
    pub fn keys(&self) -> usize {
        self.keys.len()
    }
}

/// The label an attempt's action is counted under: the action itself when it is one of the
/// catalog (`known`) — the catalog is closed, so this bounds the labels — and otherwise
/// [`OTHER_ACTION`]; "" when none was named.
pub fn action_label(action: Option<&str>, known: impl FnOnce(&str) -> bool) -> &str {
    match action {
        None => "",
        Some(action)
            if action.len() <= MAX_ACTION_LEN
                && !action.is_empty()
                && action.bytes().all(|b| b.is_ascii_graphic())
                && known(action) =>
        {
            action
        }
        Some(_) => OTHER_ACTION,
    }
}

impl UsageTally {
    /// Counters that count (`enabled`) or ignore every use (to measure their cost).
    pub fn new(enabled: bool) -> Self {
        Self { enabled, shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect() }
    }

    pub fn enabled(&self) -> bool {
        self.enabled
    }

    fn shard(&self, key_id: i64) -> &Mutex<HashMap<i64, KeyTally>> {
        &self.shards[key_id.rem_euclid(SHARDS as i64) as usize]
    }

    /// Counts one verification.
    pub fn record(&self, usage: Use<'_>) {
        if !self.enabled {
            return;
        }
        let hour = usage.at.timestamp().div_euclid(3600);
        let slot = usage.code.index() * 2 + usize::from(usage.previous);
        let mut shard = self.shard(usage.key_id).lock().expect("the usage tally lock is never poisoned");
        let key = shard.entry(usage.key_id).or_default();
        let hour_tally = match key.hours.iter().position(|h| h.hour == hour) {
            Some(i) => &mut key.hours[i],
            None => {
                key.hours.push(HourTally { hour, actions: Vec::new() });
                key.hours.last_mut().expect("just pushed")
            }
        };
        let actions = &mut hour_tally.actions;
        let index = match actions.iter().position(|(a, _)| &**a == usage.action) {
            Some(i) => i,
            None => {
                let label = if actions.len() < MAX_ACTIONS || usage.action == OTHER_ACTION {
                    usage.action
                } else {
                    OTHER_ACTION
                };
                match actions.iter().position(|(a, _)| &**a == label) {
                    Some(i) => i,
                    None => {
                        actions.push((label.into(), [0; Code::ALL.len() * 2]));
                        actions.len() - 1
                    }
                }
            }
        };
        actions[index].1[slot] += 1;
        if let Some(ip) = usage.address {
            note_address(&mut key.addresses, ip, usage.at, usage.previous);
        }
    }

    /// Takes everything counted so far (the counters start again from zero).
    pub fn take(&self) -> TallyBatch {
        let mut keys = Vec::new();
        for shard in self.shards.iter() {
            let taken = std::mem::take(&mut *shard.lock().expect("the usage tally lock is never poisoned"));
            keys.extend(taken);
        }
        TallyBatch { keys }
    }

    /// Adds back a batch whose write failed, so the next flush writes it.
    pub fn restore(&self, batch: TallyBatch) {
        for (key_id, tally) in batch.keys {
            let mut shard = self.shard(key_id).lock().expect("the usage tally lock is never poisoned");
            let key = shard.entry(key_id).or_default();
            for hour in tally.hours {
                let into = match key.hours.iter().position(|h| h.hour == hour.hour) {
                    Some(i) => &mut key.hours[i],
                    None => {
                        key.hours.push(HourTally { hour: hour.hour, actions: Vec::new() });
                        key.hours.last_mut().expect("just pushed")
                    }
                };
                for (action, counters) in hour.actions {
                    match into.actions.iter_mut().find(|(a, _)| *a == action) {
                        Some((_, existing)) => existing.iter_mut().zip(counters).for_each(|(e, c)| *e += c),
                        None => into.actions.push((action, counters)),
                    }
                }
            }
            for seen in tally.addresses {
                match key.addresses.iter_mut().find(|s| s.ip == seen.ip) {
                    Some(existing) => {
                        existing.first = existing.first.min(seen.first);
                        existing.last = existing.last.max(seen.last);
                        existing.uses += seen.uses;
                        existing.previous_last = existing.previous_last.max(seen.previous_last);
                    }
                    None => key.addresses.push(seen),
                }
            }
            key.addresses.sort_by_key(|s| std::cmp::Reverse(s.last));
            key.addresses.truncate(MAX_ADDRESSES);
        }
    }

    /// Keys with counts not yet written.
    pub fn pending(&self) -> usize {
        self.shards.iter().map(|s| s.lock().expect("the usage tally lock is never poisoned").len()).sum()
    }
}

fn note_address(addresses: &mut Vec<Seen>, ip: IpAddr, at: DateTime<Utc>, previous: bool) {
    let previous_last = previous.then_some(at);
    if let Some(seen) = addresses.iter_mut().find(|s| s.ip == ip) {
        seen.last = seen.last.max(at);
        seen.uses += 1;
        seen.previous_last = seen.previous_last.max(previous_last);
        return;
    }
    let seen = Seen { ip, first: at, last: at, uses: 1, previous_last };
    if addresses.len() < MAX_ADDRESSES {
        addresses.push(seen);
    } else if let Some(oldest) = addresses.iter_mut().min_by_key(|s| s.last) {
        *oldest = seen;
    }
}

/// Writes `batch` in one transaction: two upserts adding the counts (per hour, per day),
/// one upsert merging the addresses, one delete keeping each key's ten most recent addresses. Rows are sorted so
/// that instances flushing at once lock them in the same order; keys deleted meanwhile are
/// skipped.
pub fn write(conn: &mut PgConnection, batch: &TallyBatch) -> QueryResult<()> {
    let mut rows: Vec<(i64, i64, &str, &str, bool, u64)> = Vec::new();
    let mut addresses: Vec<(i64, &Seen)> = Vec::new();
    for (key_id, tally) in &batch.keys {
        for hour in &tally.hours {
            for (action, counters) in &hour.actions {
                for (slot, &count) in counters.iter().enumerate() {
                    if count > 0 {
                        rows.push((*key_id, hour.hour, Code::ALL[slot / 2].as_str(), action, slot % 2 == 1, count));
                    }
                }
            }
        }
        addresses.extend(tally.addresses.iter().map(|seen| (*key_id, seen)));
    }
    rows.sort_unstable_by(|a, b| (a.0, a.1, a.2, a.3, a.4).cmp(&(b.0, b.1, b.2, b.3, b.4)));
    addresses.sort_unstable_by_key(|(key_id, seen)| (*key_id, seen.ip));
    let key_ids: Vec<i64> = rows.iter().map(|r| r.0).collect();
    let hours: Vec<DateTime<Utc>> = rows.iter().map(|r| hour_start(r.1)).collect();
    let codes: Vec<&str> = rows.iter().map(|r| r.2).collect();
    let actions: Vec<&str> = rows.iter().map(|r| r.3).collect();
    let previous: Vec<bool> = rows.iter().map(|r| r.4).collect();
    let counts: Vec<i64> = rows.iter().map(|r| r.5 as i64).collect();
    conn.transaction(|conn| {
        if !rows.is_empty() {
            for statement in [
                "INSERT INTO key_usage_hourly (api_key_id, hour, code, action, previous_secret, count) \
                 SELECT u.key_id, u.hour, u.code, u.action, u.previous, u.count \
                 FROM unnest($1, $2, $3, $4, $5, $6) WITH ORDINALITY AS u(key_id, hour, code, action, previous, count, n) \
                 JOIN api_keys k ON k.id = u.key_id \
                 ORDER BY u.n \
                 ON CONFLICT (api_key_id, hour, code, action, previous_secret) \
                 DO UPDATE SET count = key_usage_hourly.count + EXCLUDED.count",
                "INSERT INTO key_usage_daily (api_key_id, day, code, action, previous_secret, count) \
                 SELECT u.key_id, (u.hour AT TIME ZONE 'UTC')::date, u.code, u.action, u.previous, sum(u.count) \
                 FROM unnest($1, $2, $3, $4, $5, $6) AS u(key_id, hour, code, action, previous, count) \
                 JOIN api_keys k ON k.id = u.key_id \
                 GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 2, 3, 4, 5 \
                 ON CONFLICT (api_key_id, day, code, action, previous_secret) \
                 DO UPDATE SET count = key_usage_daily.count + EXCLUDED.count",
            ] {
                diesel::sql_query(statement)
                    .bind::<Array<BigInt>, _>(&key_ids)
                    .bind::<Array<Timestamptz>, _>(&hours)
                    .bind::<Array<Text>, _>(&codes)
                    .bind::<Array<Text>, _>(&actions)
                    .bind::<Array<Bool>, _>(&previous)
                    .bind::<Array<BigInt>, _>(&counts)
                    .execute(conn)?;
            }
        }
        if !addresses.is_empty() {
            let key_ids: Vec<i64> = addresses.iter().map(|(k, _)| *k).collect();
            diesel::sql_query(
                "INSERT INTO key_usage_addresses \
                     (api_key_id, address, first_seen_at, last_seen_at, uses, previous_secret_last_seen_at) \
                 SELECT u.key_id, u.address, u.first_seen, u.last_seen, u.uses, u.previous_last \
                 FROM unnest($1, $2, $3, $4, $5, $6) WITH ORDINALITY AS u(key_id, address, first_seen, last_seen, uses, previous_last, n) \
                 JOIN api_keys k ON k.id = u.key_id \
                 ORDER BY u.n \
                 ON CONFLICT (api_key_id, address) DO UPDATE SET \
                     first_seen_at = LEAST(key_usage_addresses.first_seen_at, EXCLUDED.first_seen_at), \
                     last_seen_at = GREATEST(key_usage_addresses.last_seen_at, EXCLUDED.last_seen_at), \
                     uses = key_usage_addresses.uses + EXCLUDED.uses, \
                     previous_secret_last_seen_at = GREATEST(key_usage_addresses.previous_secret_last_seen_at, \
                                                             EXCLUDED.previous_secret_last_seen_at)",
            )
            .bind::<Array<BigInt>, _>(&key_ids)
            .bind::<Array<Inet>, _>(addresses.iter().map(|(_, s)| IpNetwork::from(s.ip)).collect::<Vec<_>>())
            .bind::<Array<Timestamptz>, _>(addresses.iter().map(|(_, s)| s.first).collect::<Vec<_>>())
            .bind::<Array<Timestamptz>, _>(addresses.iter().map(|(_, s)| s.last).collect::<Vec<_>>())
            .bind::<Array<BigInt>, _>(addresses.iter().map(|(_, s)| s.uses as i64).collect::<Vec<_>>())
            .bind::<Array<Nullable<Timestamptz>>, _>(addresses.iter().map(|(_, s)| s.previous_last).collect::<Vec<_>>())
            .execute(conn)?;
            diesel::sql_query(
                "DELETE FROM key_usage_addresses a USING ( \
                     SELECT api_key_id, address, row_number() OVER ( \
                         PARTITION BY api_key_id ORDER BY last_seen_at DESC, address) AS n \
                     FROM key_usage_addresses WHERE api_key_id = ANY($1)) r \
                 WHERE a.api_key_id = r.api_key_id AND a.address = r.address AND r.n > $2",
            )
            .bind::<Array<BigInt>, _>(&key_ids)
            .bind::<BigInt, _>(MAX_ADDRESSES as i64)
            .execute(conn)?;
        }
        Ok(())
    })
}

fn hour_start(hour: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(hour * 3600, 0).expect("an hour of a recorded time")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(hour: i64, minute: i64) -> DateTime<Utc> {
        // 1,800,000,000 s after the epoch is an hour's start.
        DateTime::from_timestamp(1_800_000_000 + hour * 3600 + minute * 60, 0).unwrap()
    }

    fn valid(key_id: i64, when: DateTime<Utc>, action: &str) -> Use<'_> {
        Use { key_id, at: when, code: Code::Valid, action, previous: false, address: None }
    }

    fn counts(batch: &TallyBatch) -> Vec<(i64, i64, String, String, bool, u64)> {
        let mut out = Vec::new();
        for (key_id, tally) in &batch.keys {
            for hour in &tally.hours {
                for (action, counters) in &hour.actions {
                    for (slot, &count) in counters.iter().enumerate() {
                        if count > 0 {
                            let code = Code::ALL[slot / 2].as_str().to_string();
                            out.push((*key_id, hour.hour, code, action.to_string(), slot % 2 == 1, count));
                        }
                    }
                }
            }
        }
        out.sort();
        out
    }

    #[test]
    fn uses_are_counted_per_key_hour_code_action_and_secret() {
        let tally = UsageTally::default();
        tally.record(valid(1, at(0, 1), "a"));
        tally.record(valid(1, at(0, 59), "a"));
        tally.record(valid(1, at(1, 0), "a"));
        tally.record(Use { code: Code::ForbiddenAction, ..valid(1, at(0, 2), "b") });
        tally.record(Use { previous: true, ..valid(1, at(0, 3), "a") });
        tally.record(valid(2, at(0, 3), ""));
        let batch = tally.take();
        let rows = counts(&batch);
        let h0 = at(0, 0).timestamp() / 3600;
        assert_eq!(
            rows,
            vec![
                (1, h0, "FORBIDDEN_ACTION".into(), "b".into(), false, 1),
                (1, h0, "VALID".into(), "a".into(), false, 2),
                (1, h0, "VALID".into(), "a".into(), true, 1),
                (1, h0 + 1, "VALID".into(), "a".into(), false, 1),
                (2, h0, "VALID".into(), "".into(), false, 1),
            ]
        );
        assert_eq!(tally.pending(), 0, "taken");
        tally.restore(batch.clone());
        tally.restore(batch);
        let doubled = counts(&tally.take());
        assert_eq!(doubled[1].5, 4, "restored counts add up");
    }

    #[test]
    fn distinct_actions_per_key_and_hour_are_bounded() {
        let tally = UsageTally::default();
        let names: Vec<String> = (0..MAX_ACTIONS + 5).map(|i| format!("action.{i}")).collect();
        for name in &names {
            tally.record(valid(1, at(0, 0), name));
        }
        let rows = counts(&tally.take());
        assert_eq!(rows.len(), MAX_ACTIONS + 1);
        assert!(rows.iter().any(|r| r.3 == OTHER_ACTION && r.5 == 5));
    }

    #[test]
    fn only_catalog_actions_are_named() {
        let known = |a: &str| a == "positions.read";
        assert_eq!(action_label(Some("positions.read"), known), "positions.read");
        assert_eq!(action_label(Some("made.up"), known), OTHER_ACTION);
        assert_eq!(action_label(Some(&"x".repeat(100)), |_| true), OTHER_ACTION);
        assert_eq!(action_label(None, known), "");
    }

    #[test]
    fn the_ten_most_recent_addresses_are_kept_with_first_and_last_seen() {
        let tally = UsageTally::default();
        let ip = |i: u8| Some(IpAddr::from([192, 0, 2, i]));
        tally.record(Use { address: ip(1), ..valid(1, at(0, 0), "") });
        for i in 2..=12u8 {
            tally.record(Use { address: ip(i), ..valid(1, at(0, i64::from(i)), "") });
        }
        tally.record(Use { address: ip(12), previous: true, ..valid(1, at(0, 30), "") });
        let batch = tally.take();
        let addresses = &batch.keys[0].1.addresses;
        assert_eq!(addresses.len(), MAX_ADDRESSES);
        assert!(addresses.iter().all(|s| s.ip != ip(1).unwrap() && s.ip != ip(2).unwrap()), "oldest evicted");
        let twelve = addresses.iter().find(|s| s.ip == ip(12).unwrap()).unwrap();
        assert_eq!((twelve.first, twelve.last, twelve.uses), (at(0, 12), at(0, 30), 2));
        assert_eq!(twelve.previous_last, Some(at(0, 30)));
    }

    #[test]
    fn a_disabled_tally_counts_nothing() {
        let tally = UsageTally::new(false);
        tally.record(valid(1, at(0, 0), "a"));
        assert!(tally.take().is_empty());
    }

    #[test]
    fn code_indexes_follow_the_list_of_codes() {
        for (i, code) in Code::ALL.iter().enumerate() {
            assert_eq!(code.index(), i);
        }
    }
}
