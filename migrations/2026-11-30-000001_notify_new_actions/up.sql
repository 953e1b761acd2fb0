-- A key allowed "all" actions is allowed the catalog as it stands, so a new action must
-- reach the verification caches as well as a changed or retired one.
DROP TRIGGER api_actions_notify ON api_actions;
CREATE TRIGGER api_actions_notify AFTER INSERT OR UPDATE OR DELETE ON api_actions
    FOR EACH STATEMENT EXECUTE FUNCTION keyward_notify_all();
