//! Custom roles of an organization: a name, permissions from the fixed catalog, and the API
//! actions holders may put on keys. Administrators only.

use crate::services::audit::AuditAction;
use diesel::{OptionalExtension, PgConnection};
use serde_json::json;

use crate::{
    db::models::{ApiAction, Role},
    domain::{Permission, text::clean_line, text::clean_text},
    error::{AppError, FieldErrors},
    services::{
        Actor,
        admin::require_admin,
        audit::{self, Entry, Target},
    },
};

/// A validated role definition.
#[derive(Debug, Clone)]
pub struct RoleInput {
    pub name: String,
    pub description: String,
    pub permissions: Vec<Permission>,
    pub all_api_actions: bool,
    pub api_action_ids: Vec<i64>,
}

/// Parses a role form: `permission` codes, `actions_mode` (`all`/`selected`) and `action` codes.
pub fn parse(
    conn: &mut PgConnection,
    name: &str,
    description: &str,
    permissions: &[String],
    actions_mode: &str,
    actions: &[String],
) -> Result<RoleInput, AppError> {
    let mut errors = FieldErrors::new();
    let name = errors.take("name", clean_line(name, 1, 60, "name"));
    let description = errors.take("description", clean_text(description, 500, "description"));
    let mut parsed = Vec::new();
    for code in permissions {
        match Permission::from_code(code) {
            Some(p) if !parsed.contains(&p) => parsed.push(p),
            Some(_) => {}
            None => errors.add("permissions", "Choose permissions from the list."),
        }
    }
    let all = actions_mode == "all";
    let api_action_ids = if all {
        vec![]
    } else {
        let found = ApiAction::find_active_by_codes(conn, actions)?;
        if found.len() != actions.iter().collect::<std::collections::BTreeSet<_>>().len() {
            errors.add("actions", "Some of the chosen actions no longer exist; choose again.");
        }
        found.into_iter().map(|a| a.id).collect()
    };
    let (name, description) = errors.finish(name.zip(description))?;
    Ok(RoleInput { name, description, permissions: parsed, all_api_actions: all, api_action_ids })
}

fn taken(conn: &mut PgConnection, organization_id: i64, name: &str, except: Option<i64>) -> Result<bool, AppError> {
    Ok(Role::list_for_org(conn, organization_id)?
        .iter()
        .any(|r| r.name.eq_ignore_ascii_case(name) && Some(r.id) != except))
}

fn details(input: &RoleInput) -> serde_json::Value {
    json!({
        "permissions": input.permissions.iter().map(|p| p.code()).collect::<Vec<_>>(),
        "api_actions": if input.all_api_actions { json!("all") } else { json!(input.api_action_ids) },
    })
}

pub fn create(
    conn: &mut PgConnection,
    actor: &Actor,
    organization_id: i64,
    input: RoleInput,
) -> Result<Role, AppError> {
    require_admin(conn, actor, organization_id)?;
    if taken(conn, organization_id, &input.name, None)? {
        return Err(crate::error::invalid("name", "A role with this name exists already."));
    }
    let role = Role::insert(conn, organization_id, &input.name, &input.description, &input.permissions)?;
    Role::allow_api_actions(conn, role.id, input.all_api_actions, &input.api_action_ids)?;
    audit::record(
        conn,
        actor,
        Entry::new(AuditAction::RoleCreate)
            .organization(Some(organization_id))
            .target(Target::new("role", role.id, &role.name))
            .details(details(&input)),
    )?;
    Ok(role)
}

pub fn update(
    conn: &mut PgConnection,
    actor: &Actor,
    organization_id: i64,
    role_id: i64,
    input: RoleInput,
) -> Result<Role, AppError> {
    require_admin(conn, actor, organization_id)?;
    Role::find_in_org(conn, organization_id, role_id).optional()?.ok_or(AppError::NotFound)?;
    if taken(conn, organization_id, &input.name, Some(role_id))? {
        return Err(crate::error::invalid("name", "A role with this name exists already."));
    }
    let role = Role::update(conn, role_id, &input.name, &input.description, &input.permissions)?;
    Role::allow_api_actions(conn, role.id, input.all_api_actions, &input.api_action_ids)?;
    audit::record(
        conn,
        actor,
        Entry::new(AuditAction::RoleUpdate)
            .organization(Some(organization_id))
            .target(Target::new("role", role.id, &role.name))
            .details(details(&input)),
    )?;
    Ok(role)
}

pub fn delete(conn: &mut PgConnection, actor: &Actor, organization_id: i64, role_id: i64) -> Result<Role, AppError> {
    require_admin(conn, actor, organization_id)?;
    let role = Role::find_in_org(conn, organization_id, role_id).optional()?.ok_or(AppError::NotFound)?;
    let holders = Role::member_counts(conn, organization_id)?.get(&role.id).copied().unwrap_or(0);
    Role::delete(conn, role.id)?;
    audit::record(
        conn,
        actor,
        Entry::new(AuditAction::RoleDelete)
            .organization(Some(organization_id))
            .target(Target::new("role", role.id, &role.name))
            .details(json!({ "holders": holders })),
    )?;
    Ok(role)
}
