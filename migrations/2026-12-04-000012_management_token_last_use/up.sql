-- When and from where a management token was last used, for the API access pages: an
-- unused token is one to revoke. Written in batches from memory (at most once a minute per
-- token and instance), like keys' last use; not a column the change notices watch.
ALTER TABLE management_tokens
    ADD COLUMN last_used_at timestamptz,
    ADD COLUMN last_used_ip inet;
