//! The Admin area of an organization.

pub mod api_access;
pub mod assets;
pub mod audit;
pub mod notifications;
pub mod policy;
pub mod roles;
pub mod users;
pub mod webhooks;

use actix_web::{HttpResponse, get, web};
use askama::Template;
use chrono::Duration;

use crate::{
    auth::AdminVisitor,
    db::models::{
        ApiKey, AuditEvent, User,
        api_key::{KeyCounts, UNUSED_DAYS},
        key_usage::{self, DailyRefusals},
    },
    domain::Capability,
    error::AppResult,
    routes::keys::view::{self, KeyRow},
    state::AppState,
    views::{PageContext, Section, render, time::Stamp},
};

/// One number of the overview, linking to the list that shows what it counts.
struct StatCard {
    /// Names the card for tests and styles (`data-stat`).
    id: &'static str,
    number: String,
    label: &'static str,
    href: &'static str,
    /// Worth a look (expiring, unused, disabled keys when there are any).
    attention: bool,
}

/// One line of the recent-activity list.
struct ActivityRow {
    at: Stamp,
    actor: crate::views::actors::ActorName,
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
    stats: Vec<StatCard>,
    /// The stalest active keys (for readers of the keys), and the list of them all.
    stale: Option<Vec<KeyRow>>,
    stale_href: &'static str,
    /// The keys verified most often in the last [`TREND_DAYS`] days (for readers of the keys).
    busiest: Option<Vec<BusyRow>>,
    /// Refused verifications by code, this week against the week before.
    refusals: Option<Vec<RefusalTrend>>,
    /// The stale-key policy's days, if it is on.
    deactivate_unused_after_days: Option<i32>,
    show_activity: bool,
    activity: Vec<ActivityRow>,
}

/// One of the busiest keys, as the overview lists it.
struct BusyRow {
    name: String,
    href: String,
    total: String,
    refused: String,
}

/// One refusal code's trend: its refusals in the last 7 days against the 7 before.
struct RefusalTrend {
    code: String,
    previous: i64,
    last: i64,
}

impl RefusalTrend {
    /// The change in words, for the table and screen readers alike.
    fn change(&self) -> String {
        match self.last.cmp(&self.previous) {
            std::cmp::Ordering::Greater => format!("up {}", grouped(self.last - self.previous)),
            std::cmp::Ordering::Less => format!("down {}", grouped(self.previous - self.last)),
            std::cmp::Ordering::Equal => "no change".to_string(),
        }
    }

    fn rising(&self) -> bool {
        self.last > self.previous
    }
}

/// The days the busiest keys and the refusal trend look back over (two weeks of 7 days).
const TREND_DAYS: i64 = 14;
/// How many of the busiest keys the overview lists.
const BUSIEST_SHOWN: i64 = 5;

/// Refusals per code, the last 7 days of `rows` against the 7 before (`today` included in the
/// last), most refused first.
fn refusal_trends(rows: &[DailyRefusals], today: chrono::NaiveDate) -> Vec<RefusalTrend> {
    let split = today - Duration::days(TREND_DAYS / 2 - 1);
    let mut trends: Vec<RefusalTrend> = Vec::new();
    for row in rows {
        let index = match trends.iter().position(|t| t.code == row.code) {
            Some(index) => index,
            None => {
                trends.push(RefusalTrend { code: row.code.clone(), previous: 0, last: 0 });
                trends.len() - 1
            }
        };
        if row.day >= split {
            trends[index].last += row.count;
        } else {
            trends[index].previous += row.count;
        }
    }
    trends.sort_by(|a, b| (b.last + b.previous).cmp(&(a.last + a.previous)).then(a.code.cmp(&b.code)));
    trends
}

/// The list of the active keys unused for [`UNUSED_DAYS`]: the "unused" card's and the stale
/// list's link.
const STALE_HREF: &str = "/admin/keys?state=active&unused=90";

/// How many of the stalest keys the overview lists.
const STALE_SHOWN: i64 = 5;

/// `12345` as "12,345".
fn grouped(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 { format!("-{out}") } else { out }
}

/// The overview's cards: key numbers for those who may see the keys, the count of users with
/// API key access for those who may see the users — each number the total of the list it
/// links to, which its reader may open.
fn stat_cards(keys: Option<KeyCounts>, users_with_access: Option<i64>) -> Vec<StatCard> {
    let mut cards = Vec::new();
    if let Some(k) = keys {
        cards.extend([
            StatCard {
                id: "active",
                number: grouped(k.active),
                label: "Active keys",
                href: "/admin/keys?state=active",
                attention: false,
            },
            StatCard {
                id: "expiring",
                number: grouped(k.expiring),
                label: "Expiring within 14 days",
                href: "/admin/keys?expiring=1",
                attention: k.expiring > 0,
            },
            StatCard {
                id: "unused",
                number: grouped(k.unused),
                label: "Active, unused for 90 days",
                href: STALE_HREF,
                attention: k.unused > 0,
            },
            StatCard {
                id: "disabled",
                number: grouped(k.disabled),
                label: "Disabled by their owner's access",
                href: "/admin/keys?state=disabled",
                attention: k.disabled > 0,
            },
            StatCard {
                id: "inactive",
                number: grouped(k.inactive),
                label: "Inactive keys",
                href: "/admin/keys?state=inactive",
                attention: false,
            },
            StatCard {
                id: "expired",
                number: grouped(k.expired),
                label: "Expired keys",
                href: "/admin/keys?state=expired",
                attention: false,
            },
        ]);
    }
    if let Some(n) = users_with_access {
        cards.push(StatCard {
            id: "users",
            number: grouped(n),
            label: "Users with API key access",
            href: "/admin/users?access=1",
            attention: false,
        });
    }
    cards
}

#[get("/admin")]
pub async fn overview(user: AdminVisitor, state: web::Data<AppState>) -> AppResult<HttpResponse> {
    let show_activity = user.can.allows(Capability::ReadAudit);
    let show_keys = user.can.allows(Capability::ManageKeys);
    let show_users = user.can.allows(Capability::ManageUsers);
    let organization_id = user.organization.id;
    let now = state.clock.now();
    let trend_from = (now - Duration::days(TREND_DAYS - 1)).date_naive();
    let (keys, stale, usage, users_with_access, events, names) = state
        .db
        .run(move |conn| {
            let keys = if show_keys { Some(ApiKey::counts(conn, organization_id, now)?) } else { None };
            let stale = if show_keys {
                let cutoff = now - Duration::days(UNUSED_DAYS);
                let stalest = ApiKey::stalest(conn, organization_id, cutoff, STALE_SHOWN)?;
                Some(view::rows(conn, &stalest, "/admin/keys", now)?)
            } else {
                None
            };
            let usage = if show_keys {
                Some((
                    key_usage::busiest(conn, organization_id, trend_from, BUSIEST_SHOWN)?,
                    key_usage::refusals_by_day(conn, organization_id, trend_from)?,
                ))
            } else {
                None
            };
            let users = if show_users { Some(User::count_with_key_access(conn, organization_id)?) } else { None };
            let events =
                if show_activity { AuditEvent::list_recent_for_org(conn, organization_id, 10)? } else { Vec::new() };
            let names = crate::views::actors::actor_names(conn, Some(organization_id), &events)?;
            Ok((keys, stale, usage, users, events, names))
        })
        .await?;
    let activity = events
        .iter()
        .map(|e| ActivityRow {
            at: Stamp::new(e.occurred_at),
            actor: names.of(e),
            action: e.action.clone(),
            target: audit::target_of(e),
            result: e.result.clone(),
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
        stats: stat_cards(keys, users_with_access),
        stale,
        stale_href: STALE_HREF,
        busiest: usage.as_ref().map(|(busiest, _)| {
            busiest
                .iter()
                .map(|key| BusyRow {
                    name: key.name.clone(),
                    href: format!("/admin/keys/{}", key.public_id),
                    total: grouped(key.total),
                    refused: grouped(key.refused),
                })
                .collect()
        }),
        refusals: usage.as_ref().map(|(_, refusals)| refusal_trends(refusals, now.date_naive())),
        deactivate_unused_after_days: org.deactivate_unused_after_days,
        show_activity,
        activity,
        ctx,
    })
}

#[cfg(test)]
mod tests {
    use super::grouped;

    #[test]
    fn numbers_are_grouped_by_thousands() {
        assert_eq!(grouped(0), "0");
        assert_eq!(grouped(999), "999");
        assert_eq!(grouped(1000), "1,000");
        assert_eq!(grouped(100_000), "100,000");
        assert_eq!(grouped(1_234_567), "1,234,567");
    }
}
