//! `GET /api/v1/audit-events`: the organization's audit log (scope `audit:read`), with the
//! filters of the audit page and cursor pagination.

use actix_web::{HttpResponse, get, http::header, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{auth::Caller, cursor, problem::Problem};
use crate::{
    db::models::{AuditEvent, audit_event::AuditFilter},
    domain::{Capability, TokenScope},
    state::AppState,
};

/// An audit event as the management API shows it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EventView {
    pub id: i64,
    pub occurred_at: DateTime<Utc>,
    #[schema(value_type = Object)]
    pub actor: serde_json::Value,
    pub action: String,
    #[schema(value_type = Option<Object>)]
    pub target: Option<serde_json::Value>,
    pub result: String,
    pub client_ip: Option<String>,
    #[schema(value_type = Object)]
    pub details: serde_json::Value,
}

impl From<AuditEvent> for EventView {
    fn from(e: AuditEvent) -> Self {
        Self {
            id: e.id,
            occurred_at: e.occurred_at,
            actor: json!({ "type": e.actor_type, "id": e.actor_id, "label": e.actor_label }),
            action: e.action,
            target: e.target_type.map(|kind| json!({ "type": kind, "id": e.target_id, "label": e.target_label })),
            result: e.result,
            client_ip: e.client_ip.map(|ip| ip.ip().to_string()),
            details: e.details,
        }
    }
}

/// A page of events, newest first.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EventPage {
    pub data: Vec<EventView>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct EventsQuery {
    /// Part of the actor's label.
    actor: Option<String>,
    /// An action (`key.create`) or a family (`key.`).
    action: Option<String>,
    /// Part of the target's label, or its id.
    target: Option<String>,
    /// `success`, `denied` or `failure`.
    result: Option<String>,
    from: Option<DateTime<Utc>>,
    until: Option<DateTime<Utc>>,
    limit: Option<i64>,
    cursor: Option<String>,
}

#[utoipa::path(
    get,
    path = "/audit-events",
    tag = "audit",
    summary = "Read the audit log (filters, cursor pagination)",
    params(EventsQuery),
    responses((status = 200, description = "A page of events, newest first", body = EventPage), (status = 422, description = "Invalid fields", body = Problem, content_type = "application/problem+json")),
    security(("managementToken" = []))
)]
#[get("/audit-events")]
pub async fn list_events(
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<EventsQuery>,
) -> Result<HttpResponse, Problem> {
    caller.require(TokenScope::AuditRead, Capability::ReadAudit)?;
    let query = query.into_inner();
    if query.result.as_deref().is_some_and(|r| !matches!(r, "success" | "denied" | "failure")) {
        return Err(Problem::invalid_field("result", "Use success, denied or failure."));
    }
    let clean = |s: Option<String>| s.map(|s| s.trim().to_string()).filter(|s| !s.is_empty());
    let filter = AuditFilter {
        actor: clean(query.actor),
        action: clean(query.action),
        target: clean(query.target),
        result: query.result,
        from: query.from,
        until: query.until,
    };
    let before = query.cursor.as_deref().map(cursor::decode).transpose()?;
    let limit = query.limit.unwrap_or(50).clamp(1, 200);
    let organization_id = caller.organization_id()?;
    let events =
        state.db.run(move |conn| Ok(AuditEvent::page_before(conn, organization_id, &filter, before, limit)?)).await?;
    let next =
        (events.len() as i64 == limit).then(|| events.last().map(|e| cursor::encode(e.occurred_at, e.id))).flatten();
    let data: Vec<EventView> = events.into_iter().map(EventView::from).collect();
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(json!({ "data": data, "next_cursor": next })))
}
