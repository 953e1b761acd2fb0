//! The in-memory key cache of one instance: public id → what verification needs, kept
//! coherent by invalidations from PostgreSQL `LISTEN/NOTIFY` (see `listener`).
//!
//! A generation counter guards against a race: a lookup that loaded a key from the database
//! while an invalidation arrived must not put its (possibly stale) result in the cache.
//!
//! Entries are trusted only while the listener has recently proved its connection (a
//! `LISTEN` or heartbeat within [`COHERENCE_WINDOW`]). After that they are *stale*: the
//! verifier reloads the key, and falls back to the stale entry only when the database cannot
//! answer, for at most [`DISCONNECTED_TRUST`] (during an outage nobody can change keys).

use std::{
    collections::HashMap,
    sync::{
        Arc, RwLock,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use super::{CachedKey, Catalog};

/// How long "no such key" is remembered. Creating a key invalidates it at once anyway.
pub const NEGATIVE_TTL: Duration = Duration::from_secs(5);
/// How long cached keys stay usable, after the listener lost touch, when the database cannot
/// be reached either. During an outage nobody can change keys, so known keys keep working;
/// a partition that cuts off only this instance is covered by reloading from the database.
pub const DISCONNECTED_TRUST: Duration = Duration::from_secs(300);
/// Entries are trusted this long after the listener last proved its connection.
pub const COHERENCE_WINDOW: Duration = Duration::from_secs(6);
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
    /// Known, but the cache cannot currently vouch for it: reload, use only if that fails.
    Stale(Arc<CachedKey>),
    Missing,
    Unknown,
}

/// The cache.
#[derive(Debug)]
pub struct KeyCache {
    entries: RwLock<HashMap<String, Entry>>,
    generation: AtomicU64,
    enabled: bool,
    /// Milliseconds since `origin` before which entries are trusted.
    coherent_until: AtomicU64,
    origin: Instant,
    /// The API action catalog, shared by every cached all-actions key; dropped with the
    /// entries on `all` (catalog changes notify `all`).
    catalog: RwLock<Option<Catalog>>,
    /// Lookups answered from memory and not, for the operators' metrics.
    lookups: LookupCounts,
}

/// Hit and miss counts, on a cache line of their own: every lookup writes one, and sharing a
/// line with the fields every lookup reads would make the cores fight over it.
#[derive(Debug, Default)]
#[repr(align(128))]
struct LookupCounts {
    hits: AtomicU64,
    misses: AtomicU64,
}

impl Default for KeyCache {
    fn default() -> Self {
        Self::new(true)
    }
}

impl KeyCache {
    /// Whether known keys are served from memory.
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    pub fn new(enabled: bool) -> Self {
        Self {
            entries: RwLock::default(),
            generation: AtomicU64::new(0),
            enabled,
            coherent_until: AtomicU64::new(0),
            origin: Instant::now(),
            catalog: RwLock::default(),
            lookups: LookupCounts::default(),
        }
    }

    fn now_ms(&self) -> u64 {
        self.origin.elapsed().as_millis() as u64
    }

    pub fn get(&self, public_id: &str) -> Lookup {
        let lookup = self.lookup(public_id);
        // A remembered unknown key is answered from memory too; a stale entry is reloaded.
        let counter = match lookup {
            Lookup::Found(_) | Lookup::Missing => &self.lookups.hits,
            Lookup::Stale(_) | Lookup::Unknown => &self.lookups.misses,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        lookup
    }

    /// Lookups so far: (answered from memory, not).
    pub fn lookups(&self) -> (u64, u64) {
        (self.lookups.hits.load(Ordering::Relaxed), self.lookups.misses.load(Ordering::Relaxed))
    }

    fn lookup(&self, public_id: &str) -> Lookup {
        if !self.enabled {
            return Lookup::Unknown;
        }
        let now = self.now_ms();
        let coherent_until = self.coherent_until.load(Ordering::Acquire);
        let coherent = now < coherent_until;
        let entries = self.entries.read().expect("the key cache lock is never poisoned");
        match entries.get(public_id) {
            Some(Entry::Found(key)) if coherent => Lookup::Found(Arc::clone(key)),
            Some(Entry::Found(key)) if now - coherent_until <= DISCONNECTED_TRUST.as_millis() as u64 => {
                Lookup::Stale(Arc::clone(key))
            }
            Some(Entry::Missing { until }) if coherent && *until > Instant::now() => Lookup::Missing,
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

    /// Whether the listener currently vouches for what is cached.
    pub fn coherent(&self) -> bool {
        self.now_ms() < self.coherent_until.load(Ordering::Acquire)
    }

    /// The cached action catalog, if any and if the listener vouches for it (while it does
    /// not, a retired action would go unnoticed: loads read the catalog afresh).
    pub fn catalog(&self) -> Option<Catalog> {
        if !self.coherent() {
            return None;
        }
        self.catalog.read().expect("the catalog lock is never poisoned").clone()
    }

    /// Remembers the catalog read by a load, unless anything was invalidated since `generation`.
    pub fn set_catalog(&self, catalog: Catalog, generation: u64) {
        // Under the entries' lock, like `insert`, so an invalidation cannot slip in between.
        let _entries = self.entries.write().expect("the key cache lock is never poisoned");
        if self.enabled && self.coherent() && self.generation.load(Ordering::Acquire) == generation {
            *self.catalog.write().expect("the catalog lock is never poisoned") = Some(catalog);
        }
    }

    /// Applies one notification payload: `key:<public id>`, `user:<id>`, `org:<id>` or `all`
    /// (and the token cache's `token:` and `staff:`, which concern no key).
    pub fn invalidate(&self, payload: &str) {
        let mut entries = self.entries.write().expect("the key cache lock is never poisoned");
        self.generation.fetch_add(1, Ordering::AcqRel);
        match payload.split_once(':') {
            Some(("key", public_id)) => {
                entries.remove(public_id);
            }
            // Management tokens are no keys (see `keys::tokens`), and support staff own none.
            Some(("token" | "staff", _)) => {}
            Some(("user", id)) => match id.parse::<i64>() {
                Ok(id) => entries.retain(|_, e| !matches!(e, Entry::Found(k) if k.owner_user_id == Some(id))),
                Err(_) => entries.clear(),
            },
            Some(("org", id)) => match id.parse::<i64>() {
                Ok(id) => entries.retain(|_, e| !matches!(e, Entry::Found(k) if k.organization_id == Some(id))),
                Err(_) => entries.clear(),
            },
            _ => {
                entries.clear();
                *self.catalog.write().expect("the catalog lock is never poisoned") = None;
            }
        }
        // Negative entries are cheap to rebuild; drop them all so a new key is never refused.
        entries.retain(|_, e| matches!(e, Entry::Found(_)));
    }

    /// The listener proved its connection (LISTEN or heartbeat): trust entries for a while.
    pub fn confirm_coherent(&self) {
        let until = self.now_ms() + COHERENCE_WINDOW.as_millis() as u64;
        self.coherent_until.fetch_max(until, Ordering::AcqRel);
    }

    /// The listener lost its connection: stop trusting entries now.
    pub fn disconnected(&self) {
        // The first loss counts: repeated failed reconnects must not extend `DISCONNECTED_TRUST`.
        self.coherent_until.fetch_min(self.now_ms(), Ordering::AcqRel);
    }

    /// The listener is connected again: forget everything (notifications sent meanwhile were
    /// missed) and trust what is loaded from now on.
    pub fn resynchronize(&self) {
        self.clear();
        self.confirm_coherent();
    }

    /// Forgets everything.
    pub fn clear(&self) {
        let mut entries = self.entries.write().expect("the key cache lock is never poisoned");
        self.generation.fetch_add(1, Ordering::AcqRel);
        entries.clear();
        *self.catalog.write().expect("the catalog lock is never poisoned") = None;
    }

    pub fn len(&self) -> usize {
        self.entries.read().expect("the key cache lock is never poisoned").len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_first_loss_of_the_listener_starts_the_disconnected_trust() {
        let cache = KeyCache::new(true);
        cache.confirm_coherent();
        cache.disconnected();
        let first = cache.coherent_until.load(Ordering::Acquire);
        std::thread::sleep(Duration::from_millis(20));
        // Failed reconnects keep reporting the loss; the clock keeps running from the first.
        cache.disconnected();
        assert_eq!(cache.coherent_until.load(Ordering::Acquire), first);
        cache.resynchronize();
        assert!(cache.coherent_until.load(Ordering::Acquire) > first, "trusted again once reconnected");
    }

    #[test]
    fn one_catalog_is_shared_until_the_catalog_changes() {
        let cache = KeyCache::new(true);
        cache.confirm_coherent();
        let catalog: Catalog = Arc::new(["positions.read".to_string()].into());
        let stale = cache.generation();
        cache.invalidate("key:abc");
        cache.set_catalog(Arc::clone(&catalog), stale);
        assert!(cache.catalog().is_none(), "read before an invalidation: not kept");
        cache.set_catalog(Arc::clone(&catalog), cache.generation());
        assert!(cache.catalog().is_some_and(|c| Arc::ptr_eq(&c, &catalog)));
        cache.invalidate("user:7");
        assert!(cache.catalog().is_some(), "a user's change leaves the catalog");
        cache.invalidate("all");
        assert!(cache.catalog().is_none(), "catalog changes notify all");
        cache.set_catalog(Arc::clone(&catalog), cache.generation());
        cache.disconnected();
        assert!(cache.catalog().is_none(), "not trusted while the listener is away");
    }
}
