//! One-time set-password links (the token itself is never stored, only its SHA-256).

use chrono::{DateTime, Utc};
use diesel::prelude::*;

use crate::db::schema::password_links;

/// A link that has not been used yet.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = password_links)]
pub struct PasswordLink {
    pub id: i64,
    pub user_id: Option<i64>,
    pub staff_id: Option<i64>,
    pub expires_at: DateTime<Utc>,
    pub used_at: Option<DateTime<Utc>>,
}

/// Whose password a link sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkAccount {
    User(i64),
    Staff(i64),
}

/// Why a link was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkPurpose {
    /// By an administrator (an invitation or a reset): replaces every earlier unused link.
    Set,
    /// Asked for on the sign-in page: replaces only earlier such links, never an invitation.
    Reset,
}

impl LinkPurpose {
    fn code(self) -> &'static str {
        match self {
            LinkPurpose::Set => "set",
            LinkPurpose::Reset => "reset",
        }
    }
}

impl PasswordLink {
    pub fn account(&self) -> LinkAccount {
        match (self.user_id, self.staff_id) {
            (Some(id), _) => LinkAccount::User(id),
            // The table's check: exactly one of the two.
            (None, staff) => LinkAccount::Staff(staff.unwrap_or_default()),
        }
    }

    /// Records a link; earlier unused links of the account stop working (for a
    /// [`LinkPurpose::Reset`], only earlier reset links).
    pub fn insert(
        conn: &mut PgConnection,
        account: LinkAccount,
        purpose: LinkPurpose,
        token_hash: &str,
        expires_at: DateTime<Utc>,
    ) -> QueryResult<()> {
        let (user_id, staff_id) = match account {
            LinkAccount::User(id) => (Some(id), None),
            LinkAccount::Staff(id) => (None, Some(id)),
        };
        let replaced: &[&str] = match purpose {
            LinkPurpose::Set => &["set", "reset"],
            LinkPurpose::Reset => &["reset"],
        };
        let unused = password_links::table
            .filter(password_links::used_at.is_null())
            .filter(password_links::purpose.eq_any(replaced));
        match account {
            LinkAccount::User(id) => diesel::update(unused.filter(password_links::user_id.eq(id)))
                .set(password_links::used_at.eq(diesel::dsl::now))
                .execute(conn)?,
            LinkAccount::Staff(id) => diesel::update(unused.filter(password_links::staff_id.eq(id)))
                .set(password_links::used_at.eq(diesel::dsl::now))
                .execute(conn)?,
        };
        diesel::insert_into(password_links::table)
            .values((
                password_links::user_id.eq(user_id),
                password_links::staff_id.eq(staff_id),
                password_links::token_hash.eq(token_hash),
                password_links::expires_at.eq(expires_at),
                password_links::purpose.eq(purpose.code()),
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
