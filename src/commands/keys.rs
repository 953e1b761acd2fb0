//! `keyward create-key`: a personal key for a user, printed alone on stdout so scripts can
//! capture it (`KEY=$(keyward create-key …)`); everything else goes to stderr.

use anyhow::{anyhow, bail};
use chrono::{Duration, Utc};
use diesel::{Connection, OptionalExtension};

use crate::{
    config::Config,
    db::{
        self,
        models::{ApiAction, Organization, User, user::ActionCeiling},
    },
    error::AppError,
    keys::{Environment, KeyHasher},
    services::{
        Actor,
        keys::{
            ActionScope, AssetScope, Created, KeySettings, NewKeyOwner, NewKeyRequest, OwnerContext, access,
            input::parse_name,
            lifecycle::{self, owner_context, policy_of},
            policy::end_of_day,
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
    let name = parse_name(&args.name).map_err(|e| anyhow!("invalid --name: {e}"))?;
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
            let owner_kind = NewKeyOwner::Personal { user_id: owner_user.id, organization_id: organization.id };
            let owner = owner_context(conn, owner_kind)?;
            access::check_create(&actor, None, &owner)?;
            let policy = policy_of(&owner);
            let actions = match &args.actions {
                None => match &owner {
                    OwnerContext::User { owner, .. } => match &owner.ceiling {
                        ActionCeiling::All => ActionScope::All,
                        ActionCeiling::Only(ids) if ids.is_empty() => {
                            return Err(AppError::BadRequest(format!("the roles of {email} allow no API actions")));
                        }
                        ActionCeiling::Only(ids) => ActionScope::Only(
                            ApiAction::list_active(conn)?.into_iter().filter(|a| ids.contains(&a.id)).collect(),
                        ),
                    },
                    _ => ActionScope::All,
                },
                Some(codes) => {
                    let codes: Vec<String> =
                        codes.iter().map(|c| c.trim().to_string()).filter(|c| !c.is_empty()).collect();
                    let found = ApiAction::find_active_by_codes(conn, &codes)?;
                    if let Some(unknown) = codes.iter().find(|c| !found.iter().any(|a| &a.code == *c)) {
                        return Err(AppError::BadRequest(format!("unknown API action {unknown:?}")));
                    }
                    ActionScope::Only(found)
                }
            };
            let days = args.expires_in_days.map(i64::from).unwrap_or(i64::from(policy.default_lifetime_days));
            if days < 1 {
                return Err(AppError::BadRequest("--expires-in-days must be at least 1".into()));
            }
            // The policy's maximum is the key service's to enforce; this only keeps the
            // date representable.
            let expires_on = Utc::now()
                .date_naive()
                .checked_add_signed(Duration::days(days))
                .ok_or_else(|| AppError::BadRequest(format!("--expires-in-days {days} is too far away")))?;
            let settings = KeySettings {
                comment: String::new(),
                actions,
                assets: AssetScope::All,
                cidrs: vec![],
                expires_at: Some(end_of_day(expires_on)),
                proxy_user_id: None,
            };
            let environment = if args.test { Environment::Test } else { Environment::Live };
            let request =
                NewKeyRequest { owner: owner_kind, name: name.clone(), environment, settings, form_token: None };
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
