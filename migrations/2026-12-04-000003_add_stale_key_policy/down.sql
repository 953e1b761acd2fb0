ALTER TABLE organizations DROP COLUMN deactivate_unused_after_days;
