//! Whether a personal key's owner still lets it work. This is the one rule behind both the
//! verifier's `DISABLED` for such keys and the state the key pages show, so the two cannot
//! disagree.

use crate::domain::{Permission, PermissionSet};

/// Why a personal key stops working although the key itself is active.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OwnerBlock {
    /// The owner's account was deactivated.
    Deactivated,
    /// The owner no longer holds API key access (`keys.own`), by the toggle or a role.
    NoKeyAccess,
}

impl OwnerBlock {
    /// What stops the keys of an owner who is `active` with these effective permissions,
    /// if anything does.
    pub fn of(active: bool, permissions: PermissionSet) -> Option<Self> {
        if !active {
            Some(OwnerBlock::Deactivated)
        } else if !permissions.contains(Permission::KeysOwn) {
            Some(OwnerBlock::NoKeyAccess)
        } else {
            None
        }
    }

    /// The reason as the pages show it.
    pub fn reason(self) -> &'static str {
        match self {
            OwnerBlock::Deactivated => "owner is deactivated",
            OwnerBlock::NoKeyAccess => "owner has no API key access",
        }
    }
}
