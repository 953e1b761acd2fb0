//! The Admin area of an organization.

pub mod assets;
pub mod audit;
pub mod policy;
pub mod roles;
pub mod users;

use actix_web::{HttpResponse, get, web};
use askama::Template;

use crate::{
    auth::AdminVisitor,
    db::models::AuditEvent,
    domain::Capability,
    error::AppResult,
    state::AppState,
    views::{PageContext, Section, render, time::Stamp},
};

/// One line of the recent-activity list.
struct ActivityRow {
    at: Stamp,
    actor: String,
    action: String,
    target: String,
    result: String,
}

#[derive(Template)]
#[template(path = "admin/overview.html")]
struct OverviewPage {
    ctx: PageContext,
    organization: String,
    slug: String,
    default_lifetime_days: i32,
    max_lifetime_days: Option<i32>,
    allow_never: bool,
    default_grace_minutes: i32,
    show_activity: bool,
    activity: Vec<ActivityRow>,
}

#[get("/admin")]
pub async fn overview(user: AdminVisitor, state: web::Data<AppState>) -> AppResult<HttpResponse> {
    let show_activity = user.can.allows(Capability::ReadAudit);
    let organization_id = user.organization.id;
    let events = if show_activity {
        state.db.run(move |conn| Ok(AuditEvent::list_recent_for_org(conn, organization_id, 10)?)).await?
    } else {
        Vec::new()
    };
    let activity = events
        .into_iter()
        .map(|e| ActivityRow {
            at: Stamp::new(e.occurred_at),
            actor: if e.actor_label.is_empty() { e.actor_type } else { e.actor_label },
            action: e.action,
            target: e.target_label.unwrap_or_default(),
            result: e.result,
        })
        .collect();
    let org = &user.organization;
    let ctx = PageContext::for_user(&user, "Admin", Section::AdminHome)?;
    render(&OverviewPage {
        organization: org.name.clone(),
        slug: org.slug.clone(),
        default_lifetime_days: org.key_default_lifetime_days,
        max_lifetime_days: org.key_max_lifetime_days,
        allow_never: org.key_allow_never_expires,
        default_grace_minutes: org.key_default_grace_minutes,
        show_activity,
        activity,
        ctx,
    })
}
