//! `AppState`: what every handler can reach (shared by all workers of one instance).

use std::{sync::Arc, time::Duration};

use crate::{
    auth::password::PasswordHashers,
    clock::Clock,
    db::Database,
    keys::{KeyHasher, verifier::Verifier},
    metrics::Metrics,
    readiness::Readiness,
    services::{
        notifications::{smtp::Mailer, webhooks::WebhookSender},
        second_factor::SecondFactorKeys,
    },
};

/// Shared application state, registered as `web::Data<AppState>`.
#[derive(Debug, Clone)]
pub struct AppState {
    pub db: Database,
    /// The SMTP relay (`KEYWARD_SMTP_URL`); none: mail stays in the browser's outbox, and
    /// there are no forgotten-password mails.
    pub mailer: Option<Mailer>,
    /// Absolute session lifetime: a session older than this is signed out whatever happens.
    pub session_max: Duration,
    /// Hashes API keys with the pepper derived from the master secret.
    pub hasher: KeyHasher,
    /// The verification path: key cache, usage recorder, invalid-attempt throttle.
    pub verifier: Arc<Verifier>,
    /// The bounded pool every password hash and check of a request runs on.
    pub passwords: PasswordHashers,
    /// Whether the database is reachable and migrated yet (see `readiness`).
    pub readiness: Arc<Readiness>,
    /// Seals TOTP secrets and hashes recovery codes (keys derived from the master secret).
    pub second_factor: SecondFactorKeys,
    /// The time every expiry, timeout and "in 3 days" is measured against.
    pub clock: Clock,
    /// Per-token rate limit of the management API (counted in the database, for all instances).
    pub management_limits: Arc<crate::routes::api::management::limit::RateLimits>,
    /// Counters for operators (verification codes, sign-in steps, request durations).
    pub metrics: Arc<Metrics>,
    /// Signs and sends webhook deliveries (the seal key of their secrets, the address rule).
    pub webhooks: Arc<WebhookSender>,
}
