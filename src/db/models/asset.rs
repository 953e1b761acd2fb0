//! Assets and asset groups of an organization.

use chrono::{DateTime, Utc};
use diesel::prelude::*;

use crate::db::schema::{asset_group_members, asset_groups, assets};

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

    pub fn list_for_org(conn: &mut PgConnection, organization_id: i64) -> QueryResult<Vec<AssetGroup>> {
        asset_groups::table
            .filter(asset_groups::organization_id.eq(organization_id))
            .order(asset_groups::name.asc())
            .select(AssetGroup::as_select())
            .load(conn)
    }
}
