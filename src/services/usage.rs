//! Retention of key usage counts: hourly counts older than the hourly retention, daily
//! counts older than the daily retention and client addresses not seen within the hourly
//! retention are deleted. (The flush writes every count per hour and per day, so the daily
//! counts already hold what the hourly ones drop: nothing needs rolling up.) [`prune`] is one job run; the jobs
//! framework runs it (once across instances), `now` comes from the injected clock.

use chrono::{DateTime, Duration, Months, Utc};
use diesel::{
    prelude::*,
    sql_types::{Date, Timestamptz},
};

use crate::error::AppError;

/// How long usage counts are kept (`KEYWARD_USAGE_HOURLY_DAYS`, `KEYWARD_USAGE_DAILY_MONTHS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Days of hourly counts (and of recent client addresses).
    pub hourly_days: u32,
    /// Months of daily counts.
    pub daily_months: u32,
}

impl Default for Retention {
    fn default() -> Self {
        Self { hourly_days: 90, daily_months: 13 }
    }
}

impl Retention {
    /// Hourly counts before this are deleted: the start of the UTC day `hourly_days` ago, so
    /// that a day's hours go together.
    pub fn hourly_cutoff(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        let day = (now - Duration::days(i64::from(self.hourly_days))).date_naive();
        day.and_hms_opt(0, 0, 0).expect("midnight exists").and_utc()
    }

    /// Daily counts before this day are deleted.
    pub fn daily_cutoff(&self, now: DateTime<Utc>) -> chrono::NaiveDate {
        let day = now.date_naive();
        day.checked_sub_months(Months::new(self.daily_months)).unwrap_or(day)
    }
}

/// The retention the `usage-retention` job applies: set once at start-up from the
/// configuration (`serve`, `run-jobs`), the default until then. Jobs are plain functions of a
/// connection and a time, so the one setting they need lives here.
static RETENTION: std::sync::OnceLock<Retention> = std::sync::OnceLock::new();

/// Sets the retention of the `usage-retention` job (the first call wins).
pub fn configure_retention(retention: Retention) {
    let _ = RETENTION.set(retention);
}

/// The `usage-retention` job: [`prune`] with the configured retention.
pub fn prune_job(conn: &mut PgConnection, now: DateTime<Utc>) -> Result<String, AppError> {
    let retention = RETENTION.get().copied().unwrap_or_default();
    let pruned = prune(conn, now, &retention)?;
    Ok(format!(
        "deleted {} hourly and {} daily count(s) and {} client address(es) past retention",
        pruned.hourly_deleted, pruned.daily_deleted, pruned.addresses_deleted
    ))
}

/// What one [`prune`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pruned {
    /// Hourly rows deleted.
    pub hourly_deleted: usize,
    /// Daily rows deleted.
    pub daily_deleted: usize,
    /// Client addresses deleted.
    pub addresses_deleted: usize,
}

/// Deletes what `retention` no longer keeps at `now`, in one transaction. Safe to run
/// concurrently and again (it only deletes).
pub fn prune(conn: &mut PgConnection, now: DateTime<Utc>, retention: &Retention) -> Result<Pruned, AppError> {
    let hourly_cutoff = retention.hourly_cutoff(now);
    let daily_cutoff = retention.daily_cutoff(now);
    Ok(conn.transaction(|conn| {
        let hourly_deleted = diesel::sql_query("DELETE FROM key_usage_hourly WHERE hour < $1")
            .bind::<Timestamptz, _>(hourly_cutoff)
            .execute(conn)?;
        let daily_deleted = diesel::sql_query("DELETE FROM key_usage_daily WHERE day < $1")
            .bind::<Date, _>(daily_cutoff)
            .execute(conn)?;
        let addresses_deleted = diesel::sql_query("DELETE FROM key_usage_addresses WHERE last_seen_at < $1")
            .bind::<Timestamptz, _>(hourly_cutoff)
            .execute(conn)?;
        Ok::<_, diesel::result::Error>(Pruned { hourly_deleted, daily_deleted, addresses_deleted })
    })?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cutoffs_fall_on_whole_days() {
        let now = "2027-05-20T15:30:00Z".parse::<DateTime<Utc>>().unwrap();
        let retention = Retention::default();
        assert_eq!(retention.hourly_cutoff(now), "2027-02-19T00:00:00Z".parse::<DateTime<Utc>>().unwrap());
        assert_eq!(retention.daily_cutoff(now).to_string(), "2026-04-20");
    }
}
