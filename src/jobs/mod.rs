//! Background jobs: work that runs on a schedule rather than in a request (the stale-key
//! policy, usage retention, and later reminders…), exactly once per period across any number
//! of instances. This module holds the registry ([`JOBS`]) and the runner; what a job does
//! lives in the services, as a plain function of a connection and the time.
//!
//! How "exactly once" holds: each registered job has a row in the `jobs` table with the time
//! it is next due. A runner locks a due row with `FOR UPDATE SKIP LOCKED`, runs the job in
//! that same transaction, and moves `next_run_at` on before it commits. Another runner at
//! the same moment skips the locked row, and afterwards finds it no longer due; the job's
//! changes and its new schedule commit together, so a crash or an error in the middle leaves
//! the job due, with nothing half done. Jobs are also written to be idempotent (running one
//! twice changes nothing more), which makes a forced rerun harmless.
//!
//! Who runs them: every server instance every [`TICK`] (a single instance needs no cron),
//! and `keyward run-jobs`, which runs what is due once and exits (cron, tests, the demo).

use std::time::Duration;

use chrono::{DateTime, Utc};
use diesel::{Connection, PgConnection, QueryResult, prelude::*};

use crate::{db::schema::jobs, error::AppError, services, services::notifications::smtp::Mailer};

/// A registered job.
#[derive(Debug, Clone, Copy)]
pub struct Job {
    /// Its name in the `jobs` table, the logs and `run-jobs`' output: lower-case letters,
    /// digits and hyphens.
    pub name: &'static str,
    /// How long after a run it is due again.
    pub every: Duration,
    /// Runs it once at the given time (the injected clock's), inside the transaction that
    /// holds the job's row, and says in one line what it did. An error rolls everything back
    /// and leaves the job due.
    pub run: fn(&mut PgConnection, DateTime<Utc>) -> Result<String, AppError>,
}

/// Every job the runners run, in this order. To add one, write its function in the services
/// (`fn(&mut PgConnection, DateTime<Utc>) -> Result<String, AppError>`, idempotent, writing
/// its audit events on the connection it is given) and add a line here; its row in `jobs`
/// is created the first time a runner sees it, due at once.
pub const JOBS: &[Job] = &[
    Job { name: "stale-keys", every: Duration::from_secs(3600), run: services::keys::stale::deactivate_stale },
    Job { name: "usage-retention", every: Duration::from_secs(3600), run: services::usage::prune_job },
    // Reminders and "expired" (issue 19); hourly is precise enough for day-sized reminders.
    Job { name: "key-expiry", every: Duration::from_secs(3600), run: services::notifications::expiry::run },
    // Checks hourly; each administrator who wants it gets one per week (see the service).
    Job { name: "weekly-digest", every: Duration::from_secs(3600), run: services::notifications::digest::run },
    // Past minutes of the management API's shared rate limit; a few rows per busy token.
    Job { name: "management-rate-windows", every: Duration::from_secs(600), run: services::management_rate::prune_job },
    // Last, so that a run delivers the events the jobs before it wrote.
    Job { name: "deliver-mail", every: Duration::from_secs(60), run: services::notifications::mail::deliver },
    // Queues webhook deliveries per endpoint; sending them (HTTP) happens after the jobs,
    // outside their transactions (`WebhookSender::send_due`).
    Job { name: "deliver-webhooks", every: Duration::from_secs(60), run: services::notifications::webhooks::fan_out },
];

/// How often each server instance looks for due jobs.
pub const TICK: Duration = Duration::from_secs(60);

/// What one runner did with one job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// It ran, and said this.
    Ran(String),
    /// Not due before this time.
    NotDue(DateTime<Utc>),
    /// Another runner is running it right now.
    Elsewhere,
    /// It failed and stays due; the error, as logged.
    Failed(String),
}

/// A job's name and what became of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobRun {
    pub name: &'static str,
    pub outcome: Outcome,
}

impl std::fmt::Display for JobRun {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.outcome {
            Outcome::Ran(said) => write!(f, "{}: {said}", self.name),
            Outcome::NotDue(at) => write!(f, "{}: not due until {}", self.name, at.to_rfc3339()),
            Outcome::Elsewhere => write!(f, "{}: running on another instance", self.name),
            Outcome::Failed(error) => write!(f, "{}: failed ({error}); it stays due", self.name),
        }
    }
}

/// Runs every registered job that is due at `now`, each once, in its own transaction.
pub fn run_due(conn: &mut PgConnection, now: DateTime<Utc>) -> QueryResult<Vec<JobRun>> {
    run_due_of(conn, JOBS, now)
}

/// [`run_due`], then, with SMTP configured, sends the mail of the outbox that is due (see
/// `services::notifications::smtp`). Sending is not a job of [`JOBS`]: it needs the relay's
/// settings, and it needs no period of its own, since each message is claimed with
/// `FOR UPDATE SKIP LOCKED` and marked sent in one transaction, however many runners try.
/// Its failure is logged and reported as a failed run named `send-mail`.
pub fn run_due_and_send(
    conn: &mut PgConnection,
    now: DateTime<Utc>,
    mailer: Option<&Mailer>,
) -> QueryResult<Vec<JobRun>> {
    let mut runs = run_due(conn, now)?;
    if let Some(mailer) = mailer {
        let outcome = match services::notifications::smtp::send_due(conn, mailer, now) {
            Ok(said) => {
                log::info!("send-mail: {said}");
                Outcome::Ran(said)
            }
            Err(e) => {
                log::warn!("sending mail failed (tried again at the next run): {e}");
                Outcome::Failed(e.to_string())
            }
        };
        runs.push(JobRun { name: "send-mail", outcome });
    }
    Ok(runs)
}

/// [`run_due`] for a given list of jobs.
pub fn run_due_of(conn: &mut PgConnection, registry: &[Job], now: DateTime<Utc>) -> QueryResult<Vec<JobRun>> {
    let names: Vec<&str> = registry.iter().map(|job| job.name).collect();
    // A job new to this database is due at once. Concurrent runners may both insert: the
    // second does nothing.
    diesel::insert_into(jobs::table)
        .values(names.iter().map(|name| (jobs::name.eq(*name), jobs::next_run_at.eq(now))).collect::<Vec<_>>())
        .on_conflict(jobs::name)
        .do_nothing()
        .execute(conn)?;
    Ok(registry.iter().map(|job| JobRun { name: job.name, outcome: run_one(conn, job, now) }).collect())
}

fn run_one(conn: &mut PgConnection, job: &Job, now: DateTime<Utc>) -> Outcome {
    let ran = conn.transaction::<_, AppError, _>(|conn| {
        let due: Option<String> = jobs::table
            .filter(jobs::name.eq(job.name))
            .filter(jobs::next_run_at.le(now))
            .select(jobs::name)
            .for_update()
            .skip_locked()
            .first(conn)
            .optional()?;
        if due.is_none() {
            return Ok(None);
        }
        let said = (job.run)(conn, now)?;
        // An interval beyond chrono's range means "not again": the far future, not a panic.
        let next = chrono::Duration::from_std(job.every)
            .ok()
            .and_then(|every| now.checked_add_signed(every))
            .unwrap_or(DateTime::<Utc>::MAX_UTC);
        diesel::update(jobs::table.find(job.name))
            .set((
                jobs::last_run_at.eq(Some(now)),
                jobs::next_run_at.eq(next),
                jobs::last_outcome.eq(said.chars().take(500).collect::<String>()),
            ))
            .execute(conn)?;
        Ok(Some(said))
    });
    match ran {
        Ok(Some(said)) => {
            log::info!("job {}: {said}", job.name);
            Outcome::Ran(said)
        }
        Ok(None) => {
            // Not due, or locked by another runner (whose row then still reads as due).
            let next: QueryResult<DateTime<Utc>> = jobs::table.find(job.name).select(jobs::next_run_at).first(conn);
            match next {
                Ok(at) if at > now => Outcome::NotDue(at),
                Ok(_) => Outcome::Elsewhere,
                Err(e) => Outcome::Failed(e.to_string()),
            }
        }
        Err(e) => {
            log::warn!("job {} failed (it stays due): {e}", job.name);
            Outcome::Failed(e.to_string())
        }
    }
}
