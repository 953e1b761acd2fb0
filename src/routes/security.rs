//! Account → Security for web users (`/account/security`) and support staff
//! (`/staff/security`): setting up an authenticator app, recovery codes, removing it. The two
//! areas differ only in who is signed in; each handler pair below calls one shared function.
//!
//! Changing a factor goes through sudo mode (`auth::sudo`), and its "Confirm it's you" page
//! (`/account/confirm`, `/staff/confirm`) lives here too.
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
        sudo,
    },
    db::models::{StaffAccount, User, session::SessionListing},
    domain::ClientIp,
    error::{AppError, AppResult, ENROL_PATH, SECOND_FACTOR_PATH},
    metrics::SignIn,
    routes::{
        extract::HtmlForm,
        session::{client_of, greet, kind_and_id, landing},
    },
    services::{
        Actor,
        login::{self, SignedIn, WINDOW_MINUTES},
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
    session: Session,
    ctx: PageContext,
    /// At sign-in: the account setting up a required second factor, and where it goes then.
    /// The browser it signs in from (for the list of sessions).
    enrolling: Option<(SignedIn, Option<String>, session::SessionClient)>,
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
            enrolling: None,
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
        let email = match &account {
            SignedIn::User(user) => user.email.clone(),
            SignedIn::Staff(staff) => staff.email.clone(),
        };
        Ok(Ok(Self {
            base: ENROL_PATH,
            kind,
            email,
            actor: account.actor(ClientIp::of(req), now),
            password_hash,
            ctx: PageContext::anonymous(&session, "Set up a second factor")?,
            session,
            enrolling: Some((account, enrolling.next, client_of(req))),
        }))
    }

    fn ctx(&self, title: &str) -> PageContext {
        PageContext { title: title.to_string(), ..self.ctx.clone() }
    }

    /// Sudo mode: a recent proof of the person, or the confirm page returning to `return_to`.
    fn require_recent(&self, return_to: &str) -> AppResult<()> {
        // Setting up a required factor at sign-in follows the password given moments ago
        // (the enrolment state itself expires): that is the proof.
        if self.enrolling.is_some() {
            return Ok(());
        }
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
    /// Where "Done" leads.
    done: String,
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

fn recovery_codes_page(area: &Area, done: String, codes: &[String]) -> AppResult<HttpResponse> {
    let page = RecoveryCodesPage { ctx: area.ctx("Recovery codes"), done, codes: codes.join("\n") };
    render(&page).map(no_store)
}

async fn confirm(area: Area, state: &AppState, form: CodeForm) -> AppResult<HttpResponse> {
    area.require_recent(&format!("{}/totp", area.base))?;
    let (actor, keys) = (area.actor.clone(), state.second_factor.clone());
    let account = area.enrolling.as_ref().map(|(account, _, _)| account.clone());
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
    if area.enrolling.is_some() {
        match confirmation {
            Confirmation::Enrolled(_) => state.metrics.sign_in(SignIn::EnrolmentSuccess),
            Confirmation::Wrong => state.metrics.sign_in(SignIn::EnrolmentFailure),
            _ => {}
        }
    }
    match confirmation {
        Confirmation::Enrolled(codes) => {
            let done = match &area.enrolling {
                Some((account, next, client)) => {
                    let (kind, id) = kind_and_id(account);
                    session::sign_in(&area.session, kind, id, area.actor.now, client.clone())?;
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
    area.require_recent(area.base)?;
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
        Some((SignedIn::Staff(_), _, _)) => "Staff accounts must sign in with a second factor.",
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
        .service(user_confirm_identity_form)
        .service(staff_confirm_identity_form)
        .service(user_confirm_identity)
        .service(staff_confirm_identity)
        .service(user_end_other_sessions)
        .service(staff_end_other_sessions)
        .service(user_end_session)
        .service(staff_end_session)
        .service(enrol_overview)
        .service(enrol_start)
        .service(enrol_setup)
        .service(enrol_confirm);
}
