//! The list of users: search, sort, pages.

use actix_web::{HttpResponse, get, web};
use askama::Template;
use serde::Deserialize;

use super::{BASE, UserManager};
use crate::{
    db::models::{ApiKey, Role, User, user::UserSort},
    error::AppResult,
    services::users,
    state::AppState,
    views::{
        PageContext,
        pager::{Pager, page_index},
        render,
        time::Stamp,
    },
};

const PER_PAGE: i64 = 25;

#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    q: Option<String>,
    sort: Option<String>,
    /// `1`: only the users whose keys work (the overview's "users with API key access").
    access: Option<String>,
    page: Option<i64>,
}

struct UserRow {
    id: i64,
    display_name: String,
    email: String,
    is_admin: bool,
    active: bool,
    api_key_access: bool,
    /// Whether the manager may flip the access switch of this user.
    access_switch: bool,
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
    with_access: bool,
    may_create: bool,
    pager: Pager,
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
    let with_access = query.access.as_deref().is_some_and(|a| !a.is_empty());
    let organization_id = manager.0.organization.id;
    let (search, actor) = (q.clone(), manager.actor());
    let (users, allowed, total, roles, keys) = state
        .db
        .run(move |conn| {
            let (users, total) =
                User::list_for_admin_filtered(conn, organization_id, &search, with_access, sort, page, PER_PAGE)?;
            let allowed = users::allowed_for_each(conn, &actor, organization_id, &users)?;
            let ids: Vec<i64> = users.iter().map(|u| u.id).collect();
            Ok((users, allowed, total, Role::names_by_user(conn, &ids)?, ApiKey::count_by_owner(conn, &ids)?))
        })
        .await?;
    let (mut roles, keys) = (roles, keys);
    let rows: Vec<UserRow> = users
        .into_iter()
        .zip(allowed)
        .map(|(u, allowed)| UserRow {
            access_switch: allowed.key_access_switch(&u),
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
    let access = if with_access { "1" } else { "" };
    let params = [("q", q.as_str()), ("sort", sort.code()), ("access", access)];
    let pager = Pager::new(BASE, &params, page, PER_PAGE, rows.len(), total);
    let ctx = manager.context("Users")?;
    render(&ListPage { ctx, rows, q, sort: sort.code(), with_access, may_create: true, pager })
}
