//! Account → Security for web users (`/account/security`) and support staff
//! (`/staff/security`): setting up an authenticator app, recovery codes, removing it. The two
//! areas differ only in who is signed in; each handler pair below calls one shared function.
//!
//! The same set-up also runs at sign-in (`/login/enrol`) for an account that must have a
//! second factor and has none: its session is neither signed in nor half-signed-in, only
//! these pages accept it, and a confirmed authenticator signs it in (a new session key).

use actix_session::Session;
use actix_web::{
    HttpRequest, HttpResponse, get,
    http::{StatusCode, header},
    post, web,
};
use askama::Template;
use serde::Deserialize;

use diesel::OptionalExtension;

use crate::{
    auth::{
        CurrentStaff, CurrentUser,
        session::{self, ActorKind, FlashLevel},
    },
    db::models::{StaffAccount, User},
    domain::ClientIp,
    error::{AppError, AppResult, ENROL_PATH, SECOND_FACTOR_PATH},
    routes::{
        extract::HtmlForm,
        session::{greet, kind_and_id, landing},
    },
    services::{
        Actor,
        login::{self, SignedIn},
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
    session: Session,
    ctx: PageContext,
    /// At sign-in: the account setting up a required second factor, and where it goes then.
    enrolling: Option<(SignedIn, Option<String>)>,
}

impl Area {
    fn user(user: &CurrentUser) -> AppResult<Self> {
        Ok(Self {
            base: "/account/security",
            actor: user.actor(),
            password_hash: user.user.password_hash.clone(),
            session: user.session.clone(),
            ctx: PageContext::for_user(user, "Security", Section::AccountSecurity)?,
            enrolling: None,
        })
    }

    fn staff(staff: &CurrentStaff) -> AppResult<Self> {
        Ok(Self {
            base: "/staff/security",
            actor: staff.actor(),
            password_hash: staff.staff.password_hash.clone(),
            session: staff.session.clone(),
            ctx: PageContext::for_staff(staff, "Security", Section::StaffSecurity)?,
            enrolling: None,
        })
    }

    /// The enrolment pages of a session that must set up a second factor to sign in, or
    /// where to send any other session. The account is read again: it may have been
    /// deactivated since its password.
    async fn enrolling(req: &HttpRequest, session: Session, state: &AppState) -> AppResult<Result<Self, HttpResponse>> {
        let now = state.clock.now();
        let enrolling = match session::enrolling(&session) {
            Some(enrolling) if !enrolling.enrolment_expired(now) => enrolling,
            Some(_) => {
                session::sign_out(&session);
                return Ok(Err(redirect("/login?expired=1")));
            }
            None if session::actor(&session).is_some() => return Ok(Err(redirect("/"))),
            None if session::pending(&session).is_some() => return Ok(Err(redirect(SECOND_FACTOR_PATH))),
            None => return Ok(Err(redirect("/login"))),
        };
        let (kind, id) = (enrolling.kind, enrolling.id);
        let account = state
            .db
            .run(move |conn| {
                Ok(match kind {
                    ActorKind::User => User::find(conn, id).optional()?.filter(|u| u.active).map(SignedIn::User),
                    ActorKind::Staff => {
                        StaffAccount::find(conn, id).optional()?.filter(|s| s.active).map(SignedIn::Staff)
                    }
                })
            })
            .await?;
        let Some(account) = account else {
            session::sign_out(&session);
            return Ok(Err(redirect("/login")));
        };
        let password_hash = match &account {
            SignedIn::User(user) => user.password_hash.clone(),
            SignedIn::Staff(staff) => staff.password_hash.clone(),
        };
        Ok(Ok(Self {
            base: ENROL_PATH,
            actor: account.actor(ClientIp::of(req), now),
            password_hash,
            ctx: PageContext::anonymous(&session, "Set up a second factor")?,
            session,
            enrolling: Some((account, enrolling.next)),
        }))
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
    /// Where "Done" leads.
    done: String,
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

fn recovery_codes_page(area: &Area, done: String, codes: &[String]) -> AppResult<HttpResponse> {
    let page = RecoveryCodesPage { ctx: area.ctx("Recovery codes"), done, codes: codes.join("\n") };
    render(&page).map(no_store)
}

async fn confirm(area: Area, state: &AppState, form: CodeForm) -> AppResult<HttpResponse> {
    let (actor, keys) = (area.actor.clone(), state.second_factor.clone());
    let account = area.enrolling.as_ref().map(|(account, _)| account.clone());
    let confirmation = state
        .db
        .transaction(move |conn| {
            let confirmation = second_factor::confirm_enrolment(conn, &keys, &actor, &form.code)?;
            // At sign-in, the confirmed authenticator completes it, in the same transaction.
            if let (Confirmation::Enrolled(_), Some(account)) = (&confirmation, &account) {
                login::record_success(conn, account, &actor, Some("totp_enrolment"))?;
            }
            Ok(confirmation)
        })
        .await?;
    match confirmation {
        Confirmation::Enrolled(codes) => {
            let done = match &area.enrolling {
                Some((account, next)) => {
                    let (kind, id) = kind_and_id(account);
                    session::sign_in(&area.session, kind, id, area.actor.now)?;
                    greet(&area.session, account);
                    landing(account, next.clone())
                }
                None => area.base.to_string(),
            };
            session::flash(
                &area.session,
                FlashLevel::Success,
                "Your authenticator app is set up: signing in asks for a code from now on.",
            );
            recovery_codes_page(&area, done, &codes)
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
            recovery_codes_page(&area, area.base.to_string(), &codes)
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

#[derive(Template)]
#[template(path = "auth/enrol.html")]
struct EnrolPage {
    ctx: PageContext,
    base: &'static str,
    reason: &'static str,
}

/// Answers with the enrolment page `then` builds, or sends a session that is not enrolling
/// where it belongs.
macro_rules! enrolling {
    ($req:expr, $session:expr, $state:expr) => {
        match Area::enrolling(&$req, $session, &$state).await? {
            Ok(area) => area,
            Err(elsewhere) => return Ok(elsewhere),
        }
    };
}

#[get("/login/enrol")]
pub async fn enrol_overview(req: HttpRequest, session: Session, state: web::Data<AppState>) -> AppResult<HttpResponse> {
    let area = enrolling!(req, session, state);
    let reason = match area.enrolling {
        Some((SignedIn::Staff(_), _)) => "Staff accounts must sign in with a second factor.",
        _ => "Your organization requires a second factor for your account.",
    };
    render(&EnrolPage { ctx: area.ctx("Set up a second factor"), base: area.base, reason })
}

#[post("/login/enrol/totp")]
pub async fn enrol_start(req: HttpRequest, session: Session, state: web::Data<AppState>) -> AppResult<HttpResponse> {
    start(enrolling!(req, session, state), &state).await
}

#[get("/login/enrol/totp")]
pub async fn enrol_setup(req: HttpRequest, session: Session, state: web::Data<AppState>) -> AppResult<HttpResponse> {
    setup_page(enrolling!(req, session, state), &state, None, StatusCode::OK).await
}

#[post("/login/enrol/totp/confirm")]
pub async fn enrol_confirm(
    req: HttpRequest,
    session: Session,
    state: web::Data<AppState>,
    form: HtmlForm<CodeForm>,
) -> AppResult<HttpResponse> {
    confirm(enrolling!(req, session, state), &state, form.into_inner()).await
}

/// Registers both areas' pages, and the enrolment at sign-in.
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
        .service(enrol_overview)
        .service(enrol_start)
        .service(enrol_setup)
        .service(enrol_confirm);
}
