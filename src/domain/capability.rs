//! Capabilities: what a web user may do, derived once per request from their administrator
//! flag and effective permissions. The handler extractors (`Granted<…>`), the navigation, the
//! buttons a page offers and the services' own checks all ask this one type, so a page never
//! offers something that answers 403 and a rule is never written twice.

use crate::domain::{Permission, PermissionSet};

/// Something a web user may be allowed to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Capability {
    /// Create and manage one's own personal keys (`keys.own`).
    OwnKeys,
    /// See and manage every key of the organization (`keys.manage`).
    ManageKeys,
    /// Manage the organization's web users (`users.manage`).
    ManageUsers,
    /// Turn API key access on or off for others. Access *is* `keys.own`, and nobody hands out
    /// what they do not hold.
    GrantKeyAccess,
    /// Read the audit log (`audit.read`).
    ReadAudit,
    /// Administer the organization: roles, assets, key policy, administrators.
    Administer,
    /// Enter the Admin area at all: any of its pages is open.
    EnterAdmin,
}

/// The capabilities of one web user.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Capabilities {
    is_admin: bool,
    permissions: PermissionSet,
}

impl Capabilities {
    /// The capabilities of a user with the administrator flag `is_admin` and the effective
    /// permissions `permissions` (administrators hold every permission).
    pub fn new(is_admin: bool, permissions: PermissionSet) -> Self {
        let permissions = if is_admin { PermissionSet::all() } else { permissions };
        Self { is_admin, permissions }
    }

    /// Everything: the operator's commands act with these.
    pub fn operator() -> Self {
        Self::new(true, PermissionSet::all())
    }

    pub fn allows(self, capability: Capability) -> bool {
        let has = |p: Permission| self.permissions.contains(p);
        match capability {
            Capability::OwnKeys | Capability::GrantKeyAccess => has(Permission::KeysOwn),
            Capability::ManageKeys => has(Permission::KeysManage),
            Capability::ManageUsers => has(Permission::UsersManage),
            Capability::ReadAudit => has(Permission::AuditRead),
            Capability::Administer => self.is_admin,
            Capability::EnterAdmin => {
                self.is_admin
                    || [Capability::ManageKeys, Capability::ManageUsers, Capability::ReadAudit]
                        .into_iter()
                        .any(|c| self.allows(c))
            }
        }
    }

    pub fn is_admin(self) -> bool {
        self.is_admin
    }

    /// The effective permissions these capabilities were derived from.
    pub fn permissions(self) -> PermissionSet {
        self.permissions
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(permissions: &[Permission]) -> Capabilities {
        Capabilities::new(false, permissions.iter().copied().collect())
    }

    #[test]
    fn administrators_may_do_everything() {
        let admin = Capabilities::new(true, PermissionSet::default());
        for c in [
            Capability::OwnKeys,
            Capability::ManageKeys,
            Capability::ManageUsers,
            Capability::GrantKeyAccess,
            Capability::ReadAudit,
            Capability::Administer,
            Capability::EnterAdmin,
        ] {
            assert!(admin.allows(c), "{c:?}");
        }
    }

    #[test]
    fn the_admin_area_opens_with_any_of_its_permissions_only() {
        assert!(!of(&[]).allows(Capability::EnterAdmin));
        assert!(!of(&[Permission::KeysOwn]).allows(Capability::EnterAdmin));
        for p in [Permission::KeysManage, Permission::UsersManage, Permission::AuditRead] {
            assert!(of(&[p]).allows(Capability::EnterAdmin), "{p:?}");
            assert!(!of(&[p]).allows(Capability::Administer), "{p:?}");
        }
    }

    #[test]
    fn key_access_is_granted_only_by_those_who_hold_it() {
        assert!(!of(&[Permission::UsersManage]).allows(Capability::GrantKeyAccess));
        assert!(of(&[Permission::UsersManage, Permission::KeysOwn]).allows(Capability::GrantKeyAccess));
    }
}
