//! An organization's second-factor policy: which of its web users must sign in with a second
//! factor. Whether one account must is decided in `services::second_factor::required_for`.

use crate::domain::{Capabilities, Capability};

/// Who in an organization must have a second factor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SecondFactorPolicy {
    /// Nobody must (anyone may): the default.
    #[default]
    Nobody,
    /// Administrators.
    Administrators,
    /// Holders of *Key: Manage* or *Users: Manage*, and administrators.
    Managers,
    /// Every web user of the organization.
    Everyone,
}

impl SecondFactorPolicy {
    /// Every setting, in the order the Key policy page offers them.
    pub const ALL: [SecondFactorPolicy; 4] = [
        SecondFactorPolicy::Nobody,
        SecondFactorPolicy::Administrators,
        SecondFactorPolicy::Managers,
        SecondFactorPolicy::Everyone,
    ];

    /// What the database and the form store.
    pub fn code(self) -> &'static str {
        match self {
            SecondFactorPolicy::Nobody => "nobody",
            SecondFactorPolicy::Administrators => "administrators",
            SecondFactorPolicy::Managers => "managers",
            SecondFactorPolicy::Everyone => "everyone",
        }
    }

    /// How the Key policy page names it.
    pub fn label(self) -> &'static str {
        match self {
            SecondFactorPolicy::Nobody => "Nobody (each person may turn one on)",
            SecondFactorPolicy::Administrators => "Administrators",
            SecondFactorPolicy::Managers => "Administrators and holders of Key: Manage or Users: Manage",
            SecondFactorPolicy::Everyone => "Everyone",
        }
    }

    pub fn parse(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.code() == code.trim())
    }

    /// Whether a user with capabilities `can` must have a second factor under this policy.
    pub fn requires(self, can: Capabilities) -> bool {
        match self {
            SecondFactorPolicy::Nobody => false,
            SecondFactorPolicy::Administrators => can.allows(Capability::Administer),
            SecondFactorPolicy::Managers => can.allows(Capability::ManageKeys) || can.allows(Capability::ManageUsers),
            SecondFactorPolicy::Everyone => true,
        }
    }
}

/// The database keeps the code; its CHECK constraint admits only the four. Anything else
/// would be a bug, and fails closed: everyone must then have a second factor.
impl From<String> for SecondFactorPolicy {
    fn from(code: String) -> Self {
        Self::parse(&code).unwrap_or(SecondFactorPolicy::Everyone)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Permission, PermissionSet};

    fn user(is_admin: bool, permissions: &[Permission]) -> Capabilities {
        Capabilities::new(is_admin, permissions.iter().copied().collect::<PermissionSet>())
    }

    #[test]
    fn each_setting_requires_a_factor_of_whom_it_names() {
        let admin = user(true, &[]);
        let key_manager = user(false, &[Permission::KeysManage]);
        let user_manager = user(false, &[Permission::UsersManage]);
        let member = user(false, &[Permission::KeysOwn, Permission::AuditRead]);
        let table = [
            (SecondFactorPolicy::Nobody, [false, false, false, false]),
            (SecondFactorPolicy::Administrators, [true, false, false, false]),
            (SecondFactorPolicy::Managers, [true, true, true, false]),
            (SecondFactorPolicy::Everyone, [true, true, true, true]),
        ];
        for (policy, expected) in table {
            let got = [admin, key_manager, user_manager, member].map(|can| policy.requires(can));
            assert_eq!(got, expected, "{policy:?}");
        }
    }

    #[test]
    fn codes_round_trip_and_unknown_codes_fail_closed() {
        for policy in SecondFactorPolicy::ALL {
            assert_eq!(SecondFactorPolicy::parse(policy.code()), Some(policy));
        }
        assert_eq!(SecondFactorPolicy::from("bogus".to_string()), SecondFactorPolicy::Everyone);
    }
}
