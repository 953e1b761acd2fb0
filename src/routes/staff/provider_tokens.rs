//! Staff → Service providers → a provider → API access: the provider's management tokens,
//! for the provider's scripts and CI to manage its keys through the management API. Support
//! staff list them, create one — after proving it is them (sudo mode), its secret shown
//! once — and revoke one. A token acts as the specialist who created it, on the provider's
//! keys only (never a client's). The pages themselves are `routes::token_pages`.

use actix_web::{HttpRequest, HttpResponse, get, post, web};

use crate::{
    auth::CurrentStaff,
    db::models::{ManagementToken, ServiceProvider, management_token::TokenTenant},
    error::{AppError, AppResult},
    routes::{
        extract::HtmlForm,
        staff::path_id,
        token_pages::{self, TokenArea, TokenForm},
    },
    services::management_tokens::{self, PROVIDER_SCOPES},
    state::AppState,
    views::{PageContext, Section, redirect},
};

fn area(provider_id: i64) -> TokenArea {
    TokenArea {
        base: format!("/staff/providers/{provider_id}/api-access"),
        lede: "Management tokens let this service provider's scripts and CI manage its keys through the management API (/api/v1/keys …). A token acts with the rights of the support specialist who created it, on this provider's keys only.",
        offered: &PROVIDER_SCOPES,
    }
}

/// The path's provider (a page of an unknown provider is no page).
async fn provider(req: &HttpRequest, state: &AppState) -> AppResult<ServiceProvider> {
    let id = path_id(req, "id")?;
    state.db.run(move |conn| Ok(ServiceProvider::find(conn, id)?)).await
}

fn context(staff: &CurrentStaff, heading: &str) -> AppResult<PageContext> {
    PageContext::for_staff(staff, heading, Section::StaffProviders)
}

#[get("/staff/providers/{id}/api-access")]
pub async fn list(staff: CurrentStaff, req: HttpRequest, state: web::Data<AppState>) -> AppResult<HttpResponse> {
    let provider = provider(&req, &state).await?;
    let tenant = TokenTenant::ServiceProvider(provider.id);
    let tokens = state.db.run(move |conn| Ok(ManagementToken::list(conn, tenant)?)).await?;
    let heading = format!("API access of {}", provider.name);
    let back = (format!("/staff/providers/{}", provider.id), format!("← {}", provider.name));
    token_pages::list(context(&staff, &heading)?, &heading, Some(back), &area(provider.id), tokens, staff.now)
}

#[get("/staff/providers/{id}/api-access/new")]
pub async fn new_form(staff: CurrentStaff, req: HttpRequest, state: web::Data<AppState>) -> AppResult<HttpResponse> {
    let provider = provider(&req, &state).await?;
    let area = area(provider.id);
    staff.require_recent(&format!("{}/new", area.base))?;
    token_pages::new_form(&staff.session, context(&staff, token_pages::FORM_HEADING)?, &area)
}

#[post("/staff/providers/{id}/api-access")]
pub async fn create(
    staff: CurrentStaff,
    req: HttpRequest,
    state: web::Data<AppState>,
    form: HtmlForm<TokenForm>,
) -> AppResult<HttpResponse> {
    let provider = provider(&req, &state).await?;
    let area = area(provider.id);
    // A token acts as this specialist: creating one asks for a fresh proof of who they are.
    staff.require_recent(&format!("{}/new", area.base))?;
    let values = form.into_inner();
    let Some(parsed) = token_pages::read_form(&staff.session, &values) else {
        return Ok(redirect(&area.base));
    };
    let result = match parsed {
        Err(e) => Err(e),
        Ok(new) => {
            let (actor, hasher, provider_id, staff_id) =
                (staff.actor(), state.hasher.clone(), provider.id, staff.staff.id);
            state
                .db
                .transaction(move |conn| {
                    management_tokens::create_for_provider(conn, &actor, &hasher, provider_id, staff_id, new)
                })
                .await
        }
    };
    token_pages::answer(&staff.session, &area, values, result, |heading| context(&staff, heading))
}

#[get("/staff/providers/{id}/api-access/{public_id}/revoke")]
pub async fn revoke_form(staff: CurrentStaff, req: HttpRequest, state: web::Data<AppState>) -> AppResult<HttpResponse> {
    let provider = provider(&req, &state).await?;
    let (tenant, public_id) = (TokenTenant::ServiceProvider(provider.id), token_pages::token_id(&req)?);
    let token =
        state.db.run(move |conn| ManagementToken::find_in(conn, tenant, &public_id)?.ok_or(AppError::NotFound)).await?;
    let ctx = context(&staff, &token_pages::revoke_heading(&token))?;
    token_pages::revoke_form(&staff.session, ctx, &area(provider.id), &token)
}

#[post("/staff/providers/{id}/api-access/{public_id}/revoke")]
pub async fn revoke(staff: CurrentStaff, req: HttpRequest, state: web::Data<AppState>) -> AppResult<HttpResponse> {
    let provider_id = path_id(&req, "id")?;
    let (actor, public_id) = (staff.actor(), token_pages::token_id(&req)?);
    let revocation = state
        .db
        .transaction(move |conn| {
            management_tokens::revoke(conn, &actor, TokenTenant::ServiceProvider(provider_id), &public_id)
        })
        .await?;
    Ok(token_pages::revoked(&staff.session, &state, &area(provider_id), &revocation))
}
