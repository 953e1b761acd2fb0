//! Row structs and finders, one module per table (or closely related tables). Finders take
//! the organization they are scoped to wherever a table is per-organization.

pub mod api_action;
pub mod api_key;
pub mod asset;
pub mod audit_event;
pub mod key_usage;
pub mod management_rate_window;
pub mod management_token;
pub mod organization;
pub mod outbox;
pub mod password_link;
pub mod role;
pub mod second_factor;
pub mod service_provider;
pub mod session;
pub mod staff_account;
pub mod user;
pub mod webhook;

pub use api_action::ApiAction;
pub use api_key::ApiKey;
pub use audit_event::AuditEvent;
pub use management_token::ManagementToken;
pub use organization::Organization;
pub use role::Role;
pub use service_provider::ServiceProvider;
pub use staff_account::StaffAccount;
pub use user::User;
