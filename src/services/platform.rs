//! What support staff manage for the whole platform: service providers, the catalog of API
//! actions, and staff accounts. Staff (and the operator) only; every change is audited with
//! the staff account as actor.

use crate::services::audit::AuditAction;
use diesel::{OptionalExtension, PgConnection};
use serde_json::json;

use crate::{
    db::models::{ApiAction, ServiceProvider, StaffAccount, session},
    domain::text::{clean_line, clean_text},
    error::{AppError, invalid},
    services::{
        Actor,
        actor::ActorKind,
        audit::{self, Entry, Target},
    },
};

fn require_staff(actor: &Actor) -> Result<(), AppError> {
    match actor.kind {
        ActorKind::Staff { .. } | ActorKind::System { .. } => Ok(()),
        _ => Err(AppError::Forbidden),
    }
}

fn provider_target(provider: &ServiceProvider) -> Target {
    Target::new("service_provider", provider.id, &provider.name)
}

pub fn create_provider(conn: &mut PgConnection, actor: &Actor, name: &str) -> Result<ServiceProvider, AppError> {
    require_staff(actor)?;
    let name = clean_line(name, 1, 100, "name").map_err(|e| invalid("name", e))?;
    if ServiceProvider::list_all(conn)?.iter().any(|p| p.name.eq_ignore_ascii_case(&name)) {
        return Err(invalid("name", "A service provider with this name exists already."));
    }
    let provider = ServiceProvider::insert(conn, &name)?;
    audit::record(
        conn,
        actor,
        Entry::new(AuditAction::ServiceProviderCreate)
            .service_provider(Some(provider.id))
            .target(provider_target(&provider)),
    )?;
    Ok(provider)
}

pub fn rename_provider(
    conn: &mut PgConnection,
    actor: &Actor,
    id: i64,
    name: &str,
) -> Result<ServiceProvider, AppError> {
    require_staff(actor)?;
    let provider = ServiceProvider::find(conn, id).optional()?.ok_or(AppError::NotFound)?;
    let name = clean_line(name, 1, 100, "name").map_err(|e| invalid("name", e))?;
    if ServiceProvider::list_all(conn)?.iter().any(|p| p.id != id && p.name.eq_ignore_ascii_case(&name)) {
        return Err(invalid("name", "A service provider with this name exists already."));
    }
    let renamed = ServiceProvider::rename(conn, id, &name)?;
    audit::record(
        conn,
        actor,
        Entry::new(AuditAction::ServiceProviderRename)
            .service_provider(Some(id))
            .target(provider_target(&renamed))
            .details(json!({ "from": provider.name, "to": renamed.name })),
    )?;
    Ok(renamed)
}

/// Checks an action code: dotted lower-case words, like `positions.read`.
pub fn parse_action_code(input: &str) -> Result<String, String> {
    let code = input.trim();
    let word = |w: &str| {
        !w.is_empty()
            && w.as_bytes()[0].is_ascii_lowercase()
            && w.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    };
    let parts: Vec<&str> = code.split('.').collect();
    if code.len() <= 64 && parts.len() >= 2 && parts.iter().all(|p| word(p)) {
        Ok(code.to_string())
    } else {
        Err("Use dotted lower-case words, e.g. positions.read.".into())
    }
}

pub fn create_action(
    conn: &mut PgConnection,
    actor: &Actor,
    code: &str,
    description: &str,
) -> Result<ApiAction, AppError> {
    require_staff(actor)?;
    let mut errors = crate::error::FieldErrors::new();
    let code = errors.take("code", parse_action_code(code));
    let description = errors.take("description", clean_text(description, 500, "description"));
    if let Some(code) = &code
        && ApiAction::list_all(conn)?.iter().any(|a| a.code == *code)
    {
        errors.add("code", "This action exists already (it may be retired).");
    }
    let (code, description) = errors.finish(code.zip(description))?;
    let action = ApiAction::insert(conn, &code, &description)?;
    audit::record(
        conn,
        actor,
        Entry::new(AuditAction::ApiActionCreate).target(Target::new("api_action", action.id, &action.code)),
    )?;
    Ok(action)
}

pub fn describe_action(
    conn: &mut PgConnection,
    actor: &Actor,
    id: i64,
    description: &str,
) -> Result<ApiAction, AppError> {
    require_staff(actor)?;
    ApiAction::find(conn, id).optional()?.ok_or(AppError::NotFound)?;
    let description = clean_text(description, 500, "description").map_err(|e| invalid("description", e))?;
    let action = ApiAction::describe(conn, id, &description)?;
    audit::record(
        conn,
        actor,
        Entry::new(AuditAction::ApiActionDescribe).target(Target::new("api_action", action.id, &action.code)),
    )?;
    Ok(action)
}

/// Retires an action: every key and role loses it at once (verification caches are told).
pub fn retire_action(conn: &mut PgConnection, actor: &Actor, id: i64) -> Result<(ApiAction, usize), AppError> {
    require_staff(actor)?;
    let action = ApiAction::find(conn, id).optional()?.ok_or(AppError::NotFound)?;
    if action.retired_at.is_some() {
        return Err(AppError::Conflict(format!("{} is retired already.", action.code)));
    }
    let keys = ApiAction::retire(conn, id)?;
    audit::record(
        conn,
        actor,
        Entry::new(AuditAction::ApiActionRetire)
            .target(Target::new("api_action", action.id, &action.code))
            .details(json!({ "keys_losing_it": keys })),
    )?;
    Ok((action, keys))
}

/// Deactivates (ending their sessions) or reactivates a staff account; the platform always
/// keeps one active staff account.
pub fn set_staff_active(
    conn: &mut PgConnection,
    actor: &Actor,
    id: i64,
    active: bool,
) -> Result<StaffAccount, AppError> {
    require_staff(actor)?;
    let staff = StaffAccount::find(conn, id).optional()?.ok_or(AppError::NotFound)?;
    if staff.active == active {
        return Ok(staff);
    }
    if !active && StaffAccount::lock_active(conn)?.iter().all(|other| *other == id) {
        return Err(AppError::Conflict("This is the last active staff account.".into()));
    }
    let changed = StaffAccount::set_active(conn, id, active)?;
    let ended = if active { 0 } else { session::delete_for_staff(conn, id)? };
    audit::record(
        conn,
        actor,
        Entry::new(if active { AuditAction::StaffReactivate } else { AuditAction::StaffDeactivate })
            .target(Target::new("staff", changed.id, &changed.email))
            .details(json!({ "sessions_ended": ended })),
    )?;
    Ok(changed)
}

/// Staff account `id`, whose second factor `actor` (staff) may reset: any but their own, so
/// that a stolen password of one cannot strip its own second factor.
pub fn staff_for_factor_reset(conn: &mut PgConnection, actor: &Actor, id: i64) -> Result<StaffAccount, AppError> {
    require_staff(actor)?;
    if matches!(actor.kind, ActorKind::Staff { id: own, .. } if own == id) {
        return Err(AppError::Forbidden);
    }
    StaffAccount::find(conn, id).optional()?.ok_or(AppError::NotFound)
}

/// Removes another staff account's second factors and ends its sessions (see
/// [`second_factor::reset`](crate::services::second_factor::reset)); its next sign-in sets up
/// a new one.
pub fn reset_staff_second_factor(conn: &mut PgConnection, actor: &Actor, id: i64) -> Result<StaffAccount, AppError> {
    let staff = staff_for_factor_reset(conn, actor, id)?;
    crate::services::second_factor::reset(
        conn,
        actor,
        crate::db::models::second_factor::FactorOwner::Staff(staff.id),
        Target::new("staff", staff.id, &staff.email),
        None,
    )?;
    Ok(staff)
}

#[cfg(test)]
mod tests {
    use super::parse_action_code;

    #[test]
    fn action_codes_are_dotted_lower_case_words() {
        assert!(parse_action_code("positions.read").is_ok());
        assert!(parse_action_code("fleet.trips_v2.read").is_ok());
        for bad in ["positions", "Positions.read", "positions.", ".read", "pos itions.read", "9x.read"] {
            assert!(parse_action_code(bad).is_err(), "{bad}");
        }
    }
}
