//! Business rules that change data. Each public function takes the connection, the
//! [`actor::Actor`] and parsed input, checks what the actor may do, and writes the change
//! with its audit event; callers run it inside one transaction.

pub mod actor;
pub mod admin;
pub mod assets;
pub mod audit;
pub mod audit_action;
pub mod demo;
pub mod demo_bulk;
pub mod demo_volume;
pub mod keys;
pub mod login;
pub mod management_rate;
pub mod management_tokens;
pub mod notifications;
pub mod organizations;
pub mod password_reset;
pub mod platform;
pub mod roles;
pub mod second_factor;
pub mod sessions;
pub mod staff;
pub mod usage;
pub mod users;
pub mod webhook_endpoints;

pub use actor::Actor;
