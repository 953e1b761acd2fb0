//! `keyward create-key`: a personal key for a user, and `keyward create-management-token`: a
//! token of the management API, each printed alone on stdout so scripts can capture it
//! (`KEY=$(keyward create-key …)`); everything else goes to stderr.

use anyhow::{anyhow, bail};
use diesel::{Connection, OptionalExtension, PgConnection};

use crate::{
    config::Config,
    db::{
        self,
        models::{ManagementToken, Organization, User},
    },
    error::AppError,
    keys::{Environment, GeneratedToken, KeyHasher},
    services::{
        Actor,
        keys::{
            ActionChoice, ActionCode, Created, ExpiryChoice, KeyInput, KeyName, NewKeyOwner, NewKeyRequest, lifecycle,
        },
    },
};

use super::{DatabaseHandle, refused};

/// The arguments of `create-key`.
#[derive(Debug)]
pub struct CreateKeyArgs {
    pub org: String,
    pub owner: String,
    pub name: String,
    pub actions: Option<Vec<String>>,
    pub expires_in_days: Option<u32>,
    pub test: bool,
}

pub fn create_key(config: &Config, args: CreateKeyArgs) -> anyhow::Result<()> {
    let secret = config.resolve_secret()?;
    let handle = DatabaseHandle::open(config)?;
    handle.migrate()?;
    let mut conn = db::connect(&handle.url)?;
    let hasher = KeyHasher::new(secret.derive().key_pepper);
    let name = KeyName::parse(&args.name).map_err(|e| anyhow!("invalid --name: {e}"))?;
    let actions = match &args.actions {
        None => ActionChoice::OwnersDefault,
        Some(codes) => ActionChoice::Only(
            codes
                .iter()
                .filter(|c| !c.trim().is_empty())
                .map(|c| ActionCode::parse(c))
                .collect::<Result<_, _>>()
                .map_err(|e| anyhow!("invalid --actions: {e}"))?,
        ),
    };
    let expiry = args.expires_in_days.map_or(ExpiryChoice::PolicyDefault, ExpiryChoice::InDays);
    let environment = if args.test { Environment::Test } else { Environment::Live };
    let actor = Actor::system("create-key");
    let created = conn
        .transaction(|conn| {
            let organization = Organization::find_by_slug(conn, &args.org)
                .optional()?
                .ok_or_else(|| AppError::BadRequest(format!("there is no organization with slug {:?}", args.org)))?;
            let email = args.owner.trim().to_lowercase();
            let owner_user = User::find_by_email(conn, &email)?
                .filter(|u| u.organization_id == organization.id)
                .ok_or_else(|| AppError::BadRequest(format!("there is no user {email} in {}", organization.slug)))?;
            let owner = NewKeyOwner::Personal { user_id: owner_user.id, organization_id: organization.id };
            // The key service settles the rest as for the pages: the owner's default actions,
            // unknown actions, the key policy.
            let input = KeyInput { actions, expiry, ..KeyInput::default() };
            let request = NewKeyRequest { owner, name: name.clone(), environment, input, form_token: None };
            lifecycle::create(conn, &actor, &hasher, request)
        })
        .map_err(refused)?;
    match created {
        Created::New { key, secret } => {
            eprintln!("Created key {} ({}) for {}.", key.name, key.masked(), args.owner);
            println!("{}", secret.expose());
            Ok(())
        }
        Created::Replayed(_) => bail!("the key was not created"),
    }
}

/// Whose token `create-management-token` makes.
#[derive(Debug)]
pub enum TokenFor {
    /// The organization with this slug.
    Organization(String),
    /// The service provider with this id.
    Provider(i64),
}

/// The arguments of `create-management-token`.
#[derive(Debug)]
pub struct CreateTokenArgs {
    pub holder: TokenFor,
    pub name: String,
    pub scopes: Vec<String>,
    pub expires_in_days: Option<u32>,
    pub creator: Option<String>,
}

pub fn create_management_token(config: &Config, args: CreateTokenArgs) -> anyhow::Result<()> {
    use crate::{
        domain::TokenScopes,
        services::management_tokens::{self, NewToken},
    };
    let secret = config.resolve_secret()?;
    let handle = DatabaseHandle::open(config)?;
    handle.migrate()?;
    let mut conn = db::connect(&handle.url)?;
    let hasher = KeyHasher::new(secret.derive().key_pepper);
    let name = KeyName::parse(&args.name).map_err(|e| anyhow!("invalid --name: {e}"))?;
    let scopes =
        TokenScopes::parse(args.scopes.iter().map(String::as_str)).map_err(|e| anyhow!("invalid --scopes: {e}"))?;
    let lifetime_days = management_tokens::parse_lifetime(args.expires_in_days)
        .map_err(|e| anyhow!("invalid --expires-in-days: {e}"))?;
    let actor = Actor::system("create-management-token");
    let new = NewToken { name, scopes, cidrs: Vec::new(), lifetime_days };
    let (token, generated, creator) = conn
        .transaction(|conn| match &args.holder {
            TokenFor::Organization(slug) => {
                organization_token(conn, &actor, &hasher, slug, args.creator.as_deref(), new)
            }
            TokenFor::Provider(id) => provider_token(conn, &actor, &hasher, *id, args.creator.as_deref(), new),
        })
        .map_err(refused)?;
    eprintln!(
        "Created management token {} ({}) acting as {creator}, scopes {}; it expires {}.",
        token.name,
        token.masked(),
        token.scope_codes().join(","),
        token.expires_at.map(|at| at.to_rfc3339()).unwrap_or_default()
    );
    println!("{}", generated.expose());
    Ok(())
}

/// A new token, its secret, and the email of the account it acts as.
type IssuedToken = (ManagementToken, GeneratedToken, String);

/// A token of organization `slug` acting as `creator` (default: its first active administrator).
fn organization_token(
    conn: &mut PgConnection,
    actor: &Actor,
    hasher: &KeyHasher,
    slug: &str,
    creator: Option<&str>,
    new: crate::services::management_tokens::NewToken,
) -> Result<IssuedToken, AppError> {
    let organization = Organization::find_by_slug(conn, slug)
        .optional()?
        .ok_or_else(|| AppError::BadRequest(format!("there is no organization with slug {slug:?}")))?;
    let creator = match creator {
        Some(email) => {
            let email = email.trim().to_lowercase();
            User::find_by_email(conn, &email)?
                .filter(|u| u.organization_id == organization.id)
                .ok_or_else(|| AppError::BadRequest(format!("there is no user {email} in {}", organization.slug)))?
        }
        None => User::list_for_org(conn, organization.id)?
            .into_iter()
            .filter(|u| u.is_admin && u.active)
            .min_by_key(|u| (u.created_at, u.id))
            .ok_or_else(|| {
                AppError::BadRequest(format!("{} has no active administrator to act as", organization.slug))
            })?,
    };
    let (token, generated) =
        crate::services::management_tokens::create(conn, actor, hasher, organization.id, creator.id, new)?;
    Ok((token, generated, creator.email))
}

/// A token of service provider `id` acting as staff account `creator` (default: the first
/// active one).
fn provider_token(
    conn: &mut PgConnection,
    actor: &Actor,
    hasher: &KeyHasher,
    id: i64,
    creator: Option<&str>,
    new: crate::services::management_tokens::NewToken,
) -> Result<IssuedToken, AppError> {
    use crate::db::models::StaffAccount;
    let staff = match creator {
        Some(email) => {
            let email = email.trim().to_lowercase();
            StaffAccount::find_by_email(conn, &email)?
                .ok_or_else(|| AppError::BadRequest(format!("there is no staff account {email}")))?
        }
        None => StaffAccount::list_all(conn)?
            .into_iter()
            .filter(|s| s.active)
            .min_by_key(|s| (s.created_at, s.id))
            .ok_or_else(|| AppError::BadRequest("there is no active staff account to act as".into()))?,
    };
    let (token, generated) =
        crate::services::management_tokens::create_for_provider(conn, actor, hasher, id, staff.id, new)?;
    Ok((token, generated, staff.email))
}
