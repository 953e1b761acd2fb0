DROP TRIGGER api_actions_notify ON api_actions;
CREATE TRIGGER api_actions_notify AFTER UPDATE OR DELETE ON api_actions
    FOR EACH STATEMENT EXECUTE FUNCTION keyward_notify_all();
