-- Management tokens of service providers: support staff create them for a provider's keys
-- (SPEC §4 "Management API"). Such a token belongs to the provider, not to an organization,
-- and acts with the rights of the support specialist who created it — on that provider's
-- keys only, never on a client's. A token has exactly one holder: an organization (and one
-- of its web users as creator) or a service provider (and a staff account as creator).
ALTER TABLE management_tokens
    ALTER COLUMN organization_id DROP NOT NULL,
    ALTER COLUMN created_by_user_id DROP NOT NULL,
    ADD COLUMN service_provider_id bigint REFERENCES service_providers (id) ON DELETE CASCADE,
    ADD COLUMN created_by_staff_id bigint REFERENCES staff_accounts (id) ON DELETE CASCADE,
    ADD CONSTRAINT management_tokens_one_holder CHECK (
        (organization_id IS NOT NULL AND created_by_user_id IS NOT NULL
            AND service_provider_id IS NULL AND created_by_staff_id IS NULL)
        OR (organization_id IS NULL AND created_by_user_id IS NULL
            AND service_provider_id IS NOT NULL AND created_by_staff_id IS NOT NULL
            -- A provider has no users and no audit pages of its own: keys only.
            AND scopes <@ ARRAY['keys:read', 'keys:write']::text[])
    );
CREATE INDEX management_tokens_provider_idx
    ON management_tokens (service_provider_id, created_at DESC, id DESC) WHERE service_provider_id IS NOT NULL;
CREATE INDEX management_tokens_staff_idx ON management_tokens (created_by_staff_id) WHERE created_by_staff_id IS NOT NULL;

DROP TRIGGER management_tokens_notify_update ON management_tokens;
CREATE TRIGGER management_tokens_notify_update AFTER UPDATE OF
        scopes, allowed_cidrs, secret_hash, expires_at, revoked_at, organization_id, created_by_user_id,
        service_provider_id, created_by_staff_id
    ON management_tokens FOR EACH ROW EXECUTE FUNCTION keyward_notify_token();

-- A provider token is as powerful as its creator is now: deactivating the support
-- specialist stops their tokens on every instance (`staff:<id>` on the keys channel).
CREATE FUNCTION keyward_notify_staff() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('keyward_keys', 'staff:' || NEW.id);
    RETURN NULL;
END $$;
CREATE TRIGGER staff_accounts_notify AFTER UPDATE OF active ON staff_accounts
    FOR EACH ROW EXECUTE FUNCTION keyward_notify_staff();
