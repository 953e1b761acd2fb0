//! Signing in and out (the password, then the second factor of an account that has one),
//! and the front door that sends each account to its area.

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
use diesel::OptionalExtension;
use serde::Deserialize;

use crate::{
    auth::session::{self as typed, ActorKind, FlashLevel, PendingSignIn},
    db::models::{StaffAccount, User, second_factor::FactorOwner},
    domain::ClientIp,
    error::{AppResult, ENROL_PATH, SECOND_FACTOR_PATH},
    metrics::SignIn,
    routes::{extract::HtmlForm, passkeys::Availability},
    services::{
        login::{self as login_service, LoginError, NextStep, PasswordAccepted, SignedIn, WINDOW_MINUTES},
        second_factor::{self as factors, SignInCode, SignInMethods},
    },
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
    /// Whether "Forgot your password?" can mail a link (SMTP is configured).
    can_reset: bool,
}

#[derive(Debug, Deserialize)]
pub struct LoginQuery {
    signed_out: Option<String>,
    expired: Option<String>,
    next: Option<String>,
}

#[derive(Template)]
#[template(path = "auth/second_factor.html")]
struct SecondFactorPage {
    ctx: PageContext,
    error: Option<String>,
    /// The ways this account has: an authenticator app, passkeys.
    methods: SignInMethods,
    /// Why its passkeys cannot be used on this page; empty when they can.
    passkeys_elsewhere: String,
}

/// Not `Debug`: the code is a credential.
#[derive(Deserialize)]
pub struct SecondFactorForm {
    #[serde(default)]
    code: String,
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
        None if typed::pending(&session).is_some() => redirect(SECOND_FACTOR_PATH),
        None if typed::enrolling(&session).is_some() => redirect(ENROL_PATH),
        None => redirect("/login"),
    }
}

#[get("/login")]
pub async fn login_form(
    session: Session,
    state: web::Data<AppState>,
    query: web::Query<LoginQuery>,
) -> AppResult<HttpResponse> {
    if typed::actor(&session).is_some() {
        return Ok(redirect("/"));
    }
    if typed::pending(&session).is_some_and(|pending| !pending.expired(state.clock.now())) {
        return Ok(redirect(SECOND_FACTOR_PATH));
    }
    if typed::enrolling(&session).is_some_and(|enrolling| !enrolling.enrolment_expired(state.clock.now())) {
        return Ok(redirect(ENROL_PATH));
    }
    let notice = if query.expired.is_some() {
        Some("Signing in took too long. Please enter your password again.")
    } else {
        query.signed_out.is_some().then_some("You have been signed out.")
    };
    let ctx = PageContext::anonymous(&session, "Sign in")?;
    let next = query.next.as_deref().and_then(return_path).unwrap_or_default();
    render(&LoginPage { ctx, email: String::new(), next, error: None, notice, can_reset: state.mailer.is_some() })
}

/// Only local paths are followed after sign-in (no open redirect, no loop back to login).
pub(crate) fn return_path(path: &str) -> Option<String> {
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
    let step = match &result {
        Ok(PasswordAccepted { next: NextStep::SignedIn, .. }) => Some(SignIn::PasswordSuccess),
        Ok(PasswordAccepted { next: NextStep::SecondFactor, .. }) => Some(SignIn::SecondFactorRequired),
        Ok(PasswordAccepted { next: NextStep::Enrol, .. }) => Some(SignIn::EnrolmentRequired),
        Err(LoginError::Invalid) => Some(SignIn::PasswordFailure),
        Err(LoginError::Throttled) => Some(SignIn::PasswordThrottled),
        // Not an outcome of signing in: the error page (and its log line) tell.
        Err(LoginError::Other(_)) => None,
    };
    if let Some(step) = step {
        state.metrics.sign_in(step);
    }
    let (status, error) = match result {
        Ok(PasswordAccepted { account, next }) => {
            let return_to = return_path(&form.next);
            let (kind, id) = kind_and_id(&account);
            let now = state.clock.now();
            return match next {
                NextStep::SecondFactor => {
                    typed::begin_second_factor(&session, kind, id, now, return_to)?;
                    Ok(redirect(SECOND_FACTOR_PATH))
                }
                NextStep::Enrol => {
                    typed::begin_enrolment(&session, kind, id, now, return_to)?;
                    Ok(redirect(ENROL_PATH))
                }
                NextStep::SignedIn => {
                    typed::sign_in(&session, kind, id, now, client_of(&req))?;
                    Ok(welcome(&session, &account, return_to))
                }
            };
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
            can_reset: state.mailer.is_some(),
        },
        status,
    )
}

/// Where a sign-in comes from, for the list of sessions: its address and a short label of its
/// browser.
pub(crate) fn client_of(req: &HttpRequest) -> typed::SessionClient {
    let agent = req.headers().get(actix_web::http::header::USER_AGENT).and_then(|v| v.to_str().ok()).unwrap_or("");
    let ip = ClientIp::of(req).0.map(|ip| ip.to_string());
    typed::SessionClient::new(ip, crate::auth::user_agent::label(agent))
}

pub(crate) fn kind_and_id(account: &SignedIn) -> (ActorKind, i64) {
    match account {
        SignedIn::User(user) => (ActorKind::User, user.id),
        SignedIn::Staff(staff) => (ActorKind::Staff, staff.id),
    }
}

/// The greeting and the way on, once signed in.
pub(crate) fn welcome(session: &Session, account: &SignedIn, return_to: Option<String>) -> HttpResponse {
    greet(session, account);
    redirect(&landing(account, return_to))
}

/// The greeting of a completed sign-in.
pub(crate) fn greet(session: &Session, account: &SignedIn) {
    let name = match account {
        SignedIn::User(user) => &user.display_name,
        SignedIn::Staff(staff) => &staff.display_name,
    };
    typed::flash(session, FlashLevel::Success, format!("Welcome, {name}."));
}

/// Where a completed sign-in goes: the page it came for, or the account's home.
pub(crate) fn landing(account: &SignedIn, return_to: Option<String>) -> String {
    let area_home = match account {
        SignedIn::User(_) => "/account",
        SignedIn::Staff(_) => "/staff",
    };
    return_to.unwrap_or_else(|| area_home.to_string())
}

/// The account a half-signed-in or enrolling session holds, read again: `None` when it was
/// deleted or deactivated since its password.
pub(crate) fn active_account(
    conn: &mut diesel::PgConnection,
    kind: ActorKind,
    id: i64,
) -> diesel::QueryResult<Option<SignedIn>> {
    Ok(match kind {
        ActorKind::User => User::find(conn, id).optional()?.filter(|u| u.active).map(SignedIn::User),
        ActorKind::Staff => StaffAccount::find(conn, id).optional()?.filter(|s| s.active).map(SignedIn::Staff),
    })
}

/// The half-signed-in account of this session while it may still give its second factor;
/// an expired one ends the session and asks for the password again.
/// Otherwise, where to go instead.
pub(crate) fn pending_sign_in(session: &Session, state: &AppState) -> Result<PendingSignIn, &'static str> {
    match typed::pending(session) {
        Some(pending) if !pending.expired(state.clock.now()) => Ok(pending),
        Some(_) => {
            typed::sign_out(session);
            Err("/login?expired=1")
        }
        None if typed::actor(session).is_some() => Err("/"),
        None if typed::enrolling(session).is_some() => Err(ENROL_PATH),
        None => Err("/login"),
    }
}

/// The second-factor page of `pending`, with `error` (and its status) after a failed try.
async fn second_factor_page(
    req: &HttpRequest,
    session: &Session,
    state: &AppState,
    pending: &PendingSignIn,
    error: Option<String>,
    status: StatusCode,
) -> AppResult<HttpResponse> {
    let owner = match pending.kind {
        ActorKind::User => FactorOwner::User(pending.id),
        ActorKind::Staff => FactorOwner::Staff(pending.id),
    };
    let methods = state.db.run(move |conn| factors::sign_in_methods(conn, owner)).await?;
    let ctx = PageContext::anonymous(session, "Second factor")?;
    let passkeys_elsewhere = Availability::of(req, state).note();
    render_with_status(&SecondFactorPage { ctx, error, methods, passkeys_elsewhere }, status)
}

#[get("/login/second-factor")]
pub async fn second_factor_form(
    req: HttpRequest,
    session: Session,
    state: web::Data<AppState>,
) -> AppResult<HttpResponse> {
    match pending_sign_in(&session, &state) {
        Ok(pending) => second_factor_page(&req, &session, &state, &pending, None, StatusCode::OK).await,
        Err(elsewhere) => Ok(redirect(elsewhere)),
    }
}

/// The second step: a code of the authenticator app or a recovery code. The account is
/// read again (it may have been deactivated since the password step), and a correct code
/// signs it in with a new session key.
#[post("/login/second-factor")]
pub async fn second_factor(
    req: HttpRequest,
    session: Session,
    state: web::Data<AppState>,
    form: HtmlForm<SecondFactorForm>,
) -> AppResult<HttpResponse> {
    let pending = match pending_sign_in(&session, &state) {
        Ok(pending) => pending,
        Err(elsewhere) => return Ok(redirect(elsewhere)),
    };
    let (client_ip, now, keys) = (ClientIp::of(&req), state.clock.now(), state.second_factor.clone());
    let code = form.into_inner().code;
    let (kind, id) = (pending.kind, pending.id);
    let outcome = state
        .db
        .transaction(move |conn| {
            let Some(account) = active_account(conn, kind, id)? else { return Ok(None) };
            let actor = account.actor(client_ip, now);
            let outcome = factors::complete_sign_in(conn, &keys, &account, &actor, &code)?;
            Ok(Some((account, outcome)))
        })
        .await?;
    finish_second_factor(&req, &session, &state, pending, outcome, false).await
}

/// The end of a second step (a code or a passkey): a signed-in session with a new key and a
/// welcome, or the page again with what went wrong. `None`: the account is gone or
/// deactivated since its password, and the session ends.
pub(crate) async fn finish_second_factor(
    req: &HttpRequest,
    session: &Session,
    state: &AppState,
    pending: PendingSignIn,
    outcome: Option<(SignedIn, SignInCode)>,
    by_passkey: bool,
) -> AppResult<HttpResponse> {
    let now = state.clock.now();
    state.metrics.sign_in(match &outcome {
        Some((_, SignInCode::Totp | SignInCode::Passkey | SignInCode::RecoveryCode { .. })) => {
            SignIn::SecondFactorSuccess
        }
        Some((_, SignInCode::Throttled)) => SignIn::SecondFactorThrottled,
        Some((_, SignInCode::Wrong)) | None => SignIn::SecondFactorFailure,
    });
    let Some((account, outcome)) = outcome else {
        typed::sign_out(session);
        return Ok(redirect("/login"));
    };
    let (status, error) = match outcome {
        SignInCode::Totp | SignInCode::Passkey | SignInCode::RecoveryCode { .. } => {
            let (kind, id) = kind_and_id(&account);
            typed::sign_in(session, kind, id, now, client_of(req))?;
            if let SignInCode::RecoveryCode { left } = outcome {
                let message = format!(
                    "You used a recovery code; {left} left. Generate new ones under Security if you are running low."
                );
                typed::flash(session, FlashLevel::Info, message);
            }
            return Ok(welcome(session, &account, pending.next));
        }
        SignInCode::Wrong if by_passkey => {
            (StatusCode::UNAUTHORIZED, "The passkey could not be verified. Try again, or use a code.".to_string())
        }
        SignInCode::Wrong => {
            (StatusCode::UNAUTHORIZED, "That code is not correct. Try the current code again.".to_string())
        }
        SignInCode::Throttled => (
            StatusCode::TOO_MANY_REQUESTS,
            format!("Too many failed sign-in attempts. Wait {WINDOW_MINUTES} minutes, then try again."),
        ),
    };
    second_factor_page(req, session, state, &pending, Some(error), status).await
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
