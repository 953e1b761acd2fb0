//! The verification path (SPEC §4): is this key valid for this action on this asset, from
//! this address, and whom are calls attributed to?
//!
//! Order of checks: format and checksum (no database work for malformed keys) → existence
//! (current secret, or the previous one during its grace period) → active → expiry → owner
//! state → IP ranges → action → asset. Known keys come from the in-memory cache (`cache`),
//! kept coherent across instances by `listener`; misses are loaded from the database
//! (`load`). No password hashing and no write per request: last use is recorded in memory
//! (`usage`), verifications are counted per key and hour in memory (`tally`), and both are
//! flushed in batches.

pub mod cache;
pub mod listener;
pub mod load;
pub mod tally;
pub mod throttle;
pub mod usage;

use std::{collections::BTreeSet, net::IpAddr, sync::Arc};

use chrono::{DateTime, Utc};
use ipnetwork::IpNetwork;
use serde::{Serialize, Serializer};

use crate::{
    clock::Clock,
    db::{Database, models::api_key::KeyOwner},
    error::AppError,
    keys::{KeyHasher, ParsedKey},
};

pub use cache::KeyCache;
pub use tally::UsageTally;
pub use throttle::Throttle;
pub use usage::UsageRecorder;

/// The codes of the API actions catalog (not retired), shared by every all-actions key.
pub type Catalog = Arc<BTreeSet<String>>;

/// "All" or a list (of action codes, of asset codes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Anything (assets are the API's own identifiers, not a closed list).
    All,
    /// Every entry of the API actions catalog, as it stands: shown as "all", but a code that
    /// is unknown or retired is still refused. One copy is shared by all keys (see
    /// `KeyCache::catalog`).
    Catalog(Catalog),
    Only(BTreeSet<String>),
}

impl Scope {
    pub fn allows(&self, item: &str) -> bool {
        match self {
            Scope::All => true,
            Scope::Catalog(items) => items.contains(item),
            Scope::Only(items) => items.contains(item),
        }
    }
}

impl Serialize for Scope {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Scope::All | Scope::Catalog(_) => serializer.serialize_str("all"),
            Scope::Only(items) => items.serialize(serializer),
        }
    }
}

/// Everything verification needs about one key, prepared once per cache fill.
#[derive(Debug, Clone)]
pub struct CachedKey {
    pub id: i64,
    pub public_id: String,
    pub name: String,
    pub environment: String,
    pub owner: KeyOwner,
    pub owner_id: String,
    pub organization_id: Option<i64>,
    pub organization_id_text: Option<String>,
    /// The owning user of a personal key (invalidated when that user changes).
    pub owner_user_id: Option<i64>,
    /// The proxy user (organization keys) or owner (personal keys).
    pub attribute_to_user_id: Option<String>,
    pub secret_hash: Vec<u8>,
    pub previous: Option<(Vec<u8>, DateTime<Utc>)>,
    pub rekeyed_at: Option<DateTime<Utc>>,
    pub active: bool,
    pub expires_at: Option<DateTime<Utc>>,
    pub expires_at_text: Option<String>,
    /// For personal keys: the owner is active and may own keys.
    pub owner_allowed: bool,
    pub cidrs: Vec<IpNetwork>,
    /// Effective actions (a personal key never does more than its owner may do now).
    pub actions: Scope,
    /// Effective asset codes (asset groups expanded to their members).
    pub assets: Scope,
    /// The key's fields of a verification answer, serialized once per cache fill (the
    /// answer for a cached key is then a few byte copies, not a serialization).
    pub answer_fields: String,
}

/// The answer codes of SPEC §4.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    Valid,
    NotFound,
    Expired,
    Disabled,
    ForbiddenAction,
    ForbiddenAsset,
    ForbiddenIp,
    RateLimited,
}

impl Code {
    /// Every code, in the order of [`Code::index`].
    pub const ALL: [Code; 8] = [
        Code::Valid,
        Code::NotFound,
        Code::Expired,
        Code::Disabled,
        Code::ForbiddenAction,
        Code::ForbiddenAsset,
        Code::ForbiddenIp,
        Code::RateLimited,
    ];

    /// The code's position in [`Code::ALL`] (usage counters are arrays indexed by it).
    pub fn index(self) -> usize {
        self as usize
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Code::Valid => "VALID",
            Code::NotFound => "NOT_FOUND",
            Code::Expired => "EXPIRED",
            Code::Disabled => "DISABLED",
            Code::ForbiddenAction => "FORBIDDEN_ACTION",
            Code::ForbiddenAsset => "FORBIDDEN_ASSET",
            Code::ForbiddenIp => "FORBIDDEN_IP",
            Code::RateLimited => "RATE_LIMITED",
        }
    }

    pub fn status(self) -> u16 {
        match self {
            Code::Valid => 200,
            Code::NotFound | Code::Expired | Code::Disabled => 401,
            Code::ForbiddenAction | Code::ForbiddenAsset | Code::ForbiddenIp => 403,
            Code::RateLimited => 429,
        }
    }

    pub fn message(self) -> Option<&'static str> {
        match self {
            Code::Valid => None,
            Code::NotFound => Some("The key is unknown, malformed or deleted."),
            Code::Expired => Some("The key has expired."),
            Code::Disabled => Some("The key is deactivated, or its owner may no longer use API keys."),
            Code::ForbiddenAction => Some("The key may not perform this action."),
            Code::ForbiddenAsset => Some("The key may not access this asset."),
            Code::ForbiddenIp => Some("The key may not be used from this address."),
            Code::RateLimited => Some("Too many invalid attempts from this address; try again later."),
        }
    }
}

/// A verification request.
#[derive(Debug, Clone, Copy)]
pub struct Attempt<'a> {
    pub key: &'a str,
    pub action: Option<&'a str>,
    pub asset: Option<&'a str>,
    pub client_ip: Option<IpAddr>,
}

/// A verification answer.
#[derive(Debug, Clone)]
pub struct Verdict {
    pub code: Code,
    /// The key, when the caller proved they hold it (any code but NOT_FOUND/RATE_LIMITED).
    pub key: Option<Arc<CachedKey>>,
    /// The previous secret was used during its grace period; it ends at this time.
    pub sunset: Option<DateTime<Utc>>,
}

impl Verdict {
    fn bare(code: Code) -> Self {
        Self { code, key: None, sunset: None }
    }
}

/// How long stale cache entries are answered without asking the database, after a reload
/// found it unavailable.
const UNAVAILABLE_BACKOFF: std::time::Duration = std::time::Duration::from_secs(1);

/// The verifier of one instance.
#[derive(Debug)]
pub struct Verifier {
    pub cache: KeyCache,
    /// Management tokens, kept coherent by the same listener as `cache` (see `keys::tokens`).
    pub tokens: crate::keys::tokens::TokenCache,
    pub usage: UsageRecorder,
    /// Management tokens' last use (written like keys', see `usage::write_tokens`).
    pub token_usage: UsageRecorder,
    /// Verifications per key and hour, by outcome, action and secret; recent addresses.
    pub tally: UsageTally,
    pub throttle: Throttle,
    hasher: KeyHasher,
    db: Database,
    /// Milliseconds since `started` until which the database counts as unavailable.
    unavailable_until_ms: std::sync::atomic::AtomicU64,
    started: std::time::Instant,
    /// The application's clock: expiry and grace periods are judged by it, as on the pages.
    clock: Clock,
}

impl Verifier {
    pub fn new(
        db: Database,
        hasher: KeyHasher,
        cache_enabled: bool,
        invalid_per_minute: u32,
        clock: Clock,
        usage_recording: bool,
    ) -> Self {
        Self {
            cache: KeyCache::new(cache_enabled),
            tokens: crate::keys::tokens::TokenCache::default(),
            usage: UsageRecorder::default(),
            token_usage: UsageRecorder::default(),
            tally: UsageTally::new(usage_recording),
            throttle: Throttle::new(invalid_per_minute),
            hasher,
            db,
            unavailable_until_ms: std::sync::atomic::AtomicU64::new(0),
            started: std::time::Instant::now(),
            clock,
        }
    }

    /// Decides `attempt`. Fails only with `Unavailable`, when the answer depends on a
    /// database that cannot be reached (fail closed: never a guess).
    pub async fn verify(&self, attempt: Attempt<'_>) -> Result<Verdict, AppError> {
        let Some(parsed) = ParsedKey::parse(attempt.key) else {
            self.throttle.failed(attempt.client_ip);
            return Ok(Verdict::bare(Code::NotFound));
        };
        let cached = self.cache.get(parsed.public_id);
        let key = match cached {
            cache::Lookup::Found(key) => Some(key),
            _ if self.throttle.is_blocked(attempt.client_ip) => return Ok(Verdict::bare(Code::RateLimited)),
            cache::Lookup::Missing => None,
            cache::Lookup::Unknown => self.load(parsed.public_id).await?,
            // The cache cannot vouch for it right now: ask the database, and fall back to
            // what we knew only if the database cannot answer either.
            // Right after a failed reload the database is not asked again for a moment, so
            // an outage does not make every known key wait for the pool's timeouts.
            cache::Lookup::Stale(known) if self.database_recently_unavailable() => Some(known),
            cache::Lookup::Stale(known) => match self.load(parsed.public_id).await {
                Ok(fresh) => fresh,
                Err(AppError::Unavailable) => {
                    self.note_database_unavailable();
                    Some(known)
                }
                Err(e) => return Err(e),
            },
        };
        let Some(key) = key else {
            self.throttle.failed(attempt.client_ip);
            return Ok(Verdict::bare(Code::NotFound));
        };
        let now = self.clock.now();
        let current = self.hasher.matches(parsed.full, &key.secret_hash);
        let previous = !current
            && key
                .previous
                .as_ref()
                .is_some_and(|(hash, until)| *until > now && self.hasher.matches(parsed.full, hash));
        if !current && !previous {
            self.throttle.failed(attempt.client_ip);
            // Someone named this key without its secret: worth counting for the key, but
            // their address is not one of its clients.
            self.count(&key, now, Code::NotFound, attempt.action, false, None);
            return Ok(Verdict::bare(Code::NotFound));
        }
        let sunset = if previous { key.previous.as_ref().map(|(_, until)| *until) } else { None };
        let code = decide(&key, &attempt, now);
        self.count(&key, now, code, attempt.action, previous, attempt.client_ip);
        if key.active && key.expires_at.is_none_or(|at| at > now) {
            self.usage.record(key.id, now, attempt.client_ip, previous);
        }
        Ok(Verdict { code, key: Some(key), sunset })
    }

    /// Counts a verification of `key` (see `tally`). Actions are named only when they are
    /// the key's or the catalog's, both closed lists: arbitrary strings sent by callers
    /// count as "(other)".
    fn count(
        &self,
        key: &CachedKey,
        at: DateTime<Utc>,
        code: Code,
        action: Option<&str>,
        previous: bool,
        address: Option<IpAddr>,
    ) {
        if !self.tally.enabled() {
            return;
        }
        let action = tally::action_label(action, |a| match &key.actions {
            Scope::Only(items) if items.contains(a) => true,
            Scope::Catalog(items) if items.contains(a) => true,
            _ => self.cache.catalog().is_some_and(|catalog| catalog.contains(a)),
        });
        self.tally.record(tally::Use { key_id: key.id, at, code, action, previous, address });
    }

    fn database_recently_unavailable(&self) -> bool {
        (self.started.elapsed().as_millis() as u64)
            < self.unavailable_until_ms.load(std::sync::atomic::Ordering::Acquire)
    }

    fn note_database_unavailable(&self) {
        let until = self.started.elapsed() + UNAVAILABLE_BACKOFF;
        self.unavailable_until_ms.store(until.as_millis() as u64, std::sync::atomic::Ordering::Release);
    }

    async fn load(&self, public_id: &str) -> Result<Option<Arc<CachedKey>>, AppError> {
        let generation = self.cache.generation();
        let (id, known_catalog) = (public_id.to_string(), self.cache.catalog());
        // Without a cache the catalog would be read on every load: refused actions then
        // count as "(other)" rather than cost the uncached path a query.
        let want_catalog = self.tally.enabled() && self.cache.enabled();
        let (loaded, catalog) =
            self.db.run(move |conn| Ok(load::load(conn, &id, known_catalog, want_catalog)?)).await?;
        let loaded = loaded.map(Arc::new);
        if let Some(catalog) = catalog {
            self.cache.set_catalog(catalog, generation);
        }
        self.cache.insert(public_id, loaded.clone(), generation);
        Ok(loaded)
    }

    /// Writes pending last-use records (at most one write per key per minute) and every
    /// usage count; gives the number of last-use records written.
    pub async fn flush_usage(&self) -> Result<usize, AppError> {
        // Each kept for the next flush if its write fails; one failing does not hold up the other.
        let counts = self.flush_tally().await;
        let tokens = self.flush_token_usage(self.token_usage.take_due()).await;
        let counts = counts.and(tokens);
        let batch = self.usage.take_due();
        if batch.is_empty() {
            return counts.map(|_| 0);
        }
        let count = batch.len();
        let retry = batch.clone();
        match self.db.run(move |conn| Ok(usage::write(conn, &batch)?)).await {
            Ok(()) => counts.map(|_| count),
            Err(e) => {
                self.usage.restore(retry);
                Err(e)
            }
        }
    }

    /// Writes management tokens' last use (`batch`); a failed write is kept for the next flush.
    pub async fn flush_token_usage(&self, batch: Vec<usage::Usage>) -> Result<usize, AppError> {
        if batch.is_empty() {
            return Ok(0);
        }
        let (count, retry) = (batch.len(), batch.clone());
        match self.db.run(move |conn| Ok(usage::write_tokens(conn, &batch)?)).await {
            Ok(()) => Ok(count),
            Err(e) => {
                self.token_usage.restore(retry);
                Err(e)
            }
        }
    }

    /// Writes every usage count held (one batch); gives the number of keys written.
    pub async fn flush_tally(&self) -> Result<usize, AppError> {
        let batch = self.tally.take();
        if batch.is_empty() {
            return Ok(0);
        }
        let keys = batch.keys();
        let retry = batch.clone();
        match self.db.run(move |conn| Ok(tally::write(conn, &batch)?)).await {
            Ok(()) => Ok(keys),
            Err(e) => {
                // Kept for the next flush: the write is one transaction, so a failed one added nothing.
                self.tally.restore(retry);
                Err(e)
            }
        }
    }
}

/// The checks after the secret matched, in the order of SPEC §4.
fn decide(key: &CachedKey, attempt: &Attempt<'_>, now: DateTime<Utc>) -> Code {
    if !key.active {
        return Code::Disabled;
    }
    if key.expires_at.is_some_and(|at| at <= now) {
        return Code::Expired;
    }
    if !key.owner_allowed {
        return Code::Disabled;
    }
    if !key.cidrs.is_empty() {
        let allowed = attempt.client_ip.is_some_and(|ip| key.cidrs.iter().any(|net| net.contains(ip)));
        if !allowed {
            return Code::ForbiddenIp;
        }
    }
    if let Some(action) = attempt.action
        && !key.actions.allows(action)
    {
        return Code::ForbiddenAction;
    }
    if let Some(asset) = attempt.asset
        && !key.assets.allows(asset)
    {
        return Code::ForbiddenAsset;
    }
    Code::Valid
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> CachedKey {
        CachedKey {
            id: 1,
            public_id: "AAAAAAAA".into(),
            name: "k".into(),
            environment: "live".into(),
            owner: KeyOwner::Organization(1),
            owner_id: "1".into(),
            organization_id: Some(1),
            organization_id_text: Some("1".into()),
            owner_user_id: None,
            attribute_to_user_id: Some("2".into()),
            secret_hash: vec![],
            previous: None,
            rekeyed_at: None,
            active: true,
            expires_at: None,
            expires_at_text: None,
            owner_allowed: true,
            cidrs: vec!["10.0.0.0/8".parse().unwrap()],
            actions: Scope::Only(["positions.read".to_string()].into()),
            assets: Scope::Only(["TRK-1".to_string()].into()),
            answer_fields: String::new(),
        }
    }

    fn attempt<'a>(ip: &str, action: Option<&'a str>, asset: Option<&'a str>) -> Attempt<'a> {
        Attempt { key: "", action, asset, client_ip: Some(ip.parse().unwrap()) }
    }

    #[test]
    fn checks_run_in_the_documented_order() {
        let now = Utc::now();
        let mut k = key();
        assert_eq!(decide(&k, &attempt("10.1.1.1", Some("positions.read"), Some("TRK-1")), now), Code::Valid);
        assert_eq!(decide(&k, &attempt("10.1.1.1", Some("vehicles.write"), Some("TRK-1")), now), Code::ForbiddenAction);
        assert_eq!(decide(&k, &attempt("10.1.1.1", Some("positions.read"), Some("TRK-2")), now), Code::ForbiddenAsset);
        assert_eq!(decide(&k, &attempt("192.0.2.1", Some("vehicles.write"), None), now), Code::ForbiddenIp);
        k.owner_allowed = false;
        assert_eq!(decide(&k, &attempt("192.0.2.1", None, None), now), Code::Disabled);
        k.expires_at = Some(now - chrono::Duration::seconds(1));
        assert_eq!(decide(&k, &attempt("192.0.2.1", None, None), now), Code::Expired);
        k.active = false;
        assert_eq!(decide(&k, &attempt("192.0.2.1", None, None), now), Code::Disabled);
    }

    #[test]
    fn codes_map_to_the_documented_statuses() {
        assert_eq!(Code::Valid.status(), 200);
        for code in [Code::NotFound, Code::Expired, Code::Disabled] {
            assert_eq!(code.status(), 401);
        }
        for code in [Code::ForbiddenAction, Code::ForbiddenAsset, Code::ForbiddenIp] {
            assert_eq!(code.status(), 403);
        }
        assert_eq!(Code::RateLimited.status(), 429);
    }

    #[test]
    fn scopes_serialize_as_all_or_a_list() {
        assert_eq!(serde_json::to_string(&Scope::All).unwrap(), "\"all\"");
        let catalog = Scope::Catalog(Arc::new(["a".to_string()].into()));
        assert_eq!(serde_json::to_string(&catalog).unwrap(), "\"all\"");
        assert!(catalog.allows("a") && !catalog.allows("retired.action"));
        let only = Scope::Only(["b".to_string(), "a".to_string()].into());
        assert_eq!(serde_json::to_string(&only).unwrap(), "[\"a\",\"b\"]");
    }
}
