//! Recording audit events. Services call [`record`] on the same connection, inside the same
//! transaction, as the change it describes, so both commit or neither does. The log is
//! append-only in the database itself; [`purge_before`] is the operator's one way to remove
//! old events, and it records itself.

use chrono::{DateTime, Utc};
use diesel::{PgConnection, QueryResult};
use serde_json::{Value, json};

pub use crate::services::audit_action::AuditAction;

use crate::{
    db::models::audit_event::{AuditEvent, NewAuditEvent},
    error::AppError,
    services::actor::{Actor, ActorKind},
};

/// How the attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success,
    Denied,
    Failure,
}

impl Outcome {
    pub fn code(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Denied => "denied",
            Outcome::Failure => "failure",
        }
    }
}

/// What was acted on.
#[derive(Debug, Clone)]
pub struct Target {
    pub kind: &'static str,
    pub id: String,
    pub label: String,
}

impl Target {
    pub fn new(kind: &'static str, id: impl ToString, label: impl Into<String>) -> Self {
        Self { kind, id: id.to_string(), label: label.into() }
    }
}

/// One audit event, before it is written.
#[derive(Debug, Clone)]
pub struct Entry {
    pub action: AuditAction,
    pub organization_id: Option<i64>,
    pub service_provider_id: Option<i64>,
    pub target: Option<Target>,
    pub outcome: Outcome,
    pub details: Value,
}

impl Entry {
    /// A successful `action`, in the actor's own organization (if any).
    pub fn new(action: AuditAction) -> Self {
        Self {
            action,
            organization_id: None,
            service_provider_id: None,
            target: None,
            outcome: Outcome::Success,
            details: Value::Object(Default::default()),
        }
    }

    pub fn organization(mut self, id: Option<i64>) -> Self {
        self.organization_id = id;
        self
    }

    pub fn service_provider(mut self, id: Option<i64>) -> Self {
        self.service_provider_id = id;
        self
    }

    pub fn target(mut self, target: Target) -> Self {
        self.target = Some(target);
        self
    }

    pub fn outcome(mut self, outcome: Outcome) -> Self {
        self.outcome = outcome;
        self
    }

    pub fn details(mut self, details: Value) -> Self {
        self.details = details;
        self
    }
}

/// Writes `entry` as done by `actor`. The organization defaults to the actor's own.
pub fn record(conn: &mut PgConnection, actor: &Actor, entry: Entry) -> QueryResult<()> {
    let (actor_type, actor_id, actor_label) = actor.audit_identity();
    let mut details = entry.details;
    if let (ActorKind::Key { attributed_user_id: Some(user_id), .. }, Value::Object(map)) = (&actor.kind, &mut details)
    {
        map.insert("attributed_to_user_id".into(), Value::from(*user_id));
    }
    // A token's change names its creator too: whose rights it used.
    if let (ActorKind::Token { public_id, user_id, email, .. }, Value::Object(map)) = (&actor.kind, &mut details) {
        map.insert("token".into(), json!({ "public_id": public_id, "creator_user_id": user_id, "creator": email }));
    }
    if let (ActorKind::ProviderToken { public_id, staff_id, email, .. }, Value::Object(map)) =
        (&actor.kind, &mut details)
    {
        map.insert("token".into(), json!({ "public_id": public_id, "creator_staff_id": staff_id, "creator": email }));
    }
    let target = entry.target.as_ref();
    AuditEvent::insert(
        conn,
        &NewAuditEvent {
            organization_id: entry.organization_id.or_else(|| actor.organization_id()),
            service_provider_id: entry.service_provider_id.or_else(|| actor.service_provider_id()),
            actor_type,
            actor_id,
            actor_label: &actor_label,
            action: entry.action.code(),
            target_type: target.map(|t| t.kind),
            target_id: target.map(|t| t.id.as_str()),
            target_label: target.map(|t| t.label.as_str()),
            result: entry.outcome.code(),
            client_ip: actor.client_ip.network(),
            details,
        },
    )
}

/// What [`purge_before`] removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Purged {
    /// Events removed, in all.
    pub deleted: i64,
    /// Organizations that lost events (each got an `audit.purge` event of its own).
    pub organizations: usize,
}

/// Removes the audit events that occurred before `cutoff` and records the purge: one
/// platform-wide `audit.purge` event with the total, and one in each organization that lost
/// events, so its administrators see the gap explained. Call it inside a transaction, on a
/// connection of the tables' owner: the append-only trigger lets a DELETE through only for
/// the owner, only in a transaction that has named the cutoff, and only for older rows.
pub fn purge_before(conn: &mut PgConnection, cutoff: DateTime<Utc>, now: DateTime<Utc>) -> Result<Purged, AppError> {
    use diesel::{
        RunQueryDsl,
        sql_types::{BigInt, Bool, Nullable, Text, Timestamptz},
    };
    #[derive(diesel::QueryableByName)]
    struct Owner {
        #[diesel(sql_type = Bool)]
        owns: bool,
    }
    #[derive(diesel::QueryableByName)]
    struct Gone {
        #[diesel(sql_type = Nullable<BigInt>)]
        organization_id: Option<i64>,
        #[diesel(sql_type = BigInt)]
        deleted: i64,
    }
    if cutoff > now {
        return Err(AppError::BadRequest("the cutoff is in the future: only past events can be purged".into()));
    }
    let owner: Owner = diesel::sql_query(
        "SELECT pg_has_role(current_user, relowner, 'USAGE') AS owns FROM pg_class WHERE oid = 'audit_events'::regclass",
    )
    .get_result(conn)?;
    if !owner.owns {
        return Err(AppError::BadRequest(
            "only the owner of the tables may purge the audit log: run purge-audit with KEYWARD_MIGRATE_URL \
             (or DATABASE_URL) naming the role that runs the migrations"
                .into(),
        ));
    }
    let cutoff_text = cutoff.to_rfc3339();
    diesel::sql_query("SELECT set_config('keyward.audit_purge', $1, true)")
        .bind::<Text, _>(&cutoff_text)
        .execute(conn)?;
    let gone: Vec<Gone> = diesel::sql_query(
        "WITH gone AS (DELETE FROM audit_events WHERE occurred_at < $1 RETURNING organization_id) \
         SELECT organization_id, count(*) AS deleted FROM gone GROUP BY organization_id",
    )
    .bind::<Timestamptz, _>(cutoff)
    .load(conn)?;
    // Close the door again at once: nothing else in this transaction may delete events.
    diesel::sql_query("SELECT set_config('keyward.audit_purge', '', true)").execute(conn)?;

    let actor = Actor::system("purge-audit");
    let mut purged = Purged { deleted: 0, organizations: 0 };
    for group in &gone {
        purged.deleted += group.deleted;
        if let Some(organization_id) = group.organization_id {
            purged.organizations += 1;
            record(
                conn,
                &actor,
                Entry::new(AuditAction::AuditPurge)
                    .organization(Some(organization_id))
                    .details(json!({ "before": cutoff_text, "deleted": group.deleted })),
            )?;
        }
    }
    record(
        conn,
        &actor,
        Entry::new(AuditAction::AuditPurge).details(json!({
            "before": cutoff_text,
            "deleted": purged.deleted,
            "organizations": purged.organizations,
        })),
    )?;
    Ok(purged)
}
