//! Dates for people: an exact UTC time (shown without JavaScript, converted to the viewer's
//! time zone by `static/app.js`) and a relative time ("3 hours ago").

use chrono::{DateTime, Utc};

/// A moment ready for a template: `<time datetime="{{ iso }}" title="{{ exact }}">{{ relative }}</time>`.
#[derive(Debug, Clone)]
pub struct Stamp {
    pub iso: String,
    pub exact: String,
    /// The UTC date alone ("3 Mar 2027"), where the day is what matters (expiry in lists).
    pub date: String,
    pub relative: String,
}

impl Stamp {
    pub fn new(at: DateTime<Utc>) -> Self {
        Self::relative_to(at, Utc::now())
    }

    pub fn relative_to(at: DateTime<Utc>, now: DateTime<Utc>) -> Self {
        Self {
            iso: at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            exact: at.format("%Y-%m-%d %H:%M UTC").to_string(),
            date: at.format("%-d %b %Y").to_string(),
            relative: relative(at, now),
        }
    }

    pub fn maybe(at: Option<DateTime<Utc>>) -> Option<Self> {
        at.map(Self::new)
    }

    /// [`Stamp::maybe`] relative to `now` (the application's clock).
    pub fn maybe_relative_to(at: Option<DateTime<Utc>>, now: DateTime<Utc>) -> Option<Self> {
        at.map(|at| Self::relative_to(at, now))
    }
}

/// "just now", "5 minutes ago", "in 3 days"…
pub fn relative(at: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let seconds = (at - now).num_seconds();
    let future = seconds > 0;
    let s = seconds.unsigned_abs();
    if s < 45 {
        return "just now".into();
    }
    let (n, unit) = match s {
        s if s < 90 => (1, "minute"),
        s if s < 3600 => (s.div_ceil(60).min(59), "minute"),
        s if s < 5400 => (1, "hour"),
        s if s < 86_400 => ((s + 1800) / 3600, "hour"),
        s if s < 172_800 => (1, "day"),
        s if s < 2_592_000 => ((s + 43_200) / 86_400, "day"),
        s if s < 31_536_000 => ((s + 1_296_000) / 2_592_000, "month"),
        s => ((s + 15_768_000) / 31_536_000, "year"),
    };
    let plural = if n == 1 { "" } else { "s" };
    if future { format!("in {n} {unit}{plural}") } else { format!("{n} {unit}{plural} ago") }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    #[test]
    fn relative_times_read_naturally() {
        let now = Utc::now();
        assert_eq!(relative(now, now), "just now");
        assert_eq!(relative(now - Duration::minutes(5), now), "5 minutes ago");
        assert_eq!(relative(now - Duration::hours(3), now), "3 hours ago");
        assert_eq!(relative(now + Duration::days(10), now), "in 10 days");
        assert_eq!(relative(now - Duration::days(400), now), "1 year ago");
        assert_eq!(relative(now + Duration::hours(1), now), "in 1 hour");
    }

    #[test]
    fn stamps_carry_an_exact_utc_time() {
        let at = DateTime::parse_from_rfc3339("2026-01-02T03:04:05Z").unwrap().with_timezone(&Utc);
        let stamp = Stamp::relative_to(at, at);
        assert_eq!(stamp.iso, "2026-01-02T03:04:05Z");
        assert_eq!(stamp.exact, "2026-01-02 03:04 UTC");
        assert_eq!(stamp.date, "2 Jan 2026");
    }
}
