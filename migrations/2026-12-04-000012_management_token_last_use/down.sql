ALTER TABLE management_tokens DROP COLUMN last_used_ip, DROP COLUMN last_used_at;
