//! What the key pages show: table rows and the detail page, built from a page of keys with
//! one query per related table (never one per row).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use diesel::PgConnection;

use crate::{
    db::models::{
        ApiKey, AuditEvent, ServiceProvider, StaffAccount, User,
        api_key::{EXPIRING_SOON_DAYS, KeyOwner},
    },
    error::AppError,
    keys::standing::OwnerBlock,
    services::{
        Actor,
        keys::{ceiling::Issue, lifecycle},
    },
    views::{
        actors::{ActorName, actor_names},
        time::Stamp,
    },
};

/// One key as a table row (and the top of its detail page).
#[derive(Debug, Clone)]
pub struct KeyRow {
    pub public_id: String,
    pub name: String,
    pub masked: String,
    pub comment: String,
    pub environment: String,
    pub owner: String,
    pub proxy: Option<String>,
    pub actions: Vec<String>,
    pub all_actions: bool,
    pub assets: Vec<String>,
    pub all_assets: bool,
    /// Whether assets mean anything for this key (not for a service provider's keys).
    pub scoped_to_assets: bool,
    pub allowed_ips: Vec<String>,
    pub created: Stamp,
    pub created_by: String,
    pub last_used: Option<Stamp>,
    pub last_used_ip: Option<String>,
    pub active: bool,
    pub expired: bool,
    /// What stops this personal key although it is active (its owner's state).
    pub owner_block: Option<OwnerBlock>,
    pub expiring_soon: bool,
    pub expires: Option<Stamp>,
    pub rotating: bool,
    pub grace_ends: Option<Stamp>,
    pub href: String,
}

impl KeyRow {
    /// "Active", "Inactive", "Expired" or "Disabled" (by its owner's state): the effective
    /// state, checked in the verifier's order, so the page says what verification answers.
    pub fn state(&self) -> &'static str {
        if !self.active {
            "Inactive"
        } else if self.expired {
            "Expired"
        } else if self.owner_block.is_some() {
            "Disabled"
        } else {
            "Active"
        }
    }

    /// Why the key is disabled although it is active, if it is.
    pub fn state_reason(&self) -> Option<&'static str> {
        if self.active && !self.expired { self.owner_block.map(OwnerBlock::reason) } else { None }
    }

    pub fn state_class(&self) -> &'static str {
        match self.state() {
            "Active" => "badge badge-ok",
            "Expired" => "badge badge-warn",
            _ => "badge badge-off",
        }
    }
}

/// Builds the rows of `keys` (one query per related table).
/// The rows of `keys`, their states and times as of `now` (the application's clock).
pub fn rows(conn: &mut PgConnection, keys: &[ApiKey], base: &str, now: DateTime<Utc>) -> Result<Vec<KeyRow>, AppError> {
    let ids: Vec<i64> = keys.iter().map(|k| k.id).collect();
    let mut actions = ApiKey::actions_of(conn, &ids)?;
    let mut assets = ApiKey::assets_of(conn, &ids)?;
    let mut groups = ApiKey::groups_of(conn, &ids)?;
    let user_ids: Vec<i64> =
        keys.iter().flat_map(|k| [k.owner_user_id, k.proxy_user_id, k.created_by_user_id]).flatten().collect();
    let users = User::names_by_id(conn, &user_ids)?;
    let owner_ids: Vec<i64> = keys.iter().filter_map(|k| k.owner_user_id).collect();
    let owner_blocks = User::owner_blocks(conn, &owner_ids)?;
    let staff_ids: Vec<i64> = keys.iter().filter_map(|k| k.created_by_staff_id).collect();
    let staff = StaffAccount::names_by_id(conn, &staff_ids)?;
    let provider_ids: Vec<i64> = keys.iter().filter_map(|k| k.owner_service_provider_id).collect();
    let providers =
        if provider_ids.is_empty() { HashMap::new() } else { ServiceProvider::names_by_id(conn, &provider_ids)? };
    let name = |users: &HashMap<i64, (String, String)>, id: i64| {
        users.get(&id).map(|(n, _)| n.clone()).unwrap_or_else(|| "(unknown)".into())
    };
    Ok(keys
        .iter()
        .map(|key| {
            let mut asset_labels: Vec<String> = assets
                .remove(&key.id)
                .unwrap_or_default()
                .into_iter()
                .map(|(_, code, name)| format!("{code} ({name})"))
                .collect();
            asset_labels.extend(
                groups.remove(&key.id).unwrap_or_default().into_iter().map(|(_, name)| format!("Group: {name}")),
            );
            let owner = match key.owner() {
                KeyOwner::User(id) => name(&users, id),
                KeyOwner::Organization(_) => "Organization".into(),
                KeyOwner::ServiceProvider(id) => {
                    providers.get(&id).cloned().unwrap_or_else(|| "Service provider".into())
                }
            };
            let created_by = match (key.created_by_user_id, key.created_by_staff_id) {
                (Some(id), _) => name(&users, id),
                (_, Some(id)) => staff.get(&id).map(|n| format!("{n} (support)")).unwrap_or_else(|| "(support)".into()),
                _ => "Operator".into(),
            };
            let rotating = key.is_rotating_at(now);
            KeyRow {
                public_id: key.public_id.clone(),
                name: key.name.clone(),
                masked: key.masked(),
                comment: key.comment.clone(),
                environment: key.environment.clone(),
                owner,
                proxy: key.proxy_user_id.map(|id| name(&users, id)),
                actions: actions.remove(&key.id).unwrap_or_default(),
                all_actions: key.all_actions,
                assets: asset_labels,
                all_assets: key.all_assets,
                scoped_to_assets: key.owner_service_provider_id.is_none(),
                allowed_ips: key.cidrs().iter().map(|c| c.to_string()).collect(),
                created: Stamp::relative_to(key.created_at, now),
                created_by,
                last_used: Stamp::maybe_relative_to(key.last_used_at, now),
                last_used_ip: key.last_used_ip.map(|ip| ip.ip().to_string()),
                active: key.active,
                expired: key.is_expired_at(now),
                owner_block: key.owner_user_id.and_then(|id| owner_blocks.get(&id).copied()),
                expiring_soon: key.expires_within(now, EXPIRING_SOON_DAYS),
                expires: Stamp::maybe_relative_to(key.expires_at, now),
                rotating,
                grace_ends: if rotating { Stamp::maybe_relative_to(key.previous_secret_expires_at, now) } else { None },
                href: format!("{base}/{}", key.public_id),
            }
        })
        .collect())
}

/// One line of a key's history.
#[derive(Debug, Clone)]
pub struct HistoryRow {
    pub at: Stamp,
    pub actor: ActorName,
    pub action: String,
    pub result: String,
    /// The reason recorded with the change (a deactivation's, say), if any.
    pub note: Option<String>,
}

/// The detail page's extra facts.
#[derive(Debug, Clone)]
pub struct KeyDetail {
    pub row: KeyRow,
    pub previous_last4: Option<String>,
    pub previous_last_used: Option<Stamp>,
    /// The old secret was used in the last 15 minutes of its grace period.
    pub previous_in_use: bool,
    pub rekeyed: Option<Stamp>,
    pub deactivated: Option<Stamp>,
    pub deactivation_reason: Option<String>,
    /// Deactivated because its secret leaked, and not re-keyed since: re-key before reactivating.
    pub leaked: bool,
    /// Whether the viewer may re-key it, or reactivate it (the ceiling rule).
    pub may_rekey: bool,
    pub may_reactivate: bool,
    pub history: Vec<HistoryRow>,
}

pub fn detail(conn: &mut PgConnection, actor: &Actor, key: &ApiKey, base: &str) -> Result<KeyDetail, AppError> {
    let row = rows(conn, std::slice::from_ref(key), base, actor.now)?.remove(0);
    let events = AuditEvent::list_for_target(
        conn,
        key.organization_id,
        key.owner_service_provider_id,
        "api_key",
        &key.public_id,
        20,
    )?;
    // People by their names, as on the rest of the page; the label (an email) stays on hover.
    let names = actor_names(conn, key.organization_id, &events)?;
    let history = events
        .iter()
        .map(|e| HistoryRow {
            at: Stamp::relative_to(e.occurred_at, actor.now),
            actor: names.of(e),
            action: e.action.clone(),
            result: e.result.clone(),
            note: e.details.get("reason").and_then(|r| r.as_str()).map(str::to_string),
        })
        .collect();
    let now = actor.now;
    let rotating = key.is_rotating_at(now);
    Ok(KeyDetail {
        previous_last4: if rotating { key.previous_secret_last4.clone() } else { None },
        previous_last_used: if rotating {
            Stamp::maybe_relative_to(key.previous_secret_last_used_at, now)
        } else {
            None
        },
        previous_in_use: rotating
            && key.previous_secret_last_used_at.is_some_and(|at| now - at < chrono::Duration::minutes(15)),
        rekeyed: Stamp::maybe_relative_to(key.rekeyed_at, now),
        deactivated: if key.active { None } else { Stamp::maybe_relative_to(key.deactivated_at, now) },
        deactivation_reason: if key.active { None } else { key.deactivation_reason.clone() },
        leaked: lifecycle::is_leaked(key),
        may_rekey: lifecycle::may_issue(conn, actor, key, Issue::Rekey)?,
        may_reactivate: key.active || lifecycle::may_issue(conn, actor, key, Issue::Reactivate)?,
        history,
        row,
    })
}
