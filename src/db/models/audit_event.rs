//! Audit events: written through `services::audit`, read by the audit log pages.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use ipnetwork::IpNetwork;

use crate::db::schema::audit_events;

#[derive(Debug, Clone, Queryable, Selectable, Identifiable)]
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

impl AuditEvent {
    pub fn insert(conn: &mut PgConnection, event: &NewAuditEvent<'_>) -> QueryResult<()> {
        diesel::insert_into(audit_events::table).values(event).execute(conn).map(|_| ())
    }

    /// Failed logins for `email` since `since` (login throttling).
    pub fn count_login_failures_for_account(
        conn: &mut PgConnection,
        email: &str,
        since: DateTime<Utc>,
    ) -> QueryResult<i64> {
        audit_events::table
            .filter(audit_events::action.eq("login.failure"))
            .filter(audit_events::target_label.eq(email))
            .filter(audit_events::occurred_at.gt(since))
            .count()
            .get_result(conn)
    }

    /// Failed logins from `ip` since `since` (login throttling).
    pub fn count_login_failures_from_ip(
        conn: &mut PgConnection,
        ip: IpNetwork,
        since: DateTime<Utc>,
    ) -> QueryResult<i64> {
        audit_events::table
            .filter(audit_events::action.eq("login.failure"))
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
