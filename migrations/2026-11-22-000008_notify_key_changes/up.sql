-- Cache coherence for the verification API: every change that can change a verification
-- answer sends a notification on channel `keyward_keys`, delivered to every instance at
-- commit. Payloads: `key:<public id>`, `user:<id>`, `org:<id>`, `all`. The triggers fire on
-- the columns that matter only, so the batched last-used updates notify nobody.

CREATE FUNCTION keyward_notify_key() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM pg_notify('keyward_keys', 'key:' || OLD.public_id);
        RETURN OLD;
    END IF;
    PERFORM pg_notify('keyward_keys', 'key:' || NEW.public_id);
    RETURN NEW;
END $$;

CREATE TRIGGER api_keys_notify_insert_delete AFTER INSERT OR DELETE ON api_keys
    FOR EACH ROW EXECUTE FUNCTION keyward_notify_key();
CREATE TRIGGER api_keys_notify_update AFTER UPDATE OF
        name, comment, all_actions, all_assets, allowed_cidrs, expires_at, proxy_user_id, active,
        secret_hash, previous_secret_hash, previous_secret_expires_at, organization_id,
        owner_user_id, owner_organization_id, owner_service_provider_id, environment
    ON api_keys FOR EACH ROW EXECUTE FUNCTION keyward_notify_key();

-- Scopes of a key (actions, assets, asset groups): notify the key.
CREATE FUNCTION keyward_notify_key_scope() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    changed_key bigint;
    changed_public_id text;
BEGIN
    IF TG_OP = 'DELETE' THEN changed_key := OLD.api_key_id; ELSE changed_key := NEW.api_key_id; END IF;
    SELECT public_id INTO changed_public_id FROM api_keys WHERE id = changed_key;
    IF changed_public_id IS NOT NULL THEN
        PERFORM pg_notify('keyward_keys', 'key:' || changed_public_id);
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER api_key_actions_notify AFTER INSERT OR UPDATE OR DELETE ON api_key_actions
    FOR EACH ROW EXECUTE FUNCTION keyward_notify_key_scope();
CREATE TRIGGER api_key_assets_notify AFTER INSERT OR UPDATE OR DELETE ON api_key_assets
    FOR EACH ROW EXECUTE FUNCTION keyward_notify_key_scope();
CREATE TRIGGER api_key_asset_groups_notify AFTER INSERT OR UPDATE OR DELETE ON api_key_asset_groups
    FOR EACH ROW EXECUTE FUNCTION keyward_notify_key_scope();

-- A user's state decides whether their personal keys work (active, API key access, roles).
CREATE FUNCTION keyward_notify_user() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM pg_notify('keyward_keys', 'user:' || OLD.user_id);
        RETURN NULL;
    END IF;
    IF TG_TABLE_NAME = 'users' THEN
        PERFORM pg_notify('keyward_keys', 'user:' || NEW.id);
    ELSE
        PERFORM pg_notify('keyward_keys', 'user:' || NEW.user_id);
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER users_notify AFTER UPDATE OF active, api_key_access, is_admin, organization_id ON users
    FOR EACH ROW EXECUTE FUNCTION keyward_notify_user();
CREATE TRIGGER user_roles_notify AFTER INSERT OR UPDATE OR DELETE ON user_roles
    FOR EACH ROW EXECUTE FUNCTION keyward_notify_user();

-- Organization-wide changes: policy, roles and what they allow, assets and groups.
CREATE FUNCTION keyward_notify_org() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    row_data record;
    org bigint;
BEGIN
    IF TG_OP = 'DELETE' THEN row_data := OLD; ELSE row_data := NEW; END IF;
    IF TG_TABLE_NAME = 'organizations' THEN
        org := row_data.id;
    ELSIF TG_TABLE_NAME IN ('role_permissions', 'role_api_actions') THEN
        SELECT organization_id INTO org FROM roles WHERE id = row_data.role_id;
    ELSE
        org := row_data.organization_id;
    END IF;
    IF org IS NOT NULL THEN
        PERFORM pg_notify('keyward_keys', 'org:' || org);
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER organizations_notify AFTER UPDATE OR DELETE ON organizations
    FOR EACH ROW EXECUTE FUNCTION keyward_notify_org();
CREATE TRIGGER roles_notify AFTER UPDATE OF all_api_actions OR DELETE ON roles
    FOR EACH ROW EXECUTE FUNCTION keyward_notify_org();
CREATE TRIGGER role_permissions_notify AFTER INSERT OR UPDATE OR DELETE ON role_permissions
    FOR EACH ROW EXECUTE FUNCTION keyward_notify_org();
CREATE TRIGGER role_api_actions_notify AFTER INSERT OR UPDATE OR DELETE ON role_api_actions
    FOR EACH ROW EXECUTE FUNCTION keyward_notify_org();
CREATE TRIGGER assets_notify AFTER UPDATE OF code OR DELETE ON assets
    FOR EACH ROW EXECUTE FUNCTION keyward_notify_org();
CREATE TRIGGER asset_groups_notify AFTER DELETE ON asset_groups
    FOR EACH ROW EXECUTE FUNCTION keyward_notify_org();
CREATE TRIGGER asset_group_members_notify AFTER INSERT OR UPDATE OR DELETE ON asset_group_members
    FOR EACH ROW EXECUTE FUNCTION keyward_notify_org();

-- The action catalog is platform-wide (retiring an action changes keys everywhere).
CREATE FUNCTION keyward_notify_all() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('keyward_keys', 'all');
    RETURN NULL;
END $$;

CREATE TRIGGER api_actions_notify AFTER UPDATE OR DELETE ON api_actions
    FOR EACH STATEMENT EXECUTE FUNCTION keyward_notify_all();
