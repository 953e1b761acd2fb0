//! Admin → Audit log: the organization's events, filtered and paginated, and the same as a
//! CSV download. For administrators and `audit.read` holders.

use crate::services::audit::AuditAction;
use actix_web::{HttpResponse, get, http::header, web};
use askama::Template;
use chrono::{NaiveDate, Utc};
use serde::Deserialize;

use crate::{
    auth::AuditReader,
    db::models::{AuditEvent, audit_event::AuditFilter},
    error::{AppError, AppResult},
    state::AppState,
    views::{
        PageContext, Section,
        pager::{Pager, page_index},
        render,
        time::Stamp,
    },
};

const PER_PAGE: i64 = 50;
/// The CSV export holds at most this many events (the newest).
pub const EXPORT_LIMIT: i64 = 100_000;

#[derive(Debug, Default, Deserialize)]
pub struct AuditQuery {
    actor: Option<String>,
    action: Option<String>,
    target: Option<String>,
    result: Option<String>,
    from: Option<String>,
    to: Option<String>,
    page: Option<i64>,
}

fn clean(value: &Option<String>) -> Option<String> {
    value.as_deref().map(|v| v.trim().chars().take(200).collect::<String>()).filter(|v| !v.is_empty())
}

fn date(value: &Option<String>, field: &str) -> AppResult<Option<NaiveDate>> {
    match clean(value) {
        None => Ok(None),
        // Four-digit years only: the database's timestamps end long before chrono's do.
        Some(text) => NaiveDate::parse_from_str(&text, "%Y-%m-%d")
            .ok()
            .filter(|d| (1..=9999).contains(&chrono::Datelike::year(d)))
            .map(Some)
            .ok_or_else(|| AppError::BadRequest(format!("The {field} date must look like 2026-01-31."))),
    }
}

impl AuditQuery {
    fn filter(&self) -> AppResult<AuditFilter> {
        let result = clean(&self.result);
        if result.as_deref().is_some_and(|r| !["success", "denied", "failure"].contains(&r)) {
            return Err(AppError::BadRequest("The result filter must be success, denied or failure.".into()));
        }
        Ok(AuditFilter {
            actor: clean(&self.actor),
            action: clean(&self.action),
            target: clean(&self.target),
            result,
            from: date(&self.from, "from")?.map(|d| d.and_hms_opt(0, 0, 0).expect("midnight").and_utc()),
            until: date(&self.to, "to")?
                .map(|d| (d + chrono::Days::new(1)).and_hms_opt(0, 0, 0).expect("midnight").and_utc()),
        })
    }

    fn params(&self) -> Vec<(&'static str, String)> {
        [
            ("actor", &self.actor),
            ("action", &self.action),
            ("target", &self.target),
            ("result", &self.result),
            ("from", &self.from),
            ("to", &self.to),
        ]
        .into_iter()
        .map(|(name, value)| (name, clean(value).unwrap_or_default()))
        .collect()
    }
}

struct EventRow {
    at: Stamp,
    actor: String,
    action: String,
    target: String,
    result: String,
    client_ip: String,
    details: String,
}

#[derive(Template)]
#[template(path = "admin/audit.html")]
struct AuditPage {
    ctx: PageContext,
    rows: Vec<EventRow>,
    actor: String,
    action: String,
    target: String,
    result: String,
    from: String,
    to: String,
    filtered: bool,
    csv_href: String,
    known_actions: Vec<&'static str>,
    pager: Pager,
}

fn actor_of(e: &AuditEvent) -> String {
    match (e.actor_type.as_str(), e.actor_label.is_empty()) {
        (_, false) if e.actor_type == "key" => format!("key \"{}\"", e.actor_label),
        (_, false) => e.actor_label.clone(),
        ("anonymous", true) => "anonymous".into(),
        (kind, true) => kind.into(),
    }
}

fn target_of(e: &AuditEvent) -> String {
    match (&e.target_type, &e.target_label, &e.target_id) {
        (Some(kind), Some(label), Some(id)) if !label.is_empty() && !id.is_empty() && kind == "api_key" => {
            format!("{label} ({id})")
        }
        (_, Some(label), _) if !label.is_empty() => label.clone(),
        (_, _, Some(id)) if !id.is_empty() => id.clone(),
        _ => String::new(),
    }
}

#[get("/admin/audit")]
pub async fn list(
    user: AuditReader,
    state: web::Data<AppState>,
    query: web::Query<AuditQuery>,
) -> AppResult<HttpResponse> {
    let filter = query.filter()?;
    let page = page_index(query.page, PER_PAGE);
    let organization_id = user.organization.id;
    let search = filter.clone();
    let (events, total) =
        state.db.run(move |conn| Ok(AuditEvent::search(conn, organization_id, &search, page, PER_PAGE)?)).await?;
    let rows: Vec<EventRow> = events
        .iter()
        .map(|e| EventRow {
            at: Stamp::new(e.occurred_at),
            actor: actor_of(e),
            action: e.action.clone(),
            target: target_of(e),
            result: e.result.clone(),
            client_ip: e.client_ip.map(|ip| ip.ip().to_string()).unwrap_or_default(),
            details: if e.details.as_object().is_some_and(|d| d.is_empty()) {
                String::new()
            } else {
                e.details.to_string()
            },
        })
        .collect();
    let params = query.params();
    let borrowed: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let pager = Pager::new("/admin/audit", &borrowed, page, PER_PAGE, rows.len(), total);
    let csv_query = serde_urlencoded::to_string(params.iter().filter(|(_, v)| !v.is_empty()).collect::<Vec<_>>())
        .unwrap_or_default();
    let value = |name: &str| params.iter().find(|(k, _)| *k == name).map(|(_, v)| v.clone()).unwrap_or_default();
    let ctx = PageContext::for_user(&user, "Audit log", Section::AdminAudit)?;
    render(&AuditPage {
        ctx,
        rows,
        actor: value("actor"),
        action: value("action"),
        target: value("target"),
        result: value("result"),
        from: value("from"),
        to: value("to"),
        filtered: params.iter().any(|(_, v)| !v.is_empty()),
        csv_href: if csv_query.is_empty() {
            "/admin/audit.csv".into()
        } else {
            format!("/admin/audit.csv?{csv_query}")
        },
        known_actions: AuditAction::organization_filter_choices(),
        pager,
    })
}

/// Neutralizes spreadsheet formulas: a cell starting with `=`, `+`, `-`, `@`, tab or CR is
/// prefixed with `'` (OWASP's advice for CSV injection).
fn cell(value: &str) -> String {
    if value.starts_with(['=', '+', '-', '@', '\t', '\r']) { format!("'{value}") } else { value.to_string() }
}

#[get("/admin/audit.csv")]
pub async fn export(
    user: AuditReader,
    state: web::Data<AppState>,
    query: web::Query<AuditQuery>,
) -> AppResult<HttpResponse> {
    let filter = query.filter()?;
    let organization_id = user.organization.id;
    let events =
        state.db.run(move |conn| Ok(AuditEvent::export(conn, organization_id, &filter, EXPORT_LIMIT)?)).await?;
    let mut writer = csv::Writer::from_writer(Vec::new());
    let header = [
        "time_utc",
        "actor_type",
        "actor",
        "action",
        "target_type",
        "target_id",
        "target",
        "result",
        "client_ip",
        "details",
    ];
    let failed = |e: csv::Error| AppError::Internal(format!("csv: {e}"));
    writer.write_record(header).map_err(failed)?;
    for e in &events {
        writer
            .write_record([
                e.occurred_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                e.actor_type.clone(),
                cell(&e.actor_label),
                e.action.clone(),
                e.target_type.clone().unwrap_or_default(),
                cell(e.target_id.as_deref().unwrap_or_default()),
                cell(e.target_label.as_deref().unwrap_or_default()),
                e.result.clone(),
                e.client_ip.map(|ip| ip.ip().to_string()).unwrap_or_default(),
                cell(&e.details.to_string()),
            ])
            .map_err(failed)?;
    }
    let body = writer.into_inner().map_err(|e| AppError::Internal(format!("csv: {e}")))?;
    let name = format!("keyward-audit-{}-{}.csv", user.organization.slug, Utc::now().format("%Y%m%d-%H%M%S"));
    Ok(HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header((header::CONTENT_DISPOSITION, format!("attachment; filename=\"{name}\"")))
        .body(body))
}

#[cfg(test)]
mod tests {
    use super::cell;

    #[test]
    fn formulas_are_neutralized() {
        assert_eq!(cell("=HYPERLINK(\"x\")"), "'=HYPERLINK(\"x\")");
        assert_eq!(cell("@sum"), "'@sum");
        assert_eq!(cell("alice@acme.example"), "alice@acme.example");
    }
}
