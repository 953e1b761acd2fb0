//! The `weekly-digest` job: one message a week to each administrator who turned the digest
//! on (Account page), listing their organization's keys that expire in the next 30 days,
//! the stale ones (unused for the organization's stale-key days, else [`UNUSED_DAYS`]), and
//! the ones reported as leaked in the last week, each with a link to its page.
//!
//! The job runs hourly; each administrator gets the digest of a week (named by its Monday)
//! from the first run of that week, once: a unique index on the recipient and the week makes
//! a second run or instance write nothing more. The message goes into the mail outbox like
//! any other (and over SMTP when configured); it stores its sections so that the mail can
//! draw them with absolute links and as HTML.

use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc};
use diesel::{PgConnection, prelude::*};
use serde::{Deserialize, Serialize};

use crate::{
    db::{
        models::{
            ApiKey,
            api_key::UNUSED_DAYS,
            outbox::{MailMessage, NewMailMessage},
        },
        schema::{api_keys, mail_messages, organizations, users},
    },
    error::AppError,
    services::keys::lifecycle::LEAKED,
};

/// The most keys a section lists (the key list has the rest).
const SECTION_LIMIT: i64 = 50;

/// How far ahead the digest looks for expiring keys, and back for leaks.
fn expiring_window() -> Duration {
    Duration::days(30)
}
fn leaked_window() -> Duration {
    Duration::days(7)
}

/// One part of a digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Section {
    pub title: String,
    /// What the section says when it lists nothing.
    pub empty: String,
    pub items: Vec<Item>,
    /// More keys than listed.
    #[serde(default)]
    pub more: bool,
}

/// A key in a section.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Item {
    pub label: String,
    /// Its page, as a path.
    pub path: String,
}

/// The Monday of `now`'s week (UTC).
pub fn week_of(now: DateTime<Utc>) -> NaiveDate {
    let today = now.date_naive();
    today - Duration::days(i64::from(today.weekday().num_days_from_monday()))
}

/// The sections as plain text, links built on `base` (empty: paths).
pub fn text(sections: &[Section], base: &str) -> String {
    let mut out = String::new();
    for section in sections {
        if !out.is_empty() {
            out.push_str("\n\n");
        }
        out.push_str(&section.title);
        if section.items.is_empty() {
            out.push_str(&format!("\n  {}", section.empty));
        }
        for item in &section.items {
            out.push_str(&format!("\n  - {}: {base}{}", item.label, item.path));
        }
        if section.more {
            out.push_str(&format!("\n  - and more: {base}/admin/keys"));
        }
    }
    out
}

fn key_item(key: &ApiKey, detail: String) -> Item {
    Item {
        label: format!("\u{201c}{}\u{201d} ({}), {detail}", key.name, key.public_id),
        path: format!("/admin/keys/{}", key.public_id),
    }
}

fn section(title: &str, empty: &str, mut keys: Vec<ApiKey>, detail: impl Fn(&ApiKey) -> String) -> Section {
    let more = keys.len() > usize::try_from(SECTION_LIMIT).unwrap_or(usize::MAX);
    keys.truncate(usize::try_from(SECTION_LIMIT).unwrap_or(usize::MAX));
    Section {
        title: title.to_string(),
        empty: empty.to_string(),
        items: keys.iter().map(|k| key_item(k, detail(k))).collect(),
        more,
    }
}

/// The digest's sections for an organization at `now`.
pub fn sections(conn: &mut PgConnection, organization_id: i64, now: DateTime<Utc>) -> QueryResult<Vec<Section>> {
    let day = |at: DateTime<Utc>| at.format("%Y-%m-%d").to_string();
    let expiring: Vec<ApiKey> = api_keys::table
        .filter(api_keys::organization_id.eq(organization_id))
        .filter(api_keys::active.eq(true))
        .filter(api_keys::expires_at.gt(now))
        .filter(api_keys::expires_at.le(now + expiring_window()))
        .order((api_keys::expires_at.asc(), api_keys::id.asc()))
        .limit(SECTION_LIMIT + 1)
        .select(ApiKey::as_select())
        .load(conn)?;
    let stale_days: Option<i32> =
        organizations::table.find(organization_id).select(organizations::deactivate_unused_after_days).first(conn)?;
    let stale_days = stale_days.map_or(UNUSED_DAYS, i64::from);
    let stale = ApiKey::stalest(conn, organization_id, now - Duration::days(stale_days), SECTION_LIMIT + 1)?;
    let leaked: Vec<ApiKey> = api_keys::table
        .filter(api_keys::organization_id.eq(organization_id))
        .filter(api_keys::active.eq(false))
        .filter(api_keys::deactivation_reason.eq(LEAKED))
        .filter(api_keys::deactivated_at.gt(now - leaked_window()))
        .order((api_keys::deactivated_at.desc(), api_keys::id.asc()))
        .limit(SECTION_LIMIT + 1)
        .select(ApiKey::as_select())
        .load(conn)?;
    Ok(vec![
        section("Keys expiring in the next 30 days", "No key expires in the next 30 days.", expiring, |k| {
            k.expires_at.map_or(String::new(), |at| format!("expires {}", day(at)))
        }),
        section(
            &format!("Stale keys (active, unused for {stale_days} days or more)"),
            "No active key has gone unused that long.",
            stale,
            |k| match k.last_used_at {
                Some(at) => format!("last used {}", day(at)),
                None => format!("never used since its creation {}", day(k.created_at)),
            },
        ),
        section("Keys reported as leaked in the last 7 days", "No key was reported as leaked.", leaked, |k| {
            k.deactivated_at.map_or(String::new(), |at| format!("deactivated {}", day(at)))
        }),
    ])
}

/// Writes this week's digest for every opted-in active administrator who has none yet;
/// idempotent. One line for the job's log.
pub fn run(conn: &mut PgConnection, now: DateTime<Utc>) -> Result<String, AppError> {
    let week = week_of(now);
    let admins: Vec<(i64, i64, String)> = users::table
        .filter(users::active.eq(true))
        .filter(users::is_admin.eq(true))
        .filter(users::receive_digest.eq(true))
        .filter(diesel::dsl::not(diesel::dsl::exists(
            mail_messages::table
                .filter(mail_messages::recipient_user_id.eq(users::id.nullable()))
                .filter(mail_messages::digest_week.eq(week)),
        )))
        .order(users::id.asc())
        .select((users::id, users::organization_id, users::email))
        .load(conn)?;
    let mut written = 0;
    let mut by_organization: Vec<(i64, Vec<Section>)> = Vec::new();
    for (user_id, organization_id, email) in admins {
        let sections = match by_organization.iter().find(|(id, _)| *id == organization_id) {
            Some((_, sections)) => sections.clone(),
            None => {
                let sections = sections(conn, organization_id, now)?;
                by_organization.push((organization_id, sections.clone()));
                sections
            }
        };
        let subject = format!("Keyward weekly digest: week of {}", week.format("%Y-%m-%d"));
        let intro = "Your organization's API keys this week.";
        // The outbox shows the text with paths; a mail draws the sections with full links.
        let body = format!("{intro}\n\n{}", text(&sections, ""));
        let digest = serde_json::to_value(&sections).map_err(|e| AppError::Internal(e.to_string()))?;
        let message = NewMailMessage {
            event_id: None,
            organization_id: Some(organization_id),
            service_provider_id: None,
            recipient_user_id: Some(user_id),
            recipient_staff_id: None,
            recipient_email: &email,
            subject: &subject,
            body: &body,
            link_path: Some("/admin/keys"),
            created_at: now,
            next_send_at: Some(now),
            digest_week: Some(week),
            digest: Some(&digest),
        };
        if MailMessage::insert(conn, &message)? {
            written += 1;
        }
    }
    Ok(format!("{written} weekly digest(s) for the week of {week}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_week_is_named_by_its_monday() {
        let at = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
        let monday = NaiveDate::from_ymd_opt(2026, 11, 30).unwrap();
        assert_eq!(week_of(at("2026-11-30T00:00:00Z")), monday);
        assert_eq!(week_of(at("2026-12-03T19:00:00Z")), monday);
        assert_eq!(week_of(at("2026-12-06T23:59:59Z")), monday);
        assert_eq!(week_of(at("2026-12-07T00:00:00Z")), monday + Duration::days(7));
    }

    #[test]
    fn empty_sections_say_so_and_items_carry_links() {
        let sections = vec![
            Section { title: "A".into(), empty: "Nothing in A.".into(), items: vec![], more: false },
            Section {
                title: "B".into(),
                empty: "Nothing in B.".into(),
                items: vec![Item { label: "key".into(), path: "/admin/keys/x".into() }],
                more: false,
            },
        ];
        assert_eq!(
            text(&sections, "https://k.example"),
            "A\n  Nothing in A.\n\nB\n  - key: https://k.example/admin/keys/x"
        );
    }
}
