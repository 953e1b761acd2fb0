ALTER TABLE api_keys DROP COLUMN deactivation_reason, DROP COLUMN rekey_token, DROP COLUMN create_token;
DROP TABLE role_api_actions;
ALTER TABLE roles DROP COLUMN all_api_actions;
