//! The navigation: only what the signed-in account may use.

use crate::{auth::CurrentUser, domain::Permission};

/// The area a page belongs to, which marks its navigation entry as current.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Account,
    AccountKeys,
    AdminHome,
    AdminUsers,
    AdminRoles,
    AdminKeys,
    AdminAssets,
    AdminAudit,
    AdminPolicy,
    StaffHome,
    StaffProviders,
    StaffOrganizations,
    StaffActions,
    StaffAccounts,
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
        let mut groups = vec![NavGroup {
            label: "Account",
            items: vec![
                item("Overview", "/account", Section::Account, current),
                item("API keys", "/account/keys", Section::AccountKeys, current),
            ],
        }];
        if user.sees_admin() {
            let admin = user.user.is_admin;
            let may = |p: Permission| user.permissions.contains(p);
            let mut items = vec![item("Overview", "/admin", Section::AdminHome, current)];
            if may(Permission::UsersManage) {
                items.push(item("Users", "/admin/users", Section::AdminUsers, current));
            }
            if admin {
                items.push(item("Roles", "/admin/roles", Section::AdminRoles, current));
            }
            if may(Permission::KeysManage) {
                items.push(item("API keys", "/admin/keys", Section::AdminKeys, current));
            }
            if admin {
                items.push(item("Assets", "/admin/assets", Section::AdminAssets, current));
                items.push(item("Key policy", "/admin/policy", Section::AdminPolicy, current));
            }
            if may(Permission::AuditRead) {
                items.push(item("Audit log", "/admin/audit", Section::AdminAudit, current));
            }
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
                ],
            }],
        }
    }
}
