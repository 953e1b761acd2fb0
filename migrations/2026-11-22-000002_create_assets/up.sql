-- Assets (vehicles, devices, sites…) and asset groups a key can be limited to.
-- `code` is the platform's own identifier of the asset, the value the verification API
-- receives; `name` is for people and may change.

CREATE TABLE assets (
    id               bigserial PRIMARY KEY,
    organization_id  bigint NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    code             text NOT NULL CHECK (code ~ '^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$'),
    name             text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 100),
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (organization_id, code),
    UNIQUE (id, organization_id)
);

CREATE TABLE asset_groups (
    id               bigserial PRIMARY KEY,
    organization_id  bigint NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    name             text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 100),
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (organization_id, name),
    UNIQUE (id, organization_id)
);

CREATE TABLE asset_group_members (
    organization_id  bigint NOT NULL,
    asset_group_id   bigint NOT NULL,
    asset_id         bigint NOT NULL,
    PRIMARY KEY (asset_group_id, asset_id),
    FOREIGN KEY (asset_group_id, organization_id) REFERENCES asset_groups (id, organization_id) ON DELETE CASCADE,
    FOREIGN KEY (asset_id, organization_id) REFERENCES assets (id, organization_id) ON DELETE CASCADE
);
CREATE INDEX asset_group_members_asset_id_idx ON asset_group_members (asset_id);
