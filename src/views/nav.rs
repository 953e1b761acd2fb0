//! The navigation: only what the signed-in account may use.

use crate::{
    auth::CurrentUser,
    domain::{Capabilities, Capability},
};

/// The area a page belongs to, which marks its navigation entry as current.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Account,
    AccountKeys,
    AccountSecurity,
    AdminHome,
    AdminUsers,
    AdminRoles,
    AdminKeys,
    AdminAssets,
    AdminAudit,
    AdminPolicy,
    AdminNotifications,
    AdminWebhooks,
    AdminApiAccess,
    StaffHome,
    StaffProviders,
    StaffOrganizations,
    StaffActions,
    StaffAccounts,
    StaffSecurity,
    StaffNotifications,
}

/// One link of the navigation.
#[derive(Debug, Clone)]
pub struct NavItem {
    pub label: &'static str,
    pub href: &'static str,
    pub current: bool,
}

/// A group of links under a heading (Account, Admin, Staff).
#[derive(Debug, Clone)]
pub struct NavGroup {
    pub label: &'static str,
    pub items: Vec<NavItem>,
}

/// The navigation of one page.
#[derive(Debug, Clone, Default)]
pub struct Nav {
    pub groups: Vec<NavGroup>,
}

fn item(label: &'static str, href: &'static str, section: Section, current: Section) -> NavItem {
    NavItem { label, href, current: section == current }
}

impl Nav {
    pub fn for_user(user: &CurrentUser, current: Section) -> Self {
        Self::for_capabilities(user.can, current)
    }

    /// The navigation of a web user who holds `can`: each admin page is listed exactly when
    /// its handler's extractor would let them in.
    pub fn for_capabilities(can: Capabilities, current: Section) -> Self {
        let mut groups = vec![NavGroup {
            label: "Account",
            items: vec![
                item("Overview", "/account", Section::Account, current),
                item("API keys", "/account/keys", Section::AccountKeys, current),
                item("Security", "/account/security", Section::AccountSecurity, current),
            ],
        }];
        if can.allows(Capability::EnterAdmin) {
            let admin_pages = [
                ("Overview", "/admin", Section::AdminHome, Capability::EnterAdmin),
                ("Users", "/admin/users", Section::AdminUsers, Capability::ManageUsers),
                ("Roles", "/admin/roles", Section::AdminRoles, Capability::Administer),
                ("API keys", "/admin/keys", Section::AdminKeys, Capability::ManageKeys),
                ("Assets", "/admin/assets", Section::AdminAssets, Capability::Administer),
                ("Key policy", "/admin/policy", Section::AdminPolicy, Capability::Administer),
                ("Audit log", "/admin/audit", Section::AdminAudit, Capability::ReadAudit),
                ("Notifications", "/admin/notifications", Section::AdminNotifications, Capability::Administer),
                ("Webhooks", "/admin/webhooks", Section::AdminWebhooks, Capability::Administer),
                ("API access", "/admin/api-access", Section::AdminApiAccess, Capability::Administer),
            ];
            let items = admin_pages
                .into_iter()
                .filter(|(.., needs)| can.allows(*needs))
                .map(|(label, href, section, _)| item(label, href, section, current))
                .collect();
            groups.push(NavGroup { label: "Admin", items });
        }
        Self { groups }
    }

    pub fn for_staff(current: Section) -> Self {
        Self {
            groups: vec![NavGroup {
                label: "Staff",
                items: vec![
                    item("Overview", "/staff", Section::StaffHome, current),
                    item("Service providers", "/staff/providers", Section::StaffProviders, current),
                    item("Organizations", "/staff/organizations", Section::StaffOrganizations, current),
                    item("API actions", "/staff/actions", Section::StaffActions, current),
                    item("Staff accounts", "/staff/accounts", Section::StaffAccounts, current),
                    item("Security", "/staff/security", Section::StaffSecurity, current),
                    item("Notifications", "/staff/notifications", Section::StaffNotifications, current),
                ],
            }],
        }
    }
}
