//! Who may do what with keys (SPEC §3). The rules live here and nowhere else:
//!
//! - web users act only inside their organization; another tenant's key is "not found";
//! - administrators and `keys.manage` holders manage every key of their organization;
//! - other users manage only their own keys, and only with API key access;
//! - support staff manage service-provider keys; of client keys they may only view metadata
//!   and deactivate, never create or re-key (a re-key reveals a new secret);
//! - a service provider's management token reaches that provider's keys only (within its
//!   scopes): never a client's, not even to look;
//! - a key never gets an action its creator (and, for personal keys, its owner) may not grant;
//!   what may be granted, and who obtains which secrets, is the ceiling rule in `ceiling`.

use crate::services::audit::AuditAction;
use diesel::{OptionalExtension, PgConnection};

use crate::{
    db::models::{ApiKey, Organization, StaffAccount, User, api_key::KeyOwner, user::ActionCeiling},
    domain::{Permission, PermissionSet, TokenScope},
    error::AppError,
    services::actor::{ActingUser, Actor, ActorKind},
};

/// An operation on an existing key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyOp {
    View,
    Rename,
    Edit,
    Deactivate,
    Reactivate,
    Rekey,
    EndGrace,
    Delete,
}

impl KeyOp {
    /// The audit action of this operation.
    pub fn audit_action(self) -> AuditAction {
        match self {
            KeyOp::View => AuditAction::KeyView,
            KeyOp::Rename => AuditAction::KeyRename,
            KeyOp::Edit => AuditAction::KeyUpdate,
            KeyOp::Deactivate => AuditAction::KeyDeactivate,
            KeyOp::Reactivate => AuditAction::KeyReactivate,
            KeyOp::Rekey => AuditAction::KeyRekey,
            KeyOp::EndGrace => AuditAction::KeyEndGrace,
            KeyOp::Delete => AuditAction::KeyDelete,
        }
    }
}

/// A web user as the key rules see them, loaded inside the operation's transaction.
#[derive(Debug, Clone)]
pub struct UserContext {
    pub user: User,
    pub permissions: PermissionSet,
    pub ceiling: ActionCeiling,
}

impl UserContext {
    pub fn load(conn: &mut PgConnection, user_id: i64, organization_id: i64) -> Result<Self, AppError> {
        let user = User::find_in_org(conn, organization_id, user_id).optional()?.ok_or(AppError::Forbidden)?;
        if !user.active {
            return Err(AppError::Forbidden);
        }
        let permissions = user.effective_permissions(conn)?;
        let ceiling = user.action_ceiling(conn)?;
        Ok(Self { user, permissions, ceiling })
    }
}

/// Who the key belongs to, with what its policy and scopes need.
#[derive(Debug, Clone)]
pub enum OwnerContext {
    /// A personal key: the owner and their organization.
    User { owner: Box<UserContext>, organization: Organization },
    /// An organization key.
    Organization(Organization),
    /// A service-provider key.
    ServiceProvider(i64),
}

impl OwnerContext {
    /// The context of user `user_id` of organization `organization_id`, as the owner of a
    /// personal key.
    pub fn of_user(conn: &mut PgConnection, organization_id: i64, user_id: i64) -> Result<Self, AppError> {
        let user = User::find_in_org(conn, organization_id, user_id)?;
        let permissions = user.effective_permissions(conn)?;
        let ceiling = user.action_ceiling(conn)?;
        Ok(OwnerContext::User {
            owner: Box::new(UserContext { user, permissions, ceiling }),
            organization: Organization::find(conn, organization_id)?,
        })
    }

    /// The context of `key`'s owner.
    pub fn of_key(conn: &mut PgConnection, key: &ApiKey) -> Result<Self, AppError> {
        Ok(match key.owner() {
            KeyOwner::User(user_id) => {
                OwnerContext::of_user(conn, key.organization_id.ok_or(AppError::NotFound)?, user_id)?
            }
            KeyOwner::Organization(id) => OwnerContext::Organization(Organization::find(conn, id)?),
            KeyOwner::ServiceProvider(id) => OwnerContext::ServiceProvider(id),
        })
    }

    pub fn organization(&self) -> Option<&Organization> {
        match self {
            OwnerContext::User { organization, .. } | OwnerContext::Organization(organization) => Some(organization),
            OwnerContext::ServiceProvider(_) => None,
        }
    }
}

/// The web user behind `actor` (a signed-in user, or a management token's creator), loaded
/// fresh: a token whose creator was deactivated or moved is refused here — and so is a
/// service provider's token whose support specialist was deactivated.
pub fn user_context(conn: &mut PgConnection, actor: &Actor) -> Result<Option<UserContext>, AppError> {
    if let ActorKind::ProviderToken { staff_id, .. } = actor.kind {
        let active = StaffAccount::find(conn, staff_id).optional()?.is_some_and(|staff| staff.active);
        return if active { Ok(None) } else { Err(AppError::Forbidden) };
    }
    match actor.acting_user() {
        Some(acting) => Ok(Some(UserContext::load(conn, acting.id, acting.organization_id)?)),
        None => Ok(None),
    }
}

/// The token scope `op` needs.
fn scope_of(op: KeyOp) -> TokenScope {
    if op == KeyOp::View { TokenScope::KeysRead } else { TokenScope::KeysWrite }
}

/// Checks that `actor` may perform `op` on `key`. Keys the actor may not even see are
/// `NotFound`, so that other tenants' keys are indistinguishable from missing ones.
pub fn check(actor: &Actor, user: Option<&UserContext>, key: &ApiKey, op: KeyOp) -> Result<(), AppError> {
    match (&actor.kind, user) {
        (ActorKind::System { .. }, _) => Ok(()),
        (ActorKind::User { .. } | ActorKind::Token { .. }, Some(ctx)) => {
            let Some(ActingUser { id, organization_id, .. }) = actor.acting_user() else {
                return Err(AppError::Forbidden);
            };
            if key.organization_id != Some(organization_id) {
                return Err(AppError::NotFound);
            }
            // A token acts as its creator, only within its scopes.
            if !actor.has_scope(scope_of(op)) {
                return Err(AppError::Forbidden);
            }
            if ctx.permissions.contains(Permission::KeysManage) {
                return Ok(());
            }
            if key.owner_user_id == Some(id) && ctx.permissions.contains(Permission::KeysOwn) {
                return Ok(());
            }
            Err(AppError::NotFound)
        }
        // A provider's token sees that provider's keys and nothing else, within its scopes.
        (ActorKind::ProviderToken { service_provider_id, .. }, _) => {
            if key.owner() != KeyOwner::ServiceProvider(*service_provider_id) {
                return Err(AppError::NotFound);
            }
            if actor.has_scope(scope_of(op)) { Ok(()) } else { Err(AppError::Forbidden) }
        }
        (ActorKind::Staff { .. }, _) => match key.owner() {
            KeyOwner::ServiceProvider(_) => Ok(()),
            // Client keys: metadata and incident deactivation only.
            _ if matches!(op, KeyOp::View | KeyOp::Deactivate) => Ok(()),
            _ => Err(AppError::Forbidden),
        },
        _ => Err(AppError::Forbidden),
    }
}

/// Checks that `actor` may create a key for `owner`.
pub fn check_create(actor: &Actor, user: Option<&UserContext>, owner: &OwnerContext) -> Result<(), AppError> {
    match (&actor.kind, owner) {
        (ActorKind::System { .. }, OwnerContext::User { owner, .. }) => {
            if owner.user.active && owner.permissions.contains(Permission::KeysOwn) {
                Ok(())
            } else {
                Err(AppError::BadRequest(format!("{} does not have API key access.", owner.user.email)))
            }
        }
        (ActorKind::System { .. }, _) => Ok(()),
        (ActorKind::User { .. } | ActorKind::Token { .. }, owner) => {
            let Some(ctx) = user else { return Err(AppError::Forbidden) };
            let Some(ActingUser { id, organization_id, .. }) = actor.acting_user() else {
                return Err(AppError::Forbidden);
            };
            if !actor.has_scope(TokenScope::KeysWrite) {
                return Err(AppError::Forbidden);
            }
            // The administrator flag as it is now (a token's creator may have lost it).
            let is_admin = ctx.user.is_admin;
            match owner {
                OwnerContext::User { owner, .. }
                    if owner.user.id == id && ctx.permissions.contains(Permission::KeysOwn) =>
                {
                    Ok(())
                }
                OwnerContext::Organization(org)
                    if org.id == organization_id && ctx.permissions.contains(Permission::KeysManage) =>
                {
                    Ok(())
                }
                // An administrator creates a personal key for a member (Admin → Users): only
                // administrators, since the secret they are shown acts as that member.
                OwnerContext::User { owner, organization } if organization.id == organization_id && is_admin => {
                    if owner.user.active && owner.permissions.contains(Permission::KeysOwn) {
                        Ok(())
                    } else {
                        Err(AppError::Conflict(format!("{} does not have API key access.", owner.user.email)))
                    }
                }
                _ => Err(AppError::Forbidden),
            }
        }
        // Staff create keys for service providers only: never for a client or its users.
        (ActorKind::Staff { .. }, OwnerContext::ServiceProvider(_)) => Ok(()),
        (ActorKind::ProviderToken { service_provider_id, .. }, OwnerContext::ServiceProvider(id))
            if id == service_provider_id && actor.has_scope(TokenScope::KeysWrite) =>
        {
            Ok(())
        }
        _ => Err(AppError::Forbidden),
    }
}

/// The actions `actor` may put on a key of `owner`: the granting user's ceiling, and for a
/// personal key also its owner's.
pub fn granting_ceilings(user: Option<&UserContext>, owner: &OwnerContext) -> Vec<ActionCeiling> {
    let mut ceilings = Vec::new();
    if let Some(ctx) = user {
        ceilings.push(ctx.ceiling.clone());
    }
    if let OwnerContext::User { owner, .. } = owner {
        ceilings.push(owner.ceiling.clone());
    }
    ceilings
}
