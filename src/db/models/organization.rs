//! Organizations (tenants) and their key policy.

use chrono::{DateTime, Utc};
use diesel::prelude::*;

use crate::db::schema::organizations;

#[derive(Debug, Clone, Queryable, Selectable, Identifiable)]
#[diesel(table_name = organizations)]
pub struct Organization {
    pub id: i64,
    pub slug: String,
    pub name: String,
    pub service_provider_id: Option<i64>,
    pub key_default_lifetime_days: i32,
    pub key_max_lifetime_days: Option<i32>,
    pub key_allow_never_expires: bool,
    pub key_default_grace_minutes: i32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = organizations)]
pub struct NewOrganization<'a> {
    pub slug: &'a str,
    pub name: &'a str,
    pub service_provider_id: Option<i64>,
}

impl Organization {
    pub fn find(conn: &mut PgConnection, id: i64) -> QueryResult<Organization> {
        organizations::table.find(id).select(Organization::as_select()).first(conn)
    }

    pub fn find_by_slug(conn: &mut PgConnection, slug: &str) -> QueryResult<Organization> {
        organizations::table.filter(organizations::slug.eq(slug)).select(Organization::as_select()).first(conn)
    }

    pub fn list_all(conn: &mut PgConnection) -> QueryResult<Vec<Organization>> {
        organizations::table.order(organizations::name.asc()).select(Organization::as_select()).load(conn)
    }

    /// The client organizations of a service provider.
    pub fn list_for_provider(conn: &mut PgConnection, service_provider_id: i64) -> QueryResult<Vec<Organization>> {
        organizations::table
            .filter(organizations::service_provider_id.eq(service_provider_id))
            .order(organizations::name.asc())
            .select(Organization::as_select())
            .load(conn)
    }

    pub fn insert(conn: &mut PgConnection, new: &NewOrganization<'_>) -> QueryResult<Organization> {
        diesel::insert_into(organizations::table).values(new).returning(Organization::as_returning()).get_result(conn)
    }
}
