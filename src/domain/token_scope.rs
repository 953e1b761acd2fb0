//! The scopes of management tokens (`keys:read` …), and which permission of its creator each
//! one needs: a token never does more than its creator may, when it is created and at use.

use std::fmt;

use crate::domain::{Permission, PermissionSet};

/// One scope of a management token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TokenScope {
    KeysRead,
    KeysWrite,
    UsersRead,
    UsersAccess,
    AuditRead,
}

impl TokenScope {
    pub const ALL: [TokenScope; 5] = [
        TokenScope::KeysRead,
        TokenScope::KeysWrite,
        TokenScope::UsersRead,
        TokenScope::UsersAccess,
        TokenScope::AuditRead,
    ];

    /// The code stored and shown (`keys:read`).
    pub fn code(self) -> &'static str {
        match self {
            TokenScope::KeysRead => "keys:read",
            TokenScope::KeysWrite => "keys:write",
            TokenScope::UsersRead => "users:read",
            TokenScope::UsersAccess => "users:access",
            TokenScope::AuditRead => "audit:read",
        }
    }

    pub fn description(self) -> &'static str {
        match self {
            TokenScope::KeysRead => "List and read keys and their usage.",
            TokenScope::KeysWrite => "Create, change, re-key, deactivate and delete keys.",
            TokenScope::UsersRead => "List the organization's users.",
            TokenScope::UsersAccess => "Grant and revoke users' API key access.",
            TokenScope::AuditRead => "Read the audit log.",
        }
    }

    pub fn from_code(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.code() == code.trim())
    }

    /// Whether a web user holding `permissions` may use this scope: key scopes need someone
    /// who may manage keys (every key, or their own), user scopes someone who manages users,
    /// the audit scope an audit reader.
    pub fn allowed_by(self, permissions: &PermissionSet) -> bool {
        match self {
            TokenScope::KeysRead | TokenScope::KeysWrite => {
                permissions.contains(Permission::KeysManage) || permissions.contains(Permission::KeysOwn)
            }
            TokenScope::UsersRead | TokenScope::UsersAccess => permissions.contains(Permission::UsersManage),
            TokenScope::AuditRead => permissions.contains(Permission::AuditRead),
        }
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

impl fmt::Display for TokenScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// A set of scopes (at least one, once parsed).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct TokenScopes(u8);

impl TokenScopes {
    /// Parses a list of scope codes (`keys:read,keys:write`); unknown codes and an empty list
    /// are refused with a message naming the scopes there are.
    pub fn parse<'a>(codes: impl IntoIterator<Item = &'a str>) -> Result<Self, String> {
        let mut set = TokenScopes::default();
        for code in codes.into_iter().map(str::trim).filter(|c| !c.is_empty()) {
            let scope = TokenScope::from_code(code).ok_or_else(|| {
                format!("{code:?} is not a token scope; the scopes are {}.", Self::all().codes().join(", "))
            })?;
            set.insert(scope);
        }
        if set.is_empty() {
            return Err("Choose at least one scope.".into());
        }
        Ok(set)
    }

    pub fn all() -> Self {
        Self::from_iter(TokenScope::ALL)
    }

    pub fn insert(&mut self, scope: TokenScope) {
        self.0 |= scope.bit();
    }

    pub fn contains(self, scope: TokenScope) -> bool {
        self.0 & scope.bit() != 0
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub fn iter(self) -> impl Iterator<Item = TokenScope> {
        TokenScope::ALL.into_iter().filter(move |s| self.contains(*s))
    }

    pub fn codes(self) -> Vec<&'static str> {
        self.iter().map(TokenScope::code).collect()
    }

    /// The scopes of this set that `permissions` do not allow.
    pub fn beyond(self, permissions: &PermissionSet) -> Vec<TokenScope> {
        self.iter().filter(|s| !s.allowed_by(permissions)).collect()
    }
}

impl FromIterator<TokenScope> for TokenScopes {
    fn from_iter<I: IntoIterator<Item = TokenScope>>(iter: I) -> Self {
        let mut set = TokenScopes::default();
        for scope in iter {
            set.insert(scope);
        }
        set
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_parse_from_their_codes_only() {
        let set = TokenScopes::parse(["keys:read", " keys:write", ""]).unwrap();
        assert_eq!(set.codes(), ["keys:read", "keys:write"]);
        assert!(TokenScopes::parse(["keys:admin"]).unwrap_err().contains("keys:read, keys:write"));
        assert!(TokenScopes::parse([""]).is_err());
        assert_eq!(TokenScopes::all().codes().len(), 5);
    }

    #[test]
    fn each_scope_needs_its_permission() {
        let none = PermissionSet::default();
        assert_eq!(TokenScopes::all().beyond(&none).len(), 5);
        let keys: PermissionSet = [Permission::KeysManage].into_iter().collect();
        assert_eq!(
            TokenScopes::all().beyond(&keys),
            [TokenScope::UsersRead, TokenScope::UsersAccess, TokenScope::AuditRead]
        );
    }
}
