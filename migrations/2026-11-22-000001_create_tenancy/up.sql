-- Tenancy: service providers, client organizations (with their key policy), web users,
-- support staff, and per-organization custom roles.

CREATE TABLE service_providers (
    id          bigserial PRIMARY KEY,
    name        text NOT NULL UNIQUE CHECK (char_length(name) BETWEEN 1 AND 100),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE organizations (
    id                          bigserial PRIMARY KEY,
    slug                        text NOT NULL UNIQUE CHECK (slug ~ '^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$'),
    name                        text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 100),
    service_provider_id         bigint REFERENCES service_providers (id) ON DELETE SET NULL,
    -- Key policy: applied when keys are created, edited and re-keyed.
    key_default_lifetime_days   integer NOT NULL DEFAULT 365 CHECK (key_default_lifetime_days BETWEEN 1 AND 3650),
    key_max_lifetime_days       integer CHECK (key_max_lifetime_days BETWEEN 1 AND 3650),
    key_allow_never_expires     boolean NOT NULL DEFAULT false,
    key_default_grace_minutes   integer NOT NULL DEFAULT 240 CHECK (key_default_grace_minutes BETWEEN 0 AND 10080),
    created_at                  timestamptz NOT NULL DEFAULT now(),
    updated_at                  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT organizations_default_within_max
        CHECK (key_max_lifetime_days IS NULL OR key_default_lifetime_days <= key_max_lifetime_days)
);
CREATE INDEX organizations_service_provider_id_idx ON organizations (service_provider_id);

CREATE TABLE users (
    id               bigserial PRIMARY KEY,
    organization_id  bigint NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    -- Emails are stored normalized to lower case; login is by email alone, so they are
    -- unique across the platform.
    email            text NOT NULL UNIQUE CHECK (email = lower(email) AND char_length(email) BETWEEN 3 AND 254),
    display_name     text NOT NULL CHECK (char_length(display_name) BETWEEN 1 AND 100),
    -- NULL until the user sets a password (e.g. through a one-time link).
    password_hash    text,
    is_admin         boolean NOT NULL DEFAULT false,
    api_key_access   boolean NOT NULL DEFAULT false,
    active           boolean NOT NULL DEFAULT true,
    last_login_at    timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    -- Target of composite foreign keys that keep related rows inside one organization.
    UNIQUE (id, organization_id)
);
CREATE INDEX users_organization_id_idx ON users (organization_id);

CREATE TABLE staff_accounts (
    id             bigserial PRIMARY KEY,
    email          text NOT NULL UNIQUE CHECK (email = lower(email) AND char_length(email) BETWEEN 3 AND 254),
    display_name   text NOT NULL CHECK (char_length(display_name) BETWEEN 1 AND 100),
    password_hash  text,
    active         boolean NOT NULL DEFAULT true,
    last_login_at  timestamptz,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE roles (
    id               bigserial PRIMARY KEY,
    organization_id  bigint NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    name             text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 60),
    description      text NOT NULL DEFAULT '' CHECK (char_length(description) <= 500),
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (organization_id, name),
    UNIQUE (id, organization_id)
);

CREATE TABLE role_permissions (
    role_id     bigint NOT NULL REFERENCES roles (id) ON DELETE CASCADE,
    permission  text NOT NULL CHECK (permission IN ('keys.manage', 'keys.own', 'users.manage', 'audit.read')),
    PRIMARY KEY (role_id, permission)
);

CREATE TABLE user_roles (
    organization_id  bigint NOT NULL,
    user_id          bigint NOT NULL,
    role_id          bigint NOT NULL,
    PRIMARY KEY (user_id, role_id),
    FOREIGN KEY (user_id, organization_id) REFERENCES users (id, organization_id) ON DELETE CASCADE,
    FOREIGN KEY (role_id, organization_id) REFERENCES roles (id, organization_id) ON DELETE CASCADE
);
CREATE INDEX user_roles_role_id_idx ON user_roles (role_id);
