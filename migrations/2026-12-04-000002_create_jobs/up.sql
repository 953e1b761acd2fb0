-- Background jobs (issue 18, item 6): one row per registered job, saying when it is next due.
-- A runner (any instance's background task, or `keyward run-jobs`) locks a due row with
-- `FOR UPDATE SKIP LOCKED`, runs the job in that same transaction and moves `next_run_at`
-- on before committing: the job's effects and its schedule commit together, so no two
-- runners ever run one job for the same period, and a failed run stays due. Rows are
-- created by the runner for the jobs the code registers; no migration is needed per job.
CREATE TABLE jobs (
    name         text PRIMARY KEY CHECK (name ~ '^[a-z0-9][a-z0-9-]{0,62}$'),
    next_run_at  timestamptz NOT NULL,
    last_run_at  timestamptz,
    -- What the last run did, in one line (for operators; never a secret).
    last_outcome text NOT NULL DEFAULT '' CHECK (length(last_outcome) <= 500)
);
