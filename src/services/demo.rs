//! The demo data set seeded into a fresh embedded database (and by `keyward seed-demo`):
//! a service provider, two organizations with administrators, users, roles and assets, and
//! a support staff account. Every account's password is [`DEMO_PASSWORD`].

use crate::services::audit::AuditAction;
use diesel::{Connection, OptionalExtension, PgConnection};

use crate::{
    db::models::{
        ApiAction, Organization, Role, ServiceProvider,
        asset::{Asset, AssetGroup},
    },
    domain::Permission,
    error::AppError,
    services::{
        Actor,
        organizations::{self, CreateOrganization},
        staff,
        users::{self, CreateUser},
    },
};

/// Password of every demo account (documented in the README; demo data only).
pub const DEMO_PASSWORD: &str = "keyward-demo";

/// Slug of the first demo organization; its presence means the demo data is there.
pub const DEMO_ORG_SLUG: &str = "acme";

/// `(who, email)` of each demo account, for printing.
pub const DEMO_ACCOUNTS: &[(&str, &str)] = &[
    ("Support staff", "support@keyward.example"),
    ("Acme Logistics administrator", "alice@acme.example"),
    ("Acme user with API key access", "bob@acme.example"),
    ("Acme user without API key access", "carol@acme.example"),
    ("Acme key manager (role)", "dave@acme.example"),
    ("Globex Freight administrator", "grace@globex.example"),
    ("Globex user with API key access", "henry@globex.example"),
];

/// Whether the demo data set is present.
pub fn is_seeded(conn: &mut PgConnection) -> Result<bool, AppError> {
    Ok(Organization::find_by_slug(conn, DEMO_ORG_SLUG).optional()?.is_some())
}

/// Seeds the demo data set in one transaction unless it is already there; returns whether
/// it seeded. `password_hash` is the argon2 hash of [`DEMO_PASSWORD`], computed by the caller.
pub fn seed(conn: &mut PgConnection, password_hash: &str) -> Result<bool, AppError> {
    conn.transaction(|conn| {
        if is_seeded(conn)? {
            return Ok(false);
        }
        let actor = Actor::system("seed-demo");
        let provider = ServiceProvider::insert(conn, "Northwind Telematics")?;
        crate::services::audit::record(
            conn,
            &actor,
            crate::services::audit::Entry::new(AuditAction::ServiceProviderCreate)
                .service_provider(Some(provider.id))
                .target(crate::services::audit::Target::new("service_provider", provider.id, &provider.name)),
        )?;
        staff::create(conn, &actor, "support@keyward.example", "Sam Support", Some(password_hash))?;

        let acme = organizations::create(
            conn,
            &actor,
            CreateOrganization {
                name: "Acme Logistics".into(),
                slug: Some(DEMO_ORG_SLUG.into()),
                service_provider_id: Some(provider.id),
            },
        )?;
        let user = |conn: &mut PgConnection, org: i64, email: &str, name: &str, admin: bool, access: bool| {
            users::create(
                conn,
                &actor,
                CreateUser {
                    organization_id: org,
                    email: email.into(),
                    display_name: name.into(),
                    password_hash: Some(password_hash.into()),
                    is_admin: admin,
                    api_key_access: access,
                    role_ids: vec![],
                },
            )
        };
        user(conn, acme.id, "alice@acme.example", "Alice Admin", true, true)?;
        let bob = user(conn, acme.id, "bob@acme.example", "Bob Builder", false, true)?;
        user(conn, acme.id, "carol@acme.example", "Carol Clerk", false, false)?;
        let dave = user(conn, acme.id, "dave@acme.example", "Dave Dispatcher", false, false)?;
        user(conn, acme.id, "integration@acme.example", "Integration Proxy", false, false)?;
        let key_managers =
            Role::insert(conn, acme.id, "Key managers", "Manage every API key of Acme", &[Permission::KeysManage])?;
        Role::insert(conn, acme.id, "Auditors", "Read the audit log", &[Permission::AuditRead])?;
        Role::allow_api_actions(conn, key_managers.id, true, &[])?;
        Role::assign(conn, acme.id, key_managers.id, dave.id)?;
        let read_only = read_only_actions(conn)?;
        let integrators = Role::insert(conn, acme.id, "Integrators", "Build integrations that read fleet data", &[])?;
        Role::allow_api_actions(conn, integrators.id, false, &read_only)?;
        Role::assign(conn, acme.id, integrators.id, bob.id)?;
        let trucks: Vec<i64> = (101..=106)
            .map(|n| Asset::insert(conn, acme.id, &format!("TRK-{n}"), &format!("Truck {n}")).map(|a| a.id))
            .collect::<Result<_, _>>()?;
        AssetGroup::insert(conn, acme.id, "North depot", &trucks[..3])?;
        AssetGroup::insert(conn, acme.id, "South depot", &trucks[3..])?;

        let globex = organizations::create(
            conn,
            &actor,
            CreateOrganization {
                name: "Globex Freight".into(),
                slug: Some("globex".into()),
                service_provider_id: None,
            },
        )?;
        user(conn, globex.id, "grace@globex.example", "Grace Globex", true, true)?;
        let henry = user(conn, globex.id, "henry@globex.example", "Henry Hauler", false, true)?;
        let globex_integrators =
            Role::insert(conn, globex.id, "Integrators", "Build integrations that read fleet data", &[])?;
        Role::allow_api_actions(conn, globex_integrators.id, false, &read_only)?;
        Role::assign(conn, globex.id, globex_integrators.id, henry.id)?;
        let vans: Vec<i64> = (1..=4)
            .map(|n| Asset::insert(conn, globex.id, &format!("VAN-{n}"), &format!("Van {n}")).map(|a| a.id))
            .collect::<Result<_, _>>()?;
        AssetGroup::insert(conn, globex.id, "City vans", &vans)?;
        Ok(true)
    })
}

/// Ids of the catalog's read-only actions (`*.read`).
fn read_only_actions(conn: &mut PgConnection) -> Result<Vec<i64>, AppError> {
    Ok(ApiAction::list_active(conn)?.into_iter().filter(|a| a.code.ends_with(".read")).map(|a| a.id).collect())
}

/// The demo credentials as printed at start-up and by `keyward seed-demo`.
pub fn credentials_text(base_url: &str) -> String {
    let mut text = format!("Demo accounts (password for all: {DEMO_PASSWORD}) — sign in at {base_url}/login\n");
    for (who, email) in DEMO_ACCOUNTS {
        text.push_str(&format!("  {email:<28} {who}\n"));
    }
    // Staff must have a second factor; the demo organizations require none (their Key policy
    // says "nobody"), so only the staff account meets one at its first sign-in.
    text.push_str(
        "Staff accounts sign in with a second factor: the first sign-in as support@keyward.example sets up an \
         authenticator app (QR code) or a passkey (open http://localhost:8080 for passkeys), later ones ask for it. \
         The demo organizations require none (Admin → Key policy).\n",
    );
    text
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_credentials_say_that_staff_set_up_a_second_factor_at_first_sign_in() {
        let text = super::credentials_text("http://127.0.0.1:8080");
        assert!(text.contains("support@keyward.example"), "{text}");
        assert!(text.contains("first sign-in") && text.contains("authenticator app"), "{text}");
        assert!(text.contains("http://127.0.0.1:8080/login"), "{text}");
    }
}
