//! Who did something, as a person reads it: the names behind audit events' actors, looked up
//! for a whole page of events at once (the audit log, the overview, a key's history).

use std::collections::HashMap;

use diesel::{PgConnection, QueryResult};

use crate::db::models::{AuditEvent, StaffAccount, User};

/// Who did it, as a person reads it: a name where the event's actor has one, and the label
/// the event recorded (an email) beside it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActorName {
    pub name: String,
    /// The recorded label (an email), shown muted, when it says more than the name.
    pub label: Option<String>,
}

/// The names of the people behind a page of events, looked up in one query per kind of
/// actor (users of the organization, staff) whatever the number of events.
pub struct ActorNames {
    users: HashMap<i64, String>,
    staff: HashMap<i64, String>,
}

/// The names of the actors of `events` (see [`ActorNames`]). Users are looked up only within
/// `organization_id`: an event never names someone of another organization (and none at all
/// for events outside any organization, a service provider's).
pub fn actor_names(
    conn: &mut PgConnection,
    organization_id: Option<i64>,
    events: &[AuditEvent],
) -> QueryResult<ActorNames> {
    let ids_of = |kind: &str| -> Vec<i64> {
        let mut ids: Vec<i64> = events.iter().filter(|e| e.actor_type == kind).filter_map(|e| e.actor_id).collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    };
    // Both look-ups run whenever there are events, whoever their actors: a page's query
    // count then depends on its kind, not on its rows (tests/app/scale.rs holds pages to it).
    if events.is_empty() {
        return Ok(ActorNames { users: HashMap::new(), staff: HashMap::new() });
    }
    let users = match organization_id {
        Some(organization_id) => User::names_in_org(conn, organization_id, &ids_of("user"))?,
        None => HashMap::new(),
    };
    let staff = StaffAccount::names_by_id(conn, &ids_of("staff"))?;
    Ok(ActorNames { users, staff })
}

impl ActorNames {
    /// The actor of `e`.
    pub fn of(&self, e: &AuditEvent) -> ActorName {
        let known = match (e.actor_type.as_str(), e.actor_id) {
            ("user", Some(id)) => self.users.get(&id),
            ("staff", Some(id)) => self.staff.get(&id),
            _ => None,
        };
        match known.filter(|name| !name.trim().is_empty()) {
            Some(name) => ActorName {
                name: name.clone(),
                label: Some(e.actor_label.clone()).filter(|l| !l.is_empty() && l != name),
            },
            None => ActorName { name: actor_of(e), label: None },
        }
    }
}

fn actor_of(e: &AuditEvent) -> String {
    match (e.actor_type.as_str(), e.actor_label.is_empty()) {
        (_, false) if e.actor_type == "key" => format!("key \"{}\"", e.actor_label),
        (_, false) => e.actor_label.clone(),
        ("anonymous", true) => "anonymous".into(),
        (kind, true) => kind.into(),
    }
}
