//! Key policy: default and maximum lifetime, whether keys may never expire, default re-key
//! grace. Organizations set their own; service-provider keys follow the platform default.

use chrono::{DateTime, Duration, NaiveDate, NaiveTime, Utc};

use crate::db::models::Organization;

/// The policy that applies to a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyPolicy {
    pub default_lifetime_days: i32,
    pub max_lifetime_days: Option<i32>,
    pub allow_never_expires: bool,
    pub default_grace_minutes: i32,
}

/// Grace periods offered when re-keying: `(minutes, label)`, "immediately" to 7 days.
pub const GRACE_CHOICES: &[(i32, &str)] = &[
    (0, "Immediately (the old secret stops now)"),
    (15, "15 minutes"),
    (60, "1 hour"),
    (240, "4 hours"),
    (1440, "1 day"),
    (4320, "3 days"),
    (10080, "7 days"),
];

impl KeyPolicy {
    pub fn of_organization(organization: &Organization) -> Self {
        Self {
            default_lifetime_days: organization.key_default_lifetime_days,
            max_lifetime_days: organization.key_max_lifetime_days,
            allow_never_expires: organization.key_allow_never_expires,
            default_grace_minutes: organization.key_default_grace_minutes,
        }
    }

    /// The platform default, for service-provider keys.
    pub fn platform_default() -> Self {
        Self {
            default_lifetime_days: 365,
            max_lifetime_days: None,
            allow_never_expires: false,
            default_grace_minutes: 240,
        }
    }

    /// The expiry date proposed for a new key.
    pub fn default_expiry_date(&self, today: NaiveDate) -> NaiveDate {
        today + Duration::days(i64::from(self.default_lifetime_days))
    }

    /// The latest expiry date allowed for a key set on `today`.
    pub fn latest_expiry_date(&self, today: NaiveDate) -> Option<NaiveDate> {
        self.max_lifetime_days.map(|days| today + Duration::days(i64::from(days)))
    }

    /// The latest expiry instant allowed now (used to clamp keys when they are re-keyed).
    pub fn latest_expiry(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.latest_expiry_date(now.date_naive()).map(end_of_day)
    }
}

/// Keys expire at the end of their expiry date (UTC).
pub fn end_of_day(date: NaiveDate) -> DateTime<Utc> {
    date.and_time(NaiveTime::from_hms_opt(23, 59, 59).expect("a valid time")).and_utc()
}

/// Whether `minutes` is one of [`GRACE_CHOICES`] or the organization's default.
pub fn is_offered_grace(minutes: i32, policy: &KeyPolicy) -> bool {
    minutes == policy.default_grace_minutes || GRACE_CHOICES.iter().any(|(m, _)| *m == minutes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_dates_follow_the_policy() {
        let policy = KeyPolicy {
            default_lifetime_days: 90,
            max_lifetime_days: Some(180),
            allow_never_expires: false,
            default_grace_minutes: 60,
        };
        let today = NaiveDate::from_ymd_opt(2026, 1, 1).unwrap();
        assert_eq!(policy.default_expiry_date(today), NaiveDate::from_ymd_opt(2026, 4, 1).unwrap());
        assert_eq!(policy.latest_expiry_date(today), NaiveDate::from_ymd_opt(2026, 6, 30));
        assert!(is_offered_grace(60, &policy) && is_offered_grace(10080, &policy) && !is_offered_grace(61, &policy));
    }
}
