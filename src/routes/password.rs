//! `/password/{token}`: a web user sets their password through a one-time link.

use actix_session::Session;
use actix_web::{HttpRequest, HttpResponse, get, http::StatusCode, post, web};
use askama::Template;
use serde::Deserialize;

use crate::{
    auth::session::{self as typed, FlashLevel},
    domain::{ClientIp, NewPassword},
    error::{AppError, AppResult},
    routes::extract::HtmlForm,
    services::{Actor, users},
    state::AppState,
    views::{PageContext, redirect, render, render_with_status},
};

#[derive(Template)]
#[template(path = "auth/set_password.html")]
struct SetPasswordPage {
    ctx: PageContext,
    email: String,
    action_url: String,
    error: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct SetPasswordForm {
    #[serde(default)]
    password: String,
    #[serde(default)]
    confirm: String,
}

fn token(req: &HttpRequest) -> AppResult<String> {
    let token = req.match_info().get("token").unwrap_or_default();
    if token.len() == 43 && token.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
        Ok(token.to_string())
    } else {
        Err(AppError::NotFound)
    }
}

async fn email_of_link(state: &AppState, token: String) -> AppResult<String> {
    let user = state.db.run(move |conn| users::user_of_link(conn, &token)).await?;
    user.map(|u| u.email).ok_or_else(|| {
        AppError::BadRequest("This link has expired or was already used. Ask an administrator for a new one.".into())
    })
}

#[get("/password/{token}")]
pub async fn set_form(req: HttpRequest, session: Session, state: web::Data<AppState>) -> AppResult<HttpResponse> {
    let token = token(&req)?;
    let email = email_of_link(&state, token.clone()).await?;
    let ctx = PageContext::anonymous(&session, "Set your password")?;
    render(&SetPasswordPage { ctx, email, action_url: format!("/password/{token}"), error: None })
}

#[post("/password/{token}")]
pub async fn set(
    req: HttpRequest,
    session: Session,
    state: web::Data<AppState>,
    submitted: HtmlForm<SetPasswordForm>,
) -> AppResult<HttpResponse> {
    let token = token(&req)?;
    let form = submitted.into_inner();
    let problem = match NewPassword::parse(&form.password) {
        Err(message) => Some(message.to_string()),
        Ok(_) if form.password != form.confirm => Some("The two passwords differ.".to_string()),
        Ok(password) => {
            let hash = state.passwords.hash(password).await?;
            let actor = Actor::anonymous(ClientIp::of(&req));
            let link = token.clone();
            state.db.transaction(move |conn| users::use_password_link(conn, &actor, &link, hash)).await.map_err(
                |e| match e {
                    AppError::NotFound => AppError::BadRequest(
                        "This link has expired or was already used. Ask an administrator for a new one.".into(),
                    ),
                    other => other,
                },
            )?;
            typed::flash(&session, FlashLevel::Success, "Your password is set. Sign in with it now.");
            return Ok(redirect("/login"));
        }
    };
    let email = email_of_link(&state, token.clone()).await?;
    let ctx = PageContext::anonymous(&session, "Set your password")?;
    render_with_status(
        &SetPasswordPage { ctx, email, action_url: format!("/password/{token}"), error: problem },
        StatusCode::UNPROCESSABLE_ENTITY,
    )
}
