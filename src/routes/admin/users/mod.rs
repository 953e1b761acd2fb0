//! Admin → Users, for administrators and `users.manage` holders. One file per flow:
//!
//! - `list`: the list (search, sort, pages);
//! - `create`: the new-user form and its submission (with an initial password, or a one-time
//!   set-password link shown once on the link page);
//! - `detail`: one user's page;
//! - `edit`: name, administrator, roles;
//! - `access`: grant or revoke API key access (confirmation, then the change);
//! - `active`: deactivate or reactivate (confirmation, then the change);
//! - `password`: reset the password (a new one now, or a new link);
//! - `factors`: reset the second factor (confirmation, then the change).
//!
//! Here: what the flows share — the `UserPath` extractor, the user form,
//! and small helpers.

pub mod access;
pub mod active;
pub mod create;
pub mod detail;
pub mod edit;
pub mod factors;
pub mod list;
pub mod password;

use actix_web::{HttpResponse, http::StatusCode};
use askama::Template;
use serde::Deserialize;

use crate::{
    auth::UserManager,
    db::models::{Role, User},
    domain::Capability,
    error::{AppError, AppResult, FieldErrors},
    routes::extract::IdPath,
    services::users::{self, Allowed},
    state::AppState,
    views::{PageContext, Section, confirm::ConfirmPage, render, render_with_status},
};

const BASE: &str = "/admin/users";

/// A page of one user (`/admin/users/{id}/…`): the manager asking, and the user's id.
pub type UserPath = IdPath<UserManager>;

impl UserManager {
    fn context(&self, title: &str) -> AppResult<PageContext> {
        PageContext::for_user(&self.0, title, Section::AdminUsers)
    }
}

/// User `id` of the manager's organization, if the manager may do to them what `page_needs`
/// asks of the service's [`Allowed`] (else 403): a form is never shown for a change that
/// would be refused.
async fn load_user(
    state: &AppState,
    manager: &UserManager,
    id: i64,
    page_needs: fn(&Allowed, &User) -> bool,
) -> AppResult<User> {
    let (actor, organization_id) = (manager.actor(), manager.organization.id);
    let (user, allowed) = state.db.run(move |conn| users::allowed_changes(conn, &actor, organization_id, id)).await?;
    if page_needs(&allowed, &user) { Ok(user) } else { Err(AppError::Forbidden) }
}

/// `given` if it is a page of the user admin, else the page of user `id`.
fn return_path(given: &str, id: i64) -> String {
    crate::views::paths::safe_local_path(given, BASE).unwrap_or_else(|| format!("{BASE}/{id}"))
}

// Texts of confirmations come from text templates (`*.txt`: not escaped by `views::text`,
// since the page that shows them escapes them).
pub(super) use crate::views::text;

// ---------------------------------------------------------------------------------------
// Confirmations, shared by `access` and `active`

#[derive(Debug, Default, Deserialize)]
pub struct ReturnQuery {
    return_to: Option<String>,
}

/// An "are you sure?" page for a change to one user, posted to `{BASE}/{id}/{action}`.
struct Confirmation<'a> {
    heading: String,
    message: String,
    action: &'a str,
    button: &'static str,
    danger: bool,
    hidden: Vec<(&'static str, String)>,
    /// A warning or hint under the message.
    note: Option<String>,
}

impl Confirmation<'_> {
    fn render(self, manager: &UserManager, user: User, query: &ReturnQuery) -> AppResult<HttpResponse> {
        let return_to = return_path(query.return_to.as_deref().unwrap_or_default(), user.id);
        render(&ConfirmPage {
            ctx: manager.context(&self.heading)?,
            heading: self.heading,
            message: self.message,
            note: self.note,
            detail: Some(user.email),
            action_url: format!("{BASE}/{}/{}", user.id, self.action),
            button: self.button,
            danger: self.danger,
            with_reason: false,
            hidden: self.hidden,
            cancel_href: return_to.clone(),
            return_to,
        })
    }
}

// ---------------------------------------------------------------------------------------
// The user form, shared by `create` and `edit`

/// A role checkbox.
struct RoleChoice {
    id: i64,
    name: String,
    checked: bool,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct UserForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    display_name: String,
    #[serde(default)]
    is_admin: Option<String>,
    #[serde(default)]
    api_key_access: Option<String>,
    #[serde(default)]
    role: Vec<String>,
    /// `password` (set one now) or `link` (a one-time link for the user).
    #[serde(default)]
    password_mode: String,
    #[serde(default)]
    password: String,
}

impl UserForm {
    /// The chosen roles that are ids (anything else cannot be a role).
    fn role_ids(&self) -> Vec<i64> {
        self.role.iter().filter_map(|r| r.parse().ok()).collect()
    }
}

#[derive(Template)]
#[template(path = "admin/users/form.html")]
struct FormPage {
    ctx: PageContext,
    creating: bool,
    action_url: String,
    cancel_href: String,
    values: UserForm,
    errors: FieldErrors,
    roles: Vec<RoleChoice>,
    may_grant_admin: bool,
    may_grant_access: bool,
    email_shown: String,
}

/// The user form, for a new user (`user` is `None`) or to edit `user`, with the roles in
/// `values` checked.
async fn render_form(
    manager: &UserManager,
    state: &AppState,
    user: Option<&User>,
    values: UserForm,
    errors: FieldErrors,
    status: StatusCode,
) -> AppResult<HttpResponse> {
    let organization_id = manager.0.organization.id;
    let all = state.db.run(move |conn| Ok(Role::list_for_org(conn, organization_id)?)).await?;
    let roles = all
        .into_iter()
        .map(|r| RoleChoice { checked: values.role.contains(&r.id.to_string()), id: r.id, name: r.name })
        .collect();
    let (ctx, action_url, cancel_href, email_shown) = match user {
        None => (manager.context("New user")?, BASE.into(), BASE.into(), String::new()),
        Some(user) => (
            manager.context(&format!("Edit {}", user.display_name))?,
            format!("{BASE}/{}/edit", user.id),
            format!("{BASE}/{}", user.id),
            user.email.clone(),
        ),
    };
    let page = FormPage {
        ctx,
        creating: user.is_none(),
        action_url,
        cancel_href,
        values,
        errors,
        roles,
        may_grant_admin: manager.can.allows(Capability::Administer),
        may_grant_access: manager.can.allows(Capability::GrantKeyAccess),
        email_shown,
    };
    render_with_status(&page, status)
}
