//! Audit events: written through `services::audit`, read by the audit log pages.

use crate::services::audit::AuditAction;
use crate::{
    db::{count::CountRows, search::SearchPatterns},
    views::pager::MAX_COUNTED,
};
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use ipnetwork::IpNetwork;

use crate::db::schema::audit_events;

/// What the sign-in throttle counts: wrong passwords and wrong second-factor codes alike, so
/// that knowing the password buys no extra guesses at the code.
const SIGN_IN_FAILURES: [AuditAction; 2] = [AuditAction::LoginFailure, AuditAction::SecondFactorFailure];

#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Identifiable)]
#[diesel(table_name = audit_events)]
pub struct AuditEvent {
    pub id: i64,
    pub occurred_at: DateTime<Utc>,
    pub organization_id: Option<i64>,
    pub service_provider_id: Option<i64>,
    pub actor_type: String,
    pub actor_id: Option<i64>,
    pub actor_label: String,
    pub action: String,
    pub target_type: Option<String>,
    pub target_id: Option<String>,
    pub target_label: Option<String>,
    pub result: String,
    pub client_ip: Option<IpNetwork>,
    pub details: serde_json::Value,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = audit_events)]
pub struct NewAuditEvent<'a> {
    pub organization_id: Option<i64>,
    pub service_provider_id: Option<i64>,
    pub actor_type: &'a str,
    pub actor_id: Option<i64>,
    pub actor_label: &'a str,
    pub action: &'a str,
    pub target_type: Option<&'a str>,
    pub target_id: Option<&'a str>,
    pub target_label: Option<&'a str>,
    pub result: &'a str,
    pub client_ip: Option<IpNetwork>,
    pub details: serde_json::Value,
}

/// Filters of the audit log page (all optional).
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// Part of the actor's label (email, key name).
    pub actor: Option<String>,
    /// An action (`key.create`) or a prefix ending in a dot (`key.`).
    pub action: Option<String>,
    /// Part of the target's label, or its exact id.
    pub target: Option<String>,
    pub result: Option<String>,
    pub from: Option<DateTime<Utc>>,
    /// Exclusive upper bound.
    pub until: Option<DateTime<Utc>>,
}

type BoxedEvents<'a> = audit_events::BoxedQuery<'a, diesel::pg::Pg>;

impl AuditEvent {
    fn filtered(organization_id: i64, filter: &AuditFilter) -> BoxedEvents<'static> {
        let mut query = audit_events::table.filter(audit_events::organization_id.eq(organization_id)).into_boxed();
        if let Some(actor) = &filter.actor {
            let SearchPatterns { first, second } = SearchPatterns::of(actor);
            query = match second {
                None => query.filter(audit_events::actor_label.ilike(first)),
                Some(second) => {
                    query.filter(audit_events::actor_label.ilike(first).or(audit_events::actor_label.ilike(second)))
                }
            };
        }
        if let Some(action) = &filter.action {
            query = if action.ends_with('.') {
                query.filter(audit_events::action.like(format!("{}%", action.replace('%', "").replace('_', "\\_"))))
            } else {
                query.filter(audit_events::action.eq(action.clone()))
            };
        }
        if let Some(target) = &filter.target {
            let SearchPatterns { first, second } = SearchPatterns::of(target);
            let exact = audit_events::target_id.eq(target.clone());
            query = match second {
                None => query.filter(audit_events::target_label.ilike(first).or(exact)),
                Some(second) => query.filter(
                    audit_events::target_label.ilike(first).or(audit_events::target_label.ilike(second)).or(exact),
                ),
            };
        }
        if let Some(result) = &filter.result {
            query = query.filter(audit_events::result.eq(result.clone()));
        }
        if let Some(from) = filter.from {
            query = query.filter(audit_events::occurred_at.ge(from));
        }
        if let Some(until) = filter.until {
            query = query.filter(audit_events::occurred_at.lt(until));
        }
        query
    }

    /// One page of an organization's events, newest first, and the number matching (up to
    /// `MAX_COUNTED + 1`).
    pub fn search(
        conn: &mut PgConnection,
        organization_id: i64,
        filter: &AuditFilter,
        page: i64,
        per_page: i64,
    ) -> QueryResult<(Vec<AuditEvent>, i64)> {
        let counted = Self::filtered(organization_id, filter).select(audit_events::id).limit(MAX_COUNTED + 1);
        let total = CountRows(counted).get_result(conn)?;
        let rows = Self::filtered(organization_id, filter)
            .order((audit_events::occurred_at.desc(), audit_events::id.desc()))
            .limit(per_page)
            .offset(page * per_page)
            .select(AuditEvent::as_select())
            .load(conn)?;
        Ok((rows, total))
    }

    /// Up to `limit` matching events older than the cursor `before` (`(occurred_at, id)` of
    /// the last event of the previous page), newest first (the management API's pages).
    pub fn page_before(
        conn: &mut PgConnection,
        organization_id: i64,
        filter: &AuditFilter,
        before: Option<(DateTime<Utc>, i64)>,
        limit: i64,
    ) -> QueryResult<Vec<AuditEvent>> {
        let mut query = Self::filtered(organization_id, filter);
        if let Some((at, id)) = before {
            query = query.filter(
                audit_events::occurred_at.lt(at).or(audit_events::occurred_at.eq(at).and(audit_events::id.lt(id))),
            );
        }
        query
            .order((audit_events::occurred_at.desc(), audit_events::id.desc()))
            .limit(limit.clamp(1, 200))
            .select(AuditEvent::as_select())
            .load(conn)
    }

    /// The newest `limit` matching events (CSV export).
    pub fn export(
        conn: &mut PgConnection,
        organization_id: i64,
        filter: &AuditFilter,
        limit: i64,
    ) -> QueryResult<Vec<AuditEvent>> {
        Self::filtered(organization_id, filter)
            .order((audit_events::occurred_at.desc(), audit_events::id.desc()))
            .limit(limit)
            .select(AuditEvent::as_select())
            .load(conn)
    }

    pub fn insert(conn: &mut PgConnection, event: &NewAuditEvent<'_>) -> QueryResult<()> {
        diesel::insert_into(audit_events::table).values(event).execute(conn).map(|_| ())
    }

    /// Failed sign-in steps (see [`SIGN_IN_FAILURES`]) on the account `email` since `since` (login throttling): from anywhere,
    /// and from `ip` (or, without one, from no address). Attempts refused by the throttle
    /// itself (`denied`) do not count: an address that keeps trying after its own limit must
    /// not push the account over its limit for everyone.
    pub fn count_login_failures_for_account(
        conn: &mut PgConnection,
        email: &str,
        ip: Option<IpNetwork>,
        since: DateTime<Utc>,
    ) -> QueryResult<(i64, i64)> {
        let failures = || {
            audit_events::table
                .filter(audit_events::action.eq_any(SIGN_IN_FAILURES.map(AuditAction::code)))
                .filter(audit_events::target_label.eq(email))
                .filter(audit_events::result.eq("failure"))
                .filter(audit_events::occurred_at.gt(since))
                .into_boxed()
        };
        let from_here = match ip {
            Some(ip) => failures().filter(audit_events::client_ip.eq(ip)),
            None => failures().filter(audit_events::client_ip.is_null()),
        };
        Ok((failures().count().get_result(conn)?, from_here.count().get_result(conn)?))
    }

    /// Failed logins from `ip` since `since` (login throttling).
    pub fn count_login_failures_from_ip(
        conn: &mut PgConnection,
        ip: IpNetwork,
        since: DateTime<Utc>,
    ) -> QueryResult<i64> {
        audit_events::table
            .filter(audit_events::action.eq_any(SIGN_IN_FAILURES.map(AuditAction::code)))
            .filter(audit_events::client_ip.eq(ip))
            .filter(audit_events::occurred_at.gt(since))
            .count()
            .get_result(conn)
    }

    /// The newest events about one target (a key's history), inside one organization or
    /// service provider.
    pub fn list_for_target(
        conn: &mut PgConnection,
        organization_id: Option<i64>,
        service_provider_id: Option<i64>,
        target_type: &str,
        target_id: &str,
        limit: i64,
    ) -> QueryResult<Vec<AuditEvent>> {
        let mut query = audit_events::table
            .filter(audit_events::target_type.eq(target_type.to_string()))
            .filter(audit_events::target_id.eq(target_id.to_string()))
            .into_boxed();
        query = match (organization_id, service_provider_id) {
            (Some(org), _) => query.filter(audit_events::organization_id.eq(org)),
            (None, Some(sp)) => query.filter(audit_events::service_provider_id.eq(sp)),
            (None, None) => return Ok(Vec::new()),
        };
        query
            .order((audit_events::occurred_at.desc(), audit_events::id.desc()))
            .limit(limit)
            .select(AuditEvent::as_select())
            .load(conn)
    }

    /// The newest events of an organization (landing pages; the audit page filters further).
    pub fn list_recent_for_org(
        conn: &mut PgConnection,
        organization_id: i64,
        limit: i64,
    ) -> QueryResult<Vec<AuditEvent>> {
        audit_events::table
            .filter(audit_events::organization_id.eq(organization_id))
            .order((audit_events::occurred_at.desc(), audit_events::id.desc()))
            .limit(limit)
            .select(AuditEvent::as_select())
            .load(conn)
    }
}
