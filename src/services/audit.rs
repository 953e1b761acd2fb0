//! Recording audit events. Services call [`record`] on the same connection, inside the same
//! transaction, as the change it describes, so both commit or neither does.

use diesel::{PgConnection, QueryResult};
use serde_json::Value;

use crate::{
    db::models::audit_event::{AuditEvent, NewAuditEvent},
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
    fn code(self) -> &'static str {
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
    pub action: &'static str,
    pub organization_id: Option<i64>,
    pub service_provider_id: Option<i64>,
    pub target: Option<Target>,
    pub outcome: Outcome,
    pub details: Value,
}

impl Entry {
    /// A successful `action`, in the actor's own organization (if any).
    pub fn new(action: &'static str) -> Self {
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
    let target = entry.target.as_ref();
    AuditEvent::insert(
        conn,
        &NewAuditEvent {
            organization_id: entry.organization_id.or_else(|| actor.organization_id()),
            service_provider_id: entry.service_provider_id,
            actor_type,
            actor_id,
            actor_label: &actor_label,
            action: entry.action,
            target_type: target.map(|t| t.kind),
            target_id: target.map(|t| t.id.as_str()),
            target_label: target.map(|t| t.label.as_str()),
            result: entry.outcome.code(),
            client_ip: actor.client_ip.network(),
            details,
        },
    )
}
