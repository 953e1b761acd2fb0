//! Creating support staff accounts.

use crate::services::audit::AuditAction;
use diesel::PgConnection;

use crate::{
    db::models::{StaffAccount, staff_account::NewStaffAccount},
    domain::{Email, text::clean_line},
    error::{AppError, FieldErrors},
    services::{
        Actor,
        actor::ActorKind,
        audit::{self, Entry, Target},
        users::email_in_use,
    },
};

/// Creates a staff account. The operator (command line) and existing staff may.
pub fn create(
    conn: &mut PgConnection,
    actor: &Actor,
    email: &str,
    display_name: &str,
    password_hash: Option<&str>,
) -> Result<StaffAccount, AppError> {
    if !matches!(actor.kind, ActorKind::System { .. } | ActorKind::Staff { .. }) {
        return Err(AppError::Forbidden);
    }
    let mut errors = FieldErrors::new();
    let email = errors.take("email", Email::parse(email));
    let display_name = errors.take("display_name", clean_line(display_name, 1, 100, "display name"));
    if let Some(email) = &email
        && email_in_use(conn, email)?
    {
        errors.add("email", "An account with this email address already exists.");
    }
    let (email, display_name) = errors.finish(email.zip(display_name))?;
    let staff = StaffAccount::insert(
        conn,
        &NewStaffAccount { email: email.as_str(), display_name: &display_name, password_hash },
    )?;
    audit::record(
        conn,
        actor,
        Entry::new(AuditAction::StaffCreate).target(Target::new("staff", staff.id, &staff.email)),
    )?;
    Ok(staff)
}
