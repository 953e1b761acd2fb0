//! Custom roles of an organization and their permissions.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use diesel::prelude::*;

use crate::{
    db::schema::{role_api_actions, role_permissions, roles, user_roles},
    domain::Permission,
};

#[derive(Debug, Clone, Queryable, Selectable, Identifiable)]
#[diesel(table_name = roles)]
pub struct Role {
    pub id: i64,
    pub organization_id: i64,
    pub name: String,
    pub description: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Holders may put any API action on keys.
    pub all_api_actions: bool,
}

impl Role {
    /// Creates a role with its permissions.
    pub fn insert(
        conn: &mut PgConnection,
        organization_id: i64,
        name: &str,
        description: &str,
        permissions: &[Permission],
    ) -> QueryResult<Role> {
        let role: Role = diesel::insert_into(roles::table)
            .values((
                roles::organization_id.eq(organization_id),
                roles::name.eq(name),
                roles::description.eq(description),
            ))
            .returning(Role::as_returning())
            .get_result(conn)?;
        let rows: Vec<_> = permissions
            .iter()
            .map(|p| (role_permissions::role_id.eq(role.id), role_permissions::permission.eq(p.code())))
            .collect();
        diesel::insert_into(role_permissions::table).values(&rows).execute(conn)?;
        Ok(role)
    }

    /// Lets holders of the role put `api_action_ids` (or, with `all`, any action) on keys.
    pub fn allow_api_actions(
        conn: &mut PgConnection,
        role_id: i64,
        all: bool,
        api_action_ids: &[i64],
    ) -> QueryResult<()> {
        diesel::update(roles::table.find(role_id)).set(roles::all_api_actions.eq(all)).execute(conn)?;
        diesel::delete(role_api_actions::table.filter(role_api_actions::role_id.eq(role_id))).execute(conn)?;
        let rows: Vec<_> = api_action_ids
            .iter()
            .map(|id| (role_api_actions::role_id.eq(role_id), role_api_actions::api_action_id.eq(*id)))
            .collect();
        diesel::insert_into(role_api_actions::table).values(&rows).execute(conn).map(|_| ())
    }

    pub fn list_for_org(conn: &mut PgConnection, organization_id: i64) -> QueryResult<Vec<Role>> {
        roles::table
            .filter(roles::organization_id.eq(organization_id))
            .order(roles::name.asc())
            .select(Role::as_select())
            .load(conn)
    }

    pub fn find_in_org(conn: &mut PgConnection, organization_id: i64, id: i64) -> QueryResult<Role> {
        roles::table
            .filter(roles::organization_id.eq(organization_id))
            .filter(roles::id.eq(id))
            .select(Role::as_select())
            .first(conn)
    }

    /// `user id → role names` for `user_ids`, in one query.
    pub fn names_by_user(conn: &mut PgConnection, user_ids: &[i64]) -> QueryResult<HashMap<i64, Vec<String>>> {
        let rows: Vec<(i64, String)> = user_roles::table
            .inner_join(roles::table.on(roles::id.eq(user_roles::role_id)))
            .filter(user_roles::user_id.eq_any(user_ids))
            .order(roles::name.asc())
            .select((user_roles::user_id, roles::name))
            .load(conn)?;
        let mut map: HashMap<i64, Vec<String>> = HashMap::new();
        for (user, name) in rows {
            map.entry(user).or_default().push(name);
        }
        Ok(map)
    }

    /// The ids of the roles `user_id` holds.
    pub fn ids_of_user(conn: &mut PgConnection, user_id: i64) -> QueryResult<Vec<i64>> {
        user_roles::table.filter(user_roles::user_id.eq(user_id)).select(user_roles::role_id).load(conn)
    }

    /// Replaces the roles of `user_id` (all of `organization_id`, which the foreign keys enforce).
    pub fn set_user_roles(
        conn: &mut PgConnection,
        organization_id: i64,
        user_id: i64,
        role_ids: &[i64],
    ) -> QueryResult<()> {
        diesel::delete(user_roles::table.filter(user_roles::user_id.eq(user_id))).execute(conn)?;
        let rows: Vec<_> = role_ids
            .iter()
            .map(|role_id| {
                (
                    user_roles::organization_id.eq(organization_id),
                    user_roles::role_id.eq(*role_id),
                    user_roles::user_id.eq(user_id),
                )
            })
            .collect();
        diesel::insert_into(user_roles::table).values(&rows).execute(conn).map(|_| ())
    }

    /// Permission codes of each role of an organization, in one query.
    pub fn permissions_by_role(
        conn: &mut PgConnection,
        organization_id: i64,
    ) -> QueryResult<HashMap<i64, Vec<String>>> {
        let rows: Vec<(i64, String)> = role_permissions::table
            .inner_join(roles::table)
            .filter(roles::organization_id.eq(organization_id))
            .select((role_permissions::role_id, role_permissions::permission))
            .load(conn)?;
        let mut map: HashMap<i64, Vec<String>> = HashMap::new();
        for (role, permission) in rows {
            map.entry(role).or_default().push(permission);
        }
        Ok(map)
    }

    /// API action codes each role of an organization allows, in one query.
    pub fn api_actions_by_role(
        conn: &mut PgConnection,
        organization_id: i64,
    ) -> QueryResult<HashMap<i64, Vec<String>>> {
        use crate::db::schema::api_actions;
        let rows: Vec<(i64, String)> = role_api_actions::table
            .inner_join(roles::table)
            .inner_join(api_actions::table)
            .filter(roles::organization_id.eq(organization_id))
            .order(api_actions::code.asc())
            .select((role_api_actions::role_id, api_actions::code))
            .load(conn)?;
        let mut map: HashMap<i64, Vec<String>> = HashMap::new();
        for (role, code) in rows {
            map.entry(role).or_default().push(code);
        }
        Ok(map)
    }

    /// Number of holders of each role of an organization.
    pub fn member_counts(conn: &mut PgConnection, organization_id: i64) -> QueryResult<HashMap<i64, i64>> {
        let rows: Vec<(i64, i64)> = user_roles::table
            .filter(user_roles::organization_id.eq(organization_id))
            .group_by(user_roles::role_id)
            .select((user_roles::role_id, diesel::dsl::count_star()))
            .load(conn)?;
        Ok(rows.into_iter().collect())
    }

    /// Renames a role and replaces its permissions.
    pub fn update(
        conn: &mut PgConnection,
        id: i64,
        name: &str,
        description: &str,
        permissions: &[Permission],
    ) -> QueryResult<Role> {
        let role: Role = diesel::update(roles::table.find(id))
            .set((roles::name.eq(name), roles::description.eq(description), roles::updated_at.eq(diesel::dsl::now)))
            .returning(Role::as_returning())
            .get_result(conn)?;
        diesel::delete(role_permissions::table.filter(role_permissions::role_id.eq(id))).execute(conn)?;
        let rows: Vec<_> = permissions
            .iter()
            .map(|p| (role_permissions::role_id.eq(id), role_permissions::permission.eq(p.code())))
            .collect();
        diesel::insert_into(role_permissions::table).values(&rows).execute(conn)?;
        Ok(role)
    }

    pub fn delete(conn: &mut PgConnection, id: i64) -> QueryResult<()> {
        diesel::delete(roles::table.find(id)).execute(conn).map(|_| ())
    }

    /// Gives `user_id` this role; the composite foreign keys refuse a user of another organization.
    pub fn assign(conn: &mut PgConnection, organization_id: i64, role_id: i64, user_id: i64) -> QueryResult<()> {
        diesel::insert_into(user_roles::table)
            .values((
                user_roles::organization_id.eq(organization_id),
                user_roles::role_id.eq(role_id),
                user_roles::user_id.eq(user_id),
            ))
            .on_conflict_do_nothing()
            .execute(conn)
            .map(|_| ())
    }
}
