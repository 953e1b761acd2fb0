ALTER TABLE organizations
    DROP COLUMN key_quota_per_user,
    DROP COLUMN key_quota_per_organization,
    DROP COLUMN key_creations_per_hour;
