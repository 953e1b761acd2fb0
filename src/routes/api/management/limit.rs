//! Per-token rate limits of the management API, shared by every instance through the
//! database (`services::management_rate`), announced with the IETF `RateLimit-Policy` and
//! `RateLimit` header fields (draft-ietf-httpapi-ratelimit-headers) on every answer to an
//! authenticated request, and `Retry-After` on 429.

use actix_web::{
    HttpMessage,
    body::MessageBody,
    dev::{ServiceRequest, ServiceResponse},
    http::header::{HeaderName, HeaderValue},
    middleware::Next,
};
use chrono::{DateTime, Utc};
use std::{collections::HashMap, sync::Mutex};

use crate::{db::Database, error::AppError, services::management_rate};

/// The configured limit (`KEYWARD_MANAGEMENT_RATE_PER_MINUTE`); the counts are in the
/// database, shared by every instance.
#[derive(Debug)]
pub struct RateLimits {
    per_minute: u32,
    /// Tokens this instance found over their limit, until their window ends: their further
    /// requests are refused without a write, so a flood costs the database nothing more.
    over: Mutex<HashMap<i64, DateTime<Utc>>>,
}

/// Where a token stands after a request, for the response's header fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Standing {
    pub limit: u32,
    pub remaining: u32,
    /// Seconds until the quota is whole again (the current window ends).
    pub reset_secs: u64,
    /// The request is over the limit (answered 429).
    pub exceeded: bool,
}

impl RateLimits {
    pub fn new(per_minute: u32) -> Self {
        Self { per_minute: per_minute.max(1), over: Mutex::default() }
    }

    /// Counts a request of token `token_id` at `now` (one upsert), and says where it stands.
    /// Without the database the request fails like any other that needs it (503).
    pub async fn check(&self, db: &Database, token_id: i64, now: DateTime<Utc>) -> Result<Standing, AppError> {
        if let Some(window_end) = self.over_until(token_id, now) {
            let requests = self.per_minute.saturating_add(1);
            return Ok(self.standing(management_rate::Counted { requests, window_end }, now));
        }
        let counted = db.run(move |conn| Ok(management_rate::count(conn, token_id, now)?)).await?;
        let standing = self.standing(counted, now);
        if standing.exceeded {
            let mut over = self.over.lock().expect("the rate limit lock is never poisoned");
            over.retain(|_, until| *until > now);
            over.insert(token_id, counted.window_end);
        }
        Ok(standing)
    }

    /// The end of the window `token_id` is known to be over its limit in, if it is.
    fn over_until(&self, token_id: i64, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let over = self.over.lock().expect("the rate limit lock is never poisoned");
        over.get(&token_id).copied().filter(|until| *until > now)
    }

    fn standing(&self, counted: management_rate::Counted, now: DateTime<Utc>) -> Standing {
        let left_ms = (counted.window_end - now).num_milliseconds().max(0);
        Standing {
            limit: self.per_minute,
            remaining: self.per_minute.saturating_sub(counted.requests),
            reset_secs: u64::try_from(left_ms).unwrap_or(0).div_ceil(1000).max(1),
            exceeded: counted.requests > self.per_minute,
        }
    }

    /// Requests per minute of each token.
    pub fn limit(&self) -> u32 {
        self.per_minute
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
    use crate::services::management_rate::{Counted, WINDOW, window_start};

    #[test]
    fn a_token_is_told_what_is_left_of_its_window_and_when_it_ends() {
        let limits = RateLimits::new(2);
        let now = DateTime::parse_from_rfc3339("2026-12-04T10:11:40.500Z").unwrap().to_utc();
        let window_end = window_start(now) + WINDOW;
        let first = limits.standing(Counted { requests: 1, window_end }, now);
        assert_eq!(first, Standing { limit: 2, remaining: 1, reset_secs: 20, exceeded: false });
        let last = limits.standing(Counted { requests: 2, window_end }, now);
        assert_eq!((last.remaining, last.exceeded), (0, false));
        let over = limits.standing(Counted { requests: 3, window_end }, now);
        assert_eq!((over.remaining, over.reset_secs, over.exceeded), (0, 20, true));
        let [(policy_name, policy), (name, value)] = first.header_values();
        assert_eq!((policy_name, policy.as_str()), ("ratelimit-policy", "\"per-token\";q=2;w=60"));
        assert_eq!((name, value.as_str()), ("ratelimit", "\"per-token\";r=1;t=20"));
    }
}
