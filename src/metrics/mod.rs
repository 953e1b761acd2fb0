//! Metrics for operators: what Keyward counts while it serves (verification answers, sign-in
//! steps, request durations by route) and their Prometheus text exposition, read at
//! `GET /metrics` with the bearer token `KEYWARD_METRICS_TOKEN` (see `routes::metrics`).
//!
//! The verification path must stay fast, so everything counted on a request is a relaxed
//! atomic addition on a series created in advance: one counter per answer code and per
//! sign-in step, and request histograms found without a lock (see `http`). Values that are
//! kept anyway (the key cache's size and hit counts, the listener's connection, the pool's
//! state) are read only when scraped, by [`Exposition`].

pub mod http;

use std::{
    fmt,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
};

use prometheus_client::{
    collector::Collector,
    encoding::{DescriptorEncoder, EncodeMetric},
    metrics::{MetricType, counter::Counter},
    registry::Registry,
};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::{
    db::Database,
    keys::verifier::{Code, Verifier},
};

/// The `code` label values of `keyward_verifications_total`: the answer codes of the
/// verification API, then its two failures (503 when the database cannot answer, 500).
const VERIFICATION_CODES: [&str; 10] = [
    "VALID",
    "NOT_FOUND",
    "EXPIRED",
    "DISABLED",
    "FORBIDDEN_ACTION",
    "FORBIDDEN_ASSET",
    "FORBIDDEN_IP",
    "RATE_LIMITED",
    "UNAVAILABLE",
    "ERROR",
];

/// How a verification request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verification {
    /// An answer with this code.
    Answered(Code),
    /// No answer: the database could not be reached (503, fail closed).
    Unavailable,
    /// No answer: an unexpected error (500).
    Error,
}

impl Verification {
    /// Its place in [`VERIFICATION_CODES`]. The match is exhaustive, so a new answer code
    /// cannot be forgotten here.
    fn index(self) -> usize {
        match self {
            Verification::Answered(code) => match code {
                Code::Valid => 0,
                Code::NotFound => 1,
                Code::Expired => 2,
                Code::Disabled => 3,
                Code::ForbiddenAction => 4,
                Code::ForbiddenAsset => 5,
                Code::ForbiddenIp => 6,
                Code::RateLimited => 7,
            },
            Verification::Unavailable => 8,
            Verification::Error => 9,
        }
    }
}

/// One step of signing in and how it ended (`keyward_sign_ins_total{step, outcome}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignIn {
    /// The password alone signed the account in.
    PasswordSuccess,
    /// Wrong password, unknown or inactive account.
    PasswordFailure,
    /// Too many failures: refused without looking at the password's result.
    PasswordThrottled,
    /// A correct password; the account's second factor is asked next.
    SecondFactorRequired,
    /// A correct password; the policy requires a second factor the account must set up first.
    EnrolmentRequired,
    /// A correct one-time or recovery code signed the account in.
    SecondFactorSuccess,
    /// A wrong code, or the account went away meanwhile.
    SecondFactorFailure,
    SecondFactorThrottled,
    /// An authenticator set up during sign-in signed the account in.
    EnrolmentSuccess,
    /// A wrong code while setting up an authenticator during sign-in.
    EnrolmentFailure,
}

impl SignIn {
    const ALL: [SignIn; 10] = [
        SignIn::PasswordSuccess,
        SignIn::PasswordFailure,
        SignIn::PasswordThrottled,
        SignIn::SecondFactorRequired,
        SignIn::EnrolmentRequired,
        SignIn::SecondFactorSuccess,
        SignIn::SecondFactorFailure,
        SignIn::SecondFactorThrottled,
        SignIn::EnrolmentSuccess,
        SignIn::EnrolmentFailure,
    ];

    /// The `step` and `outcome` labels.
    fn labels(self) -> [(&'static str, &'static str); 2] {
        let (step, outcome) = match self {
            SignIn::PasswordSuccess => ("password", "success"),
            SignIn::PasswordFailure => ("password", "failure"),
            SignIn::PasswordThrottled => ("password", "throttled"),
            SignIn::SecondFactorRequired => ("password", "second_factor_required"),
            SignIn::EnrolmentRequired => ("password", "enrolment_required"),
            SignIn::SecondFactorSuccess => ("second_factor", "success"),
            SignIn::SecondFactorFailure => ("second_factor", "failure"),
            SignIn::SecondFactorThrottled => ("second_factor", "throttled"),
            SignIn::EnrolmentSuccess => ("enrolment", "success"),
            SignIn::EnrolmentFailure => ("enrolment", "failure"),
        };
        [("step", step), ("outcome", outcome)]
    }
}

/// The counters of one instance, shared by its workers (`AppState::metrics`).
#[derive(Debug, Default)]
pub struct Metrics {
    /// One per entry of [`VERIFICATION_CODES`].
    verifications: [Counter; VERIFICATION_CODES.len()],
    /// One per entry of [`SignIn::ALL`], in that order.
    sign_ins: [Counter; SignIn::ALL.len()],
    /// Request durations by method and route pattern.
    pub http: http::RouteHistograms,
}

impl Metrics {
    /// Counts a verification request's ending.
    #[inline]
    pub fn verification(&self, outcome: Verification) {
        self.verifications[outcome.index()].inc();
    }

    /// Counts a sign-in step's ending.
    pub fn sign_in(&self, step: SignIn) {
        // `ALL` lists the steps in declaration order (checked by a test).
        self.sign_ins[step as usize].inc();
    }
}

/// `KEYWARD_METRICS_TOKEN`, kept only as its SHA-256 digest: comparing digests in constant
/// time reveals neither the token nor its length, and `Debug` has nothing to print.
#[derive(Clone)]
pub struct MetricsToken([u8; 32]);

impl MetricsToken {
    pub fn new(token: &str) -> Self {
        Self(Sha256::digest(token.as_bytes()).into())
    }

    /// Whether `presented` is the token (constant time).
    pub fn matches(&self, presented: &str) -> bool {
        let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        self.0.ct_eq(&digest).into()
    }
}

impl fmt::Debug for MetricsToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MetricsToken(…)")
    }
}

/// The `/metrics` endpoint's state: the token it asks for and the registry it encodes.
#[derive(Debug)]
pub struct Exposition {
    pub token: MetricsToken,
    registry: Registry,
}

impl Exposition {
    /// The exposition of one instance's metrics and the state of its cache, listener and pool.
    pub fn new(
        token: MetricsToken,
        metrics: Arc<Metrics>,
        verifier: Arc<Verifier>,
        listener_connected: Arc<AtomicBool>,
        db: Database,
    ) -> Self {
        let mut registry = Registry::default();
        registry.register_collector(Box::new(Instance { metrics, verifier, listener_connected, db }));
        Self { token, registry }
    }

    /// Everything, in the Prometheus text format (version 0.0.4).
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(16 * 1024);
        prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }
}

/// The `Content-Type` of [`Exposition::render`].
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// Reads everything of one instance at scrape time.
#[derive(Debug)]
struct Instance {
    metrics: Arc<Metrics>,
    verifier: Arc<Verifier>,
    listener_connected: Arc<AtomicBool>,
    db: Database,
}

impl Instance {
    fn gauge(encoder: &mut DescriptorEncoder, name: &str, help: &str, value: i64) -> fmt::Result {
        encoder.encode_descriptor(name, help, None, MetricType::Gauge)?.encode_gauge(&value)
    }

    fn counter(encoder: &mut DescriptorEncoder, name: &str, help: &str, value: u64) -> fmt::Result {
        encoder
            .encode_descriptor(name, help, None, MetricType::Counter)?
            .encode_counter::<prometheus_client::encoding::NoLabelSet, u64, u64>(&value, None)
    }
}

impl Collector for Instance {
    fn encode(&self, mut encoder: DescriptorEncoder) -> fmt::Result {
        let metrics = &self.metrics;
        let mut family = encoder.encode_descriptor(
            "keyward_verifications",
            "Verification requests (verify and me) by answer code; UNAVAILABLE is a 503, ERROR a 500.",
            None,
            MetricType::Counter,
        )?;
        for (code, counter) in VERIFICATION_CODES.iter().zip(&metrics.verifications) {
            counter.encode(family.encode_family(&[("code", *code)])?)?;
        }

        let mut family = encoder.encode_descriptor(
            "keyward_sign_ins",
            "Sign-in steps by outcome: the password, the second factor, or an authenticator set up at sign-in.",
            None,
            MetricType::Counter,
        )?;
        for (step, counter) in SignIn::ALL.iter().zip(&metrics.sign_ins) {
            counter.encode(family.encode_family(&step.labels())?)?;
        }

        let cache = &self.verifier.cache;
        let (hits, misses) = cache.lookups();
        Self::counter(
            &mut encoder,
            "keyward_key_cache_hits",
            "Key lookups of the verifier answered from memory (including remembered unknown keys).",
            hits,
        )?;
        Self::counter(
            &mut encoder,
            "keyward_key_cache_misses",
            "Key lookups of the verifier that went to the database.",
            misses,
        )?;
        Self::gauge(
            &mut encoder,
            "keyward_key_cache_entries",
            "Keys (and recently unknown ids) held in the verifier's cache.",
            cache.len() as i64,
        )?;
        Self::gauge(
            &mut encoder,
            "keyward_key_listener_connected",
            "1 while the LISTEN connection that keeps the key cache coherent is up, else 0.",
            i64::from(self.listener_connected.load(Ordering::Acquire)),
        )?;

        let pool = self.db.pool_state();
        Self::gauge(
            &mut encoder,
            "keyward_db_pool_connections_max",
            "Most connections the pool opens.",
            i64::from(pool.max),
        )?;
        Self::gauge(
            &mut encoder,
            "keyward_db_pool_connections_open",
            "Connections the pool holds open.",
            i64::from(pool.open),
        )?;
        Self::gauge(
            &mut encoder,
            "keyward_db_pool_connections_in_use",
            "Pooled connections checked out by requests and jobs.",
            i64::from(pool.open - pool.idle),
        )?;
        Self::gauge(
            &mut encoder,
            "keyward_db_pool_waiting",
            "Requests and jobs waiting now for a pooled connection.",
            pool.waiting as i64,
        )?;

        metrics.http.encode(&mut encoder)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_answer_code_has_its_own_label() {
        for code in Code::ALL {
            assert_eq!(VERIFICATION_CODES[Verification::Answered(code).index()], code.as_str());
        }
        assert_eq!(VERIFICATION_CODES[Verification::Unavailable.index()], "UNAVAILABLE");
        assert_eq!(VERIFICATION_CODES[Verification::Error.index()], "ERROR");
    }

    #[test]
    fn sign_in_steps_have_distinct_labels() {
        let labels: std::collections::HashSet<_> = SignIn::ALL.iter().map(|s| s.labels()).collect();
        assert_eq!(labels.len(), SignIn::ALL.len());
        for (index, step) in SignIn::ALL.iter().enumerate() {
            assert_eq!(*step as usize, index, "{step:?} is listed in declaration order");
        }
    }

    #[test]
    fn the_token_matches_only_itself_and_is_never_printed() {
        let token = MetricsToken::new("s3cret-token");
        assert!(token.matches("s3cret-token"));
        assert!(!token.matches("s3cret-toke") && !token.matches("") && !token.matches("s3cret-token "));
        assert!(!format!("{token:?}").contains("s3cret"));
    }
}
