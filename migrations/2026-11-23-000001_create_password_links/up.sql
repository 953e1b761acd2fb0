-- One-time links with which a web user sets their password (after an administrator created
-- the account or reset its password). Only the SHA-256 of the token is stored; a link works
-- once and for a limited time.

CREATE TABLE password_links (
    id          bigserial PRIMARY KEY,
    token_hash  text NOT NULL UNIQUE CHECK (token_hash ~ '^[0-9a-f]{64}$'),
    user_id     bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz
);
CREATE INDEX password_links_user_id_idx ON password_links (user_id);
