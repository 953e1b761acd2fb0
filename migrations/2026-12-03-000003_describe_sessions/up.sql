-- What Account → Security lists about each signed-in session: a random handle for its
-- "sign out" button (never the key or its hash), the address and a short browser label
-- captured at sign-in, when it signed in, and when it was last seen (written at most once a
-- minute, together with the idle deadline).
ALTER TABLE sessions
    ADD COLUMN public_id text CHECK (public_id ~ '^[A-Za-z0-9_-]{8,64}$'),
    ADD COLUMN client_ip text CHECK (length(client_ip) <= 64),
    ADD COLUMN client_label text CHECK (length(client_label) <= 80),
    ADD COLUMN signed_in_at timestamptz,
    ADD COLUMN last_seen_at timestamptz NOT NULL DEFAULT now();
