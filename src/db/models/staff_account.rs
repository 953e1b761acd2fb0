//! Support staff accounts: the platform's technical support, outside every organization.

use chrono::{DateTime, Utc};
use diesel::prelude::*;

use crate::db::schema::staff_accounts;

#[derive(Debug, Clone, Queryable, Selectable, Identifiable)]
#[diesel(table_name = staff_accounts)]
pub struct StaffAccount {
    pub id: i64,
    pub email: String,
    pub display_name: String,
    pub password_hash: Option<String>,
    pub active: bool,
    pub last_login_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = staff_accounts)]
pub struct NewStaffAccount<'a> {
    pub email: &'a str,
    pub display_name: &'a str,
    pub password_hash: Option<&'a str>,
}

impl StaffAccount {
    pub fn find(conn: &mut PgConnection, id: i64) -> QueryResult<StaffAccount> {
        staff_accounts::table.find(id).select(StaffAccount::as_select()).first(conn)
    }

    pub fn find_by_email(conn: &mut PgConnection, email: &str) -> QueryResult<Option<StaffAccount>> {
        staff_accounts::table
            .filter(staff_accounts::email.eq(email))
            .select(StaffAccount::as_select())
            .first(conn)
            .optional()
    }

    pub fn insert(conn: &mut PgConnection, new: &NewStaffAccount<'_>) -> QueryResult<StaffAccount> {
        diesel::insert_into(staff_accounts::table).values(new).returning(StaffAccount::as_returning()).get_result(conn)
    }

    /// `id → display name` for `ids`, in one query.
    pub fn names_by_id(conn: &mut PgConnection, ids: &[i64]) -> QueryResult<std::collections::HashMap<i64, String>> {
        let rows: Vec<(i64, String)> = staff_accounts::table
            .filter(staff_accounts::id.eq_any(ids))
            .select((staff_accounts::id, staff_accounts::display_name))
            .load(conn)?;
        Ok(rows.into_iter().collect())
    }

    pub fn list_all(conn: &mut PgConnection) -> QueryResult<Vec<StaffAccount>> {
        staff_accounts::table.order(staff_accounts::email.asc()).select(StaffAccount::as_select()).load(conn)
    }

    /// Locks the active staff accounts (changes that could remove the last one serialize here).
    pub fn lock_active(conn: &mut PgConnection) -> QueryResult<Vec<i64>> {
        staff_accounts::table.filter(staff_accounts::active.eq(true)).select(staff_accounts::id).for_update().load(conn)
    }

    pub fn set_active(conn: &mut PgConnection, id: i64, active: bool) -> QueryResult<StaffAccount> {
        diesel::update(staff_accounts::table.find(id))
            .set((staff_accounts::active.eq(active), staff_accounts::updated_at.eq(diesel::dsl::now)))
            .returning(StaffAccount::as_returning())
            .get_result(conn)
    }

    /// Sets the password hash (the caller ends the account's sessions).
    pub fn set_password(conn: &mut PgConnection, id: i64, password_hash: &str) -> QueryResult<StaffAccount> {
        diesel::update(staff_accounts::table.find(id))
            .set((staff_accounts::password_hash.eq(password_hash), staff_accounts::updated_at.eq(diesel::dsl::now)))
            .returning(StaffAccount::as_returning())
            .get_result(conn)
    }

    pub fn record_login(conn: &mut PgConnection, id: i64) -> QueryResult<()> {
        diesel::update(staff_accounts::table.find(id))
            .set(staff_accounts::last_login_at.eq(diesel::dsl::now))
            .execute(conn)
            .map(|_| ())
    }
}
