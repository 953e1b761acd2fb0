//! The database: the r2d2 pool, the bounded bridge from async handlers to blocking Diesel
//! work, and the embedded migrations.

pub mod count;
pub mod models;
pub mod privileges;
pub mod query_count;
pub mod schema;
pub mod search;

use std::{sync::Arc, time::Duration};

use diesel::{
    Connection, PgConnection, RunQueryDsl,
    connection::SimpleConnection,
    r2d2::{ConnectionManager, CustomizeConnection, Pool, PooledConnection},
};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};
use tokio::sync::Semaphore;

use crate::error::AppError;

/// Migrations compiled into the binary.
pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations");

pub type PgPool = Pool<ConnectionManager<PgConnection>>;
pub type PooledPg = PooledConnection<ConnectionManager<PgConnection>>;

/// The pool plus a semaphore sized to it. Without the semaphore, many in-flight requests
/// each take a blocking thread just to wait for a connection, which stretches latency tails.
#[derive(Clone)]
pub struct Database {
    url: String,
    pool: PgPool,
    permits: Arc<Semaphore>,
    checkout_timeout: Duration,
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Database").field("state", &self.pool.state()).finish()
    }
}

/// Pool settings.
#[derive(Debug, Clone)]
pub struct PoolOptions {
    pub size: u32,
    pub checkout_timeout: Duration,
    pub statement_timeout: Duration,
}

#[derive(Debug)]
struct SessionSettings {
    statement_timeout: Duration,
}

impl CustomizeConnection<PgConnection, diesel::r2d2::Error> for SessionSettings {
    fn on_acquire(&self, conn: &mut PgConnection) -> Result<(), diesel::r2d2::Error> {
        // Queries are counted per request (`query_count`), for Server-Timing and the tests.
        conn.set_instrumentation(query_count::instrumentation());
        // A stuck statement must turn into an error, not a hung request.
        conn.batch_execute(&format!(
            "SET statement_timeout = {}; SET idle_in_transaction_session_timeout = {}; \
             SET application_name = 'keyward'; SET TIME ZONE 'UTC'",
            self.statement_timeout.as_millis(),
            self.statement_timeout.as_millis() * 2
        ))
        .map_err(diesel::r2d2::Error::QueryError)
    }
}

impl Database {
    /// Builds the pool lazily: no connection is made until one is needed, so the
    /// application starts (and `/healthz` answers) even while the database is down.
    pub fn new(url: &str, options: &PoolOptions) -> Self {
        let pool = Pool::builder()
            .max_size(options.size)
            .min_idle(Some(0))
            .connection_timeout(options.checkout_timeout)
            .test_on_check_out(false)
            .connection_customizer(Box::new(SessionSettings { statement_timeout: options.statement_timeout }))
            .build_unchecked(ConnectionManager::<PgConnection>::new(url));
        Self {
            url: url.to_string(),
            pool,
            permits: Arc::new(Semaphore::new(options.size as usize)),
            checkout_timeout: options.checkout_timeout,
        }
    }

    /// The connection string (for connections outside the pool, like the key listener).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// A connection for synchronous code (commands, background threads, tests).
    pub fn get(&self) -> Result<PooledPg, AppError> {
        self.pool.get().map_err(|e| {
            log::warn!("database connection unavailable: {e}");
            AppError::Unavailable
        })
    }

    /// Runs blocking Diesel work off the async executor, at most one job per pooled
    /// connection at a time; waiting longer than the checkout timeout is a 503.
    pub async fn run<T, F>(&self, work: F) -> Result<T, AppError>
    where
        T: Send + 'static,
        F: FnOnce(&mut PgConnection) -> Result<T, AppError> + Send + 'static,
    {
        let permit = tokio::time::timeout(self.checkout_timeout, self.permits.clone().acquire_owned())
            .await
            .map_err(|_| AppError::Unavailable)?
            .map_err(|_| AppError::Unavailable)?;
        let pool = self.pool.clone();
        let count = query_count::current();
        actix_web::web::block(move || {
            let _permit = permit;
            let mut conn = pool.get().map_err(|e| {
                log::warn!("database connection unavailable: {e}");
                AppError::Unavailable
            })?;
            query_count::attributed_to(count, || work(&mut conn))
        })
        .await
        .map_err(|e| AppError::Internal(format!("blocking task failed: {e}")))?
    }

    /// Runs `work` in one transaction: everything it writes (a change and its audit event)
    /// commits together or not at all.
    pub async fn transaction<T, F>(&self, work: F) -> Result<T, AppError>
    where
        T: Send + 'static,
        F: FnOnce(&mut PgConnection) -> Result<T, AppError> + Send + 'static,
    {
        self.run(move |conn| conn.transaction(work)).await
    }
}

/// Applies pending migrations, holding an advisory lock so that instances starting together
/// do not race.
pub fn run_migrations(conn: &mut PgConnection) -> Result<Vec<String>, String> {
    const MIGRATION_LOCK: i64 = 0x006b_6579_7761_7264; // "keyward" in ASCII
    diesel::sql_query(format!("SELECT pg_advisory_lock({MIGRATION_LOCK})"))
        .execute(conn)
        .map_err(|e| format!("cannot take the migration lock: {e}"))?;
    let result = conn
        .run_pending_migrations(MIGRATIONS)
        .map(|done| done.iter().map(|m| m.to_string()).collect())
        .map_err(|e| format!("migration failed: {e}"));
    let _ = diesel::sql_query(format!("SELECT pg_advisory_unlock({MIGRATION_LOCK})")).execute(conn);
    result
}

/// The migrations not yet applied, found by reading the migration ledger only: unlike
/// Diesel's harness, this needs no right to create the ledger, so a role that may not
/// change the schema can tell that there is nothing to do.
pub fn pending_migrations(conn: &mut PgConnection) -> Result<Vec<String>, String> {
    use diesel::migration::MigrationSource;
    #[derive(diesel::QueryableByName)]
    struct Applied {
        #[diesel(sql_type = diesel::sql_types::Text)]
        version: String,
    }
    // A missing ledger (a new database) means that everything is pending.
    let applied: Vec<Applied> = conn
        .transaction(|conn| diesel::sql_query("SELECT version FROM __diesel_schema_migrations").load(conn))
        .unwrap_or_default();
    let all = MigrationSource::<diesel::pg::Pg>::migrations(&MIGRATIONS).map_err(|e| e.to_string())?;
    Ok(all
        .iter()
        .map(|m| m.name())
        .filter(|name| !applied.iter().any(|a| a.version == name.version().to_string()))
        .map(|name| name.to_string())
        .collect())
}

/// Opens a single connection (for commands and start-up), with a clear error.
pub fn connect(url: &str) -> Result<PgConnection, String> {
    PgConnection::establish(url).map_err(|e| format!("cannot connect to the database: {e}"))
}
