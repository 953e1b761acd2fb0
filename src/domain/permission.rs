//! The fixed permission catalog of custom roles, and sets of permissions.

use std::fmt;

/// One entry of the permission catalog (SPEC §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Permission {
    /// "Key: Manage": see and manage every key of the organization.
    KeysManage,
    /// Create and manage one's own keys (the same as the API-key-access toggle).
    KeysOwn,
    /// Manage the organization's web users.
    UsersManage,
    /// Read the audit log.
    AuditRead,
}

impl Permission {
    pub const ALL: [Permission; 4] =
        [Permission::KeysManage, Permission::KeysOwn, Permission::UsersManage, Permission::AuditRead];

    /// The code stored in the database.
    pub fn code(self) -> &'static str {
        match self {
            Permission::KeysManage => "keys.manage",
            Permission::KeysOwn => "keys.own",
            Permission::UsersManage => "users.manage",
            Permission::AuditRead => "audit.read",
        }
    }

    /// The label shown to administrators.
    pub fn label(self) -> &'static str {
        match self {
            Permission::KeysManage => "Key: Manage",
            Permission::KeysOwn => "Key: Own keys",
            Permission::UsersManage => "Users: Manage",
            Permission::AuditRead => "Audit log: Read",
        }
    }

    pub fn description(self) -> &'static str {
        match self {
            Permission::KeysManage => "See and manage every API key of the organization.",
            Permission::KeysOwn => "Create and manage one's own API keys (same as API key access).",
            Permission::UsersManage => "Create, edit and deactivate web users; grant API key access.",
            Permission::AuditRead => "Read and export the audit log.",
        }
    }

    pub fn from_code(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.code() == code)
    }

    fn bit(self) -> u8 {
        match self {
            Permission::KeysManage => 1,
            Permission::KeysOwn => 2,
            Permission::UsersManage => 4,
            Permission::AuditRead => 8,
        }
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// A set of permissions (the effective permissions of a user, or those of a role).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PermissionSet(u8);

impl PermissionSet {
    pub fn all() -> Self {
        Self::ALL_BITS
    }

    const ALL_BITS: PermissionSet = PermissionSet(1 | 2 | 4 | 8);

    pub fn contains(self, permission: Permission) -> bool {
        self.0 & permission.bit() != 0
    }

    pub fn insert(&mut self, permission: Permission) {
        self.0 |= permission.bit();
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub fn iter(self) -> impl Iterator<Item = Permission> {
        Permission::ALL.into_iter().filter(move |p| self.contains(*p))
    }

    /// Effective permissions of a web user (SPEC §2): everything for administrators;
    /// otherwise the union of their roles, plus `keys.own` when API key access is on.
    pub fn effective(
        is_admin: bool,
        api_key_access: bool,
        role_permissions: impl IntoIterator<Item = Permission>,
    ) -> Self {
        if is_admin {
            return Self::all();
        }
        let mut set = Self::default();
        for permission in role_permissions {
            set.insert(permission);
        }
        if api_key_access {
            set.insert(Permission::KeysOwn);
        }
        set
    }
}

impl FromIterator<Permission> for PermissionSet {
    fn from_iter<I: IntoIterator<Item = Permission>>(iter: I) -> Self {
        let mut set = Self::default();
        for permission in iter {
            set.insert(permission);
        }
        set
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn administrators_have_every_permission() {
        let set = PermissionSet::effective(true, false, []);
        assert!(Permission::ALL.iter().all(|p| set.contains(*p)));
    }

    #[test]
    fn the_access_toggle_grants_own_keys_only() {
        let set = PermissionSet::effective(false, true, []);
        assert_eq!(set.iter().collect::<Vec<_>>(), vec![Permission::KeysOwn]);
    }

    #[test]
    fn role_permissions_are_united() {
        let set = PermissionSet::effective(false, false, [Permission::AuditRead, Permission::KeysManage]);
        assert!(set.contains(Permission::AuditRead) && set.contains(Permission::KeysManage));
        assert!(!set.contains(Permission::KeysOwn));
    }

    #[test]
    fn codes_round_trip() {
        for p in Permission::ALL {
            assert_eq!(Permission::from_code(p.code()), Some(p));
        }
        assert_eq!(Permission::from_code("root"), None);
    }
}
