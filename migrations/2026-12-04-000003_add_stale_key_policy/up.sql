-- Stale keys (issue 18, item 4): an organization may have keys that nobody used for N days
-- deactivated by a job; off (NULL) by default. At least a week, because last use is recorded
-- in batches and weekly integrations are common.
ALTER TABLE organizations
    ADD COLUMN deactivate_unused_after_days integer
        CHECK (deactivate_unused_after_days BETWEEN 7 AND 3650);
