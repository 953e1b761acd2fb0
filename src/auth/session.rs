//! The typed session: who is signed in (and since when), the CSRF token, and flash
//! messages. Everything handlers keep in the session goes through here.

use actix_session::Session;
use serde::{Deserialize, Serialize};

use crate::{error::AppError, secrets::random_token};

const ACTOR: &str = "actor";
const CSRF: &str = "csrf";
const FLASH: &str = "flash";

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
pub fn sign_in(
    session: &Session,
    kind: ActorKind,
    id: i64,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(), AppError> {
    session.renew();
    let actor = SessionActor { kind, id, signed_in_at: now.timestamp() };
    session.insert(ACTOR, actor).map_err(session_error)?;
    session.insert(CSRF, random_token(32)).map_err(session_error)
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
