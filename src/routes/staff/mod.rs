//! The staff console of the platform's support specialists.

use actix_web::{HttpResponse, get, web};
use askama::Template;

use crate::{
    auth::CurrentStaff,
    db::models::{Organization, ServiceProvider},
    error::AppResult,
    state::AppState,
    views::{PageContext, Section, render},
};

struct OrganizationRow {
    name: String,
    slug: String,
    provider: String,
}

#[derive(Template)]
#[template(path = "staff/overview.html")]
struct OverviewPage {
    ctx: PageContext,
    providers: Vec<String>,
    organizations: Vec<OrganizationRow>,
}

#[get("/staff")]
pub async fn overview(staff: CurrentStaff, state: web::Data<AppState>) -> AppResult<HttpResponse> {
    let (providers, organizations) =
        state.db.run(|conn| Ok((ServiceProvider::list_all(conn)?, Organization::list_all(conn)?))).await?;
    let provider_name = |id: Option<i64>| {
        id.and_then(|id| providers.iter().find(|p| p.id == id)).map(|p| p.name.clone()).unwrap_or_else(|| "—".into())
    };
    let organizations = organizations
        .iter()
        .map(|o| OrganizationRow {
            name: o.name.clone(),
            slug: o.slug.clone(),
            provider: provider_name(o.service_provider_id),
        })
        .collect();
    let ctx = PageContext::for_staff(&staff, "Staff console", Section::StaffHome)?;
    render(&OverviewPage { ctx, providers: providers.iter().map(|p| p.name.clone()).collect(), organizations })
}
