-- Management tokens: the credentials of the management API (`/api/v1/keys`, `/users`,
-- `/audit-events`). Their own table, not rows of `api_keys`: a token is not a key of the
-- platform (the verification API must never accept one), it carries scopes instead of API
-- actions, and it acts with the rights of the administrator who created it, checked again
-- at every use. Only the keyed hash of the secret is stored, as for keys.
CREATE TABLE management_tokens (
    id                  bigserial PRIMARY KEY,
    public_id           text NOT NULL UNIQUE,
    organization_id     bigint NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    -- The web user whose rights the token acts with (and is capped by, at use too).
    created_by_user_id  bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name                text NOT NULL,
    scopes              text[] NOT NULL CHECK (scopes <@ ARRAY['keys:read', 'keys:write', 'users:read',
                                                              'users:access', 'audit:read']::text[]),
    allowed_cidrs       cidr[] NOT NULL DEFAULT '{}',
    secret_hash         bytea NOT NULL,
    secret_last4        text NOT NULL,
    expires_at          timestamptz,
    created_at          timestamptz NOT NULL DEFAULT now(),
    revoked_at          timestamptz,
    revoked_reason      text
);
CREATE INDEX management_tokens_organization_idx ON management_tokens (organization_id, created_at DESC, id DESC);
CREATE INDEX management_tokens_creator_idx ON management_tokens (created_by_user_id);

-- Every instance caches tokens (no hashing or write per request): a revocation (or any
-- change of what a token may do) notifies the same channel as keys, so every instance drops
-- the token within the listener's poll interval. The creator's changes already notify
-- `user:<id>`, their organization's role changes `org:<id>`.
CREATE FUNCTION keyward_notify_token() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM pg_notify('keyward_keys', 'token:' || OLD.public_id);
        RETURN OLD;
    END IF;
    PERFORM pg_notify('keyward_keys', 'token:' || NEW.public_id);
    RETURN NEW;
END $$;

CREATE TRIGGER management_tokens_notify_delete AFTER DELETE ON management_tokens
    FOR EACH ROW EXECUTE FUNCTION keyward_notify_token();
CREATE TRIGGER management_tokens_notify_update AFTER UPDATE OF
        scopes, allowed_cidrs, secret_hash, expires_at, revoked_at, organization_id, created_by_user_id
    ON management_tokens FOR EACH ROW EXECUTE FUNCTION keyward_notify_token();

-- The first answer to each `Idempotency-Key` of a token, written in the transaction of the
-- change it answers: a retry gets the same answer (without the secret), never a second key.
CREATE TABLE management_idempotency (
    token_id       bigint NOT NULL REFERENCES management_tokens (id) ON DELETE CASCADE,
    key            text NOT NULL,
    -- SHA-256 of method, path and body: the same key with another request is refused.
    request_hash   bytea NOT NULL,
    status         smallint NOT NULL,
    body           jsonb NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (token_id, key)
);

-- The audit log names a token (and, in its label and details, its creator) as the actor.
ALTER TABLE audit_events DROP CONSTRAINT audit_events_actor_type_check;
ALTER TABLE audit_events ADD CONSTRAINT audit_events_actor_type_check
    CHECK (actor_type IN ('user', 'staff', 'key', 'token', 'anonymous', 'system'));
