-- The audit log. Rows are written in the same transaction as the change they record and
-- are never updated. They carry labels (email, key name…) rather than foreign keys so
-- that the record of a deleted key or organization outlives it. Never a secret or hash.

CREATE TABLE audit_events (
    id                    bigserial PRIMARY KEY,
    occurred_at           timestamptz NOT NULL DEFAULT now(),
    organization_id       bigint,
    service_provider_id   bigint,
    actor_type            text NOT NULL CHECK (actor_type IN ('user', 'staff', 'key', 'anonymous', 'system')),
    actor_id              bigint,
    actor_label           text NOT NULL DEFAULT '',
    action                text NOT NULL CHECK (action ~ '^[a-z_]+(\.[a-z_]+)+$'),
    target_type           text,
    target_id             text,
    target_label          text,
    result                text NOT NULL CHECK (result IN ('success', 'denied', 'failure')),
    client_ip             inet,
    details               jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_events_organization_time_idx ON audit_events (organization_id, occurred_at DESC, id DESC);
CREATE INDEX audit_events_service_provider_time_idx ON audit_events (service_provider_id, occurred_at DESC)
    WHERE service_provider_id IS NOT NULL;
-- Login throttling counts recent failures per account and per client address.
CREATE INDEX audit_events_login_failures_by_account_idx ON audit_events (target_label, occurred_at)
    WHERE action = 'login.failure';
CREATE INDEX audit_events_login_failures_by_ip_idx ON audit_events (client_ip, occurred_at)
    WHERE action = 'login.failure';
