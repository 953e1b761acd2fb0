//! An account's own signed-in sessions (Account → Security): listing them, and signing out
//! one or all of the others. Each ending is written to the audit log in the same transaction.

use diesel::PgConnection;
use serde_json::json;

use crate::{
    db::models::session::{self as rows, SessionListing, SessionOwner},
    error::AppError,
    services::{
        Actor,
        actor::ActorKind,
        audit::{self, AuditAction, Entry, Target},
    },
};

fn owner_of(actor: &Actor) -> Result<(SessionOwner, Target), AppError> {
    match &actor.kind {
        ActorKind::User { id, email, .. } => Ok((SessionOwner::User(*id), Target::new("user", id, email))),
        ActorKind::Staff { id, email } => Ok((SessionOwner::Staff(*id), Target::new("staff", id, email))),
        _ => Err(AppError::Forbidden),
    }
}

/// The live sessions of the actor's account, most recently seen first.
pub fn list(conn: &mut PgConnection, actor: &Actor) -> Result<Vec<SessionListing>, AppError> {
    let (owner, _) = owner_of(actor)?;
    Ok(rows::list_for(conn, owner, actor.now)?)
}

fn record_ended(
    conn: &mut PgConnection,
    actor: &Actor,
    target: Target,
    ended: &[SessionListing],
    which: &str,
) -> Result<(), AppError> {
    let sessions: Vec<_> = ended.iter().map(|s| json!({ "browser": s.client_label, "ip": s.client_ip })).collect();
    audit::record(
        conn,
        actor,
        Entry::new(AuditAction::SessionEnd)
            .target(target)
            .details(json!({ "which": which, "count": ended.len(), "sessions": sessions })),
    )?;
    Ok(())
}

/// Signs out the session `public_id` of the actor's own account (never the `current` one,
/// which signs out with the menu): not found when it is not one of theirs.
pub fn end_one(conn: &mut PgConnection, actor: &Actor, public_id: &str, current: Option<&str>) -> Result<(), AppError> {
    let (owner, target) = owner_of(actor)?;
    let ended = rows::delete_one_of(conn, owner, public_id, current)?;
    if ended.is_empty() {
        return Err(AppError::NotFound);
    }
    record_ended(conn, actor, target, &ended, "one")
}

/// Signs out every session of the actor's account but the `current` one; how many ended.
pub fn end_others(conn: &mut PgConnection, actor: &Actor, current: Option<&str>) -> Result<usize, AppError> {
    let (owner, target) = owner_of(actor)?;
    let ended = rows::delete_others_of(conn, owner, current)?;
    if !ended.is_empty() {
        record_ended(conn, actor, target, &ended, "others")?;
    }
    Ok(ended.len())
}
