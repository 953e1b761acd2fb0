//! `keyward create-key`: a personal key for a user, printed alone on stdout so scripts can
//! capture it (`KEY=$(keyward create-key …)`); everything else goes to stderr.

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
