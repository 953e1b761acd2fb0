//! Admin → Audit log: the organization's events, filtered and paginated, and the same as a
//! CSV download. For administrators and `audit.read` holders.

use crate::services::audit::AuditAction;
use actix_web::{HttpResponse, get, http::header, web};
use askama::Template;
use chrono::{NaiveDate, Utc};
use serde::Deserialize;
use serde_json::Value;

use crate::{
    auth::AuditReader,
    db::models::{AuditEvent, audit_event::AuditFilter},
    error::{AppError, AppResult},
    state::AppState,
    views::{
        PageContext, Section,
        actors::{ActorName, actor_names},
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
    actor: ActorName,
    action: String,
    target: String,
    result: String,
    client_ip: String,
    details: Details,
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

/// What the event acted on, as one line.
pub fn target_of(e: &AuditEvent) -> String {
    match (&e.target_type, &e.target_label, &e.target_id) {
        (Some(kind), Some(label), Some(id)) if !label.is_empty() && !id.is_empty() && kind == "api_key" => {
            format!("{label} ({id})")
        }
        (_, Some(label), _) if !label.is_empty() => label.clone(),
        (_, _, Some(id)) if !id.is_empty() => id.clone(),
        _ => String::new(),
    }
}

/// Values longer than this fold into a `<details>` whose summary is their start.
const FOLD_AT: usize = 60;
/// How much of a folded value its summary shows.
const PREVIEW: usize = 24;
/// Fields shown at once; the rest fold into "N more", so a row stays one or two lines.
const SHOWN_FIELDS: usize = 2;

/// One top-level field of an event's details.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Detail {
    /// The field's name, words apart (`attributed_to_user_id` → "attributed to user id").
    pub key: String,
    /// The value, compact: strings bare, lists of plain values comma-separated, anything
    /// else as one-line JSON.
    pub value: String,
    /// The value's start, when the value is long enough to fold.
    pub preview: Option<String>,
}

/// An event's details as key–value pairs: the first few, and the rest.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Details {
    pub shown: Vec<Detail>,
    pub more: Vec<Detail>,
}

impl Details {
    pub fn is_empty(&self) -> bool {
        self.shown.is_empty()
    }

    pub fn of(details: &Value) -> Self {
        let fields: Vec<Detail> = match details {
            Value::Null => Vec::new(),
            Value::Object(map) => map.iter().map(|(k, v)| Detail::new(&k.replace('_', " "), v)).collect(),
            other => vec![Detail::new("details", other)],
        };
        let mut shown = fields;
        let more = shown.split_off(shown.len().min(SHOWN_FIELDS));
        Self { shown, more }
    }
}

impl Detail {
    fn new(key: &str, value: &Value) -> Self {
        let plain = |v: &Value| match v {
            Value::String(s) => Some(s.clone()),
            Value::Number(_) | Value::Bool(_) => Some(v.to_string()),
            Value::Null => Some("none".into()),
            _ => None,
        };
        let value = match value {
            Value::Array(items) if items.is_empty() => "none".into(),
            Value::Array(items) => {
                items.iter().map(plain).collect::<Option<Vec<_>>>().map_or_else(|| value.to_string(), |v| v.join(", "))
            }
            Value::Object(_) => value.to_string(),
            _ => plain(value).unwrap_or_default(),
        };
        let preview = (value.chars().count() > FOLD_AT || value.contains('\n')).then(|| {
            format!("{}…", value.lines().next().unwrap_or_default().chars().take(PREVIEW).collect::<String>())
        });
        Self { key: key.to_string(), value, preview }
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
    let (events, total, names) = state
        .db
        .run(move |conn| {
            let (events, total) = AuditEvent::search(conn, organization_id, &search, page, PER_PAGE)?;
            let names = actor_names(conn, Some(organization_id), &events)?;
            Ok((events, total, names))
        })
        .await?;
    let rows: Vec<EventRow> = events
        .iter()
        .map(|e| EventRow {
            at: Stamp::new(e.occurred_at),
            actor: names.of(e),
            action: e.action.clone(),
            target: target_of(e),
            result: e.result.clone(),
            client_ip: e.client_ip.map(|ip| ip.ip().to_string()).unwrap_or_default(),
            details: Details::of(&e.details),
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
    use super::{Details, cell};
    use serde_json::json;

    #[test]
    fn details_read_as_key_value_pairs_long_values_folded() {
        let long = "x".repeat(100);
        let details = Details::of(&json!({
            "reason": "leaked",
            "actions": ["positions.read", "trips.read"],
            "scope": {"all": false},
            "note": long,
            "count": 3,
        }));
        let pairs: Vec<(&str, &str)> =
            details.shown.iter().chain(&details.more).map(|d| (d.key.as_str(), d.value.as_str())).collect();
        assert_eq!(
            pairs,
            [
                ("actions", "positions.read, trips.read"),
                ("count", "3"),
                ("note", long.as_str()),
                ("reason", "leaked"),
                ("scope", "{\"all\":false}")
            ]
        );
        assert_eq!(details.shown.len(), 2, "the rest fold away");
        assert!(details.more[0].preview.as_ref().is_some_and(|p| p.len() < long.len()));
        assert!(details.shown[0].preview.is_none());
        assert!(Details::of(&json!({})).is_empty() && Details::of(&json!(null)).is_empty());
        assert_eq!(Details::of(&json!({"attributed_to_user_id": 7})).shown[0].key, "attributed to user id");
    }

    #[test]
    fn formulas_are_neutralized() {
        assert_eq!(cell("=HYPERLINK(\"x\")"), "'=HYPERLINK(\"x\")");
        assert_eq!(cell("@sum"), "'@sum");
        assert_eq!(cell("alice@acme.example"), "alice@acme.example");
    }
}
