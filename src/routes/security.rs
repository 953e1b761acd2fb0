//! Account → Security for web users (`/account/security`) and support staff
//! (`/staff/security`): setting up an authenticator app, recovery codes, removing it. The two
//! areas differ only in who is signed in; each handler pair below calls one shared function.
//!
//! Changing a factor goes through sudo mode (`auth::sudo`), and its "Confirm it's you" page
//! (`/account/confirm`, `/staff/confirm`) lives here too.

use actix_web::{
    HttpResponse, get,
    http::{StatusCode, header},
    post, web,
};
use askama::Template;
use serde::Deserialize;

use crate::{
    auth::{
        CurrentStaff, CurrentUser,
        session::{self, ActorKind, FlashLevel},
        sudo,
    },
    db::models::session::SessionListing,
    error::{AppError, AppResult},
    routes::extract::HtmlForm,
    services::{
        Actor,
        login::WINDOW_MINUTES,
        second_factor::{self, ConfirmWith, Confirmation, Confirmed, Provisioning, Status},
        sessions,
    },
    state::AppState,
    views::{PageContext, Section, redirect, render, render_with_status, time::Stamp},
};

/// One account's security pages: where they live and who is looking.
struct Area {
    base: &'static str,
    kind: ActorKind,
    email: String,
    actor: Actor,
    password_hash: Option<String>,
    session: actix_session::Session,
    ctx: PageContext,
}

impl Area {
    fn user(user: &CurrentUser) -> AppResult<Self> {
        Ok(Self {
            base: "/account/security",
            kind: ActorKind::User,
            email: user.user.email.clone(),
            actor: user.actor(),
            password_hash: user.user.password_hash.clone(),
            session: user.session.clone(),
            ctx: PageContext::for_user(user, "Security", Section::AccountSecurity)?,
        })
    }

    fn staff(staff: &CurrentStaff) -> AppResult<Self> {
        Ok(Self {
            base: "/staff/security",
            kind: ActorKind::Staff,
            email: staff.staff.email.clone(),
            actor: staff.actor(),
            password_hash: staff.staff.password_hash.clone(),
            session: staff.session.clone(),
            ctx: PageContext::for_staff(staff, "Security", Section::StaffSecurity)?,
        })
    }

    fn ctx(&self, title: &str) -> PageContext {
        PageContext { title: title.to_string(), ..self.ctx.clone() }
    }

    /// Sudo mode: a recent proof of the person, or the confirm page returning to `return_to`.
    fn require_recent(&self, return_to: &str) -> AppResult<()> {
        sudo::require(&self.session, self.kind, self.actor.now, return_to)
    }

    /// The list's handle of this very session.
    fn current_session(&self) -> Option<String> {
        session::client(&self.session).map(|client| client.sid)
    }

    fn flash_and_return(&self, level: FlashLevel, message: &str) -> HttpResponse {
        session::flash(&self.session, level, message);
        redirect(self.base)
    }
}

#[derive(Template)]
#[template(path = "security/overview.html")]
struct OverviewPage {
    ctx: PageContext,
    base: &'static str,
    status: Status,
    sessions: Vec<SessionView>,
}

/// One signed-in session of the account, as listed.
struct SessionView {
    /// The handle of its "sign out" button (none for a session from before sessions were
    /// described, which "sign out all others" still ends).
    public_id: Option<String>,
    browser: String,
    ip: String,
    started: Stamp,
    last_seen: Stamp,
    current: bool,
}

impl SessionView {
    fn new(row: SessionListing, current: Option<&str>, now: chrono::DateTime<chrono::Utc>) -> Self {
        let is_current = current.is_some() && row.public_id.as_deref() == current;
        Self {
            browser: row.client_label.unwrap_or_else(|| "Unknown browser".into()),
            ip: row.client_ip.unwrap_or_else(|| "unknown address".into()),
            started: Stamp::relative_to(row.signed_in_at.unwrap_or(row.created_at), now),
            last_seen: Stamp::relative_to(row.last_seen_at, now),
            current: is_current,
            public_id: row.public_id,
        }
    }
}

#[derive(Template)]
#[template(path = "security/setup.html")]
struct SetupPage {
    ctx: PageContext,
    base: &'static str,
    setup: Provisioning,
    error: Option<&'static str>,
}

#[derive(Template)]
#[template(path = "security/recovery_codes.html")]
struct RecoveryCodesPage {
    ctx: PageContext,
    base: &'static str,
    codes: String,
}

#[derive(Template)]
#[template(path = "security/remove.html")]
struct RemovePage {
    ctx: PageContext,
    base: &'static str,
}

/// Not `Debug`: what people type here is a code or a password, never for a log.
#[derive(Deserialize)]
pub struct CodeForm {
    #[serde(default)]
    code: String,
}

/// The "Confirm it's you" form: a code, or the password of an account without a factor.
#[derive(Deserialize)]
pub struct ConfirmForm {
    #[serde(default)]
    code: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    next: String,
}

#[derive(Deserialize)]
pub struct ConfirmQuery {
    next: Option<String>,
}

#[derive(Template)]
#[template(path = "security/confirm.html")]
struct ConfirmPage {
    ctx: PageContext,
    action: &'static str,
    /// Whether a code is asked for (otherwise the password).
    code: bool,
    next: String,
    error: Option<String>,
}

/// Pages that show a secret (the setup QR code, recovery codes) must not be kept by any cache.
fn no_store(mut response: HttpResponse) -> HttpResponse {
    response.headers_mut().insert(header::CACHE_CONTROL, header::HeaderValue::from_static("no-store, max-age=0"));
    response.headers_mut().insert(header::PRAGMA, header::HeaderValue::from_static("no-cache"));
    response
}

async fn overview(area: Area, state: &AppState) -> AppResult<HttpResponse> {
    let actor = area.actor.clone();
    let (status, rows) =
        state.db.run(move |conn| Ok((second_factor::status(conn, &actor)?, sessions::list(conn, &actor)?))).await?;
    let current = area.current_session();
    let now = area.actor.now;
    let sessions = rows.into_iter().map(|row| SessionView::new(row, current.as_deref(), now)).collect();
    render(&OverviewPage { ctx: area.ctx("Security"), base: area.base, status, sessions })
}

/// Signs out one other session of this account; another account's is not found.
async fn end_session(area: Area, state: &AppState, public_id: String) -> AppResult<HttpResponse> {
    let (actor, current) = (area.actor.clone(), area.current_session());
    if current.as_deref() == Some(public_id.as_str()) {
        return Ok(area.flash_and_return(FlashLevel::Info, "To end this session, sign out from the menu."));
    }
    state.db.transaction(move |conn| sessions::end_one(conn, &actor, &public_id, current.as_deref())).await?;
    Ok(area.flash_and_return(FlashLevel::Success, "That session is signed out."))
}

async fn end_other_sessions(area: Area, state: &AppState) -> AppResult<HttpResponse> {
    let (actor, current) = (area.actor.clone(), area.current_session());
    let ended = state.db.transaction(move |conn| sessions::end_others(conn, &actor, current.as_deref())).await?;
    let message = match ended {
        0 => "There were no other sessions.".to_string(),
        1 => "Signed out 1 other session.".to_string(),
        n => format!("Signed out {n} other sessions."),
    };
    Ok(area.flash_and_return(FlashLevel::Success, &message))
}

async fn start(area: Area, state: &AppState) -> AppResult<HttpResponse> {
    area.require_recent(area.base)?;
    let (actor, keys) = (area.actor.clone(), state.second_factor.clone());
    match state.db.transaction(move |conn| second_factor::start_enrolment(conn, &keys, &actor)).await {
        Ok(()) => Ok(redirect(&format!("{}/totp", area.base))),
        Err(AppError::Conflict(message)) => Ok(area.flash_and_return(FlashLevel::Error, &message)),
        Err(e) => Err(e),
    }
}

async fn setup_page(
    area: Area,
    state: &AppState,
    error: Option<&'static str>,
    status: StatusCode,
) -> AppResult<HttpResponse> {
    let (actor, keys) = (area.actor.clone(), state.second_factor.clone());
    let pending = state.db.transaction(move |conn| second_factor::pending_enrolment(conn, &keys, &actor)).await?;
    let Some(setup) = pending else { return Ok(redirect(area.base)) };
    let page = SetupPage { ctx: area.ctx("Set up an authenticator app"), base: area.base, setup, error };
    render_with_status(&page, status).map(no_store)
}

fn recovery_codes_page(area: &Area, codes: &[String]) -> AppResult<HttpResponse> {
    let page = RecoveryCodesPage { ctx: area.ctx("Recovery codes"), base: area.base, codes: codes.join("\n") };
    render(&page).map(no_store)
}

async fn confirm(area: Area, state: &AppState, form: CodeForm) -> AppResult<HttpResponse> {
    area.require_recent(&format!("{}/totp", area.base))?;
    let (actor, keys) = (area.actor.clone(), state.second_factor.clone());
    let confirmation =
        state.db.transaction(move |conn| second_factor::confirm_enrolment(conn, &keys, &actor, &form.code)).await?;
    match confirmation {
        Confirmation::Enrolled(codes) => {
            session::flash(
                &area.session,
                FlashLevel::Success,
                "Your authenticator app is set up: signing in asks for a code from now on.",
            );
            recovery_codes_page(&area, &codes)
        }
        Confirmation::Wrong => {
            let error = Some("That code is not correct. Enter the code your app shows now.");
            setup_page(area, state, error, StatusCode::UNPROCESSABLE_ENTITY).await
        }
        Confirmation::NothingPending => Ok(area.flash_and_return(FlashLevel::Info, "There is no set-up in progress.")),
    }
}

async fn regenerate(area: Area, state: &AppState) -> AppResult<HttpResponse> {
    area.require_recent(area.base)?;
    let (actor, keys) = (area.actor.clone(), state.second_factor.clone());
    match state.db.transaction(move |conn| second_factor::regenerate_recovery_codes(conn, &keys, &actor)).await {
        Ok(codes) => {
            session::flash(&area.session, FlashLevel::Success, "New recovery codes: the old ones no longer work.");
            recovery_codes_page(&area, &codes)
        }
        Err(AppError::Conflict(message)) => Ok(area.flash_and_return(FlashLevel::Error, &message)),
        Err(e) => Err(e),
    }
}

fn remove_form(area: Area) -> AppResult<HttpResponse> {
    area.require_recent(&format!("{}/totp/remove", area.base))?;
    render(&RemovePage { ctx: area.ctx("Remove the authenticator app"), base: area.base })
}

/// Removing the second factor asks for a recent proof of the person (sudo mode).
async fn remove(area: Area, state: &AppState) -> AppResult<HttpResponse> {
    area.require_recent(&format!("{}/totp/remove", area.base))?;
    let actor = area.actor.clone();
    match state.db.transaction(move |conn| second_factor::remove(conn, &actor)).await {
        Ok(()) => Ok(area.flash_and_return(
            FlashLevel::Success,
            "The authenticator app is removed, and its recovery codes no longer work.",
        )),
        Err(AppError::NotFound) => Ok(area.flash_and_return(FlashLevel::Info, "No authenticator app is set up.")),
        Err(e) => Err(e),
    }
}

#[get("/account/security")]
pub async fn user_overview(user: CurrentUser, state: web::Data<AppState>) -> AppResult<HttpResponse> {
    overview(Area::user(&user)?, &state).await
}

#[get("/staff/security")]
pub async fn staff_overview(staff: CurrentStaff, state: web::Data<AppState>) -> AppResult<HttpResponse> {
    overview(Area::staff(&staff)?, &state).await
}

#[post("/account/security/totp")]
pub async fn user_start(user: CurrentUser, state: web::Data<AppState>) -> AppResult<HttpResponse> {
    start(Area::user(&user)?, &state).await
}

#[post("/staff/security/totp")]
pub async fn staff_start(staff: CurrentStaff, state: web::Data<AppState>) -> AppResult<HttpResponse> {
    start(Area::staff(&staff)?, &state).await
}

#[get("/account/security/totp")]
pub async fn user_setup(user: CurrentUser, state: web::Data<AppState>) -> AppResult<HttpResponse> {
    setup_page(Area::user(&user)?, &state, None, StatusCode::OK).await
}

#[get("/staff/security/totp")]
pub async fn staff_setup(staff: CurrentStaff, state: web::Data<AppState>) -> AppResult<HttpResponse> {
    setup_page(Area::staff(&staff)?, &state, None, StatusCode::OK).await
}

#[post("/account/security/totp/confirm")]
pub async fn user_confirm(
    user: CurrentUser,
    state: web::Data<AppState>,
    form: HtmlForm<CodeForm>,
) -> AppResult<HttpResponse> {
    confirm(Area::user(&user)?, &state, form.into_inner()).await
}

#[post("/staff/security/totp/confirm")]
pub async fn staff_confirm(
    staff: CurrentStaff,
    state: web::Data<AppState>,
    form: HtmlForm<CodeForm>,
) -> AppResult<HttpResponse> {
    confirm(Area::staff(&staff)?, &state, form.into_inner()).await
}

#[post("/account/security/recovery-codes")]
pub async fn user_regenerate(user: CurrentUser, state: web::Data<AppState>) -> AppResult<HttpResponse> {
    regenerate(Area::user(&user)?, &state).await
}

#[post("/staff/security/recovery-codes")]
pub async fn staff_regenerate(staff: CurrentStaff, state: web::Data<AppState>) -> AppResult<HttpResponse> {
    regenerate(Area::staff(&staff)?, &state).await
}

#[get("/account/security/totp/remove")]
pub async fn user_remove_form(user: CurrentUser) -> AppResult<HttpResponse> {
    remove_form(Area::user(&user)?)
}

#[get("/staff/security/totp/remove")]
pub async fn staff_remove_form(staff: CurrentStaff) -> AppResult<HttpResponse> {
    remove_form(Area::staff(&staff)?)
}

#[post("/account/security/totp/remove")]
pub async fn user_remove(user: CurrentUser, state: web::Data<AppState>) -> AppResult<HttpResponse> {
    remove(Area::user(&user)?, &state).await
}

#[post("/staff/security/totp/remove")]
pub async fn staff_remove(staff: CurrentStaff, state: web::Data<AppState>) -> AppResult<HttpResponse> {
    remove(Area::staff(&staff)?, &state).await
}

/// Where the confirm page returns to: a local page (as after sign-in), never the confirm
/// page itself; the account's home otherwise.
fn confirm_return(area: &Area, next: Option<&str>) -> String {
    let home = match area.kind {
        ActorKind::User => "/account",
        ActorKind::Staff => "/staff",
    };
    next.and_then(crate::routes::session::return_path)
        .filter(|p| !p.starts_with(sudo::confirm_path(area.kind)))
        .unwrap_or_else(|| home.to_string())
}

async fn confirm_identity_form(area: Area, state: &AppState, next: Option<String>) -> AppResult<HttpResponse> {
    let next = confirm_return(&area, next.as_deref());
    if sudo::is_fresh(&area.session, area.actor.now) {
        return Ok(redirect(&next));
    }
    let actor = area.actor.clone();
    let code = state.db.run(move |conn| second_factor::status(conn, &actor)).await?.enrolled;
    confirm_identity_page(area, code, next, None, StatusCode::OK)
}

fn confirm_identity_page(
    area: Area,
    code: bool,
    next: String,
    error: Option<String>,
    status: StatusCode,
) -> AppResult<HttpResponse> {
    let page =
        ConfirmPage { ctx: area.ctx("Confirm it's you"), action: sudo::confirm_path(area.kind), code, next, error };
    render_with_status(&page, status)
}

/// Checks the code (or password) of the signed-in person; a correct one makes the session
/// fresh for [`sudo::FRESH_SECS`] and goes back to the page that asked. Wrong ones are
/// audited and throttled like sign-in failures.
async fn confirm_identity(area: Area, state: &AppState, form: ConfirmForm) -> AppResult<HttpResponse> {
    let next = confirm_return(&area, Some(&form.next));
    let (actor, email, hash) = (area.actor.clone(), area.email.clone(), area.password_hash.clone());
    let with =
        state.db.transaction(move |conn| second_factor::confirm_identity_with(conn, &actor, &email, hash)).await?;
    let (confirmed, code) = match with {
        Err(refused) => (refused, true),
        Ok(ConfirmWith::Code) => {
            let (actor, keys) = (area.actor.clone(), state.second_factor.clone());
            let code = form.code;
            let confirmed = state
                .db
                .transaction(move |conn| second_factor::confirm_identity_by_code(conn, &keys, &actor, &code))
                .await?;
            (confirmed, true)
        }
        Ok(ConfirmWith::Password(hash)) => {
            let correct = state.passwords.verify(hash, form.password).await?;
            let actor = area.actor.clone();
            let confirmed =
                state.db.transaction(move |conn| second_factor::record_confirm_password(conn, &actor, correct)).await?;
            (confirmed, false)
        }
    };
    let (status, error) = match confirmed {
        Confirmed::Yes => {
            session::mark_verified(&area.session, area.actor.now)?;
            return Ok(redirect(&next));
        }
        Confirmed::Wrong if code => (StatusCode::UNAUTHORIZED, "That code is not correct. Try the current code again."),
        Confirmed::Wrong => (StatusCode::UNAUTHORIZED, "The password is not correct."),
        Confirmed::Throttled => (StatusCode::TOO_MANY_REQUESTS, ""),
    };
    let error = if status == StatusCode::TOO_MANY_REQUESTS {
        format!("Too many failed attempts. Wait {WINDOW_MINUTES} minutes, then try again.")
    } else {
        error.to_string()
    };
    // A throttled account is not told which it would have been asked for: the code field.
    confirm_identity_page(area, code, next, Some(error), status)
}

#[get("/account/confirm")]
pub async fn user_confirm_identity_form(
    user: CurrentUser,
    state: web::Data<AppState>,
    query: web::Query<ConfirmQuery>,
) -> AppResult<HttpResponse> {
    confirm_identity_form(Area::user(&user)?, &state, query.into_inner().next).await
}

#[get("/staff/confirm")]
pub async fn staff_confirm_identity_form(
    staff: CurrentStaff,
    state: web::Data<AppState>,
    query: web::Query<ConfirmQuery>,
) -> AppResult<HttpResponse> {
    confirm_identity_form(Area::staff(&staff)?, &state, query.into_inner().next).await
}

#[post("/account/confirm")]
pub async fn user_confirm_identity(
    user: CurrentUser,
    state: web::Data<AppState>,
    form: HtmlForm<ConfirmForm>,
) -> AppResult<HttpResponse> {
    confirm_identity(Area::user(&user)?, &state, form.into_inner()).await
}

#[post("/staff/confirm")]
pub async fn staff_confirm_identity(
    staff: CurrentStaff,
    state: web::Data<AppState>,
    form: HtmlForm<ConfirmForm>,
) -> AppResult<HttpResponse> {
    confirm_identity(Area::staff(&staff)?, &state, form.into_inner()).await
}

#[post("/account/security/sessions/{public_id}/end")]
pub async fn user_end_session(
    user: CurrentUser,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> AppResult<HttpResponse> {
    end_session(Area::user(&user)?, &state, path.into_inner()).await
}

#[post("/staff/security/sessions/{public_id}/end")]
pub async fn staff_end_session(
    staff: CurrentStaff,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> AppResult<HttpResponse> {
    end_session(Area::staff(&staff)?, &state, path.into_inner()).await
}

#[post("/account/security/sessions/end-others")]
pub async fn user_end_other_sessions(user: CurrentUser, state: web::Data<AppState>) -> AppResult<HttpResponse> {
    end_other_sessions(Area::user(&user)?, &state).await
}

#[post("/staff/security/sessions/end-others")]
pub async fn staff_end_other_sessions(staff: CurrentStaff, state: web::Data<AppState>) -> AppResult<HttpResponse> {
    end_other_sessions(Area::staff(&staff)?, &state).await
}

/// Registers both areas' pages.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(user_overview)
        .service(staff_overview)
        .service(user_start)
        .service(staff_start)
        .service(user_setup)
        .service(staff_setup)
        .service(user_confirm)
        .service(staff_confirm)
        .service(user_regenerate)
        .service(staff_regenerate)
        .service(user_remove_form)
        .service(staff_remove_form)
        .service(user_remove)
        .service(staff_remove)
        .service(user_confirm_identity_form)
        .service(staff_confirm_identity_form)
        .service(user_confirm_identity)
        .service(staff_confirm_identity)
        .service(user_end_other_sessions)
        .service(staff_end_other_sessions)
        .service(user_end_session)
        .service(staff_end_session);
}
