//! Demo data at volume (`keyward seed-demo --users N --keys M [--org SLUG]`): realistic users,
//! personal and organization keys, and their audit trail, inserted in bulk (multi-row
//! inserts of a few thousand rows) so that 100,000 keys take seconds, not minutes. It exists
//! for scale checks and the page benchmark; the application never runs it by itself.
//!
//! The rows are written directly rather than through the user and key services: those check
//! and audit one change at a time, which is right for people and far too slow here. What the
//! services would guarantee is kept by construction (one owner per key, keys of users with
//! API key access, action lists from the live catalog, an audit event per created row).

use crate::services::audit::AuditAction;
use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Duration, Utc};
use diesel::{Connection, PgConnection, prelude::*};
use ipnetwork::IpNetwork;
use rand::{RngExt, SeedableRng, rngs::StdRng};

use crate::{
    db::{
        models::{ApiAction, Organization, Role},
        schema::{api_key_actions, api_keys, audit_events, user_roles, users},
    },
    error::AppError,
    keys::{Environment, GeneratedKey, KeyHasher},
};

/// Rows per INSERT: well under PostgreSQL's 65,535 bind parameters for the widest table.
const CHUNK: usize = 2_000;

/// How much to add.
#[derive(Debug, Clone, Copy)]
pub struct Volume {
    pub users: usize,
    pub keys: usize,
}

/// What was added.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Added {
    pub users: usize,
    pub keys: usize,
    pub audit_events: usize,
}

#[derive(Insertable)]
#[diesel(table_name = users)]
struct UserRow<'a> {
    organization_id: i64,
    email: String,
    display_name: String,
    password_hash: Option<&'a str>,
    api_key_access: bool,
    active: bool,
    last_login_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
}

#[derive(Insertable)]
#[diesel(table_name = api_keys)]
struct KeyRow {
    public_id: String,
    environment: &'static str,
    organization_id: Option<i64>,
    owner_user_id: Option<i64>,
    owner_organization_id: Option<i64>,
    name: String,
    comment: String,
    all_actions: bool,
    all_assets: bool,
    allowed_cidrs: Vec<Option<IpNetwork>>,
    expires_at: Option<DateTime<Utc>>,
    proxy_user_id: Option<i64>,
    active: bool,
    secret_hash: Vec<u8>,
    secret_last4: String,
    created_at: DateTime<Utc>,
    created_by_user_id: Option<i64>,
    deactivated_at: Option<DateTime<Utc>>,
    last_used_at: Option<DateTime<Utc>>,
}

#[derive(Insertable)]
#[diesel(table_name = audit_events)]
struct AuditRow {
    occurred_at: DateTime<Utc>,
    organization_id: Option<i64>,
    actor_type: &'static str,
    actor_label: &'static str,
    action: &'static str,
    target_type: Option<&'static str>,
    target_id: Option<String>,
    target_label: Option<String>,
    result: &'static str,
    details: serde_json::Value,
}

const FIRST_NAMES: &[&str] = &[
    "Ada", "Ben", "Chloe", "Dmitri", "Elena", "Farah", "Gustav", "Hana", "Ivan", "Jonas", "Keiko", "Liam", "Mia",
    "Noah", "Olga", "Pablo", "Quinn", "Rosa", "Sven", "Tariq", "Uma", "Viktor", "Wen", "Ximena", "Yusuf", "Zoe",
];
const LAST_NAMES: &[&str] = &[
    "Andersen",
    "Barros",
    "Costa",
    "Dubois",
    "Eriksen",
    "Fischer",
    "Garcia",
    "Horvat",
    "Ivanova",
    "Jensen",
    "Kowalski",
    "Lindqvist",
    "Moreau",
    "Novak",
    "Okafor",
    "Petrov",
    "Quispe",
    "Rossi",
    "Schmidt",
    "Tanaka",
    "Ueda",
    "Varga",
    "Weber",
    "Xu",
    "Yilmaz",
    "Zhang",
];
const KEY_NAMES: &[&str] = &[
    "Dispatch board",
    "Nightly export",
    "Fuel card sync",
    "ERP connector",
    "Driver app",
    "Tachograph import",
    "Route planner",
    "Customer portal",
    "Data warehouse",
    "Maintenance alerts",
    "Geofence monitor",
    "Invoice run",
    "Temperature logger",
    "Yard management",
    "BI dashboard",
];

/// Adds `volume` users and keys (and an audit event for each) to `organization`, in one
/// transaction. `seed` makes the data reproducible. `password_hash` is given to every added
/// user (demo data: they sign in with the demo password); without it they cannot sign in
/// until someone sets their password. Keys belong to (or stand behind) any user of the
/// organization, those it had and those added.
pub fn fill(
    conn: &mut PgConnection,
    hasher: &KeyHasher,
    organization: &Organization,
    password_hash: Option<&str>,
    volume: Volume,
    seed: u64,
) -> Result<Added, AppError> {
    let mut rng = StdRng::seed_from_u64(seed);
    let now = Utc::now();
    let days_ago = |rng: &mut StdRng, max: i64| now - Duration::minutes(rng.random_range(0..max * 24 * 60));
    conn.transaction(|conn| {
        // Different on every run, so a second run adds users instead of colliding on emails.
        let run = crate::secrets::random_token(3).to_lowercase();
        let rows: Vec<UserRow> = (0..volume.users)
            .map(|i| {
                let first = FIRST_NAMES[rng.random_range(0..FIRST_NAMES.len())];
                let last = LAST_NAMES[rng.random_range(0..LAST_NAMES.len())];
                let active = rng.random_bool(0.95);
                UserRow {
                    organization_id: organization.id,
                    email: format!(
                        "{}.{}.{run}{i}@{}.example",
                        first.to_lowercase(),
                        last.to_lowercase(),
                        organization.slug
                    ),
                    display_name: format!("{first} {last}"),
                    password_hash,
                    api_key_access: rng.random_bool(0.6),
                    active,
                    last_login_at: (active && rng.random_bool(0.8)).then(|| days_ago(&mut rng, 90)),
                    created_at: days_ago(&mut rng, 3 * 365),
                }
            })
            .collect();
        let mut people: Vec<(i64, bool, String)> = Vec::with_capacity(rows.len());
        for chunk in rows.chunks(CHUNK) {
            people.extend(
                diesel::insert_into(users::table)
                    .values(chunk)
                    .returning((users::id, users::api_key_access, users::email))
                    .get_results::<(i64, bool, String)>(conn)?,
            );
        }
        let mut audit: Vec<AuditRow> = people
            .iter()
            .zip(&rows)
            .map(|((id, _, email), row)| AuditRow {
                occurred_at: row.created_at,
                organization_id: Some(organization.id),
                actor_type: "system",
                actor_label: "seed-demo",
                action: AuditAction::UserCreate.code(),
                target_type: Some("user"),
                target_id: Some(id.to_string()),
                target_label: Some(email.clone()),
                result: "success",
                details: serde_json::json!({}),
            })
            .collect();
        assign_integrator_role(conn, organization.id, &people)?;

        let everyone: Vec<(i64, bool, bool)> = users::table
            .filter(users::organization_id.eq(organization.id))
            .select((users::id, users::api_key_access, users::is_admin))
            .load(conn)?;
        if everyone.is_empty() && volume.keys > 0 {
            return Err(AppError::BadRequest(format!(
                "{} has no users to own keys or stand behind them: add some with --users.",
                organization.slug
            )));
        }
        let holders: Vec<i64> =
            everyone.iter().filter(|(_, access, admin)| *access || *admin).map(|(id, ..)| *id).collect();
        let anyone: Vec<i64> = everyone.iter().map(|(id, ..)| *id).collect();
        let catalog: Vec<i64> = ApiAction::list_active(conn)?.into_iter().map(|a| a.id).collect();
        let mut actions_of: HashMap<String, Vec<i64>> = HashMap::new();
        let mut keys = Vec::with_capacity(volume.keys);
        for i in 0..volume.keys {
            let personal = !holders.is_empty() && rng.random_bool(0.75);
            let owner = personal.then(|| holders[rng.random_range(0..holders.len())]);
            let proxy = (!personal && !anyone.is_empty()).then(|| anyone[rng.random_range(0..anyone.len())]);
            let environment = if rng.random_bool(0.9) { Environment::Live } else { Environment::Test };
            let generated = GeneratedKey::generate(environment);
            let all_actions = catalog.is_empty() || rng.random_bool(0.4);
            if !all_actions {
                let mut chosen: Vec<i64> = (0..rng.random_range(1..=3.min(catalog.len())))
                    .map(|_| catalog[rng.random_range(0..catalog.len())])
                    .collect();
                chosen.sort_unstable();
                chosen.dedup();
                actions_of.insert(generated.public_id.clone(), chosen);
            }
            let created_at = days_ago(&mut rng, 365);
            let expires_at = match rng.random_range(0..100) {
                0..5 => Some(now - Duration::days(rng.random_range(1..200))),
                5..10 => Some(now + Duration::days(rng.random_range(1..30))),
                _ => Some(created_at + Duration::days(rng.random_range(60..730))),
            };
            let active = rng.random_bool(0.92);
            keys.push(KeyRow {
                public_id: generated.public_id.clone(),
                environment: environment.code(),
                organization_id: Some(organization.id),
                owner_user_id: owner,
                owner_organization_id: (!personal).then_some(organization.id),
                name: format!("{} {}", KEY_NAMES[rng.random_range(0..KEY_NAMES.len())], i + 1),
                comment: if rng.random_bool(0.3) { "Seeded for scale testing".into() } else { String::new() },
                all_actions,
                all_assets: true,
                allowed_cidrs: if rng.random_bool(0.1) {
                    vec![Some(format!("203.0.113.{}/32", rng.random_range(1..255)).parse().expect("a valid network"))]
                } else {
                    Vec::new()
                },
                expires_at,
                proxy_user_id: proxy,
                active,
                secret_hash: hasher.hash(generated.expose()).to_vec(),
                secret_last4: generated.last4(),
                created_at,
                created_by_user_id: owner,
                deactivated_at: (!active).then(|| created_at.max(now - Duration::days(10))),
                last_used_at: rng.random_bool(0.6).then(|| days_ago(&mut rng, 30)),
            });
        }
        let mut created = HashSet::with_capacity(keys.len());
        for chunk in keys.chunks(CHUNK) {
            // A public id seen before (one chance in billions) is skipped, not an error.
            let inserted: Vec<(i64, String)> = diesel::insert_into(api_keys::table)
                .values(chunk)
                .on_conflict_do_nothing()
                .returning((api_keys::id, api_keys::public_id))
                .get_results(conn)?;
            let links: Vec<_> = inserted
                .iter()
                .flat_map(|(id, public_id)| {
                    actions_of.get(public_id).into_iter().flatten().map(move |action| {
                        (api_key_actions::api_key_id.eq(*id), api_key_actions::api_action_id.eq(*action))
                    })
                })
                .collect();
            for links in links.chunks(CHUNK * 4) {
                diesel::insert_into(api_key_actions::table).values(links).execute(conn)?;
            }
            created.extend(inserted.into_iter().map(|(_, public_id)| public_id));
        }
        audit.extend(keys.iter().filter(|key| created.contains(&key.public_id)).map(|key| AuditRow {
            occurred_at: key.created_at,
            organization_id: Some(organization.id),
            actor_type: "system",
            actor_label: "seed-demo",
            action: AuditAction::KeyCreate.code(),
            target_type: Some("api_key"),
            target_id: Some(key.public_id.clone()),
            target_label: Some(key.name.clone()),
            result: "success",
            details: serde_json::json!({}),
        }));
        for chunk in audit.chunks(CHUNK) {
            diesel::insert_into(audit_events::table).values(chunk).execute(conn)?;
        }
        Ok(Added { users: people.len(), keys: created.len(), audit_events: audit.len() })
    })
}

/// Users with API key access get the organization's "Integrators" role (if it has one), so
/// their personal keys carry actions as in real use.
fn assign_integrator_role(
    conn: &mut PgConnection,
    organization_id: i64,
    people: &[(i64, bool, String)],
) -> Result<(), AppError> {
    let Some(role) = Role::list_for_org(conn, organization_id)?.into_iter().find(|r| r.name == "Integrators") else {
        return Ok(());
    };
    let rows: Vec<_> = people
        .iter()
        .filter(|(_, access, _)| *access)
        .map(|(id, ..)| {
            (
                user_roles::organization_id.eq(organization_id),
                user_roles::user_id.eq(*id),
                user_roles::role_id.eq(role.id),
            )
        })
        .collect();
    for chunk in rows.chunks(CHUNK * 4) {
        diesel::insert_into(user_roles::table).values(chunk).execute(conn)?;
    }
    Ok(())
}
