//! The management API's per-token rate limit, shared by every instance: requests counted per
//! token in fixed one-minute windows in the database (`management_rate_windows`), and the
//! `management-rate-windows` job that deletes the windows that are over.
//!
//! Fixed windows rather than a sliding estimate: one upsert per request, and the answer's
//! `RateLimit` fields are exact (requests left, seconds until the window ends). The price is
//! that a token may spend its quota at the end of one minute and again at the start of the
//! next, twice the rate over a few seconds, never more.

use chrono::{DateTime, TimeDelta, Utc};
use diesel::{PgConnection, QueryResult};

use crate::{db::models::management_rate_window, error::AppError};

/// The length of a window.
pub const WINDOW: TimeDelta = TimeDelta::seconds(60);

/// One counted request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counted {
    /// The token's requests in the window so far, this one included.
    pub requests: u32,
    /// When the window ends (and the count starts again).
    pub window_end: DateTime<Utc>,
}

/// The start of the window `at` falls in: the whole minute (UTC), the same on every instance.
pub fn window_start(at: DateTime<Utc>) -> DateTime<Utc> {
    let secs = at.timestamp();
    DateTime::from_timestamp(secs - secs.rem_euclid(WINDOW.num_seconds()), 0).unwrap_or(at)
}

/// Counts one request of `token_id` at `now`.
pub fn count(conn: &mut PgConnection, token_id: i64, now: DateTime<Utc>) -> QueryResult<Counted> {
    let start = window_start(now);
    let requests = management_rate_window::count_request(conn, token_id, start)?;
    Ok(Counted { requests: u32::try_from(requests).unwrap_or(u32::MAX), window_end: start + WINDOW })
}

/// The `management-rate-windows` job: deletes the windows that ended before the current one
/// began (nothing reads them again). Idempotent.
pub fn prune_job(conn: &mut PgConnection, now: DateTime<Utc>) -> Result<String, AppError> {
    let deleted = management_rate_window::delete_before(conn, window_start(now) - WINDOW)?;
    Ok(format!("deleted {deleted} past rate window(s) of management tokens"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_is_the_whole_minute_of_its_time() {
        let at = DateTime::parse_from_rfc3339("2026-12-04T10:11:59.900Z").unwrap().to_utc();
        assert_eq!(window_start(at).to_rfc3339(), "2026-12-04T10:11:00+00:00");
        let on_the_minute = DateTime::parse_from_rfc3339("2026-12-04T10:12:00Z").unwrap().to_utc();
        assert_eq!(window_start(on_the_minute), on_the_minute);
    }
}
