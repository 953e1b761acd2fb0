//! `create-staff`, `create-user` and `create-org`.

use std::io::IsTerminal;

use diesel::{Connection, OptionalExtension};

use crate::{
    auth::password,
    config::Config,
    db::{self, models::Organization},
    domain::NewPassword,
    error::AppError,
    services::{
        Actor,
        organizations::{self, CreateOrganization},
        staff,
        users::{self, CreateUser},
    },
};

use super::DatabaseHandle;

/// A service error as one line for the terminal.
fn describe(error: AppError) -> String {
    match error {
        AppError::Invalid(errors) => errors.iter().map(|(_, m)| m.to_string()).collect::<Vec<_>>().join(" "),
        AppError::Conflict(message) | AppError::BadRequest(message) => message,
        other => other.to_string(),
    }
}

/// The new account's password: `KEYWARD_PASSWORD`, or asked twice at the terminal.
fn read_password() -> Result<NewPassword, String> {
    let password = match std::env::var("KEYWARD_PASSWORD") {
        Ok(value) => value,
        Err(_) if std::io::stdin().is_terminal() => {
            let first =
                rpassword::prompt_password("Password: ").map_err(|e| format!("cannot read the password: {e}"))?;
            let second =
                rpassword::prompt_password("Password again: ").map_err(|e| format!("cannot read the password: {e}"))?;
            if first != second {
                return Err("the passwords do not match".into());
            }
            first
        }
        Err(_) => {
            return Err("set KEYWARD_PASSWORD or run the command in a terminal to be asked for the password".into());
        }
    };
    NewPassword::parse(&password).map_err(|e| format!("password refused: {e}"))
}

fn default_name(email: &str, name: Option<String>) -> String {
    name.unwrap_or_else(|| email.split('@').next().unwrap_or(email).to_string())
}

fn open(config: &Config) -> Result<(DatabaseHandle, diesel::PgConnection), String> {
    let handle = DatabaseHandle::open(config)?;
    handle.migrate()?;
    let conn = db::connect(&handle.url)?;
    Ok((handle, conn))
}

pub fn create_staff(config: &Config, email: &str, name: Option<String>) -> Result<(), String> {
    let password = read_password()?;
    let (_handle, mut conn) = open(config)?;
    let hash = password::hash_now(&password);
    let name = default_name(email, name);
    let staff = conn
        .transaction(|conn| staff::create(conn, &Actor::system("create-staff"), email, &name, Some(&hash)))
        .map_err(describe)?;
    println!("Created staff account {} (id {}).", staff.email, staff.id);
    Ok(())
}

pub fn create_user(
    config: &Config,
    org: &str,
    email: &str,
    name: Option<String>,
    admin: bool,
    api_key_access: bool,
) -> Result<(), String> {
    let password = read_password()?;
    let (_handle, mut conn) = open(config)?;
    let organization = Organization::find_by_slug(&mut conn, org)
        .optional()
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("there is no organization with slug {org:?}"))?;
    let hash = password::hash_now(&password);
    let input = CreateUser {
        organization_id: organization.id,
        email: email.into(),
        display_name: default_name(email, name),
        password_hash: Some(hash),
        is_admin: admin,
        api_key_access,
        role_ids: vec![],
    };
    let user = conn.transaction(|conn| users::create(conn, &Actor::system("create-user"), input)).map_err(describe)?;
    println!("Created user {} in {} (id {}).", user.email, organization.slug, user.id);
    Ok(())
}

pub fn create_org(config: &Config, name: String, slug: Option<String>, provider: Option<i64>) -> Result<(), String> {
    let (_handle, mut conn) = open(config)?;
    let input = CreateOrganization { name, slug, service_provider_id: provider };
    let organization =
        conn.transaction(|conn| organizations::create(conn, &Actor::system("create-org"), input)).map_err(describe)?;
    println!("Created organization {} (slug {}, id {}).", organization.name, organization.slug, organization.id);
    Ok(())
}
