//! Web users: creation, changes by administrators and `users.manage` holders, API key access,
//! deactivation (which ends the user's sessions and stops their personal keys), passwords and
//! one-time set-password links. The organization always keeps an active administrator.
//!
//! Who may do what: administrators manage every user of their organization. Holders of
//! `users.manage` who are not administrators may neither make anyone an administrator nor
//! hand out roles, may not change their own access or password here, and may act only on
//! users who hold nothing they do not hold themselves (permissions and API actions): taking
//! over such an account through a password reset gains them nothing.

use crate::services::audit::AuditAction;
use chrono::{Duration, Utc};
use diesel::{OptionalExtension, PgConnection};
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::{
    db::models::user::ActionCeiling,
    db::models::{
        Role, StaffAccount, User,
        password_link::{LinkAccount, LinkPurpose, PasswordLink},
        session,
        user::{NewUser, UserChanges},
    },
    domain::{Capabilities, Capability, Email, text::clean_line},
    error::{AppError, FieldErrors, invalid},
    secrets::random_token,
    services::{
        Actor,
        actor::ActorKind,
        audit::{self, Entry, Target},
    },
};

/// How long a set-password link works.
pub const LINK_LIFETIME_HOURS: i64 = 72;

/// Input of [`create`]; the password is already hashed (hashing happens off the executor).
#[derive(Debug, Clone)]
pub struct CreateUser {
    pub organization_id: i64,
    pub email: String,
    pub display_name: String,
    pub password_hash: Option<String>,
    pub is_admin: bool,
    pub api_key_access: bool,
    /// Roles of the organization to give the user (administrators only).
    pub role_ids: Vec<i64>,
}

/// Whether any web user or staff account signs in with `email` (one login form serves both,
/// so an address may belong to one account only).
pub fn email_in_use(conn: &mut PgConnection, email: &Email) -> Result<bool, AppError> {
    Ok(User::find_by_email(conn, email.as_str())?.is_some()
        || StaffAccount::find_by_email(conn, email.as_str())?.is_some())
}

/// The acting web user's standing in `organization_id`.
#[derive(Debug, Clone)]
struct Manager {
    id: Option<i64>,
    can: Capabilities,
    ceiling: ActionCeiling,
}

/// What a manager may do to one user. The pages offer exactly these (so no button answers
/// 403), and every change below checks the same value.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Allowed {
    /// Change the name.
    pub profile: bool,
    /// Make or unmake an administrator, assign roles.
    pub admin_fields: bool,
    /// Access, activation, password: what could hand the account's rights to someone else.
    pub sensitive: bool,
    /// Grant API key access (revoking needs only `sensitive`).
    pub grant_key_access: bool,
    /// Remove their second factors (support for a lost phone): administrators, and never
    /// on themselves, so that a stolen password of one cannot strip its own second factor.
    pub reset_second_factor: bool,
}

impl Allowed {
    /// Whether the access switch does something the manager may do for `user`.
    pub fn key_access_switch(&self, user: &User) -> bool {
        self.sensitive && !user.is_admin && (user.api_key_access || self.grant_key_access)
    }
}

/// What a manager is about to do to a user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Change {
    Profile,
    Sensitive,
}

/// The API actions a user could put on their own keys: their roles' ceiling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyActions {
    All,
    /// These action codes; none at all when empty.
    Only(Vec<String>),
}

impl KeyActions {
    /// Whether no key of theirs could do anything.
    pub fn is_nothing(&self) -> bool {
        matches!(self, KeyActions::Only(codes) if codes.is_empty())
    }

    /// "any API action", "positions.read, vehicles.read" or "no API action".
    pub fn describe(&self) -> String {
        match self {
            KeyActions::All => "any API action".into(),
            KeyActions::Only(codes) if codes.is_empty() => "no API action".into(),
            KeyActions::Only(codes) => codes.join(", "),
        }
    }
}

/// What `user` could put on their keys, were they to have API key access.
pub fn key_actions(conn: &mut PgConnection, user: &User) -> Result<KeyActions, AppError> {
    Ok(match user.action_ceiling(conn)? {
        ActionCeiling::All => KeyActions::All,
        ActionCeiling::Only(ids) => KeyActions::Only(
            crate::db::models::ApiAction::list_active(conn)?
                .into_iter()
                .filter(|a| ids.contains(&a.id))
                .map(|a| a.code)
                .collect(),
        ),
    })
}

/// Checks that `actor` may manage users of `organization_id` (the operator may too).
fn manager(conn: &mut PgConnection, actor: &Actor, organization_id: i64) -> Result<Manager, AppError> {
    match &actor.kind {
        ActorKind::System { .. } => {
            Ok(Manager { id: None, can: Capabilities::operator(), ceiling: ActionCeiling::All })
        }
        // A management token manages users as its creator, and only with `users:access`
        // (the one change the management API makes to users).
        ActorKind::User { .. } | ActorKind::Token { .. }
            if actor.acting_user().is_some_and(|acting| acting.organization_id == organization_id)
                && actor.has_scope(crate::domain::TokenScope::UsersAccess) =>
        {
            let id = actor.acting_user().map(|acting| acting.id).ok_or(AppError::Forbidden)?;
            let user = User::find_in_org(conn, organization_id, id)?;
            let can = Capabilities::new(user.is_admin, user.effective_permissions(conn)?);
            if user.active && can.allows(Capability::ManageUsers) {
                Ok(Manager { id: Some(user.id), can, ceiling: user.action_ceiling(conn)? })
            } else {
                Err(AppError::Forbidden)
            }
        }
        _ => Err(AppError::Forbidden),
    }
}

/// What `manager` may do to `user`: administrators everything; others nothing to
/// administrators, nothing sensitive to themselves, and nothing to anyone holding a
/// permission or API action they do not hold.
fn allowed(conn: &mut PgConnection, manager: &Manager, user: &User) -> Result<Allowed, AppError> {
    allowed_given(manager, user, || Ok((user.effective_permissions(conn)?, user.action_ceiling(conn)?)))
}

/// [`allowed`], with the user's permissions and ceiling loaded by `standing` only when the
/// rule needs them (a list loads them for its whole page at once).
fn allowed_given(
    manager: &Manager,
    user: &User,
    standing: impl FnOnce() -> Result<(crate::domain::PermissionSet, ActionCeiling), AppError>,
) -> Result<Allowed, AppError> {
    let grant_key_access = manager.can.allows(Capability::GrantKeyAccess);
    if manager.can.is_admin() {
        let reset_second_factor = manager.id != Some(user.id);
        return Ok(Allowed {
            profile: true,
            admin_fields: true,
            sensitive: true,
            grant_key_access,
            reset_second_factor,
        });
    }
    if user.is_admin {
        return Ok(Allowed::default());
    }
    if manager.id == Some(user.id) {
        return Ok(Allowed { profile: true, ..Allowed::default() });
    }
    let (permissions, ceiling) = standing()?;
    let holds_more = permissions.iter().any(|p| !manager.can.permissions().contains(p))
        || match (&manager.ceiling, ceiling) {
            (ActionCeiling::All, _) => false,
            (ActionCeiling::Only(_), ActionCeiling::All) => true,
            (ActionCeiling::Only(mine), ActionCeiling::Only(theirs)) => !theirs.is_subset(mine),
        };
    if holds_more {
        return Ok(Allowed::default());
    }
    Ok(Allowed { profile: true, admin_fields: false, sensitive: true, grant_key_access, reset_second_factor: false })
}

/// User `user_id` of `organization_id` (another organization's is "not found") and what
/// `actor` may do to them.
pub fn allowed_changes(
    conn: &mut PgConnection,
    actor: &Actor,
    organization_id: i64,
    user_id: i64,
) -> Result<(User, Allowed), AppError> {
    let manager = manager(conn, actor, organization_id)?;
    let user = User::find_in_org(conn, organization_id, user_id).optional()?.ok_or(AppError::NotFound)?;
    let allowed = allowed(conn, &manager, &user)?;
    Ok((user, allowed))
}

/// What `actor` may do to each of `users` (of `organization_id`), in their order: what a
/// list of users offers per row.
pub fn allowed_for_each(
    conn: &mut PgConnection,
    actor: &Actor,
    organization_id: i64,
    users: &[User],
) -> Result<Vec<Allowed>, AppError> {
    let manager = manager(conn, actor, organization_id)?;
    let mut standings = User::standings_of(conn, users)?;
    users
        .iter()
        .map(|user| allowed_given(&manager, user, || standings.remove(&user.id).ok_or(AppError::NotFound)))
        .collect()
}

/// Loads `user_id` for a `change` by `actor`, refusing what [`allowed_changes`] does not allow.
fn target(
    conn: &mut PgConnection,
    actor: &Actor,
    organization_id: i64,
    user_id: i64,
    change: Change,
) -> Result<(User, Allowed), AppError> {
    let (user, allowed) = allowed_changes(conn, actor, organization_id, user_id)?;
    let permitted = match change {
        Change::Profile => allowed.profile,
        Change::Sensitive => allowed.sensitive,
    };
    if permitted { Ok((user, allowed)) } else { Err(AppError::Forbidden) }
}

/// Checks that every role of `role_ids` is one of the organization's; returns them sorted,
/// without repeats.
fn roles_of_org(conn: &mut PgConnection, organization_id: i64, mut role_ids: Vec<i64>) -> Result<Vec<i64>, AppError> {
    role_ids.sort_unstable();
    role_ids.dedup();
    for id in &role_ids {
        Role::find_in_org(conn, organization_id, *id)
            .optional()?
            .ok_or_else(|| invalid("roles", "Choose roles from the list."))?;
    }
    Ok(role_ids)
}

/// Refuses a change that would leave the organization without an active administrator.
fn keep_an_admin(conn: &mut PgConnection, user: &User) -> Result<(), AppError> {
    let admins = User::lock_active_admins(conn, user.organization_id)?;
    if user.is_admin && user.active && admins.iter().all(|id| *id == user.id) {
        return Err(AppError::Conflict(format!(
            "{} is the last active administrator of the organization. Make another user an administrator first.",
            user.display_name
        )));
    }
    Ok(())
}

fn user_target(user: &User) -> Target {
    Target::new("user", user.id, &user.email)
}

/// Creates a web user in `input.organization_id`, with their roles, in one step.
pub fn create(conn: &mut PgConnection, actor: &Actor, input: CreateUser) -> Result<User, AppError> {
    let manager = manager(conn, actor, input.organization_id)?;
    let administers = manager.can.allows(Capability::Administer);
    if (input.is_admin || !input.role_ids.is_empty()) && !administers
        || input.api_key_access && !manager.can.allows(Capability::GrantKeyAccess)
    {
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
    let (email, display_name) = errors.finish(email.zip(display_name))?;
    let role_ids = roles_of_org(conn, input.organization_id, input.role_ids)?;
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
    if !role_ids.is_empty() {
        Role::set_user_roles(conn, input.organization_id, user.id, &role_ids)?;
    }
    audit::record(
        conn,
        actor,
        Entry::new(AuditAction::UserCreate)
            .organization(Some(user.organization_id))
            .target(user_target(&user))
            .details(json!({ "is_admin": user.is_admin, "api_key_access": user.api_key_access, "roles": role_ids })),
    )?;
    Ok(user)
}

/// Changes a user's name, administrator flag and roles. `is_admin` and `role_ids` may only
/// be given by administrators.
pub fn update(
    conn: &mut PgConnection,
    actor: &Actor,
    organization_id: i64,
    user_id: i64,
    display_name: &str,
    is_admin: Option<bool>,
    role_ids: Option<Vec<i64>>,
) -> Result<User, AppError> {
    let (user, allowed) = target(conn, actor, organization_id, user_id, Change::Profile)?;
    if (is_admin.is_some() || role_ids.is_some()) && !allowed.admin_fields {
        return Err(AppError::Forbidden);
    }
    let display_name = clean_line(display_name, 1, 100, "display name").map_err(|e| invalid("display_name", e))?;
    if is_admin == Some(false) && user.is_admin {
        keep_an_admin(conn, &user)?;
    }
    let changes = UserChanges { display_name: Some(display_name), is_admin, ..UserChanges::default() };
    let updated = User::update(conn, user.id, &changes)?;
    let mut details = json!({});
    if updated.display_name != user.display_name {
        details["display_name"] = json!({ "from": user.display_name, "to": updated.display_name });
    }
    if updated.is_admin != user.is_admin {
        details["is_admin"] = json!(updated.is_admin);
    }
    if let Some(role_ids) = role_ids {
        let role_ids = roles_of_org(conn, organization_id, role_ids)?;
        let mut before = Role::ids_of_user(conn, user.id)?;
        before.sort_unstable();
        if before != role_ids {
            Role::set_user_roles(conn, organization_id, user.id, &role_ids)?;
            audit::record(
                conn,
                actor,
                Entry::new(AuditAction::UserRoleChange)
                    .organization(Some(organization_id))
                    .target(user_target(&updated))
                    .details(json!({ "from": before, "to": role_ids })),
            )?;
        }
    }
    if details.as_object().is_some_and(|d| !d.is_empty()) {
        audit::record(
            conn,
            actor,
            Entry::new(AuditAction::UserUpdate)
                .organization(Some(organization_id))
                .target(user_target(&updated))
                .details(details),
        )?;
    }
    Ok(updated)
}

/// Grants or revokes API key access. Revoking stops the user's personal keys at once (the
/// verification caches learn it through the database's change notices).
pub fn set_api_key_access(
    conn: &mut PgConnection,
    actor: &Actor,
    organization_id: i64,
    user_id: i64,
    granted: bool,
) -> Result<User, AppError> {
    let (user, allowed) = target(conn, actor, organization_id, user_id, Change::Sensitive)?;
    if granted && !allowed.grant_key_access {
        return Err(AppError::Forbidden);
    }
    if user.api_key_access == granted {
        return Ok(user);
    }
    let updated =
        User::update(conn, user.id, &UserChanges { api_key_access: Some(granted), ..UserChanges::default() })?;
    let action = if granted { AuditAction::UserApiKeyAccessGrant } else { AuditAction::UserApiKeyAccessRevoke };
    audit::record(conn, actor, Entry::new(action).organization(Some(organization_id)).target(user_target(&updated)))?;
    if !granted {
        crate::services::notifications::emit_access_lost(conn, actor, &updated)?;
    }
    Ok(updated)
}

/// Deactivates (ending every session of the user at once and stopping their personal keys)
/// or reactivates a user.
pub fn set_active(
    conn: &mut PgConnection,
    actor: &Actor,
    organization_id: i64,
    user_id: i64,
    active: bool,
) -> Result<User, AppError> {
    let (user, _) = target(conn, actor, organization_id, user_id, Change::Sensitive)?;
    if user.active == active {
        return Ok(user);
    }
    if !active {
        keep_an_admin(conn, &user)?;
    }
    let updated = User::update(conn, user.id, &UserChanges { active: Some(active), ..UserChanges::default() })?;
    let ended = if active { 0 } else { session::delete_for_user(conn, user.id)? };
    let action = if active { AuditAction::UserReactivate } else { AuditAction::UserDeactivate };
    audit::record(
        conn,
        actor,
        Entry::new(action)
            .organization(Some(organization_id))
            .target(user_target(&updated))
            .details(json!({ "sessions_ended": ended })),
    )?;
    Ok(updated)
}

/// Resets a user's password: to `password_hash` chosen by a manager, or (with `None`) to
/// none at all, so the old one stops working until the user sets a new one through a link.
/// Either way the user's sessions end.
pub fn reset_password(
    conn: &mut PgConnection,
    actor: &Actor,
    organization_id: i64,
    user_id: i64,
    password_hash: Option<String>,
) -> Result<User, AppError> {
    let (user, _) = target(conn, actor, organization_id, user_id, Change::Sensitive)?;
    let updated =
        User::update(conn, user.id, &UserChanges { password_hash: Some(password_hash), ..UserChanges::default() })?;
    let ended = session::delete_for_user(conn, user.id)?;
    audit::record(
        conn,
        actor,
        Entry::new(AuditAction::UserPasswordReset)
            .organization(Some(organization_id))
            .target(user_target(&updated))
            .details(json!({ "sessions_ended": ended })),
    )?;
    Ok(updated)
}

/// Removes a user's second factors and ends their sessions (see
/// [`second_factor::reset`](crate::services::second_factor::reset)); administrators only, and
/// not on themselves.
pub fn reset_second_factor(
    conn: &mut PgConnection,
    actor: &Actor,
    organization_id: i64,
    user_id: i64,
) -> Result<User, AppError> {
    let (user, allowed) = allowed_changes(conn, actor, organization_id, user_id)?;
    if !allowed.reset_second_factor {
        return Err(AppError::Forbidden);
    }
    crate::services::second_factor::reset(
        conn,
        actor,
        crate::db::models::second_factor::FactorOwner::User(user.id),
        user_target(&user),
        Some(organization_id),
    )?;
    Ok(user)
}

pub(crate) fn token_hash(token: &str) -> String {
    Sha256::digest(token.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// Issues a one-time link with which the user sets their own password; returns the token
/// (to be shown once). Earlier links stop working.
pub fn issue_password_link(
    conn: &mut PgConnection,
    actor: &Actor,
    organization_id: i64,
    user_id: i64,
) -> Result<String, AppError> {
    let (user, _) = target(conn, actor, organization_id, user_id, Change::Sensitive)?;
    let token = random_token(32);
    let expires_at = Utc::now() + Duration::hours(LINK_LIFETIME_HOURS);
    PasswordLink::insert(conn, LinkAccount::User(user.id), LinkPurpose::Set, &token_hash(&token), expires_at)?;
    audit::record(
        conn,
        actor,
        Entry::new(AuditAction::UserPasswordLink)
            .organization(Some(organization_id))
            .target(user_target(&user))
            .details(json!({ "expires_at": expires_at })),
    )?;
    Ok(token)
}

/// The address of the account whose password the usable link `token` sets, if any.
pub fn email_of_link(conn: &mut PgConnection, token: &str) -> Result<Option<String>, AppError> {
    let Some(link) = PasswordLink::find_usable(conn, &token_hash(token))? else { return Ok(None) };
    Ok(Some(match link.account() {
        LinkAccount::User(id) => User::find(conn, id)?.email,
        LinkAccount::Staff(id) => StaffAccount::find(conn, id)?.email,
    }))
}

/// Sets the password through a one-time link (used up by this): a web user's or, for a
/// forgotten password, a support specialist's; the account's sessions end.
pub fn use_password_link(
    conn: &mut PgConnection,
    actor: &Actor,
    token: &str,
    password_hash: String,
) -> Result<(), AppError> {
    let link = PasswordLink::find_usable(conn, &token_hash(token))?.ok_or(AppError::NotFound)?;
    PasswordLink::mark_used(conn, link.id)?;
    match link.account() {
        LinkAccount::User(id) => {
            let changes = UserChanges { password_hash: Some(Some(password_hash)), ..UserChanges::default() };
            let user = User::update(conn, id, &changes)?;
            session::delete_for_user(conn, user.id)?;
            let entry = Entry::new(AuditAction::UserPasswordSet).organization(Some(user.organization_id));
            audit::record(conn, actor, entry.target(user_target(&user)))?;
        }
        LinkAccount::Staff(id) => {
            let staff = StaffAccount::set_password(conn, id, &password_hash)?;
            session::delete_for_staff(conn, staff.id)?;
            let target = Target::new("staff", staff.id, &staff.email);
            audit::record(conn, actor, Entry::new(AuditAction::StaffPasswordSet).target(target))?;
        }
    }
    Ok(())
}

/// A choice a person makes about their own mail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MailPreference {
    /// Key expiry reminders (other notices always go out: they say something changed).
    Reminders,
    /// The weekly digest (administrators only).
    Digest,
}

/// Records `actor`'s own choice whether to receive `preference`; audited when it changes.
pub fn set_mail_preference(
    conn: &mut PgConnection,
    actor: &Actor,
    preference: MailPreference,
    receive: bool,
) -> Result<User, AppError> {
    use diesel::prelude::*;

    use crate::db::schema::users;
    let ActorKind::User { id, organization_id, is_admin, .. } = actor.kind else { return Err(AppError::Forbidden) };
    if preference == MailPreference::Digest && !is_admin {
        return Err(AppError::Forbidden);
    }
    let user: User = users::table
        .filter(users::id.eq(id))
        .filter(users::organization_id.eq(organization_id))
        .select(User::as_select())
        .for_update()
        .first(conn)?;
    let (current, field) = match preference {
        MailPreference::Reminders => (user.receive_reminders, "receive_reminders"),
        MailPreference::Digest => (user.receive_digest, "receive_digest"),
    };
    if current == receive {
        return Ok(user);
    }
    let change = diesel::update(users::table.find(user.id));
    let updated: User = match preference {
        MailPreference::Reminders => change
            .set((users::receive_reminders.eq(receive), users::updated_at.eq(diesel::dsl::now)))
            .returning(User::as_returning())
            .get_result(conn)?,
        MailPreference::Digest => change
            .set((users::receive_digest.eq(receive), users::updated_at.eq(diesel::dsl::now)))
            .returning(User::as_returning())
            .get_result(conn)?,
    };
    audit::record(
        conn,
        actor,
        Entry::new(AuditAction::UserNotificationPreference)
            .target(user_target(&updated))
            .details(serde_json::json!({ field: receive })),
    )?;
    Ok(updated)
}
