//! Rows of the server-side session store (see `auth::session_store`).

use chrono::{DateTime, Utc};
use diesel::prelude::*;

use crate::db::schema::sessions;

#[derive(Debug, Insertable, AsChangeset)]
#[diesel(table_name = sessions)]
pub struct SessionRow {
    pub id: String,
    pub user_id: Option<i64>,
    pub staff_id: Option<i64>,
    pub state: serde_json::Value,
    pub expires_at: DateTime<Utc>,
}

// Liveness is judged at the application's `now` (its clock), not the database's, so that
// tests can move time forward.

/// Loads a session's state by the hash of its key, if it is live at `now`.
pub fn load(conn: &mut PgConnection, id: &str, now: DateTime<Utc>) -> QueryResult<Option<serde_json::Value>> {
    sessions::table
        .filter(sessions::id.eq(id))
        .filter(sessions::expires_at.gt(now))
        .select(sessions::state)
        .first(conn)
        .optional()
}

pub fn insert(conn: &mut PgConnection, row: &SessionRow) -> QueryResult<()> {
    diesel::insert_into(sessions::table).values(row).execute(conn).map(|_| ())
}

/// Replaces a session's state if it is live at `now`; returns whether it still existed.
pub fn update(conn: &mut PgConnection, row: &SessionRow, now: DateTime<Utc>) -> QueryResult<bool> {
    diesel::update(sessions::table.filter(sessions::id.eq(&row.id)).filter(sessions::expires_at.gt(now)))
        .set(row)
        .execute(conn)
        .map(|n| n > 0)
}

/// Extends a session's idle deadline, writing only when it moved by more than a minute so
/// that busy pages do not turn into a write per request.
pub fn touch(conn: &mut PgConnection, id: &str, now: DateTime<Utc>, expires_at: DateTime<Utc>) -> QueryResult<()> {
    diesel::update(
        sessions::table
            .filter(sessions::id.eq(id))
            .filter(sessions::expires_at.gt(now))
            .filter(sessions::expires_at.lt(expires_at - chrono::Duration::minutes(1))),
    )
    .set(sessions::expires_at.eq(expires_at))
    .execute(conn)
    .map(|_| ())
}

pub fn delete(conn: &mut PgConnection, id: &str) -> QueryResult<()> {
    diesel::delete(sessions::table.filter(sessions::id.eq(id))).execute(conn).map(|_| ())
}

/// Ends every session of a web user (deactivation, password reset).
pub fn delete_for_user(conn: &mut PgConnection, user_id: i64) -> QueryResult<usize> {
    diesel::delete(sessions::table.filter(sessions::user_id.eq(user_id))).execute(conn)
}

/// Ends every session of a staff account.
pub fn delete_for_staff(conn: &mut PgConnection, staff_id: i64) -> QueryResult<usize> {
    diesel::delete(sessions::table.filter(sessions::staff_id.eq(staff_id))).execute(conn)
}

/// Removes rows expired at `now` (run periodically).
pub fn delete_expired(conn: &mut PgConnection, now: DateTime<Utc>) -> QueryResult<usize> {
    diesel::delete(sessions::table.filter(sessions::expires_at.le(now))).execute(conn)
}
