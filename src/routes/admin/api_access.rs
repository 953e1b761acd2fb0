//! Admin → API access: the organization's management tokens (for scripts and CI using the
//! management API). Administrators list them, create one — after proving it is them (sudo
//! mode), its secret shown once — and revoke one after a confirmation.

use actix_web::{HttpRequest, HttpResponse, get, http::header, post, web};
use askama::Template;
use serde::Deserialize;

use crate::{
    auth::{
        OrgAdmin,
        session::{self, FlashLevel},
    },
    db::models::ManagementToken,
    domain::{TokenScope, TokenScopes},
    error::{AppError, AppResult, FieldErrors},
    routes::extract::HtmlForm,
    services::{
        keys::{KeyName, input::parse_cidrs},
        management_tokens::{self, DEFAULT_LIFETIME_DAYS, NewToken},
    },
    state::AppState,
    views::{PageContext, Section, confirm::ConfirmPage, redirect, render, render_with_status, time::Stamp},
};

const BASE: &str = "/admin/api-access";
/// The session entry holding the one form token a new-token form may be submitted with: a
/// replayed submission (refresh, back and resubmit) finds it gone and creates nothing.
const FORM_TOKEN: &str = "management_token_form";

/// One token as the list shows it.
struct TokenRow {
    public_id: String,
    name: String,
    masked: String,
    scopes: String,
    created: Stamp,
    expires: Option<Stamp>,
    /// "Active", "Revoked" or "Expired".
    state: &'static str,
}

#[derive(Template)]
#[template(path = "admin/api_access.html")]
struct ListPage {
    ctx: PageContext,
    rows: Vec<TokenRow>,
}

#[get("/admin/api-access")]
pub async fn list(admin: OrgAdmin, state: web::Data<AppState>) -> AppResult<HttpResponse> {
    let organization_id = admin.organization.id;
    let tokens = state.db.run(move |conn| Ok(ManagementToken::list(conn, organization_id)?)).await?;
    let now = admin.now;
    let rows = tokens
        .into_iter()
        .map(|t| TokenRow {
            state: if t.revoked_at.is_some() {
                "Revoked"
            } else if t.is_expired_at(now) {
                "Expired"
            } else {
                "Active"
            },
            masked: t.masked(),
            scopes: t.scope_codes().join(", "),
            created: Stamp::new(t.created_at),
            expires: t.expires_at.map(Stamp::new),
            public_id: t.public_id,
            name: t.name,
        })
        .collect();
    render(&ListPage { ctx: PageContext::for_user(&admin, "API access", Section::AdminApiAccess)?, rows })
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
    heading: String,
    action_url: &'static str,
    cancel_href: &'static str,
    name: String,
    expires_in_days: String,
    allowed_ips: String,
    form_token: String,
    scopes: Vec<ScopeChoice>,
    name_error: Option<String>,
    scopes_error: Option<String>,
    expires_error: Option<String>,
    ips_error: Option<String>,
}

fn form_page(admin: &OrgAdmin, values: TokenForm, errors: &FieldErrors) -> AppResult<FormPage> {
    let heading = "New management token".to_string();
    let scopes = TokenScope::ALL
        .into_iter()
        .map(|s| ScopeChoice {
            code: s.code(),
            description: s.description(),
            checked: values.scopes.iter().any(|c| c == s.code()),
        })
        .collect();
    Ok(FormPage {
        ctx: PageContext::for_user(admin, &heading, Section::AdminApiAccess)?,
        heading,
        action_url: BASE,
        cancel_href: BASE,
        name: values.name,
        expires_in_days: values.expires_in_days,
        allowed_ips: values.allowed_ips,
        form_token: values.form_token,
        scopes,
        name_error: errors.get("name").map(str::to_string),
        scopes_error: errors.get("scopes").map(str::to_string),
        expires_error: errors.get("expires_in_days").map(str::to_string),
        ips_error: errors.get("allowed_ips").map(str::to_string),
    })
}

#[get("/admin/api-access/new")]
pub async fn new_form(admin: OrgAdmin) -> AppResult<HttpResponse> {
    admin.require_recent(&format!("{BASE}/new"))?;
    let form_token = crate::secrets::random_token(24);
    admin.session.insert(FORM_TOKEN, &form_token).map_err(|e| AppError::Internal(e.to_string()))?;
    let values = TokenForm { expires_in_days: DEFAULT_LIFETIME_DAYS.to_string(), form_token, ..TokenForm::default() };
    render(&form_page(&admin, values, &FieldErrors::new())?)
}

#[derive(Template)]
#[template(path = "admin/api_access_secret.html")]
struct SecretPage {
    ctx: PageContext,
    name: String,
    masked: String,
    secret: String,
    scopes: String,
}

/// Parses the form into the token service's input, every problem a field error.
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

#[post("/admin/api-access")]
pub async fn create(admin: OrgAdmin, state: web::Data<AppState>, form: HtmlForm<TokenForm>) -> AppResult<HttpResponse> {
    // A token acts as this administrator: creating one asks for a fresh proof of who they are.
    admin.require_recent(&format!("{BASE}/new"))?;
    let values = form.into_inner();
    let expected = admin.session.get::<String>(FORM_TOKEN).ok().flatten();
    if expected.is_none_or(|token| token.is_empty() || token != values.form_token) {
        session::flash(
            &admin.session,
            FlashLevel::Info,
            "That form was already submitted (or has expired): no new token was created. Open \"New token\" again to create one.",
        );
        return Ok(redirect(BASE));
    }
    let result = match parse(&values) {
        Ok(new) => {
            let (hasher, creator) = (state.hasher.clone(), admin.user.id);
            admin
                .change(&state, move |conn, actor, organization| {
                    management_tokens::create(conn, actor, &hasher, organization, creator, new)
                })
                .await
        }
        Err(e) => Err(e),
    };
    match result {
        Ok((token, secret)) => {
            admin.session.remove(FORM_TOKEN);
            let page = SecretPage {
                ctx: PageContext::for_user(&admin, "Your new management token", Section::AdminApiAccess)?,
                name: token.name.clone(),
                masked: token.masked(),
                secret: secret.expose().to_string(),
                scopes: token.scope_codes().join(", "),
            };
            // The one page that ever shows the token: no cache may keep it.
            let mut response = render(&page)?;
            response
                .headers_mut()
                .insert(header::CACHE_CONTROL, header::HeaderValue::from_static("no-store, max-age=0"));
            Ok(response)
        }
        Err(AppError::Invalid(errors)) => {
            render_with_status(&form_page(&admin, values, &errors)?, actix_web::http::StatusCode::UNPROCESSABLE_ENTITY)
        }
        Err(e) => Err(e),
    }
}

fn token_id(req: &HttpRequest) -> AppResult<String> {
    let id = req.match_info().get("public_id").unwrap_or_default();
    if crate::keys::format::is_public_id(id) { Ok(id.to_string()) } else { Err(AppError::NotFound) }
}

#[get("/admin/api-access/{public_id}/revoke")]
pub async fn revoke_form(admin: OrgAdmin, req: HttpRequest, state: web::Data<AppState>) -> AppResult<HttpResponse> {
    let public_id = token_id(&req)?;
    let organization_id = admin.organization.id;
    let token = state
        .db
        .run(move |conn| {
            let tokens = ManagementToken::list(conn, organization_id)?;
            tokens.into_iter().find(|t| t.public_id == public_id).ok_or(AppError::NotFound)
        })
        .await?;
    let heading = format!("Revoke the token \"{}\"?", token.name);
    let ctx = PageContext::for_user(&admin, &heading, Section::AdminApiAccess)?;
    let mut page = ConfirmPage::deletion(
        ctx,
        heading,
        "Scripts using this token are refused at once, on every instance. This cannot be undone.".into(),
        None,
        format!("{BASE}/{}/revoke", token.public_id),
        "Revoke token",
        BASE,
    );
    page.detail = Some(token.masked());
    render(&page)
}

#[post("/admin/api-access/{public_id}/revoke")]
pub async fn revoke(admin: OrgAdmin, req: HttpRequest, state: web::Data<AppState>) -> AppResult<HttpResponse> {
    let public_id = token_id(&req)?;
    let token = admin
        .change(&state, move |conn, actor, organization| {
            management_tokens::revoke(conn, actor, organization, &public_id)
        })
        .await?;
    // This instance need not wait for its own change notice.
    state.verifier.tokens.invalidate(&format!("token:{}", token.public_id));
    session::flash(&admin.session, FlashLevel::Success, format!("Revoked the token {}.", token.name));
    Ok(redirect(BASE))
}
