//! Parse-don't-validate types: once a value has one of these types it is known to be valid.

pub mod capability;
pub mod client_ip;
pub mod email;
pub mod factor_policy;
pub mod password;
pub mod permission;
pub mod text;
pub mod token_scope;

pub use capability::{Capabilities, Capability};
pub use client_ip::ClientIp;
pub use email::Email;
pub use factor_policy::SecondFactorPolicy;
pub use password::NewPassword;
pub use permission::{Permission, PermissionSet};
pub use token_scope::{TokenScope, TokenScopes};
