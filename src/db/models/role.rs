//! Custom roles of an organization and their permissions.

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
