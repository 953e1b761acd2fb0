-- Server-side login sessions (actix-session's SessionStore). The primary key is the
-- SHA-256 of the session key, so the table alone never yields a usable cookie.

CREATE TABLE sessions (
    id          text PRIMARY KEY CHECK (id ~ '^[0-9a-f]{64}$'),
    user_id     bigint REFERENCES users (id) ON DELETE CASCADE,
    staff_id    bigint REFERENCES staff_accounts (id) ON DELETE CASCADE,
    state       jsonb NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    CONSTRAINT sessions_single_actor CHECK (num_nonnulls(user_id, staff_id) <= 1)
);
CREATE INDEX sessions_user_id_idx ON sessions (user_id) WHERE user_id IS NOT NULL;
CREATE INDEX sessions_staff_id_idx ON sessions (staff_id) WHERE staff_id IS NOT NULL;
CREATE INDEX sessions_expires_at_idx ON sessions (expires_at);
