//! Admin → API access: the organization's management tokens (for scripts and CI using the
//! management API). Administrators list them, create one — after proving it is them (sudo
//! mode), its secret shown once — and revoke one after a confirmation. The pages themselves
//! are `routes::token_pages`, shared with the staff's service-provider tokens.

use actix_web::{HttpRequest, HttpResponse, get, post, web};

use crate::{
    auth::OrgAdmin,
    db::models::{ManagementToken, management_token::TokenTenant},
    domain::TokenScope,
    error::{AppError, AppResult},
    routes::{
        extract::HtmlForm,
        token_pages::{self, TokenArea, TokenForm},
    },
    services::management_tokens,
    state::AppState,
    views::{PageContext, Section, redirect},
};

fn area() -> TokenArea {
    TokenArea {
        base: "/admin/api-access".into(),
        lede: "Management tokens let scripts and CI manage this organization's keys, users and audit log through the management API (/api/v1/keys …). A token acts with the rights of the administrator who created it, within its scopes.",
        offered: &TokenScope::ALL,
    }
}

fn context(admin: &OrgAdmin, heading: &str) -> AppResult<PageContext> {
    PageContext::for_user(admin, heading, Section::AdminApiAccess)
}

#[get("/admin/api-access")]
pub async fn list(admin: OrgAdmin, state: web::Data<AppState>) -> AppResult<HttpResponse> {
    let tenant = TokenTenant::Organization(admin.organization.id);
    let tokens = state.db.run(move |conn| Ok(ManagementToken::list(conn, tenant)?)).await?;
    token_pages::list(context(&admin, "API access")?, "API access", None, &area(), tokens, admin.now)
}

#[get("/admin/api-access/new")]
pub async fn new_form(admin: OrgAdmin) -> AppResult<HttpResponse> {
    let area = area();
    admin.require_recent(&format!("{}/new", area.base))?;
    token_pages::new_form(&admin.session, context(&admin, token_pages::FORM_HEADING)?, &area)
}

#[post("/admin/api-access")]
pub async fn create(admin: OrgAdmin, state: web::Data<AppState>, form: HtmlForm<TokenForm>) -> AppResult<HttpResponse> {
    let area = area();
    // A token acts as this administrator: creating one asks for a fresh proof of who they are.
    admin.require_recent(&format!("{}/new", area.base))?;
    let values = form.into_inner();
    let Some(parsed) = token_pages::read_form(&admin.session, &values) else {
        return Ok(redirect(&area.base));
    };
    let result = match parsed {
        Err(e) => Err(e),
        Ok(new) => {
            let (hasher, creator) = (state.hasher.clone(), admin.user.id);
            admin
                .change(&state, move |conn, actor, organization| {
                    management_tokens::create(conn, actor, &hasher, organization, creator, new)
                })
                .await
        }
    };
    token_pages::answer(&admin.session, &area, values, result, |heading| context(&admin, heading))
}

/// The organization's token with the path's public id.
async fn token_of(admin: &OrgAdmin, req: &HttpRequest, state: &AppState) -> AppResult<ManagementToken> {
    let public_id = token_pages::token_id(req)?;
    let tenant = TokenTenant::Organization(admin.organization.id);
    state.db.run(move |conn| ManagementToken::find_in(conn, tenant, &public_id)?.ok_or(AppError::NotFound)).await
}

#[get("/admin/api-access/{public_id}/revoke")]
pub async fn revoke_form(admin: OrgAdmin, req: HttpRequest, state: web::Data<AppState>) -> AppResult<HttpResponse> {
    let token = token_of(&admin, &req, &state).await?;
    token_pages::revoke_form(&admin.session, context(&admin, &token_pages::revoke_heading(&token))?, &area(), &token)
}

#[post("/admin/api-access/{public_id}/revoke")]
pub async fn revoke(admin: OrgAdmin, req: HttpRequest, state: web::Data<AppState>) -> AppResult<HttpResponse> {
    let public_id = token_pages::token_id(&req)?;
    let revocation = admin
        .change(&state, move |conn, actor, organization| {
            management_tokens::revoke(conn, actor, TokenTenant::Organization(organization), &public_id)
        })
        .await?;
    Ok(token_pages::revoked(&admin.session, &state, &area(), &revocation))
}
