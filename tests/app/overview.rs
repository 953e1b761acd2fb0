//! The admin overview's numbers (issue 16, item 11): each card counts what the list it links
//! to shows — keys by state, expiring, unused, users with API key access — in the reader's
//! organization only, and only for readers who may open those lists. Also the key list's
//! "unused" filter and the user list's "with API key access" filter behind two of the cards.

use std::collections::BTreeSet;

use chrono::{DateTime, Duration, Utc};
use diesel::prelude::*;
use keyward::{
    db::{
        models::{ApiKey, Organization, User},
        schema::{api_keys, users},
    },
    domain::Permission,
};
use reqwest::StatusCode;

use crate::{
    fixtures::UserBuilder,
    helpers::{Page, TestApp, TestClient, fixtures, keys, spawn_app},
};

/// Sets a key's dates (and activity) straight in the table, as time would have.
fn age(app: &TestApp, key: &ApiKey, created: Duration, last_used: Option<Duration>) {
    let now = Utc::now();
    diesel::update(api_keys::table.find(key.id))
        .set((api_keys::created_at.eq(now - created), api_keys::last_used_at.eq(last_used.map(|d| now - d))))
        .execute(&mut *app.conn())
        .unwrap();
}

fn expire_at(app: &TestApp, key: &ApiKey, at: DateTime<Utc>) {
    diesel::update(api_keys::table.find(key.id))
        .set(api_keys::expires_at.eq(Some(at)))
        .execute(&mut *app.conn())
        .unwrap();
}

/// Acme's keys, one of each kind the overview counts, by what they are.
struct Keys {
    fresh: ApiKey,
    recently_used: ApiKey,
    stale: ApiKey,
    never_used_org_key: ApiKey,
    expiring: ApiKey,
    expired: ApiKey,
    deactivated: ApiKey,
    owner_disabled: ApiKey,
}

struct World {
    app: TestApp,
    acme: Organization,
    keys: Keys,
}

/// Acme (administrator, Bob with access, Carol who lost it, Dave deactivated) with one key of
/// each kind, and Globex with keys of every kind that must never count for Acme.
async fn world() -> World {
    let app = spawn_app().await;
    let hasher = &app.hasher;
    let mut conn = app.conn();
    let acme = fixtures::organization(&mut conn, "acme");
    let admin = fixtures::admin(&mut conn, &acme, "admin@acme.test");
    let bob = fixtures::key_owner(&mut conn, &acme, "bob@acme.test");
    let carol = fixtures::key_owner(&mut conn, &acme, "carol@acme.test");
    UserBuilder::new(&acme, "dave@acme.test").api_key_access().inactive().insert(&mut conn);
    UserBuilder::new(&acme, "erin@acme.test").role(&[Permission::KeysOwn]).insert(&mut conn);
    fixtures::reader(&mut conn, &acme, "rita@acme.test");
    diesel::update(users::table.filter(users::email.eq("rita@acme.test")))
        .set(users::api_key_access.eq(false))
        .execute(&mut conn)
        .unwrap();

    let key = |conn: &mut keyward::db::PooledPg, owner: &User, name: &str| keys::personal(conn, hasher, owner, name).0;
    let keys = Keys {
        fresh: key(&mut conn, &bob, "Fresh"),
        recently_used: key(&mut conn, &bob, "Recently used"),
        stale: key(&mut conn, &bob, "Stale"),
        never_used_org_key: keys::organization(&mut conn, hasher, &admin, "Never used").0,
        expiring: key(&mut conn, &bob, "Expiring"),
        expired: key(&mut conn, &bob, "Expired"),
        deactivated: key(&mut conn, &bob, "Deactivated"),
        owner_disabled: key(&mut conn, &carol, "Carol's"),
    };
    drop(conn);
    age(&app, &keys.recently_used, Duration::days(200), Some(Duration::days(1)));
    age(&app, &keys.stale, Duration::days(200), Some(Duration::days(100)));
    age(&app, &keys.never_used_org_key, Duration::days(120), None);
    // Old and unused too, but it does not work: not among the active keys unused.
    age(&app, &keys.owner_disabled, Duration::days(200), None);
    expire_at(&app, &keys.expiring, Utc::now() + Duration::days(5));
    expire_at(&app, &keys.expired, Utc::now() - Duration::days(1));
    diesel::update(api_keys::table.find(keys.deactivated.id))
        .set(api_keys::active.eq(false))
        .execute(&mut *app.conn())
        .unwrap();
    diesel::update(users::table.find(carol.id)).set(users::api_key_access.eq(false)).execute(&mut *app.conn()).unwrap();

    // Globex: keys of every kind, none of which is Acme's business.
    let mut conn = app.conn();
    let globex = fixtures::organization(&mut conn, "globex");
    let gina = fixtures::key_owner(&mut conn, &globex, "gina@globex.test");
    let lost = fixtures::key_owner(&mut conn, &globex, "lost@globex.test");
    let g: Vec<ApiKey> = ["G1", "G2", "G3", "G4"].iter().map(|n| key(&mut conn, &gina, n)).collect();
    let g_disabled = key(&mut conn, &lost, "G lost");
    drop(conn);
    age(&app, &g[0], Duration::days(300), None);
    expire_at(&app, &g[1], Utc::now() + Duration::days(3));
    expire_at(&app, &g[2], Utc::now() - Duration::days(3));
    diesel::update(api_keys::table.find(g[3].id)).set(api_keys::active.eq(false)).execute(&mut *app.conn()).unwrap();
    diesel::update(users::table.find(lost.id)).set(users::api_key_access.eq(false)).execute(&mut *app.conn()).unwrap();
    let _ = g_disabled;
    World { app, acme, keys }
}

/// The cards of an overview: `data-stat → (number, link)`.
fn cards(page: &Page) -> Vec<(String, String, String)> {
    let ids = page.select("a.stat-card").attrs("data-stat");
    ids.into_iter()
        .map(|id| {
            let card = format!("a.stat-card[data-stat=\"{id}\"]");
            let number = page.select(&format!("{card} .stat-number")).text();
            let href = page.select(&card).attr("href").unwrap();
            (id, number, href)
        })
        .collect()
}

/// The public ids of the keys a key list page shows.
fn listed(page: &Page) -> BTreeSet<String> {
    page.select("tr[data-key]").attrs("data-key").into_iter().collect()
}

fn ids(keys: &[&ApiKey]) -> BTreeSet<String> {
    keys.iter().map(|k| k.public_id.clone()).collect()
}

async fn open_ok(client: &TestClient, path: &str) -> Page {
    let page = client.open(path).await;
    assert_eq!(page.status, StatusCode::OK, "{path}: {page}");
    page
}

#[actix_web::test]
async fn the_overviews_numbers_count_the_organizations_keys_and_link_to_lists_of_exactly_those() {
    let World { app, keys: k, .. } = world().await;
    let admin = app.signed_in("admin@acme.test").await;
    let overview = open_ok(&admin, "/admin").await;

    let active = ids(&[&k.fresh, &k.recently_used, &k.stale, &k.never_used_org_key, &k.expiring]);
    let expected: Vec<(&str, BTreeSet<String>)> = vec![
        ("active", active),
        ("expiring", ids(&[&k.expiring])),
        ("unused", ids(&[&k.stale, &k.never_used_org_key])),
        ("disabled", ids(&[&k.owner_disabled])),
        ("inactive", ids(&[&k.deactivated])),
        ("expired", ids(&[&k.expired])),
    ];
    let shown = cards(&overview);
    let names: Vec<&str> = shown.iter().map(|(id, _, _)| id.as_str()).collect();
    assert_eq!(names, ["active", "expiring", "unused", "disabled", "inactive", "expired", "users"], "{overview}");
    for ((id, number, href), (expected_id, keys)) in shown.iter().zip(&expected) {
        assert_eq!(id, expected_id);
        assert_eq!(number, &keys.len().to_string(), "{id}: {overview}");
        // The card's link lists exactly the keys it counts.
        let list = open_ok(&admin, href).await;
        assert_eq!(&listed(&list), keys, "{id}: {href}");
    }

    // Users with API key access: the administrator and Bob; not Carol (lost it), Dave
    // (deactivated) or Rita (her role grants actions but not access); Erin by her role.
    let (_, number, href) = shown.last().unwrap();
    assert_eq!(number, "3");
    assert_eq!(href, "/admin/users?access=1");
    let users = open_ok(&admin, href).await;
    let listed_users: BTreeSet<String> = users.select("tr[data-user]").attrs("data-user").into_iter().collect();
    let expected_users: BTreeSet<String> =
        ["admin@acme.test", "bob@acme.test", "erin@acme.test"].iter().map(|s| s.to_string()).collect();
    assert_eq!(listed_users, expected_users, "{users}");
    assert_eq!(users.field("access").as_deref(), Some("1"), "the filter shows as applied");
    assert!(users.links_to("/admin/users"), "and can be cleared");
    let everyone = open_ok(&admin, "/admin/users").await;
    assert_eq!(everyone.select("tr[data-user]").len(), 6);
}

#[actix_web::test]
async fn the_unused_filter_lists_keys_nobody_used_for_that_many_days() {
    let World { app, keys: k, .. } = world().await;
    let admin = app.signed_in("admin@acme.test").await;

    // In any state: the stale key, the old organization key never used, and Carol's old key.
    let page = open_ok(&admin, "/admin/keys?unused=90").await;
    assert_eq!(listed(&page), ids(&[&k.stale, &k.never_used_org_key, &k.owner_disabled]), "{page}");
    assert_eq!(page.field("unused").as_deref(), Some("90"), "the filter shows as applied");
    // A key created today and never used has not been unused for 90 days; one used yesterday
    // neither. Shorter spans are filters too.
    let page = open_ok(&admin, "/admin/keys?unused=30").await;
    assert!(!listed(&page).contains(&k.fresh.public_id) && !listed(&page).contains(&k.recently_used.public_id));
    assert_eq!(listed(&page).len(), 3);
    let page = open_ok(&admin, "/admin/keys?unused=90&state=disabled").await;
    assert_eq!(listed(&page), ids(&[&k.owner_disabled]));
    let page = open_ok(&admin, "/admin/keys?unused=").await;
    assert_eq!(listed(&page).len(), 8, "empty: no filter");
    for bad in ["abc", "0", "-5", "99999", "9223372036854775808"] {
        let response = admin.get(&format!("/admin/keys?unused={bad}")).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{bad}");
    }
}

#[actix_web::test]
async fn only_readers_of_the_keys_see_key_numbers_and_only_user_managers_the_users_number() {
    let World { app, acme, .. } = world().await;
    let mut conn = app.conn();
    UserBuilder::new(&acme, "audrey@acme.test").role(&[Permission::AuditRead]).insert(&mut conn);
    UserBuilder::new(&acme, "uma@acme.test").role(&[Permission::UsersManage]).insert(&mut conn);
    UserBuilder::new(&acme, "kim@acme.test").role(&[Permission::KeysManage]).insert(&mut conn);
    drop(conn);

    let auditor = open_ok(&app.signed_in("audrey@acme.test").await, "/admin").await;
    assert!(cards(&auditor).is_empty(), "{auditor}");
    assert!(!auditor.has(".stat-number") && !auditor.says("Active keys"), "no key numbers: {auditor}");
    assert!(auditor.says("Recent activity"), "but the activity the auditor may read");

    let user_manager = open_ok(&app.signed_in("uma@acme.test").await, "/admin").await;
    let seen: Vec<String> = cards(&user_manager).into_iter().map(|(id, ..)| id).collect();
    assert_eq!(seen, ["users"], "{user_manager}");
    assert!(!user_manager.says("Recent activity"));

    let key_manager = open_ok(&app.signed_in("kim@acme.test").await, "/admin").await;
    let seen: Vec<String> = cards(&key_manager).into_iter().map(|(id, ..)| id).collect();
    assert_eq!(seen, ["active", "expiring", "unused", "disabled", "inactive", "expired"], "{key_manager}");
}
