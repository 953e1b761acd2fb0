//! The database: the r2d2 pool, the bounded bridge from async handlers to blocking Diesel
//! work, and the embedded migrations.

pub mod count;
pub mod models;
pub mod privileges;
pub mod query_count;
pub mod schema;
pub mod search;

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use anyhow::Context;
use diesel::{
    Connection, PgConnection, RunQueryDsl,
    connection::SimpleConnection,
    r2d2::{ConnectionManager, CustomizeConnection, Pool, PooledConnection, R2D2Connection},
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
    /// Bumped whenever a connection is found lost (see [`Database::checkout`]).
    losses: Arc<AtomicU64>,
    /// Requests and jobs waiting now for a connection (for the operators' metrics).
    waiting: Arc<AtomicU64>,
}

/// The pool as the operators' metrics show it.
#[derive(Debug, Clone, Copy)]
pub struct PoolState {
    pub max: u32,
    pub open: u32,
    pub idle: u32,
    /// Waiting for a permit or for r2d2 to hand out a connection.
    pub waiting: u64,
}

/// Counts one waiter in [`Database::waiting`] until dropped: when the wait ends with a
/// connection, with a timeout, or because the request went away.
struct Waiting(Arc<AtomicU64>);

impl Waiting {
    fn start(count: &Arc<AtomicU64>) -> Self {
        count.fetch_add(1, Ordering::Relaxed);
        Self(Arc::clone(count))
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The value of [`Database::losses`] when a pooled connection was last known to work,
/// kept in the connection's r2d2 extensions.
struct CheckedAt(u64);

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
        // `plan_cache_mode`: Diesel prepares each statement once per connection, and from the
        // sixth execution PostgreSQL may switch to a generic plan, made for "any value" of
        // the parameters: a search pattern or a skewed filter (one organization with most of
        // the keys) is then planned blind, which scanned every key for a term matching none
        // (issue 15). Planning each execution with its values costs about 0.065 ms a
        // statement, as much as not preparing the pattern queries would, and covers every
        // filter rather than those someone remembered to mark; see the README.
        conn.batch_execute(&format!(
            "SET statement_timeout = {}; SET idle_in_transaction_session_timeout = {}; \
             SET application_name = 'keyward'; SET TIME ZONE 'UTC'; SET plan_cache_mode = force_custom_plan",
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
            losses: Arc::new(AtomicU64::new(0)),
            waiting: Arc::new(AtomicU64::new(0)),
        }
    }

    /// The connection string (for connections outside the pool, like the key listener).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Connections open and idle in the pool (tests and diagnostics).
    pub fn idle_connections(&self) -> u32 {
        self.pool.state().idle_connections
    }

    /// Connections in use and idle, and how many wait for one.
    pub fn pool_state(&self) -> PoolState {
        let state = self.pool.state();
        PoolState {
            max: self.pool.max_size(),
            open: state.connections,
            idle: state.idle_connections,
            waiting: self.waiting.load(Ordering::Relaxed),
        }
    }

    /// A connection for synchronous code (commands, background threads, tests).
    pub fn get(&self) -> Result<PooledPg, AppError> {
        let waiting = Waiting::start(&self.waiting);
        let conn = checkout(&self.pool, &self.losses);
        drop(waiting);
        conn
    }

    /// Runs blocking Diesel work off the async executor, at most one job per pooled
    /// connection at a time; waiting longer than the checkout timeout is a 503.
    pub async fn run<T, F>(&self, work: F) -> Result<T, AppError>
    where
        T: Send + 'static,
        F: FnOnce(&mut PgConnection) -> Result<T, AppError> + Send + 'static,
    {
        // From here until a connection is checked out (or the wait is given up), this
        // request is waiting for the pool: first for a permit, then for r2d2.
        let waiting = Waiting::start(&self.waiting);
        let permit = tokio::time::timeout(self.checkout_timeout, self.permits.clone().acquire_owned())
            .await
            .map_err(|_| AppError::Unavailable)?
            .map_err(|_| AppError::Unavailable)?;
        let (pool, losses) = (self.pool.clone(), Arc::clone(&self.losses));
        let count = query_count::current();
        let request = crate::request_id::current();
        actix_web::web::block(move || {
            crate::request_id::attributed_to(request, || {
                let _permit = permit;
                let checked_out = checkout(&pool, &losses);
                drop(waiting);
                let mut conn = checked_out?;
                let result = query_count::attributed_to(count, || work(&mut conn));
                // Only a failure that looks like an outage costs the round trip of a check.
                if matches!(result, Err(AppError::Unavailable)) && !is_alive(&mut conn) {
                    discard(&mut conn);
                    // Whatever cut this connection (a restart, `pg_terminate_backend`, a
                    // failover) has probably cut the idle ones too: have each checked before
                    // its next use rather than fail a request with it.
                    losses.fetch_add(1, Ordering::Relaxed);
                }
                result
            })
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

/// Checks a connection out of the pool. One that sat idle while a connection was found lost
/// is validated first (a `SELECT 1`), so a killed idle connection costs no request; on the
/// hot path (no loss since its last use) there is no extra round trip.
fn checkout(pool: &PgPool, losses: &AtomicU64) -> Result<PooledPg, AppError> {
    // Bounded: each failed validation drops a connection, and the pool holds at most max_size.
    for _ in 0..=pool.max_size() {
        let mut conn = pool.get().map_err(|e| {
            log::warn!("{} database connection unavailable: {e}", crate::request_id::label());
            AppError::Unavailable
        })?;
        let now = losses.load(Ordering::Relaxed);
        let checked = match PooledConnection::extensions(&conn).get::<CheckedAt>() {
            // A connection made since the loss (or never used) is fresh.
            None => true,
            Some(CheckedAt(at)) => *at == now || is_alive(&mut conn),
        };
        if checked {
            PooledConnection::extensions_mut(&mut conn).insert(CheckedAt(now));
            return Ok(conn);
        }
        discard(&mut conn);
    }
    Err(AppError::Unavailable)
}

/// Whether the connection still reaches its server.
fn is_alive(conn: &mut PooledPg) -> bool {
    !conn.is_broken() && conn.ping().is_ok()
}

/// Makes r2d2 drop `conn` when it is returned instead of handing it out again.
///
/// A connection whose server side is gone fails each query with "no connection to the
/// server" (`UnableToSendCommand`) before any result arrives, which leaves diesel's
/// transaction manager valid, so `R2D2Connection::is_broken` stays false and the pool kept
/// lending the dead connection out (issue 13: 503s for up to 45 s after
/// `pg_terminate_backend`). Setting the transaction manager in error is how diesel itself
/// marks a connection unusable; r2d2 asks exactly that through `has_broken`.
fn discard(conn: &mut PooledPg) {
    use diesel::connection::{AnsiTransactionManager, TransactionManager};
    log::info!("dropping a lost database connection from the pool");
    let conn: &mut PgConnection = conn;
    AnsiTransactionManager::transaction_manager_status_mut(conn).set_in_error();
}

/// Applies pending migrations, holding an advisory lock so that instances starting together
/// do not race.
pub fn run_migrations(conn: &mut PgConnection) -> anyhow::Result<Vec<String>> {
    const MIGRATION_LOCK: i64 = 0x006b_6579_7761_7264; // "keyward" in ASCII
    diesel::sql_query(format!("SELECT pg_advisory_lock({MIGRATION_LOCK})"))
        .execute(conn)
        .context("cannot take the migration lock")?;
    let result = conn
        .run_pending_migrations(MIGRATIONS)
        .map(|done| done.iter().map(|m| m.to_string()).collect())
        .map_err(|e| anyhow::anyhow!(e).context("migration failed"));
    let _ = diesel::sql_query(format!("SELECT pg_advisory_unlock({MIGRATION_LOCK})")).execute(conn);
    result
}

/// The migrations not yet applied, found by reading the migration ledger only: unlike
/// Diesel's harness, this needs no right to create the ledger, so a role that may not
/// change the schema can tell that there is nothing to do.
pub fn pending_migrations(conn: &mut PgConnection) -> anyhow::Result<Vec<String>> {
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
    let all = MigrationSource::<diesel::pg::Pg>::migrations(&MIGRATIONS)
        .map_err(|e| anyhow::anyhow!(e).context("cannot read the embedded migrations"))?;
    Ok(all
        .iter()
        .map(|m| m.name())
        .filter(|name| !applied.iter().any(|a| a.version == name.version().to_string()))
        .map(|name| name.to_string())
        .collect())
}

/// Opens a single connection (for commands and start-up), with a clear error.
pub fn connect(url: &str) -> anyhow::Result<PgConnection> {
    PgConnection::establish(url).context("cannot connect to the database")
}
