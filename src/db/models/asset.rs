//! Assets and asset groups of an organization.

use chrono::{DateTime, Utc};
use diesel::prelude::*;

use std::collections::HashMap;

use crate::db::schema::{api_key_asset_groups, api_key_assets, api_keys, asset_group_members, asset_groups, assets};

#[derive(Debug, Clone, Queryable, Selectable, Identifiable)]
#[diesel(table_name = assets)]
pub struct Asset {
    pub id: i64,
    pub organization_id: i64,
    pub code: String,
    pub name: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Queryable, Selectable, Identifiable)]
#[diesel(table_name = asset_groups)]
pub struct AssetGroup {
    pub id: i64,
    pub organization_id: i64,
    pub name: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Asset {
    pub fn insert(conn: &mut PgConnection, organization_id: i64, code: &str, name: &str) -> QueryResult<Asset> {
        diesel::insert_into(assets::table)
            .values((assets::organization_id.eq(organization_id), assets::code.eq(code), assets::name.eq(name)))
            .returning(Asset::as_returning())
            .get_result(conn)
    }

    pub fn find_in_org(conn: &mut PgConnection, organization_id: i64, id: i64) -> QueryResult<Asset> {
        assets::table
            .filter(assets::organization_id.eq(organization_id))
            .filter(assets::id.eq(id))
            .select(Asset::as_select())
            .first(conn)
    }

    pub fn rename(conn: &mut PgConnection, id: i64, name: &str) -> QueryResult<Asset> {
        diesel::update(assets::table.find(id))
            .set((assets::name.eq(name), assets::updated_at.eq(diesel::dsl::now)))
            .returning(Asset::as_returning())
            .get_result(conn)
    }

    pub fn delete(conn: &mut PgConnection, id: i64) -> QueryResult<()> {
        diesel::delete(assets::table.find(id)).execute(conn).map(|_| ())
    }

    /// Public ids of the keys limited to this asset directly.
    pub fn keys_limited_to(conn: &mut PgConnection, id: i64) -> QueryResult<Vec<String>> {
        api_key_assets::table
            .inner_join(api_keys::table.on(api_keys::id.eq(api_key_assets::api_key_id)))
            .filter(api_key_assets::asset_id.eq(id))
            .select(api_keys::public_id)
            .load(conn)
    }

    /// `asset id → group names` of an organization, in one query.
    pub fn group_names(conn: &mut PgConnection, organization_id: i64) -> QueryResult<HashMap<i64, Vec<String>>> {
        let rows: Vec<(i64, String)> = asset_group_members::table
            .inner_join(asset_groups::table.on(asset_groups::id.eq(asset_group_members::asset_group_id)))
            .filter(asset_group_members::organization_id.eq(organization_id))
            .order(asset_groups::name.asc())
            .select((asset_group_members::asset_id, asset_groups::name))
            .load(conn)?;
        let mut map: HashMap<i64, Vec<String>> = HashMap::new();
        for (asset, group) in rows {
            map.entry(asset).or_default().push(group);
        }
        Ok(map)
    }

    pub fn list_for_org(conn: &mut PgConnection, organization_id: i64) -> QueryResult<Vec<Asset>> {
        assets::table
            .filter(assets::organization_id.eq(organization_id))
            .order(assets::code.asc())
            .select(Asset::as_select())
            .load(conn)
    }
}

/// Keeps only the ids that belong to `organization_id` (form input is never trusted).
pub fn asset_ids_in_org(conn: &mut PgConnection, organization_id: i64, ids: &[i64]) -> QueryResult<Vec<i64>> {
    assets::table
        .filter(assets::organization_id.eq(organization_id))
        .filter(assets::id.eq_any(ids))
        .select(assets::id)
        .load(conn)
}

/// Keeps only the group ids that belong to `organization_id`.
pub fn group_ids_in_org(conn: &mut PgConnection, organization_id: i64, ids: &[i64]) -> QueryResult<Vec<i64>> {
    asset_groups::table
        .filter(asset_groups::organization_id.eq(organization_id))
        .filter(asset_groups::id.eq_any(ids))
        .select(asset_groups::id)
        .load(conn)
}

impl AssetGroup {
    /// Creates a group holding `asset_ids` (which must belong to the same organization).
    pub fn insert(
        conn: &mut PgConnection,
        organization_id: i64,
        name: &str,
        asset_ids: &[i64],
    ) -> QueryResult<AssetGroup> {
        let group: AssetGroup = diesel::insert_into(asset_groups::table)
            .values((asset_groups::organization_id.eq(organization_id), asset_groups::name.eq(name)))
            .returning(AssetGroup::as_returning())
            .get_result(conn)?;
        let members: Vec<_> = asset_ids
            .iter()
            .map(|asset_id| {
                (
                    asset_group_members::organization_id.eq(organization_id),
                    asset_group_members::asset_group_id.eq(group.id),
                    asset_group_members::asset_id.eq(*asset_id),
                )
            })
            .collect();
        diesel::insert_into(asset_group_members::table).values(&members).execute(conn)?;
        Ok(group)
    }

    pub fn find_in_org(conn: &mut PgConnection, organization_id: i64, id: i64) -> QueryResult<AssetGroup> {
        asset_groups::table
            .filter(asset_groups::organization_id.eq(organization_id))
            .filter(asset_groups::id.eq(id))
            .select(AssetGroup::as_select())
            .first(conn)
    }

    pub fn rename(conn: &mut PgConnection, id: i64, name: &str) -> QueryResult<AssetGroup> {
        diesel::update(asset_groups::table.find(id))
            .set((asset_groups::name.eq(name), asset_groups::updated_at.eq(diesel::dsl::now)))
            .returning(AssetGroup::as_returning())
            .get_result(conn)
    }

    pub fn delete(conn: &mut PgConnection, id: i64) -> QueryResult<()> {
        diesel::delete(asset_groups::table.find(id)).execute(conn).map(|_| ())
    }

    /// Ids of the groups asset `asset_id` belongs to.
    pub fn ids_of_asset(conn: &mut PgConnection, asset_id: i64) -> QueryResult<Vec<i64>> {
        asset_group_members::table
            .filter(asset_group_members::asset_id.eq(asset_id))
            .select(asset_group_members::asset_group_id)
            .load(conn)
    }

    /// Ids of the group's member assets.
    pub fn member_ids(conn: &mut PgConnection, id: i64) -> QueryResult<Vec<i64>> {
        asset_group_members::table
            .filter(asset_group_members::asset_group_id.eq(id))
            .select(asset_group_members::asset_id)
            .load(conn)
    }

    /// Replaces the members of group `id` (assets of `organization_id` only, which the foreign keys enforce).
    pub fn set_members(conn: &mut PgConnection, organization_id: i64, id: i64, asset_ids: &[i64]) -> QueryResult<()> {
        diesel::delete(asset_group_members::table.filter(asset_group_members::asset_group_id.eq(id))).execute(conn)?;
        let rows: Vec<_> = asset_ids
            .iter()
            .map(|asset| {
                (
                    asset_group_members::organization_id.eq(organization_id),
                    asset_group_members::asset_group_id.eq(id),
                    asset_group_members::asset_id.eq(*asset),
                )
            })
            .collect();
        diesel::insert_into(asset_group_members::table).values(&rows).execute(conn).map(|_| ())
    }

    /// Replaces the groups asset `asset_id` belongs to.
    pub fn set_groups_of_asset(
        conn: &mut PgConnection,
        organization_id: i64,
        asset_id: i64,
        group_ids: &[i64],
    ) -> QueryResult<()> {
        diesel::delete(asset_group_members::table.filter(asset_group_members::asset_id.eq(asset_id))).execute(conn)?;
        let rows: Vec<_> = group_ids
            .iter()
            .map(|group| {
                (
                    asset_group_members::organization_id.eq(organization_id),
                    asset_group_members::asset_group_id.eq(*group),
                    asset_group_members::asset_id.eq(asset_id),
                )
            })
            .collect();
        diesel::insert_into(asset_group_members::table).values(&rows).execute(conn).map(|_| ())
    }

    /// `group id → member count` of an organization.
    pub fn member_counts(conn: &mut PgConnection, organization_id: i64) -> QueryResult<HashMap<i64, i64>> {
        let rows: Vec<(i64, i64)> = asset_group_members::table
            .filter(asset_group_members::organization_id.eq(organization_id))
            .group_by(asset_group_members::asset_group_id)
            .select((asset_group_members::asset_group_id, diesel::dsl::count_star()))
            .load(conn)?;
        Ok(rows.into_iter().collect())
    }

    /// Public ids of the keys limited to this group.
    pub fn keys_limited_to(conn: &mut PgConnection, id: i64) -> QueryResult<Vec<String>> {
        api_key_asset_groups::table
            .inner_join(api_keys::table.on(api_keys::id.eq(api_key_asset_groups::api_key_id)))
            .filter(api_key_asset_groups::asset_group_id.eq(id))
            .select(api_keys::public_id)
            .load(conn)
    }

    pub fn list_for_org(conn: &mut PgConnection, organization_id: i64) -> QueryResult<Vec<AssetGroup>> {
        asset_groups::table
            .filter(asset_groups::organization_id.eq(organization_id))
            .order(asset_groups::name.asc())
            .select(AssetGroup::as_select())
            .load(conn)
    }
}
