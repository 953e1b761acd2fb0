//! The typed session: who is signed in (and since when), who is half-way through signing in
//! (password given, second factor still due), the CSRF token, and flash messages.
//! Everything handlers keep in the session goes through here.
//!
//! A half-signed-in session keeps its account under another key than a signed-in one: the
//! extractors read only [`actor`], so no page can mistake the one for the other. So does a
//! session that must set up a second factor before it counts ([`enrolling`]): a third key,
//! which only the enrolment pages read.

use actix_session::Session;
use serde::{Deserialize, Serialize};

use crate::{error::AppError, secrets::random_token};

const ACTOR: &str = "actor";
const CSRF: &str = "csrf";
const FLASH: &str = "flash";
const PENDING: &str = "pending_sign_in";
const VERIFIED: &str = "verified_at";
const CLIENT: &str = "client";
const ENROLLING: &str = "enrolling_sign_in";
const PASSKEY_CEREMONY: &str = "passkey_ceremony";
/// How long a passkey ceremony's challenge may be answered.
const PASSKEY_CEREMONY_SECS: i64 = 5 * 60;

/// How long a half-signed-in session may take to give its second factor.
pub const PENDING_MAX_SECS: i64 = 5 * 60;
/// How long a session may take to set up a required second factor (installing an
/// authenticator app takes longer than typing a code).
pub const ENROLLING_MAX_SECS: i64 = 30 * 60;

/// The signed-in account as stored in the session.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct SessionActor {
    pub kind: ActorKind,
    pub id: i64,
    /// Unix time of sign-in, for the absolute session timeout.
    pub signed_in_at: i64,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ActorKind {
    User,
    Staff,
}

/// An account whose password was correct and whose second factor is still due.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct PendingSignIn {
    pub kind: ActorKind,
    pub id: i64,
    /// Unix time of the password step, for [`PENDING_MAX_SECS`].
    pub started_at: i64,
    /// The page to return to once signed in (already checked to be local).
    pub next: Option<String>,
}

impl PendingSignIn {
    /// Whether the second factor came too late (see [`PENDING_MAX_SECS`]).
    pub fn expired(&self, now: chrono::DateTime<chrono::Utc>) -> bool {
        self.older_than(now, PENDING_MAX_SECS)
    }

    /// Whether the enrolment took too long (see [`ENROLLING_MAX_SECS`]).
    pub fn enrolment_expired(&self, now: chrono::DateTime<chrono::Utc>) -> bool {
        self.older_than(now, ENROLLING_MAX_SECS)
    }

    fn older_than(&self, now: chrono::DateTime<chrono::Utc>, max_secs: i64) -> bool {
        let age = now.timestamp() - self.started_at;
        !(0..=max_secs).contains(&age)
    }
}

/// Where a signed-in session came from, captured at sign-in for Account → Security's list of
/// sessions. The session store copies it into columns (see `auth::session_store`); `sid` is a
/// random handle for the list's "sign out" buttons, never the session key or its hash.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SessionClient {
    pub sid: String,
    pub ip: Option<String>,
    /// A short readable label of the browser (see `auth::user_agent`).
    pub agent: String,
}

impl SessionClient {
    pub fn new(ip: Option<String>, agent: String) -> Self {
        Self { sid: random_token(16), ip, agent }
    }
}

/// Kind of a flash message, which decides its styling and ARIA role.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum FlashLevel {
    Success,
    Info,
    Error,
}

/// A message shown once, on the next page the user sees.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Flash {
    pub level: FlashLevel,
    pub message: String,
}

impl Flash {
    pub fn css_class(&self) -> &'static str {
        match self.level {
            FlashLevel::Success => "flash flash-success",
            FlashLevel::Info => "flash flash-info",
            FlashLevel::Error => "flash flash-error",
        }
    }

    /// Errors interrupt assistive technology; other messages wait their turn.
    pub fn role(&self) -> &'static str {
        match self.level {
            FlashLevel::Error => "alert",
            _ => "status",
        }
    }
}

fn session_error(e: impl std::fmt::Display) -> AppError {
    AppError::Internal(format!("session: {e}"))
}

pub fn actor(session: &Session) -> Option<SessionActor> {
    session.get::<SessionActor>(ACTOR).ok().flatten()
}

/// Signs `actor` in: a new session key (so a key planted before login is useless) and a new
/// CSRF token.
/// `now` (the application's clock) starts the absolute timeout.
/// Signing in counts as a fresh confirmation of the person (see [`last_verified`]).
pub fn sign_in(
    session: &Session,
    kind: ActorKind,
    id: i64,
    now: chrono::DateTime<chrono::Utc>,
    client: SessionClient,
) -> Result<(), AppError> {
    session.renew();
    session.remove(PENDING);
    session.remove(VERIFIED);
    session.remove(ENROLLING);
    session.remove(PASSKEY_CEREMONY);
    let actor = SessionActor { kind, id, signed_in_at: now.timestamp() };
    session.insert(ACTOR, actor).map_err(session_error)?;
    session.insert(CLIENT, client).map_err(session_error)?;
    session.insert(CSRF, random_token(32)).map_err(session_error)
}

/// The password step of an account with a second factor: a new session key and CSRF token,
/// and the account kept as pending, not signed in (see the module's note).
pub fn begin_second_factor(
    session: &Session,
    kind: ActorKind,
    id: i64,
    now: chrono::DateTime<chrono::Utc>,
    next: Option<String>,
) -> Result<(), AppError> {
    after_password(session, PENDING, PendingSignIn { kind, id, started_at: now.timestamp(), next })
}

/// The password step of an account that must have a second factor and has none: a new
/// session key and CSRF token, and the account kept as enrolling — neither signed in nor
/// half-signed-in, so only the enrolment pages accept it (see the module's note).
pub fn begin_enrolment(
    session: &Session,
    kind: ActorKind,
    id: i64,
    now: chrono::DateTime<chrono::Utc>,
    next: Option<String>,
) -> Result<(), AppError> {
    after_password(session, ENROLLING, PendingSignIn { kind, id, started_at: now.timestamp(), next })
}

/// A new session key and CSRF token holding `account` under `state` (pending or enrolling)
/// alone: never signed in, never in the other state.
fn after_password(session: &Session, state: &str, account: PendingSignIn) -> Result<(), AppError> {
    session.renew();
    for key in [ACTOR, PENDING, ENROLLING, PASSKEY_CEREMONY] {
        session.remove(key);
    }
    session.insert(state, account).map_err(session_error)?;
    session.insert(CSRF, random_token(32)).map_err(session_error)
}

/// The account that must set up a second factor before it is signed in, if any (expired or
/// not: see [`PendingSignIn::enrolment_expired`]).
pub fn enrolling(session: &Session) -> Option<PendingSignIn> {
    session.get::<PendingSignIn>(ENROLLING).ok().flatten()
}

/// The half-signed-in account, if any (expired or not: see [`PendingSignIn::expired`]).
pub fn pending(session: &Session) -> Option<PendingSignIn> {
    session.get::<PendingSignIn>(PENDING).ok().flatten()
}

/// Where this session came from, if it was signed in since sessions record it.
pub fn client(session: &Session) -> Option<SessionClient> {
    session.get::<SessionClient>(CLIENT).ok().flatten()
}

/// Records that the signed-in person just confirmed it is them (sudo mode).
pub fn mark_verified(session: &Session, now: chrono::DateTime<chrono::Utc>) -> Result<(), AppError> {
    session.insert(VERIFIED, now.timestamp()).map_err(session_error)
}

/// Unix time the signed-in person last proved it is them: the sign-in, or a later
/// confirmation. Kept server-side in the session, like everything here.
pub fn last_verified(session: &Session) -> Option<i64> {
    let signed_in = actor(session)?.signed_in_at;
    let confirmed = session.get::<i64>(VERIFIED).ok().flatten().unwrap_or(signed_in);
    Some(signed_in.max(confirmed))
}

/// A passkey ceremony in progress: what it is for, when it began, and the verifier's state
/// (its challenge). It stays in the server-side session (never in the cookie), and is
/// taken, so a challenge is answered once.
#[derive(Serialize, Deserialize)]
struct PasskeyCeremony {
    purpose: String,
    started_at: i64,
    state: serde_json::Value,
}

/// Starts a passkey ceremony for `purpose` ("register", "authenticate"), replacing any other.
pub fn begin_passkey_ceremony<T: Serialize>(
    session: &Session,
    purpose: &str,
    now: chrono::DateTime<chrono::Utc>,
    state: &T,
) -> Result<(), AppError> {
    let state = serde_json::to_value(state).map_err(|e| AppError::Internal(format!("passkey state: {e}")))?;
    let ceremony = PasskeyCeremony { purpose: purpose.to_string(), started_at: now.timestamp(), state };
    session.insert(PASSKEY_CEREMONY, ceremony).map_err(session_error)
}

/// Takes the ceremony for `purpose` begun within the last five minutes, if any: whatever the
/// outcome, its challenge cannot be answered again.
pub fn take_passkey_ceremony<T: serde::de::DeserializeOwned>(
    session: &Session,
    purpose: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> Option<T> {
    let ceremony = session.remove_as::<PasskeyCeremony>(PASSKEY_CEREMONY)?.ok()?;
    let fresh = now.timestamp() - ceremony.started_at <= PASSKEY_CEREMONY_SECS;
    (ceremony.purpose == purpose && fresh).then(|| serde_json::from_value(ceremony.state).ok()).flatten()
}

/// Ends the session here and in the store.
pub fn sign_out(session: &Session) {
    session.purge();
}

/// The session's CSRF token, created on first use.
pub fn csrf_token(session: &Session) -> Result<String, AppError> {
    if let Some(token) = session.get::<String>(CSRF).ok().flatten() {
        return Ok(token);
    }
    let token = random_token(32);
    session.insert(CSRF, &token).map_err(session_error)?;
    Ok(token)
}

/// The CSRF token if the session has one (without creating it).
pub fn existing_csrf_token(session: &Session) -> Option<String> {
    session.get::<String>(CSRF).ok().flatten()
}

/// Queues a message for the next page.
pub fn flash(session: &Session, level: FlashLevel, message: impl Into<String>) {
    let mut messages: Vec<Flash> = session.get(FLASH).ok().flatten().unwrap_or_default();
    messages.push(Flash { level, message: message.into() });
    if let Err(e) = session.insert(FLASH, messages) {
        log::warn!("cannot store a flash message: {e}");
    }
}

/// Takes the queued messages (they are shown once).
pub fn take_flashes(session: &Session) -> Vec<Flash> {
    let messages: Vec<Flash> = session.get(FLASH).ok().flatten().unwrap_or_default();
    if !messages.is_empty() {
        session.remove(FLASH);
    }
    messages
}
