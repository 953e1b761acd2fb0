//! Web users: members of exactly one organization.

use chrono::{DateTime, Utc};
use diesel::prelude::*;

use crate::{
    db::schema::{role_permissions, user_roles, users},
    domain::{Permission, PermissionSet},
};

#[derive(Debug, Clone, Queryable, Selectable, Identifiable)]
#[diesel(table_name = users)]
pub struct User {
    pub id: i64,
    pub organization_id: i64,
    pub email: String,
    pub display_name: String,
    pub password_hash: Option<String>,
    pub is_admin: bool,
    pub api_key_access: bool,
    pub active: bool,
    pub last_login_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = users)]
pub struct NewUser<'a> {
    pub organization_id: i64,
    pub email: &'a str,
    pub display_name: &'a str,
    pub password_hash: Option<&'a str>,
    pub is_admin: bool,
    pub api_key_access: bool,
}

impl User {
    /// A user by id, inside `organization_id` only.
    pub fn find_in_org(conn: &mut PgConnection, organization_id: i64, id: i64) -> QueryResult<User> {
        users::table
            .filter(users::id.eq(id))
            .filter(users::organization_id.eq(organization_id))
            .select(User::as_select())
            .first(conn)
    }

    /// A user by id across organizations: only for resolving the signed-in user.
    pub fn find(conn: &mut PgConnection, id: i64) -> QueryResult<User> {
        users::table.find(id).select(User::as_select()).first(conn)
    }

    pub fn find_by_email(conn: &mut PgConnection, email: &str) -> QueryResult<Option<User>> {
        users::table.filter(users::email.eq(email)).select(User::as_select()).first(conn).optional()
    }

    pub fn insert(conn: &mut PgConnection, new: &NewUser<'_>) -> QueryResult<User> {
        diesel::insert_into(users::table).values(new).returning(User::as_returning()).get_result(conn)
    }

    pub fn record_login(conn: &mut PgConnection, id: i64) -> QueryResult<()> {
        diesel::update(users::table.find(id)).set(users::last_login_at.eq(diesel::dsl::now)).execute(conn).map(|_| ())
    }

    /// Permissions granted through the user's roles (not counting admin or the access toggle).
    pub fn role_permissions(conn: &mut PgConnection, id: i64) -> QueryResult<Vec<Permission>> {
        let codes: Vec<String> = user_roles::table
            .inner_join(role_permissions::table.on(role_permissions::role_id.eq(user_roles::role_id)))
            .filter(user_roles::user_id.eq(id))
            .select(role_permissions::permission)
            .distinct()
            .load(conn)?;
        Ok(codes.iter().filter_map(|c| Permission::from_code(c)).collect())
    }

    /// The user's effective permissions (SPEC §2).
    pub fn effective_permissions(&self, conn: &mut PgConnection) -> QueryResult<PermissionSet> {
        if self.is_admin {
            return Ok(PermissionSet::all());
        }
        let from_roles = Self::role_permissions(conn, self.id)?;
        Ok(PermissionSet::effective(false, self.api_key_access, from_roles))
    }
}
