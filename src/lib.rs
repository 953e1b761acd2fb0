//! Keyward: self-hosted, multi-tenant API key management (see `README.md`).

pub mod auth;
pub mod cli;
pub mod clock;
pub mod commands;
pub mod config;
pub mod db;
pub mod devdb;
pub mod domain;
pub mod error;
pub mod http;
pub mod jobs;
pub mod keys;
pub mod metrics;
pub mod readiness;
pub mod request_id;
pub mod routes;
pub mod secrets;
pub mod services;
pub mod startup;
pub mod state;
pub mod views;
