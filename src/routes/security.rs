//! Account → Security for web users (`/account/security`) and support staff
//! (`/staff/security`): setting up an authenticator app, recovery codes, removing it. The two
//! areas differ only in who is signed in; each handler pair below calls one shared function.

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
        session::{self, FlashLevel},
    },
    error::{AppError, AppResult},
    routes::extract::HtmlForm,
    services::{
        Actor,
        second_factor::{self, Confirmation, Provisioning, Status},
    },
    state::AppState,
    views::{PageContext, Section, redirect, render, render_with_status},
};

/// One account's security pages: where they live and who is looking.
struct Area {
    base: &'static str,
    actor: Actor,
    password_hash: Option<String>,
    session: actix_session::Session,
    ctx: PageContext,
}

impl Area {
    fn user(user: &CurrentUser) -> AppResult<Self> {
        Ok(Self {
            base: "/account/security",
            actor: user.actor(),
            password_hash: user.user.password_hash.clone(),
            session: user.session.clone(),
            ctx: PageContext::for_user(user, "Security", Section::AccountSecurity)?,
        })
    }

    fn staff(staff: &CurrentStaff) -> AppResult<Self> {
        Ok(Self {
            base: "/staff/security",
            actor: staff.actor(),
            password_hash: staff.staff.password_hash.clone(),
            session: staff.session.clone(),
            ctx: PageContext::for_staff(staff, "Security", Section::StaffSecurity)?,
        })
    }

    fn ctx(&self, title: &str) -> PageContext {
        PageContext { title: title.to_string(), ..self.ctx.clone() }
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
    error: Option<&'static str>,
}

/// Not `Debug`: what people type here is a code or a password, never for a log.
#[derive(Deserialize)]
pub struct CodeForm {
    #[serde(default)]
    code: String,
}

#[derive(Deserialize)]
pub struct PasswordForm {
    #[serde(default)]
    password: String,
}

/// Pages that show a secret (the setup QR code, recovery codes) must not be kept by any cache.
fn no_store(mut response: HttpResponse) -> HttpResponse {
    response.headers_mut().insert(header::CACHE_CONTROL, header::HeaderValue::from_static("no-store, max-age=0"));
    response.headers_mut().insert(header::PRAGMA, header::HeaderValue::from_static("no-cache"));
    response
}

async fn overview(area: Area, state: &AppState) -> AppResult<HttpResponse> {
    let actor = area.actor.clone();
    let status = state.db.run(move |conn| second_factor::status(conn, &actor)).await?;
    render(&OverviewPage { ctx: area.ctx("Security"), base: area.base, status })
}

async fn start(area: Area, state: &AppState) -> AppResult<HttpResponse> {
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

fn remove_form(area: Area, error: Option<&'static str>, status: StatusCode) -> AppResult<HttpResponse> {
    render_with_status(&RemovePage { ctx: area.ctx("Remove the authenticator app"), base: area.base, error }, status)
}

/// Removing the second factor asks for the password (a fresh second factor is a later step).
async fn remove(area: Area, state: &AppState, form: PasswordForm) -> AppResult<HttpResponse> {
    if !state.passwords.verify(area.password_hash.clone(), form.password).await? {
        return remove_form(area, Some("The password is not correct."), StatusCode::UNPROCESSABLE_ENTITY);
    }
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
    remove_form(Area::user(&user)?, None, StatusCode::OK)
}

#[get("/staff/security/totp/remove")]
pub async fn staff_remove_form(staff: CurrentStaff) -> AppResult<HttpResponse> {
    remove_form(Area::staff(&staff)?, None, StatusCode::OK)
}

#[post("/account/security/totp/remove")]
pub async fn user_remove(
    user: CurrentUser,
    state: web::Data<AppState>,
    form: HtmlForm<PasswordForm>,
) -> AppResult<HttpResponse> {
    remove(Area::user(&user)?, &state, form.into_inner()).await
}

#[post("/staff/security/totp/remove")]
pub async fn staff_remove(
    staff: CurrentStaff,
    state: web::Data<AppState>,
    form: HtmlForm<PasswordForm>,
) -> AppResult<HttpResponse> {
    remove(Area::staff(&staff)?, &state, form.into_inner()).await
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
        .service(staff_remove);
}
