//! Sudo mode: the one gate in front of sensitive actions (adding or removing a second factor,
//! new recovery codes, a service provider's new key, granting administrator rights, and any
//! later one). The person must have proved it is them within [`FRESH_SECS`]: by signing in,
//! or on the "Confirm it's you" page (`/account/confirm`, `/staff/confirm`) with a code of
//! their second factor, or their password if they have none. The time is kept server-side in
//! the session (`session::last_verified`) and judged at the application's clock.
//!
//! A page that is not fresh enough answers with a redirect to the confirm page, which comes
//! back to the page named (a local path, checked like sign-in's return path) — plain links
//! and forms, so it works without JavaScript.

use actix_session::Session;
use chrono::{DateTime, Utc};

use crate::{
    auth::{
        CurrentStaff, CurrentUser,
        session::{self, ActorKind},
    },
    error::AppError,
};

/// How long a sign-in or a confirmation counts as fresh.
pub const FRESH_SECS: i64 = 10 * 60;

/// The confirm page of each kind of account.
pub fn confirm_path(kind: ActorKind) -> &'static str {
    match kind {
        ActorKind::User => "/account/confirm",
        ActorKind::Staff => "/staff/confirm",
    }
}

/// Whether this session's person proved it is them within [`FRESH_SECS`] of `now`.
pub fn is_fresh(session: &Session, now: DateTime<Utc>) -> bool {
    session::last_verified(session).is_some_and(|at| (0..=FRESH_SECS).contains(&(now.timestamp() - at)))
}

/// The gate: passes when fresh; otherwise the confirm page, returning to `return_to` (the
/// page holding the form of the action, since a form submission cannot be replayed).
pub fn require(session: &Session, kind: ActorKind, now: DateTime<Utc>, return_to: &str) -> Result<(), AppError> {
    if is_fresh(session, now) {
        return Ok(());
    }
    Err(AppError::ConfirmIdentity { page: confirm_path(kind), next: return_to.to_string() })
}

impl CurrentUser {
    /// [`require`] for this user.
    pub fn require_recent(&self, return_to: &str) -> Result<(), AppError> {
        require(&self.session, ActorKind::User, self.now, return_to)
    }
}

impl CurrentStaff {
    /// [`require`] for this support specialist.
    pub fn require_recent(&self, return_to: &str) -> Result<(), AppError> {
        require(&self.session, ActorKind::Staff, self.now, return_to)
    }
}
