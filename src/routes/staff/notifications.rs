//! Staff → Notifications: the messages written to staff (about service providers' keys),
//! newest first, paginated; the staff side of Admin → Notifications.

use actix_web::{HttpResponse, get, web};

use crate::{
    auth::{CurrentStaff, csrf::SiteOrigin},
    db::models::outbox::MailScope,
    error::AppResult,
    routes::admin::notifications::{OutboxPage, OutboxQuery, outbox_page},
    state::AppState,
    views::{PageContext, Section, render},
};

#[get("/staff/notifications")]
pub async fn list(
    staff: CurrentStaff,
    state: web::Data<AppState>,
    site: web::Data<SiteOrigin>,
    query: web::Query<OutboxQuery>,
) -> AppResult<HttpResponse> {
    let (rows, pager) = outbox_page(&state, &site, MailScope::Staff, "/staff/notifications", query.page).await?;
    render(&OutboxPage {
        ctx: PageContext::for_staff(&staff, "Notifications", Section::StaffNotifications)?,
        lede: "The messages Keyward wrote to staff about service providers' API keys. Email (SMTP) is not \
               configured, so they are kept here to read.",
        empty: "No messages yet. When a service provider's key is created, deleted or deactivated, comes within \
                14, 7 or 1 days of expiring, or expires, the message to staff appears here.",
        rows,
        pager,
    })
}
