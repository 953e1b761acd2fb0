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

/// The longest a key may live when its policy sets no maximum, and the largest maximum a
/// policy may set: ten years. A far-off date ("9999-12-31") is "never" in disguise.
pub const HARD_MAX_LIFETIME_DAYS: i32 = 3650;

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

    /// The most days a key may live: the policy's maximum, and never beyond the hard ceiling.
    pub fn max_days(&self) -> i32 {
        self.max_lifetime_days.map_or(HARD_MAX_LIFETIME_DAYS, |days| days.min(HARD_MAX_LIFETIME_DAYS))
    }

    /// The latest expiry date allowed for a key set on `today`.
    pub fn latest_expiry_date(&self, today: NaiveDate) -> NaiveDate {
        today + Duration::days(i64::from(self.max_days()))
    }

    /// The latest expiry instant allowed now (used to clamp keys when they are re-keyed).
    pub fn latest_expiry(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        end_of_day(self.latest_expiry_date(now.date_naive()))
    }

    /// Refuses an expiry this policy does not allow at `now`: "never" unless the policy allows
    /// it, and any instant past the latest expiry. Every way of setting an expiry (pages,
    /// operator commands) passes here, in the key service.
    pub fn check_expiry(&self, expires_at: Option<DateTime<Utc>>, now: DateTime<Utc>) -> Result<(), String> {
        match expires_at {
            None if self.allow_never_expires => Ok(()),
            None => Err("Keys must expire: the key policy does not allow keys that never expire.".into()),
            Some(at) if at > self.latest_expiry(now) => Err(format!(
                "The key policy allows at most {} days: choose {} or earlier.",
                self.max_days(),
                self.latest_expiry_date(now.date_naive())
            )),
            Some(_) => Ok(()),
        }
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
        assert_eq!(policy.latest_expiry_date(today), NaiveDate::from_ymd_opt(2026, 6, 30).unwrap());
        let open = KeyPolicy { max_lifetime_days: None, allow_never_expires: true, ..policy };
        assert_eq!(open.latest_expiry_date(today), today + Duration::days(i64::from(HARD_MAX_LIFETIME_DAYS)));
        let now = end_of_day(today);
        assert!(open.check_expiry(None, now).is_ok(), "never, where allowed");
        assert!(policy.check_expiry(None, now).is_err());
        let far = end_of_day(NaiveDate::from_ymd_opt(9999, 12, 31).unwrap());
        assert!(open.check_expiry(Some(far), now).is_err(), "a far-off date is never in disguise");
        assert!(policy.check_expiry(Some(end_of_day(NaiveDate::from_ymd_opt(2026, 7, 1).unwrap())), now).is_err());
        assert!(policy.check_expiry(Some(end_of_day(NaiveDate::from_ymd_opt(2026, 6, 30).unwrap())), now).is_ok());
        assert!(is_offered_grace(60, &policy) && is_offered_grace(10080, &policy) && !is_offered_grace(61, &policy));
    }
}
