//! Per-token rate limits of the management API, announced with the IETF `RateLimit-Policy`
//! and `RateLimit` header fields (draft-ietf-httpapi-ratelimit-headers) on every answer to an
//! authenticated request, and `Retry-After` on 429.

use std::{num::NonZeroU32, time::Duration};

use actix_web::{
    HttpMessage,
    body::MessageBody,
    dev::{ServiceRequest, ServiceResponse},
    http::header::{HeaderName, HeaderValue},
    middleware::Next,
};
use governor::{
    Quota, RateLimiter, clock::Clock, middleware::StateInformationMiddleware, state::keyed::DefaultKeyedStateStore,
};

/// Requests per token per minute (also the burst).
pub const PER_MINUTE: u32 = 600;

type Limiter = RateLimiter<i64, DefaultKeyedStateStore<i64>, governor::clock::DefaultClock, StateInformationMiddleware>;

/// The limiter of one instance (each instance limits on its own).
#[derive(Debug)]
pub struct RateLimits {
    limiter: Limiter,
    per_minute: u32,
}

/// Where a token stands after a request, for the response's header fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Standing {
    pub limit: u32,
    pub remaining: u32,
    /// Seconds until the quota is whole again.
    pub reset_secs: u64,
}

impl Default for RateLimits {
    fn default() -> Self {
        Self::new(PER_MINUTE)
    }
}

impl RateLimits {
    pub fn new(per_minute: u32) -> Self {
        let n = NonZeroU32::new(per_minute.max(1)).expect("at least one");
        Self {
            limiter: RateLimiter::keyed(Quota::per_minute(n).allow_burst(n))
                .with_middleware::<StateInformationMiddleware>(),
            per_minute: n.get(),
        }
    }

    fn refill(&self) -> Duration {
        Duration::from_secs(60) / self.per_minute
    }

    /// Counts a request of token `token_id`: its standing, or `Err` with the seconds to wait.
    pub fn check(&self, token_id: i64) -> Result<Standing, u64> {
        match self.limiter.check_key(&token_id) {
            Ok(snapshot) => {
                let remaining = snapshot.remaining_burst_capacity();
                let missing = self.per_minute.saturating_sub(remaining);
                let reset_secs = (self.refill() * missing).as_secs_f64().ceil() as u64;
                Ok(Standing { limit: self.per_minute, remaining, reset_secs })
            }
            Err(not_until) => {
                let wait = not_until.wait_time_from(governor::clock::DefaultClock::default().now());
                Err(wait.as_secs_f64().ceil().max(1.0) as u64)
            }
        }
    }

    /// Requests per minute of each token.
    pub fn limit(&self) -> u32 {
        self.per_minute
    }

    /// Drops the state of quiet tokens.
    pub fn tidy(&self) {
        self.limiter.retain_recent();
    }
}

impl Standing {
    /// `RateLimit-Policy` and `RateLimit` as the draft structures them.
    pub fn header_values(&self) -> [(&'static str, String); 2] {
        [
            ("ratelimit-policy", format!("\"per-token\";q={};w=60", self.limit)),
            ("ratelimit", format!("\"per-token\";r={};t={}", self.remaining, self.reset_secs)),
        ]
    }
}

/// Middleware of the API scope: adds the header fields of the standing the authentication
/// of the request left in its extensions (answers to unauthenticated requests carry none).
pub async fn announce(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let mut response = next.call(req).await?;
    let standing = response.request().extensions().get::<Standing>().copied();
    if let Some(standing) = standing {
        for (name, value) in standing.header_values() {
            if let Ok(value) = HeaderValue::from_str(&value) {
                response.headers_mut().insert(HeaderName::from_static(name), value);
            }
        }
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_limited_on_its_own_and_told_how_long_to_wait() {
        let limits = RateLimits::new(2);
        let first = limits.check(1).unwrap();
        assert_eq!((first.limit, first.remaining), (2, 1));
        assert_eq!(limits.check(1).unwrap().remaining, 0);
        let wait = limits.check(1).unwrap_err();
        assert!((1..=30).contains(&wait), "{wait}");
        assert!(limits.check(2).is_ok(), "another token has its own quota");
        let [(policy_name, policy), (name, value)] = first.header_values();
        assert_eq!((policy_name, policy.as_str()), ("ratelimit-policy", "\"per-token\";q=2;w=60"));
        assert_eq!(name, "ratelimit");
        assert!(value.starts_with("\"per-token\";r=1;t="), "{value}");
    }
}
