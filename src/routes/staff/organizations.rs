//! Staff → Organizations: a client's users and key metadata, read-only, for support work.
//! Staff may deactivate a client key in an incident (with a reason, audited). Creating or
//! re-keying a client's keys is refused here explicitly (and audited), as everywhere else.

use crate::services::audit::AuditAction;
use actix_web::{HttpRequest, HttpResponse, get, http::StatusCode, post, web};
use askama::Template;
use serde::Deserialize;

use crate::{
    auth::{
        CurrentStaff,
        session::{self, FlashLevel},
    },
    db::models::{
        ApiKey, Organization, Role, ServiceProvider, User,
        api_key::{KeyListFilter, KeyScope},
        user::UserSort,
    },
    domain::text::clean_line,
    error::{AppError, AppResult},
    keys::format::is_public_id,
    routes::{
        extract::HtmlForm,
        keys::view::{self, KeyRow},
        staff::path_id,
    },
    services::keys::{
        KeyOp,
        lifecycle::{self, KeyRef},
    },
    state::AppState,
    views::{
        PageContext, Section,
        pager::{Pager, page_index},
        redirect, render, render_with_status,
        time::Stamp,
    },
};

const PER_PAGE: i64 = 25;

#[derive(Template)]
#[template(path = "staff/organizations.html")]
struct ListPage {
    ctx: PageContext,
    rows: Vec<super::OrganizationRow>,
    q: String,
    /// The provider whose clients are listed, if the list is narrowed to one.
    provider: Option<ServiceProvider>,
    pager: Pager,
}

#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    #[serde(default)]
    q: String,
    provider: Option<i64>,
    page: Option<i64>,
}

#[get("/staff/organizations")]
pub async fn list(
    staff: CurrentStaff,
    state: web::Data<AppState>,
    query: web::Query<ListQuery>,
) -> AppResult<HttpResponse> {
    let ListQuery { q, provider, page } = query.into_inner();
    let q = crate::db::search::term(&q);
    let page = page_index(page, PER_PAGE);
    let search = q.clone();
    let (providers, (organizations, total)) = state
        .db
        .run(move |conn| {
            Ok((ServiceProvider::list_all(conn)?, Organization::list_page(conn, provider, &search, page, PER_PAGE)?))
        })
        .await?;
    let provider = provider.and_then(|id| providers.iter().find(|p| p.id == id).cloned());
    let provider_param = provider.as_ref().map(|p| p.id.to_string()).unwrap_or_default();
    let pager = Pager::new(
        "/staff/organizations",
        &[("q", q.as_str()), ("provider", provider_param.as_str())],
        page,
        PER_PAGE,
        organizations.len(),
        total,
    );
    let rows = super::organization_rows(&providers, organizations);
    let ctx = PageContext::for_staff(&staff, "Organizations", Section::StaffOrganizations)?;
    render(&ListPage { ctx, rows, q, provider, pager })
}

struct UserRow {
    display_name: String,
    email: String,
    is_admin: bool,
    active: bool,
    api_key_access: bool,
    roles: Vec<String>,
    last_login: Option<Stamp>,
}

#[derive(Template)]
#[template(path = "staff/organization.html")]
struct DetailPage {
    ctx: PageContext,
    organization: Organization,
    users: Vec<UserRow>,
    users_total: i64,
    /// More users than shown here: the users page has them all.
    users_more: bool,
    /// More users than lists count (`users_total` is a lower bound).
    users_capped: bool,
    keys: Vec<KeyRow>,
    pager: Pager,
}

#[derive(Template)]
#[template(path = "staff/organization_users.html")]
struct UsersPage {
    ctx: PageContext,
    organization: Organization,
    users: Vec<UserRow>,
    q: String,
    pager: Pager,
}

#[derive(Debug, Default, Deserialize)]
pub struct PageQuery {
    page: Option<i64>,
    #[serde(default)]
    q: String,
}

/// Users shown on the organization's page itself (the users page has the rest).
const USERS_ON_DETAIL: i64 = 10;

/// One page of an organization's users with their roles, for the staff views.
fn user_rows(
    conn: &mut diesel::PgConnection,
    organization_id: i64,
    search: &str,
    page: i64,
    per_page: i64,
) -> AppResult<(Vec<UserRow>, i64)> {
    let (users, total) = User::list_for_admin(conn, organization_id, search, UserSort::Name, page, per_page)?;
    let mut roles = Role::names_by_user(conn, &users.iter().map(|u| u.id).collect::<Vec<_>>())?;
    let rows = users
        .into_iter()
        .map(|u| UserRow {
            roles: roles.remove(&u.id).unwrap_or_default(),
            last_login: Stamp::maybe(u.last_login_at),
            display_name: u.display_name,
            email: u.email,
            is_admin: u.is_admin,
            active: u.active,
            api_key_access: u.api_key_access || u.is_admin,
        })
        .collect();
    Ok((rows, total))
}

#[get("/staff/organizations/{id}")]
pub async fn detail(
    staff: CurrentStaff,
    req: HttpRequest,
    state: web::Data<AppState>,
    query: web::Query<PageQuery>,
) -> AppResult<HttpResponse> {
    let id = path_id(&req, "id")?;
    let page = page_index(query.page, PER_PAGE);
    let base = format!("/staff/organizations/{id}/keys");
    let row_base = base.clone();
    let now = state.clock.now();
    let (organization, (users, users_total), keys, keys_total) = state
        .db
        .run(move |conn| {
            let organization = Organization::find(conn, id)?;
            let users = user_rows(conn, id, "", 0, USERS_ON_DETAIL)?;
            let filter = KeyListFilter { page, per_page: PER_PAGE, ..KeyListFilter::default() };
            let (keys, keys_total) = ApiKey::list(conn, KeyScope::Organization(id), &filter)?;
            let keys = view::rows(conn, &keys, &row_base, now)?;
            Ok((organization, users, keys, keys_total))
        })
        .await?;
    let users_more = users_total > users.len() as i64;
    let users_capped = users_total > crate::views::pager::MAX_COUNTED;
    let users_total = users_total.min(crate::views::pager::MAX_COUNTED);
    let pager = Pager::new(&format!("/staff/organizations/{id}"), &[], page, PER_PAGE, keys.len(), keys_total);
    let ctx = PageContext::for_staff(&staff, &organization.name, Section::StaffOrganizations)?;
    render(&DetailPage { ctx, organization, users, users_total, users_more, users_capped, keys, pager })
}

/// Every user of a client organization (read-only), searchable and paged.
#[get("/staff/organizations/{id}/users")]
pub async fn user_list(
    staff: CurrentStaff,
    req: HttpRequest,
    state: web::Data<AppState>,
    query: web::Query<PageQuery>,
) -> AppResult<HttpResponse> {
    let id = path_id(&req, "id")?;
    let page = page_index(query.page, PER_PAGE);
    let q = crate::db::search::term(&query.q);
    let search = q.clone();
    let (organization, (users, total)) = state
        .db
        .run(move |conn| Ok((Organization::find(conn, id)?, user_rows(conn, id, &search, page, PER_PAGE)?)))
        .await?;
    let base = format!("/staff/organizations/{id}/users");
    let pager = Pager::new(&base, &[("q", q.as_str())], page, PER_PAGE, users.len(), total);
    let ctx = PageContext::for_staff(&staff, format!("Users of {}", organization.name), Section::StaffOrganizations)?;
    render(&UsersPage { ctx, organization, users, q, pager })
}

fn key_path(req: &HttpRequest) -> AppResult<(i64, String)> {
    let id = path_id(req, "id")?;
    let public_id = req.match_info().get("public_id").unwrap_or_default();
    if is_public_id(public_id) { Ok((id, public_id.to_string())) } else { Err(AppError::NotFound) }
}

/// Loads client key `public_id` of organization `organization_id` for staff (metadata only).
async fn client_key(
    state: &AppState,
    staff: &CurrentStaff,
    organization_id: i64,
    public_id: String,
) -> AppResult<ApiKey> {
    let actor = staff.actor();
    state
        .db
        .run(move |conn| {
            let at = KeyRef { scope: KeyScope::Organization(organization_id), public_id: &public_id };
            lifecycle::visible(conn, &actor, at, KeyOp::View)
        })
        .await
}

/// The incident dialog: the reason is required (it is the audit trail of an action taken
/// on a client's behalf).
#[derive(Template)]
#[template(path = "staff/incident.html")]
struct IncidentPage {
    ctx: PageContext,
    heading: String,
    masked: String,
    action_url: String,
    cancel_href: String,
    reason: String,
    error: Option<String>,
}

impl IncidentPage {
    fn new(staff: &CurrentStaff, id: i64, key: &ApiKey, reason: String, error: Option<String>) -> AppResult<Self> {
        let heading = format!("Deactivate the client's key \"{}\"?", key.name);
        let cancel_href = format!("/staff/organizations/{id}");
        Ok(Self {
            ctx: PageContext::for_staff(staff, &heading, Section::StaffOrganizations)?,
            heading,
            masked: key.masked(),
            action_url: format!("{cancel_href}/keys/{}/deactivate", key.public_id),
            cancel_href,
            reason,
            error,
        })
    }
}

#[get("/staff/organizations/{id}/keys/{public_id}/deactivate")]
pub async fn deactivate_form(
    staff: CurrentStaff,
    req: HttpRequest,
    state: web::Data<AppState>,
) -> AppResult<HttpResponse> {
    let (id, public_id) = key_path(&req)?;
    let key = client_key(&state, &staff, id, public_id).await?;
    render(&IncidentPage::new(&staff, id, &key, String::new(), None)?)
}

#[derive(Debug, Default, Deserialize)]
pub struct ReasonForm {
    #[serde(default)]
    reason: String,
}

/// The incident reason, or what is wrong with it and what to show again in the field (never
/// a secret that was pasted into it).
fn incident_reason(input: &str) -> Result<String, (String, String)> {
    if crate::keys::format::looks_like_secret(input) {
        return Err(("A reason must not contain a key or any other secret.".into(), String::new()));
    }
    clean_line(input, 1, 500, "reason").map_err(|_| {
        ("Give a reason for deactivating a client's key (up to 500 characters).".into(), input.to_string())
    })
}

#[post("/staff/organizations/{id}/keys/{public_id}/deactivate")]
pub async fn deactivate(
    staff: CurrentStaff,
    req: HttpRequest,
    state: web::Data<AppState>,
    form: HtmlForm<ReasonForm>,
) -> AppResult<HttpResponse> {
    let (id, public_id) = key_path(&req)?;
    let reason = match incident_reason(&form.0.reason) {
        Ok(reason) => reason,
        Err((message, kept)) => {
            let key = client_key(&state, &staff, id, public_id).await?;
            let page = IncidentPage::new(&staff, id, &key, kept, Some(message))?;
            return render_with_status(&page, StatusCode::UNPROCESSABLE_ENTITY);
        }
    };
    let actor = staff.actor();
    let key = state
        .db
        .transaction(move |conn| {
            let at = KeyRef { scope: KeyScope::Organization(id), public_id: &public_id };
            lifecycle::set_active(conn, &actor, at, false, Some(&reason))
        })
        .await?;
    state.verifier.cache.invalidate(&format!("key:{}", key.public_id));
    session::flash(&staff.session, FlashLevel::Success, format!("Deactivated the client's key \"{}\".", key.name));
    Ok(redirect(&format!("/staff/organizations/{id}")))
}

/// Staff never create or re-key a client's keys: such requests are refused and recorded.
async fn refuse(
    staff: CurrentStaff,
    state: web::Data<AppState>,
    req: HttpRequest,
    action: AuditAction,
) -> AppResult<HttpResponse> {
    let id = path_id(&req, "id")?;
    let public_id = req.match_info().get("public_id").map(str::to_string);
    let actor = staff.actor();
    state
        .db
        .transaction(move |conn| {
            let organization = Organization::find(conn, id)?;
            crate::services::audit::record(
                conn,
                &actor,
                crate::services::audit::Entry::new(action)
                    .organization(Some(organization.id))
                    .target(crate::services::audit::Target::new("api_key", public_id.unwrap_or_default(), ""))
                    .outcome(crate::services::audit::Outcome::Denied)
                    .details(serde_json::json!({ "reason": "support staff never create or re-key a client's keys" })),
            )?;
            Ok(())
        })
        .await?;
    Err(AppError::Forbidden)
}

#[post("/staff/organizations/{id}/keys")]
pub async fn refuse_create(
    staff: CurrentStaff,
    state: web::Data<AppState>,
    req: HttpRequest,
) -> AppResult<HttpResponse> {
    refuse(staff, state, req, AuditAction::KeyCreate).await
}

#[post("/staff/organizations/{id}/keys/{public_id}/rekey")]
pub async fn refuse_rekey(
    staff: CurrentStaff,
    state: web::Data<AppState>,
    req: HttpRequest,
) -> AppResult<HttpResponse> {
    refuse(staff, state, req, AuditAction::KeyRekey).await
}
