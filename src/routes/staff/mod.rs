//! The staff console of the platform's support specialists: service providers and their
//! keys, client organizations (read-only, incident deactivation of keys), the API action
//! catalog, and staff accounts.

pub mod accounts;
pub mod actions;
pub mod notifications;
pub mod organizations;
pub mod provider_tokens;
pub mod providers;

use actix_web::{HttpResponse, get, web};
use askama::Template;

use crate::{
    auth::CurrentStaff,
    db::models::{Organization, ServiceProvider},
    error::AppResult,
    state::AppState,
    views::{PageContext, Section, render},
};

pub use crate::routes::extract::path_id;

struct OrganizationRow {
    id: i64,
    name: String,
    slug: String,
    provider: String,
}

#[derive(Template)]
#[template(path = "staff/overview.html")]
struct OverviewPage {
    ctx: PageContext,
    providers: Vec<ServiceProvider>,
    organizations: Vec<OrganizationRow>,
    organizations_total: i64,
}

/// Organizations on the console's front page (the Organizations page has them all).
const OVERVIEW_ORGANIZATIONS: i64 = 10;

/// Client organizations with their provider's name (shared by the overview and the list).
fn organization_rows(providers: &[ServiceProvider], organizations: Vec<Organization>) -> Vec<OrganizationRow> {
    organizations
        .into_iter()
        .map(|o| OrganizationRow {
            provider: o
                .service_provider_id
                .and_then(|id| providers.iter().find(|p| p.id == id))
                .map(|p| p.name.clone())
                .unwrap_or_else(|| "—".into()),
            id: o.id,
            name: o.name,
            slug: o.slug,
        })
        .collect()
}

#[get("/staff")]
pub async fn overview(staff: CurrentStaff, state: web::Data<AppState>) -> AppResult<HttpResponse> {
    let (providers, (organizations, organizations_total)) = state
        .db
        .run(|conn| {
            Ok((ServiceProvider::list_all(conn)?, Organization::list_page(conn, None, "", 0, OVERVIEW_ORGANIZATIONS)?))
        })
        .await?;
    let organizations = organization_rows(&providers, organizations);
    let ctx = PageContext::for_staff(&staff, "Staff console", Section::StaffHome)?;
    render(&OverviewPage { ctx, providers, organizations, organizations_total })
}
