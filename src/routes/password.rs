//! `/password/{token}`: a web user sets their password through a one-time link (from an
//! administrator, or mailed by "Forgot your password?" at `/password/forgot`, see
//! `services::password_reset`).

use actix_session::Session;
use actix_web::{HttpRequest, HttpResponse, get, http::StatusCode, post, web};
use askama::Template;
use chrono::Utc;
use serde::Deserialize;

use crate::{
    auth::session::{self as typed, FlashLevel},
    domain::{ClientIp, NewPassword},
    error::{AppError, AppResult},
    routes::extract::HtmlForm,
    services::{
        Actor,
        login::WINDOW_MINUTES,
        notifications::smtp::{Content, Mailer},
        password_reset::{self, Requested},
        users,
    },
    state::AppState,
    views::{PageContext, redirect, render, render_with_status},
};

/// What a used or expired link says (a new one can be mailed only with SMTP).
fn expired(state: &AppState) -> AppError {
    AppError::BadRequest(if state.mailer.is_some() {
        "This link has expired or was already used. Ask for a new one with \u{201c}Forgot your password?\u{201d} \
         on the sign-in page, or ask an administrator."
            .into()
    } else {
        "This link has expired or was already used. Ask an administrator for a new one.".into()
    })
}

#[derive(Template)]
#[template(path = "auth/forgot_password.html")]
struct ForgotPage {
    ctx: PageContext,
    can_reset: bool,
    email: String,
    sent: Option<String>,
    error: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct ForgotForm {
    #[serde(default)]
    email: String,
}

#[get("/password/forgot")]
pub async fn forgot_form(session: Session, state: web::Data<AppState>) -> AppResult<HttpResponse> {
    let ctx = PageContext::anonymous(&session, "Forgot your password?")?;
    render(&ForgotPage { ctx, can_reset: state.mailer.is_some(), email: String::new(), sent: None, error: None })
}

/// Answers the same whether the address has an account or not (and as fast: the mail is
/// sent after the answer), except when requests are throttled.
#[post("/password/forgot")]
pub async fn forgot(
    req: HttpRequest,
    session: Session,
    state: web::Data<AppState>,
    submitted: HtmlForm<ForgotForm>,
) -> AppResult<HttpResponse> {
    let ctx = PageContext::anonymous(&session, "Forgot your password?")?;
    let Some(mailer) = state.mailer.clone() else {
        return render(&ForgotPage { ctx, can_reset: false, email: String::new(), sent: None, error: None });
    };
    let email = submitted.into_inner().email;
    if email.trim().is_empty() || email.len() > 254 || !email.contains('@') {
        return render_with_status(
            &ForgotPage {
                ctx,
                can_reset: true,
                email,
                sent: None,
                error: Some("Enter the email address you sign in with.".into()),
            },
            StatusCode::UNPROCESSABLE_ENTITY,
        );
    }
    let client_ip = ClientIp::of(&req);
    let actor = Actor::anonymous(client_ip).at(Utc::now());
    let typed = email.clone();
    let requested = state.db.transaction(move |conn| password_reset::request(conn, &actor, &typed)).await?;
    match requested {
        Requested::Throttled => render_with_status(
            &ForgotPage {
                ctx,
                can_reset: true,
                email,
                sent: None,
                error: Some(format!(
                    "Too many requests for a new password. Wait {WINDOW_MINUTES} minutes, then try again."
                )),
            },
            StatusCode::TOO_MANY_REQUESTS,
        ),
        Requested::Accepted(link) => {
            if let Some((to, token)) = link {
                send_reset_mail(mailer, to, token, client_ip);
            }
            let sent = "If an account exists for that address, we have sent it a link to choose a new password. \
                        The link works once, for an hour. Check your mail (and its spam folder).";
            render(&ForgotPage { ctx, can_reset: true, email, sent: Some(sent.into()), error: None })
        }
    }
}

/// Mails a reset link on a blocking thread, without waiting for it (so the answer takes as
/// long for an unknown address). Only the failure is logged, never the token.
fn send_reset_mail(mailer: Mailer, to: String, token: String, client_ip: ClientIp) {
    actix_web::rt::task::spawn_blocking(move || {
        let from = client_ip.0.map_or_else(|| "an unknown address".to_string(), |ip| ip.to_string());
        let body = format!(
            "Someone (we hope you) asked on the sign-in page, from {from}, to choose a new password for the \
             Keyward account {to}.\n\nOpen the link below within an hour to choose it; the link works once. \
             Setting a new password signs the account out everywhere.\n\nIf it was not you, ignore this \
             message: your password stays as it is."
        );
        let content = Content {
            subject: "Choose a new Keyward password",
            body: &body,
            link: Some(mailer.url(&format!("/password/{token}"))),
            link_label: "Choose a new password",
            sections: &[],
            footer: "You get this because a new password was asked for this address on Keyward's sign-in page.".into(),
            footer_link: None,
        };
        let id = format!("keyward-reset-{}", crate::secrets::random_token(12));
        if let Err(e) = mailer.send_now(&to, &id, &content) {
            log::warn!("mailing a password reset link failed: {}", e.message);
        }
    });
}

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
    let email = state.db.run(move |conn| users::email_of_link(conn, &token)).await?;
    email.ok_or_else(|| expired(state))
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
                    AppError::NotFound => expired(&state),
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
