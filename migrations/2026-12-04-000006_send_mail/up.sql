-- Mail over SMTP, the weekly digest and the administrators' choice (issue 19, items 2 and 5).
--
-- With KEYWARD_SMTP_URL set, the messages of `mail_messages` are also sent. Sending is
-- tracked per message: `next_send_at` is when it is next tried (NULL: not to be sent, because
-- it was sent, given up, or written before SMTP was configured), `send_attempts` and
-- `send_error` what the tries said. Workers claim due rows with `FOR UPDATE SKIP LOCKED`.
ALTER TABLE mail_messages
    ADD COLUMN sent_at timestamptz,
    ADD COLUMN send_attempts integer NOT NULL DEFAULT 0,
    ADD COLUMN send_error text CHECK (length(send_error) <= 500),
    ADD COLUMN next_send_at timestamptz;
-- Mail written before this migration was only ever meant for the browser: not sent late.
ALTER TABLE mail_messages ALTER COLUMN next_send_at SET DEFAULT now();
CREATE INDEX mail_messages_to_send ON mail_messages (next_send_at) WHERE next_send_at IS NOT NULL;

-- A weekly digest is a message of no event: it names the week (its Monday) instead, and
-- carries its sections (keys expiring soon, stale, leaked) to be drawn as text and HTML.
-- One per administrator and week, whichever run or instance writes it first.
ALTER TABLE mail_messages
    ALTER COLUMN event_id DROP NOT NULL,
    ADD COLUMN digest_week date,
    ADD COLUMN digest jsonb,
    ADD CONSTRAINT mail_messages_event_or_digest CHECK ((event_id IS NULL) = (digest_week IS NOT NULL)),
    ADD CONSTRAINT mail_messages_digest_has_sections CHECK ((digest_week IS NULL) = (digest IS NULL));
CREATE UNIQUE INDEX mail_messages_digest_once_per_week ON mail_messages (recipient_user_id, digest_week)
    WHERE digest_week IS NOT NULL;

-- An administrator's choice to get the weekly digest (off until they turn it on).
ALTER TABLE users ADD COLUMN receive_digest boolean NOT NULL DEFAULT false;

-- Whether an organization's administrators get the mail about its keys besides the key's
-- creator (on: as before).
ALTER TABLE organizations ADD COLUMN notify_admins_of_keys boolean NOT NULL DEFAULT true;
