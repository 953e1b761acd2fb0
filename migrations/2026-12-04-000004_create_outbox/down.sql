DROP TRIGGER api_keys_note_expiry_change ON api_keys;
DROP FUNCTION keyward_note_expiry_change();
DROP TABLE key_expiry_changes;
ALTER TABLE users DROP COLUMN receive_reminders;
ALTER TABLE organizations DROP COLUMN key_reminder_days;
DROP TABLE mail_messages;
DROP TABLE outbox_deliveries;
DROP TABLE outbox_events;
