//! One user's page: roles, effective permissions, keys, and the actions on them.

use actix_web::{HttpResponse, get, web};
use askama::Template;

use super::UserPath;
use crate::{
    db::models::{
        ApiKey, Role, User,
        api_key::{KeyListFilter, KeyScope},
    },
    domain::{Capability, Permission, PermissionSet},
    error::AppResult,
    routes::keys::view::{self, KeyRow},
    services::users::{self, Allowed},
    state::AppState,
    views::{PageContext, render, time::Stamp},
};

/// Keys listed on the user's page; "All keys of …" opens the rest.
const KEYS_SHOWN: i64 = 10;

#[derive(Template)]
#[template(path = "admin/users/detail.html")]
struct DetailPage {
    ctx: PageContext,
    user: User,
    roles: Vec<String>,
    permissions: Vec<&'static str>,
    keys: i64,
    /// The user's newest personal keys (the rest are in Admin → API keys).
    key_rows: Vec<KeyRow>,
    /// Whether the viewer may open the keys' pages in Admin → API keys.
    links_keys: bool,
    /// Whether the viewer may add a key for this user (an administrator, and the user has
    /// API key access).
    may_add_key: bool,
    last_login: Option<Stamp>,
    created: Stamp,
    allowed: Allowed,
    /// What they could put on keys, and whether to warn that it is nothing although they may
    /// create keys.
    key_actions: String,
    key_actions_warning: bool,
    access_switch: bool,
    is_self: bool,
    /// Whether the user has an authenticator app set up.
    has_second_factor: bool,
}

#[get("/admin/users/{id}")]
pub async fn detail(UserPath { who: manager, id }: UserPath, state: web::Data<AppState>) -> AppResult<HttpResponse> {
    let (organization_id, actor) = (manager.organization.id, manager.actor());
    let now = state.clock.now();
    let (user, allowed, roles, permissions, keys, key_actions, key_rows, has_second_factor) = state
        .db
        .run(move |conn| {
            let (user, allowed) = users::allowed_changes(conn, &actor, organization_id, id)?;
            let roles = Role::names_by_user(conn, &[id])?.remove(&id).unwrap_or_default();
            let permissions = user.effective_permissions(conn)?;
            let keys = ApiKey::count_by_owner(conn, &[id])?.get(&id).copied().unwrap_or(0);
            let key_actions = users::key_actions(conn, &user)?;
            let filter = KeyListFilter { per_page: KEYS_SHOWN, ..KeyListFilter::default() };
            let (owned, _) = ApiKey::list(conn, KeyScope::OwnedBy { organization_id, user_id: id }, &filter)?;
            let key_rows = view::rows(conn, &owned, "/admin/keys", now)?;
            let has_second_factor = crate::db::models::second_factor::has_any_factor(
                conn,
                crate::db::models::second_factor::FactorOwner::User(id),
            )?;
            Ok((user, allowed, roles, permissions, keys, key_actions, key_rows, has_second_factor))
        })
        .await?;
    let ctx = manager.context(&user.display_name)?;
    // The same test as the "Add key" dialog's (`UserKeys`), so the button never leads to a 403.
    let may_add_key =
        manager.can.allows(Capability::Administer) && user.active && permissions.contains(Permission::KeysOwn);
    render(&DetailPage {
        ctx,
        permissions: permission_labels(permissions),
        last_login: Stamp::maybe(user.last_login_at),
        created: Stamp::new(user.created_at),
        is_self: user.id == manager.0.user.id,
        access_switch: allowed.key_access_switch(&user),
        key_actions_warning: key_actions.is_nothing()
            && (permissions.contains(Permission::KeysOwn) || permissions.contains(Permission::KeysManage)),
        key_actions: key_actions.describe(),
        links_keys: manager.can.allows(Capability::ManageKeys),
        may_add_key,
        has_second_factor,
        key_rows,
        allowed,
        user,
        roles,
        keys,
    })
}

fn permission_labels(set: PermissionSet) -> Vec<&'static str> {
    set.iter().map(Permission::label).collect()
}
