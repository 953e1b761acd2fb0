//! Set-based bulk data for scale points (the page benchmark's 100,000 and 1,000,000 keys, and
//! the plan test): users, keys and their audit trail made by `INSERT … SELECT` over
//! `generate_series` inside PostgreSQL, so a million keys take a minute, not an hour of
//! round trips. [`super::demo_volume`] makes fewer, more varied rows (real secrets, key action
//! lists) and stays the loader behind `keyward seed-demo`.
//!
//! The names are built so that the page benchmark's search terms match a known share of the
//! rows (see [`TERMS`]). The keys' secret hashes are digests of nothing anybody holds: these
//! keys list, search and page like real ones but never verify.

use diesel::{
    Connection, PgConnection, RunQueryDsl,
    sql_types::{BigInt, Text},
};

use crate::{error::AppError, services::audit::AuditAction};

/// Search terms and the share of the bulk rows each matches, for the keys (`name`) and users
/// (`display_name`, `email`) lists.
pub const TERMS: Terms = Terms {
    keys: [("zzqx", "none"), ("tachograph", "0.1 %"), ("export", "5 %"), ("sync", "50 %")],
    users: [("zzqx", "none"), ("ximena quispe", "0.15 %"), ("ximena", "4 %"), ("field", "50 %")],
};

/// See [`TERMS`]: `(term, share of rows it matches)`.
#[derive(Debug, Clone, Copy)]
pub struct Terms {
    pub keys: [(&'static str, &'static str); 4],
    pub users: [(&'static str, &'static str); 4],
}

/// Adds `users` users and `keys` keys (three in four personal, the rest organization keys) to
/// organization `organization_id`, with one audit event each, in one transaction.
pub fn fill(conn: &mut PgConnection, organization_id: i64, users: i64, keys: i64) -> Result<(), AppError> {
    conn.transaction(|conn| {
        // The new keys were never looked up, so no cache holds them: the per-row
        // notification trigger (and the foreign-key triggers, whose references hold by
        // construction) would only slow a million inserts down. Only a superuser may skip
        // them; anyone else pays for them.
        #[derive(diesel::QueryableByName)]
        struct Super {
            #[diesel(sql_type = diesel::sql_types::Bool)]
            rolsuper: bool,
        }
        let superuser = diesel::sql_query("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
            .get_result::<Super>(conn)?
            .rolsuper;
        if superuser {
            diesel::sql_query("SET LOCAL session_replication_role = replica").execute(conn)?;
        }
        // A tag per run keeps emails unique when an organization is filled twice.
        let run = crate::secrets::random_token(3).to_lowercase();
        let max_id =
            |table: &str| diesel::select(diesel::dsl::sql::<BigInt>(&format!("coalesce(max(id), 0) FROM {table}")));
        let first_user: i64 = max_id("users").get_result(conn)?;
        diesel::sql_query(USERS)
            .bind::<BigInt, _>(organization_id)
            .bind::<BigInt, _>(users)
            .bind::<Text, _>(&run)
            .execute(conn)?;
        let first_key: i64 = max_id("api_keys").get_result(conn)?;
        diesel::sql_query(KEYS)
            .bind::<BigInt, _>(organization_id)
            .bind::<BigInt, _>(keys)
            .bind::<BigInt, _>(first_key)
            .execute(conn)?;
        diesel::sql_query(KEY_ACTIONS).bind::<BigInt, _>(organization_id).bind::<BigInt, _>(first_key).execute(conn)?;
        diesel::sql_query(AUDIT)
            .bind::<BigInt, _>(organization_id)
            .bind::<BigInt, _>(first_user)
            .bind::<BigInt, _>(first_key)
            .bind::<Text, _>(AuditAction::UserCreate.code())
            .bind::<Text, _>(AuditAction::KeyCreate.code())
            .execute(conn)?;
        Ok(())
    })
}

/// `$1` organization, `$2` how many, `$3` the run's tag. Every other user works in the field
/// (`…@field.<org>.example`); names combine 26 first and 26 last names.
const USERS: &str = "
INSERT INTO users (organization_id, email, display_name, password_hash, api_key_access, active, last_login_at, created_at)
SELECT $1,
       lower(f.name || '.' || l.name) || '.' || $3 || g || '@' || CASE WHEN g % 2 = 0 THEN 'field.' ELSE '' END
           || o.slug || '.example',
       f.name || ' ' || l.name,
       NULL,
       g % 5 < 3,
       g % 20 <> 0,
       CASE WHEN g % 20 <> 0 AND g % 5 <> 1 THEN now() - ((g * 7919) % (90 * 1440)) * interval '1 minute' END,
       now() - ((g * 104729) % (3 * 365 * 1440)) * interval '1 minute'
FROM generate_series(1, $2) AS g
JOIN organizations o ON o.id = $1
JOIN LATERAL (SELECT (ARRAY['Ada','Ben','Chloe','Dmitri','Elena','Farah','Gustav','Hana','Ivan','Jonas','Keiko',
        'Liam','Mia','Noah','Olga','Pablo','Quinn','Rosa','Sven','Tariq','Uma','Viktor','Wen','Ximena','Yusuf',
        'Zoe'])[(1 + g % 26)::int] AS name) f ON true
JOIN LATERAL (SELECT (ARRAY['Andersen','Barros','Costa','Dubois','Eriksen','Fischer','Garcia','Horvat','Ivanova',
        'Jensen','Kowalski','Lindqvist','Moreau','Novak','Okafor','Petrov','Quispe','Rossi','Schmidt','Tanaka','Ueda',
        'Varga','Weber','Xu','Yilmaz','Zhang'])[(1 + (g / 26) % 26)::int] AS name) l ON true";

/// `$1` organization, `$2` how many, `$3` the highest key id before (public ids are derived
/// from it, so they are new). Names: one key in a thousand is a "Tachograph import", one in
/// twenty a "Nightly export", every other a "Fuel card sync", the rest five other names.
const KEYS: &str = "
WITH people AS (
    SELECT array_agg(id ORDER BY id) FILTER (WHERE api_key_access OR is_admin) AS holders,
           array_agg(id ORDER BY id) AS anyone
    FROM users WHERE organization_id = $1
)
INSERT INTO api_keys (public_id, environment, organization_id, owner_user_id, owner_organization_id, name, comment,
                      all_actions, all_assets, expires_at, proxy_user_id, active, secret_hash, secret_last4,
                      created_at, created_by_user_id, deactivated_at, last_used_at)
SELECT 'B' || lpad(to_hex($3 + g), 7, '0'),
       CASE WHEN g % 10 = 0 THEN 'test' ELSE 'live' END,
       $1,
       CASE WHEN personal THEN holder END,
       CASE WHEN personal THEN NULL ELSE $1 END,
       CASE WHEN g % 1000 = 7 THEN 'Tachograph import '
            WHEN g % 20 = 3 THEN 'Nightly export '
            WHEN g % 2 = 0 THEN 'Fuel card sync '
            ELSE (ARRAY['Dispatch board ','Driver app ','Route planner ','Customer portal ','BI dashboard '])[(1 + (g / 2) % 5)::int]
       END || g,
       CASE WHEN g % 10 < 3 THEN 'Seeded for scale testing' ELSE '' END,
       g % 5 < 2,
       true,
       CASE WHEN g % 100 < 5 THEN now() - (1 + g % 200) * interval '1 day'
            WHEN g % 100 < 10 THEN now() + (1 + g % 29) * interval '1 day'
            ELSE created + (60 + g % 670) * interval '1 day' END,
       CASE WHEN personal THEN NULL ELSE anyone[(1 + (g * 7919) % cardinality(anyone))::int] END,
       g % 25 <> 0,
       sha256(convert_to('bulk key ' || ($3 + g), 'UTF8')),
       lpad(to_hex(g % 65536), 4, '0'),
       created,
       CASE WHEN personal THEN holder END,
       CASE WHEN g % 25 = 0 THEN greatest(created, now() - interval '10 days') END,
       CASE WHEN g % 5 < 3 THEN now() - ((g * 15485863) % (30 * 1440)) * interval '1 minute' END
FROM people, generate_series(1, $2) AS g,
LATERAL (SELECT g % 4 <> 0 AND cardinality(holders) > 0 AS personal,
                holders[(1 + (g * 2654435761) % greatest(cardinality(holders), 1))::int] AS holder,
                now() - ((g * 104729) % (365 * 1440)) * interval '1 minute' AS created) AS k";

/// `$1` organization, `$2` the highest key id before: keys limited to actions get one.
const KEY_ACTIONS: &str = "
WITH catalog AS (SELECT array_agg(id ORDER BY id) AS ids FROM api_actions WHERE retired_at IS NULL)
INSERT INTO api_key_actions (api_key_id, api_action_id)
SELECT k.id, catalog.ids[(1 + k.id % cardinality(catalog.ids))::int]
FROM api_keys k, catalog
WHERE k.organization_id = $1 AND k.id > $2 AND NOT k.all_actions AND cardinality(catalog.ids) > 0";

/// `$1` organization, `$2` and `$3` the highest user and key ids before, `$4` and `$5` the
/// actions: a creation event for each added user and key.
const AUDIT: &str = "
INSERT INTO audit_events (occurred_at, organization_id, actor_type, actor_label, action, target_type, target_id,
                          target_label, result)
SELECT created_at, $1, 'system', 'seed-demo', $4, 'user', id::text, email, 'success'
FROM users WHERE organization_id = $1 AND id > $2
UNION ALL
SELECT created_at, $1, 'system', 'seed-demo', $5, 'api_key', public_id, name, 'success'
FROM api_keys WHERE organization_id = $1 AND id > $3";

/// Adds `count` organizations (`bulk-1`, `bulk-2`, …) with `users` users and `keys` keys each,
/// for the platform scale point (a million keys across a hundred organizations). Each is
/// filled in its own transaction, so memory and locks stay those of one organization.
pub fn add_organizations(conn: &mut PgConnection, count: i64, users: i64, keys: i64) -> Result<Vec<i64>, AppError> {
    #[derive(diesel::QueryableByName)]
    struct Created {
        #[diesel(sql_type = BigInt)]
        id: i64,
    }
    let created: Vec<Created> = diesel::sql_query(
        "INSERT INTO organizations (slug, name)
         SELECT 'bulk-' || (n + g), 'Bulk ' || (n + g)
         FROM generate_series(1, $1) AS g,
              (SELECT count(*) AS n FROM organizations WHERE slug LIKE 'bulk-%') AS existing
         RETURNING id",
    )
    .bind::<BigInt, _>(count)
    .get_results(conn)?;
    for organization in &created {
        fill(conn, organization.id, users, keys)?;
    }
    Ok(created.into_iter().map(|c| c.id).collect())
}
