//! Admin → Webhooks: registering, changing and removing an organization's webhook endpoints
//! (organization administrators only), each change audited in its transaction. Delivering
//! to them is `services::notifications::webhooks`.

use chrono::{DateTime, Utc};
use diesel::{PgConnection, prelude::*};
use serde_json::json;

use crate::{
    db::{
        models::webhook::{NewWebhookEndpoint, WebhookEndpoint},
        schema::webhook_endpoints,
    },
    error::{AppError, FieldErrors},
    services::{
        actor::Actor,
        admin::require_admin,
        audit::{self, Entry, Target},
        audit_action::AuditAction,
        notifications::{
            EventType,
            webhooks::{self, SecretSeal},
        },
    },
};

/// The most endpoints an organization may have (each event is sent to each of them).
pub const MAX_ENDPOINTS: usize = 20;

/// The event types an endpoint may subscribe to: the catalogue.
pub const SUBSCRIBABLE: [EventType; 7] = [
    EventType::KeyCreated,
    EventType::KeyDeleted,
    EventType::KeyDeactivated,
    EventType::KeyExpiring,
    EventType::KeyExpired,
    EventType::KeyOldSecretInUse,
    EventType::UserApiKeyAccessLost,
];

/// An endpoint as an administrator describes it, checked.
#[derive(Debug, Clone)]
pub struct EndpointInput {
    pub url: String,
    pub description: String,
    pub event_types: Vec<String>,
}

/// Checks the form's fields: a URL Keyward may send to, a short description, at least one
/// event type of the catalogue.
pub fn parse(
    url: &str,
    description: &str,
    event_types: &[String],
    allow_private: bool,
) -> Result<EndpointInput, AppError> {
    let mut errors = FieldErrors::new();
    let url = webhooks::check_url(url, allow_private).map_err(|message| errors.add("url", message)).ok();
    let description = description.trim().to_string();
    if description.chars().count() > 200 {
        errors.add("description", "Use at most 200 characters.");
    }
    let mut chosen: Vec<String> = SUBSCRIBABLE
        .iter()
        .map(|t| t.code().to_string())
        .filter(|code| event_types.iter().any(|t| t == code))
        .collect();
    chosen.dedup();
    if chosen.is_empty() {
        errors.add("event_types", "Choose at least one event type.");
    }
    errors.finish(url.map(|url| EndpointInput { url, description, event_types: chosen }))
}

/// Registers an endpoint with a new signing secret: the endpoint, and the secret as shown
/// once (`whsec_…`).
pub fn create(
    conn: &mut PgConnection,
    actor: &Actor,
    organization_id: i64,
    seal: &SecretSeal,
    input: EndpointInput,
) -> Result<(WebhookEndpoint, String), AppError> {
    require_admin(conn, actor, organization_id)?;
    if WebhookEndpoint::list_for_org(conn, organization_id)?.len() >= MAX_ENDPOINTS {
        return Err(AppError::Conflict(format!(
            "This organization has {MAX_ENDPOINTS} webhook endpoints already; delete one first."
        )));
    }
    let secret = webhooks::new_secret();
    let sealed = seal.seal(organization_id, &secret)?;
    let endpoint = WebhookEndpoint::insert(
        conn,
        &NewWebhookEndpoint {
            organization_id,
            url: &input.url,
            description: &input.description,
            event_types: &input.event_types,
            secret_sealed: &sealed,
            created_at: actor.now,
            updated_at: actor.now,
        },
    )?;
    audit::record(
        conn,
        actor,
        Entry::new(AuditAction::WebhookCreate)
            .organization(Some(organization_id))
            .target(target(&endpoint))
            .details(json!({ "event_types": input.event_types, "description": input.description })),
    )?;
    Ok((endpoint, webhooks::display_secret(&secret)))
}

fn target(endpoint: &WebhookEndpoint) -> Target {
    Target::new("webhook", endpoint.id, &endpoint.url)
}

/// A new signing secret for the endpoint (the old one stops at once): the secret as shown once.
pub fn rotate_secret(
    conn: &mut PgConnection,
    actor: &Actor,
    organization_id: i64,
    seal: &SecretSeal,
    id: i64,
) -> Result<(WebhookEndpoint, String), AppError> {
    require_admin(conn, actor, organization_id)?;
    let endpoint = WebhookEndpoint::lock_in_org(conn, organization_id, id).optional()?.ok_or(AppError::NotFound)?;
    let secret = webhooks::new_secret();
    let sealed = seal.seal(organization_id, &secret)?;
    diesel::update(webhook_endpoints::table.find(id))
        .set((webhook_endpoints::secret_sealed.eq(sealed), webhook_endpoints::updated_at.eq(actor.now)))
        .execute(conn)?;
    audit::record(
        conn,
        actor,
        Entry::new(AuditAction::WebhookRotateSecret).organization(Some(organization_id)).target(target(&endpoint)),
    )?;
    Ok((endpoint, webhooks::display_secret(&secret)))
}

/// Enables (clearing the failure notice and count) or disables the endpoint.
pub fn set_enabled(
    conn: &mut PgConnection,
    actor: &Actor,
    organization_id: i64,
    id: i64,
    enabled: bool,
) -> Result<WebhookEndpoint, AppError> {
    require_admin(conn, actor, organization_id)?;
    let endpoint = WebhookEndpoint::lock_in_org(conn, organization_id, id).optional()?.ok_or(AppError::NotFound)?;
    let disabled_at: Option<DateTime<Utc>> = if enabled { None } else { Some(actor.now) };
    let updated = diesel::update(webhook_endpoints::table.find(id))
        .set((
            webhook_endpoints::enabled.eq(enabled),
            webhook_endpoints::disabled_reason.eq(None::<String>),
            webhook_endpoints::disabled_at.eq(disabled_at),
            webhook_endpoints::consecutive_failures.eq(0),
            webhook_endpoints::updated_at.eq(actor.now),
        ))
        .returning(WebhookEndpoint::as_returning())
        .get_result(conn)?;
    let action = if enabled { AuditAction::WebhookEnable } else { AuditAction::WebhookDisable };
    audit::record(
        conn,
        actor,
        Entry::new(action)
            .organization(Some(organization_id))
            .target(target(&endpoint))
            .details(json!({ "was_enabled": endpoint.enabled })),
    )?;
    Ok(updated)
}

/// Deletes the endpoint with its delivery log.
pub fn delete(
    conn: &mut PgConnection,
    actor: &Actor,
    organization_id: i64,
    id: i64,
) -> Result<WebhookEndpoint, AppError> {
    require_admin(conn, actor, organization_id)?;
    let endpoint = WebhookEndpoint::lock_in_org(conn, organization_id, id).optional()?.ok_or(AppError::NotFound)?;
    diesel::delete(webhook_endpoints::table.find(id)).execute(conn)?;
    audit::record(
        conn,
        actor,
        Entry::new(AuditAction::WebhookDelete).organization(Some(organization_id)).target(target(&endpoint)),
    )?;
    Ok(endpoint)
}

/// Queues a `webhook.test` event for the endpoint (enabled ones only): the delivery's id.
pub fn send_test(conn: &mut PgConnection, actor: &Actor, organization_id: i64, id: i64) -> Result<i64, AppError> {
    require_admin(conn, actor, organization_id)?;
    let endpoint = WebhookEndpoint::find_in_org(conn, organization_id, id).optional()?.ok_or(AppError::NotFound)?;
    if !endpoint.enabled {
        return Err(AppError::Conflict("This endpoint is disabled: enable it first, then send a test event.".into()));
    }
    webhooks::queue_test(conn, actor, &endpoint)
}
