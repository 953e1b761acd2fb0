//! The management-token pages both areas share: Admin → API access (an organization's
//! tokens) and Staff → Service providers → a provider → API access (a provider's). The list,
//! the new-token form with its one-use form token, the show-once page and the revoke
//! confirmation; each area's handlers add who may open them and whose tokens they show.

use actix_session::Session;
use actix_web::{HttpRequest, HttpResponse, http::header};
use askama::Template;
use chrono::{DateTime, Utc};
use serde::Deserialize;

use crate::{
    auth::session::{self, FlashLevel},
    db::models::ManagementToken,
    domain::{TokenScope, TokenScopes},
    error::{AppError, AppResult, FieldErrors},
    keys::GeneratedToken,
    services::{
        keys::{KeyName, input::parse_cidrs},
        management_tokens::{self, DEFAULT_LIFETIME_DAYS, MAX_LIFETIME_DAYS, NewToken, Revocation},
    },
    views::{PageContext, confirm::ConfirmPage, redirect, render, render_with_status, time::Stamp},
};

/// The session entry holding the form tokens of the new-token forms still open (one per form
/// opened, so forms in several tabs each work): each may be submitted once, so a replayed
/// submission (refresh, back and resubmit) finds its token gone and creates nothing.
const FORM_TOKENS: &str = "management_token_forms";

/// How many open forms the session remembers; opening more forgets the oldest.
const OPEN_FORMS: usize = 8;

fn open_form_tokens(session: &Session) -> Vec<String> {
    session.get::<Vec<String>>(FORM_TOKENS).ok().flatten().unwrap_or_default()
}

/// Where an area's token pages are, and what its tokens may do.
#[derive(Debug, Clone)]
pub struct TokenArea {
    /// The list's path; the form, the revoke pages hang below it.
    pub base: String,
    /// The list's introduction.
    pub lede: &'static str,
    /// The scopes the area's tokens may have (the form offers these only).
    pub offered: &'static [TokenScope],
}

/// One token as the list shows it.
pub struct TokenRow {
    public_id: String,
    name: String,
    masked: String,
    scopes: String,
    /// Who it acts as: its creator.
    creator: String,
    /// "Any address", or its allowed ranges.
    allowed: String,
    created: Stamp,
    expires: Option<Stamp>,
    /// Written within a minute or so of the use (see `keys::verifier::usage`).
    last_used: Option<Stamp>,
    /// "Active", "Revoked" or "Expired".
    state: &'static str,
}

#[derive(Template)]
#[template(path = "admin/api_access.html")]
struct ListPage {
    ctx: PageContext,
    heading: String,
    /// A link back to where the list belongs (`href`, label).
    back: Option<(String, String)>,
    base: String,
    lede: &'static str,
    rows: Vec<TokenRow>,
}

/// The list of `tokens` at `now`.
pub fn list(
    ctx: PageContext,
    heading: &str,
    back: Option<(String, String)>,
    area: &TokenArea,
    tokens: Vec<(ManagementToken, Option<String>)>,
    now: DateTime<Utc>,
) -> AppResult<HttpResponse> {
    let rows = tokens
        .into_iter()
        .map(|(t, creator)| TokenRow {
            state: if t.revoked_at.is_some() {
                "Revoked"
            } else if t.is_expired_at(now) {
                "Expired"
            } else {
                "Active"
            },
            masked: t.masked(),
            scopes: t.scope_codes().join(", "),
            creator: creator.unwrap_or_else(|| "(account removed)".into()),
            allowed: allowed_addresses(&t),
            created: Stamp::new(t.created_at),
            expires: t.expires_at.map(Stamp::new),
            last_used: t.last_used_at.map(Stamp::new),
            public_id: t.public_id,
            name: t.name,
        })
        .collect();
    render(&ListPage { ctx, heading: heading.to_string(), back, base: area.base.clone(), lede: area.lede, rows })
}

/// Where a token may be used from, as the list says it.
fn allowed_addresses(token: &ManagementToken) -> String {
    let ranges: Vec<String> = token.allowed_cidrs.iter().flatten().map(ToString::to_string).collect();
    if ranges.is_empty() { "Any address".into() } else { ranges.join(", ") }
}

/// The new-token form as submitted.
#[derive(Debug, Default, Deserialize)]
pub struct TokenForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    scopes: Vec<String>,
    #[serde(default)]
    expires_in_days: String,
    #[serde(default)]
    allowed_ips: String,
    #[serde(default)]
    form_token: String,
}

/// One scope checkbox.
struct ScopeChoice {
    code: &'static str,
    description: &'static str,
    checked: bool,
}

#[derive(Template)]
#[template(path = "admin/api_access_form.html")]
struct FormPage {
    ctx: PageContext,
    heading: &'static str,
    action_url: String,
    cancel_href: String,
    name: String,
    expires_in_days: String,
    allowed_ips: String,
    form_token: String,
    scopes: Vec<ScopeChoice>,
    name_error: Option<String>,
    scopes_error: Option<String>,
    expires_error: Option<String>,
    ips_error: Option<String>,
    max_days: String,
    expires_hint: String,
}

/// The heading of the new-token form (its page context is made with it).
pub const FORM_HEADING: &str = "New management token";

fn form_page(ctx: PageContext, area: &TokenArea, values: TokenForm, errors: &FieldErrors) -> FormPage {
    let scopes = area
        .offered
        .iter()
        .map(|s| ScopeChoice {
            code: s.code(),
            description: s.description(),
            checked: values.scopes.iter().any(|c| c == s.code()),
        })
        .collect();
    FormPage {
        ctx,
        heading: FORM_HEADING,
        action_url: area.base.clone(),
        cancel_href: area.base.clone(),
        name: values.name,
        expires_in_days: values.expires_in_days,
        allowed_ips: values.allowed_ips,
        form_token: values.form_token,
        scopes,
        name_error: errors.get("name").map(str::to_string),
        scopes_error: errors.get("scopes").map(str::to_string),
        expires_error: errors.get("expires_in_days").map(str::to_string),
        ips_error: errors.get("allowed_ips").map(str::to_string),
        max_days: MAX_LIFETIME_DAYS.to_string(),
        expires_hint: format!(
            "From 1 to {MAX_LIFETIME_DAYS} days; {DEFAULT_LIFETIME_DAYS} if left empty. Every token expires."
        ),
    }
}

/// An empty new-token form, with a fresh one-use form token.
pub fn new_form(session: &Session, ctx: PageContext, area: &TokenArea) -> AppResult<HttpResponse> {
    let form_token = crate::secrets::random_token(24);
    let mut open = open_form_tokens(session);
    open.push(form_token.clone());
    let forgotten = open.len().saturating_sub(OPEN_FORMS);
    open.drain(..forgotten);
    session.insert(FORM_TOKENS, &open).map_err(|e| AppError::Internal(e.to_string()))?;
    let values = TokenForm { expires_in_days: DEFAULT_LIFETIME_DAYS.to_string(), form_token, ..TokenForm::default() };
    render(&form_page(ctx, area, values, &FieldErrors::new()))
}

/// The submitted form as the token service's input, if its one-use form token is the
/// session's. `None`: the form was submitted before (or has expired) — the user is told, and
/// the caller goes back to the list.
pub fn read_form(session: &Session, values: &TokenForm) -> Option<Result<NewToken, AppError>> {
    let submitted = &values.form_token;
    if submitted.is_empty() || !open_form_tokens(session).contains(submitted) {
        session::flash(
            session,
            FlashLevel::Info,
            "That form was already submitted (or has expired): no new token was created. Open \"New token\" again to create one.",
        );
        return None;
    }
    Some(parse(values))
}

/// Parses the form, every problem a field error.
fn parse(values: &TokenForm) -> Result<NewToken, AppError> {
    let mut errors = FieldErrors::new();
    let name = errors.take("name", KeyName::parse(&values.name));
    let scopes = errors.take("scopes", TokenScopes::parse(values.scopes.iter().map(String::as_str)));
    let days = match values.expires_in_days.trim() {
        "" => Ok(None),
        text => text.parse::<u32>().map(Some).map_err(|_| "Give a number of days.".to_string()),
    };
    let lifetime = errors.take("expires_in_days", days.and_then(management_tokens::parse_lifetime));
    let cidrs = errors.take("allowed_ips", parse_cidrs(&values.allowed_ips));
    let (((name, scopes), lifetime_days), cidrs) = errors.finish(name.zip(scopes).zip(lifetime).zip(cidrs))?;
    Ok(NewToken { name, scopes, cidrs, lifetime_days })
}

#[derive(Template)]
#[template(path = "admin/api_access_secret.html")]
struct SecretPage {
    ctx: PageContext,
    done_href: String,
    name: String,
    masked: String,
    secret: String,
    scopes: String,
}

/// The heading of the page that shows a new token.
pub const SECRET_HEADING: &str = "Your new management token";

/// The answer to a submitted form: the new token, shown once (`ctx` made with
/// [`SECRET_HEADING`]), or the form again with its field errors (`form_ctx`, with
/// [`FORM_HEADING`]).
pub fn answer(
    session: &Session,
    area: &TokenArea,
    values: TokenForm,
    result: Result<(ManagementToken, GeneratedToken), AppError>,
    ctx: impl FnOnce(&str) -> AppResult<PageContext>,
) -> AppResult<HttpResponse> {
    match result {
        Ok((token, secret)) => {
            let mut open = open_form_tokens(session);
            open.retain(|t| *t != values.form_token);
            session.insert(FORM_TOKENS, &open).map_err(|e| AppError::Internal(e.to_string()))?;
            let page = SecretPage {
                ctx: ctx(SECRET_HEADING)?,
                done_href: area.base.clone(),
                name: token.name.clone(),
                masked: token.masked(),
                secret: secret.expose().to_string(),
                scopes: token.scope_codes().join(", "),
            };
            // The one page that ever shows the token: no cache may keep it. The flash is for
            // the list the person goes back to.
            let mut response = render(&page)?;
            session::flash(session, FlashLevel::Success, format!("Created the token \"{}\".", token.name));
            response
                .headers_mut()
                .insert(header::CACHE_CONTROL, header::HeaderValue::from_static("no-store, max-age=0"));
            Ok(response)
        }
        Err(AppError::Invalid(errors)) => render_with_status(
            &form_page(ctx(FORM_HEADING)?, area, values, &errors),
            actix_web::http::StatusCode::UNPROCESSABLE_ENTITY,
        ),
        Err(e) => Err(e),
    }
}

/// The token's public id in the path (anything else is no page).
pub fn token_id(req: &HttpRequest) -> AppResult<String> {
    let id = req.match_info().get("public_id").unwrap_or_default();
    if crate::keys::format::is_public_id(id) { Ok(id.to_string()) } else { Err(AppError::NotFound) }
}

/// The heading of the revoke confirmation.
pub fn revoke_heading(token: &ManagementToken) -> String {
    format!("Revoke the token \"{}\"?", token.name)
}

/// "Revoke this token?" (`ctx` made with [`revoke_heading`]); a token revoked already goes
/// back to the list, which says so.
pub fn revoke_form(
    session: &Session,
    ctx: PageContext,
    area: &TokenArea,
    token: &ManagementToken,
) -> AppResult<HttpResponse> {
    if token.revoked_at.is_some() {
        session::flash(session, FlashLevel::Info, already_revoked(token));
        return Ok(redirect(&area.base));
    }
    let mut page = ConfirmPage::deletion(
        ctx,
        revoke_heading(token),
        "Scripts using this token are refused at once, on every instance. This cannot be undone.".into(),
        None,
        format!("{}/{}/revoke", area.base, token.public_id),
        "Revoke token",
        &area.base,
    );
    page.detail = Some(token.masked());
    render(&page)
}

/// After a revocation: this instance drops the token at once (it need not wait for its own
/// change notice), and the list says so.
pub fn revoked(
    session: &Session,
    state: &crate::state::AppState,
    area: &TokenArea,
    revocation: &Revocation,
) -> HttpResponse {
    let token = revocation.token();
    state.verifier.tokens.invalidate(&format!("token:{}", token.public_id));
    match revocation {
        Revocation::Revoked(_) => {
            session::flash(session, FlashLevel::Success, format!("Revoked the token \"{}\".", token.name))
        }
        Revocation::AlreadyRevoked(_) => session::flash(session, FlashLevel::Info, already_revoked(token)),
    }
    redirect(&area.base)
}

fn already_revoked(token: &ManagementToken) -> String {
    format!("The token \"{}\" was already revoked: nothing changed.", token.name)
}
