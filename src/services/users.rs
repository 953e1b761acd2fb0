//! Creating web users.

use diesel::PgConnection;

use crate::{
    db::models::{StaffAccount, User, user::NewUser},
    domain::{Email, Permission, text::clean_line},
    error::{AppError, FieldErrors},
    services::{
        Actor,
        actor::ActorKind,
        audit::{self, Entry, Target},
    },
};

/// Input of [`create`]; the password is already hashed (hashing happens off the executor).
#[derive(Debug, Clone)]
pub struct CreateUser {
    pub organization_id: i64,
    pub email: String,
    pub display_name: String,
    pub password_hash: Option<String>,
    pub is_admin: bool,
    pub api_key_access: bool,
}

/// Whether any web user or staff account signs in with `email` (one login form serves both,
/// so an address may belong to one account only).
pub fn email_in_use(conn: &mut PgConnection, email: &Email) -> Result<bool, AppError> {
    Ok(User::find_by_email(conn, email.as_str())?.is_some()
        || StaffAccount::find_by_email(conn, email.as_str())?.is_some())
}

/// Whether `actor` may create users in `organization_id`: the operator, or an administrator
/// or `users.manage` holder of that organization.
fn may_create(conn: &mut PgConnection, actor: &Actor, organization_id: i64) -> Result<bool, AppError> {
    Ok(match &actor.kind {
        ActorKind::System { .. } => true,
        ActorKind::User { id, organization_id: own, .. } if *own == organization_id => {
            let user = User::find_in_org(conn, organization_id, *id)?;
            user.effective_permissions(conn)?.contains(Permission::UsersManage)
        }
        _ => false,
    })
}

/// Creates a web user in `input.organization_id`.
pub fn create(conn: &mut PgConnection, actor: &Actor, input: CreateUser) -> Result<User, AppError> {
    if !may_create(conn, actor, input.organization_id)? {
        return Err(AppError::Forbidden);
    }
    let mut errors = FieldErrors::new();
    let email = errors.take("email", Email::parse(&input.email));
    let display_name = errors.take("display_name", clean_line(&input.display_name, 1, 100, "display name"));
    if let Some(email) = &email
        && email_in_use(conn, email)?
    {
        errors.add("email", "An account with this email address already exists.");
    }
    errors.into_result()?;
    let (email, display_name) = (email.expect("validated"), display_name.expect("validated"));
    let user = User::insert(
        conn,
        &NewUser {
            organization_id: input.organization_id,
            email: email.as_str(),
            display_name: &display_name,
            password_hash: input.password_hash.as_deref(),
            is_admin: input.is_admin,
            api_key_access: input.api_key_access,
        },
    )?;
    audit::record(
        conn,
        actor,
        Entry::new("user.create")
            .organization(Some(user.organization_id))
            .target(Target::new("user", user.id, &user.email))
            .details(serde_json::json!({ "is_admin": user.is_admin, "api_key_access": user.api_key_access })),
    )?;
    Ok(user)
}
