//! Stale keys (SPEC §6b): the organization policy "deactivate keys unused for N days", applied
//! by the `stale-keys` background job (see `crate::jobs`). Deactivation is the ordinary
//! inactive state with a reason, never deletion, so an administrator can look at the key and
//! reactivate it; a reactivated key counts from its reactivation.

use chrono::{DateTime, Duration, Utc};
use diesel::{PgConnection, prelude::*};
use serde_json::json;

use crate::{
    db::{
        models::{ApiKey, Organization},
        schema::organizations,
    },
    error::AppError,
    services::{
        actor::Actor,
        audit::{self, AuditAction, Entry, Target},
        notifications::{self, Deactivation},
    },
};

/// The fewest and most days the policy may be set to. At least a week: last use is recorded
/// in batches, and integrations that run weekly are common.
pub const POLICY_DAYS: std::ops::RangeInclusive<i32> = 7..=3650;

/// The reason a key deactivated by the policy shows on its page and in the audit log.
pub fn reason(days: i32) -> String {
    format!("Not used for {days} days: deactivated by the organization's key policy")
}

/// Applies every organization's stale-key policy at `now`: deactivates each active,
/// unexpired key not used (nor created, nor reactivated) within the policy's days, and audits
/// each deactivation with its reason in the same transaction. Idempotent: a second run finds
/// those keys inactive and does nothing. Returns one line for the job's log.
pub fn deactivate_stale(conn: &mut PgConnection, now: DateTime<Utc>) -> Result<String, AppError> {
    let with_policy: Vec<Organization> = organizations::table
        .filter(organizations::deactivate_unused_after_days.is_not_null())
        .order(organizations::id.asc())
        .select(Organization::as_select())
        .load(conn)?;
    let actor = Actor::system("run-jobs").at(now);
    let mut deactivated = 0;
    for organization in &with_policy {
        let Some(days) = organization.deactivate_unused_after_days else { continue };
        let cutoff = now - Duration::days(i64::from(days));
        let why = reason(days);
        for key in ApiKey::deactivate_unused(conn, organization.id, cutoff, now, &why)? {
            audit::record(
                conn,
                &actor,
                Entry::new(AuditAction::KeyDeactivate)
                    .organization(key.organization_id)
                    .target(Target::new("api_key", &key.public_id, &key.name))
                    .details(json!({
                        "reason": why,
                        "policy": { "deactivate_unused_after_days": days },
                        "last_used_at": key.last_used_at,
                        "created_at": key.created_at,
                    })),
            )?;
            notifications::emit_deactivated(conn, &actor, &key, Deactivation::StalePolicy, Some(&why))?;
            deactivated += 1;
        }
    }
    Ok(format!("deactivated {deactivated} stale key(s) in {} organization(s) with the policy", with_policy.len()))
}
