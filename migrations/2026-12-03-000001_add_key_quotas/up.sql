-- Key quotas of an organization's policy (SPEC §3): live keys (not deleted, not expired) per
-- user and per organization, and key creations per user and hour. The defaults stay far
-- from the specification's scale (an organization with 100,000 keys) and from any person's
-- real use, and stop a script creating hundreds of keys a second.
ALTER TABLE organizations
    ADD COLUMN key_quota_per_user integer NOT NULL DEFAULT 500
        CHECK (key_quota_per_user BETWEEN 1 AND 1000000),
    ADD COLUMN key_quota_per_organization integer NOT NULL DEFAULT 250000
        CHECK (key_quota_per_organization BETWEEN 1 AND 10000000),
    ADD COLUMN key_creations_per_hour integer NOT NULL DEFAULT 120
        CHECK (key_creations_per_hour BETWEEN 1 AND 1000000);
