ALTER TABLE audit_events DROP CONSTRAINT audit_events_actor_type_check;
-- NOT VALID: audit rows written by tokens stay (the log is append-only), new ones are refused.
ALTER TABLE audit_events ADD CONSTRAINT audit_events_actor_type_check
    CHECK (actor_type IN ('user', 'staff', 'key', 'anonymous', 'system')) NOT VALID;
DROP TABLE management_idempotency;
DROP TABLE management_tokens;
DROP FUNCTION keyward_notify_token();
