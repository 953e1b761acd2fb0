//! Staff → Service providers: list, create, rename, and a provider's page (its client
//! organizations and a way to its keys, which are managed by the shared key pages).

use actix_web::{HttpRequest, HttpResponse, get, post, web};
use askama::Template;
use serde::Deserialize;

use crate::{
    auth::CurrentStaff,
    db::models::{
        ApiKey, Organization, ServiceProvider,
        api_key::{KeyListFilter, KeyScope},
    },
    error::{AppError, AppResult},
    routes::{extract::HtmlForm, saved, staff::path_id},
    services::platform,
    state::AppState,
    views::{PageContext, Section, pager::MAX_COUNTED, redirect, render},
};

struct ProviderRow {
    id: i64,
    name: String,
    organizations: i64,
}

#[derive(Template)]
#[template(path = "staff/providers.html")]
struct ListPage {
    ctx: PageContext,
    rows: Vec<ProviderRow>,
}

#[get("/staff/providers")]
pub async fn list(staff: CurrentStaff, state: web::Data<AppState>) -> AppResult<HttpResponse> {
    let (providers, mut counts) =
        state.db.run(|conn| Ok((ServiceProvider::list_all(conn)?, Organization::counts_by_provider(conn)?))).await?;
    let rows = providers
        .into_iter()
        .map(|p| ProviderRow { organizations: counts.remove(&p.id).unwrap_or(0), id: p.id, name: p.name })
        .collect();
    let ctx = PageContext::for_staff(&staff, "Service providers", Section::StaffProviders)?;
    render(&ListPage { ctx, rows })
}

#[derive(Debug, Deserialize)]
pub struct SelectQuery {
    id: Option<i64>,
}

/// "Select service provider": the chosen provider's keys (a plain GET form, no JavaScript).
#[get("/staff/providers/select")]
pub async fn select(
    _staff: CurrentStaff,
    state: web::Data<AppState>,
    query: web::Query<SelectQuery>,
) -> AppResult<HttpResponse> {
    let id = query.id.filter(|id| *id > 0).ok_or(AppError::NotFound)?;
    let provider = state.db.run(move |conn| Ok(ServiceProvider::find(conn, id)?)).await?;
    Ok(redirect(&format!("/staff/providers/{}/keys", provider.id)))
}

#[derive(Debug, Default, Deserialize)]
pub struct NameForm {
    #[serde(default)]
    name: String,
}

#[derive(Template)]
#[template(path = "staff/provider_form.html")]
struct FormPage {
    ctx: PageContext,
    heading: String,
    action_url: String,
    cancel_href: String,
    name: String,
    error: Option<String>,
}

#[get("/staff/providers/new")]
pub async fn new_form(staff: CurrentStaff) -> AppResult<HttpResponse> {
    let ctx = PageContext::for_staff(&staff, "New service provider", Section::StaffProviders)?;
    render(&FormPage {
        ctx,
        heading: "New service provider".into(),
        action_url: "/staff/providers".into(),
        cancel_href: "/staff/providers".into(),
        name: String::new(),
        error: None,
    })
}

/// Creates (`id` None) or renames a provider, showing the form again on invalid input.
async fn save(
    staff: CurrentStaff,
    state: web::Data<AppState>,
    id: Option<i64>,
    name: String,
) -> AppResult<HttpResponse> {
    let actor = staff.actor();
    let submitted = name.clone();
    let result = state
        .db
        .transaction(move |conn| match id {
            None => platform::create_provider(conn, &actor, &submitted),
            Some(id) => platform::rename_provider(conn, &actor, id, &submitted),
        })
        .await;
    let (heading, action_url, cancel_href) = match id {
        None => ("New service provider".to_string(), "/staff/providers".to_string(), "/staff/providers".to_string()),
        Some(id) => (
            "Rename service provider".to_string(),
            format!("/staff/providers/{id}/rename"),
            format!("/staff/providers/{id}"),
        ),
    };
    saved::answer(
        &staff.session,
        result,
        |provider| {
            let verb = if id.is_some() { "Renamed to" } else { "Added" };
            (format!("{verb} {}.", provider.name), format!("/staff/providers/{}", provider.id))
        },
        |errors| {
            let (error, staff) = (errors.get("name").map(str::to_string), &staff);
            async move {
                let ctx = PageContext::for_staff(staff, &heading, Section::StaffProviders)?;
                Ok(FormPage { ctx, heading, action_url, cancel_href, name, error })
            }
        },
    )
    .await
}

#[post("/staff/providers")]
pub async fn create(
    staff: CurrentStaff,
    state: web::Data<AppState>,
    form: HtmlForm<NameForm>,
) -> AppResult<HttpResponse> {
    save(staff, state, None, form.into_inner().name).await
}

#[get("/staff/providers/{id}/rename")]
pub async fn rename_form(staff: CurrentStaff, req: HttpRequest, state: web::Data<AppState>) -> AppResult<HttpResponse> {
    let id = path_id(&req, "id")?;
    let provider = state.db.run(move |conn| Ok(ServiceProvider::find(conn, id)?)).await?;
    let ctx = PageContext::for_staff(&staff, "Rename service provider", Section::StaffProviders)?;
    render(&FormPage {
        ctx,
        heading: "Rename service provider".into(),
        action_url: format!("/staff/providers/{id}/rename"),
        cancel_href: format!("/staff/providers/{id}"),
        name: provider.name,
        error: None,
    })
}

#[post("/staff/providers/{id}/rename")]
pub async fn rename(
    staff: CurrentStaff,
    req: HttpRequest,
    state: web::Data<AppState>,
    form: HtmlForm<NameForm>,
) -> AppResult<HttpResponse> {
    let id = path_id(&req, "id")?;
    save(staff, state, Some(id), form.into_inner().name).await
}

#[derive(Template)]
#[template(path = "staff/provider.html")]
struct DetailPage {
    ctx: PageContext,
    provider: ServiceProvider,
    /// The first client organizations (by name), and how many there are.
    organizations: Vec<Organization>,
    organizations_total: i64,
    /// The number of its keys, counted up to `MAX_COUNTED` (`keys_more`: there are more).
    keys: i64,
    keys_more: bool,
}

#[get("/staff/providers/{id}")]
pub async fn detail(staff: CurrentStaff, req: HttpRequest, state: web::Data<AppState>) -> AppResult<HttpResponse> {
    let id = path_id(&req, "id")?;
    let (provider, (organizations, organizations_total), keys) = state
        .db
        .run(move |conn| {
            let provider = ServiceProvider::find(conn, id)?;
            let (organizations, organizations_total) = Organization::list_page(conn, Some(id), "", 0, 25)?;
            let filter = KeyListFilter { per_page: 1, ..KeyListFilter::default() };
            let (_, keys) = ApiKey::list(conn, KeyScope::ServiceProvider(id), &filter)?;
            Ok((provider, (organizations, organizations_total), keys))
        })
        .await?;
    let ctx = PageContext::for_staff(&staff, &provider.name, Section::StaffProviders)?;
    let (keys, keys_more) = (keys.min(MAX_COUNTED), keys > MAX_COUNTED);
    render(&DetailPage { ctx, provider, organizations, organizations_total, keys, keys_more })
}
