-- The management API's rate limit, shared by every instance: each authenticated request of a
-- token adds one to the row of its token and minute (one upsert; the verification API never
-- writes here). The `management-rate-windows` job deletes the minutes that are over.
CREATE TABLE management_rate_windows (
    token_id      bigint NOT NULL REFERENCES management_tokens (id) ON DELETE CASCADE,
    -- The start of a fixed one-minute window (a whole minute, UTC).
    window_start  timestamptz NOT NULL,
    requests      integer NOT NULL CHECK (requests > 0),
    PRIMARY KEY (token_id, window_start)
);
