DROP TABLE api_key_asset_groups;
DROP TABLE api_key_assets;
DROP TABLE api_key_actions;
DROP TABLE api_keys;
