//! List pages at scale: the number of database queries each list page issues must not grow
//! with the number of rows it shows (no query per row). The count comes from the page's
//! `Server-Timing` header, which the application fills from Diesel's instrumentation.

use keyward::{
    db::models::{
        Organization, ServiceProvider,
        asset::{Asset, AssetGroup},
    },
    services::{
        demo_volume::{self, Volume},
        keys::{AssetScope, NewKeyOwner},
    },
};
use reqwest::StatusCode;

use crate::helpers::{PASSWORD_HASH, TestApp, TestClient, fixtures, keys, spawn_app, user};

/// The number of queries a response reports in `Server-Timing: …, db;desc="N queries"`.
fn queries_of(response: &reqwest::Response) -> u32 {
    let timing = response.headers().get("server-timing").expect("a Server-Timing header").to_str().unwrap();
    let start = timing.find("db;desc=\"").expect("a db metric") + "db;desc=\"".len();
    timing[start..].split(' ').next().unwrap().parse().unwrap()
}

struct World {
    app: TestApp,
    org: Organization,
    provider: ServiceProvider,
}

async fn world() -> World {
    let app = spawn_app().await;
    let mut conn = app.conn();
    let (provider, org) = fixtures::served_organization(&mut conn, "acme", "Fleetlink");
    fixtures::admin(&mut conn, &org, "admin@acme.test");
    fixtures::UserBuilder::new(&org, "bob@acme.test").api_key_access().may_grant_all().insert(&mut conn);
    fixtures::staff(&mut conn, "sam@support.test");
    drop(conn);
    World { app, org, provider }
}

/// Adds `n` keys of every kind that lists show differently: personal keys of Bob limited to
/// assets and groups, organization keys, service-provider keys, and bulk users and keys.
fn grow(world: &World, n: usize, round: usize) {
    let World { app, org, provider } = world;
    let mut conn = app.conn();
    let bob = user(app, "bob@acme.test");
    let asset = Asset::insert(&mut conn, org.id, &format!("TRK-{round}"), "Truck").unwrap();
    let group = AssetGroup::insert(&mut conn, org.id, &format!("Depot {round}"), &[asset.id]).unwrap();
    for i in 0..n {
        let mut settings = keys::settings(Some(&["positions.read", "vehicles.read"]));
        settings.assets = AssetScope::Only { asset_ids: vec![asset.id], group_ids: vec![group.id] };
        let owner = NewKeyOwner::Personal { user_id: bob.id, organization_id: org.id };
        keys::create(&mut conn, &app.hasher, owner, &format!("Bob {round}-{i}"), settings);
        keys::organization(&mut conn, &app.hasher, &bob, &format!("Org {round}-{i}"));
        let settings = keys::settings(None);
        let owner = NewKeyOwner::ServiceProvider { service_provider_id: provider.id };
        keys::create(&mut conn, &app.hasher, owner, &format!("Provider {round}-{i}"), settings);
    }
    demo_volume::fill(
        &mut conn,
        &app.hasher,
        org,
        Some(&PASSWORD_HASH),
        Volume { users: n * 2, keys: n * 2 },
        round as u64,
    )
    .unwrap();
}

/// `(path, queries, table rows)` of each list page, as `client` sees it.
async fn measure(client: &TestClient, paths: &[String]) -> Vec<(String, u32, usize)> {
    let mut measured = Vec::new();
    for path in paths {
        // Twice: the first request of a connection may prepare statements or fill caches.
        client.get(path).await;
        let response = client.get(path).await;
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        let queries = queries_of(&response);
        let rows = response.text().await.unwrap().matches("<tr").count();
        measured.push((path.clone(), queries, rows));
    }
    measured
}

#[actix_web::test]
async fn list_pages_issue_the_same_number_of_queries_for_few_rows_and_many() {
    let world = world().await;
    let (org, sp) = (world.org.id, world.provider.id);
    let admin_pages: Vec<String> = [
        "/admin",
        "/admin/users",
        "/admin/users?access=1",
        "/admin/users?q=a&sort=last_login",
        "/admin/keys",
        "/admin/keys?q=bob&state=active",
        "/admin/keys?unused=90",
        "/admin/audit",
        "/admin/audit?action=key.&actor=seed",
        "/admin/roles",
        "/admin/assets",
    ]
    .map(String::from)
    .to_vec();
    let own_pages = vec!["/account/keys".to_string(), "/account/keys?q=bob".to_string()];
    let staff_pages = vec![
        "/staff".to_string(),
        "/staff/providers".to_string(),
        format!("/staff/providers/{sp}"),
        format!("/staff/providers/{sp}/keys"),
        "/staff/organizations".to_string(),
        format!("/staff/organizations/{org}"),
        format!("/staff/organizations/{org}/users?q=a"),
        "/staff/actions".to_string(),
        "/staff/accounts".to_string(),
    ];

    grow(&world, 2, 1);
    let admin = world.app.signed_in("admin@acme.test").await;
    let bob = world.app.signed_in("bob@acme.test").await;
    let sam = world.app.signed_in("sam@support.test").await;
    let few = [measure(&admin, &admin_pages).await, measure(&bob, &own_pages).await, measure(&sam, &staff_pages).await]
        .concat();

    grow(&world, 30, 2);
    let many =
        [measure(&admin, &admin_pages).await, measure(&bob, &own_pages).await, measure(&sam, &staff_pages).await]
            .concat();

    let mut report = Vec::new();
    let mut grew = 0;
    for ((path, few_queries, few_rows), (_, many_queries, many_rows)) in few.iter().zip(&many) {
        if many_rows > few_rows {
            grew += 1;
        }
        if few_queries != many_queries {
            report.push(format!("{path}: {few_queries} queries for {few_rows} rows, {many_queries} for {many_rows}"));
        }
    }
    assert!(report.is_empty(), "queries grow with the rows shown:\n{}", report.join("\n"));
    assert!(grew >= 10, "the second measurement shows more rows on most pages ({grew})");
}
