DROP TABLE user_roles;
DROP TABLE role_permissions;
DROP TABLE roles;
DROP TABLE staff_accounts;
DROP TABLE users;
DROP TABLE organizations;
DROP TABLE service_providers;
