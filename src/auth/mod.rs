//! Authentication and request-level security: password hashing, the PostgreSQL session
//! store, the typed session, CSRF protection and the actor extractors handlers ask for.

pub mod actor;
pub mod csrf;
pub mod granted;
pub mod password;
pub mod session;
pub mod session_store;
pub mod sudo;
pub mod user_agent;

pub use actor::{CurrentStaff, CurrentUser};
pub use granted::{AdminVisitor, AuditReader, Granted, KeyManager, OrgAdmin, UserManager};
