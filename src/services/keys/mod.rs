//! The key lifecycle (SPEC §3), for every kind of owner: create, rename, edit, deactivate,
//! reactivate, re-key, end grace, delete. Each operation locks the key, checks what the actor
//! may do (`access`), validates input against the owner's policy (`input`, `policy`) and
//! writes the change with its audit event; callers run it in one transaction.

pub mod access;
pub mod ceiling;
pub mod input;
pub mod lifecycle;
pub mod policy;
pub mod quota;
pub mod stale;

pub use access::{KeyOp, OwnerContext};
pub use input::{
    ActionChoice, ActionCode, ActionScope, AssetScope, ExpiryChoice, KeyComment, KeyInput, KeyName, KeySettings,
};
pub use lifecycle::{Created, NewKeyOwner, NewKeyRequest, Rekeyed};
pub use policy::{GRACE_CHOICES, KeyPolicy};
