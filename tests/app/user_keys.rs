//! Keys for a user (Admin → Users → a user → "Add key"): an administrator creates a personal
//! key owned by a member, capped by that member's ceiling, shown once, audited as the
//! administrator's; the user's page lists the member's keys and the organization list
//! filters by owner.

use diesel::prelude::*;
use keyward::{
    db::{
        models::{ApiKey, AuditEvent, User},
        schema::{api_keys, audit_events},
    },
    domain::Permission,
};
use reqwest::StatusCode;

use crate::{
    helpers::{TestApp, fixtures, location, spawn_app},
    keys::{shown_secret, submit_new},
};

struct Acme {
    app: TestApp,
    admin: User,
    /// Has API key access and may grant `positions.read` only.
    owner: User,
    /// No API key access.
    plain: User,
    /// A user of Globex.
    stranger: User,
}

async fn acme() -> Acme {
    let app = spawn_app().await;
    let mut conn = app.conn();
    let acme = fixtures::acme_and_globex(&mut conn);
    let admin = User::find_by_email(&mut conn, "admin@acme.test").unwrap().unwrap();
    let owner = fixtures::key_owner(&mut conn, &acme, "owner@acme.test");
    let plain = fixtures::UserBuilder::new(&acme, "plain@acme.test").insert(&mut conn);
    let globex = fixtures::organization(&mut conn, "globex2");
    let stranger = fixtures::key_owner(&mut conn, &globex, "stranger@globex2.test");
    drop(conn);
    Acme { app, admin, owner, plain, stranger }
}

fn keys_of(app: &TestApp, user: &User) -> Vec<ApiKey> {
    api_keys::table
        .filter(api_keys::owner_user_id.eq(user.id))
        .select(ApiKey::as_select())
        .load(&mut *app.conn())
        .unwrap()
}

#[actix_web::test]
async fn an_administrator_adds_a_key_for_a_user_from_their_page() {
    let Acme { app, admin, owner, .. } = acme().await;
    let client = app.signed_in(&admin.email).await;
    let user_page = format!("/admin/users/{}", owner.id);
    let base = format!("{user_page}/keys");

    let page = client.open(&user_page).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.links_to(&format!("{base}/new")), "the user page offers Add key: {page}");
    assert!(page.says("has no personal API keys"));

    // Asking for more than the owner may do is refused, naming what is beyond.
    let (status, body, _) = submit_new(
        &client,
        &base,
        &[
            ("name", "Too wide"),
            ("actions_mode", "selected"),
            ("action", "positions.read"),
            ("action", "vehicles.read"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body.contains("vehicles.read"), "{body}");
    assert!(keys_of(&app, &owner).is_empty());

    // A name alone: the owner's ceiling.
    let (status, body, headers) = submit_new(&client, &base, &[("name", "Raynet feed")]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(headers.get(reqwest::header::CACHE_CONTROL).unwrap().to_str().unwrap().contains("no-store"));
    let secret = shown_secret(&body).expect("the secret is shown");
    let done = crate::page::Page::parse(&body).select("a[data-dialog-done]").attr("href");
    assert_eq!(done.as_deref(), Some(user_page.as_str()), "Done goes back to the user page");

    let keys = keys_of(&app, &owner);
    assert_eq!(keys.len(), 1);
    let key = &keys[0];
    assert_eq!((key.name.as_str(), key.created_by_user_id), ("Raynet feed", Some(admin.id)));
    assert!(app.hasher.matches(&secret, &key.secret_hash));
    assert!(!key.all_actions);
    assert_eq!(ApiKey::actions_of(&mut app.conn(), &[key.id]).unwrap()[&key.id], ["positions.read"]);

    // Audited as the administrator's, for the owner.
    let event: AuditEvent = audit_events::table
        .filter(audit_events::action.eq("key.create"))
        .select(AuditEvent::as_select())
        .first(&mut *app.conn())
        .unwrap();
    assert_eq!((event.actor_type.as_str(), event.actor_id), ("user", Some(admin.id)));
    assert_eq!(event.details["owner"], serde_json::json!({ "type": "user", "id": owner.id }));

    // Shown once: the user page lists it masked, with a link to its page, never the secret.
    let page = client.open(&user_page).await;
    assert!(page.says("Raynet feed") && page.body.contains(&key.masked()) && !page.body.contains(&secret));
    assert!(page.links_to(&format!("/admin/keys/{}", key.public_id)));
    assert!(page.links_to(&format!("/admin/keys?owner_user={}", owner.id)));
    let key_page = client.open(&format!("/admin/keys/{}", key.public_id)).await;
    assert_eq!(key_page.status, StatusCode::OK);
    assert!(!key_page.body.contains(&secret));
}

#[actix_web::test]
async fn the_organization_list_filters_by_owner() {
    let Acme { app, admin, owner, stranger, .. } = acme().await;
    let mut conn = app.conn();
    let org = keyward::db::models::Organization::find(&mut conn, owner.organization_id).unwrap();
    let other = fixtures::key_owner(&mut conn, &org, "other@acme.test");
    let (mine, _) = fixtures::keys::personal(&mut conn, &app.hasher, &owner, "Owner's key");
    let (theirs, _) = fixtures::keys::personal(&mut conn, &app.hasher, &other, "Other's key");
    fixtures::keys::personal(&mut conn, &app.hasher, &stranger, "Globex key");
    drop(conn);
    let client = app.signed_in(&admin.email).await;

    let all = client.open("/admin/keys").await;
    assert!(all.says("Owner's key") && all.says("Other's key"));
    let filtered = client.open(&format!("/admin/keys?owner_user={}", owner.id)).await;
    assert_eq!(filtered.status, StatusCode::OK);
    assert!(filtered.body.contains(&mine.masked()) && !filtered.body.contains(&theirs.masked()), "{filtered}");
    assert!(filtered.links_to("/admin/keys"), "the filter can be cleared");
    assert!(filtered.select("#owner-user-filter").text().contains("owner"), "{filtered}");
    // Nonsense names nobody.
    let nobody = client.open("/admin/keys?owner_user=abc").await;
    assert_eq!(nobody.status, StatusCode::OK);
    assert!(!nobody.says("Owner's key") && !nobody.says("Other's key"));
    // Another organization's user: neither their keys nor their name.
    let foreign = client.open(&format!("/admin/keys?owner_user={}", stranger.id)).await;
    assert_eq!(foreign.status, StatusCode::OK);
    assert!(!foreign.says("Globex key") && !foreign.says("stranger"), "{foreign}");
    assert!(foreign.select("#owner-user-filter").text().contains("nobody"));
}

#[actix_web::test]
async fn keys_are_added_only_for_users_with_access_in_ones_own_organization_by_administrators() {
    let Acme { app, admin, owner, plain, stranger } = acme().await;
    let mut conn = app.conn();
    let org = keyward::db::models::Organization::find(&mut conn, owner.organization_id).unwrap();
    let keys_manager = fixtures::UserBuilder::new(&org, "keys@acme.test")
        .role(&[Permission::KeysManage, Permission::UsersManage])
        .may_grant_all()
        .insert(&mut conn);
    let member = fixtures::key_owner(&mut conn, &org, "member@acme.test");
    drop(conn);

    let client = app.signed_in(&admin.email).await;
    // No API key access: no button, and the dialog and the create refuse.
    let page = client.open(&format!("/admin/users/{}", plain.id)).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(!page.links_to(&format!("/admin/users/{}/keys/new", plain.id)), "{page}");
    assert_eq!(client.get(&format!("/admin/users/{}/keys/new", plain.id)).await.status(), StatusCode::FORBIDDEN);
    let refused = client.post(&format!("/admin/users/{}/keys", plain.id), &[("name", "Nope")]).await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    // Another organization's user is not found.
    assert_eq!(client.get(&format!("/admin/users/{}/keys/new", stranger.id)).await.status(), StatusCode::NOT_FOUND);
    let refused = client.post(&format!("/admin/users/{}/keys", stranger.id), &[("name", "Nope")]).await;
    assert_eq!(refused.status(), StatusCode::NOT_FOUND);

    // A `keys.manage` holder who sees the user page is not offered it (the secret would act
    // as the colleague), nor is a plain member.
    for who in [&keys_manager, &member] {
        let client = app.signed_in(&who.email).await;
        client.fetch_csrf_token("/account").await;
        if who.id == keys_manager.id {
            let page = client.open(&format!("/admin/users/{}", owner.id)).await;
            assert_eq!(page.status, StatusCode::OK);
            assert!(!page.links_to(&format!("/admin/users/{}/keys/new", owner.id)), "{page}");
        }
        let new = client.get(&format!("/admin/users/{}/keys/new", owner.id)).await;
        assert_eq!(new.status(), StatusCode::FORBIDDEN, "{}", who.email);
        let refused = client.post(&format!("/admin/users/{}/keys", owner.id), &[("name", "Nope")]).await;
        assert_eq!(refused.status(), StatusCode::FORBIDDEN, "{}", who.email);
    }
    assert!(keys_of(&app, &owner).is_empty() && keys_of(&app, &plain).is_empty());
}

#[actix_web::test]
async fn a_replayed_form_shows_no_secret_and_leads_to_the_key_in_admin_keys() {
    let Acme { app, admin, owner, .. } = acme().await;
    let client = app.signed_in(&admin.email).await;
    let base = format!("/admin/users/{}/keys", owner.id);
    let page = client.open(&format!("{base}/new")).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.has_form(&base), "the dialog posts to the user's keys: {page}");
    let token = page.form_token();
    let fields = [("form_token", token.as_str()), ("name", "Once only")];
    let first = client.post(&base, &fields).await;
    assert_eq!(first.status(), StatusCode::OK);
    assert!(shown_secret(&first.text().await.unwrap()).is_some());

    let replay = client.post(&base, &fields).await;
    assert_eq!(replay.status(), StatusCode::SEE_OTHER);
    let keys = keys_of(&app, &owner);
    assert_eq!(keys.len(), 1);
    assert_eq!(location(&replay), format!("/admin/keys/{}", keys[0].public_id));
    let (status, page) = client.page(&location(&replay)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("already created") && shown_secret(&page).is_none());
}
