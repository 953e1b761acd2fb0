//! `create-staff`, `create-user`, `create-org` and `reset-second-factor`.

use std::io::IsTerminal;

use anyhow::{Context, anyhow, bail};
use diesel::{Connection, OptionalExtension};

use crate::{
    auth::password,
    config::Config,
    db::{self, models::Organization},
    domain::NewPassword,
    services::{
        Actor,
        organizations::{self, CreateOrganization},
        staff,
        users::{self, CreateUser},
    },
};

use super::{DatabaseHandle, refused};

/// The new account's password: `KEYWARD_PASSWORD` (or `--password`), or asked twice at the
/// terminal.
fn read_password(given: Option<String>) -> anyhow::Result<NewPassword> {
    let password = match given {
        Some(value) => value,
        None if std::io::stdin().is_terminal() => {
            let first = rpassword::prompt_password("Password: ").context("cannot read the password")?;
            let second = rpassword::prompt_password("Password again: ").context("cannot read the password")?;
            if first != second {
                bail!("the passwords do not match");
            }
            first
        }
        None => bail!("set KEYWARD_PASSWORD or run the command in a terminal to be asked for the password"),
    };
    NewPassword::parse(&password).map_err(|e| anyhow!("password refused: {e}"))
}

fn default_name(email: &str, name: Option<String>) -> String {
    name.unwrap_or_else(|| email.split('@').next().unwrap_or(email).to_string())
}

fn open(config: &Config) -> anyhow::Result<(DatabaseHandle, diesel::PgConnection)> {
    let handle = DatabaseHandle::open(config)?;
    handle.migrate()?;
    let conn = db::connect(&handle.url)?;
    Ok((handle, conn))
}

pub fn create_staff(
    config: &Config,
    email: &str,
    name: Option<String>,
    password: Option<String>,
) -> anyhow::Result<()> {
    let password = read_password(password)?;
    let (_handle, mut conn) = open(config)?;
    let hash = password::hash_now(&password);
    let name = default_name(email, name);
    let staff = conn
        .transaction(|conn| staff::create(conn, &Actor::system("create-staff"), email, &name, Some(&hash)))
        .map_err(refused)?;
    println!("Created staff account {} (id {}).", staff.email, staff.id);
    println!(
        "Staff sign in with a second factor: at the first sign-in, after the password, Keyward offers to set up \
         an authenticator app (a QR code to scan, then its code) or a passkey (at the public URL, \
         http://localhost:8080 by default), and asks for it at later sign-ins."
    );
    Ok(())
}

/// `reset-second-factor --email E`: the recovery of a staff account or user who lost every
/// second factor (the last administrator, say), recorded as the system actor.
pub fn reset_second_factor(config: &Config, email: &str) -> anyhow::Result<()> {
    use crate::{
        db::models::{StaffAccount, User, second_factor::FactorOwner},
        services::{audit::Target, second_factor},
    };
    let email = email.trim().to_lowercase();
    let (_handle, mut conn) = open(config)?;
    let actor = Actor::system("reset-second-factor");
    let (label, ended) = conn
        .transaction(|conn| {
            if let Some(user) = User::find_by_email(conn, &email)? {
                let target = Target::new("user", user.id, &user.email);
                let ended =
                    second_factor::reset(conn, &actor, FactorOwner::User(user.id), target, Some(user.organization_id))?;
                return Ok(Some((format!("user {}", user.email), ended)));
            }
            if let Some(staff) = StaffAccount::find_by_email(conn, &email)? {
                let target = Target::new("staff", staff.id, &staff.email);
                let ended = second_factor::reset(conn, &actor, FactorOwner::Staff(staff.id), target, None)?;
                return Ok(Some((format!("staff account {}", staff.email), ended)));
            }
            Ok::<_, crate::error::AppError>(None)
        })
        .map_err(refused)?
        .ok_or_else(|| anyhow!("there is no staff account or user with email {email:?}"))?;
    println!(
        "Removed the second factors of {label} and ended {ended} session(s). Its next sign-in asks for the password, then to set up an authenticator app if one is required."
    );
    Ok(())
}

pub fn create_user(
    config: &Config,
    org: &str,
    email: &str,
    name: Option<String>,
    admin: bool,
    api_key_access: bool,
    password: Option<String>,
) -> anyhow::Result<()> {
    let password = read_password(password)?;
    let (_handle, mut conn) = open(config)?;
    let organization = Organization::find_by_slug(&mut conn, org)
        .optional()
        .context("cannot look up the organization")?
        .ok_or_else(|| anyhow!("there is no organization with slug {org:?}"))?;
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
    let user = conn.transaction(|conn| users::create(conn, &Actor::system("create-user"), input)).map_err(refused)?;
    println!("Created user {} in {} (id {}).", user.email, organization.slug, user.id);
    Ok(())
}

pub fn create_org(config: &Config, name: String, slug: Option<String>, provider: Option<i64>) -> anyhow::Result<()> {
    let (_handle, mut conn) = open(config)?;
    let input = CreateOrganization { name, slug, service_provider_id: provider };
    let organization =
        conn.transaction(|conn| organizations::create(conn, &Actor::system("create-org"), input)).map_err(refused)?;
    println!("Created organization {} (slug {}, id {}).", organization.name, organization.slug, organization.id);
    Ok(())
}
