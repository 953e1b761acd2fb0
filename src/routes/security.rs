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

use crate::{
    auth::{
        CurrentStaff, CurrentUser,
        session::{self, ActorKind, FlashLevel},
        sudo,
    },
    db::models::{
        second_factor::{FactorOwner, has_any_factor},
        session::SessionListing,
    },
    domain::ClientIp,
    error::{AppError, AppResult, ENROL_PATH, SECOND_FACTOR_PATH},
    metrics::SignIn,
    routes::{
        extract::HtmlForm,
        passkeys::Availability,
        session::{active_account, client_of, greet, kind_and_id, landing},
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
pub(crate) struct Area {
    pub(crate) base: &'static str,
    kind: ActorKind,
    email: String,
    pub(crate) actor: Actor,
    password_hash: Option<String>,
    pub(crate) session: Session,
    ctx: PageContext,
    /// At sign-in: the account setting up a required second factor, and where it goes then.
    /// The browser it signs in from (for the list of sessions).
    pub(crate) enrolling: Option<(SignedIn, Option<String>, session::SessionClient)>,
}

impl Area {
    pub(crate) fn user(user: &CurrentUser) -> AppResult<Self> {
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

    pub(crate) fn staff(staff: &CurrentStaff) -> AppResult<Self> {
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
    pub(crate) async fn enrolling(
        req: &HttpRequest,
        session: Session,
        state: &AppState,
    ) -> AppResult<Result<Self, HttpResponse>> {
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
        // The account read again: gone or deactivated since its password, or — set up in
        // another session meanwhile — with a second factor now, which this session must give
        // like any other sign-in rather than add one of its own.
        let account = state
            .db
            .run(move |conn| {
                let account = active_account(conn, kind, id)?;
                let enrolled = match &account {
                    Some(account) => has_any_factor(conn, account.factor_owner())?,
                    None => false,
                };
                Ok(account.filter(|_| !enrolled))
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

    pub(crate) fn ctx(&self, title: &str) -> PageContext {
        PageContext { title: title.to_string(), ..self.ctx.clone() }
    }

    /// The account whose factors these pages manage.
    pub(crate) fn owner(&self) -> AppResult<FactorOwner> {
        match &self.actor.kind {
            crate::services::actor::ActorKind::User { id, .. } => Ok(FactorOwner::User(*id)),
            crate::services::actor::ActorKind::Staff { id, .. } => Ok(FactorOwner::Staff(*id)),
            _ => Err(AppError::Forbidden),
        }
    }

    /// After a factor was set up: at sign-in, signs the account in (a new session key) and
    /// greets it; where to go next either way.
    pub(crate) fn complete_enrolment(&self) -> AppResult<String> {
        match &self.enrolling {
            Some((account, next, client)) => {
                let (kind, id) = kind_and_id(account);
                session::sign_in(&self.session, kind, id, self.actor.now, client.clone())?;
                greet(&self.session, account);
                Ok(landing(account, next.clone()))
            }
            None => Ok(self.base.to_string()),
        }
    }

    /// Sudo mode: a recent proof of the person, or the confirm page returning to `return_to`.
    pub(crate) fn require_recent(&self, return_to: &str) -> AppResult<()> {
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

    pub(crate) fn flash_and_return(&self, level: FlashLevel, message: &str) -> HttpResponse {
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
    passkeys: Vec<PasskeyView>,
    /// Why passkeys cannot be added or used on this page; empty when they can.
    passkeys_elsewhere: String,
    sessions: Vec<SessionView>,
}

/// One passkey of the account, as listed.
struct PasskeyView {
    id: i64,
    name: String,
    added: Stamp,
    last_used: Option<Stamp>,
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
pub(crate) struct RemovePage {
    /// Its title is the question ("Remove the passkey “Laptop”").
    pub(crate) ctx: PageContext,
    pub(crate) base: &'static str,
    /// Where the Remove button posts.
    pub(crate) action: String,
    /// What removing it changes for signing in.
    pub(crate) consequence: &'static str,
}

/// What removing a second factor does, in words: whether others remain.
pub(crate) fn removal_consequence(last_factor: bool) -> &'static str {
    if last_factor {
        "It is your only second factor: signing in will ask for your password alone, and your recovery codes will \
         stop working."
    } else {
        "It will no longer sign you in. Your other second factors and your recovery codes keep working."
    }
}

/// Not `Debug`: what people type here is a code or a password, never for a log.
#[derive(Deserialize)]
pub struct CodeForm {
    #[serde(default)]
    code: String,
}

/// The "Confirm it's you" form: a code, a passkey's answer, or the password of an account
/// without a factor.
#[derive(Deserialize)]
pub struct ConfirmForm {
    #[serde(default)]
    code: String,
    #[serde(default)]
    credential: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    next: String,
    /// Where Cancel goes (the page the person came from), carried over a failed attempt.
    #[serde(default)]
    back: String,
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
    /// What is asked for: a second factor (otherwise the password), and which.
    asks: ConfirmAsks,
    next: String,
    /// Where Cancel goes: the page the person came from, never `next` (which asks again).
    back: String,
    error: Option<String>,
    /// Why passkeys cannot be used on this page; empty when they can.
    passkeys_elsewhere: String,
}

impl ConfirmPage {
    /// Where its passkey form asks for a challenge.
    fn passkey_options(&self) -> String {
        format!("{}/passkey-options", self.action)
    }
}

/// What the confirm page asks an account for.
#[derive(Debug, Clone, Copy)]
struct ConfirmAsks {
    /// A second factor, not the password.
    code: bool,
    authenticator: bool,
    passkeys: bool,
}

impl ConfirmAsks {
    fn of(with: &ConfirmWith) -> Self {
        match *with {
            ConfirmWith::SecondFactor { authenticator, passkeys } => Self { code: true, authenticator, passkeys },
            ConfirmWith::Password(_) => Self { code: false, authenticator: false, passkeys: false },
        }
    }

    /// A throttled account is not told which it would have been asked for: the code field.
    const UNSAID: Self = Self { code: true, authenticator: true, passkeys: false };
}

/// Pages that show a secret (the setup QR code, recovery codes) must not be kept by any cache.
fn no_store(mut response: HttpResponse) -> HttpResponse {
    response.headers_mut().insert(header::CACHE_CONTROL, header::HeaderValue::from_static("no-store, max-age=0"));
    response.headers_mut().insert(header::PRAGMA, header::HeaderValue::from_static("no-cache"));
    response
}

async fn overview(area: Area, req: &HttpRequest, state: &AppState) -> AppResult<HttpResponse> {
    let actor = area.actor.clone();
    let (status, rows) =
        state.db.run(move |conn| Ok((second_factor::status(conn, &actor)?, sessions::list(conn, &actor)?))).await?;
    let current = area.current_session();
    let now = area.actor.now;
    let sessions = rows.into_iter().map(|row| SessionView::new(row, current.as_deref(), now)).collect();
    let passkeys = status
        .passkeys
        .iter()
        .map(|p| PasskeyView {
            id: p.id,
            name: p.name.clone(),
            added: Stamp::relative_to(p.created_at, now),
            last_used: p.last_used_at.map(|at| Stamp::relative_to(at, now)),
        })
        .collect();
    let passkeys_elsewhere = Availability::of(req, state).note();
    render(&OverviewPage { ctx: area.ctx("Security"), base: area.base, status, passkeys, passkeys_elsewhere, sessions })
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

pub(crate) fn recovery_codes_page(area: &Area, done: String, codes: &[String]) -> AppResult<HttpResponse> {
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
            let done = area.complete_enrolment()?;
            session::flash(
                &area.session,
                FlashLevel::Success,
                "Your authenticator app is set up: signing in can use a code from it from now on.",
            );
            match codes {
                Some(codes) => recovery_codes_page(&area, done, &codes),
                None => Ok(redirect(&done)),
            }
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

async fn remove_form(area: Area, state: &AppState) -> AppResult<HttpResponse> {
    let action = format!("{}/totp/remove", area.base);
    area.require_recent(&action)?;
    let owner = area.owner()?;
    let methods = state.db.run(move |conn| second_factor::sign_in_methods(conn, owner)).await?;
    let consequence = removal_consequence(!methods.passkeys);
    render(&RemovePage { ctx: area.ctx("Remove the authenticator app"), base: area.base, action, consequence })
}

/// Removing the second factor asks for a recent proof of the person (sudo mode).
async fn remove(area: Area, state: &AppState) -> AppResult<HttpResponse> {
    area.require_recent(&format!("{}/totp/remove", area.base))?;
    let actor = area.actor.clone();
    match state.db.transaction(move |conn| second_factor::remove(conn, &actor)).await {
        Ok(others) => Ok(area.flash_and_return(
            FlashLevel::Success,
            if others {
                "The authenticator app is removed. Your passkeys and recovery codes keep working."
            } else {
                "The authenticator app is removed, and your recovery codes no longer work."
            },
        )),
        Err(AppError::NotFound) => Ok(area.flash_and_return(FlashLevel::Info, "No authenticator app is set up.")),
        Err(e) => Err(e),
    }
}

#[get("/account/security")]
pub async fn user_overview(req: HttpRequest, user: CurrentUser, state: web::Data<AppState>) -> AppResult<HttpResponse> {
    overview(Area::user(&user)?, &req, &state).await
}

#[get("/staff/security")]
pub async fn staff_overview(
    req: HttpRequest,
    staff: CurrentStaff,
    state: web::Data<AppState>,
) -> AppResult<HttpResponse> {
    overview(Area::staff(&staff)?, &req, &state).await
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
pub async fn user_remove_form(user: CurrentUser, state: web::Data<AppState>) -> AppResult<HttpResponse> {
    remove_form(Area::user(&user)?, &state).await
}

#[get("/staff/security/totp/remove")]
pub async fn staff_remove_form(staff: CurrentStaff, state: web::Data<AppState>) -> AppResult<HttpResponse> {
    remove_form(Area::staff(&staff)?, &state).await
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

/// Where the confirm page's Cancel goes: `came_from` (the page whose link or form led here —
/// the Referer on arrival, the form's `back` after a failed attempt) when it is a local page
/// other than the confirm page and other than `next` (which would only ask again); the
/// account's home otherwise.
fn confirm_cancel(area: &Area, came_from: Option<&str>, next: &str) -> String {
    came_from
        .map(|page| confirm_return(area, Some(page)))
        .filter(|page| page != next)
        .unwrap_or_else(|| confirm_return(area, None))
}

/// The local page (path and query) of this request's `Referer`, when it is this site's. The
/// `Referrer-Policy: same-origin` Keyward sends means other sites' pages never name it.
fn referring_page(req: &HttpRequest) -> Option<String> {
    let referer = req.headers().get(header::REFERER)?.to_str().ok()?;
    let url = url::Url::parse(referer).ok()?;
    let host = match url.port() {
        Some(port) => format!("{}:{port}", url.host_str()?),
        None => url.host_str()?.to_string(),
    };
    if host != req.connection_info().host() {
        return None;
    }
    Some(match url.query() {
        Some(query) => format!("{}?{query}", url.path()),
        None => url.path().to_string(),
    })
}

async fn confirm_identity_form(
    area: Area,
    req: &HttpRequest,
    state: &AppState,
    next: Option<String>,
) -> AppResult<HttpResponse> {
    let next = confirm_return(&area, next.as_deref());
    if sudo::is_fresh(&area.session, area.actor.now) {
        return Ok(redirect(&next));
    }
    let back = confirm_cancel(&area, referring_page(req).as_deref(), &next);
    let owner = area.owner()?;
    let methods = state.db.run(move |conn| second_factor::sign_in_methods(conn, owner)).await?;
    let asks = ConfirmAsks {
        code: methods.authenticator || methods.passkeys,
        authenticator: methods.authenticator,
        passkeys: methods.passkeys,
    };
    confirm_identity_page(area, req, state, asks, (next, back), None, StatusCode::OK)
}

fn confirm_identity_page(
    area: Area,
    req: &HttpRequest,
    state: &AppState,
    asks: ConfirmAsks,
    (next, back): (String, String),
    error: Option<String>,
    status: StatusCode,
) -> AppResult<HttpResponse> {
    let page = ConfirmPage {
        ctx: area.ctx("Confirm it's you"),
        action: sudo::confirm_path(area.kind),
        asks,
        next,
        back,
        error,
        passkeys_elsewhere: Availability::of(req, state).note(),
    };
    render_with_status(&page, status)
}

/// Checks the code (or password) of the signed-in person; a correct one makes the session
/// fresh for [`sudo::FRESH_SECS`] and goes back to the page that asked. Wrong ones are
/// audited and throttled like sign-in failures.
async fn confirm_identity(
    area: Area,
    req: &HttpRequest,
    state: &AppState,
    form: ConfirmForm,
) -> AppResult<HttpResponse> {
    let next = confirm_return(&area, Some(&form.next));
    let back = confirm_cancel(&area, Some(&form.back), &next);
    let (actor, email, hash) = (area.actor.clone(), area.email.clone(), area.password_hash.clone());
    let with =
        state.db.transaction(move |conn| second_factor::confirm_identity_with(conn, &actor, &email, hash)).await?;
    let asks = with.as_ref().map_or(ConfirmAsks::UNSAID, ConfirmAsks::of);
    let by_passkey = !form.credential.is_empty();
    let (confirmed, code) = match with {
        Err(refused) => (refused, true),
        Ok(ConfirmWith::SecondFactor { passkeys: true, .. }) if by_passkey => {
            let party = state.second_factor.relying_party()?;
            let challenge = crate::routes::passkeys::take_confirm_challenge(&area);
            let (actor, response) = (area.actor.clone(), form.credential);
            let confirmed = state
                .db
                .transaction(move |conn| {
                    second_factor::confirm_identity_by_passkey(conn, &party, &actor, challenge.as_ref(), &response)
                })
                .await?;
            (confirmed, true)
        }
        Ok(ConfirmWith::SecondFactor { .. }) => {
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
        Confirmed::Wrong if by_passkey => {
            (StatusCode::UNAUTHORIZED, "The passkey could not be verified. Try again, or use a code.")
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
    confirm_identity_page(area, req, state, asks, (next, back), Some(error), status)
}

#[get("/account/confirm")]
pub async fn user_confirm_identity_form(
    req: HttpRequest,
    user: CurrentUser,
    state: web::Data<AppState>,
    query: web::Query<ConfirmQuery>,
) -> AppResult<HttpResponse> {
    confirm_identity_form(Area::user(&user)?, &req, &state, query.into_inner().next).await
}

#[get("/staff/confirm")]
pub async fn staff_confirm_identity_form(
    req: HttpRequest,
    staff: CurrentStaff,
    state: web::Data<AppState>,
    query: web::Query<ConfirmQuery>,
) -> AppResult<HttpResponse> {
    confirm_identity_form(Area::staff(&staff)?, &req, &state, query.into_inner().next).await
}

#[post("/account/confirm")]
pub async fn user_confirm_identity(
    req: HttpRequest,
    user: CurrentUser,
    state: web::Data<AppState>,
    form: HtmlForm<ConfirmForm>,
) -> AppResult<HttpResponse> {
    confirm_identity(Area::user(&user)?, &req, &state, form.into_inner()).await
}

#[post("/staff/confirm")]
pub async fn staff_confirm_identity(
    req: HttpRequest,
    staff: CurrentStaff,
    state: web::Data<AppState>,
    form: HtmlForm<ConfirmForm>,
) -> AppResult<HttpResponse> {
    confirm_identity(Area::staff(&staff)?, &req, &state, form.into_inner()).await
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
    /// Why passkeys cannot be added on this page; empty when they can.
    passkeys_elsewhere: String,
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
    let passkeys_elsewhere = Availability::of(&req, &state).note();
    render(&EnrolPage { ctx: area.ctx("Set up a second factor"), base: area.base, reason, passkeys_elsewhere })
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
