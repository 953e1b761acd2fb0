-- The audit log is append-only for everyone, whatever their privileges: a trigger refuses
-- UPDATE, DELETE and TRUNCATE of audit rows in ordinary statements, from any role, the
-- tables' owner included. Privileges alone would not do: the owner (and a superuser) holds
-- every privilege on its table and cannot revoke them from itself for good.
--
-- No foreign key references `audit_events` and it references nothing: rows carry labels and
-- plain ids, so deleting a key, user or organization (or a cascade from one) never changes
-- or removes an audit row. Keep it so: an `ON DELETE SET NULL` or `CASCADE` here would be
-- refused by this trigger and block the deletion instead.
--
-- The one way out is the operator's purge (`keyward purge-audit --before DATE`): it deletes
-- old events in a transaction that has set `keyward.audit_purge` to the cutoff and records
-- the purge in the same transaction. Any role can set that setting, so the trigger also
-- demands that the role deleting own the table: the application's role never does.

CREATE FUNCTION keyward_protect_audit_events() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    cutoff text := current_setting('keyward.audit_purge', true);
BEGIN
    IF TG_OP = 'DELETE'
        AND cutoff IS NOT NULL AND cutoff <> ''
        AND pg_has_role(current_user, (SELECT relowner FROM pg_class WHERE oid = TG_RELID), 'USAGE')
        AND OLD.occurred_at < cutoff::timestamptz
    THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'audit events cannot be changed or removed (% on %)', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege',
              HINT = 'Old events are removed only by `keyward purge-audit`, run as the owner of the tables.';
END $$;

CREATE TRIGGER audit_events_append_only BEFORE UPDATE OR DELETE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION keyward_protect_audit_events();
CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events
    FOR EACH STATEMENT EXECUTE FUNCTION keyward_protect_audit_events();

