//! The application's clock: every decision that depends on the time of day (session idle
//! and absolute timeouts, key expiry, re-key grace periods, "in 3 days" on a page) reads
//! `now()` from the one [`Clock`] held in `AppState`, so that tests move time forward
//! instead of rewriting timestamps in the database.
//!
//! Production runs on [`Clock::system`], which is `Utc::now()` and nothing else. A test
//! builds [`Clock::adjustable`] and keeps its [`ClockHandle`]: only the handle moves time,
//! so no code path of the application can.

use std::sync::{
    Arc,
    atomic::{AtomicI64, Ordering},
};

use chrono::{DateTime, NaiveDate, Utc};

/// The time as the application sees it. Cheap to clone and to read: the verifier reads it
/// on every request (one relaxed atomic load at most).
#[derive(Debug, Clone, Default)]
pub struct Clock {
    /// Milliseconds added to the system time; `None` for the system clock.
    offset_ms: Option<Arc<AtomicI64>>,
}

/// Moves an adjustable [`Clock`] (and every clone of it) forward.
#[derive(Debug, Clone)]
pub struct ClockHandle {
    offset_ms: Arc<AtomicI64>,
}

impl Clock {
    /// The system clock.
    pub fn system() -> Self {
        Self { offset_ms: None }
    }

    /// A clock that starts at the system time and that the returned handle moves.
    pub fn adjustable() -> (Self, ClockHandle) {
        let offset_ms = Arc::new(AtomicI64::new(0));
        (Self { offset_ms: Some(Arc::clone(&offset_ms)) }, ClockHandle { offset_ms })
    }

    pub fn now(&self) -> DateTime<Utc> {
        let now = Utc::now();
        match &self.offset_ms {
            None => now,
            Some(offset) => now + chrono::Duration::milliseconds(offset.load(Ordering::Relaxed)),
        }
    }

    /// Today's date in UTC.
    pub fn today(&self) -> NaiveDate {
        self.now().date_naive()
    }
}

impl ClockHandle {
    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: std::time::Duration) {
        let ms = i64::try_from(by.as_millis()).expect("a duration a test can mean");
        self.offset_ms.fetch_add(ms, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_adjustable_clock_moves_with_its_handle_and_its_clones() {
        let (clock, handle) = Clock::adjustable();
        let copy = clock.clone();
        let before = clock.now();
        handle.advance(std::time::Duration::from_secs(3 * 86_400));
        assert!(copy.now() - before >= chrono::Duration::days(3));
        assert!(copy.now() - before < chrono::Duration::days(3) + chrono::Duration::minutes(1));
        assert!(Clock::system().now() - before < chrono::Duration::minutes(1));
    }
}
