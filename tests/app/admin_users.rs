//! Admin → Users: listing, creating (password or one-time link), editing, roles, API key
//! access, deactivation, password resets, the last-administrator rule, and tenancy.

use diesel::prelude::*;
use keyward::{
    db::models::{Organization, User},
    domain::Permission,
};
use reqwest::{StatusCode, header};

use crate::helpers::{
    PASSWORD, Page, TestApp, audit_count, fixtures, keys, location, spawn_app, user, verifies_as, verify_code,
};

struct World {
    app: TestApp,
    org: Organization,
}

async fn world() -> World {
    let app = spawn_app().await;
    let mut conn = app.conn();
    let org = fixtures::acme_and_globex(&mut conn);
    fixtures::key_owner(&mut conn, &org, "bob@acme.test");
    drop(conn);
    World { app, org }
}

/// The path of the set-password link shown on a page (in a link or a field to copy).
fn link_in(html: &str) -> String {
    let page = Page::parse(html);
    let shown = page.links().into_iter().chain(page.select("#password-link").value());
    let link = shown.into_iter().find(|l| l.contains("/password/")).expect("a set-password link");
    link[link.find("/password/").unwrap()..].to_string()
}

#[actix_web::test]
async fn the_user_list_searches_sorts_and_pages() {
    let World { app, org } = world().await;
    for i in 0..30 {
        fixtures::UserBuilder::new(&org, &format!("member{i:02}@acme.test")).insert(&mut app.conn());
    }
    let admin = app.signed_in("admin@acme.test").await;
    let showing = |page: &Page| page.select("nav.pagination > span:first-of-type").text();
    let page = admin.open("/admin/users").await;
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(showing(&page), "Showing 1–25 of 32", "only this organization's users");
    assert!(!page.says("admin@globex.test"));
    assert_eq!(showing(&admin.open("/admin/users?page=2").await), "Showing 26–32 of 32");
    let found = admin.open("/admin/users?q=MEMBER0").await;
    assert!(showing(&found) == "Showing 1–10 of 10" && found.select("table").text().contains("member05@acme.test"));
    let by_email = admin.open("/admin/users?sort=email").await.select("table").text();
    assert!(by_email.find("admin@acme.test").unwrap() < by_email.find("bob@acme.test").unwrap());
    assert!(admin.open("/admin/users?q=zzz").await.says("No user matches"));
}

#[actix_web::test]
async fn a_new_colleague_gets_a_one_time_link_and_can_then_sign_in() {
    let World { app, .. } = world().await;
    let admin = app.signed_in("admin@acme.test").await;
    admin.page("/admin/users/new").await;
    let response = admin
        .post(
            "/admin/users",
            &[
                ("email", "Nina@Acme.test"),
                ("display_name", "Nina New"),
                ("api_key_access", "on"),
                ("password_mode", "link"),
            ],
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers().get(header::CACHE_CONTROL).unwrap().to_str().unwrap().contains("no-store"));
    let page = response.text().await.unwrap();
    assert!(page.contains("will not be shown again"));
    let link = link_in(&page);
    let nina = user(&app, "nina@acme.test");
    assert!(nina.api_key_access && nina.password_hash.is_none());
    assert_eq!(app.client().login("nina@acme.test", PASSWORD).await.status(), StatusCode::UNAUTHORIZED);

    // Nina opens the link and sets her password.
    let nina_client = app.client();
    let (status, form) = nina_client.page(&link).await;
    assert_eq!(status, StatusCode::OK);
    assert!(form.contains("nina@acme.test"));
    let mismatch = nina_client.post(&link, &[("password", "a fine password"), ("confirm", "another one!!")]).await;
    assert_eq!(mismatch.status(), StatusCode::UNPROCESSABLE_ENTITY);
    nina_client.page(&link).await;
    let response = nina_client.post(&link, &[("password", "a fine password"), ("confirm", "a fine password")]).await;
    assert_eq!(location(&response), "/login");
    assert_eq!(app.client().login("nina@acme.test", "a fine password").await.status(), StatusCode::SEE_OTHER);
    // The link worked once.
    assert_eq!(app.client().get(&link).await.status(), StatusCode::BAD_REQUEST);
    for action in ["user.create", "user.password_link", "user.password_set"] {
        assert_eq!(audit_count(&app, action), 1, "{action}");
    }
    // With API key access she may create keys.
    let nina_in = app.signed_in_with("nina@acme.test", "a fine password").await;
    assert!(nina_in.open("/account/keys").await.links_to("/account/keys/new"));
}

#[actix_web::test]
async fn creating_with_a_password_roles_and_bad_input() {
    let World { app, org } = world().await;
    let role =
        keyward::db::models::Role::insert(&mut app.conn(), org.id, "Key managers", "", &[Permission::KeysManage])
            .unwrap();
    let admin = app.signed_in("admin@acme.test").await;
    admin.page("/admin/users/new").await;
    let response = admin
        .post(
            "/admin/users",
            &[
                ("email", "kim@acme.test"),
                ("display_name", "Kim"),
                ("password_mode", "password"),
                ("password", "kims password"),
                ("role", &role.id.to_string()),
            ],
        )
        .await;
    assert_eq!(location(&response), "/admin/users");
    let kim = app.signed_in_with("kim@acme.test", "kims password").await;
    assert_eq!(kim.get("/admin/keys").await.status(), StatusCode::OK, "the role grants Key: Manage");

    let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
        (vec![("email", "kim@acme.test"), ("display_name", "Again"), ("password_mode", "link")], "already exists"),
        (vec![("email", "not an email"), ("display_name", "X"), ("password_mode", "link")], "like name@example.com"),
        (vec![("email", "z@acme.test"), ("display_name", ""), ("password_mode", "link")], "Enter a display name"),
        (
            vec![
                ("email", "z@acme.test"),
                ("display_name", "Zed"),
                ("password_mode", "password"),
                ("password", "short"),
            ],
            "at least 10",
        ),
    ];
    for (fields, message) in cases {
        admin.page("/admin/users/new").await;
        let response = admin.post("/admin/users", &fields).await;
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY, "{fields:?}");
        let body = response.text().await.unwrap();
        assert!(body.contains(message), "{message}: {body}");
        assert!(body.contains(&format!("value=\"{}\"", fields[0].1)), "the email is kept");
    }
}

#[actix_web::test]
async fn a_user_manager_cannot_create_administrators_or_touch_them() {
    let World { app, org } = world().await;
    fixtures::UserBuilder::new(&org, "hr@acme.test").role(&[Permission::UsersManage]).insert(&mut app.conn());
    let admin_id = user(&app, "admin@acme.test").id;
    let hr = app.signed_in("hr@acme.test").await;
    assert_eq!(hr.page("/admin/users").await.0, StatusCode::OK);
    hr.page("/admin/users/new").await;
    let ok = hr
        .post("/admin/users", &[("email", "temp@acme.test"), ("display_name", "Temp"), ("password_mode", "link")])
        .await;
    assert_eq!(ok.status(), StatusCode::OK, "may create ordinary users");
    let response = hr
        .post(
            "/admin/users",
            &[("email", "boss@acme.test"), ("display_name", "Boss"), ("is_admin", "on"), ("password_mode", "link")],
        )
        .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN, "may not create administrators");
    assert!(User::find_by_email(&mut app.conn(), "boss@acme.test").unwrap().is_none());
    for path in ["deactivate", "password", "edit"] {
        hr.page("/admin/users").await;
        let response = hr
            .post(&format!("/admin/users/{admin_id}/{path}"), &[("display_name", "Pwned"), ("password_mode", "link")])
            .await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{path} on an administrator");
    }
    assert!(user(&app, "admin@acme.test").active);
    // Nor may they give themselves roles.
    let hr_id = user(&app, "hr@acme.test").id;
    hr.page("/admin/users").await;
    let response = hr.post(&format!("/admin/users/{hr_id}/edit"), &[("display_name", "HR"), ("is_admin", "on")]).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert!(!user(&app, "hr@acme.test").is_admin, "is_admin from a non-administrator is ignored");
}

#[actix_web::test]
async fn a_user_manager_cannot_take_over_accounts_that_hold_more_than_they_do() {
    let World { app, org } = world().await;
    let mut conn = app.conn();
    fixtures::UserBuilder::new(&org, "hr@acme.test").role(&[Permission::UsersManage]).insert(&mut conn);
    let auditor =
        fixtures::UserBuilder::new(&org, "auditor@acme.test").role(&[Permission::AuditRead]).insert(&mut conn);
    let keyman = fixtures::UserBuilder::new(&org, "keys@acme.test").role(&[Permission::KeysManage]).insert(&mut conn);
    let plain = fixtures::UserBuilder::new(&org, "carol@acme.test").insert(&mut conn);
    let hr_id = user(&app, "hr@acme.test").id;
    drop(conn);
    let hr = app.signed_in("hr@acme.test").await;

    for target in [&auditor, &keyman] {
        for (path, fields) in [
            ("password", vec![("password_mode", "password"), ("password", "hijacked password")]),
            ("password", vec![("password_mode", "link")]),
            ("deactivate", vec![]),
            ("access", vec![("grant", "1")]),
        ] {
            hr.page("/admin/users").await;
            let response = hr.post(&format!("/admin/users/{}/{path}", target.id), &fields).await;
            assert_eq!(response.status(), StatusCode::FORBIDDEN, "{path} on {}", target.email);
        }
    }
    assert_eq!(app.client().login("auditor@acme.test", PASSWORD).await.status(), StatusCode::SEE_OTHER);
    assert_eq!(app.client().login("keys@acme.test", "hijacked password").await.status(), StatusCode::UNAUTHORIZED);

    // Nor may they hand themselves API key access.
    hr.page("/admin/users").await;
    let response = hr.post(&format!("/admin/users/{hr_id}/access"), &[("grant", "1")]).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(!user(&app, "hr@acme.test").api_key_access);

    // API key access is keys.own, which HR does not hold: they cannot hand it out either (and
    // are not offered to).
    let list = hr.open("/admin/users").await;
    assert!(list.has("table") && !list.body.contains(&format!("/admin/users/{}/access", plain.id)));
    let form = hr.open("/admin/users/new").await;
    assert!(form.has_form("/admin/users") && !form.has("[name=api_key_access]"), "no switch to grant it");
    let response = hr.post(&format!("/admin/users/{}/access", plain.id), &[("grant", "1")]).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(!user(&app, "carol@acme.test").api_key_access);
    hr.page("/admin/users/new").await;
    let response = hr
        .post(
            "/admin/users",
            &[
                ("email", "dev@acme.test"),
                ("display_name", "Dev"),
                ("api_key_access", "on"),
                ("password_mode", "password"),
                ("password", "a chosen password"),
            ],
        )
        .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(User::find_by_email(&mut app.conn(), "dev@acme.test").unwrap().is_none());

    // Users holding nothing more remain theirs to manage.
    hr.page("/admin/users").await;
    let response = hr
        .post(
            &format!("/admin/users/{}/password", plain.id),
            &[("password_mode", "password"), ("password", "a new password!")],
        )
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(app.client().login("carol@acme.test", "a new password!").await.status(), StatusCode::SEE_OTHER);
}

#[actix_web::test]
async fn revoking_api_key_access_stops_personal_keys_at_once() {
    let World { app, .. } = world().await;
    let bob = user(&app, "bob@acme.test");
    let (_, secret) = keys::personal(&mut app.conn(), &app.hasher, &bob, "Bob's key");
    assert_eq!(verify_code(&app, &secret, None).await, "VALID");
    let bob_client = app.signed_in("bob@acme.test").await;
    assert!(bob_client.page("/account/keys").await.1.contains("Bob&#39;s key"), "bob sees his key");

    let admin = app.signed_in("admin@acme.test").await;
    // The user's page shows the same switch as the list, on, leading to the same dialog.
    let page = admin.open(&format!("/admin/users/{}", bob.id)).await;
    let switch = page.select(&format!("a[role=switch][href='/admin/users/{}/access']", bob.id));
    assert_eq!(switch.attr("aria-checked").as_deref(), Some("true"), "{page:?}");
    assert_eq!(switch.text(), "API key access for bob: On");
    let (_, confirm) = admin.page(&format!("/admin/users/{}/access", bob.id)).await;
    assert!(confirm.contains("Revoke API key access from bob?") && confirm.contains("stop working at once"));
    let response =
        admin.post(&format!("/admin/users/{}/access", bob.id), &[("grant", "0"), ("return_to", "/admin/users")]).await;
    assert_eq!(location(&response), "/admin/users");
    let (_, list) = admin.page("/admin/users").await;
    assert!(list.contains("Revoked API key access from bob"));
    assert!(!user(&app, "bob@acme.test").api_key_access);
    assert!(verifies_as(&app, &secret, None, "DISABLED").await, "the key stops within a second");
    let (_, bob_keys) = bob_client.page("/account/keys").await;
    assert!(bob_keys.contains("API key access has not been granted"), "on bob's next request");

    admin.page("/admin/users").await;
    admin.post(&format!("/admin/users/{}/access", bob.id), &[("grant", "1")]).await;
    assert!(verifies_as(&app, &secret, None, "VALID").await);
    assert_eq!(audit_count(&app, "user.api_key_access_revoke"), 1);
    assert_eq!(audit_count(&app, "user.api_key_access_grant"), 1);
}

#[actix_web::test]
async fn deactivation_ends_sessions_and_personal_keys_but_not_proxied_keys() {
    let World { app, .. } = world().await;
    let bob = user(&app, "bob@acme.test");
    let (_, personal) = keys::personal(&mut app.conn(), &app.hasher, &bob, "Personal");
    let (_, proxied) = keys::organization(&mut app.conn(), &app.hasher, &bob, "Proxied through bob");
    let bob_client = app.signed_in("bob@acme.test").await;
    assert_eq!(bob_client.page("/account").await.0, StatusCode::OK);

    let admin = app.signed_in("admin@acme.test").await;
    admin.page("/admin/users").await;
    let response = admin.post(&format!("/admin/users/{}/deactivate", bob.id), &[]).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let sessions: i64 = keyward::db::schema::sessions::table
        .filter(keyward::db::schema::sessions::user_id.eq(bob.id))
        .count()
        .get_result(&mut *app.conn())
        .unwrap();
    assert_eq!(sessions, 0, "every session of bob ended");
    assert_eq!(bob_client.get("/account").await.status(), StatusCode::SEE_OTHER);
    assert!(verifies_as(&app, &personal, None, "DISABLED").await);
    assert_eq!(verify_code(&app, &proxied, None).await, "VALID", "organization keys keep working through their proxy");
    assert_eq!(app.client().login("bob@acme.test", PASSWORD).await.status(), StatusCode::UNAUTHORIZED);

    admin.page("/admin/users").await;
    admin.post(&format!("/admin/users/{}/reactivate", bob.id), &[]).await;
    assert_eq!(app.client().login("bob@acme.test", PASSWORD).await.status(), StatusCode::SEE_OTHER);
    assert!(verifies_as(&app, &personal, None, "VALID").await);
}

#[actix_web::test]
async fn the_last_administrator_cannot_be_deactivated_or_demoted() {
    let World { app, org } = world().await;
    let admin_id = user(&app, "admin@acme.test").id;
    let admin = app.signed_in("admin@acme.test").await;
    admin.page("/admin/users").await;
    let response = admin.post(&format!("/admin/users/{admin_id}/deactivate"), &[]).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let (_, page) = admin.page(&location(&response)).await;
    assert!(page.contains("last active administrator"), "{page}");
    assert!(user(&app, "admin@acme.test").active);
    let response = admin.post(&format!("/admin/users/{admin_id}/edit"), &[("display_name", "Admin")]).await;
    let (_, page) = admin.page(&location(&response)).await;
    assert!(page.contains("last active administrator"));
    assert!(user(&app, "admin@acme.test").is_admin, "still an administrator");

    // With a second administrator, the first may step down.
    fixtures::UserBuilder::new(&org, "second@acme.test").admin().insert(&mut app.conn());
    admin.page("/admin/users").await;
    admin.post(&format!("/admin/users/{admin_id}/edit"), &[("display_name", "Former admin")]).await;
    assert!(!user(&app, "admin@acme.test").is_admin);
    let second_id = user(&app, "second@acme.test").id;
    let second = app.signed_in("second@acme.test").await;
    second.page("/admin/users").await;
    second.post(&format!("/admin/users/{second_id}/deactivate"), &[]).await;
    assert!(user(&app, "second@acme.test").active, "now the last one");
}

#[actix_web::test]
async fn resetting_a_password_ends_sessions_and_the_old_password() {
    let World { app, .. } = world().await;
    let bob = user(&app, "bob@acme.test");
    let bob_client = app.signed_in("bob@acme.test").await;
    let admin = app.signed_in("admin@acme.test").await;
    admin.page(&format!("/admin/users/{}/password", bob.id)).await;
    let response = admin
        .post(
            &format!("/admin/users/{}/password", bob.id),
            &[("password_mode", "password"), ("password", "brand new password")],
        )
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(bob_client.get("/account").await.status(), StatusCode::SEE_OTHER, "signed out");
    assert_eq!(app.client().login("bob@acme.test", PASSWORD).await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(app.client().login("bob@acme.test", "brand new password").await.status(), StatusCode::SEE_OTHER);

    admin.page(&format!("/admin/users/{}/password", bob.id)).await;
    let response = admin.post(&format!("/admin/users/{}/password", bob.id), &[("password_mode", "link")]).await;
    let link = link_in(&response.text().await.unwrap());
    assert_eq!(
        app.client().login("bob@acme.test", "brand new password").await.status(),
        StatusCode::UNAUTHORIZED,
        "the old one stopped"
    );
    let client = app.client();
    client.page(&link).await;
    client.post(&link, &[("password", "third password!"), ("confirm", "third password!")]).await;
    assert_eq!(app.client().login("bob@acme.test", "third password!").await.status(), StatusCode::SEE_OTHER);
    assert_eq!(audit_count(&app, "user.password_reset"), 2);
}

#[actix_web::test]
async fn confirmations_name_the_user_escaped_once_and_say_what_happens() {
    let World { app, .. } = world().await;
    let bob = user(&app, "bob@acme.test");
    let admin = app.signed_in("admin@acme.test").await;
    admin.page("/admin/users").await;
    admin.post(&format!("/admin/users/{}/edit", bob.id), &[("display_name", "Bob O'Neil & Co")]).await;
    // The texts come from text templates and are escaped by the page that shows them: once.
    let name = "Bob O&#39;Neil &#38; Co";
    let page = format!("/admin/users/{}", bob.id);
    let confirm_and_do = async |change: &str, fields: &[(&str, &str)], texts: &[String], done: String| {
        let (status, confirm) = admin.page(&format!("{page}/{change}")).await;
        assert_eq!(status, StatusCode::OK, "{change}");
        for text in texts {
            assert!(confirm.contains(text.as_str()), "{change}: {text}");
        }
        admin.post(&format!("{page}/{change}"), fields).await;
        let (_, after) = admin.page(&page).await;
        assert!(after.contains(&done), "{change}: {done}");
    };
    confirm_and_do(
        "deactivate",
        &[],
        &[
            format!(">Deactivate {name}?</h1>"),
            format!(
                "{name} is signed out everywhere at once and cannot sign in; their personal keys stop working. \
                 Organization keys they are the proxy of keep working."
            ),
        ],
        format!("Deactivated {name}: signed out everywhere, personal keys stopped."),
    )
    .await;
    confirm_and_do(
        "reactivate",
        &[],
        &[format!(">Reactivate {name}?</h1>"), format!("{name} can sign in again.")],
        format!("Reactivated {name}."),
    )
    .await;
    confirm_and_do(
        "access",
        &[("grant", "0")],
        &[
            format!(">Revoke API key access from {name}?</h1>"),
            format!(
                "{name} can no longer manage API keys, and their personal keys stop working at once. \
                 Organization keys they are the proxy of keep working."
            ),
        ],
        format!("Revoked API key access from {name}; their personal keys no longer work."),
    )
    .await;
    confirm_and_do(
        "access",
        &[("grant", "1")],
        &[
            format!(">Grant API key access to {name}?</h1>"),
            // …followed by what they could put on keys.
            format!("{name} will be able to create and manage their own API keys, with "),
        ],
        format!("Granted API key access to {name}."),
    )
    .await;
}

#[actix_web::test]
async fn whoever_may_not_manage_users_learns_nothing_from_a_user_address() {
    let World { app, .. } = world().await;
    let bob = app.signed_in("bob@acme.test").await;
    let stranger = app.client();
    // Who is asking is settled before the id: a malformed id is no 404 for them.
    for path in ["/admin/users/abc", "/admin/users/0/edit", "/admin/users/-1/access", "/admin/users/1/deactivate"] {
        assert_eq!(bob.get(path).await.status(), StatusCode::FORBIDDEN, "{path}");
        let response = stranger.get(path).await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{path}");
        assert!(location(&response).starts_with("/login"), "{path}");
    }
}

#[actix_web::test]
async fn users_of_another_organization_are_not_found() {
    let World { app, .. } = world().await;
    let foreign = user(&app, "admin@globex.test");
    let admin = app.signed_in("admin@acme.test").await;
    for path in ["", "/edit", "/access", "/deactivate", "/password"] {
        assert_eq!(
            admin.get(&format!("/admin/users/{}{path}", foreign.id)).await.status(),
            StatusCode::NOT_FOUND,
            "GET {path}"
        );
    }
    admin.page("/admin/users").await;
    for path in ["/edit", "/access", "/deactivate", "/password"] {
        let response = admin
            .post(
                &format!("/admin/users/{}{path}", foreign.id),
                &[("display_name", "x"), ("grant", "0"), ("password_mode", "link")],
            )
            .await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "POST {path}");
    }
    let unchanged = user(&app, "admin@globex.test");
    assert!(unchanged.active && unchanged.is_admin);
    for bad in ["/admin/users/0", "/admin/users/-1", "/admin/users/99999999999999999999", "/admin/users/abc"] {
        assert_eq!(admin.get(bad).await.status(), StatusCode::NOT_FOUND, "{bad}");
    }
    // A plain member may not open the page at all.
    let bob = app.signed_in("bob@acme.test").await;
    assert_eq!(bob.get("/admin/users").await.status(), StatusCode::FORBIDDEN);
}

#[actix_web::test]
async fn set_password_links_follow_the_configured_public_url_not_the_host_header() {
    use crate::helpers::{SpawnOptions, csrf_token, spawn_app_with};
    let app = spawn_app_with(SpawnOptions {
        public_origin: Some("https://keys.example.com".into()),
        ..SpawnOptions::default()
    })
    .await;
    let org = fixtures::organization(&mut app.conn(), "acme");
    fixtures::UserBuilder::new(&org, "admin@acme.test").admin().insert(&mut app.conn());
    let admin = app.signed_in("admin@acme.test").await;
    let (_, form) = admin.page("/admin/users/new").await;
    let token = csrf_token(&form).unwrap();
    let fields = [
        ("csrf_token", token.as_str()),
        ("email", "nina@acme.test"),
        ("display_name", "Nina New"),
        ("password_mode", "link"),
    ];
    let response = admin
        .http
        .post(app.url("/admin/users"))
        .header(header::COOKIE, admin.cookie().unwrap())
        .header(header::HOST, "evil.example")
        .form(&fields)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let page = response.text().await.unwrap();
    assert!(page.contains(&format!("https://keys.example.com{}", link_in(&page))), "{page}");
    assert!(!page.contains("evil.example"));
}
