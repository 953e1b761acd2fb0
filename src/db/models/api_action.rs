//! The platform-wide catalog of API actions (privileges a key can be granted).

use chrono::{DateTime, Utc};
use diesel::prelude::*;

use crate::db::schema::api_actions;

#[derive(Debug, Clone, Queryable, Selectable, Identifiable, PartialEq, Eq)]
#[diesel(table_name = api_actions)]
pub struct ApiAction {
    pub id: i64,
    pub code: String,
    pub description: String,
    pub retired_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl ApiAction {
    /// The actions that can be granted today, by code.
    pub fn list_active(conn: &mut PgConnection) -> QueryResult<Vec<ApiAction>> {
        api_actions::table
            .filter(api_actions::retired_at.is_null())
            .order(api_actions::code.asc())
            .select(ApiAction::as_select())
            .load(conn)
    }

    /// The whole catalog, retired actions included (staff console).
    pub fn list_all(conn: &mut PgConnection) -> QueryResult<Vec<ApiAction>> {
        api_actions::table
            .order((api_actions::retired_at.is_not_null(), api_actions::code.asc()))
            .select(ApiAction::as_select())
            .load(conn)
    }

    pub fn find(conn: &mut PgConnection, id: i64) -> QueryResult<ApiAction> {
        api_actions::table.find(id).select(ApiAction::as_select()).first(conn)
    }

    pub fn insert(conn: &mut PgConnection, code: &str, description: &str) -> QueryResult<ApiAction> {
        diesel::insert_into(api_actions::table)
            .values((api_actions::code.eq(code), api_actions::description.eq(description)))
            .returning(ApiAction::as_returning())
            .get_result(conn)
    }

    pub fn describe(conn: &mut PgConnection, id: i64, description: &str) -> QueryResult<ApiAction> {
        diesel::update(api_actions::table.find(id))
            .set((api_actions::description.eq(description), api_actions::updated_at.eq(diesel::dsl::now)))
            .returning(ApiAction::as_returning())
            .get_result(conn)
    }

    /// Number of keys that list each action.
    pub fn key_counts(conn: &mut PgConnection) -> QueryResult<std::collections::HashMap<i64, i64>> {
        use crate::db::schema::api_key_actions;
        let rows: Vec<(i64, i64)> = api_key_actions::table
            .group_by(api_key_actions::api_action_id)
            .select((api_key_actions::api_action_id, diesel::dsl::count_star()))
            .load(conn)?;
        Ok(rows.into_iter().collect())
    }

    /// Retires an action: it leaves every key's and role's list, and can no longer be chosen.
    /// Returns how many keys lost it.
    pub fn retire(conn: &mut PgConnection, id: i64) -> QueryResult<usize> {
        use crate::db::schema::{api_key_actions, role_api_actions};
        diesel::update(api_actions::table.find(id))
            .set((api_actions::retired_at.eq(diesel::dsl::now), api_actions::updated_at.eq(diesel::dsl::now)))
            .execute(conn)?;
        diesel::delete(role_api_actions::table.filter(role_api_actions::api_action_id.eq(id))).execute(conn)?;
        diesel::delete(api_key_actions::table.filter(api_key_actions::api_action_id.eq(id))).execute(conn)
    }

    pub fn find_active_by_codes(conn: &mut PgConnection, codes: &[String]) -> QueryResult<Vec<ApiAction>> {
        api_actions::table
            .filter(api_actions::retired_at.is_null())
            .filter(api_actions::code.eq_any(codes))
            .select(ApiAction::as_select())
            .load(conn)
    }
}
