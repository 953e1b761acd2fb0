//! One-time set-password links (the token itself is never stored, only its SHA-256).

use chrono::{DateTime, Utc};
use diesel::prelude::*;

use crate::db::schema::password_links;

/// A link that has not been used yet.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = password_links)]
pub struct PasswordLink {
    pub id: i64,
    pub user_id: i64,
    pub expires_at: DateTime<Utc>,
    pub used_at: Option<DateTime<Utc>>,
}

impl PasswordLink {
    /// Records a link; earlier unused links of the user stop working.
    pub fn insert(
        conn: &mut PgConnection,
        user_id: i64,
        token_hash: &str,
        expires_at: DateTime<Utc>,
    ) -> QueryResult<()> {
        diesel::update(
            password_links::table.filter(password_links::user_id.eq(user_id)).filter(password_links::used_at.is_null()),
        )
        .set(password_links::used_at.eq(diesel::dsl::now))
        .execute(conn)?;
        diesel::insert_into(password_links::table)
            .values((
                password_links::user_id.eq(user_id),
                password_links::token_hash.eq(token_hash),
                password_links::expires_at.eq(expires_at),
            ))
            .execute(conn)
            .map(|_| ())
    }

    /// The unused, unexpired link with this token hash, locked for use.
    pub fn find_usable(conn: &mut PgConnection, token_hash: &str) -> QueryResult<Option<PasswordLink>> {
        password_links::table
            .filter(password_links::token_hash.eq(token_hash))
            .filter(password_links::used_at.is_null())
            .filter(password_links::expires_at.gt(diesel::dsl::now))
            .select(PasswordLink::as_select())
            .for_update()
            .first(conn)
            .optional()
    }

    pub fn mark_used(conn: &mut PgConnection, id: i64) -> QueryResult<()> {
        diesel::update(password_links::table.find(id))
            .set(password_links::used_at.eq(diesel::dsl::now))
            .execute(conn)
            .map(|_| ())
    }
}
