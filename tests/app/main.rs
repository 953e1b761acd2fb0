//! Integration tests: the real application over HTTP against a real PostgreSQL, one fresh
//! database per test (cloned from a migrated template). See `helpers` for the harness.

mod fixtures;
mod helpers;
mod page;

mod admin_matrix;
mod admin_settings;
mod admin_users;
mod audit_log;
mod auth;
mod bad_input;
mod browser;
mod browser_layout;
mod ceiling;
mod cli;
mod concurrency;
mod factor_policy;
mod hygiene;
mod journeys;
mod key_matrix;
mod keys;
mod limits;
mod look;
mod management_api;
mod metrics;
mod notifications;
mod offered;
mod overview;
mod passkeys;
mod product;
mod resilience;
mod scale;
mod search_plans;
mod second_factor;
mod security;
mod sessions_list;
mod staff;
mod stale_keys;
mod static_files;
mod sudo;
mod usage;
mod user_keys;
mod verify;
mod walk;
