//! Management tokens: created by an organization's administrators (Admin → API access) or
//! the operator (`keyward create-management-token`), or by support staff for a service
//! provider's keys (Staff → Service providers → API access); shown once, revoked by those who
//! manage them or by a leak report. A token acts with the rights of its creator, narrowed by its scopes:
//! its scopes are checked against the creator's permissions when it is created, and the
//! services check the creator's current rights again at every use (see `services::keys::access`).

use chrono::{DateTime, Duration, Utc};
use diesel::{OptionalExtension, PgConnection};
use ipnetwork::IpNetwork;
use serde_json::{Value, json};

use crate::{
    db::models::{
        ManagementToken, ServiceProvider, StaffAccount, User,
        management_token::{NewManagementToken, TokenHolder, TokenTenant},
    },
    domain::{TokenScope, TokenScopes},
    error::{AppError, FieldErrors},
    keys::{GeneratedToken, KeyHasher, ParsedToken},
    services::{
        actor::{Actor, ActorKind},
        admin::require_admin,
        audit::{self, AuditAction, Entry, Target},
        keys::{KeyName, lifecycle::LeakReport},
    },
};

/// A token's lifetime when none is chosen.
pub const DEFAULT_LIFETIME_DAYS: u32 = 90;
/// The longest lifetime: tokens always expire (a forgotten one stops working by itself).
pub const MAX_LIFETIME_DAYS: u32 = 365;
/// The revocation reason of a token reported as leaked.
pub const LEAKED: &str = "Reported as leaked";

/// What a creator asks for, typed.
#[derive(Debug, Clone)]
pub struct NewToken {
    /// Described like a key (and like a key's name, never a secret).
    pub name: KeyName,
    pub scopes: TokenScopes,
    pub cidrs: Vec<IpNetwork>,
    pub lifetime_days: u32,
}

/// Checks a lifetime in days (1 to [`MAX_LIFETIME_DAYS`]).
pub fn parse_lifetime(days: Option<u32>) -> Result<u32, String> {
    match days.unwrap_or(DEFAULT_LIFETIME_DAYS) {
        days @ 1..=MAX_LIFETIME_DAYS => Ok(days),
        _ => Err(format!("A token lives from 1 to {MAX_LIFETIME_DAYS} days.")),
    }
}

fn target(token: &ManagementToken) -> Target {
    Target::new("management_token", &token.public_id, &token.name)
}

/// Creates a token of `organization_id` acting as `creator_user_id` and returns its secret
/// (to be shown once). Only the organization's administrators (and the operator) create
/// tokens; the scopes must be within what the creator holds.
pub fn create(
    conn: &mut PgConnection,
    actor: &Actor,
    hasher: &KeyHasher,
    organization_id: i64,
    creator_user_id: i64,
    new: NewToken,
) -> Result<(ManagementToken, GeneratedToken), AppError> {
    require_admin(conn, actor, organization_id)?;
    // A web user creates tokens that act as themselves only.
    if actor.acting_user().is_some_and(|acting| acting.id != creator_user_id)
        || matches!(actor.kind, ActorKind::Token { .. })
    {
        return Err(AppError::Forbidden);
    }
    let creator = User::find_in_org(conn, organization_id, creator_user_id).optional()?.ok_or(AppError::NotFound)?;
    let permissions = crate::domain::Capabilities::new(creator.is_admin, creator.effective_permissions(conn)?);
    let beyond = new.scopes.beyond(&permissions.permissions());
    if !creator.active || !beyond.is_empty() {
        let mut errors = FieldErrors::new();
        let names: Vec<&str> = beyond.iter().map(|s| s.code()).collect();
        errors.add(
            "scopes",
            if creator.active {
                format!("{} may not use: {}.", creator.email, names.join(", "))
            } else {
                format!("{} is deactivated; a token acting as them could do nothing.", creator.email)
            },
        );
        return Err(AppError::Invalid(errors));
    }
    let holder = TokenHolder::Organization { organization_id, user_id: creator.id };
    issue(conn, actor, hasher, holder, &creator.email, new)
}

/// Creates a token of service provider `service_provider_id`, acting as support specialist
/// `staff_id` (on the provider's keys only), and returns its secret (to be shown once). Only
/// that specialist (or the operator) creates it, with key scopes only: a provider has no
/// users or audit pages of its own.
pub fn create_for_provider(
    conn: &mut PgConnection,
    actor: &Actor,
    hasher: &KeyHasher,
    service_provider_id: i64,
    staff_id: i64,
    new: NewToken,
) -> Result<(ManagementToken, GeneratedToken), AppError> {
    match actor.kind {
        ActorKind::Staff { id, .. } if id == staff_id => {}
        ActorKind::System { .. } => {}
        _ => return Err(AppError::Forbidden),
    }
    let staff = StaffAccount::find(conn, staff_id)?;
    if !staff.active {
        return Err(crate::error::invalid(
            "creator",
            format!("{} is deactivated; a token acting as them could do nothing.", staff.email),
        ));
    }
    ServiceProvider::find(conn, service_provider_id)
        .optional()?
        .ok_or_else(|| AppError::BadRequest(format!("there is no service provider {service_provider_id}")))?;
    let beyond: Vec<&str> =
        new.scopes.iter().filter(|scope| !PROVIDER_SCOPES.contains(scope)).map(|scope| scope.code()).collect();
    if !beyond.is_empty() {
        return Err(crate::error::invalid(
            "scopes",
            format!("A service provider's token manages its keys only; it cannot have: {}.", beyond.join(", ")),
        ));
    }
    let holder = TokenHolder::ServiceProvider { service_provider_id, staff_id };
    issue(conn, actor, hasher, holder, &staff.email, new)
}

/// The scopes a service provider's token may have.
pub const PROVIDER_SCOPES: [TokenScope; 2] = [TokenScope::KeysRead, TokenScope::KeysWrite];

/// Stores a new token of `holder` (its creator known as `creator_email`) and audits it.
fn issue(
    conn: &mut PgConnection,
    actor: &Actor,
    hasher: &KeyHasher,
    holder: TokenHolder,
    creator_email: &str,
    new: NewToken,
) -> Result<(ManagementToken, GeneratedToken), AppError> {
    let expires_at = actor.now + Duration::days(i64::from(new.lifetime_days));
    let secret = GeneratedToken::generate();
    let (organization_id, created_by_user_id, service_provider_id, created_by_staff_id, creator) = match holder {
        TokenHolder::Organization { organization_id, user_id } => {
            (Some(organization_id), Some(user_id), None, None, json!({ "creator_user_id": user_id }))
        }
        TokenHolder::ServiceProvider { service_provider_id, staff_id } => {
            (None, None, Some(service_provider_id), Some(staff_id), json!({ "creator_staff_id": staff_id }))
        }
    };
    let token = ManagementToken::insert(
        conn,
        &NewManagementToken {
            public_id: &secret.public_id,
            organization_id,
            created_by_user_id,
            service_provider_id,
            created_by_staff_id,
            name: new.name.as_str(),
            scopes: new.scopes.codes().into_iter().map(|c| Some(c.to_string())).collect(),
            allowed_cidrs: new.cidrs.iter().copied().map(Some).collect(),
            secret_hash: &hasher.hash(secret.expose()),
            secret_last4: &secret.last4(),
            expires_at: Some(expires_at),
        },
    )?;
    let mut details = json!({
        "scopes": new.scopes.codes(),
        "expires_at": expires_at,
        "allowed_ips": new.cidrs.iter().map(|c| c.to_string()).collect::<Vec<_>>(),
        "creator": creator_email,
    });
    if let (Value::Object(details), Value::Object(creator)) = (&mut details, creator) {
        details.extend(creator);
    }
    audit::record(conn, actor, entry(AuditAction::ManagementTokenCreate, holder.tenant(), &token).details(details))?;
    Ok((token, secret))
}

/// An audit entry about `token`, recorded with its tenant.
fn entry(action: AuditAction, tenant: TokenTenant, token: &ManagementToken) -> Entry {
    Entry::new(action)
        .organization(tenant.organization_id())
        .service_provider(tenant.service_provider_id())
        .target(target(token))
}

/// Who may revoke the tokens of `tenant`: an organization's administrators, or support staff
/// for a service provider's (and the operator for either).
fn require_manager(conn: &mut PgConnection, actor: &Actor, tenant: TokenTenant) -> Result<(), AppError> {
    match tenant {
        TokenTenant::Organization(organization_id) => require_admin(conn, actor, organization_id),
        TokenTenant::ServiceProvider(_) => match actor.kind {
            ActorKind::Staff { .. } | ActorKind::System { .. } => Ok(()),
            _ => Err(AppError::Forbidden),
        },
    }
}

/// Revokes a token of `tenant` at once (every instance drops it from its cache).
pub fn revoke(
    conn: &mut PgConnection,
    actor: &Actor,
    tenant: TokenTenant,
    public_id: &str,
) -> Result<Revocation, AppError> {
    require_manager(conn, actor, tenant)?;
    let token = ManagementToken::lock_in(conn, tenant, public_id)?.ok_or(AppError::NotFound)?;
    if token.revoked_at.is_some() {
        return Ok(Revocation::AlreadyRevoked(token));
    }
    let revoked = ManagementToken::revoke(conn, token.id, "Revoked")?;
    audit::record(conn, actor, entry(AuditAction::ManagementTokenRevoke, tenant, &revoked))?;
    Ok(Revocation::Revoked(revoked))
}

/// What [`revoke`] did: revoked the token, or found it revoked already (a second tab, a
/// resubmitted form) and changed nothing.
#[derive(Debug)]
pub enum Revocation {
    Revoked(ManagementToken),
    AlreadyRevoked(ManagementToken),
}

impl Revocation {
    pub fn token(&self) -> &ManagementToken {
        match self {
            Self::Revoked(token) | Self::AlreadyRevoked(token) => token,
        }
    }
}

/// A reported leak of a token: if `token` is a token's secret, it is revoked at once and the
/// report audited; returns whether it was a real token.
pub fn report_leak(
    conn: &mut PgConnection,
    actor: &Actor,
    hasher: &KeyHasher,
    token: &str,
    report: &LeakReport,
) -> Result<bool, AppError> {
    let Some(parsed) = ParsedToken::parse(token) else { return Ok(false) };
    let Some(found) = ManagementToken::find_presented(conn, parsed.public_id)? else { return Ok(false) };
    let Some(tenant) = found.holder().map(TokenHolder::tenant) else { return Ok(false) };
    if !hasher.matches(token, &found.secret_hash) {
        return Ok(false);
    }
    let Some(found) = ManagementToken::lock_in(conn, tenant, parsed.public_id)? else {
        return Ok(false);
    };
    let was_active = found.revoked_at.is_none();
    let revoked = if was_active { ManagementToken::revoke(conn, found.id, LEAKED)? } else { found };
    let clip = |s: &str| s.chars().take(500).collect::<String>();
    audit::record(
        conn,
        actor,
        entry(AuditAction::ManagementTokenRevoke, tenant, &revoked).details(json!({
            "reason": LEAKED,
            "type": clip(&report.token_type),
            "url": clip(&report.url),
            "source": clip(&report.source),
            "revoked": was_active,
        })),
    )?;
    Ok(true)
}

/// Whether `token` can be used at `now` (not revoked, not expired).
pub fn is_live(revoked_at: Option<DateTime<Utc>>, expires_at: Option<DateTime<Utc>>, now: DateTime<Utc>) -> bool {
    revoked_at.is_none() && expires_at.is_none_or(|at| at > now)
}
