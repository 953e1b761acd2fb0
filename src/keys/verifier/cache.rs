//! The in-memory key cache of one instance: public id → what verification needs, kept
//! coherent by invalidations from PostgreSQL `LISTEN/NOTIFY` (see `listener`).
//!
//! A generation counter guards against a race: a lookup that loaded a key from the database
//! while an invalidation arrived must not put its (possibly stale) result in the cache.

use std::{
    collections::HashMap,
    sync::{
        Arc, RwLock,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use super::CachedKey;

/// How long "no such key" is remembered. Creating a key invalidates it at once anyway.
pub const NEGATIVE_TTL: Duration = Duration::from_secs(5);
/// How long cached keys stay trusted while the listener is disconnected. During a database
/// outage nobody can change keys, so known keys keep working; but a partition that cuts only
/// this instance off must not keep a revoked key alive for long.
pub const DISCONNECTED_TRUST: Duration = Duration::from_secs(300);
/// Beyond this many entries the cache starts over (a bound on memory, not an expected case).
const MAX_ENTRIES: usize = 200_000;

#[derive(Debug, Clone)]
enum Entry {
    Found(Arc<CachedKey>),
    Missing { until: Instant },
}

/// What the cache knows about a public id.
#[derive(Debug, Clone)]
pub enum Lookup {
    Found(Arc<CachedKey>),
    Missing,
    Unknown,
}

/// The cache.
#[derive(Debug, Default)]
pub struct KeyCache {
    entries: RwLock<HashMap<String, Entry>>,
    generation: AtomicU64,
    enabled: bool,
    /// Set while the listener is disconnected: entries are not trusted after this moment.
    trusted_until: RwLock<Option<Instant>>,
}

impl KeyCache {
    pub fn new(enabled: bool) -> Self {
        Self { entries: RwLock::default(), generation: AtomicU64::new(0), enabled, trusted_until: RwLock::default() }
    }

    pub fn get(&self, public_id: &str) -> Lookup {
        if !self.enabled {
            return Lookup::Unknown;
        }
        if let Some(until) = *self.trusted_until.read().expect("the key cache lock is never poisoned")
            && Instant::now() > until
        {
            return Lookup::Unknown;
        }
        let entries = self.entries.read().expect("the key cache lock is never poisoned");
        match entries.get(public_id) {
            Some(Entry::Found(key)) => Lookup::Found(Arc::clone(key)),
            Some(Entry::Missing { until }) if *until > Instant::now() => Lookup::Missing,
            _ => Lookup::Unknown,
        }
    }

    /// The generation to pass to [`KeyCache::insert`] after a database load.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Remembers a load result, unless anything was invalidated since `generation`.
    pub fn insert(&self, public_id: &str, key: Option<Arc<CachedKey>>, generation: u64) {
        if !self.enabled {
            return;
        }
        let mut entries = self.entries.write().expect("the key cache lock is never poisoned");
        if self.generation.load(Ordering::Acquire) != generation {
            return;
        }
        if entries.len() >= MAX_ENTRIES {
            entries.clear();
        }
        let entry = match key {
            Some(key) => Entry::Found(key),
            None => Entry::Missing { until: Instant::now() + NEGATIVE_TTL },
        };
        entries.insert(public_id.to_string(), entry);
    }

    /// Applies one notification payload: `key:<public id>`, `user:<id>`, `org:<id>` or `all`.
    pub fn invalidate(&self, payload: &str) {
        let mut entries = self.entries.write().expect("the key cache lock is never poisoned");
        self.generation.fetch_add(1, Ordering::AcqRel);
        match payload.split_once(':') {
            Some(("key", public_id)) => {
                entries.remove(public_id);
            }
            Some(("user", id)) => match id.parse::<i64>() {
                Ok(id) => entries.retain(|_, e| !matches!(e, Entry::Found(k) if k.owner_user_id == Some(id))),
                Err(_) => entries.clear(),
            },
            Some(("org", id)) => match id.parse::<i64>() {
                Ok(id) => entries.retain(|_, e| !matches!(e, Entry::Found(k) if k.organization_id == Some(id))),
                Err(_) => entries.clear(),
            },
            _ => entries.clear(),
        }
        // Negative entries are cheap to rebuild; drop them all so a new key is never refused.
        entries.retain(|_, e| matches!(e, Entry::Found(_)));
    }

    /// The listener lost its connection: keep serving known keys for [`DISCONNECTED_TRUST`].
    pub fn disconnected(&self) {
        let mut until = self.trusted_until.write().expect("the key cache lock is never poisoned");
        until.get_or_insert(Instant::now() + DISCONNECTED_TRUST);
    }

    /// The listener is connected again: forget everything (notifications sent meanwhile were
    /// missed) and trust what is loaded from now on.
    pub fn resynchronize(&self) {
        self.clear();
        *self.trusted_until.write().expect("the key cache lock is never poisoned") = None;
    }

    /// Forgets everything.
    pub fn clear(&self) {
        let mut entries = self.entries.write().expect("the key cache lock is never poisoned");
        self.generation.fetch_add(1, Ordering::AcqRel);
        entries.clear();
    }

    pub fn len(&self) -> usize {
        self.entries.read().expect("the key cache lock is never poisoned").len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
