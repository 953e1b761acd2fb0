//! Loading one key from the database into the form the verifier caches: scopes resolved
//! (asset groups expanded, retired actions dropped), and for personal keys the owner's state
//! and current action ceiling applied.

use std::{collections::BTreeSet, sync::Arc};

use diesel::prelude::*;

use crate::{
    db::{
        models::{ApiKey, User, api_key::KeyOwner, user::ActionCeiling},
        schema::{api_actions, api_key_actions, api_key_asset_groups, api_key_assets, asset_group_members, assets},
    },
    keys::{
        standing::OwnerBlock,
        verifier::{CachedKey, Catalog, Scope},
    },
};

fn active_action_codes(conn: &mut PgConnection, ids: Option<&BTreeSet<i64>>) -> QueryResult<BTreeSet<String>> {
    let mut query = api_actions::table.filter(api_actions::retired_at.is_null()).select(api_actions::code).into_boxed();
    if let Some(ids) = ids {
        query = query.filter(api_actions::id.eq_any(ids.iter().copied().collect::<Vec<_>>()));
    }
    Ok(query.load::<String>(conn)?.into_iter().collect())
}

fn key_action_codes(conn: &mut PgConnection, key_id: i64) -> QueryResult<BTreeSet<String>> {
    Ok(api_key_actions::table
        .inner_join(api_actions::table)
        .filter(api_key_actions::api_key_id.eq(key_id))
        .filter(api_actions::retired_at.is_null())
        .select(api_actions::code)
        .load::<String>(conn)?
        .into_iter()
        .collect())
}

/// Codes of the key's assets and of every member of its asset groups.
fn key_asset_codes(conn: &mut PgConnection, key_id: i64) -> QueryResult<BTreeSet<String>> {
    let direct: Vec<String> = api_key_assets::table
        .inner_join(assets::table.on(assets::id.eq(api_key_assets::asset_id)))
        .filter(api_key_assets::api_key_id.eq(key_id))
        .select(assets::code)
        .load(conn)?;
    let via_groups: Vec<String> = api_key_asset_groups::table
        .inner_join(
            asset_group_members::table.on(asset_group_members::asset_group_id.eq(api_key_asset_groups::asset_group_id)),
        )
        .inner_join(assets::table.on(assets::id.eq(asset_group_members::asset_id)))
        .filter(api_key_asset_groups::api_key_id.eq(key_id))
        .select(assets::code)
        .load(conn)?;
    Ok(direct.into_iter().chain(via_groups).collect())
}

/// The cache record of `public_id` (`None` if there is no such key), and the action catalog
/// if it had to be read (`catalog`, the cached one, was `None`, and an all-actions key needs
/// it, or `want_catalog`: usage counting names the refused actions that are the catalog's).
/// Catalog changes notify `all`, so a cached catalog is as fresh as the keys themselves.
pub fn load(
    conn: &mut PgConnection,
    public_id: &str,
    catalog: Option<Catalog>,
    want_catalog: bool,
) -> QueryResult<(Option<CachedKey>, Option<Catalog>)> {
    let Some(key) = ApiKey::find_presented(conn, public_id)? else {
        return Ok((None, None));
    };
    let mut read_catalog = None;
    if want_catalog && catalog.is_none() && !key.all_actions {
        read_catalog = Some(Arc::new(active_action_codes(conn, None)?));
    }
    let mut actions = if key.all_actions {
        let catalog = match catalog {
            Some(catalog) => catalog,
            None => read_catalog.insert(Arc::new(active_action_codes(conn, None)?)).clone(),
        };
        Scope::Catalog(catalog)
    } else {
        Scope::Only(key_action_codes(conn, key.id)?)
    };
    let assets = if key.all_assets { Scope::All } else { Scope::Only(key_asset_codes(conn, key.id)?) };
    let owner = key.owner();
    let (owner_allowed, attribute_to) = match owner {
        KeyOwner::User(user_id) => {
            // The owner may vanish between the two reads: then so did the key.
            let Some(user) = User::find(conn, user_id).optional()? else { return Ok((None, read_catalog)) };
            let permissions = user.effective_permissions(conn)?;
            // A personal key never does more than its owner may do now.
            if let ActionCeiling::Only(ids) = user.action_ceiling(conn)? {
                let allowed = active_action_codes(conn, Some(&ids))?;
                actions = match actions {
                    Scope::All | Scope::Catalog(_) => Scope::Only(allowed),
                    Scope::Only(codes) => Scope::Only(codes.intersection(&allowed).cloned().collect()),
                };
            }
            (OwnerBlock::of(user.active, permissions).is_none(), Some(user_id))
        }
        // The proxy's own roles and state are ignored: an inactive user may be a proxy.
        KeyOwner::Organization(_) => (true, key.proxy_user_id),
        KeyOwner::ServiceProvider(_) => (true, None),
    };
    let previous = match (&key.previous_secret_hash, key.previous_secret_expires_at) {
        (Some(hash), Some(until)) => Some((hash.clone(), until)),
        _ => None,
    };
    let mut cached = CachedKey {
        id: key.id,
        owner_id: owner.id().to_string(),
        organization_id_text: key.organization_id.map(|id| id.to_string()),
        owner_user_id: key.owner_user_id,
        attribute_to_user_id: attribute_to.map(|id| id.to_string()),
        expires_at_text: key.expires_at.map(|at| at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
        cidrs: key.cidrs(),
        public_id: key.public_id,
        name: key.name,
        environment: key.environment,
        owner,
        organization_id: key.organization_id,
        secret_hash: key.secret_hash,
        previous,
        rekeyed_at: key.rekeyed_at,
        active: key.active,
        expires_at: key.expires_at,
        owner_allowed,
        actions,
        assets,
        answer_fields: String::new(),
    };
    cached.answer_fields = answer_fields(&cached);
    Ok((Some(cached), read_catalog))
}

/// The key's part of a verification answer: `"key_id":…,"expires_at":…` (no braces), in the
/// order of the documented response.
pub fn answer_fields(key: &CachedKey) -> String {
    #[derive(serde::Serialize)]
    struct Owner<'a> {
        #[serde(rename = "type")]
        kind: &'static str,
        id: &'a str,
    }
    #[derive(serde::Serialize)]
    struct AttributeTo<'a> {
        user_id: Option<&'a str>,
        key_name: &'a str,
    }
    #[derive(serde::Serialize)]
    struct Fields<'a> {
        key_id: &'a str,
        name: &'a str,
        environment: &'a str,
        owner: Owner<'a>,
        organization_id: Option<&'a str>,
        attribute_to: AttributeTo<'a>,
        actions: &'a Scope,
        assets: &'a Scope,
        expires_at: Option<&'a str>,
    }
    let object = serde_json::to_string(&Fields {
        key_id: &key.public_id,
        name: &key.name,
        environment: &key.environment,
        owner: Owner { kind: key.owner.kind(), id: &key.owner_id },
        organization_id: key.organization_id_text.as_deref(),
        attribute_to: AttributeTo { user_id: key.attribute_to_user_id.as_deref(), key_name: &key.name },
        actions: &key.actions,
        assets: &key.assets,
        expires_at: key.expires_at_text.as_deref(),
    })
    .expect("serializing plain strings cannot fail");
    object[1..object.len() - 1].to_string()
}
