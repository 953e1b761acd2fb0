//! The least-privileged database role the application runs as, and what it is granted.
//!
//! The tables belong to the role that runs the migrations (the owner). The application
//! connects as another role that may read and write rows, but not change the schema, not
//! write the migration ledger, and only read and append to the audit log. The embedded
//! default creates that role itself; `keyward grant-app-role` grants the same to a role of
//! an operator's server (see the README).

use diesel::{PgConnection, QueryResult, RunQueryDsl, connection::SimpleConnection, sql_types::Text};

/// The login role the embedded cluster runs the application as.
pub const APP_ROLE: &str = "keyward_app";

/// `name` quoted as an SQL identifier.
fn identifier(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Creates `role` as a plain login role (no superuser, no database or role creation) if it
/// does not exist. Roles belong to the whole server; several processes may race here.
pub fn ensure_login_role(conn: &mut PgConnection, role: &str) -> QueryResult<()> {
    let literal = role.replace('\'', "''");
    conn.batch_execute(&format!(
        "DO $$ BEGIN \
             IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{literal}') THEN \
                 CREATE ROLE {} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE; \
             END IF; \
         EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; \
         END $$",
        identifier(role)
    ))
}

/// Grants `role` what the application needs on the current database, and nothing more:
/// rows of every table (the audit log: read and append only; the migration ledger: read
/// only), the sequences behind ids, and the same on tables and sequences that later
/// migrations create (default privileges of the role running this, the owner).
/// Idempotent: run it again after every migration.
pub fn grant_app_role(conn: &mut PgConnection, role: &str) -> QueryResult<()> {
    let r = identifier(role);
    conn.batch_execute(&format!(
        "GRANT USAGE ON SCHEMA public TO {r};
         GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {r};
         GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {r};
         REVOKE UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER ON audit_events FROM {r};
         REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON __diesel_schema_migrations FROM {r};
         ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {r};
         ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO {r};"
    ))
}

#[derive(diesel::QueryableByName)]
struct Flag {
    #[diesel(sql_type = diesel::sql_types::Bool)]
    value: bool,
}

/// Whether `role` exists, is no superuser, and neither owns nor inherits the owner of any of
/// the application's tables (such a role could drop the audit log's protection, so it must
/// never be the application's).
pub fn is_distinct_from_owner(conn: &mut PgConnection, role: &str) -> QueryResult<bool> {
    let flag: Flag = diesel::sql_query(
        "SELECT CASE WHEN EXISTS (SELECT FROM pg_roles WHERE rolname = $1 AND NOT rolsuper) \
             THEN NOT EXISTS (SELECT FROM pg_tables \
                              WHERE schemaname = 'public' AND pg_has_role($1, tableowner, 'USAGE')) \
             ELSE false END AS value",
    )
    .bind::<Text, _>(role)
    .get_result(conn)?;
    Ok(flag.value)
}

#[cfg(test)]
mod tests {
    use super::identifier;

    #[test]
    fn identifiers_are_quoted() {
        assert_eq!(identifier("keyward_app"), "\"keyward_app\"");
        assert_eq!(identifier("a\"b"), "\"a\"\"b\"");
    }
}
