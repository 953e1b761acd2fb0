DROP TABLE asset_group_members;
DROP TABLE asset_groups;
DROP TABLE assets;
