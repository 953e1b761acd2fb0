//! Webhook endpoints of an organization and their deliveries (one per event and endpoint,
//! with its attempts), as stored; what they mean is in `services::notifications::webhooks`.

use chrono::{DateTime, Utc};
use diesel::prelude::*;

use crate::{
    db::{
        count::CountRows,
        schema::{webhook_deliveries, webhook_endpoints},
    },
    views::pager::MAX_COUNTED,
};

/// A registered endpoint. `secret_sealed` is the signing secret sealed under a key derived
/// from the master secret; it never leaves the services unsealed except once, when created
/// or rotated.
#[derive(Clone, PartialEq, Queryable, Selectable, Identifiable)]
#[diesel(table_name = webhook_endpoints)]
pub struct WebhookEndpoint {
    pub id: i64,
    pub organization_id: i64,
    pub url: String,
    pub description: String,
    pub event_types: Vec<String>,
    pub secret_sealed: Vec<u8>,
    pub enabled: bool,
    pub disabled_reason: Option<String>,
    pub disabled_at: Option<DateTime<Utc>>,
    pub consecutive_failures: i32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl std::fmt::Debug for WebhookEndpoint {
    // Without the sealed secret: sealed or not, it has no business in logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookEndpoint")
            .field("id", &self.id)
            .field("organization_id", &self.organization_id)
            .field("url", &self.url)
            .field("enabled", &self.enabled)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Insertable)]
#[diesel(table_name = webhook_endpoints)]
pub struct NewWebhookEndpoint<'a> {
    pub organization_id: i64,
    pub url: &'a str,
    pub description: &'a str,
    pub event_types: &'a [String],
    pub secret_sealed: &'a [u8],
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl WebhookEndpoint {
    pub fn insert(conn: &mut PgConnection, new: &NewWebhookEndpoint<'_>) -> QueryResult<WebhookEndpoint> {
        diesel::insert_into(webhook_endpoints::table)
            .values(new)
            .returning(WebhookEndpoint::as_returning())
            .get_result(conn)
    }

    /// The organization's endpoints, oldest first.
    pub fn list_for_org(conn: &mut PgConnection, organization_id: i64) -> QueryResult<Vec<WebhookEndpoint>> {
        webhook_endpoints::table
            .filter(webhook_endpoints::organization_id.eq(organization_id))
            .order(webhook_endpoints::id.asc())
            .select(WebhookEndpoint::as_select())
            .load(conn)
    }

    /// The endpoint `id` if it belongs to `organization_id` (another's looks missing).
    pub fn find_in_org(conn: &mut PgConnection, organization_id: i64, id: i64) -> QueryResult<WebhookEndpoint> {
        webhook_endpoints::table
            .filter(webhook_endpoints::organization_id.eq(organization_id))
            .find(id)
            .select(WebhookEndpoint::as_select())
            .first(conn)
    }

    /// [`WebhookEndpoint::find_in_org`], locking the row until the transaction ends.
    pub fn lock_in_org(conn: &mut PgConnection, organization_id: i64, id: i64) -> QueryResult<WebhookEndpoint> {
        webhook_endpoints::table
            .filter(webhook_endpoints::organization_id.eq(organization_id))
            .find(id)
            .select(WebhookEndpoint::as_select())
            .for_update()
            .first(conn)
    }
}

/// One event's delivery to one endpoint.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Identifiable)]
#[diesel(table_name = webhook_deliveries)]
pub struct WebhookDelivery {
    pub id: i64,
    pub event_id: i64,
    pub endpoint_id: i64,
    /// `pending`, `delivered` or `failed` (every attempt failed).
    pub status: String,
    pub attempts: i32,
    pub next_attempt_at: DateTime<Utc>,
    pub last_attempt_at: Option<DateTime<Utc>>,
    pub response_status: Option<i32>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
}

impl WebhookDelivery {
    /// One page of an endpoint's deliveries, newest first, with their events' types.
    pub fn list(
        conn: &mut PgConnection,
        endpoint_id: i64,
        offset: i64,
        limit: i64,
    ) -> QueryResult<Vec<(WebhookDelivery, String)>> {
        use crate::db::schema::outbox_events;
        webhook_deliveries::table
            .inner_join(outbox_events::table)
            .filter(webhook_deliveries::endpoint_id.eq(endpoint_id))
            .order(webhook_deliveries::id.desc())
            .offset(offset)
            .limit(limit)
            .select((WebhookDelivery::as_select(), outbox_events::event_type))
            .load(conn)
    }

    /// An endpoint's deliveries, counted up to [`MAX_COUNTED`] + 1.
    pub fn count(conn: &mut PgConnection, endpoint_id: i64) -> QueryResult<i64> {
        CountRows(
            webhook_deliveries::table
                .filter(webhook_deliveries::endpoint_id.eq(endpoint_id))
                .select(webhook_deliveries::id)
                .limit(MAX_COUNTED + 1),
        )
        .get_result(conn)
    }
}
