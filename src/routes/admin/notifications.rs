//! Admin → Notifications: the mail outbox of the organization (every message the `mail`
//! channel wrote about its keys and people), newest first, paginated. Without SMTP this is
//! where the messages are read. Administrators only. Staff read theirs (about service
//! providers' keys) at Staff → Notifications, through [`outbox_page`] as well.

use actix_web::{HttpResponse, get, web};
use askama::Template;
use serde::Deserialize;

use crate::{
    auth::{OrgAdmin, csrf::SiteOrigin},
    db::models::outbox::{MailMessage, MailScope},
    error::AppResult,
    state::AppState,
    views::{
        PageContext, Section,
        pager::{Pager, page_index},
        render,
        time::Stamp,
    },
};

const PER_PAGE: i64 = 25;

#[derive(Debug, Default, Deserialize)]
pub struct OutboxQuery {
    pub page: Option<i64>,
}

/// One message as the page shows it.
pub struct MessageRow {
    pub id: i64,
    pub at: Stamp,
    pub to: String,
    pub subject: String,
    pub body: String,
    pub link: Option<String>,
    /// With SMTP configured: whether it was also sent by email (and if not, why).
    pub delivery: Option<String>,
}

#[derive(Template)]
#[template(path = "notifications/outbox.html")]
pub struct OutboxPage {
    pub ctx: PageContext,
    pub lede: &'static str,
    pub empty: &'static str,
    pub rows: Vec<MessageRow>,
    pub pager: Pager,
}

/// Loads one page of `scope`'s messages, with links built on the public URL.
pub async fn outbox_page(
    state: &AppState,
    site: &SiteOrigin,
    scope: MailScope,
    base: &str,
    page: Option<i64>,
) -> AppResult<(Vec<MessageRow>, Pager)> {
    let page = page_index(page, PER_PAGE);
    let (messages, total) = state
        .db
        .run(move |conn| {
            let messages = MailMessage::list(conn, scope, page * PER_PAGE, PER_PAGE)?;
            let total = MailMessage::count(conn, scope)?;
            Ok((messages, total))
        })
        .await?;
    let pager = Pager::new(base, &[], page, PER_PAGE, messages.len(), total);
    let smtp = state.mailer.is_some();
    let rows = messages
        .into_iter()
        .map(|m| MessageRow {
            delivery: smtp.then(|| delivery(&m)),
            id: m.id,
            at: Stamp::new(m.created_at),
            to: m.recipient_email,
            subject: m.subject,
            body: m.body,
            link: m.link_path.as_deref().map(|path| site.link(path)),
        })
        .collect();
    Ok((rows, pager))
}

#[get("/admin/notifications")]
pub async fn list(
    admin: OrgAdmin,
    state: web::Data<AppState>,
    site: web::Data<SiteOrigin>,
    query: web::Query<OutboxQuery>,
) -> AppResult<HttpResponse> {
    let scope = MailScope::Organization(admin.organization.id);
    let (rows, pager) = outbox_page(&state, &site, scope, "/admin/notifications", query.page).await?;
    render(&OutboxPage {
        ctx: PageContext::for_user(&admin, "Notifications", Section::AdminNotifications)?,
        lede: "The messages Keyward wrote about this organization's API keys and people: expiry reminders, \
               expired, created, deleted and deactivated keys, and lost API key access. Email (SMTP) is not \
               configured, so they are kept here to read.",
        empty: "No messages yet. When a key is created, deleted or deactivated, comes within its reminder days \
                of expiring (see Key policy) or expires, or someone loses API key access, the message to its \
                owner, its creator and the administrators appears here.",
        rows,
        pager,
    })
}

/// What became of a message over SMTP, in a sentence (the error is the relay's, never the
/// message).
fn delivery(message: &MailMessage) -> String {
    let day = |at: chrono::DateTime<chrono::Utc>| at.format("%Y-%m-%d %H:%M UTC").to_string();
    match (message.sent_at, message.next_send_at, message.send_error.as_deref()) {
        (Some(at), _, _) => format!("Sent by email {}.", day(at)),
        (None, Some(next), None) => format!("Not sent by email yet (due {}).", day(next)),
        (None, Some(next), Some(error)) => format!(
            "Not sent by email yet: {} attempt(s) failed ({error}); next try {}.",
            message.send_attempts,
            day(next)
        ),
        (None, None, Some(error)) => format!("Not sent by email: {error}"),
        (None, None, None) => "Not sent by email (written before email was set up).".to_string(),
    }
}
