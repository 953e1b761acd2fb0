//! The key operations. Each takes the connection of the caller's transaction, locks the key
//! row (so concurrent changes of one key serialize), checks access, changes it and records
//! the audit event. Secrets are generated here and returned to be shown once; only their
//! keyed hashes are stored, and the audit log never sees either.

use crate::services::audit::AuditAction;
use chrono::Duration;
use diesel::{Connection, PgConnection};
use serde_json::{Value, json};

use crate::{
    db::models::{
        ApiAction, ApiKey,
        api_key::{KeyOwner, KeyScope, KeySettingsChanges, NewApiKey},
        user::ActionCeiling,
    },
    error::{AppError, FieldErrors},
    keys::{Environment, GeneratedKey, KeyHasher},
    services::{
        actor::{Actor, ActorKind},
        audit::{self, Entry, Outcome, Target},
        keys::{
            access::{self, KeyOp, OwnerContext, UserContext},
            ceiling::{self, Issue, KeyReach},
            input::{ActionChoice, ActionCode, ActionScope, AssetScope, KeyInput, KeyName, KeySettings},
            policy::{KeyPolicy, is_offered_grace},
            quota,
        },
        notifications::{self, Deactivation, EventType},
    },
};

/// Whose key is being created.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NewKeyOwner {
    Personal { user_id: i64, organization_id: i64 },
    Organization { organization_id: i64 },
    ServiceProvider { service_provider_id: i64 },
}

impl NewKeyOwner {
    /// The scope the new key will be in (where a replayed create form finds it).
    pub fn scope(self) -> KeyScope {
        match self {
            NewKeyOwner::Personal { user_id, organization_id } => KeyScope::OwnedBy { organization_id, user_id },
            NewKeyOwner::Organization { organization_id } => KeyScope::Organization(organization_id),
            NewKeyOwner::ServiceProvider { service_provider_id } => KeyScope::ServiceProvider(service_provider_id),
        }
    }
}

/// An existing key as a page names it: its public id, looked for within the area's scope
/// only, so that another tenant's key is never even read.
#[derive(Debug, Clone, Copy)]
pub struct KeyRef<'a> {
    pub scope: KeyScope,
    pub public_id: &'a str,
}

/// A request to create a key: what the pages, the operator's command and the management API
/// ask for, in the same typed form.
#[derive(Debug, Clone)]
pub struct NewKeyRequest {
    pub owner: NewKeyOwner,
    pub name: KeyName,
    pub environment: Environment,
    pub input: KeyInput,
    /// Idempotency token of the submitted form.
    pub form_token: Option<String>,
}

/// The result of a create.
#[derive(Debug)]
pub enum Created {
    /// A new key and its secret, to be shown once.
    New { key: ApiKey, secret: GeneratedKey },
    /// The form was submitted before: the key exists, its secret is not shown again.
    Replayed(ApiKey),
}

/// The result of a re-key.
#[derive(Debug)]
pub enum Rekeyed {
    New { key: ApiKey, secret: GeneratedKey },
    Replayed(ApiKey),
}

fn target(key: &ApiKey) -> Target {
    Target::new("api_key", &key.public_id, &key.name)
}

fn entry(op_action: AuditAction, key: &ApiKey) -> Entry {
    Entry::new(op_action)
        .organization(key.organization_id)
        .service_provider(key.owner_service_provider_id)
        .target(target(key))
}

/// Loads the owner context of a key about to be created.
pub fn owner_context(conn: &mut PgConnection, owner: NewKeyOwner) -> Result<OwnerContext, AppError> {
    use crate::db::models::Organization;
    Ok(match owner {
        NewKeyOwner::Personal { user_id, organization_id } => OwnerContext::of_user(conn, organization_id, user_id)?,
        NewKeyOwner::Organization { organization_id } => {
            OwnerContext::Organization(Organization::find(conn, organization_id)?)
        }
        NewKeyOwner::ServiceProvider { service_provider_id } => OwnerContext::ServiceProvider(service_provider_id),
    })
}

/// The policy a key of `owner` follows.
pub fn policy_of(owner: &OwnerContext) -> KeyPolicy {
    match owner.organization() {
        Some(org) => KeyPolicy::of_organization(org),
        None => KeyPolicy::platform_default(),
    }
}

/// Refuses an expiry the owner's policy does not allow, as a field error of the form.
fn check_expiry(actor: &Actor, owner: &OwnerContext, settings: &KeySettings) -> Result<(), AppError> {
    policy_of(owner).check_expiry(settings.expires_at, actor.now).map_err(|message| {
        let mut errors = FieldErrors::new();
        errors.add("expires_on", message);
        AppError::Invalid(errors)
    })
}

/// Refuses actions beyond what the granting user (and a personal key's owner) may grant.
/// Actions the key already has may stay, so editing someone else's key never forces a strip.
fn check_actions(
    user: Option<&UserContext>,
    owner: &OwnerContext,
    requested: &ActionScope,
    existing: Option<(&ApiKey, &[i64])>,
) -> Result<(), AppError> {
    let ceilings = access::granting_ceilings(user, owner);
    let message = match requested {
        ActionScope::All => {
            let already_all = existing.is_some_and(|(key, _)| key.all_actions);
            (!already_all && ceilings.iter().any(|c| !c.is_all()))
                .then(|| "You may not grant all actions: choose from the actions your roles allow.".to_string())
        }
        ActionScope::Only(actions) => {
            let beyond: Vec<&str> = actions
                .iter()
                .filter(|a| !existing.is_some_and(|(key, ids)| key.all_actions || ids.contains(&a.id)))
                .filter(|a| ceilings.iter().any(|c| !c.allows(a.id)))
                .map(|a| a.code.as_str())
                .collect();
            (!beyond.is_empty()).then(|| format!("Not allowed by your roles: {}.", beyond.join(", ")))
        }
    };
    match message {
        Some(message) => {
            let mut errors = FieldErrors::new();
            errors.add("actions", message);
            Err(AppError::Invalid(errors))
        }
        None => Ok(()),
    }
}

fn scope_details(settings: &KeySettings) -> Value {
    json!({
        "actions": match &settings.actions {
            ActionScope::All => json!("all"),
            ActionScope::Only(actions) => json!(actions.iter().map(|a| a.code.as_str()).collect::<Vec<_>>()),
        },
        "assets": match &settings.assets {
            AssetScope::All => json!("all"),
            AssetScope::Only { asset_ids, group_ids } => json!({ "asset_ids": asset_ids, "group_ids": group_ids }),
        },
        "allowed_ips": settings.cidrs.iter().map(|c| c.to_string()).collect::<Vec<_>>(),
        "expires_at": settings.expires_at,
        "proxy_user_id": settings.proxy_user_id,
    })
}

fn write_scopes(conn: &mut PgConnection, key: &ApiKey, settings: &KeySettings) -> Result<(), AppError> {
    let action_ids: Vec<i64> = match &settings.actions {
        ActionScope::All => vec![],
        ActionScope::Only(actions) => actions.iter().map(|a| a.id).collect(),
    };
    ApiKey::set_actions(conn, key.id, &action_ids)?;
    if let Some(organization_id) = key.organization_id {
        let (assets, groups) = match &settings.assets {
            AssetScope::All => (vec![], vec![]),
            AssetScope::Only { asset_ids, group_ids } => (asset_ids.clone(), group_ids.clone()),
        };
        ApiKey::set_assets(conn, key.id, organization_id, &assets, &groups)?;
    }
    Ok(())
}

/// The field errors the key service would raise for `input` for a key of `owner` (none if it
/// is fine): a form whose other fields did not parse can still show every problem at once.
pub fn input_errors(
    conn: &mut PgConnection,
    actor: &Actor,
    owner: &OwnerContext,
    input: KeyInput,
) -> Result<FieldErrors, AppError> {
    let today = actor.now.date_naive();
    match KeySettings::resolve(conn, input, owner, &policy_of(owner), today) {
        Ok(_) => Ok(FieldErrors::new()),
        Err(AppError::Invalid(errors)) => Ok(errors),
        Err(e) => Err(e),
    }
}

/// Like [`input_errors`] for a new key, whose unchosen fields take the creator's defaults.
pub fn new_input_errors(
    conn: &mut PgConnection,
    actor: &Actor,
    owner: &OwnerContext,
    input: KeyInput,
) -> Result<FieldErrors, AppError> {
    let user = access::user_context(conn, actor)?;
    match resolve_new(conn, actor, user.as_ref(), owner, input) {
        Ok(_) => Ok(FieldErrors::new()),
        Err(AppError::Invalid(errors)) => Ok(errors),
        Err(e) => Err(e),
    }
}

/// The defaults every way of creating a key shares, so that a name alone creates a working
/// key: actions left unchosen are all that the creating web user (and a personal key's owner)
/// may grant — a list for someone whose roles restrict them — and an organization key's calls
/// are attributed to the web user creating it unless another proxy is chosen.
fn creators_defaults(
    conn: &mut PgConnection,
    user: Option<&UserContext>,
    owner: &OwnerContext,
    mut input: KeyInput,
) -> Result<(KeyInput, FieldErrors), AppError> {
    let mut errors = FieldErrors::new();
    let Some(creator) = user else { return Ok((input, errors)) };
    if input.actions == ActionChoice::OwnersDefault
        && let ActionCeiling::Only(ids) = ceiling::grantable(user, owner)
    {
        input.actions = if ids.is_empty() {
            errors.add(
                "actions",
                "Your roles allow no API actions, so a key could do nothing. Ask an administrator for a role \
                 with the actions your integration needs.",
            );
            // A stand-in: an input with errors is never acted on.
            ActionChoice::All
        } else {
            let codes = ApiAction::list_active(conn)?
                .into_iter()
                .filter(|a| ids.contains(&a.id))
                .filter_map(|a| ActionCode::parse(&a.code).ok())
                .collect();
            ActionChoice::Only(codes)
        };
    }
    if matches!(owner, OwnerContext::Organization(_)) && input.proxy_user_id.is_none() {
        input.proxy_user_id = Some(creator.user.id);
    }
    Ok((input, errors))
}

/// [`KeySettings::resolve`] after the creator's defaults, every problem a field error.
fn resolve_new(
    conn: &mut PgConnection,
    actor: &Actor,
    user: Option<&UserContext>,
    owner: &OwnerContext,
    input: KeyInput,
) -> Result<KeySettings, AppError> {
    let (input, mut errors) = creators_defaults(conn, user, owner, input)?;
    match KeySettings::resolve(conn, input, owner, &policy_of(owner), actor.now.date_naive()) {
        Ok(settings) if errors.is_empty() => Ok(settings),
        Ok(_) => Err(AppError::Invalid(errors)),
        Err(AppError::Invalid(more)) => {
            errors.extend(more);
            Err(AppError::Invalid(errors))
        }
        Err(e) => Err(e),
    }
}

/// Creates a key and returns its secret (to be shown once).
pub fn create(
    conn: &mut PgConnection,
    actor: &Actor,
    hasher: &KeyHasher,
    request: NewKeyRequest,
) -> Result<Created, AppError> {
    let user = access::user_context(conn, actor)?;
    if let Some(token) = &request.form_token
        && let Some(existing) = ApiKey::find_by_create_token(conn, request.owner.scope(), token)?
    {
        access::check(actor, user.as_ref(), &existing, KeyOp::View)?;
        return Ok(Created::Replayed(existing));
    }
    let owner = owner_context(conn, request.owner)?;
    access::check_create(actor, user.as_ref(), &owner)?;
    let settings = &resolve_new(conn, actor, user.as_ref(), &owner, request.input)?;
    check_actions(user.as_ref(), &owner, &settings.actions, None)?;
    check_expiry(actor, &owner, settings)?;
    let reach = KeyReach::of_settings(settings);
    ceiling::check_issue(conn, actor, user.as_ref(), &owner, &reach, Issue::Create)?;
    if let Some(organization) = owner.organization() {
        quota::check(conn, actor, organization)?;
    }

    let (organization_id, owner_user_id, owner_organization_id, owner_service_provider_id) = match request.owner {
        NewKeyOwner::Personal { user_id, organization_id } => (Some(organization_id), Some(user_id), None, None),
        NewKeyOwner::Organization { organization_id } => (Some(organization_id), None, Some(organization_id), None),
        NewKeyOwner::ServiceProvider { service_provider_id } => (None, None, None, Some(service_provider_id)),
    };
    let (created_by_user_id, created_by_staff_id) = match (&actor.kind, actor.acting_user()) {
        (_, Some(acting)) => (Some(acting.id), None),
        (ActorKind::Staff { id, .. } | ActorKind::ProviderToken { staff_id: id, .. }, None) => (None, Some(*id)),
        _ => (None, None),
    };
    // A public id collision (about 47 random bits) is retried inside a savepoint.
    let mut attempt = 0;
    let (key, secret) = loop {
        attempt += 1;
        let secret = GeneratedKey::generate(request.environment);
        let hash = hasher.hash(secret.expose());
        let last4 = secret.last4();
        let inserted = conn.transaction(|conn| {
            ApiKey::insert(
                conn,
                &NewApiKey {
                    public_id: &secret.public_id,
                    environment: request.environment.code(),
                    organization_id,
                    owner_user_id,
                    owner_organization_id,
                    owner_service_provider_id,
                    name: request.name.as_str(),
                    comment: &settings.comment,
                    all_actions: settings.actions == ActionScope::All,
                    all_assets: settings.assets == AssetScope::All,
                    allowed_cidrs: settings.cidrs.iter().copied().map(Some).collect(),
                    expires_at: settings.expires_at,
                    proxy_user_id: settings.proxy_user_id,
                    secret_hash: &hash,
                    secret_last4: &last4,
                    created_by_user_id,
                    created_by_staff_id,
                    create_token: request.form_token.as_deref(),
                },
            )
        });
        match inserted {
            Ok(key) => break (key, secret),
            Err(diesel::result::Error::DatabaseError(diesel::result::DatabaseErrorKind::UniqueViolation, info))
                if attempt < 5 && info.constraint_name() == Some("api_keys_public_id_key") =>
            {
                continue;
            }
            // The same form was submitted twice at once and the other submission won: this
            // one is its replay (the unique index waited for the other to commit).
            Err(diesel::result::Error::DatabaseError(diesel::result::DatabaseErrorKind::UniqueViolation, info))
                if info.constraint_name() == Some("api_keys_create_token_key") =>
            {
                let token = request.form_token.as_deref().unwrap_or_default();
                let existing =
                    ApiKey::find_by_create_token(conn, request.owner.scope(), token)?.ok_or(AppError::NotFound)?;
                access::check(actor, user.as_ref(), &existing, KeyOp::View)?;
                return Ok(Created::Replayed(existing));
            }
            Err(e) => return Err(e.into()),
        }
    };
    write_scopes(conn, &key, settings)?;
    let mut details = scope_details(settings);
    details["owner"] = json!({ "type": key.owner().kind(), "id": key.owner().id() });
    details["environment"] = json!(key.environment);
    audit::record(conn, actor, entry(AuditAction::KeyCreate, &key).details(details))?;
    notifications::emit_key(conn, actor, EventType::KeyCreated, &key, json!({}))?;
    Ok(Created::New { key, secret })
}

/// The key, if `actor` may `op` it, without locking it (pages that only show a key).
pub fn visible(conn: &mut PgConnection, actor: &Actor, at: KeyRef<'_>, op: KeyOp) -> Result<ApiKey, AppError> {
    let user = access::user_context(conn, actor)?;
    let key = ApiKey::find_in(conn, at.scope, at.public_id)?.ok_or(AppError::NotFound)?;
    access::check(actor, user.as_ref(), &key, op)?;
    Ok(key)
}

/// Whether `actor` may obtain a secret of `key` in the way `issue` says (re-key, reactivate),
/// for the buttons a page offers; the operation itself checks again.
pub fn may_issue(conn: &mut PgConnection, actor: &Actor, key: &ApiKey, issue: Issue) -> Result<bool, AppError> {
    let user = access::user_context(conn, actor)?;
    let owner = OwnerContext::of_key(conn, key)?;
    let reach = KeyReach::of_key(conn, key)?;
    match ceiling::check_issue(conn, actor, user.as_ref(), &owner, &reach, issue) {
        Ok(()) => Ok(true),
        Err(AppError::Forbidden) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Locks the key and checks `op`; a missing key is `NotFound`.
pub fn lock(
    conn: &mut PgConnection,
    actor: &Actor,
    at: KeyRef<'_>,
    op: KeyOp,
) -> Result<(ApiKey, Option<UserContext>), AppError> {
    let user = access::user_context(conn, actor)?;
    let key = ApiKey::lock_in(conn, at.scope, at.public_id)?.ok_or(AppError::NotFound)?;
    access::check(actor, user.as_ref(), &key, op)?;
    Ok((key, user))
}

/// Renames a key (its function is unaffected).
pub fn rename(conn: &mut PgConnection, actor: &Actor, at: KeyRef<'_>, name: KeyName) -> Result<ApiKey, AppError> {
    let (key, _) = lock(conn, actor, at, KeyOp::Rename)?;
    let name = name.as_str();
    if name == key.name {
        return Ok(key);
    }
    let renamed = ApiKey::rename(conn, key.id, name)?;
    audit::record(
        conn,
        actor,
        entry(AuditAction::KeyRename, &renamed).details(json!({ "from": key.name, "to": renamed.name })),
    )?;
    Ok(renamed)
}

/// Changes a key's settings (comment, scopes, IP ranges, expiry, proxy); not of an expired key.
/// `input` is settled for the key's owner once the key is locked and its access checked (one
/// lock per edit).
pub fn update(conn: &mut PgConnection, actor: &Actor, at: KeyRef<'_>, input: KeyInput) -> Result<ApiKey, AppError> {
    let (key, user) = lock(conn, actor, at, KeyOp::Edit)?;
    // A later expiry date would bring an expired key back to life: expired keys stay
    // expired (they can still be renamed, looked at and deleted).
    if key.is_expired_at(actor.now) {
        return Err(AppError::Conflict(
            "This key has expired and stays expired; create a new key instead of editing this one.".into(),
        ));
    }
    let owner = OwnerContext::of_key(conn, &key)?;
    let settings = KeySettings::resolve(conn, input, &owner, &policy_of(&owner), actor.now.date_naive())?;
    let existing_actions = ApiKey::action_ids(conn, key.id)?;
    check_actions(user.as_ref(), &owner, &settings.actions, Some((&key, &existing_actions)))?;
    check_expiry(actor, &owner, &settings)?;
    let before = KeyReach::of_key(conn, &key)?;
    ceiling::check_edit(conn, actor, user.as_ref(), &owner, &before, &KeyReach::of_settings(&settings))?;
    let updated = ApiKey::update_settings(
        conn,
        key.id,
        &KeySettingsChanges {
            comment: settings.comment.clone(),
            all_actions: settings.actions == ActionScope::All,
            all_assets: settings.assets == AssetScope::All,
            allowed_cidrs: settings.cidrs.iter().copied().map(Some).collect(),
            expires_at: settings.expires_at,
            proxy_user_id: settings.proxy_user_id,
        },
    )?;
    write_scopes(conn, &updated, &settings)?;
    audit::record(conn, actor, entry(AuditAction::KeyUpdate, &updated).details(scope_details(&settings)))?;
    Ok(updated)
}

/// The deactivation reason of a key whose secret was reported as leaked. Such a key is not
/// reactivated with that secret: it must be re-keyed first (which ends every old secret).
pub const LEAKED: &str = "Reported as leaked";

/// What a leaked key says after its re-key (it can then be reactivated).
pub const LEAK_REKEYED: &str = "Reported as leaked; re-keyed since";

/// Whether `key`'s secret was reported as leaked and it has not been re-keyed since.
pub fn is_leaked(key: &ApiKey) -> bool {
    !key.active && key.deactivation_reason.as_deref() == Some(LEAKED)
}

/// Deactivates or reactivates a key; effective at once. Reactivation never extends expiry.
pub fn set_active(
    conn: &mut PgConnection,
    actor: &Actor,
    at: KeyRef<'_>,
    active: bool,
    reason: Option<&str>,
) -> Result<ApiKey, AppError> {
    let op = if active { KeyOp::Reactivate } else { KeyOp::Deactivate };
    if reason.is_some_and(crate::keys::format::looks_like_secret) {
        return Err(AppError::BadRequest("A reason must not contain a key or any other secret.".into()));
    }
    let (key, user) = lock(conn, actor, at, op)?;
    if key.active == active {
        return Ok(key);
    }
    if active && is_leaked(&key) {
        return Err(AppError::Conflict(
            "This key's secret was reported as leaked, so it cannot work again. Re-key it first: that ends every old secret and shows a new one; then reactivate it.".into(),
        ));
    }
    if active {
        let owner = OwnerContext::of_key(conn, &key)?;
        let reach = KeyReach::of_key(conn, &key)?;
        ceiling::check_issue(conn, actor, user.as_ref(), &owner, &reach, Issue::Reactivate)?;
    }
    let changed = ApiKey::set_active(conn, key.id, active, reason)?;
    let details = match reason {
        Some(reason) => json!({ "reason": reason }),
        None => json!({}),
    };
    audit::record(conn, actor, entry(op.audit_action(), &changed).details(details))?;
    if !active {
        notifications::emit_deactivated(conn, actor, &changed, Deactivation::ByPerson, reason)?;
    }
    Ok(changed)
}

/// Gives a key a new secret. The old one keeps working for `grace_minutes` (0: stops now);
/// a previous secret still in grace ends at once. The key's expiry is clamped to the
/// current policy. `token` makes a replayed form a no-op; `seen_version` (the form's view of
/// the secret) turns a re-key that lost a race into a conflict.
pub fn rekey(
    conn: &mut PgConnection,
    actor: &Actor,
    hasher: &KeyHasher,
    at: KeyRef<'_>,
    grace_minutes: i32,
    token: Option<&str>,
    seen_version: Option<&str>,
) -> Result<Rekeyed, AppError> {
    let (key, user) = lock(conn, actor, at, KeyOp::Rekey)?;
    if token.is_some() && key.rekey_token.as_deref() == token {
        return Ok(Rekeyed::Replayed(key));
    }
    // Re-keys of one key serialize on its row lock; one made from a form that showed an
    // older secret lost a race: its author must not silently replace the winner's secret.
    if seen_version.is_some_and(|seen| seen != key.secret_version()) {
        return Err(AppError::Conflict(
            "Someone re-keyed this key a moment ago, and its new secret was shown to them. Open the key again and re-key it if you still need to.".into(),
        ));
    }
    let now = actor.now;
    if key.is_expired_at(now) {
        return Err(AppError::Conflict("This key has expired; create a new key instead of re-keying it.".into()));
    }
    let owner = OwnerContext::of_key(conn, &key)?;
    let reach = KeyReach::of_key(conn, &key)?;
    ceiling::check_issue(conn, actor, user.as_ref(), &owner, &reach, Issue::Rekey)?;
    let policy = policy_of(&owner);
    // A leaked secret gets no grace period: it ends now, whatever the form said.
    let leaked = is_leaked(&key);
    let grace_minutes = if leaked { 0 } else { grace_minutes };
    if !is_offered_grace(grace_minutes, &policy) {
        let mut errors = FieldErrors::new();
        errors.add("grace", "Choose one of the offered grace periods.");
        return Err(AppError::Invalid(errors));
    }
    let environment = Environment::from_code(&key.environment).unwrap_or(Environment::Live);
    let secret = GeneratedKey::with_public_id(environment, &key.public_id);
    let previous_expires_at = (grace_minutes > 0).then(|| now + Duration::minutes(i64::from(grace_minutes)));
    let latest = policy.latest_expiry(now);
    let expires_at = match key.expires_at {
        Some(at) => Some(at.min(latest)),
        None if !policy.allow_never_expires => Some(latest),
        None => None,
    };
    let ended_previous = key.is_rotating_at(now);
    let mut rekeyed = ApiKey::rekey(
        conn,
        &key,
        &hasher.hash(secret.expose()),
        &secret.last4(),
        previous_expires_at,
        expires_at,
        token,
    )?;
    audit::record(
        conn,
        actor,
        entry(AuditAction::KeyRekey, &rekeyed).details(json!({
            "grace_minutes": grace_minutes,
            "old_secret_valid_until": previous_expires_at,
            "ended_earlier_grace": ended_previous,
            "replaced_leaked_secret": leaked,
        })),
    )?;
    if leaked {
        rekeyed = ApiKey::set_deactivation_reason(conn, rekeyed.id, LEAK_REKEYED)?;
    }
    Ok(Rekeyed::New { key: rekeyed, secret })
}

/// Ends a re-key grace period now: only the new secret works.
pub fn end_grace(conn: &mut PgConnection, actor: &Actor, at: KeyRef<'_>) -> Result<ApiKey, AppError> {
    let (key, _) = lock(conn, actor, at, KeyOp::EndGrace)?;
    if key.previous_secret_hash.is_none() {
        return Ok(key);
    }
    let ended = ApiKey::end_grace(conn, key.id)?;
    audit::record(conn, actor, entry(AuditAction::KeyEndGrace, &ended))?;
    Ok(ended)
}

/// Deletes a key for good; the audit log keeps its name, public id and owner.
pub fn delete(conn: &mut PgConnection, actor: &Actor, at: KeyRef<'_>) -> Result<ApiKey, AppError> {
    let (key, _) = lock(conn, actor, at, KeyOp::Delete)?;
    ApiKey::delete(conn, key.id)?;
    let owner = key.owner();
    audit::record(
        conn,
        actor,
        entry(AuditAction::KeyDelete, &key).details(json!({
            "owner": { "type": owner.kind(), "id": owner.id() },
            "masked": key.masked(),
            "created_at": key.created_at,
        })),
    )?;
    notifications::emit_key(conn, actor, EventType::KeyDeleted, &key, json!({}))?;
    Ok(key)
}

/// Records an attempt the rules refused, in its own transaction (the refused change rolled
/// back). Only attempts on keys that exist within the actor's reach are recorded: a web user's
/// organization (whatever area they tried), or the area's scope for staff. So stale links
/// are not "attacks", and a probe of another tenant's public ids leaves nothing that tells
/// the prober (or their administrators) whether those keys exist.
pub fn record_denied(
    conn: &mut PgConnection,
    actor: &Actor,
    action: AuditAction,
    at: KeyRef<'_>,
) -> Result<(), AppError> {
    let reach = match actor.organization_id() {
        Some(organization_id) => KeyScope::Organization(organization_id),
        None => at.scope,
    };
    let Some(key) = ApiKey::find_in(conn, reach, at.public_id)? else {
        return Ok(());
    };
    audit::record(
        conn,
        actor,
        Entry::new(action)
            .organization(key.organization_id)
            .service_provider(key.owner_service_provider_id)
            .target(target(&key))
            .outcome(Outcome::Denied),
    )?;
    Ok(())
}

/// Records a refused creation (the refused key was never written), in its own transaction.
pub fn record_denied_create(conn: &mut PgConnection, actor: &Actor) -> Result<(), AppError> {
    let entry = Entry::new(AuditAction::KeyCreate).organization(actor.organization_id()).outcome(Outcome::Denied);
    Ok(audit::record(conn, actor, entry)?)
}

/// `Owner` of a key for display and verification.
pub fn owner_of(key: &ApiKey) -> KeyOwner {
    key.owner()
}

/// Where a leaked key was found (GitHub secret-scanning partner format).
#[derive(Debug, Clone, Default)]
pub struct LeakReport {
    pub token_type: String,
    pub url: String,
    pub source: String,
}

/// A reported leak: if `token` is a working secret of a key (its current secret, or the
/// previous one within its grace period), the key is deactivated at once and the report is
/// audited with where it was found. Holding the key is the authorization; returns whether it
/// was a real key.
pub fn report_leak(
    conn: &mut PgConnection,
    actor: &Actor,
    hasher: &KeyHasher,
    token: &str,
    report: &LeakReport,
) -> Result<bool, AppError> {
    let Some(parsed) = crate::keys::ParsedKey::parse(token) else {
        return Ok(false);
    };
    let now = actor.now;
    let matches = |key: &ApiKey| {
        let current = hasher.matches(token, &key.secret_hash);
        let previous = !current
            && key.is_rotating_at(now)
            && key.previous_secret_hash.as_ref().is_some_and(|hash| hasher.matches(token, hash));
        (current, previous)
    };
    // Only a real secret locks the key's row: guesses with known public ids must not hold up
    // changes to those keys.
    let Some(key) = ApiKey::find_presented(conn, parsed.public_id)? else {
        return Ok(false);
    };
    if matches(&key) == (false, false) {
        return Ok(false);
    }
    let Some(key) = ApiKey::lock_presented(conn, parsed.public_id)? else {
        return Ok(false);
    };
    let (current, previous) = matches(&key);
    if !current && !previous {
        return Ok(false);
    }
    let was_active = key.active;
    // Even an inactive key is marked: its secret must not work again once reactivated.
    let key = ApiKey::set_active(conn, key.id, false, Some(LEAKED))?;
    let clip = |s: &str| s.chars().take(500).collect::<String>();
    audit::record(
        conn,
        actor,
        entry(AuditAction::KeyLeakReport, &key).details(json!({
            "type": clip(&report.token_type),
            "url": clip(&report.url),
            "source": clip(&report.source),
            "secret": if previous { "previous" } else { "current" },
            "deactivated": was_active,
        })),
    )?;
    if was_active {
        notifications::emit_deactivated(conn, actor, &key, Deactivation::LeakReport, Some(LEAKED))?;
    }
    Ok(true)
}
