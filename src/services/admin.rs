//! Who may change an organization's settings: its administrators (and the operator).

use diesel::PgConnection;

use crate::{
    db::models::User,
    error::AppError,
    services::{Actor, actor::ActorKind},
};

/// Succeeds when `actor` is an active administrator of `organization_id` (or the operator).
pub fn require_admin(conn: &mut PgConnection, actor: &Actor, organization_id: i64) -> Result<(), AppError> {
    match &actor.kind {
        ActorKind::System { .. } => Ok(()),
        ActorKind::User { id, organization_id: own, .. } if *own == organization_id => {
            let user = User::find_in_org(conn, organization_id, *id)?;
            if user.active && user.is_admin { Ok(()) } else { Err(AppError::Forbidden) }
        }
        _ => Err(AppError::Forbidden),
    }
}
