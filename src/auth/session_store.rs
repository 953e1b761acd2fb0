//! Server-side sessions in PostgreSQL, behind actix-session's `SessionStore` trait.
//!
//! The cookie carries only a random session key; the table is keyed by its SHA-256, so a
//! copy of the table cannot be replayed as cookies. Rows record the signed-in account so
//! that deactivating it can end all of its sessions at once.
//!
//! When the database cannot be reached, actix-session would fail the request with a bare
//! 500. Instead the store notes the failure for the request being served and carries on
//! (an empty session, nothing stored), and [`unavailable_as_503`] decides: a session that
//! could not be *loaded* gets the "temporarily unavailable" page, like any page that needs
//! the database; a session that could not be *saved* after the handler answered keeps that
//! answer, because the handler's change may well have committed (issue 13).

use std::{cell::Cell, collections::HashMap};

use actix_session::storage::{LoadError, SaveError, SessionKey, SessionStore, UpdateError};
use actix_web::{
    ResponseError,
    body::{EitherBody, MessageBody},
    cookie::time::Duration,
    dev::{ServiceRequest, ServiceResponse},
    middleware::Next,
};
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

use crate::{
    auth::session::{ActorKind, SessionActor, SessionClient},
    clock::Clock,
    db::{
        Database,
        models::session::{self as rows, SessionRow},
    },
    secrets::random_token,
};

/// How the store failed while serving a request, worst last.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum StoreFailure {
    None,
    /// The session (changed or only its expiry extended) was not written back: the cookie
    /// still names the stored session, which is merely stale.
    Update,
    /// A new session was not stored: the key about to be set as cookie names nothing.
    NewSession,
    /// A session to end (sign-out) was not deleted: it would stay usable by its cookie, so
    /// the sign-out must not look done.
    Delete,
    /// The session could not be read: the handler ran without it.
    Load,
}

tokio::task_local! {
    /// The worst store failure while serving this request (see [`unavailable_as_503`]).
    static STORE_FAILED: Cell<StoreFailure>;
}

/// Notes a failure of the store for the request being served; false outside a request
/// (then the caller reports the error as such).
fn noted_for_request(error: &crate::error::AppError, failure: StoreFailure) -> bool {
    let noted = STORE_FAILED.try_with(|failed| failed.set(failed.get().max(failure))).is_ok();
    if noted {
        log::warn!("{} session store unavailable ({failure:?}): {error}", crate::request_id::label());
    }
    noted
}

/// Middleware around the session middleware. A request whose session could not be loaded
/// is answered with the 503 page (whatever its handler made of the empty session), and so
/// is a page view whose session could not be saved, or a sign-in whose new session could not
/// be stored. A form submission whose existing session could not be saved afterwards keeps
/// its handler's answer: the change it reports has committed (or failed on its own), and only
/// the session's news (a flash message) is lost.
pub async fn unavailable_as_503<B: MessageBody + 'static>(
    req: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<EitherBody<B>>, actix_web::Error> {
    let (response, failed) = STORE_FAILED
        .scope(Cell::new(StoreFailure::None), async {
            let response = next.call(req).await;
            (response, STORE_FAILED.with(Cell::get))
        })
        .await;
    let response = response?;
    // A page view changed nothing: during an outage it gets the 503 page like any other
    // (a login form without its session could not be submitted anyway).
    let changed_something = !response.request().method().is_safe();
    match failed {
        StoreFailure::None => Ok(response.map_into_left_body()),
        StoreFailure::Update if changed_something => {
            log::warn!(
                "{} {} answered {} but its session was not saved; answering it anyway",
                response.request().method(),
                response.request().path(),
                response.status().as_u16()
            );
            Ok(response.map_into_left_body())
        }
        // A new session is a sign-in: without it stored, answering "signed in" would only
        // send the person back to the login page, so they are told to try again instead.
        StoreFailure::Update | StoreFailure::NewSession | StoreFailure::Delete | StoreFailure::Load => {
            let (request, _) = response.into_parts();
            let page = crate::error::AppError::Unavailable.error_response();
            Ok(ServiceResponse::new(request, page).map_into_right_body())
        }
    }
}

/// The PostgreSQL session store.
#[derive(Clone, Debug)]
pub struct PgSessionStore {
    db: Database,
    clock: Clock,
}

impl PgSessionStore {
    pub fn new(db: Database, clock: Clock) -> Self {
        Self { db, clock }
    }
}

type SessionState = HashMap<String, String>;

fn hash_key(key: &str) -> String {
    let digest = Sha256::digest(key.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

fn new_key() -> SessionKey {
    SessionKey::try_from(random_token(48)).expect("a 64-character key is a valid session key")
}

fn expiry(now: DateTime<Utc>, ttl: &Duration) -> DateTime<Utc> {
    now + chrono::Duration::seconds(ttl.whole_seconds().max(1))
}

fn row(id: String, state: &SessionState, now: DateTime<Utc>, ttl: &Duration) -> Result<SessionRow, serde_json::Error> {
    // actix-session stores each value JSON-encoded; the actor is decoded to fill the
    // columns used to end all sessions of an account.
    let actor: Option<SessionActor> = state.get("actor").map(|v| serde_json::from_str(v)).transpose()?;
    let (user_id, staff_id) = match actor {
        Some(SessionActor { kind: ActorKind::User, id, .. }) => (Some(id), None),
        Some(SessionActor { kind: ActorKind::Staff, id, .. }) => (None, Some(id)),
        None => (None, None),
    };
    // Where a signed-in session came from, for Account → Security's list (a session of a
    // signed-out visitor has none).
    let client: Option<SessionClient> =
        actor.and_then(|_| state.get("client").and_then(|v| serde_json::from_str(v).ok()));
    let signed_in_at = actor.and_then(|a| DateTime::from_timestamp(a.signed_in_at, 0));
    let (public_id, client_ip, client_label) = match client {
        Some(SessionClient { sid, ip, agent }) => {
            (Some(sid), ip.map(|ip| ip.chars().take(64).collect()), Some(agent.chars().take(80).collect()))
        }
        None => (None, None, None),
    };
    Ok(SessionRow {
        id,
        user_id,
        staff_id,
        state: serde_json::to_value(state)?,
        expires_at: expiry(now, ttl),
        public_id,
        client_ip,
        client_label,
        signed_in_at,
        last_seen_at: now,
    })
}

impl SessionStore for PgSessionStore {
    async fn load(&self, session_key: &SessionKey) -> Result<Option<SessionState>, LoadError> {
        let id = hash_key(session_key.as_ref());
        let now = self.clock.now();
        let state = match self.db.run(move |conn| Ok(rows::load(conn, &id, now)?)).await {
            Ok(state) => state,
            Err(e) if noted_for_request(&e, StoreFailure::Load) => return Ok(None),
            Err(e) => return Err(LoadError::Other(anyhow::anyhow!("{e}"))),
        };
        match state {
            None => Ok(None),
            Some(value) => serde_json::from_value(value).map(Some).map_err(|e| LoadError::Deserialization(e.into())),
        }
    }

    async fn save(&self, session_state: SessionState, ttl: &Duration) -> Result<SessionKey, SaveError> {
        let key = new_key();
        let row = row(hash_key(key.as_ref()), &session_state, self.clock.now(), ttl)
            .map_err(|e| SaveError::Serialization(e.into()))?;
        match self.db.run(move |conn| Ok(rows::insert(conn, &row)?)).await {
            // The key of a session that was never stored: the middleware keeps it out of
            // the response.
            Err(e) if noted_for_request(&e, StoreFailure::NewSession) => Ok(key),
            Err(e) => Err(SaveError::Other(anyhow::anyhow!("{e}"))),
            Ok(()) => Ok(key),
        }
    }

    async fn update(
        &self,
        session_key: SessionKey,
        session_state: SessionState,
        ttl: &Duration,
    ) -> Result<SessionKey, UpdateError> {
        let now = self.clock.now();
        let existing = row(hash_key(session_key.as_ref()), &session_state, now, ttl)
            .map_err(|e| UpdateError::Serialization(e.into()))?;
        let updated = match self.db.run(move |conn| Ok(rows::update(conn, &existing, now)?)).await {
            Ok(updated) => updated,
            Err(e) if noted_for_request(&e, StoreFailure::Update) => return Ok(session_key),
            Err(e) => return Err(UpdateError::Other(anyhow::anyhow!("{e}"))),
        };
        if updated {
            return Ok(session_key);
        }
        // The session was ended (logout, password reset, deactivation) or expired meanwhile:
        // never revive the old key, and never carry the sign-in over; start a fresh,
        // anonymous session for whatever else the request stored.
        let mut session_state = session_state;
        session_state.remove("actor");
        self.save(session_state, ttl).await.map_err(|e| match e {
            SaveError::Serialization(e) => UpdateError::Serialization(e),
            SaveError::Other(e) => UpdateError::Other(e),
        })
    }

    async fn update_ttl(&self, session_key: &SessionKey, ttl: &Duration) -> Result<(), anyhow::Error> {
        let id = hash_key(session_key.as_ref());
        let now = self.clock.now();
        let expires_at = expiry(now, ttl);
        match self.db.run(move |conn| Ok(rows::touch(conn, &id, now, expires_at)?)).await {
            Err(e) if !noted_for_request(&e, StoreFailure::Update) => Err(anyhow::anyhow!("{e}")),
            _ => Ok(()),
        }
    }

    async fn delete(&self, session_key: &SessionKey) -> Result<(), anyhow::Error> {
        let id = hash_key(session_key.as_ref());
        match self.db.run(move |conn| Ok(rows::delete(conn, &id)?)).await {
            Err(e) if !noted_for_request(&e, StoreFailure::Delete) => Err(anyhow::anyhow!("{e}")),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_ids_are_hashes_of_the_key() {
        let id = hash_key("abc");
        assert_eq!(id.len(), 64);
        assert_eq!(id, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }

    #[test]
    fn the_actor_fills_the_account_columns() {
        let actor = SessionActor { kind: ActorKind::Staff, id: 7, signed_in_at: 0 };
        let state = SessionState::from([("actor".to_string(), serde_json::to_string(&actor).unwrap())]);
        let row = row("x".into(), &state, Utc::now(), &Duration::minutes(5)).unwrap();
        assert_eq!((row.user_id, row.staff_id), (None, Some(7)));
    }
}
