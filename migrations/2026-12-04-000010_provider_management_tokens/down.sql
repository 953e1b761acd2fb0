DROP TRIGGER staff_accounts_notify ON staff_accounts;
DROP FUNCTION keyward_notify_staff();
DROP TRIGGER management_tokens_notify_update ON management_tokens;
CREATE TRIGGER management_tokens_notify_update AFTER UPDATE OF
        scopes, allowed_cidrs, secret_hash, expires_at, revoked_at, organization_id, created_by_user_id
    ON management_tokens FOR EACH ROW EXECUTE FUNCTION keyward_notify_token();
DELETE FROM management_tokens WHERE service_provider_id IS NOT NULL;
ALTER TABLE management_tokens
    DROP CONSTRAINT management_tokens_one_holder,
    DROP COLUMN created_by_staff_id,
    DROP COLUMN service_provider_id,
    ALTER COLUMN created_by_user_id SET NOT NULL,
    ALTER COLUMN organization_id SET NOT NULL;
