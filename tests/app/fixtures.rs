//! Shared fixtures: the building blocks the tests' worlds are composed of — organizations
//! (with their administrator, or served by a service provider), users with roles and
//! grants, support staff, and keys created through the key service. A test's `world()`
//! names who is in it by composing these; what a user may do is said here once.

use diesel::PgConnection;
use keyward::{
    db::models::{
        Organization, Role, ServiceProvider, StaffAccount, User, organization::NewOrganization, user::NewUser,
    },
    domain::Permission,
};

use crate::helpers::PASSWORD_HASH;

pub fn organization(conn: &mut PgConnection, slug: &str) -> Organization {
    Organization::insert(conn, &NewOrganization { slug, name: &format!("Org {slug}"), service_provider_id: None })
        .unwrap()
}

/// The organization `slug` (named "Acme" for "acme") as a client of a new service provider
/// `provider`.
pub fn served_organization(conn: &mut PgConnection, slug: &str, provider: &str) -> (ServiceProvider, Organization) {
    let provider = ServiceProvider::insert(conn, provider).unwrap();
    let mut name = slug.to_string();
    name[..1].make_ascii_uppercase();
    let organization =
        Organization::insert(conn, &NewOrganization { slug, name: &name, service_provider_id: Some(provider.id) })
            .unwrap();
    (provider, organization)
}

/// The organization `slug` with its administrator `admin@{slug}.test`.
pub fn organization_with_admin(conn: &mut PgConnection, slug: &str) -> (Organization, User) {
    let organization = organization(conn, slug);
    let admin = admin(conn, &organization, &format!("admin@{slug}.test"));
    (organization, admin)
}

/// Acme and Globex, each with its administrator: the two tenants of the tenancy tests.
/// Returns Acme (Globex is only ever the other tenant).
pub fn acme_and_globex(conn: &mut PgConnection) -> Organization {
    let acme = organization_with_admin(conn, "acme").0;
    organization_with_admin(conn, "globex");
    acme
}

/// An administrator of `organization`.
pub fn admin(conn: &mut PgConnection, organization: &Organization, email: &str) -> User {
    UserBuilder::new(organization, email).admin().insert(conn)
}

/// A member with API key access who may grant the read actions (`positions.read`,
/// `vehicles.read`).
pub fn reader(conn: &mut PgConnection, organization: &Organization, email: &str) -> User {
    UserBuilder::new(organization, email).api_key_access().may_grant(&["positions.read", "vehicles.read"]).insert(conn)
}

/// A member with a "Key: Manage" role who may grant `grants` (none: he creates only keys
/// without actions).
pub fn key_manager(conn: &mut PgConnection, organization: &Organization, email: &str, grants: &[&str]) -> User {
    let builder = UserBuilder::new(organization, email).role(&[Permission::KeysManage]);
    if grants.is_empty() { builder.insert(conn) } else { builder.may_grant(grants).insert(conn) }
}

/// A deactivated member: the proxy of organization keys, whose own state does not matter.
pub fn inactive_proxy(conn: &mut PgConnection, organization: &Organization, email: &str) -> User {
    UserBuilder::new(organization, email).inactive().insert(conn)
}

pub struct UserBuilder {
    organization_id: i64,
    email: String,
    admin: bool,
    access: bool,
    active: bool,
    roles: Vec<Vec<Permission>>,
    grants: Option<Vec<String>>,
    grants_all: bool,
}

impl UserBuilder {
    pub fn new(organization: &Organization, email: &str) -> Self {
        Self {
            organization_id: organization.id,
            email: email.into(),
            admin: false,
            access: false,
            active: true,
            roles: vec![],
            grants: None,
            grants_all: false,
        }
    }

    pub fn admin(mut self) -> Self {
        self.admin = true;
        self
    }

    pub fn api_key_access(mut self) -> Self {
        self.access = true;
        self
    }

    pub fn inactive(mut self) -> Self {
        self.active = false;
        self
    }

    /// Gives the user a new role holding `permissions`.
    pub fn role(mut self, permissions: &[Permission]) -> Self {
        self.roles.push(permissions.to_vec());
        self
    }

    /// Gives the user a role allowing these API actions on keys.
    pub fn may_grant(mut self, actions: &[&str]) -> Self {
        self.grants = Some(actions.iter().map(|a| a.to_string()).collect());
        self
    }

    /// Gives the user a role allowing every API action on keys.
    pub fn may_grant_all(mut self) -> Self {
        self.grants_all = true;
        self
    }

    pub fn insert(self, conn: &mut PgConnection) -> User {
        use diesel::prelude::*;
        use keyward::db::schema::users;
        let user = User::insert(
            conn,
            &NewUser {
                organization_id: self.organization_id,
                email: &self.email,
                display_name: self.email.split('@').next().unwrap(),
                password_hash: Some(&PASSWORD_HASH),
                is_admin: self.admin,
                api_key_access: self.access,
            },
        )
        .unwrap();
        if !self.active {
            diesel::update(users::table.find(user.id)).set(users::active.eq(false)).execute(conn).unwrap();
        }
        for (i, permissions) in self.roles.iter().enumerate() {
            let role =
                Role::insert(conn, self.organization_id, &format!("role {i} of {}", self.email), "", permissions)
                    .unwrap();
            Role::assign(conn, self.organization_id, role.id, user.id).unwrap();
        }
        if self.grants.is_some() || self.grants_all {
            let codes = self.grants.clone().unwrap_or_default();
            let ids: Vec<i64> = keyward::db::models::ApiAction::find_active_by_codes(conn, &codes)
                .unwrap()
                .into_iter()
                .map(|a| a.id)
                .collect();
            let role = Role::insert(conn, self.organization_id, &format!("grants of {}", self.email), "", &[]).unwrap();
            Role::allow_api_actions(conn, role.id, self.grants_all, &ids).unwrap();
            Role::assign(conn, self.organization_id, role.id, user.id).unwrap();
        }
        User::find(conn, user.id).unwrap()
    }
}

/// A member with API key access who may grant `positions.read`: the usual key owner.
pub fn key_owner(conn: &mut PgConnection, organization: &Organization, email: &str) -> User {
    UserBuilder::new(organization, email).api_key_access().may_grant(&["positions.read"]).insert(conn)
}

pub fn staff(conn: &mut PgConnection, email: &str) -> StaffAccount {
    StaffAccount::insert(
        conn,
        &keyward::db::models::staff_account::NewStaffAccount {
            email,
            display_name: "Staff",
            password_hash: Some(&PASSWORD_HASH),
        },
    )
    .unwrap()
}

/// Keys created directly through the key service (for tests about other flows).
pub mod keys {
    use diesel::PgConnection;
    use keyward::{
        db::models::{ApiKey, User, api_key::KeyScope},
        keys::{Environment, KeyHasher},
        services::{
            Actor,
            keys::{
                ActionChoice, ActionCode, Created, ExpiryChoice, KeyInput, KeyName, NewKeyOwner, NewKeyRequest,
                lifecycle::{self, KeyRef},
            },
        },
    };

    /// Settings of a plain key: all assets, expiring in 30 days, with `actions` (None: all).
    pub fn settings(actions: Option<&[&str]>) -> KeyInput {
        let actions = match actions {
            None => ActionChoice::All,
            Some(codes) => ActionChoice::Only(codes.iter().map(|c| ActionCode::parse(c).unwrap()).collect()),
        };
        KeyInput { actions, expiry: ExpiryChoice::InDays(30), ..KeyInput::default() }
    }

    /// Creates a key as the operator would; returns the key and its secret.
    pub fn create(
        conn: &mut PgConnection,
        hasher: &KeyHasher,
        owner: NewKeyOwner,
        name: &str,
        input: KeyInput,
    ) -> (ApiKey, String) {
        let name = KeyName::parse(name).unwrap();
        let request = NewKeyRequest { owner, name, environment: Environment::Live, input, form_token: None };
        use diesel::Connection;
        // One transaction, as in the application (one change notice per key).
        match conn.transaction(|conn| lifecycle::create(conn, &Actor::system("create-key"), hasher, request)).unwrap() {
            Created::New { key, secret } => (key, secret.expose().to_string()),
            Created::Replayed(_) => unreachable!(),
        }
    }

    /// A personal key with `positions.read` (which the tests' key owners may grant).
    pub fn personal(conn: &mut PgConnection, hasher: &KeyHasher, user: &User, name: &str) -> (ApiKey, String) {
        personal_with(conn, hasher, user, Some(&["positions.read"]), name)
    }

    /// A personal key of `user` with `actions` (None: all).
    pub fn personal_with(
        conn: &mut PgConnection,
        hasher: &KeyHasher,
        user: &User,
        actions: Option<&[&str]>,
        name: &str,
    ) -> (ApiKey, String) {
        let settings = settings(actions);
        let owner = NewKeyOwner::Personal { user_id: user.id, organization_id: user.organization_id };
        create(conn, hasher, owner, name, settings)
    }

    /// An organization key with every action, attributed to `proxy`.
    pub fn organization(conn: &mut PgConnection, hasher: &KeyHasher, proxy: &User, name: &str) -> (ApiKey, String) {
        organization_with(conn, hasher, proxy, None, name)
    }

    /// An organization key of `proxy`'s organization with `actions` (None: all),
    /// attributed to `proxy`.
    pub fn organization_with(
        conn: &mut PgConnection,
        hasher: &KeyHasher,
        proxy: &User,
        actions: Option<&[&str]>,
        name: &str,
    ) -> (ApiKey, String) {
        let mut settings = settings(actions);
        settings.proxy_user_id = Some(proxy.id);
        create(conn, hasher, NewKeyOwner::Organization { organization_id: proxy.organization_id }, name, settings)
    }

    pub fn reload(conn: &mut PgConnection, key: &ApiKey) -> Option<ApiKey> {
        find(conn, &key.public_id).unwrap()
    }

    /// A key by its public id, read straight from the table: tests look across tenants.
    pub fn find(conn: &mut PgConnection, public_id: &str) -> diesel::QueryResult<Option<ApiKey>> {
        use diesel::prelude::*;
        use keyward::db::schema::api_keys;
        api_keys::table.filter(api_keys::public_id.eq(public_id)).select(ApiKey::as_select()).first(conn).optional()
    }

    /// `key` as the services name it, in the narrowest scope that holds it.
    pub fn at(key: &ApiKey) -> KeyRef<'_> {
        let scope = match (key.owner_service_provider_id, key.organization_id, key.owner_user_id) {
            (Some(provider), ..) => KeyScope::ServiceProvider(provider),
            (None, Some(organization_id), Some(user_id)) => KeyScope::OwnedBy { organization_id, user_id },
            (None, Some(organization_id), None) => KeyScope::Organization(organization_id),
            (None, None, _) => unreachable!("a key belongs to an organization or a provider"),
        };
        KeyRef { scope, public_id: &key.public_id }
    }
}
