//! `/api/v1/users`: the organization's users (scope `users:read`) and their API key access
//! (`users:access`), through the same user service as Admin → Users.

use actix_web::{HttpRequest, HttpResponse, get, http::header, put, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{auth::Caller, problem::Problem};
use crate::{
    db::models::User,
    domain::{Capability, TokenScope},
    routes::api::management::ProblemBody,
    services::users,
    state::AppState,
};

/// A user as the management API shows them.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UserView {
    pub id: i64,
    pub email: String,
    pub display_name: String,
    pub is_admin: bool,
    pub active: bool,
    pub api_key_access: bool,
    pub created_at: DateTime<Utc>,
    pub last_login_at: Option<DateTime<Utc>>,
}

impl From<User> for UserView {
    fn from(user: User) -> Self {
        Self {
            id: user.id,
            email: user.email,
            display_name: user.display_name,
            is_admin: user.is_admin,
            active: user.active,
            api_key_access: user.api_key_access,
            created_at: user.created_at,
            last_login_at: user.last_login_at,
        }
    }
}

/// A page of users, by id.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UserPage {
    pub data: Vec<UserView>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct UsersQuery {
    limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    cursor: Option<String>,
}

#[utoipa::path(
    get,
    path = "/users",
    tag = "users",
    summary = "List the organization's users",
    params(UsersQuery),
    responses((status = 200, description = "A page of users", body = UserPage)),
    security(("managementToken" = []))
)]
#[get("/users")]
pub async fn list_users(
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<UsersQuery>,
) -> Result<HttpResponse, Problem> {
    caller.require(TokenScope::UsersRead, Capability::ManageUsers)?;
    let after = match query.cursor.as_deref() {
        None => None,
        Some(cursor) => Some(
            cursor
                .parse::<i64>()
                .map_err(|_| Problem::invalid_field("cursor", "Use the next_cursor of a previous page."))?,
        ),
    };
    let limit = query.limit.unwrap_or(50).clamp(1, 200);
    let organization_id = caller.organization_id()?;
    let users = state.db.run(move |conn| Ok(User::page_in_org(conn, organization_id, after, limit)?)).await?;
    let next = (users.len() as i64 == limit).then(|| users.last().map(|u| u.id.to_string())).flatten();
    let data: Vec<UserView> = users.into_iter().map(UserView::from).collect();
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(json!({ "data": data, "next_cursor": next })))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AccessBody {
    granted: bool,
}

#[utoipa::path(
    put,
    path = "/users/{id}/api-key-access",
    tag = "users",
    summary = "Grant or revoke a user's API key access",
    params(("id" = i64, Path, description = "The user's id")),
    request_body = AccessBody,
    responses((status = 200, description = "The user", body = UserView), (status = 404, description = "No such user in the token's organization", body = Problem, content_type = "application/problem+json")),
    security(("managementToken" = []))
)]
#[put("/users/{id}/api-key-access")]
pub async fn set_api_key_access(
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    body: ProblemBody,
) -> Result<HttpResponse, Problem> {
    caller.require_scope(TokenScope::UsersAccess)?;
    let user_id: i64 = path.parse().map_err(|_| Problem::not_found())?;
    let json = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_none_or(|v| v.starts_with("application/json"));
    if !json {
        return Err(Problem::new(
            actix_web::http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Send the body as application/json.",
        ));
    }
    let body: AccessBody = serde_json::from_slice(&body.0)
        .map_err(|e| Problem::bad_request(format!("The body is {{\"granted\": true|false}}: {e}")))?;
    let (actor, organization_id) = (caller.actor.clone(), caller.organization_id()?);
    let user = state
        .db
        .transaction(move |conn| users::set_api_key_access(conn, &actor, organization_id, user_id, body.granted))
        .await?;
    Ok(HttpResponse::Ok().insert_header((header::CACHE_CONTROL, "no-store")).json(UserView::from(user)))
}
