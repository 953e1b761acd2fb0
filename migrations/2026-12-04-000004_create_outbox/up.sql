-- Notifications (issue 19, items 1 and 4): a transactional outbox.
--
-- `outbox_events` holds one row per event (a key created, deleted, deactivated, expiring,
-- expired; a user who lost API key access), written in the same transaction as the change
-- and its audit event, so an event exists exactly when its change committed. Its `id` is the
-- idempotency key every channel passes on (a webhook's `webhook-id`, an email's Message-ID).
--
-- Events that come from time rather than from a change (reminders, "expired") carry an
-- `occasion` and the key's expiry at that moment; the unique index makes each of them once
-- per key, occasion and expiry, whichever run or instance writes it first. A new expiry is a
-- new occasion: that is how changing a key's expiry re-arms its reminders.
CREATE TABLE outbox_events (
    id                  bigserial PRIMARY KEY,
    event_type          text NOT NULL CHECK (event_type ~ '^[a-z_]+\.[a-z_]+$'),
    organization_id     bigint REFERENCES organizations (id) ON DELETE CASCADE,
    service_provider_id bigint REFERENCES service_providers (id) ON DELETE CASCADE,
    -- No foreign key: a deleted key's events (`key.deleted` among them) outlive it.
    api_key_id          bigint,
    user_id             bigint REFERENCES users (id) ON DELETE CASCADE,
    occasion            text CHECK (occasion ~ '^[a-z0-9_-]{1,40}$'),
    key_expires_at      timestamptz,
    payload             jsonb NOT NULL,
    created_at          timestamptz NOT NULL DEFAULT now(),
    CHECK ((occasion IS NULL) = (key_expires_at IS NULL))
);
CREATE UNIQUE INDEX outbox_events_once_per_occasion
    ON outbox_events (api_key_id, occasion, key_expires_at) WHERE occasion IS NOT NULL;

-- One row per event and channel, written with the event. Workers claim pending rows with
-- `FOR UPDATE SKIP LOCKED`, deliver, and mark them delivered in the same transaction as
-- what delivering wrote (at least once; any number of instances). Today's one channel is
-- `mail`; SMTP and webhooks (later) add their own channels here.
CREATE TABLE outbox_deliveries (
    id              bigserial PRIMARY KEY,
    event_id        bigint NOT NULL REFERENCES outbox_events (id) ON DELETE CASCADE,
    channel         text NOT NULL CHECK (channel ~ '^[a-z0-9_:-]{1,60}$'),
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    delivered_at    timestamptz,
    last_error      text CHECK (length(last_error) <= 500),
    UNIQUE (event_id, channel)
);
CREATE INDEX outbox_deliveries_pending ON outbox_deliveries (channel, next_attempt_at) WHERE delivered_at IS NULL;

-- The mail the `mail` channel wrote: one plain-text message per event and recipient (a
-- user, or a staff account for service-provider keys). Without SMTP this table is the
-- outbox administrators and staff read in the browser.
CREATE TABLE mail_messages (
    id                  bigserial PRIMARY KEY,
    event_id            bigint NOT NULL REFERENCES outbox_events (id) ON DELETE CASCADE,
    organization_id     bigint REFERENCES organizations (id) ON DELETE CASCADE,
    service_provider_id bigint REFERENCES service_providers (id) ON DELETE CASCADE,
    recipient_user_id   bigint REFERENCES users (id) ON DELETE CASCADE,
    recipient_staff_id  bigint REFERENCES staff_accounts (id) ON DELETE CASCADE,
    recipient_email     text NOT NULL,
    subject             text NOT NULL,
    body                text NOT NULL,
    -- The key page, as a path: the link is built on the public URL when shown or sent.
    link_path           text,
    created_at          timestamptz NOT NULL DEFAULT now(),
    CHECK ((recipient_user_id IS NULL) <> (recipient_staff_id IS NULL))
);
CREATE UNIQUE INDEX mail_messages_once_per_user ON mail_messages (event_id, recipient_user_id)
    WHERE recipient_user_id IS NOT NULL;
CREATE UNIQUE INDEX mail_messages_once_per_staff ON mail_messages (event_id, recipient_staff_id)
    WHERE recipient_staff_id IS NOT NULL;
CREATE INDEX mail_messages_by_organization ON mail_messages (organization_id, id DESC);
CREATE INDEX mail_messages_by_provider ON mail_messages (service_provider_id, id DESC)
    WHERE service_provider_id IS NOT NULL;

-- Reminder days per organization (empty: no reminders), and a person's choice not to get them.
ALTER TABLE organizations
    ADD COLUMN key_reminder_days integer[] NOT NULL DEFAULT '{14,7,1}'
        CHECK (cardinality(key_reminder_days) <= 5 AND 1 <= ALL (key_reminder_days) AND 365 >= ALL (key_reminder_days));
ALTER TABLE users ADD COLUMN receive_reminders boolean NOT NULL DEFAULT true;

-- When a key's expiry was last changed (a key without a row has its expiry from its
-- creation): a reminder whose moment came before that is not sent late (a key given 3 days
-- left gets no 7-day reminder). A trigger keeps it, so that every way of changing an expiry
-- (an edit, a re-key that clamps it to the policy, an operator's SQL) re-arms the
-- reminders. A table of its own because `api_keys` has diesel's 32 columns already.
CREATE TABLE key_expiry_changes (
    api_key_id bigint PRIMARY KEY REFERENCES api_keys (id) ON DELETE CASCADE,
    changed_at timestamptz NOT NULL
);
CREATE FUNCTION keyward_note_expiry_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.expires_at IS DISTINCT FROM OLD.expires_at THEN
        INSERT INTO key_expiry_changes (api_key_id, changed_at) VALUES (NEW.id, now())
            ON CONFLICT (api_key_id) DO UPDATE SET changed_at = excluded.changed_at;
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER api_keys_note_expiry_change AFTER UPDATE OF expires_at ON api_keys
    FOR EACH ROW EXECUTE FUNCTION keyward_note_expiry_change();
