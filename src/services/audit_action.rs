//! Every action the audit log records, as one enum: services name what they record with it,
//! and the audit pages offer its list, so neither can drift from the other.

/// An audited action; [`AuditAction::code`] is what the log stores (`key.rekey`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditAction {
    KeyCreate,
    KeyView,
    KeyRename,
    KeyUpdate,
    KeyDeactivate,
    KeyReactivate,
    KeyRekey,
    KeyEndGrace,
    KeyDelete,
    KeyLeakReport,
    UserCreate,
    UserUpdate,
    UserRoleChange,
    UserApiKeyAccessGrant,
    UserApiKeyAccessRevoke,
    UserDeactivate,
    UserReactivate,
    UserPasswordReset,
    UserPasswordLink,
    UserPasswordSet,
    UserNotificationPreference,
    RoleCreate,
    RoleUpdate,
    RoleDelete,
    AssetCreate,
    AssetUpdate,
    AssetDelete,
    AssetGroupCreate,
    AssetGroupUpdate,
    AssetGroupDelete,
    OrganizationCreate,
    OrganizationPolicyUpdate,
    LoginSuccess,
    LoginFailure,
    LoginPasswordResetRequest,
    LoginSecondFactorAsked,
    SecondFactorEnrol,
    SecondFactorRemove,
    SecondFactorFailure,
    SecondFactorRecoveryCodeUse,
    SecondFactorRecoveryCodesRegenerate,
    SessionConfirm,
    SessionEnd,
    SecondFactorReset,
    AccessDenied,
    AuditPurge,
    StaffCreate,
    StaffDeactivate,
    StaffReactivate,
    StaffPasswordSet,
    ServiceProviderCreate,
    ServiceProviderRename,
    ApiActionCreate,
    ApiActionDescribe,
    ApiActionRetire,
    WebhookCreate,
    WebhookEnable,
    WebhookDisable,
    WebhookRotateSecret,
    WebhookDelete,
    WebhookTest,
    ManagementTokenCreate,
    ManagementTokenRevoke,
}

impl AuditAction {
    /// Every action, in the order the audit filter offers them.
    pub const ALL: [AuditAction; 63] = [
        AuditAction::KeyCreate,
        AuditAction::KeyView,
        AuditAction::KeyRename,
        AuditAction::KeyUpdate,
        AuditAction::KeyDeactivate,
        AuditAction::KeyReactivate,
        AuditAction::KeyRekey,
        AuditAction::KeyEndGrace,
        AuditAction::KeyDelete,
        AuditAction::KeyLeakReport,
        AuditAction::UserCreate,
        AuditAction::UserUpdate,
        AuditAction::UserRoleChange,
        AuditAction::UserApiKeyAccessGrant,
        AuditAction::UserApiKeyAccessRevoke,
        AuditAction::UserDeactivate,
        AuditAction::UserReactivate,
        AuditAction::UserPasswordReset,
        AuditAction::UserPasswordLink,
        AuditAction::UserPasswordSet,
        AuditAction::UserNotificationPreference,
        AuditAction::RoleCreate,
        AuditAction::RoleUpdate,
        AuditAction::RoleDelete,
        AuditAction::AssetCreate,
        AuditAction::AssetUpdate,
        AuditAction::AssetDelete,
        AuditAction::AssetGroupCreate,
        AuditAction::AssetGroupUpdate,
        AuditAction::AssetGroupDelete,
        AuditAction::OrganizationCreate,
        AuditAction::OrganizationPolicyUpdate,
        AuditAction::LoginSuccess,
        AuditAction::LoginFailure,
        AuditAction::LoginPasswordResetRequest,
        AuditAction::LoginSecondFactorAsked,
        AuditAction::SecondFactorEnrol,
        AuditAction::SecondFactorRemove,
        AuditAction::SecondFactorFailure,
        AuditAction::SecondFactorRecoveryCodeUse,
        AuditAction::SecondFactorRecoveryCodesRegenerate,
        AuditAction::SessionConfirm,
        AuditAction::SessionEnd,
        AuditAction::SecondFactorReset,
        AuditAction::AccessDenied,
        AuditAction::AuditPurge,
        AuditAction::StaffCreate,
        AuditAction::StaffDeactivate,
        AuditAction::StaffReactivate,
        AuditAction::StaffPasswordSet,
        AuditAction::ServiceProviderCreate,
        AuditAction::ServiceProviderRename,
        AuditAction::ApiActionCreate,
        AuditAction::ApiActionDescribe,
        AuditAction::ApiActionRetire,
        AuditAction::WebhookCreate,
        AuditAction::WebhookEnable,
        AuditAction::WebhookDisable,
        AuditAction::WebhookRotateSecret,
        AuditAction::WebhookDelete,
        AuditAction::WebhookTest,
        AuditAction::ManagementTokenCreate,
        AuditAction::ManagementTokenRevoke,
    ];

    /// What the log stores.
    pub fn code(self) -> &'static str {
        match self {
            AuditAction::KeyCreate => "key.create",
            AuditAction::KeyView => "key.view",
            AuditAction::KeyRename => "key.rename",
            AuditAction::KeyUpdate => "key.update",
            AuditAction::KeyDeactivate => "key.deactivate",
            AuditAction::KeyReactivate => "key.reactivate",
            AuditAction::KeyRekey => "key.rekey",
            AuditAction::KeyEndGrace => "key.end_grace",
            AuditAction::KeyDelete => "key.delete",
            AuditAction::KeyLeakReport => "key.leak_report",
            AuditAction::UserCreate => "user.create",
            AuditAction::UserUpdate => "user.update",
            AuditAction::UserRoleChange => "user.role_change",
            AuditAction::UserApiKeyAccessGrant => "user.api_key_access_grant",
            AuditAction::UserApiKeyAccessRevoke => "user.api_key_access_revoke",
            AuditAction::UserDeactivate => "user.deactivate",
            AuditAction::UserReactivate => "user.reactivate",
            AuditAction::UserPasswordReset => "user.password_reset",
            AuditAction::UserPasswordLink => "user.password_link",
            AuditAction::UserPasswordSet => "user.password_set",
            AuditAction::UserNotificationPreference => "user.notification_preference",
            AuditAction::RoleCreate => "role.create",
            AuditAction::RoleUpdate => "role.update",
            AuditAction::RoleDelete => "role.delete",
            AuditAction::AssetCreate => "asset.create",
            AuditAction::AssetUpdate => "asset.update",
            AuditAction::AssetDelete => "asset.delete",
            AuditAction::AssetGroupCreate => "asset_group.create",
            AuditAction::AssetGroupUpdate => "asset_group.update",
            AuditAction::AssetGroupDelete => "asset_group.delete",
            AuditAction::OrganizationCreate => "organization.create",
            AuditAction::OrganizationPolicyUpdate => "organization.policy_update",
            AuditAction::LoginSuccess => "login.success",
            AuditAction::LoginFailure => "login.failure",
            AuditAction::LoginPasswordResetRequest => "login.password_reset_request",
            AuditAction::LoginSecondFactorAsked => "login.second_factor_asked",
            AuditAction::SecondFactorEnrol => "second_factor.enrol",
            AuditAction::SecondFactorRemove => "second_factor.remove",
            AuditAction::SecondFactorFailure => "second_factor.failure",
            AuditAction::SecondFactorRecoveryCodeUse => "second_factor.recovery_code_use",
            AuditAction::SecondFactorRecoveryCodesRegenerate => "second_factor.recovery_codes_regenerate",
            AuditAction::SessionConfirm => "session.confirm",
            AuditAction::SessionEnd => "session.end",
            AuditAction::SecondFactorReset => "second_factor.reset",
            AuditAction::AccessDenied => "access.denied",
            AuditAction::AuditPurge => "audit.purge",
            AuditAction::StaffCreate => "staff.create",
            AuditAction::StaffDeactivate => "staff.deactivate",
            AuditAction::StaffReactivate => "staff.reactivate",
            AuditAction::StaffPasswordSet => "staff.password_set",
            AuditAction::ServiceProviderCreate => "service_provider.create",
            AuditAction::ServiceProviderRename => "service_provider.rename",
            AuditAction::ApiActionCreate => "api_action.create",
            AuditAction::ApiActionDescribe => "api_action.describe",
            AuditAction::ApiActionRetire => "api_action.retire",
            AuditAction::WebhookCreate => "webhook.create",
            AuditAction::WebhookEnable => "webhook.enable",
            AuditAction::WebhookDisable => "webhook.disable",
            AuditAction::WebhookRotateSecret => "webhook.rotate_secret",
            AuditAction::WebhookDelete => "webhook.delete",
            AuditAction::WebhookTest => "webhook.test",
            AuditAction::ManagementTokenCreate => "management_token.create",
            AuditAction::ManagementTokenRevoke => "management_token.revoke",
        }
    }

    /// Whether an organization's log can hold it (the platform's own staff, provider and
    /// catalog events are not in any organization's log).
    pub fn in_organization_log(self) -> bool {
        !matches!(
            self,
            AuditAction::StaffCreate
                | AuditAction::StaffDeactivate
                | AuditAction::StaffReactivate
                | AuditAction::StaffPasswordSet
                | AuditAction::ServiceProviderCreate
                | AuditAction::ServiceProviderRename
                | AuditAction::ApiActionCreate
                | AuditAction::ApiActionDescribe
                | AuditAction::ApiActionRetire
        )
    }

    /// What the organization's audit filter offers: each family as a prefix (`key.`), then
    /// every action of it.
    pub fn organization_filter_choices() -> Vec<&'static str> {
        let mut choices: Vec<&'static str> = Vec::new();
        for action in Self::ALL.into_iter().filter(|a| a.in_organization_log()) {
            let code = action.code();
            let family = &code[..=code.find('.').expect("codes are family.verb")];
            if !choices.contains(&family) {
                choices.push(family);
            }
            choices.push(code);
        }
        choices
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_action_has_its_own_code_of_a_family() {
        let mut codes: Vec<&str> = AuditAction::ALL.iter().map(|a| a.code()).collect();
        assert!(codes.iter().all(|c| c.split_once('.').is_some_and(|(f, v)| !f.is_empty() && !v.is_empty())));
        codes.sort();
        codes.dedup();
        assert_eq!(codes.len(), AuditAction::ALL.len(), "codes are unique");
    }

    #[test]
    fn the_organization_filter_offers_denials_and_views_but_not_platform_events() {
        let choices = AuditAction::organization_filter_choices();
        for expected in ["key.", "key.view", "access.denied", "login.failure", "audit.purge"] {
            assert!(choices.contains(&expected), "{expected}");
        }
        assert!(!choices.iter().any(|c| c.starts_with("staff.") || c.starts_with("api_action.")));
    }
}
