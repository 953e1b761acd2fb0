//! Throttling of invalid verification attempts per client address. Only failures count, so
//! valid keys never pay for it; a throttled address still gets answers for keys the cache
//! knows, but causes no more database work until its quota recovers.

use std::{
    collections::HashMap,
    net::IpAddr,
    num::NonZeroU32,
    sync::RwLock,
    time::{Duration, Instant},
};

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter, clock::Clock};

/// Requests whose address is unknown share one bucket rather than escaping the limit.
fn bucket(ip: Option<IpAddr>) -> IpAddr {
    ip.unwrap_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED))
}

/// The invalid-attempt limiter.
#[derive(Debug)]
pub struct Throttle {
    limiter: DefaultKeyedRateLimiter<IpAddr>,
    blocked: RwLock<HashMap<IpAddr, Instant>>,
}

impl Throttle {
    /// Allows `per_minute` invalid attempts per address per minute (and as a burst).
    pub fn new(per_minute: u32) -> Self {
        let n = NonZeroU32::new(per_minute.max(1)).expect("at least one");
        Self { limiter: RateLimiter::keyed(Quota::per_minute(n).allow_burst(n)), blocked: RwLock::default() }
    }

    pub fn is_blocked(&self, ip: Option<IpAddr>) -> bool {
        let ip = bucket(ip);
        let blocked = self.blocked.read().expect("the throttle lock is never poisoned");
        blocked.get(&ip).is_some_and(|until| *until > Instant::now())
    }

    /// Counts an invalid attempt from `ip`.
    pub fn failed(&self, ip: Option<IpAddr>) {
        let ip = bucket(ip);
        if let Err(not_until) = self.limiter.check_key(&ip) {
            let wait = not_until.wait_time_from(governor::clock::DefaultClock::default().now());
            let until = Instant::now() + wait.max(Duration::from_millis(100));
            self.blocked.write().expect("the throttle lock is never poisoned").insert(ip, until);
        }
    }

    /// Drops state of addresses that have been quiet (run periodically).
    pub fn tidy(&self) {
        self.limiter.retain_recent();
        let now = Instant::now();
        self.blocked.write().expect("the throttle lock is never poisoned").retain(|_, until| *until > now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_is_blocked_after_its_quota_of_failures() {
        let throttle = Throttle::new(3);
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let other: IpAddr = "192.0.2.2".parse().unwrap();
        for _ in 0..3 {
            throttle.failed(Some(ip));
            assert!(!throttle.is_blocked(Some(ip)));
        }
        throttle.failed(Some(ip));
        assert!(throttle.is_blocked(Some(ip)));
        assert!(!throttle.is_blocked(Some(other)));
        assert!(!throttle.is_blocked(None));
        for _ in 0..4 {
            throttle.failed(None);
        }
        assert!(throttle.is_blocked(None), "unknown addresses are limited together");
    }
}
