//! Signing in and out, and the front door that sends each account to its area.

use actix_session::Session;
use actix_web::{
    HttpRequest, HttpResponse, get,
    http::{
        StatusCode,
        header::{HeaderName, HeaderValue},
    },
    post, web,
};
use askama::Template;
use serde::Deserialize;

use crate::{
    auth::session::{self as typed, ActorKind, FlashLevel},
    domain::ClientIp,
    error::AppResult,
    routes::extract::HtmlForm,
    services::login::{self as login_service, LoginError, SignedIn, WINDOW_MINUTES},
    state::AppState,
    views::{PageContext, paths::safe_local_path, redirect, render, render_with_status},
};

#[derive(Template)]
#[template(path = "auth/login.html")]
struct LoginPage {
    ctx: PageContext,
    email: String,
    /// The page to return to after signing in (already checked to be local).
    next: String,
    error: Option<String>,
    notice: Option<&'static str>,
}

#[derive(Debug, Deserialize)]
pub struct LoginQuery {
    signed_out: Option<String>,
    next: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    next: String,
}

/// `/`: the signed-in account's home, or the login page.
#[get("/")]
pub async fn home(session: Session) -> HttpResponse {
    match typed::actor(&session).map(|a| a.kind) {
        Some(ActorKind::User) => redirect("/account"),
        Some(ActorKind::Staff) => redirect("/staff"),
        None => redirect("/login"),
    }
}

#[get("/login")]
pub async fn login_form(session: Session, query: web::Query<LoginQuery>) -> AppResult<HttpResponse> {
    if typed::actor(&session).is_some() {
        return Ok(redirect("/"));
    }
    let notice = query.signed_out.is_some().then_some("You have been signed out.");
    let ctx = PageContext::anonymous(&session, "Sign in")?;
    let next = query.next.as_deref().and_then(return_path).unwrap_or_default();
    render(&LoginPage { ctx, email: String::new(), next, error: None, notice })
}

/// Only local paths are followed after sign-in (no open redirect, no loop back to login).
fn return_path(path: &str) -> Option<String> {
    safe_local_path(path, "/").filter(|p| !p.starts_with("/login") && !p.starts_with("/logout"))
}

#[post("/login")]
pub async fn login(
    req: HttpRequest,
    session: Session,
    state: web::Data<AppState>,
    form: HtmlForm<LoginForm>,
) -> AppResult<HttpResponse> {
    let form = form.into_inner();
    let result =
        login_service::sign_in(&state.db, &state.passwords, &form.email, form.password, ClientIp::of(&req)).await;
    let (status, error) = match result {
        Ok(signed_in) => {
            let return_to = return_path(&form.next);
            let (kind, id, name, landing) = match &signed_in {
                SignedIn::User(user) => (ActorKind::User, user.id, user.display_name.clone(), "/account"),
                SignedIn::Staff(staff) => (ActorKind::Staff, staff.id, staff.display_name.clone(), "/staff"),
            };
            typed::sign_in(&session, kind, id, state.clock.now())?;
            typed::flash(&session, FlashLevel::Success, format!("Welcome, {name}."));
            return Ok(redirect(return_to.as_deref().unwrap_or(landing)));
        }
        Err(LoginError::Invalid) => (StatusCode::UNAUTHORIZED, "Email or password is incorrect.".to_string()),
        Err(LoginError::Throttled) => (
            StatusCode::TOO_MANY_REQUESTS,
            format!("Too many failed sign-in attempts. Wait {WINDOW_MINUTES} minutes, then try again."),
        ),
        Err(LoginError::Other(e)) => return Err(e),
    };
    let ctx = PageContext::anonymous(&session, "Sign in")?;
    render_with_status(
        &LoginPage {
            ctx,
            email: form.email,
            next: return_path(&form.next).unwrap_or_default(),
            error: Some(error),
            notice: None,
        },
        status,
    )
}

/// Sign out: the session ends in the store, so its cookie is useless from now on, and the
/// browser is told to forget what it kept of this site (a shared computer keeps nothing).
#[post("/logout")]
pub async fn logout(session: Session) -> HttpResponse {
    typed::sign_out(&session);
    let mut response = redirect("/login?signed_out=1");
    response.headers_mut().insert(
        HeaderName::from_static("clear-site-data"),
        HeaderValue::from_static(r#""cache", "cookies", "storage""#),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::return_path;

    #[test]
    fn only_local_paths_are_returned_to() {
        assert_eq!(return_path("/admin/keys?page=2").as_deref(), Some("/admin/keys?page=2"));
        for bad in ["//evil.example", "https://evil.example", "/\\evil.example", "/login", "/logout", "/a\nb"] {
            assert_eq!(return_path(bad), None, "{bad}");
        }
    }
}
