//! `keyward create-key`: a personal key for a user, and `keyward create-management-token`: a
//! token of the management API, each printed alone on stdout so scripts can capture it
//! (`KEY=$(keyward create-key …)`); everything else goes to stderr.

use anyhow::{anyhow, bail};
use diesel::{Connection, OptionalExtension};

use crate::{
    config::Config,
    db::{
        self,
        models::{Organization, User},
    },
    error::AppError,
    keys::{Environment, KeyHasher},
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

/// The arguments of `create-management-token`.
#[derive(Debug)]
pub struct CreateTokenArgs {
    pub org: String,
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
    let (token, generated, creator) = conn
        .transaction(|conn| {
            let organization = Organization::find_by_slug(conn, &args.org)
                .optional()?
                .ok_or_else(|| AppError::BadRequest(format!("there is no organization with slug {:?}", args.org)))?;
            let creator = match &args.creator {
                Some(email) => {
                    let email = email.trim().to_lowercase();
                    User::find_by_email(conn, &email)?.filter(|u| u.organization_id == organization.id).ok_or_else(
                        || AppError::BadRequest(format!("there is no user {email} in {}", organization.slug)),
                    )?
                }
                None => User::list_for_org(conn, organization.id)?
                    .into_iter()
                    .filter(|u| u.is_admin && u.active)
                    .min_by_key(|u| (u.created_at, u.id))
                    .ok_or_else(|| {
                        AppError::BadRequest(format!("{} has no active administrator to act as", organization.slug))
                    })?,
            };
            let new = NewToken { name: name.clone(), scopes, cidrs: Vec::new(), lifetime_days };
            let (token, generated) =
                management_tokens::create(conn, &actor, &hasher, organization.id, creator.id, new)?;
            Ok((token, generated, creator.email))
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
