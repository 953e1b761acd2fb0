//! Rows of the server-side session store (see `auth::session_store`).

use chrono::{DateTime, Utc};
use diesel::{pg::Pg, prelude::*, sql_types::Bool};

use crate::db::schema::sessions;

#[derive(Debug, Insertable, AsChangeset)]
#[diesel(table_name = sessions)]
pub struct SessionRow {
    pub id: String,
    pub user_id: Option<i64>,
    pub staff_id: Option<i64>,
    pub state: serde_json::Value,
    pub expires_at: DateTime<Utc>,
    pub public_id: Option<String>,
    pub client_ip: Option<String>,
    pub client_label: Option<String>,
    pub signed_in_at: Option<DateTime<Utc>>,
    pub last_seen_at: DateTime<Utc>,
}

/// A signed-in session as Account → Security lists it.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = sessions)]
pub struct SessionListing {
    pub public_id: Option<String>,
    pub client_ip: Option<String>,
    pub client_label: Option<String>,
    pub signed_in_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
}

/// The account whose sessions are listed or ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionOwner {
    User(i64),
    Staff(i64),
}

fn owned_by(owner: SessionOwner) -> Box<dyn BoxableExpression<sessions::table, Pg, SqlType = Bool>> {
    // `assume_not_null`: a row of another kind of account has NULL here, which `=` leaves out.
    match owner {
        SessionOwner::User(id) => Box::new(sessions::user_id.assume_not_null().eq(id)),
        SessionOwner::Staff(id) => Box::new(sessions::staff_id.assume_not_null().eq(id)),
    }
}

/// The live sessions of `owner` at `now`, most recently seen first.
pub fn list_for(conn: &mut PgConnection, owner: SessionOwner, now: DateTime<Utc>) -> QueryResult<Vec<SessionListing>> {
    sessions::table
        .filter(owned_by(owner))
        .filter(sessions::expires_at.gt(now))
        .order((sessions::last_seen_at.desc(), sessions::created_at.desc()))
        .select(SessionListing::as_select())
        .load(conn)
}

/// Ends the session `public_id` of `owner` unless it is `current`; the number ended (0: not
/// one of theirs, or the current one).
pub fn delete_one_of(
    conn: &mut PgConnection,
    owner: SessionOwner,
    public_id: &str,
    current: Option<&str>,
) -> QueryResult<Vec<SessionListing>> {
    if current == Some(public_id) {
        return Ok(Vec::new());
    }
    diesel::delete(sessions::table.filter(owned_by(owner)).filter(sessions::public_id.eq(public_id)))
        .returning(SessionListing::as_returning())
        .get_results(conn)
}

/// Ends every session of `owner` except `current`.
pub fn delete_others_of(
    conn: &mut PgConnection,
    owner: SessionOwner,
    current: Option<&str>,
) -> QueryResult<Vec<SessionListing>> {
    let others = sessions::table.filter(owned_by(owner));
    match current {
        Some(current) => {
            diesel::delete(others.filter(sessions::public_id.is_null().or(sessions::public_id.ne(current))))
                .returning(SessionListing::as_returning())
                .get_results(conn)
        }
        // A session from before sessions were described cannot tell itself apart: it ends
        // nothing rather than itself.
        None => Ok(Vec::new()),
    }
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

/// Extends a session's idle deadline and notes it as seen, writing only when the deadline
/// moved by more than a minute so that busy pages do not turn into a write per request.
pub fn touch(conn: &mut PgConnection, id: &str, now: DateTime<Utc>, expires_at: DateTime<Utc>) -> QueryResult<()> {
    diesel::update(
        sessions::table
            .filter(sessions::id.eq(id))
            .filter(sessions::expires_at.gt(now))
            .filter(sessions::expires_at.lt(expires_at - chrono::Duration::minutes(1))),
    )
    .set((sessions::expires_at.eq(expires_at), sessions::last_seen_at.eq(now)))
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
