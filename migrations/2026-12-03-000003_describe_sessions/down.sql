ALTER TABLE sessions
    DROP COLUMN public_id,
    DROP COLUMN client_ip,
    DROP COLUMN client_label,
    DROP COLUMN signed_in_at,
    DROP COLUMN last_seen_at;
