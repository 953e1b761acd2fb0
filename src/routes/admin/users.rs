//! Admin → Users: list (search, sort, pages), create (with an initial password or a
//! one-time set-password link shown once), edit (name, administrator, roles), API key access,
//! deactivate / reactivate, reset password. For administrators and `users.manage` holders.

use actix_web::{HttpRequest, HttpResponse, get, http::StatusCode, post, web};
use askama::Template;
use serde::Deserialize;

use crate::{
    auth::{
        CurrentUser,
        session::{self, FlashLevel},
    },
    db::models::{ApiKey, Role, User, user::UserSort},
    domain::{NewPassword, Permission, PermissionSet},
    error::{AppError, AppResult, FieldErrors},
    routes::extract::HtmlForm,
    services::users::{self, CreateUser},
    state::AppState,
    views::{
        PageContext, Section,
        confirm::ConfirmPage,
        pager::{Pager, page_index},
        redirect, render, render_with_status,
        time::Stamp,
    },
};

const PER_PAGE: i64 = 25;
const BASE: &str = "/admin/users";

/// The signed-in user, if they may manage users.
pub struct UserManager(pub CurrentUser);

impl actix_web::FromRequest for UserManager {
    type Error = AppError;
    type Future = futures_util::future::LocalBoxFuture<'static, Result<Self, AppError>>;

    fn from_request(req: &HttpRequest, payload: &mut actix_web::dev::Payload) -> Self::Future {
        let user = CurrentUser::from_request(req, payload);
        Box::pin(async move {
            let user = user.await?;
            user.require(Permission::UsersManage)?;
            Ok(UserManager(user))
        })
    }
}

/// Whether the manager may hand out API key access (the service's rule).
fn may_grant_access(manager: &UserManager) -> bool {
    users::may_grant_key_access(manager.0.user.is_admin, &manager.0.permissions)
}

fn context(manager: &UserManager, title: &str) -> AppResult<PageContext> {
    PageContext::for_user(&manager.0, title, Section::AdminUsers)
}

fn user_id(req: &HttpRequest) -> AppResult<i64> {
    crate::routes::extract::path_id(req, "id")
}

/// `given` if it is a page of the user admin, else `fallback`.
fn return_path(given: &str, fallback: String) -> String {
    crate::views::paths::safe_local_path(given, BASE).unwrap_or(fallback)
}

// ---------------------------------------------------------------------------------------
// List

#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    q: Option<String>,
    sort: Option<String>,
    page: Option<i64>,
}

struct UserRow {
    id: i64,
    display_name: String,
    email: String,
    is_admin: bool,
    active: bool,
    api_key_access: bool,
    roles: Vec<String>,
    keys: i64,
    last_login: Option<Stamp>,
}

#[derive(Template)]
#[template(path = "admin/users/list.html")]
struct ListPage {
    ctx: PageContext,
    rows: Vec<UserRow>,
    q: String,
    sort: &'static str,
    may_create: bool,
    pager: Pager,
    may_grant_access: bool,
}

#[get("/admin/users")]
pub async fn list(
    manager: UserManager,
    state: web::Data<AppState>,
    query: web::Query<ListQuery>,
) -> AppResult<HttpResponse> {
    let q = crate::db::search::term(query.q.as_deref().unwrap_or_default());
    let sort = UserSort::from_code(query.sort.as_deref().unwrap_or_default());
    let page = page_index(query.page, PER_PAGE);
    let organization_id = manager.0.organization.id;
    let search = q.clone();
    let (users, total, roles, keys) = state
        .db
        .run(move |conn| {
            let (users, total) = User::list_for_admin(conn, organization_id, &search, sort, page, PER_PAGE)?;
            let ids: Vec<i64> = users.iter().map(|u| u.id).collect();
            Ok((users, total, Role::names_by_user(conn, &ids)?, ApiKey::count_by_owner(conn, &ids)?))
        })
        .await?;
    let (mut roles, keys) = (roles, keys);
    let rows: Vec<UserRow> = users
        .into_iter()
        .map(|u| UserRow {
            roles: roles.remove(&u.id).unwrap_or_default(),
            keys: keys.get(&u.id).copied().unwrap_or(0),
            last_login: Stamp::maybe(u.last_login_at),
            id: u.id,
            display_name: u.display_name,
            email: u.email,
            is_admin: u.is_admin,
            active: u.active,
            api_key_access: u.api_key_access || u.is_admin,
        })
        .collect();
    let pager = Pager::new(BASE, &[("q", q.as_str()), ("sort", sort.code())], page, PER_PAGE, rows.len(), total);
    let ctx = context(&manager, "Users")?;
    let may_grant_access = may_grant_access(&manager);
    render(&ListPage { ctx, rows, q, sort: sort.code(), may_create: true, may_grant_access, pager })
}

// ---------------------------------------------------------------------------------------
// Create

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

async fn role_choices(state: &AppState, organization_id: i64, checked: Vec<String>) -> AppResult<Vec<RoleChoice>> {
    let roles = state.db.run(move |conn| Ok(Role::list_for_org(conn, organization_id)?)).await?;
    Ok(roles
        .into_iter()
        .map(|r| RoleChoice { checked: checked.contains(&r.id.to_string()), id: r.id, name: r.name })
        .collect())
}

#[get("/admin/users/new")]
pub async fn new_form(manager: UserManager, state: web::Data<AppState>) -> AppResult<HttpResponse> {
    let roles = role_choices(&state, manager.0.organization.id, vec![]).await?;
    let ctx = context(&manager, "New user")?;
    render(&FormPage {
        ctx,
        creating: true,
        action_url: BASE.into(),
        cancel_href: BASE.into(),
        values: UserForm { password_mode: "link".into(), ..UserForm::default() },
        errors: FieldErrors::new(),
        roles,
        may_grant_admin: manager.0.user.is_admin,
        may_grant_access: may_grant_access(&manager),
        email_shown: String::new(),
    })
}

#[derive(Template)]
#[template(path = "admin/users/link.html")]
struct LinkPage {
    ctx: PageContext,
    heading: String,
    email: String,
    link: String,
    hours: i64,
    done_href: String,
}

/// The page that shows a set-password link, once (no cache may keep it).
fn link_response(
    manager: &UserManager,
    req: &HttpRequest,
    heading: String,
    email: String,
    token: &str,
) -> AppResult<HttpResponse> {
    let info = req.connection_info();
    let link = format!("{}://{}/password/{token}", info.scheme(), info.host());
    let ctx = context(manager, &heading)?;
    render(&LinkPage { ctx, heading, email, link, hours: users::LINK_LIFETIME_HOURS, done_href: BASE.into() })
}

#[post("/admin/users")]
pub async fn create(
    manager: UserManager,
    req: HttpRequest,
    state: web::Data<AppState>,
    form: HtmlForm<UserForm>,
) -> AppResult<HttpResponse> {
    let values = form.into_inner();
    let is_admin_manager = manager.0.user.is_admin;
    let grants_access = may_grant_access(&manager);
    let mut errors = FieldErrors::new();
    let by_link = values.password_mode != "password";
    let password = if by_link { None } else { errors.take("password", NewPassword::parse(&values.password)) };
    if values.is_admin.is_some() && !is_admin_manager {
        return Err(AppError::Forbidden);
    }
    let role_ids: Vec<i64> = values.role.iter().filter_map(|r| r.parse().ok()).collect();
    if !role_ids.is_empty() && !is_admin_manager {
        return Err(AppError::Forbidden);
    }
    let hash = match (&password, errors.is_empty()) {
        (Some(password), true) => Some(state.passwords.hash(password.clone()).await?),
        _ => None,
    };
    let actor = manager.0.actor();
    let organization_id = manager.0.organization.id;
    let input = CreateUser {
        organization_id,
        email: values.email.clone(),
        display_name: values.display_name.clone(),
        password_hash: hash,
        is_admin: values.is_admin.is_some(),
        api_key_access: values.api_key_access.is_some(),
    };
    let result = if errors.is_empty() {
        state
            .db
            .transaction(move |conn| {
                let user = users::create(conn, &actor, input)?;
                if !role_ids.is_empty() {
                    users::update(conn, &actor, organization_id, user.id, &user.display_name, None, Some(role_ids))?;
                }
                let token = if by_link {
                    Some(users::issue_password_link(conn, &actor, organization_id, user.id)?)
                } else {
                    None
                };
                Ok((user, token))
            })
            .await
    } else {
        Err(AppError::Invalid(errors))
    };
    match result {
        Ok((user, Some(token))) => {
            session::flash(&manager.0.session, FlashLevel::Success, format!("Created {}.", user.email));
            link_response(&manager, &req, format!("{} can now set a password", user.display_name), user.email, &token)
        }
        Ok((user, None)) => {
            session::flash(
                &manager.0.session,
                FlashLevel::Success,
                format!("Created {} with the password you chose.", user.email),
            );
            Ok(redirect(BASE))
        }
        Err(AppError::Invalid(errors)) => {
            let roles = role_choices(&state, organization_id, values.role.clone()).await?;
            let ctx = context(&manager, "New user")?;
            render_with_status(
                &FormPage {
                    ctx,
                    creating: true,
                    action_url: BASE.into(),
                    cancel_href: BASE.into(),
                    values: UserForm { password: String::new(), ..values },
                    errors,
                    roles,
                    may_grant_admin: is_admin_manager,
                    may_grant_access: grants_access,
                    email_shown: String::new(),
                },
                StatusCode::UNPROCESSABLE_ENTITY,
            )
        }
        Err(e) => Err(e),
    }
}

// ---------------------------------------------------------------------------------------
// Detail and edit

#[derive(Template)]
#[template(path = "admin/users/detail.html")]
struct DetailPage {
    ctx: PageContext,
    user: User,
    roles: Vec<String>,
    permissions: Vec<&'static str>,
    keys: i64,
    last_login: Option<Stamp>,
    created: Stamp,
    may_change: bool,
    may_grant_access: bool,
    is_self: bool,
}

async fn load_user(state: &AppState, organization_id: i64, id: i64) -> AppResult<User> {
    state.db.run(move |conn| Ok(User::find_in_org(conn, organization_id, id)?)).await
}

#[get("/admin/users/{id}")]
pub async fn detail(manager: UserManager, req: HttpRequest, state: web::Data<AppState>) -> AppResult<HttpResponse> {
    let id = user_id(&req)?;
    let organization_id = manager.0.organization.id;
    let (user, roles, permissions, keys) = state
        .db
        .run(move |conn| {
            let user = User::find_in_org(conn, organization_id, id)?;
            let roles = Role::names_by_user(conn, &[id])?.remove(&id).unwrap_or_default();
            let permissions = user.effective_permissions(conn)?;
            let keys = ApiKey::count_by_owner(conn, &[id])?.get(&id).copied().unwrap_or(0);
            Ok((user, roles, permissions, keys))
        })
        .await?;
    let may_change = !user.is_admin || manager.0.user.is_admin;
    let ctx = context(&manager, &user.display_name)?;
    render(&DetailPage {
        ctx,
        permissions: permission_labels(permissions),
        last_login: Stamp::maybe(user.last_login_at),
        created: Stamp::new(user.created_at),
        is_self: user.id == manager.0.user.id,
        may_grant_access: may_grant_access(&manager),
        user,
        roles,
        keys,
        may_change,
    })
}

fn permission_labels(set: PermissionSet) -> Vec<&'static str> {
    set.iter().map(Permission::label).collect()
}

#[get("/admin/users/{id}/edit")]
pub async fn edit_form(manager: UserManager, req: HttpRequest, state: web::Data<AppState>) -> AppResult<HttpResponse> {
    let id = user_id(&req)?;
    let organization_id = manager.0.organization.id;
    let (user, role_ids) = state
        .db
        .run(move |conn| Ok((User::find_in_org(conn, organization_id, id)?, Role::ids_of_user(conn, id)?)))
        .await?;
    if user.is_admin && !manager.0.user.is_admin {
        return Err(AppError::Forbidden);
    }
    let checked = role_ids.iter().map(|r| r.to_string()).collect();
    let roles = role_choices(&state, organization_id, checked).await?;
    let ctx = context(&manager, &format!("Edit {}", user.display_name))?;
    render(&FormPage {
        ctx,
        creating: false,
        action_url: format!("{BASE}/{id}/edit"),
        cancel_href: format!("{BASE}/{id}"),
        values: UserForm {
            display_name: user.display_name,
            is_admin: user.is_admin.then(|| "on".into()),
            role: role_ids.iter().map(|r| r.to_string()).collect(),
            ..UserForm::default()
        },
        errors: FieldErrors::new(),
        roles,
        may_grant_admin: manager.0.user.is_admin,
        may_grant_access: may_grant_access(&manager),
        email_shown: user.email,
    })
}

#[post("/admin/users/{id}/edit")]
pub async fn edit(
    manager: UserManager,
    req: HttpRequest,
    state: web::Data<AppState>,
    form: HtmlForm<UserForm>,
) -> AppResult<HttpResponse> {
    let id = user_id(&req)?;
    let values = form.into_inner();
    let actor = manager.0.actor();
    let organization_id = manager.0.organization.id;
    let admin = manager.0.user.is_admin;
    let grants_access = may_grant_access(&manager);
    let (name, is_admin) = (values.display_name.clone(), admin.then(|| values.is_admin.is_some()));
    let role_ids: Option<Vec<i64>> = admin.then(|| values.role.iter().filter_map(|r| r.parse().ok()).collect());
    let result = state
        .db
        .transaction(move |conn| users::update(conn, &actor, organization_id, id, &name, is_admin, role_ids))
        .await;
    match result {
        Ok(user) => {
            session::flash(
                &manager.0.session,
                FlashLevel::Success,
                format!("Saved the changes to {}.", user.display_name),
            );
            Ok(redirect(&format!("{BASE}/{id}")))
        }
        Err(AppError::Conflict(message)) => {
            session::flash(&manager.0.session, FlashLevel::Error, message);
            Ok(redirect(&format!("{BASE}/{id}")))
        }
        Err(AppError::Invalid(errors)) => {
            let roles = role_choices(&state, organization_id, values.role.clone()).await?;
            let user = load_user(&state, organization_id, id).await?;
            let ctx = context(&manager, &format!("Edit {}", user.display_name))?;
            render_with_status(
                &FormPage {
                    ctx,
                    creating: false,
                    action_url: format!("{BASE}/{id}/edit"),
                    cancel_href: format!("{BASE}/{id}"),
                    values,
                    errors,
                    roles,
                    may_grant_admin: admin,
                    may_grant_access: grants_access,
                    email_shown: user.email,
                },
                StatusCode::UNPROCESSABLE_ENTITY,
            )
        }
        Err(e) => Err(e),
    }
}

// ---------------------------------------------------------------------------------------
// API key access, deactivation: confirmations

#[derive(Debug, Default, Deserialize)]
pub struct ReturnQuery {
    return_to: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct ToggleForm {
    #[serde(default)]
    grant: String,
    #[serde(default)]
    return_to: String,
}

#[get("/admin/users/{id}/access")]
pub async fn access_form(
    manager: UserManager,
    req: HttpRequest,
    state: web::Data<AppState>,
    query: web::Query<ReturnQuery>,
) -> AppResult<HttpResponse> {
    let id = user_id(&req)?;
    let user = load_user(&state, manager.0.organization.id, id).await?;
    if user.is_admin {
        return Err(AppError::Conflict("Administrators always have API key access.".into()));
    }
    let grant = !user.api_key_access;
    let (heading, message, button) = if grant {
        (
            format!("Grant API key access to {}?", user.display_name),
            format!("{} will be able to create and manage their own API keys.", user.display_name),
            "Grant access",
        )
    } else {
        (
            format!("Revoke API key access from {}?", user.display_name),
            format!(
                "{} can no longer manage API keys, and their personal keys stop working at once. Organization keys they are the proxy of keep working.",
                user.display_name
            ),
            "Revoke access",
        )
    };
    let return_to = return_path(query.return_to.as_deref().unwrap_or_default(), format!("{BASE}/{id}"));
    let ctx = context(&manager, &heading)?;
    render(&ConfirmPage {
        ctx,
        heading,
        message,
        note: None,
        detail: Some(user.email),
        action_url: format!("{BASE}/{id}/access"),
        button,
        danger: !grant,
        with_reason: false,
        hidden: vec![("grant", if grant { "1" } else { "0" }.into())],
        cancel_href: return_to.clone(),
        return_to,
    })
}

#[post("/admin/users/{id}/access")]
pub async fn access(
    manager: UserManager,
    req: HttpRequest,
    state: web::Data<AppState>,
    form: HtmlForm<ToggleForm>,
) -> AppResult<HttpResponse> {
    let id = user_id(&req)?;
    let form = form.into_inner();
    let grant = match form.grant.as_str() {
        "1" => true,
        "0" => false,
        _ => return Err(AppError::BadRequest("Say whether to grant or revoke access.".into())),
    };
    let actor = manager.0.actor();
    let organization_id = manager.0.organization.id;
    let user =
        state.db.transaction(move |conn| users::set_api_key_access(conn, &actor, organization_id, id, grant)).await?;
    let message = if grant {
        format!("Granted API key access to {}.", user.display_name)
    } else {
        format!("Revoked API key access from {}; their personal keys no longer work.", user.display_name)
    };
    session::flash(&manager.0.session, FlashLevel::Success, message);
    Ok(redirect(&return_path(&form.return_to, format!("{BASE}/{id}"))))
}

#[get("/admin/users/{id}/{change:deactivate|reactivate}")]
pub async fn active_form(
    manager: UserManager,
    req: HttpRequest,
    state: web::Data<AppState>,
    query: web::Query<ReturnQuery>,
) -> AppResult<HttpResponse> {
    let id = user_id(&req)?;
    let activate = req.match_info().get("change") == Some("reactivate");
    let user = load_user(&state, manager.0.organization.id, id).await?;
    let (heading, message, button) = if activate {
        (
            format!("Reactivate {}?", user.display_name),
            format!("{} can sign in again.", user.display_name),
            "Reactivate",
        )
    } else {
        (
            format!("Deactivate {}?", user.display_name),
            format!(
                "{} is signed out everywhere at once and cannot sign in; their personal keys stop working. Organization keys they are the proxy of keep working.",
                user.display_name
            ),
            "Deactivate",
        )
    };
    let return_to = return_path(query.return_to.as_deref().unwrap_or_default(), format!("{BASE}/{id}"));
    let ctx = context(&manager, &heading)?;
    render(&ConfirmPage {
        ctx,
        heading,
        message,
        note: None,
        detail: Some(user.email),
        action_url: format!("{BASE}/{id}/{}", if activate { "reactivate" } else { "deactivate" }),
        button,
        danger: !activate,
        with_reason: false,
        hidden: vec![],
        cancel_href: return_to.clone(),
        return_to,
    })
}

#[derive(Debug, Deserialize)]
pub struct ReturnForm {
    #[serde(default)]
    return_to: String,
}

#[post("/admin/users/{id}/{change:deactivate|reactivate}")]
pub async fn set_active(
    manager: UserManager,
    req: HttpRequest,
    state: web::Data<AppState>,
    form: HtmlForm<ReturnForm>,
) -> AppResult<HttpResponse> {
    let id = user_id(&req)?;
    let activate = req.match_info().get("change") == Some("reactivate");
    let actor = manager.0.actor();
    let organization_id = manager.0.organization.id;
    let result = state.db.transaction(move |conn| users::set_active(conn, &actor, organization_id, id, activate)).await;
    let target = return_path(&form.0.return_to, format!("{BASE}/{id}"));
    match result {
        Ok(user) => {
            let message = if activate {
                format!("Reactivated {}.", user.display_name)
            } else {
                format!("Deactivated {}: signed out everywhere, personal keys stopped.", user.display_name)
            };
            session::flash(&manager.0.session, FlashLevel::Success, message);
            Ok(redirect(&target))
        }
        Err(AppError::Conflict(message)) => {
            session::flash(&manager.0.session, FlashLevel::Error, message);
            Ok(redirect(&target))
        }
        Err(e) => Err(e),
    }
}

// ---------------------------------------------------------------------------------------
// Reset password

#[derive(Template)]
#[template(path = "admin/users/password.html")]
struct PasswordPage {
    ctx: PageContext,
    user: User,
    mode: String,
    error: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct PasswordForm {
    #[serde(default)]
    password_mode: String,
    #[serde(default)]
    password: String,
}

#[get("/admin/users/{id}/password")]
pub async fn password_form(
    manager: UserManager,
    req: HttpRequest,
    state: web::Data<AppState>,
) -> AppResult<HttpResponse> {
    let id = user_id(&req)?;
    let user = load_user(&state, manager.0.organization.id, id).await?;
    if user.is_admin && !manager.0.user.is_admin {
        return Err(AppError::Forbidden);
    }
    let ctx = context(&manager, &format!("Reset the password of {}", user.display_name))?;
    render(&PasswordPage { ctx, user, mode: "link".into(), error: None })
}

#[post("/admin/users/{id}/password")]
pub async fn reset_password(
    manager: UserManager,
    req: HttpRequest,
    state: web::Data<AppState>,
    form: HtmlForm<PasswordForm>,
) -> AppResult<HttpResponse> {
    let id = user_id(&req)?;
    let form = form.into_inner();
    let actor = manager.0.actor();
    let organization_id = manager.0.organization.id;
    if form.password_mode == "password" {
        let password = match NewPassword::parse(&form.password) {
            Ok(password) => password,
            Err(message) => {
                let user = load_user(&state, organization_id, id).await?;
                let ctx = context(&manager, &format!("Reset the password of {}", user.display_name))?;
                return render_with_status(
                    &PasswordPage { ctx, user, mode: "password".into(), error: Some(message.into()) },
                    StatusCode::UNPROCESSABLE_ENTITY,
                );
            }
        };
        let hash = state.passwords.hash(password).await?;
        let user = state
            .db
            .transaction(move |conn| users::reset_password(conn, &actor, organization_id, id, Some(hash)))
            .await?;
        session::flash(
            &manager.0.session,
            FlashLevel::Success,
            format!("Set a new password for {}; they were signed out everywhere.", user.display_name),
        );
        return Ok(redirect(&format!("{BASE}/{id}")));
    }
    let (user, token) = state
        .db
        .transaction(move |conn| {
            let user = users::reset_password(conn, &actor, organization_id, id, None)?;
            let token = users::issue_password_link(conn, &actor, organization_id, id)?;
            Ok((user, token))
        })
        .await?;
    link_response(&manager, &req, format!("A new password link for {}", user.display_name), user.email, &token)
}
