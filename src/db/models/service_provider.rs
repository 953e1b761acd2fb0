//! Service providers: partners that resell the platform to client organizations.

use chrono::{DateTime, Utc};
use diesel::prelude::*;

use crate::db::schema::service_providers;

#[derive(Debug, Clone, Queryable, Selectable, Identifiable)]
#[diesel(table_name = service_providers)]
pub struct ServiceProvider {
    pub id: i64,
    pub name: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl ServiceProvider {
    pub fn find(conn: &mut PgConnection, id: i64) -> QueryResult<ServiceProvider> {
        service_providers::table.find(id).select(ServiceProvider::as_select()).first(conn)
    }

    /// The names of the providers `ids`, by id (one query for a page of keys).
    pub fn names_by_id(conn: &mut PgConnection, ids: &[i64]) -> QueryResult<std::collections::HashMap<i64, String>> {
        let rows: Vec<(i64, String)> = service_providers::table
            .filter(service_providers::id.eq_any(ids))
            .select((service_providers::id, service_providers::name))
            .load(conn)?;
        Ok(rows.into_iter().collect())
    }

    pub fn insert(conn: &mut PgConnection, name: &str) -> QueryResult<ServiceProvider> {
        diesel::insert_into(service_providers::table)
            .values(service_providers::name.eq(name))
            .returning(ServiceProvider::as_returning())
            .get_result(conn)
    }

    pub fn rename(conn: &mut PgConnection, id: i64, name: &str) -> QueryResult<ServiceProvider> {
        diesel::update(service_providers::table.find(id))
            .set((service_providers::name.eq(name), service_providers::updated_at.eq(diesel::dsl::now)))
            .returning(ServiceProvider::as_returning())
            .get_result(conn)
    }

    pub fn list_all(conn: &mut PgConnection) -> QueryResult<Vec<ServiceProvider>> {
        service_providers::table.order(service_providers::name.asc()).select(ServiceProvider::as_select()).load(conn)
    }
}
