//! `purge-audit`: the operator's one way to remove old audit events, as the tables' owner.

use anyhow::anyhow;
use chrono::{DateTime, NaiveDate, Utc};
use diesel::Connection;

use crate::{config::Config, db, services::audit};

use super::{DatabaseHandle, refused};

/// `--before` as a UTC instant: a date (`2026-01-31`, meaning its midnight UTC) or an RFC 3339
/// timestamp.
pub fn parse_cutoff(value: &str) -> anyhow::Result<DateTime<Utc>> {
    let value = value.trim();
    if let Ok(date) = NaiveDate::parse_from_str(value, "%Y-%m-%d") {
        return Ok(date.and_hms_opt(0, 0, 0).expect("midnight exists").and_utc());
    }
    DateTime::parse_from_rfc3339(value).map(|t| t.with_timezone(&Utc)).map_err(|_| {
        anyhow!("--before must be a date (YYYY-MM-DD, midnight UTC) or an RFC 3339 timestamp, not {value:?}")
    })
}

/// Deletes the events that occurred before `before` and records the purge, in one transaction.
pub fn purge_audit(config: &Config, before: &str) -> anyhow::Result<()> {
    let cutoff = parse_cutoff(before)?;
    let handle = DatabaseHandle::open(config)?;
    handle.migrate()?;
    let mut conn = db::connect(&handle.owner_url)?;
    let purged = conn.transaction(|conn| audit::purge_before(conn, cutoff, Utc::now())).map_err(refused)?;
    println!(
        "Removed {} audit event(s) from before {} ({} organization(s)); the purge is recorded in the audit log.",
        purged.deleted,
        cutoff.to_rfc3339(),
        purged.organizations
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::parse_cutoff;

    #[test]
    fn cutoffs_are_dates_or_timestamps() {
        assert_eq!(parse_cutoff("2026-01-31").unwrap().to_rfc3339(), "2026-01-31T00:00:00+00:00");
        assert_eq!(parse_cutoff("2026-01-31T12:00:00+02:00").unwrap().to_rfc3339(), "2026-01-31T10:00:00+00:00");
        assert!(parse_cutoff("last year").is_err());
        assert!(parse_cutoff("2026-02-30").is_err());
    }
}
