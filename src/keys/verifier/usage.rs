//! Last use of keys (time, client address, and use of a previous secret during its grace
//! period), collected in memory on the verification path and written in batches: at most one
//! write per key per minute, one UPDATE per flush, never a write per request. Management
//! tokens' last use is collected the same way by a recorder of its own ([`write_tokens`]). One exception
//! keeps the re-key page honest: the first use of a previous secret is written at the next
//! flush (seconds), not up to a minute later — at most one extra write per key per minute.

use std::{
    collections::HashMap,
    net::IpAddr,
    sync::Mutex,
    time::{Duration, Instant},
};

use chrono::{DateTime, Utc};
use diesel::{
    prelude::*,
    sql_types::{Array, BigInt, Inet, Nullable, Timestamptz},
};
use ipnetwork::IpNetwork;

/// A key is written at most this often.
pub const MIN_WRITE_INTERVAL: Duration = Duration::from_secs(60);

/// What is known about a key's latest use.
#[derive(Debug, Clone)]
pub struct Usage {
    pub key_id: i64,
    pub at: DateTime<Utc>,
    pub ip: Option<IpAddr>,
    pub previous_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Default)]
struct State {
    pending: HashMap<i64, Usage>,
    /// When each key was last written, and whether that write carried a previous secret's use.
    written: HashMap<i64, (Instant, bool)>,
}

/// The in-memory collector.
#[derive(Debug, Default)]
pub struct UsageRecorder {
    state: Mutex<State>,
}

impl UsageRecorder {
    /// Notes a use of key `key_id` at `now` (with its previous secret when `previous`).
    pub fn record(&self, key_id: i64, now: DateTime<Utc>, ip: Option<IpAddr>, previous: bool) {
        let mut state = self.state.lock().expect("the usage lock is never poisoned");
        let entry = state.pending.entry(key_id).or_insert(Usage { key_id, at: now, ip: None, previous_at: None });
        entry.at = now;
        entry.ip = ip;
        if previous {
            entry.previous_at = Some(now);
        }
    }

    /// Takes the records of keys not written within [`MIN_WRITE_INTERVAL`]; the others wait.
    /// A record carrying the first use of a previous secret since the key's last write is due
    /// at once.
    pub fn take_due(&self) -> Vec<Usage> {
        self.take(|usage, written| match written {
            None => true,
            Some((at, carried_previous)) => {
                at.elapsed() >= MIN_WRITE_INTERVAL || (usage.previous_at.is_some() && !carried_previous)
            }
        })
    }

    /// Takes every record (at shutdown: nothing may be lost).
    pub fn take_all(&self) -> Vec<Usage> {
        self.take(|_, _| true)
    }

    fn take(&self, due: impl Fn(&Usage, Option<&(Instant, bool)>) -> bool) -> Vec<Usage> {
        let mut state = self.state.lock().expect("the usage lock is never poisoned");
        let ids: Vec<i64> =
            state.pending.iter().filter(|(id, usage)| due(usage, state.written.get(id))).map(|(id, _)| *id).collect();
        let now = Instant::now();
        let mut batch = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(usage) = state.pending.remove(&id) {
                state.written.insert(id, (now, usage.previous_at.is_some()));
                batch.push(usage);
            }
        }
        state.written.retain(|_, (at, _)| at.elapsed() < MIN_WRITE_INTERVAL);
        batch
    }

    /// Puts back records whose write failed (unless newer ones arrived meanwhile).
    pub fn restore(&self, batch: Vec<Usage>) {
        let mut state = self.state.lock().expect("the usage lock is never poisoned");
        for usage in batch {
            state.written.remove(&usage.key_id);
            state.pending.entry(usage.key_id).or_insert(usage);
        }
    }

    pub fn pending(&self) -> usize {
        self.state.lock().expect("the usage lock is never poisoned").pending.len()
    }
}

/// Writes a batch in one statement. Times only move forward, so an older record never
/// overwrites a newer one written by another instance.
pub fn write(conn: &mut PgConnection, batch: &[Usage]) -> QueryResult<()> {
    let ids: Vec<i64> = batch.iter().map(|u| u.key_id).collect();
    let ats: Vec<DateTime<Utc>> = batch.iter().map(|u| u.at).collect();
    let ips: Vec<Option<IpNetwork>> = batch.iter().map(|u| u.ip.map(IpNetwork::from)).collect();
    let previous: Vec<Option<DateTime<Utc>>> = batch.iter().map(|u| u.previous_at).collect();
    diesel::sql_query(
        "UPDATE api_keys AS k SET \
            last_used_at = GREATEST(k.last_used_at, u.at), \
            last_used_ip = CASE WHEN k.last_used_at IS NULL OR u.at >= k.last_used_at THEN u.ip ELSE k.last_used_ip END, \
            previous_secret_last_used_at = GREATEST(k.previous_secret_last_used_at, u.previous_at) \
         FROM unnest($1, $2, $3, $4) AS u(id, at, ip, previous_at) \
         WHERE k.id = u.id",
    )
    .bind::<Array<BigInt>, _>(ids)
    .bind::<Array<Timestamptz>, _>(ats)
    .bind::<Array<Nullable<Inet>>, _>(ips)
    .bind::<Array<Nullable<Timestamptz>>, _>(previous)
    .execute(conn)
    .map(|_| ())
}

/// Writes a batch of management tokens' last use (`key_id` is the token's id) in one
/// statement, times only moving forward as for keys.
pub fn write_tokens(conn: &mut PgConnection, batch: &[Usage]) -> QueryResult<()> {
    let ids: Vec<i64> = batch.iter().map(|u| u.key_id).collect();
    let ats: Vec<DateTime<Utc>> = batch.iter().map(|u| u.at).collect();
    let ips: Vec<Option<IpNetwork>> = batch.iter().map(|u| u.ip.map(IpNetwork::from)).collect();
    diesel::sql_query(
        "UPDATE management_tokens AS t SET \
            last_used_at = GREATEST(t.last_used_at, u.at), \
            last_used_ip = CASE WHEN t.last_used_at IS NULL OR u.at >= t.last_used_at THEN u.ip ELSE t.last_used_ip END \
         FROM unnest($1, $2, $3) AS u(id, at, ip) \
         WHERE t.id = u.id",
    )
    .bind::<Array<BigInt>, _>(ids)
    .bind::<Array<Timestamptz>, _>(ats)
    .bind::<Array<Nullable<Inet>>, _>(ips)
    .execute(conn)
    .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_due_once_per_interval() {
        let recorder = UsageRecorder::default();
        recorder.record(1, Utc::now(), Some("192.0.2.1".parse().unwrap()), false);
        recorder.record(1, Utc::now(), Some("192.0.2.2".parse().unwrap()), true);
        let batch = recorder.take_due();
        assert_eq!(batch.len(), 1, "many uses, one record");
        assert_eq!(batch[0].ip.unwrap().to_string(), "192.0.2.2");
        assert!(batch[0].previous_at.is_some());
        recorder.record(1, Utc::now(), None, false);
        assert!(recorder.take_due().is_empty(), "written less than a minute ago");
        assert_eq!(recorder.take_all().len(), 1, "but flushed at shutdown");
    }

    #[test]
    fn the_first_use_of_a_previous_secret_is_written_at_the_next_flush() {
        let recorder = UsageRecorder::default();
        recorder.record(1, Utc::now(), None, false);
        assert_eq!(recorder.take_due().len(), 1);
        // Re-keyed: the old secret is used a moment later.
        recorder.record(1, Utc::now(), None, true);
        let batch = recorder.take_due();
        assert_eq!(batch.len(), 1, "not held back for the rest of the minute");
        assert!(batch[0].previous_at.is_some());
        // Once told, further uses wait for the interval again.
        recorder.record(1, Utc::now(), None, true);
        recorder.record(1, Utc::now(), None, false);
        assert!(recorder.take_due().is_empty());
    }
}
