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

    pub fn find_active_by_codes(conn: &mut PgConnection, codes: &[String]) -> QueryResult<Vec<ApiAction>> {
        api_actions::table
            .filter(api_actions::retired_at.is_null())
            .filter(api_actions::code.eq_any(codes))
            .select(ApiAction::as_select())
            .load(conn)
    }
}
