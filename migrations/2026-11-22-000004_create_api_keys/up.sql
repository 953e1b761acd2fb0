-- API keys and their scopes. Only a keyed hash (HMAC-SHA-256 with a server-side pepper)
-- of each secret is stored; `public_id` is the key's public identifier, used to find it.

CREATE TABLE api_keys (
    id                             bigserial PRIMARY KEY,
    public_id                      text NOT NULL UNIQUE CHECK (public_id ~ '^[0-9A-Za-z]{8}$'),
    environment                    text NOT NULL DEFAULT 'live' CHECK (environment IN ('live', 'test')),
    -- The tenant the key lives in: the owning organization or the owning user's
    -- organization; NULL only for service-provider keys.
    organization_id                bigint REFERENCES organizations (id) ON DELETE CASCADE,
    owner_user_id                  bigint,
    owner_organization_id          bigint REFERENCES organizations (id) ON DELETE CASCADE,
    owner_service_provider_id      bigint REFERENCES service_providers (id) ON DELETE CASCADE,
    name                           text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 100),
    comment                        text NOT NULL DEFAULT '' CHECK (char_length(comment) <= 1000),
    all_actions                    boolean NOT NULL DEFAULT true,
    all_assets                     boolean NOT NULL DEFAULT true,
    allowed_cidrs                  cidr[] NOT NULL DEFAULT '{}',
    -- NULL: never expires (only where the organization's policy allows it).
    expires_at                     timestamptz,
    proxy_user_id                  bigint,
    active                         boolean NOT NULL DEFAULT true,
    secret_hash                    bytea NOT NULL CHECK (octet_length(secret_hash) = 32),
    secret_last4                   text NOT NULL CHECK (char_length(secret_last4) = 4),
    -- The previous secret during a re-key grace period: at most two secrets are valid.
    previous_secret_hash           bytea CHECK (octet_length(previous_secret_hash) = 32),
    previous_secret_last4          text CHECK (char_length(previous_secret_last4) = 4),
    previous_secret_expires_at     timestamptz,
    previous_secret_last_used_at   timestamptz,
    rekeyed_at                     timestamptz,
    created_at                     timestamptz NOT NULL DEFAULT now(),
    created_by_user_id             bigint REFERENCES users (id) ON DELETE SET NULL,
    created_by_staff_id            bigint REFERENCES staff_accounts (id) ON DELETE SET NULL,
    updated_at                     timestamptz NOT NULL DEFAULT now(),
    deactivated_at                 timestamptz,
    last_used_at                   timestamptz,
    last_used_ip                   inet,
    CONSTRAINT api_keys_exactly_one_owner
        CHECK (num_nonnulls(owner_user_id, owner_organization_id, owner_service_provider_id) = 1),
    CONSTRAINT api_keys_tenant_matches_owner CHECK (
        (owner_service_provider_id IS NOT NULL AND organization_id IS NULL)
        OR (owner_organization_id IS NOT NULL AND organization_id = owner_organization_id)
        OR (owner_user_id IS NOT NULL AND organization_id IS NOT NULL)
    ),
    -- Organization keys are always attributed to a proxy user; other keys never have one.
    CONSTRAINT api_keys_proxy_iff_organization_key
        CHECK ((proxy_user_id IS NOT NULL) = (owner_organization_id IS NOT NULL)),
    CONSTRAINT api_keys_previous_secret_complete CHECK (
        (previous_secret_hash IS NULL) = (previous_secret_expires_at IS NULL)
        AND (previous_secret_hash IS NULL) = (previous_secret_last4 IS NULL)
    ),
    CONSTRAINT api_keys_creator_known CHECK (num_nonnulls(created_by_user_id, created_by_staff_id) <= 1),
    FOREIGN KEY (owner_user_id, organization_id) REFERENCES users (id, organization_id) ON DELETE CASCADE,
    FOREIGN KEY (proxy_user_id, organization_id) REFERENCES users (id, organization_id),
    UNIQUE (id, organization_id)
);
CREATE INDEX api_keys_organization_created_idx ON api_keys (organization_id, created_at DESC, id DESC);
CREATE INDEX api_keys_organization_expires_idx ON api_keys (organization_id, expires_at);
CREATE INDEX api_keys_owner_user_id_idx ON api_keys (owner_user_id, created_at DESC);
CREATE INDEX api_keys_owner_organization_id_idx ON api_keys (owner_organization_id);
CREATE INDEX api_keys_owner_service_provider_id_idx ON api_keys (owner_service_provider_id, created_at DESC);
CREATE INDEX api_keys_proxy_user_id_idx ON api_keys (proxy_user_id);
CREATE INDEX api_keys_created_by_user_id_idx ON api_keys (created_by_user_id);
CREATE INDEX api_keys_created_by_staff_id_idx ON api_keys (created_by_staff_id);

CREATE TABLE api_key_actions (
    api_key_id     bigint NOT NULL REFERENCES api_keys (id) ON DELETE CASCADE,
    api_action_id  bigint NOT NULL REFERENCES api_actions (id) ON DELETE CASCADE,
    PRIMARY KEY (api_key_id, api_action_id)
);
CREATE INDEX api_key_actions_api_action_id_idx ON api_key_actions (api_action_id);

CREATE TABLE api_key_assets (
    organization_id  bigint NOT NULL,
    api_key_id       bigint NOT NULL,
    asset_id         bigint NOT NULL,
    PRIMARY KEY (api_key_id, asset_id),
    FOREIGN KEY (api_key_id, organization_id) REFERENCES api_keys (id, organization_id) ON DELETE CASCADE,
    FOREIGN KEY (asset_id, organization_id) REFERENCES assets (id, organization_id) ON DELETE CASCADE
);
CREATE INDEX api_key_assets_asset_id_idx ON api_key_assets (asset_id);

CREATE TABLE api_key_asset_groups (
    organization_id  bigint NOT NULL,
    api_key_id       bigint NOT NULL,
    asset_group_id   bigint NOT NULL,
    PRIMARY KEY (api_key_id, asset_group_id),
    FOREIGN KEY (api_key_id, organization_id) REFERENCES api_keys (id, organization_id) ON DELETE CASCADE,
    FOREIGN KEY (asset_group_id, organization_id) REFERENCES asset_groups (id, organization_id) ON DELETE CASCADE
);
CREATE INDEX api_key_asset_groups_asset_group_id_idx ON api_key_asset_groups (asset_group_id);
