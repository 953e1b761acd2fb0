-- Webhooks (issue 19, item 3): endpoints administrators register, and one delivery per event
-- and endpoint with its attempts, so the delivery log can show them.
--
-- The outbox's `webhook` channel is a fan-out: the `deliver-webhooks` job turns each event's
-- pending `webhook` delivery into one `webhook_deliveries` row per enabled endpoint of the
-- event's organization subscribed to its type (in the job's transaction, once). Senders
-- then claim due rows with `FOR UPDATE SKIP LOCKED`, one per transaction, POST them, and
-- record the answer; the `webhook-id` is derived from the outbox event's id, so a retry (or
-- another instance) carries the same one.
CREATE TABLE webhook_endpoints (
    id                   bigserial PRIMARY KEY,
    organization_id      bigint NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    url                  text NOT NULL CHECK (length(url) BETWEEN 8 AND 2000),
    description          text NOT NULL DEFAULT '' CHECK (length(description) <= 200),
    event_types          text[] NOT NULL CHECK (cardinality(event_types) BETWEEN 1 AND 20),
    -- AES-256-GCM under a key derived from the master secret: it must be readable to sign.
    secret_sealed        bytea NOT NULL,
    enabled              boolean NOT NULL DEFAULT true,
    -- Why Keyward disabled it (deliveries kept failing); NULL when a person did, or enabled.
    disabled_reason      text CHECK (length(disabled_reason) <= 300),
    disabled_at          timestamptz,
    consecutive_failures integer NOT NULL DEFAULT 0,
    created_at           timestamptz NOT NULL,
    updated_at           timestamptz NOT NULL
);
CREATE INDEX webhook_endpoints_by_organization ON webhook_endpoints (organization_id, id);

CREATE TABLE webhook_deliveries (
    id              bigserial PRIMARY KEY,
    event_id        bigint NOT NULL REFERENCES outbox_events (id) ON DELETE CASCADE,
    endpoint_id     bigint NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    status          text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL,
    last_attempt_at timestamptz,
    -- The HTTP status of the last answer, if there was one.
    response_status integer,
    -- What went wrong last (never a secret; at most a short excerpt of the answer's body).
    last_error      text CHECK (length(last_error) <= 500),
    created_at      timestamptz NOT NULL,
    UNIQUE (event_id, endpoint_id)
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_by_endpoint ON webhook_deliveries (endpoint_id, id DESC);
