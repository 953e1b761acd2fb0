//! Reset a user's password: set a new one now, or send a new one-time link (shown once).

use actix_web::{HttpRequest, HttpResponse, get, http::StatusCode, post, web};
use askama::Template;
use serde::Deserialize;

use super::{BASE, UserManager, UserPath, create::link_response, load_user};
use crate::{
    auth::session::{self, FlashLevel},
    db::models::User,
    domain::NewPassword,
    error::AppResult,
    routes::extract::HtmlForm,
    services::users,
    state::AppState,
    views::{PageContext, redirect, render_with_status},
};

#[derive(Template)]
#[template(path = "admin/users/password.html")]
struct PasswordPage {
    ctx: PageContext,
    user: User,
    mode: String,
    error: Option<String>,
}

impl PasswordPage {
    /// The reset form for `user`, in `mode` (`link` or `password`), with the password's `error`.
    fn render(manager: &UserManager, user: User, mode: &str, error: Option<String>) -> AppResult<HttpResponse> {
        let ctx = manager.context(&format!("Reset the password of {}", user.display_name))?;
        let status = if error.is_some() { StatusCode::UNPROCESSABLE_ENTITY } else { StatusCode::OK };
        render_with_status(&PasswordPage { ctx, user, mode: mode.into(), error }, status)
    }
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
    UserPath { who: manager, id }: UserPath,
    state: web::Data<AppState>,
) -> AppResult<HttpResponse> {
    let user = load_user(&state, &manager, id, |allowed, _| allowed.sensitive).await?;
    PasswordPage::render(&manager, user, "link", None)
}

#[post("/admin/users/{id}/password")]
pub async fn reset_password(
    UserPath { who: manager, id }: UserPath,
    req: HttpRequest,
    state: web::Data<AppState>,
    form: HtmlForm<PasswordForm>,
) -> AppResult<HttpResponse> {
    let form = form.into_inner();
    if form.password_mode == "password" {
        let password = match NewPassword::parse(&form.password) {
            Ok(password) => password,
            Err(message) => {
                let user = load_user(&state, &manager, id, |allowed, _| allowed.sensitive).await?;
                return PasswordPage::render(&manager, user, "password", Some(message.into()));
            }
        };
        let hash = state.passwords.hash(password).await?;
        let user = manager
            .change(&state, move |conn, actor, organization| {
                users::reset_password(conn, actor, organization, id, Some(hash))
            })
            .await?;
        session::flash(
            &manager.0.session,
            FlashLevel::Success,
            format!("Set a new password for {}; they were signed out everywhere.", user.display_name),
        );
        return Ok(redirect(&format!("{BASE}/{id}")));
    }
    let (user, token) = manager
        .change(&state, move |conn, actor, organization| {
            let user = users::reset_password(conn, actor, organization, id, None)?;
            let token = users::issue_password_link(conn, actor, organization, id)?;
            Ok((user, token))
        })
        .await?;
    link_response(&manager, &req, format!("A new password link for {}", user.display_name), user.email, &token)
}
