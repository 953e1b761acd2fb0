//! Admin → Roles, Key policy, Assets and the Audit log.

use diesel::prelude::*;
use keyward::{
    db::{
        models::{ApiKey, AuditEvent, Organization, asset::Asset},
        schema::audit_events,
    },
    domain::Permission,
    services::keys::{AssetScope, NewKeyOwner},
};
use reqwest::{StatusCode, header};

use crate::helpers::{TestApp, audit_count, fixtures, keys, location, spawn_app, user};

struct World {
    app: TestApp,
    org: Organization,
}

async fn world() -> World {
    let app = spawn_app().await;
    let mut conn = app.conn();
    let org = fixtures::acme_and_globex(&mut conn);
    // API key access, but no action he may grant.
    fixtures::UserBuilder::new(&org, "bob@acme.test").api_key_access().insert(&mut conn);
    drop(conn);
    World { app, org }
}

#[actix_web::test]
async fn roles_grant_permissions_and_api_action_ceilings() {
    let World { app, .. } = world().await;
    let admin = app.signed_in("admin@acme.test").await;
    let (_, list) = admin.page("/admin/roles").await;
    assert!(list.contains("No roles yet"));
    admin.page("/admin/roles/new").await;
    let response = admin
        .post(
            "/admin/roles",
            &[
                ("name", "Integrators"),
                ("description", "Build integrations"),
                ("permission", "keys.own"),
                ("actions_mode", "selected"),
                ("action", "positions.read"),
            ],
        )
        .await;
    assert_eq!(location(&response), "/admin/roles");
    let (_, list) = admin.page("/admin/roles").await;
    assert!(list.contains("Created the role Integrators.") && list.contains("positions.read"));

    // Bob gets the role: he may now grant positions.read (and nothing else) on his keys.
    let role_id: i64 =
        keyward::db::models::Role::list_for_org(&mut app.conn(), user(&app, "bob@acme.test").organization_id).unwrap()
            [0]
        .id;
    let bob_id = user(&app, "bob@acme.test").id;
    admin.page("/admin/users").await;
    admin
        .post(&format!("/admin/users/{bob_id}/edit"), &[("display_name", "Bob"), ("role", &role_id.to_string())])
        .await;
    let bob = app.signed_in("bob@acme.test").await;
    let offered = bob.open("/account/keys/new").await.select("input[name=action]").attrs("value");
    assert_eq!(offered, ["positions.read"], "the role's one action is offered");
    let (_, detail) = admin.page(&format!("/admin/users/{bob_id}")).await;
    assert!(detail.contains("Integrators") && detail.contains("Key: Own keys"), "effective permissions shown");

    // Duplicate names and bad input are refused; edit and delete work.
    admin.page("/admin/roles/new").await;
    let dup = admin.post("/admin/roles", &[("name", "integrators"), ("actions_mode", "all")]).await;
    assert_eq!(dup.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(dup.text().await.unwrap().contains("exists already"));
    let edit = admin
        .post(
            &format!("/admin/roles/{role_id}/edit"),
            &[("name", "Integrators"), ("permission", "keys.manage"), ("actions_mode", "all")],
        )
        .await;
    assert_eq!(edit.status(), StatusCode::SEE_OTHER);
    let bob = app.signed_in("bob@acme.test").await;
    assert_eq!(bob.get("/admin/keys").await.status(), StatusCode::OK, "the changed role grants Key: Manage");
    admin.page("/admin/roles").await;
    admin.post(&format!("/admin/roles/{role_id}/delete"), &[]).await;
    assert_eq!(bob.get("/admin/keys").await.status(), StatusCode::FORBIDDEN, "gone with the role");
    for action in ["role.create", "role.update", "role.delete", "user.role_change"] {
        assert_eq!(audit_count(&app, action), 1, "{action}");
    }
    // Only administrators manage roles.
    fixtures::UserBuilder::new(&user_org(&app), "kim@acme.test")
        .role(&[Permission::KeysManage, Permission::UsersManage])
        .insert(&mut app.conn());
    let kim = app.signed_in("kim@acme.test").await;
    assert_eq!(kim.get("/admin/roles").await.status(), StatusCode::FORBIDDEN);
    kim.page("/admin/keys").await;
    assert_eq!(
        kim.post("/admin/roles", &[("name", "Sneaky"), ("actions_mode", "all")]).await.status(),
        StatusCode::FORBIDDEN
    );
}

fn user_org(app: &TestApp) -> Organization {
    Organization::find(&mut app.conn(), user(app, "admin@acme.test").organization_id).unwrap()
}

#[actix_web::test]
async fn the_key_policy_is_applied_to_new_keys() {
    let World { app, org } = world().await;
    let admin = app.signed_in("admin@acme.test").await;
    let page = admin.open("/admin/policy").await;
    assert_eq!(page.field("default_lifetime_days").as_deref(), Some("365"), "{page}");
    let bad = admin
        .post(
            "/admin/policy",
            &[("default_lifetime_days", "120"), ("max_lifetime_days", "90"), ("default_grace_minutes", "60")],
        )
        .await;
    assert_eq!(bad.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad.text().await.unwrap().contains("cannot be longer than the maximum"));
    let bad = admin.post("/admin/policy", &[("default_lifetime_days", "abc"), ("default_grace_minutes", "7")]).await;
    assert_eq!(bad.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let ok = admin
        .post(
            "/admin/policy",
            &[("default_lifetime_days", "30"), ("max_lifetime_days", "90"), ("default_grace_minutes", "60")],
        )
        .await;
    assert_eq!(location(&ok), "/admin/policy");
    let org = Organization::find(&mut app.conn(), org.id).unwrap();
    assert_eq!(
        (org.key_default_lifetime_days, org.key_max_lifetime_days, org.key_default_grace_minutes),
        (30, Some(90), 60)
    );
    let event: AuditEvent = audit_events::table
        .filter(audit_events::action.eq("organization.policy_update"))
        .select(AuditEvent::as_select())
        .first(&mut *app.conn())
        .unwrap();
    assert_eq!(event.details["to"]["max_lifetime_days"], serde_json::json!(90));

    let (_, form) = admin.page("/admin/keys/new").await;
    let default = (chrono::Utc::now() + chrono::Duration::days(30)).date_naive().to_string();
    assert!(form.contains(&format!("value=\"{default}\"")) && form.contains("At most 90 days"));
    // Only administrators change it.
    let bob = app.signed_in("bob@acme.test").await;
    assert_eq!(bob.get("/admin/policy").await.status(), StatusCode::FORBIDDEN);
}

#[actix_web::test]
async fn assets_and_groups_are_managed_and_deleting_removes_them_from_keys() {
    let World { app, org } = world().await;
    let admin = app.signed_in("admin@acme.test").await;
    admin.page("/admin/assets/groups/new").await;
    assert_eq!(location(&admin.post("/admin/assets/groups", &[("name", "North")]).await), "/admin/assets");
    let group = keyward::db::models::asset::AssetGroup::list_for_org(&mut app.conn(), org.id).unwrap().remove(0);
    admin.page("/admin/assets/new").await;
    let created =
        admin.post("/admin/assets", &[("code", "TRK-1"), ("name", "Truck 1"), ("group", &group.id.to_string())]).await;
    assert_eq!(created.status(), StatusCode::SEE_OTHER);
    admin.page("/admin/assets/new").await;
    let dup = admin.post("/admin/assets", &[("code", "TRK-1"), ("name", "Again")]).await;
    assert_eq!(dup.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let bad = admin.post("/admin/assets", &[("code", "has space"), ("name", "")]).await;
    let body = bad.text().await.unwrap();
    assert!(body.contains("Use 1–64 letters") && body.contains("Enter a name"));
    let (_, list) = admin.page("/admin/assets").await;
    assert!(list.contains("TRK-1") && list.contains("North"));

    let asset = Asset::list_for_org(&mut app.conn(), org.id).unwrap().remove(0);
    let edited = admin.post(&format!("/admin/assets/{}/edit", asset.id), &[("name", "Truck One")]).await;
    assert_eq!(edited.status(), StatusCode::SEE_OTHER);
    let renamed = Asset::find_in_org(&mut app.conn(), org.id, asset.id).unwrap();
    assert_eq!((renamed.name.as_str(), renamed.code.as_str()), ("Truck One", "TRK-1"), "the code never changes");

    // A key limited to the asset loses it when the asset is deleted.
    let bob = user(&app, "bob@acme.test");
    let mut settings = keys::settings(None);
    settings.assets = AssetScope::Only { asset_ids: vec![asset.id], group_ids: vec![] };
    let (key, _) = keys::create(
        &mut app.conn(),
        &app.hasher,
        NewKeyOwner::Organization { organization_id: org.id },
        "Limited",
        keyward::services::keys::KeyInput { proxy_user_id: Some(bob.id), ..settings },
    );
    let (_, confirm) = admin.page(&format!("/admin/assets/{}/delete", asset.id)).await;
    assert!(confirm.contains("Keys limited to this asset (1 key) lose access"));
    admin.post(&format!("/admin/assets/{}/delete", asset.id), &[]).await;
    assert!(ApiKey::assets_of(&mut app.conn(), &[key.id]).unwrap().is_empty());
    let event: AuditEvent = audit_events::table
        .filter(audit_events::action.eq("asset.delete"))
        .select(AuditEvent::as_select())
        .first(&mut *app.conn())
        .unwrap();
    assert_eq!(event.details["keys_losing_it"], serde_json::json!([key.public_id]));

    admin.page("/admin/assets").await;
    admin.post(&format!("/admin/assets/groups/{}/delete", group.id), &[]).await;
    assert!(keyward::db::models::asset::AssetGroup::list_for_org(&mut app.conn(), org.id).unwrap().is_empty());
    // Another organization's assets are not found; members may not open the page.
    let intruder = app.signed_in("admin@globex.test").await;
    let other_asset = Asset::insert(&mut app.conn(), org.id, "TRK-2", "Truck 2").unwrap();
    assert_eq!(intruder.get(&format!("/admin/assets/{}/edit", other_asset.id)).await.status(), StatusCode::NOT_FOUND);
    intruder.page("/admin/assets").await;
    assert_eq!(
        intruder.post(&format!("/admin/assets/{}/delete", other_asset.id), &[]).await.status(),
        StatusCode::NOT_FOUND
    );
    assert!(Asset::find_in_org(&mut app.conn(), org.id, other_asset.id).is_ok());
    let member = app.signed_in("bob@acme.test").await;
    assert_eq!(member.get("/admin/assets").await.status(), StatusCode::FORBIDDEN);
}

#[actix_web::test]
async fn the_audit_log_filters_pages_and_exports_csv() {
    let World { app, org } = world().await;
    let bob = user(&app, "bob@acme.test");
    for i in 0..60 {
        keys::organization(&mut app.conn(), &app.hasher, &bob, &format!("Key {i}"));
    }
    // An event of another organization must never show.
    let globex_admin = app.signed_in("admin@globex.test").await;
    drop(globex_admin);
    let admin = app.signed_in("admin@acme.test").await;
    let (status, page) = admin.page("/admin/audit").await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("Showing 1–50 of 61"), "60 key creations and the admin's sign-in");
    assert!(!page.contains("admin@globex.test"));
    let (_, filtered) = admin.page("/admin/audit?action=login.").await;
    assert!(filtered.contains("of 1<") && filtered.contains("login.success"));
    let (_, by_target) = admin.page("/admin/audit?target=Key+5").await;
    assert!(by_target.contains("of 11<"), "Key 5, Key 50…59");
    let today = chrono::Utc::now().date_naive();
    let (_, future) = admin.page(&format!("/admin/audit?from={}", today + chrono::Duration::days(1))).await;
    assert!(future.contains("No events match"));
    assert_eq!(admin.get("/admin/audit?from=yesterday").await.status(), StatusCode::BAD_REQUEST);
    for extreme in ["to=+262142-12-31", "to=262143-12-31", "from=-262143-01-01", "to=0000-01-01"] {
        assert_eq!(admin.get(&format!("/admin/audit?{extreme}")).await.status(), StatusCode::BAD_REQUEST, "{extreme}");
    }
    assert_eq!(admin.get("/admin/audit?to=9999-12-31").await.status(), StatusCode::OK);

    let response = admin.get("/admin/audit.csv?action=key.create").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers().get(header::CONTENT_TYPE).unwrap().to_str().unwrap().starts_with("text/csv"));
    assert!(response.headers().get(header::CONTENT_DISPOSITION).unwrap().to_str().unwrap().contains("attachment"));
    let csv = response.text().await.unwrap();
    assert_eq!(csv.lines().count(), 61, "a header and 60 rows");
    assert!(csv.starts_with("time_utc,actor_type,actor,action"));

    // Formula injection is neutralized.
    fixtures::UserBuilder::new(&org, "=cmd@acme.test").insert(&mut app.conn());
    keyward::services::audit::record(
        &mut app.conn(),
        &keyward::services::Actor::system("test"),
        keyward::services::audit::Entry::new(keyward::services::audit::AuditAction::UserUpdate)
            .organization(Some(org.id))
            .target(keyward::services::audit::Target::new("user", 1, "=HYPERLINK(\"http://evil\")")),
    )
    .unwrap();
    let csv = admin.get("/admin/audit.csv?action=user.update").await.text().await.unwrap();
    assert!(csv.contains("'=HYPERLINK"), "{csv}");

    // audit.read holders see it; others do not.
    fixtures::UserBuilder::new(&org, "auditor@acme.test").role(&[Permission::AuditRead]).insert(&mut app.conn());
    let auditor = app.signed_in("auditor@acme.test").await;
    assert_eq!(auditor.get("/admin/audit").await.status(), StatusCode::OK);
    let member = app.signed_in("bob@acme.test").await;
    assert_eq!(member.get("/admin/audit").await.status(), StatusCode::FORBIDDEN);
    assert_eq!(member.get("/admin/audit.csv").await.status(), StatusCode::FORBIDDEN);
}
