//! The in-memory cache of management tokens of one instance: public id → what authenticating
//! a management API request needs (the token, its creator's current standing), so a request
//! costs an HMAC and no query to authenticate. Kept coherent by the key cache's listener: the
//! `token:<public id>` notifications (revocation, changes), the creator's `user:<id>` (or a
//! support specialist's `staff:<id>`), the organization's `org:<id>` and `all`. It is only trusted while that listener is connected
//! (`KeyCache::is_coherent`); otherwise every request loads the token from the database.

use std::{
    collections::HashMap,
    sync::{
        Arc, RwLock,
        atomic::{AtomicU64, Ordering},
    },
};

use chrono::{DateTime, Utc};
use diesel::{OptionalExtension, PgConnection};
use ipnetwork::IpNetwork;

use crate::{
    db::models::{ManagementToken, StaffAccount, User, management_token::TokenHolder},
    domain::{Capabilities, TokenScopes},
    error::AppError,
};

/// Everything authenticating a request with a token needs.
#[derive(Debug, Clone)]
pub struct CachedToken {
    pub id: i64,
    pub public_id: String,
    pub name: String,
    /// Whose it is, and as whom it acts.
    pub holder: TokenHolder,
    pub scopes: TokenScopes,
    pub cidrs: Vec<IpNetwork>,
    pub secret_hash: Vec<u8>,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked: bool,
    pub creator_email: String,
    /// The creator is active (and a web user still in the token's organization).
    pub creator_active: bool,
    /// A web user creator's capabilities now: a token never does more than its creator may.
    /// (A support specialist's rights are the staff rules of `services::keys::access`.)
    pub creator_can: Capabilities,
}

impl CachedToken {
    /// Loads the token with `public_id` and its creator's standing.
    pub fn load(conn: &mut PgConnection, public_id: &str) -> Result<Option<Self>, AppError> {
        let Some(token) = ManagementToken::find_presented(conn, public_id)? else { return Ok(None) };
        let Some(holder) = token.holder() else { return Ok(None) };
        let (creator_email, creator_active, creator_can) = match holder {
            TokenHolder::Organization { organization_id, user_id } => match User::find(conn, user_id).optional()? {
                Some(user) => {
                    let can = Capabilities::new(user.is_admin, user.effective_permissions(conn)?);
                    (user.email, user.active && user.organization_id == organization_id, can)
                }
                None => (String::new(), false, Capabilities::default()),
            },
            TokenHolder::ServiceProvider { staff_id, .. } => match StaffAccount::find(conn, staff_id).optional()? {
                Some(staff) => (staff.email, staff.active, Capabilities::default()),
                None => (String::new(), false, Capabilities::default()),
            },
        };
        let scopes = TokenScopes::parse(token.scopes.iter().flatten().map(String::as_str)).unwrap_or_default();
        Ok(Some(Self {
            id: token.id,
            cidrs: token.cidrs(),
            public_id: token.public_id,
            name: token.name,
            holder,
            scopes,
            secret_hash: token.secret_hash,
            expires_at: token.expires_at,
            revoked: token.revoked_at.is_some(),
            creator_email,
            creator_active,
            creator_can,
        }))
    }

    /// Whether a change of web user `id` concerns this token (they created it).
    fn created_by_user(&self, id: i64) -> bool {
        matches!(self.holder, TokenHolder::Organization { user_id, .. } if user_id == id)
    }

    fn created_by_staff(&self, id: i64) -> bool {
        matches!(self.holder, TokenHolder::ServiceProvider { staff_id, .. } if staff_id == id)
    }

    fn of_organization(&self, id: i64) -> bool {
        matches!(self.holder, TokenHolder::Organization { organization_id, .. } if organization_id == id)
    }
}

/// The cache. Unknown tokens are not remembered: a guess costs a query, and the management
/// API's callers are few.
#[derive(Debug, Default)]
pub struct TokenCache {
    entries: RwLock<HashMap<String, Arc<CachedToken>>>,
    generation: AtomicU64,
}

/// Beyond this many entries the cache starts over (a bound on memory).
const MAX_ENTRIES: usize = 10_000;

impl TokenCache {
    pub fn get(&self, public_id: &str) -> Option<Arc<CachedToken>> {
        self.entries.read().expect("the token cache lock is never poisoned").get(public_id).cloned()
    }

    /// The generation to pass to [`TokenCache::insert`] after a database load.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Remembers a load, unless anything was invalidated since `generation` (the load may
    /// have read the token before a revocation this instance has since been told about).
    pub fn insert(&self, token: Arc<CachedToken>, generation: u64) {
        let mut entries = self.entries.write().expect("the token cache lock is never poisoned");
        if self.generation.load(Ordering::Acquire) != generation {
            return;
        }
        if entries.len() >= MAX_ENTRIES {
            entries.clear();
        }
        entries.insert(token.public_id.clone(), token);
    }

    /// Applies one notification payload of the keys channel.
    pub fn invalidate(&self, payload: &str) {
        let mut entries = self.entries.write().expect("the token cache lock is never poisoned");
        self.generation.fetch_add(1, Ordering::AcqRel);
        match payload.split_once(':') {
            // Keys do not change what a token may do.
            Some(("key", _)) => {}
            Some(("token", public_id)) => {
                entries.remove(public_id);
            }
            Some(("user", id)) => match id.parse::<i64>() {
                Ok(id) => entries.retain(|_, t| !t.created_by_user(id)),
                Err(_) => entries.clear(),
            },
            Some(("staff", id)) => match id.parse::<i64>() {
                Ok(id) => entries.retain(|_, t| !t.created_by_staff(id)),
                Err(_) => entries.clear(),
            },
            Some(("org", id)) => match id.parse::<i64>() {
                Ok(id) => entries.retain(|_, t| !t.of_organization(id)),
                Err(_) => entries.clear(),
            },
            _ => entries.clear(),
        }
    }

    /// Forgets everything (the listener reconnected: notifications may have been missed).
    pub fn clear(&self) {
        let mut entries = self.entries.write().expect("the token cache lock is never poisoned");
        self.generation.fetch_add(1, Ordering::AcqRel);
        entries.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(public_id: &str, organization_id: i64, creator_id: i64) -> Arc<CachedToken> {
        Arc::new(CachedToken {
            id: 1,
            public_id: public_id.into(),
            name: "t".into(),
            holder: TokenHolder::Organization { organization_id, user_id: creator_id },
            scopes: TokenScopes::all(),
            cidrs: vec![],
            secret_hash: vec![],
            expires_at: None,
            revoked: false,
            creator_email: "a@b.test".into(),
            creator_active: true,
            creator_can: Capabilities::default(),
        })
    }

    #[test]
    fn notifications_drop_the_tokens_they_concern() {
        let cache = TokenCache::default();
        for (id, org, creator) in [("A", 1, 10), ("B", 1, 11), ("C", 2, 12)] {
            cache.insert(token(id, org, creator), cache.generation());
        }
        cache.invalidate("key:A");
        assert!(cache.get("A").is_some(), "a key's change leaves tokens");
        cache.invalidate("token:A");
        assert!(cache.get("A").is_none());
        cache.invalidate("user:11");
        assert!(cache.get("B").is_none() && cache.get("C").is_some());
        cache.invalidate("org:2");
        assert!(cache.get("C").is_none());
        let provider_token = Arc::new(CachedToken {
            holder: TokenHolder::ServiceProvider { service_provider_id: 1, staff_id: 10 },
            ..(*token("P", 0, 0)).clone()
        });
        cache.insert(provider_token, cache.generation());
        cache.insert(token("Q", 1, 10), cache.generation());
        cache.invalidate("user:10");
        assert!(cache.get("P").is_some() && cache.get("Q").is_none(), "user 10 is not staff 10");
        cache.invalidate("staff:10");
        assert!(cache.get("P").is_none(), "a support specialist's change drops their tokens");
        let stale = cache.generation();
        cache.invalidate("token:D");
        cache.insert(token("D", 1, 10), stale);
        assert!(cache.get("D").is_none(), "a load older than an invalidation is not kept");
    }
}
