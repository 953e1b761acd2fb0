//! Admin → Roles: custom roles with their permissions and the API actions holders may put on
//! keys. Administrators only.

use actix_web::{HttpResponse, get, post, web};
use askama::Template;
use serde::Deserialize;

use crate::{
    auth::{
        OrgAdmin,
        session::{self, FlashLevel},
    },
    db::models::{ApiAction, Role},
    domain::Permission,
    error::{AppResult, FieldErrors},
    routes::{
        extract::{HtmlForm, IdPath},
        keys::form::Choice,
        saved,
    },
    services::roles,
    state::AppState,
    views::{PageContext, Section, confirm::ConfirmPage, redirect, render},
};

const BASE: &str = "/admin/roles";

/// A page of one role: the administrator and the role's id.
type RolePath = IdPath<OrgAdmin>;

struct RoleRow {
    id: i64,
    name: String,
    description: String,
    permissions: Vec<&'static str>,
    all_api_actions: bool,
    api_actions: Vec<String>,
    holders: i64,
}

#[derive(Template)]
#[template(path = "admin/roles/list.html")]
struct ListPage {
    ctx: PageContext,
    rows: Vec<RoleRow>,
}

#[get("/admin/roles")]
pub async fn list(admin: OrgAdmin, state: web::Data<AppState>) -> AppResult<HttpResponse> {
    let organization_id = admin.organization.id;
    let (roles, permissions, actions, holders) = state
        .db
        .run(move |conn| {
            Ok((
                Role::list_for_org(conn, organization_id)?,
                Role::permissions_by_role(conn, organization_id)?,
                Role::api_actions_by_role(conn, organization_id)?,
                Role::member_counts(conn, organization_id)?,
            ))
        })
        .await?;
    let (mut permissions, mut actions) = (permissions, actions);
    let rows = roles
        .into_iter()
        .map(|r| RoleRow {
            permissions: permissions
                .remove(&r.id)
                .unwrap_or_default()
                .iter()
                .filter_map(|c| Permission::from_code(c))
                .map(Permission::label)
                .collect(),
            api_actions: actions.remove(&r.id).unwrap_or_default(),
            holders: holders.get(&r.id).copied().unwrap_or(0),
            all_api_actions: r.all_api_actions,
            id: r.id,
            name: r.name,
            description: r.description,
        })
        .collect();
    let ctx = PageContext::for_user(&admin, "Roles", Section::AdminRoles)?;
    render(&ListPage { ctx, rows })
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct RoleForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    permission: Vec<String>,
    #[serde(default)]
    actions_mode: String,
    #[serde(default)]
    action: Vec<String>,
}

#[derive(Template)]
#[template(path = "admin/roles/form.html")]
struct FormPage {
    ctx: PageContext,
    heading: String,
    action_url: String,
    values: RoleForm,
    errors: FieldErrors,
    permissions: Vec<Choice>,
    actions: Vec<Choice>,
}

async fn form_page(
    admin: &OrgAdmin,
    state: &AppState,
    heading: String,
    action_url: String,
    values: RoleForm,
    errors: FieldErrors,
) -> AppResult<FormPage> {
    let catalog = state.db.run(|conn| Ok(ApiAction::list_active(conn)?)).await?;
    let permissions = Permission::ALL
        .iter()
        .map(|p| Choice {
            value: p.code().into(),
            label: p.label().into(),
            hint: p.description().into(),
            checked: values.permission.iter().any(|c| c == p.code()),
        })
        .collect();
    let actions = catalog.into_iter().map(|a| Choice::action(a, &values.action)).collect();
    let ctx = PageContext::for_user(admin, &heading, Section::AdminRoles)?;
    Ok(FormPage { ctx, heading, action_url, values, errors, permissions, actions })
}

#[get("/admin/roles/new")]
pub async fn new_form(admin: OrgAdmin, state: web::Data<AppState>) -> AppResult<HttpResponse> {
    let values = RoleForm { actions_mode: "selected".into(), ..RoleForm::default() };
    render(&form_page(&admin, &state, "New role".into(), BASE.into(), values, FieldErrors::new()).await?)
}

/// Saves a new role (`id` None) or changes one.
async fn save(
    admin: OrgAdmin,
    state: web::Data<AppState>,
    id: Option<i64>,
    values: RoleForm,
) -> AppResult<HttpResponse> {
    let submitted = values.clone();
    let result = admin
        .change(&state, move |conn, actor, organization_id| {
            let input = roles::parse(
                conn,
                &submitted.name,
                &submitted.description,
                &submitted.permission,
                &submitted.actions_mode,
                &submitted.action,
            )?;
            match id {
                None => roles::create(conn, actor, organization_id, input),
                Some(id) => roles::update(conn, actor, organization_id, id, input),
            }
        })
        .await;
    let verb = if id.is_some() { "Saved" } else { "Created" };
    // A role that lets people create keys but allows no action is the trap of a new role
    // (its default): say so right away.
    let keys_without_actions = values.actions_mode != "all"
        && values.action.is_empty()
        && values.permission.iter().any(|p| p == Permission::KeysManage.code() || p == Permission::KeysOwn.code());
    let (heading, url) = match id {
        None => ("New role".to_string(), BASE.to_string()),
        Some(id) => (format!("Edit {}", values.name), format!("{BASE}/{id}/edit")),
    };
    saved::answer(
        &admin.session,
        result,
        |role| {
            let warning = if keys_without_actions {
                " It allows no API actions: a key its holders create could do nothing unless another \
                 of their roles allows some."
            } else {
                ""
            };
            (format!("{verb} the role {}.{warning}", role.name), BASE.into())
        },
        |errors| form_page(&admin, &state, heading, url, values, errors),
    )
    .await
}

#[post("/admin/roles")]
pub async fn create(admin: OrgAdmin, state: web::Data<AppState>, form: HtmlForm<RoleForm>) -> AppResult<HttpResponse> {
    save(admin, state, None, form.into_inner()).await
}

#[get("/admin/roles/{id}/edit")]
pub async fn edit_form(IdPath { who: admin, id }: RolePath, state: web::Data<AppState>) -> AppResult<HttpResponse> {
    let organization_id = admin.organization.id;
    let (role, permissions, actions) = state
        .db
        .run(move |conn| {
            let role = Role::find_in_org(conn, organization_id, id)?;
            Ok((
                role,
                Role::permissions_by_role(conn, organization_id)?.remove(&id).unwrap_or_default(),
                Role::api_actions_by_role(conn, organization_id)?.remove(&id).unwrap_or_default(),
            ))
        })
        .await?;
    let values = RoleForm {
        name: role.name.clone(),
        description: role.description,
        permission: permissions,
        actions_mode: if role.all_api_actions { "all".into() } else { "selected".into() },
        action: actions,
    };
    let page = form_page(
        &admin,
        &state,
        format!("Edit {}", role.name),
        format!("{BASE}/{id}/edit"),
        values,
        FieldErrors::new(),
    )
    .await?;
    render(&page)
}

#[post("/admin/roles/{id}/edit")]
pub async fn edit(
    IdPath { who: admin, id }: RolePath,
    state: web::Data<AppState>,
    form: HtmlForm<RoleForm>,
) -> AppResult<HttpResponse> {
    save(admin, state, Some(id), form.into_inner()).await
}

#[get("/admin/roles/{id}/delete")]
pub async fn delete_form(IdPath { who: admin, id }: RolePath, state: web::Data<AppState>) -> AppResult<HttpResponse> {
    let organization_id = admin.organization.id;
    let (role, holders) = state
        .db
        .run(move |conn| {
            Ok((
                Role::find_in_org(conn, organization_id, id)?,
                Role::member_counts(conn, organization_id)?.get(&id).copied().unwrap_or(0),
            ))
        })
        .await?;
    let heading = format!("Delete the role \"{}\"?", role.name);
    let ctx = PageContext::for_user(&admin, &heading, Section::AdminRoles)?;
    render(&ConfirmPage::deletion(
        ctx,
        heading,
        format!(
            "{holders} user(s) hold this role and lose its permissions at once; personal keys of theirs lose the API actions it allowed."
        ),
        None,
        format!("{BASE}/{id}/delete"),
        "Delete role",
        BASE,
    ))
}

#[post("/admin/roles/{id}/delete")]
pub async fn delete(IdPath { who: admin, id }: RolePath, state: web::Data<AppState>) -> AppResult<HttpResponse> {
    let role =
        admin.change(&state, move |conn, actor, organization| roles::delete(conn, actor, organization, id)).await?;
    session::flash(&admin.session, FlashLevel::Success, format!("Deleted the role {}.", role.name));
    Ok(redirect(BASE))
}
