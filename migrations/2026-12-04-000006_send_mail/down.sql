ALTER TABLE organizations DROP COLUMN notify_admins_of_keys;
ALTER TABLE users DROP COLUMN receive_digest;
DELETE FROM mail_messages WHERE event_id IS NULL;
DROP INDEX mail_messages_digest_once_per_week;
ALTER TABLE mail_messages
    DROP CONSTRAINT mail_messages_digest_has_sections,
    DROP CONSTRAINT mail_messages_event_or_digest,
    DROP COLUMN digest,
    DROP COLUMN digest_week,
    ALTER COLUMN event_id SET NOT NULL;
DROP INDEX mail_messages_to_send;
ALTER TABLE mail_messages
    DROP COLUMN next_send_at,
    DROP COLUMN send_error,
    DROP COLUMN send_attempts,
    DROP COLUMN sent_at;
