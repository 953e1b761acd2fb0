//! Passkey pages and ceremonies: adding one under Account → Security (and at sign-in, for an
//! account that must set up a second factor), removing one, and the challenges a browser
//! answers with one to finish signing in or to confirm it's you.
//!
//! A ceremony needs JavaScript (`navigator.credentials`): the page's form first asks its
//! `…/options` address for a challenge (JSON, the challenge's state kept in the session),
//! lets the browser sign it, and submits the answer as an ordinary form field, so the outcome
//! is an ordinary page with a flash message. Without JavaScript the pages say so, and the
//! other ways (a code, a recovery code) remain.

use actix_session::Session;
use actix_web::{HttpRequest, HttpResponse, get, http::StatusCode, post, web};
use askama::Template;
use serde::{Deserialize, Serialize};
use webauthn_rs::prelude::{PasskeyAuthentication, PasskeyRegistration};

use crate::{
    auth::{
        CurrentStaff, CurrentUser,
        csrf::SiteOrigin,
        session::{self, ActorKind, FlashLevel},
    },
    db::models::second_factor::{FactorOwner, PasskeyRow},
    error::{AppError, AppResult},
    metrics::SignIn,
    routes::{
        extract::HtmlForm,
        security::{Area, RemovePage, recovery_codes_page, removal_consequence},
        session::{active_account, pending_sign_in},
    },
    services::second_factor::{
        self,
        passkey::{self, Refusal, Registered},
    },
    state::AppState,
    views::{PageContext, redirect, render, render_with_status},
};

const REGISTER: &str = "register";
const AUTHENTICATE: &str = "authenticate";

/// Whether passkeys work on the page a request is for: they belong to one origin (the
/// public URL's), and a browser refuses them anywhere else (`127.0.0.1` for `localhost`).
pub(crate) enum Availability {
    Here,
    /// At this origin instead.
    Elsewhere(String),
    /// Not at all (the public URL names an address), and why.
    Off(String),
}

impl Availability {
    pub(crate) fn of(req: &HttpRequest, state: &AppState) -> Self {
        match &state.second_factor.passkeys {
            Err(why) => Availability::Off(why.clone()),
            Ok(party) => {
                // This site's origin as forms judge it: the public URL's when configured (a
                // proxy may end TLS in front of us), else the request's host.
                let here = match req.app_data::<web::Data<SiteOrigin>>() {
                    Some(site) => site.for_request(&req.connection_info()),
                    None => {
                        let info = req.connection_info();
                        format!("{}://{}", info.scheme(), info.host()).to_ascii_lowercase()
                    }
                };
                if same_origin(&here, party.origin()) {
                    Availability::Here
                } else {
                    Availability::Elsewhere(party.origin().to_string())
                }
            }
        }
    }

    /// What to tell a person where passkeys cannot work; empty where they can.
    pub(crate) fn note(&self) -> String {
        match self {
            Availability::Here => String::new(),
            Availability::Elsewhere(origin) => {
                format!("Passkeys work only at {origin}. Open Keyward there to add or use one.")
            }
            Availability::Off(why) => format!("Passkeys are not available on this server: {why}."),
        }
    }
}

/// Origins compared without the scheme's default port (a proxy may or may not write it).
fn same_origin(a: &str, b: &str) -> bool {
    let strip = |o: &str| o.trim_end_matches(":443").trim_end_matches(":80").to_string();
    strip(a) == strip(b)
}

#[derive(Template)]
#[template(path = "security/passkey_new.html")]
struct NewPasskeyPage {
    ctx: PageContext,
    base: &'static str,
    name: String,
    name_error: Option<String>,
    error: Option<String>,
    /// Why passkeys cannot be added here; empty when they can.
    unavailable: String,
}

/// Not `Debug`: the answer of an authenticator is a credential.
#[derive(Deserialize)]
pub struct PasskeyForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    credential: String,
}

/// The answer of an options request that cannot start a ceremony: a message for the page,
/// and the field it is about.
#[derive(Serialize)]
struct OptionsRefused<'a> {
    error: &'a str,
    field: Option<&'a str>,
}

fn refused(status: StatusCode, error: &str, field: Option<&str>) -> HttpResponse {
    HttpResponse::build(status).json(OptionsRefused { error, field })
}

/// The JSON refusal of a server without passkeys.
fn passkeys_off() -> HttpResponse {
    refused(StatusCode::CONFLICT, "Passkeys are not available on this server.", None)
}

fn new_page(
    area: &Area,
    req: &HttpRequest,
    state: &AppState,
    form: NewForm,
    status: StatusCode,
) -> AppResult<HttpResponse> {
    let page = NewPasskeyPage {
        ctx: area.ctx("Add a passkey"),
        base: area.base,
        name: form.name,
        name_error: form.name_error,
        error: form.error,
        unavailable: Availability::of(req, state).note(),
    };
    render_with_status(&page, status)
}

/// What the "Add a passkey" form shows again.
#[derive(Default)]
struct NewForm {
    name: String,
    name_error: Option<String>,
    error: Option<String>,
}

fn new_path(area: &Area) -> String {
    format!("{}/passkeys/new", area.base)
}

async fn new_form(area: Area, req: &HttpRequest, state: &AppState) -> AppResult<HttpResponse> {
    area.require_recent(&new_path(&area))?;
    new_page(&area, req, state, NewForm::default(), StatusCode::OK)
}

/// The challenge of a new passkey for the browser to answer (JSON), its state kept in the
/// session. The name is checked first, so a refused name costs no ceremony.
async fn registration_options(area: Area, state: &AppState, form: PasskeyForm) -> AppResult<HttpResponse> {
    area.require_recent(&new_path(&area))?;
    let Ok(party) = state.second_factor.relying_party() else { return Ok(passkeys_off()) };
    let actor = area.actor.clone();
    let started = state.db.run(move |conn| passkey::start_registration(conn, &party, &actor, &form.name)).await?;
    match started {
        Ok((options, registration)) => {
            session::begin_passkey_ceremony(&area.session, REGISTER, area.actor.now, &registration)?;
            Ok(HttpResponse::Ok().json(options))
        }
        Err(Refusal::Name(message)) => Ok(refused(StatusCode::UNPROCESSABLE_ENTITY, &message, Some("name"))),
        Err(Refusal::Attempt(message)) => Ok(refused(StatusCode::CONFLICT, message, None)),
    }
}

/// Stores the passkey the browser made, checked against the challenge in the session. The
/// account's first second factor shows its recovery codes next; at sign-in, it completes the
/// sign-in.
async fn register(area: Area, req: &HttpRequest, state: &AppState, form: PasskeyForm) -> AppResult<HttpResponse> {
    // No confirmation is asked again here: the ceremony being finished was begun by the
    // options request, which asked for it, minutes ago at most — and asking now would leave
    // the new passkey on the device with no account to match.
    let party = state.second_factor.relying_party()?;
    let registration: Option<PasskeyRegistration> =
        session::take_passkey_ceremony(&area.session, REGISTER, area.actor.now);
    let Some(registration) = registration else {
        let error = if form.credential.is_empty() {
            "Your browser did not create a passkey. Passkeys need JavaScript, and a browser or device that supports them."
        } else {
            "That took too long, or the page was sent twice. Try again."
        };
        let again = NewForm { name: form.name, error: Some(error.into()), ..NewForm::default() };
        return new_page(&area, req, state, again, StatusCode::UNPROCESSABLE_ENTITY);
    };
    let (actor, keys) = (area.actor.clone(), state.second_factor.clone());
    let account = area.enrolling.as_ref().map(|(account, _, _)| account.clone());
    let name = form.name.clone();
    let registered = state
        .db
        .transaction(move |conn| {
            let registered =
                passkey::finish_registration(conn, &keys, &party, &actor, &name, &registration, &form.credential)?;
            // At sign-in, the new passkey completes it, in the same transaction.
            if let (Registered::Added { .. }, Some(account)) = (&registered, &account) {
                crate::services::login::record_success(conn, account, &actor, Some("passkey_enrolment"))?;
            }
            Ok(registered)
        })
        .await?;
    if area.enrolling.is_some() {
        state.metrics.sign_in(match registered {
            Registered::Added { .. } => SignIn::EnrolmentSuccess,
            Registered::Refused(_) => SignIn::EnrolmentFailure,
        });
    }
    let (name, codes) = match registered {
        Registered::Added { name, recovery_codes } => (name, recovery_codes),
        Registered::Refused(Refusal::Name(message)) => {
            let again = NewForm { name: form.name, name_error: Some(message), ..NewForm::default() };
            return new_page(&area, req, state, again, StatusCode::UNPROCESSABLE_ENTITY);
        }
        Registered::Refused(Refusal::Attempt(message)) => {
            let again = NewForm { name: form.name, error: Some(message.into()), ..NewForm::default() };
            return new_page(&area, req, state, again, StatusCode::UNPROCESSABLE_ENTITY);
        }
    };
    let done = area.complete_enrolment()?;
    let message = format!("The passkey \u{201c}{name}\u{201d} is added: signing in can use it as your second factor.");
    session::flash(&area.session, FlashLevel::Success, message);
    match codes {
        Some(codes) => recovery_codes_page(&area, done, &codes),
        None => Ok(redirect(&done)),
    }
}

fn remove_path(area: &Area, id: i64) -> String {
    format!("{}/passkeys/{id}/remove", area.base)
}

async fn remove_form(area: Area, state: &AppState, id: i64) -> AppResult<HttpResponse> {
    area.require_recent(&remove_path(&area, id))?;
    let owner = area.owner()?;
    let found = state
        .db
        .run(move |conn| {
            let passkeys = PasskeyRow::list(conn, owner)?;
            let authenticator = crate::db::models::second_factor::TotpFactor::is_enrolled(conn, owner)?;
            let last_factor = !authenticator && passkeys.len() == 1;
            Ok(passkeys.into_iter().find(|p| p.id == id).map(|p| (p.name, last_factor)))
        })
        .await?;
    let Some((name, last_factor)) = found else { return Err(AppError::NotFound) };
    let page = RemovePage {
        ctx: area.ctx(&format!("Remove the passkey \u{201c}{name}\u{201d}")),
        base: area.base,
        action: remove_path(&area, id),
        consequence: removal_consequence(last_factor),
    };
    render(&page)
}

async fn remove(area: Area, state: &AppState, id: i64) -> AppResult<HttpResponse> {
    area.require_recent(&remove_path(&area, id))?;
    let actor = area.actor.clone();
    match state.db.transaction(move |conn| passkey::remove(conn, &actor, id)).await {
        Ok((name, others)) => {
            let codes =
                if others { "" } else { " It was your last second factor, so your recovery codes no longer work." };
            let message = format!("The passkey \u{201c}{name}\u{201d} is removed: it no longer signs you in.{codes}");
            Ok(area.flash_and_return(FlashLevel::Success, &message))
        }
        Err(AppError::NotFound) => Ok(area.flash_and_return(FlashLevel::Info, "That passkey was removed already.")),
        Err(e) => Err(e),
    }
}

/// Starts asking `owner` for a passkey: the challenge as JSON, its state in the session.
async fn authentication_options(session: &Session, state: &AppState, owner: FactorOwner) -> AppResult<HttpResponse> {
    let Ok(party) = state.second_factor.relying_party() else { return Ok(passkeys_off()) };
    let started = state.db.run(move |conn| passkey::start_authentication(conn, &party, owner)).await?;
    let Some((options, authentication)) = started else {
        return Ok(refused(StatusCode::CONFLICT, "Your account has no passkey.", None));
    };
    session::begin_passkey_ceremony(session, AUTHENTICATE, state.clock.now(), &authentication)?;
    Ok(HttpResponse::Ok().json(options))
}

/// The challenge a half-signed-in session answers with a passkey.
#[post("/login/passkey/options")]
pub async fn sign_in_options(session: Session, state: web::Data<AppState>) -> AppResult<HttpResponse> {
    let pending = match pending_sign_in(&session, &state) {
        Ok(pending) => pending,
        Err(_) => return Ok(refused(StatusCode::CONFLICT, "Sign in with your password first.", None)),
    };
    let owner = match pending.kind {
        ActorKind::User => FactorOwner::User(pending.id),
        ActorKind::Staff => FactorOwner::Staff(pending.id),
    };
    authentication_options(&session, &state, owner).await
}

/// The second step with a passkey: the browser's answer to the session's challenge. The
/// account is read again (it may have been deactivated since the password), and a correct
/// answer signs it in with a new session key.
#[post("/login/passkey")]
pub async fn sign_in(
    req: HttpRequest,
    session: Session,
    state: web::Data<AppState>,
    form: HtmlForm<PasskeyForm>,
) -> AppResult<HttpResponse> {
    let pending = match pending_sign_in(&session, &state) {
        Ok(pending) => pending,
        Err(elsewhere) => return Ok(redirect(elsewhere)),
    };
    let now = state.clock.now();
    let challenge: Option<PasskeyAuthentication> = session::take_passkey_ceremony(&session, AUTHENTICATE, now);
    let party = state.second_factor.relying_party()?;
    let client_ip = crate::domain::ClientIp::of(&req);
    let (kind, id) = (pending.kind, pending.id);
    let response = form.into_inner().credential;
    let outcome = state
        .db
        .transaction(move |conn| {
            let Some(account) = active_account(conn, kind, id)? else { return Ok(None) };
            let actor = account.actor(client_ip, now);
            let outcome = second_factor::complete_sign_in_with_passkey(
                conn,
                &party,
                &account,
                &actor,
                challenge.as_ref(),
                &response,
            )?;
            Ok(Some((account, outcome)))
        })
        .await?;
    crate::routes::session::finish_second_factor(&req, &session, &state, pending, outcome, true).await
}

/// The challenge a signed-in person answers with a passkey to confirm it's them.
async fn confirm_options(area: Area, state: &AppState) -> AppResult<HttpResponse> {
    let owner = area.owner()?;
    authentication_options(&area.session, state, owner).await
}

/// The state of the confirm page's passkey challenge, taken (answered once).
pub(crate) fn take_confirm_challenge(area: &Area) -> Option<PasskeyAuthentication> {
    session::take_passkey_ceremony(&area.session, AUTHENTICATE, area.actor.now)
}

macro_rules! both_areas {
    ($user_path:literal, $staff_path:literal, $method:ident, $user_fn:ident, $staff_fn:ident, |$area:ident, $state:ident $(, $arg:ident : $ty:ty)*| $body:expr) => {
        #[$method($user_path)]
        pub async fn $user_fn(user: CurrentUser, $state: web::Data<AppState> $(, $arg: $ty)*) -> AppResult<HttpResponse> {
            let $area = Area::user(&user)?;
            $body
        }

        #[$method($staff_path)]
        pub async fn $staff_fn(staff: CurrentStaff, $state: web::Data<AppState> $(, $arg: $ty)*) -> AppResult<HttpResponse> {
            let $area = Area::staff(&staff)?;
            $body
        }
    };
}

both_areas!(
    "/account/security/passkeys/new",
    "/staff/security/passkeys/new",
    get,
    user_new,
    staff_new,
    |area, state, req: HttpRequest| new_form(area, &req, &state).await
);
both_areas!(
    "/account/security/passkeys/options",
    "/staff/security/passkeys/options",
    post,
    user_registration_options,
    staff_registration_options,
    |area, state, form: HtmlForm<PasskeyForm>| registration_options(area, &state, form.into_inner()).await
);
both_areas!(
    "/account/security/passkeys",
    "/staff/security/passkeys",
    post,
    user_register,
    staff_register,
    |area, state, req: HttpRequest, form: HtmlForm<PasskeyForm>| register(area, &req, &state, form.into_inner()).await
);
both_areas!(
    "/account/security/passkeys/{id}/remove",
    "/staff/security/passkeys/{id}/remove",
    get,
    user_remove_form,
    staff_remove_form,
    |area, state, path: web::Path<i64>| remove_form(area, &state, path.into_inner()).await
);
both_areas!(
    "/account/security/passkeys/{id}/remove",
    "/staff/security/passkeys/{id}/remove",
    post,
    user_remove,
    staff_remove,
    |area, state, path: web::Path<i64>| remove(area, &state, path.into_inner()).await
);
both_areas!(
    "/account/confirm/passkey-options",
    "/staff/confirm/passkey-options",
    post,
    user_confirm_options,
    staff_confirm_options,
    |area, state| confirm_options(area, &state).await
);

/// At sign-in, for an account that must set up a second factor.
#[get("/login/enrol/passkeys/new")]
pub async fn enrol_new(req: HttpRequest, session: Session, state: web::Data<AppState>) -> AppResult<HttpResponse> {
    match Area::enrolling(&req, session, &state).await? {
        Ok(area) => new_form(area, &req, &state).await,
        Err(elsewhere) => Ok(elsewhere),
    }
}

#[post("/login/enrol/passkeys/options")]
pub async fn enrol_options(
    req: HttpRequest,
    session: Session,
    state: web::Data<AppState>,
    form: HtmlForm<PasskeyForm>,
) -> AppResult<HttpResponse> {
    match Area::enrolling(&req, session, &state).await? {
        Ok(area) => registration_options(area, &state, form.into_inner()).await,
        Err(_) => Ok(refused(StatusCode::CONFLICT, "Sign in with your password first.", None)),
    }
}

#[post("/login/enrol/passkeys")]
pub async fn enrol_register(
    req: HttpRequest,
    session: Session,
    state: web::Data<AppState>,
    form: HtmlForm<PasskeyForm>,
) -> AppResult<HttpResponse> {
    match Area::enrolling(&req, session, &state).await? {
        Ok(area) => register(area, &req, &state, form.into_inner()).await,
        Err(elsewhere) => Ok(elsewhere),
    }
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(user_new)
        .service(staff_new)
        .service(user_registration_options)
        .service(staff_registration_options)
        .service(user_register)
        .service(staff_register)
        .service(user_remove_form)
        .service(staff_remove_form)
        .service(user_remove)
        .service(staff_remove)
        .service(user_confirm_options)
        .service(staff_confirm_options)
        .service(sign_in_options)
        .service(sign_in)
        .service(enrol_new)
        .service(enrol_options)
        .service(enrol_register);
}
