-- Indexes for the list pages at scale (10,000 users, 100,000 keys per organization): every
-- sort order of the user list, the audit log's action filter, and substring search (ILIKE
-- '%term%') through trigram indexes. pg_trgm ships with PostgreSQL and is a trusted
-- extension: the database owner may create it.
CREATE EXTENSION IF NOT EXISTS pg_trgm;

CREATE INDEX api_keys_name_trgm_idx ON api_keys USING gin (name gin_trgm_ops);
CREATE INDEX api_keys_comment_trgm_idx ON api_keys USING gin (comment gin_trgm_ops);

DROP INDEX users_organization_id_idx;
CREATE INDEX users_organization_name_idx ON users (organization_id, display_name, id);
CREATE INDEX users_organization_email_idx ON users (organization_id, email);
CREATE INDEX users_organization_last_login_idx ON users (organization_id, last_login_at DESC NULLS LAST, id);
CREATE INDEX users_organization_created_idx ON users (organization_id, created_at DESC, id DESC);
CREATE INDEX users_display_name_trgm_idx ON users USING gin (display_name gin_trgm_ops);
CREATE INDEX users_email_trgm_idx ON users USING gin (email gin_trgm_ops);

CREATE INDEX audit_events_organization_action_time_idx
    ON audit_events (organization_id, action, occurred_at DESC, id DESC);
CREATE INDEX audit_events_actor_label_trgm_idx ON audit_events USING gin (actor_label gin_trgm_ops);
CREATE INDEX audit_events_target_label_trgm_idx ON audit_events USING gin (target_label gin_trgm_ops);
-- The target filter also matches a target's exact id (a key's public id, a user's id).
CREATE INDEX audit_events_target_id_idx ON audit_events (target_id);
