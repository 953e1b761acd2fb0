//! Admin → Webhooks: the organization's endpoints (list, add with the signing secret shown
//! once, the endpoint page with its delivery log, send a test event, rotate the secret,
//! disable / enable, delete). Administrators only; adding an endpoint and revealing a new
//! secret ask for a recent sign-in (sudo mode), since a secret lets anyone forge events.

use actix_web::{HttpResponse, get, http::header, post, web};
use askama::Template;
use serde::Deserialize;

use crate::{
    auth::{
        OrgAdmin,
        session::{self, FlashLevel},
    },
    db::models::webhook::{WebhookDelivery, WebhookEndpoint},
    error::{AppError, AppResult, FieldErrors},
    routes::{
        extract::{HtmlForm, IdPath},
        keys::form::Choice,
    },
    services::{
        notifications::webhooks::{MAX_ATTEMPTS, Sent},
        webhook_endpoints::{self, SUBSCRIBABLE},
    },
    state::AppState,
    views::{
        PageContext, Section,
        confirm::ConfirmPage,
        pager::{Pager, page_index},
        redirect, render, render_with_status,
        time::Stamp,
    },
};

const BASE: &str = "/admin/webhooks";
const PER_PAGE: i64 = 25;

/// A page of one endpoint: the administrator and the endpoint's id.
type EndpointPath = IdPath<OrgAdmin>;

/// What an event type means, for the form's checkboxes and the README's catalogue.
fn describe(code: &str) -> &'static str {
    match code {
        "key.created" => "A key was created.",
        "key.deleted" => "A key was deleted.",
        "key.deactivated" => "A key was deactivated (by a person, a leak report or the stale-key policy).",
        "key.expiring" => "A key is within one of its reminder days of expiring.",
        "key.expired" => "A key expired.",
        "key.old_secret_in_use" => "A re-keyed key's old secret is still in use an hour before it stops working.",
        "user.api_key_access_lost" => "Someone lost API key access: their personal keys stopped.",
        _ => "",
    }
}

struct EndpointRow {
    id: i64,
    url: String,
    description: String,
    event_types: Vec<String>,
    enabled: bool,
    failing: bool,
}

impl From<WebhookEndpoint> for EndpointRow {
    fn from(e: WebhookEndpoint) -> Self {
        EndpointRow {
            id: e.id,
            failing: e.disabled_reason.is_some(),
            url: e.url,
            description: e.description,
            event_types: e.event_types,
            enabled: e.enabled,
        }
    }
}

#[derive(Template)]
#[template(path = "admin/webhooks/list.html")]
struct ListPage {
    ctx: PageContext,
    rows: Vec<EndpointRow>,
    /// Endpoints Keyward disabled because their deliveries kept failing.
    failing: usize,
}

#[get("/admin/webhooks")]
pub async fn list(admin: OrgAdmin, state: web::Data<AppState>) -> AppResult<HttpResponse> {
    let organization_id = admin.organization.id;
    let endpoints = state.db.run(move |conn| Ok(WebhookEndpoint::list_for_org(conn, organization_id)?)).await?;
    let rows: Vec<EndpointRow> = endpoints.into_iter().map(EndpointRow::from).collect();
    let failing = rows.iter().filter(|r| r.failing && !r.enabled).count();
    let ctx = PageContext::for_user(&admin, "Webhooks", Section::AdminWebhooks)?;
    render(&ListPage { ctx, rows, failing })
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct EndpointForm {
    #[serde(default)]
    url: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    event_type: Vec<String>,
}

#[derive(Template)]
#[template(path = "admin/webhooks/form.html")]
struct FormPage {
    ctx: PageContext,
    heading: String,
    action_url: String,
    values: EndpointForm,
    errors: FieldErrors,
    event_types: Vec<Choice>,
}

fn form_page(admin: &OrgAdmin, values: EndpointForm, errors: FieldErrors) -> AppResult<FormPage> {
    let heading = "Add a webhook endpoint".to_string();
    let event_types = SUBSCRIBABLE
        .iter()
        .map(|t| Choice {
            value: t.code().into(),
            label: t.code().into(),
            hint: describe(t.code()).into(),
            checked: values.event_type.iter().any(|c| c == t.code()),
        })
        .collect();
    let ctx = PageContext::for_user(admin, &heading, Section::AdminWebhooks)?;
    Ok(FormPage { ctx, heading, action_url: BASE.into(), values, errors, event_types })
}

#[get("/admin/webhooks/new")]
pub async fn new_form(admin: OrgAdmin) -> AppResult<HttpResponse> {
    admin.require_recent(&format!("{BASE}/new"))?;
    // Every type checked: most receivers want them all, and unchecking is one click.
    let values =
        EndpointForm { event_type: SUBSCRIBABLE.iter().map(|t| t.code().to_string()).collect(), ..Default::default() };
    render(&form_page(&admin, values, FieldErrors::new())?)
}

#[derive(Template)]
#[template(path = "admin/webhooks/secret.html")]
struct SecretPage {
    ctx: PageContext,
    heading: String,
    url: String,
    secret: String,
    done_href: String,
}

/// The one page that ever shows a signing secret: no cache may keep it.
fn secret_response(page: &SecretPage) -> AppResult<HttpResponse> {
    let mut response = render(page)?;
    response.headers_mut().insert(header::CACHE_CONTROL, header::HeaderValue::from_static("no-store, max-age=0"));
    response.headers_mut().insert(header::PRAGMA, header::HeaderValue::from_static("no-cache"));
    Ok(response)
}

#[post("/admin/webhooks")]
pub async fn create(
    admin: OrgAdmin,
    state: web::Data<AppState>,
    form: HtmlForm<EndpointForm>,
) -> AppResult<HttpResponse> {
    admin.require_recent(&format!("{BASE}/new"))?;
    let values = form.into_inner();
    let submitted = values.clone();
    let sender = state.webhooks.clone();
    // Checking the URL may resolve its host name: on a blocking thread, and before the
    // transaction, which need not wait for DNS.
    let allow_private = sender.allow_private();
    let parsed = web::block(move || {
        webhook_endpoints::parse(&submitted.url, &submitted.description, &submitted.event_type, allow_private)
    })
    .await
    .map_err(|e| AppError::Internal(format!("checking a webhook URL failed: {e}")))?;
    let result = match parsed {
        Ok(input) => {
            admin
                .change(&state, move |conn, actor, organization_id| {
                    webhook_endpoints::create(conn, actor, organization_id, sender.seal(), input)
                })
                .await
        }
        Err(e) => Err(e),
    };
    match result {
        Ok((endpoint, secret)) => {
            let heading = "Your endpoint's signing secret".to_string();
            let ctx = PageContext::for_user(&admin, &heading, Section::AdminWebhooks)?;
            secret_response(&SecretPage {
                ctx,
                heading,
                url: endpoint.url,
                secret,
                done_href: format!("{BASE}/{}", endpoint.id),
            })
        }
        Err(AppError::Invalid(errors)) => {
            render_with_status(&form_page(&admin, values, errors)?, actix_web::http::StatusCode::UNPROCESSABLE_ENTITY)
        }
        Err(e) => Err(e),
    }
}

struct DeliveryRow {
    id: i64,
    event_type: String,
    webhook_id: String,
    status: String,
    attempts: i32,
    response_status: Option<i32>,
    last_error: Option<String>,
    created: Stamp,
    last_attempt: Option<Stamp>,
    next_attempt: Option<Stamp>,
}

#[derive(Template)]
#[template(path = "admin/webhooks/detail.html")]
struct DetailPage {
    ctx: PageContext,
    endpoint: EndpointRow,
    disabled_reason: Option<String>,
    disabled_at: Option<Stamp>,
    consecutive_failures: i32,
    created: Stamp,
    rows: Vec<DeliveryRow>,
    pager: Pager,
    max_attempts: i32,
}

#[derive(Debug, Default, Deserialize)]
pub struct LogQuery {
    page: Option<i64>,
}

#[get("/admin/webhooks/{id}")]
pub async fn detail(
    IdPath { who: admin, id }: EndpointPath,
    state: web::Data<AppState>,
    query: web::Query<LogQuery>,
) -> AppResult<HttpResponse> {
    let organization_id = admin.organization.id;
    let page = page_index(query.page, PER_PAGE);
    let (endpoint, deliveries, total) = state
        .db
        .run(move |conn| {
            let endpoint = WebhookEndpoint::find_in_org(conn, organization_id, id)?;
            let deliveries = WebhookDelivery::list(conn, id, page * PER_PAGE, PER_PAGE)?;
            let total = WebhookDelivery::count(conn, id)?;
            Ok((endpoint, deliveries, total))
        })
        .await?;
    let base = format!("{BASE}/{id}");
    let pager = Pager::new(&base, &[], page, PER_PAGE, deliveries.len(), total);
    let rows = deliveries
        .into_iter()
        .map(|(d, event_type)| DeliveryRow {
            id: d.id,
            event_type,
            webhook_id: crate::services::notifications::webhooks::webhook_id(d.event_id),
            next_attempt: (d.status == "pending").then(|| Stamp::new(d.next_attempt_at)),
            status: d.status,
            attempts: d.attempts,
            response_status: d.response_status,
            last_error: d.last_error,
            created: Stamp::new(d.created_at),
            last_attempt: d.last_attempt_at.map(Stamp::new),
        })
        .collect();
    let heading = endpoint.url.clone();
    let ctx = PageContext::for_user(&admin, &heading, Section::AdminWebhooks)?;
    render(&DetailPage {
        ctx,
        disabled_reason: endpoint.disabled_reason.clone(),
        disabled_at: endpoint.disabled_at.map(Stamp::new),
        consecutive_failures: endpoint.consecutive_failures,
        created: Stamp::new(endpoint.created_at),
        endpoint: endpoint.into(),
        rows,
        pager,
        max_attempts: MAX_ATTEMPTS,
    })
}

#[post("/admin/webhooks/{id}/test")]
pub async fn send_test(IdPath { who: admin, id }: EndpointPath, state: web::Data<AppState>) -> AppResult<HttpResponse> {
    let delivery = admin
        .change(&state, move |conn, actor, organization_id| {
            webhook_endpoints::send_test(conn, actor, organization_id, id)
        })
        .await;
    let delivery = match delivery {
        Ok(delivery) => delivery,
        Err(AppError::Conflict(message)) => {
            session::flash(&admin.session, FlashLevel::Error, message);
            return Ok(redirect(&format!("{BASE}/{id}")));
        }
        Err(e) => return Err(e),
    };
    // Sent at once, on a blocking thread (the request waits up to the delivery's timeout), so
    // the page that follows shows how it went; were this instance to stop first, the runners
    // send it like any other pending delivery.
    let sender = state.webhooks.clone();
    let now = state.clock.now();
    let sent: Sent = state.db.run(move |conn| sender.send_due(conn, now, Some(delivery))).await?;
    let (level, message) = if sent.delivered > 0 {
        (FlashLevel::Success, "Sent a test event; the endpoint answered with success.".to_string())
    } else {
        (
            FlashLevel::Error,
            "Sent a test event, but the endpoint did not accept it (see the delivery log); it will be retried."
                .to_string(),
        )
    };
    session::flash(&admin.session, level, message);
    Ok(redirect(&format!("{BASE}/{id}")))
}

#[post("/admin/webhooks/{id}/enable")]
pub async fn enable(IdPath { who: admin, id }: EndpointPath, state: web::Data<AppState>) -> AppResult<HttpResponse> {
    set_enabled(admin, id, state, true).await
}

#[post("/admin/webhooks/{id}/disable")]
pub async fn disable(IdPath { who: admin, id }: EndpointPath, state: web::Data<AppState>) -> AppResult<HttpResponse> {
    set_enabled(admin, id, state, false).await
}

async fn set_enabled(admin: OrgAdmin, id: i64, state: web::Data<AppState>, on: bool) -> AppResult<HttpResponse> {
    admin
        .change(&state, move |conn, actor, organization_id| {
            webhook_endpoints::set_enabled(conn, actor, organization_id, id, on)
        })
        .await?;
    let message = if on {
        "Enabled the endpoint: new events are sent to it again, and pending deliveries resume."
    } else {
        "Disabled the endpoint: nothing is sent to it until it is enabled again."
    };
    session::flash(&admin.session, FlashLevel::Success, message);
    Ok(redirect(&format!("{BASE}/{id}")))
}

#[get("/admin/webhooks/{id}/rotate")]
pub async fn rotate_form(
    IdPath { who: admin, id }: EndpointPath,
    state: web::Data<AppState>,
) -> AppResult<HttpResponse> {
    admin.require_recent(&format!("{BASE}/{id}/rotate"))?;
    let organization_id = admin.organization.id;
    let endpoint = state.db.run(move |conn| Ok(WebhookEndpoint::find_in_org(conn, organization_id, id)?)).await?;
    let heading = "Rotate the signing secret?".to_string();
    let ctx = PageContext::for_user(&admin, &heading, Section::AdminWebhooks)?;
    let back = format!("{BASE}/{id}");
    render(&ConfirmPage {
        ctx,
        heading,
        message: "A new secret is shown once, and the current one stops signing at once: deliveries from now on \
                  carry only the new signature, so update the receiver right away."
            .into(),
        note: None,
        detail: Some(endpoint.url),
        action_url: format!("{BASE}/{id}/rotate"),
        button: "Rotate secret",
        danger: true,
        with_reason: false,
        hidden: vec![],
        cancel_href: back.clone(),
        return_to: back,
    })
}

#[post("/admin/webhooks/{id}/rotate")]
pub async fn rotate(IdPath { who: admin, id }: EndpointPath, state: web::Data<AppState>) -> AppResult<HttpResponse> {
    admin.require_recent(&format!("{BASE}/{id}/rotate"))?;
    let sender = state.webhooks.clone();
    let (endpoint, secret) = admin
        .change(&state, move |conn, actor, organization_id| {
            webhook_endpoints::rotate_secret(conn, actor, organization_id, sender.seal(), id)
        })
        .await?;
    let heading = "The endpoint's new signing secret".to_string();
    let ctx = PageContext::for_user(&admin, &heading, Section::AdminWebhooks)?;
    secret_response(&SecretPage { ctx, heading, url: endpoint.url, secret, done_href: format!("{BASE}/{id}") })
}

#[get("/admin/webhooks/{id}/delete")]
pub async fn delete_form(
    IdPath { who: admin, id }: EndpointPath,
    state: web::Data<AppState>,
) -> AppResult<HttpResponse> {
    let organization_id = admin.organization.id;
    let endpoint = state.db.run(move |conn| Ok(WebhookEndpoint::find_in_org(conn, organization_id, id)?)).await?;
    let heading = "Delete this webhook endpoint?".to_string();
    let ctx = PageContext::for_user(&admin, &heading, Section::AdminWebhooks)?;
    let mut page = ConfirmPage::deletion(
        ctx,
        heading,
        "Nothing more is sent to it, and its delivery log is deleted with it.".into(),
        None,
        format!("{BASE}/{id}/delete"),
        "Delete endpoint",
        BASE,
    );
    page.detail = Some(endpoint.url);
    render(&page)
}

#[post("/admin/webhooks/{id}/delete")]
pub async fn delete(IdPath { who: admin, id }: EndpointPath, state: web::Data<AppState>) -> AppResult<HttpResponse> {
    let endpoint = admin
        .change(&state, move |conn, actor, organization_id| webhook_endpoints::delete(conn, actor, organization_id, id))
        .await?;
    session::flash(&admin.session, FlashLevel::Success, format!("Deleted the endpoint {}.", endpoint.url));
    Ok(redirect(BASE))
}
