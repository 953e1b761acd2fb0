//! What the seeds' users tripped over (issue 16): key states that say what verification
//! answers, provider key pages that name their provider, and the incident reason's rule.

use keyward::db::models::{Organization, ServiceProvider};
use reqwest::StatusCode;

use crate::{
    helpers::{Page, TestApp, TestClient, fixtures, keys, location, spawn_app, user, verifies_as},
    keys::{shown_secret, submit_new},
};

struct World {
    app: TestApp,
    provider: ServiceProvider,
    acme: Organization,
}

/// Acme, a client of Fleetlink, with its administrator, two key owners (bob, carol) and a
/// member of support staff (sam).
async fn world() -> World {
    let app = spawn_app().await;
    let mut conn = app.conn();
    let (provider, acme) = fixtures::served_organization(&mut conn, "acme", "Fleetlink");
    fixtures::admin(&mut conn, &acme, "admin@acme.test");
    fixtures::key_owner(&mut conn, &acme, "bob@acme.test");
    fixtures::key_owner(&mut conn, &acme, "carol@acme.test");
    fixtures::staff(&mut conn, "sam@support.test");
    drop(conn);
    World { app, provider, acme }
}

/// The state a page shows for the key `public_id`: its badges' texts and the reason.
fn state_of(page: &Page, public_id: &str) -> String {
    let row = format!("tr[data-key=\"{public_id}\"]");
    format!(
        "{} {}",
        page.select(&format!("{row} .badge")).texts().join(" "),
        page.select(&format!("{row} .state-reason")).text()
    )
}

async fn post_from(client: &TestClient, page: &str, path: &str, fields: &[(&str, &str)]) -> reqwest::Response {
    client.open(page).await;
    client.post(path, fields).await
}

#[actix_web::test]
async fn a_personal_key_whose_owner_may_not_use_it_shows_disabled_and_why_everywhere() {
    let World { app, acme, .. } = world().await;
    let (bob, carol) = (user(&app, "bob@acme.test"), user(&app, "carol@acme.test"));
    let (bobs, bob_secret) = keys::personal(&mut app.conn(), &app.hasher, &bob, "Bob's board");
    let (carols, carol_secret) = keys::personal(&mut app.conn(), &app.hasher, &carol, "Carol's board");
    let admin = app.signed_in("admin@acme.test").await;
    let list = admin.open("/admin/keys").await;
    assert_eq!(state_of(&list, &bobs.public_id), "Active ", "{list}");

    // Bob loses API key access, Carol is deactivated: both keys stop at once.
    let revoke = post_from(&admin, "/admin/users", &format!("/admin/users/{}/access", bob.id), &[("grant", "0")]).await;
    assert_eq!(revoke.status(), StatusCode::SEE_OTHER);
    let off = post_from(&admin, "/admin/users", &format!("/admin/users/{}/deactivate", carol.id), &[]).await;
    assert_eq!(off.status(), StatusCode::SEE_OTHER);
    assert!(verifies_as(&app, &bob_secret, None, "DISABLED").await);
    assert!(verifies_as(&app, &carol_secret, None, "DISABLED").await);

    // The organization's list, the key's page and the staff view say so, with the reason.
    let list = admin.open("/admin/keys").await;
    assert_eq!(state_of(&list, &bobs.public_id), "Disabled owner has no API key access", "{list}");
    assert_eq!(state_of(&list, &carols.public_id), "Disabled owner is deactivated", "{list}");
    // The state filter agrees with what the rows say.
    let listed = |page: &Page| {
        [&bobs, &carols].iter().filter(|k| page.has(&format!("tr[data-key=\"{}\"]", k.public_id))).count()
    };
    assert_eq!(listed(&admin.open("/admin/keys?state=active").await), 0, "not listed as active");
    assert_eq!(listed(&admin.open("/admin/keys?state=disabled").await), 2, "listed as disabled");
    let detail = admin.open(&format!("/admin/keys/{}", bobs.public_id)).await;
    assert_eq!(detail.select(".page-head .badge-off").text(), "Disabled", "{detail}");
    assert_eq!(detail.select(".page-head .state-reason").text(), "— owner has no API key access");
    let sam = app.signed_in("sam@support.test").await;
    let staff_view = sam.open(&format!("/staff/organizations/{}", acme.id)).await;
    assert_eq!(state_of(&staff_view, &carols.public_id), "Disabled owner is deactivated", "{staff_view}");

    // Given access again, Bob's key works and reads "Active" again.
    post_from(&admin, "/admin/users", &format!("/admin/users/{}/access", bob.id), &[("grant", "1")]).await;
    assert!(verifies_as(&app, &bob_secret, None, "VALID").await);
    assert_eq!(state_of(&admin.open("/admin/keys").await, &bobs.public_id), "Active ");
    let active = admin.open("/admin/keys?state=active").await;
    assert!(active.has(&format!("tr[data-key=\"{}\"]", bobs.public_id)), "{active}");
    let disabled = admin.open("/admin/keys?state=disabled").await;
    assert!(disabled.has(&format!("tr[data-key=\"{}\"]", carols.public_id)), "{disabled}");
    assert!(!disabled.has(&format!("tr[data-key=\"{}\"]", bobs.public_id)), "{disabled}");
}

#[actix_web::test]
async fn a_provider_keys_page_and_its_dialogs_name_the_provider() {
    let World { app, provider, .. } = world().await;
    let sam = app.signed_in("sam@support.test").await;
    let base = location(&sam.get(&format!("/staff/providers/select?id={}", provider.id)).await);
    let list = sam.open(&base).await;
    assert_eq!(list.select("h1").text(), "API keys of Fleetlink");
    assert!(list.select("title").text().contains("Fleetlink"));

    let new = sam.open(&format!("{base}/new")).await;
    assert_eq!(new.select("#dialog-title").text(), "New API key for Fleetlink", "{new}");
    assert!(new.select("title").text().contains("Fleetlink"));
    let expires = (app.now() + chrono::Duration::days(90)).date_naive().to_string();
    let fields = [("name", "LCM"), ("actions_mode", "all"), ("assets_mode", "all"), ("expires_on", expires.as_str())];
    let (status, body, _) = submit_new(&sam, &base, &fields).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(shown_secret(&body).is_some());
    assert!(Page::parse(&body).select("title").text().contains("Fleetlink"));

    // The list has its key, and nothing about assets (provider keys are not scoped to them).
    let list = sam.open(&base).await;
    assert_eq!(list.select("tr[data-key]").len(), 1);
    assert!(!list.says("Assets") && !list.says("All assets"), "{list}");
    let public_id = list.select("tr[data-key]").attr("data-key").unwrap();
    let detail = sam.open(&format!("{base}/{public_id}")).await;
    assert!(detail.select("title").text().contains("Fleetlink"));
    let terms = detail.select("dl.details dt").texts();
    assert!(!terms.iter().any(|t| t == "Assets") && terms.iter().any(|t| t == "Actions"), "{terms:?}");
    let owner = detail.select("dl.details dt + dd").texts();
    assert!(owner.iter().any(|o| o == "Fleetlink"), "the owner is named: {owner:?}");
    for dialog in ["rename", "rekey", "deactivate", "delete"] {
        let page = sam.open(&format!("{base}/{public_id}/{dialog}")).await;
        assert!(page.select("title").text().contains("Fleetlink"), "{dialog}: {page}");
        // In the dialog's own header too, which is all a dialog shows of the page.
        assert_eq!(page.select("[data-dialog-content] .dialog-head .eyebrow").text(), "Keys of Fleetlink", "{dialog}");
    }
    // Organization keys keep their assets.
    let (bobs, _) = keys::personal(&mut app.conn(), &app.hasher, &user(&app, "bob@acme.test"), "Bob's board");
    let admin = app.signed_in("admin@acme.test").await;
    let page = admin.open(&format!("/admin/keys/{}", bobs.public_id)).await;
    assert!(page.select("dl.details dt").texts().iter().any(|t| t == "Assets"), "{page}");
}

#[actix_web::test]
async fn an_incident_deactivation_requires_a_reason_and_says_so_at_the_field() {
    let World { app, acme, .. } = world().await;
    let bob = user(&app, "bob@acme.test");
    let (key, secret) = keys::personal(&mut app.conn(), &app.hasher, &bob, "Dispatch board");
    let sam = app.signed_in("sam@support.test").await;
    let path = format!("/staff/organizations/{}/keys/{}/deactivate", acme.id, key.public_id);

    let dialog = sam.open(&path).await;
    assert_eq!(dialog.select("label[for=confirm-reason]").text(), "Reason (required)");
    assert!(dialog.has("input#confirm-reason[required]"));
    assert!(!dialog.says("optional"));

    for (typed, kept) in [("", ""), ("   ", "   "), (&*format!("found {secret} in a paste"), "")] {
        let response = sam.post(&path, &[("reason", typed)]).await;
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY, "{typed:?}");
        let page = Page::parse(&response.text().await.unwrap());
        assert!(page.has("#confirm-reason-error.field-error"), "{page}");
        assert_eq!(page.select("#confirm-reason").attr("aria-invalid").as_deref(), Some("true"));
        assert_eq!(page.field("reason").as_deref(), Some(kept), "what was typed is kept, never a secret");
        assert!(!page.body.contains(&secret[17..]));
        assert!(page.has_form(&path), "the dialog again, to correct");
    }
    assert!(keys::reload(&mut app.conn(), &key).unwrap().active);

    let response = sam.post(&path, &[("reason", "Seen in a public gist, ticket 4711")]).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert!(!keys::reload(&mut app.conn(), &key).unwrap().active);
}

/// What the create dialog `page` submits as it stands: its defaults, with `name` typed in.
fn as_it_stands(page: &Page, name: &str) -> Vec<(String, String)> {
    let mut fields = vec![("name".to_string(), name.to_string())];
    for field in ["form_token", "environment", "actions_mode", "action", "assets_mode", "expires_on", "proxy_user_id"] {
        fields.extend(page.fields(field).into_iter().map(|value| (field.to_string(), value)));
    }
    fields
}

async fn create(client: &TestClient, base: &str, fields: &[(String, String)]) -> (StatusCode, Page) {
    let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let response = client.post(base, &fields).await;
    (response.status(), Page::parse(&response.text().await.unwrap()))
}

/// The key a show-once page shows, from the database, with its action codes (sorted).
fn created(app: &TestApp, page: &Page) -> (keyward::db::models::ApiKey, Vec<String>) {
    let secret = page.select("#new-key").value().unwrap_or_else(|| panic!("a new key on {page}"));
    let parsed = keyward::keys::ParsedKey::parse(&secret).unwrap();
    let key = keys::find(&mut app.conn(), parsed.public_id).unwrap().unwrap();
    let mut actions = keyward::db::models::ApiKey::actions_of(&mut app.conn(), &[key.id])
        .unwrap()
        .remove(&key.id)
        .unwrap_or_default();
    actions.sort();
    (key, actions)
}

#[actix_web::test]
async fn a_name_alone_creates_a_working_key_within_the_creators_ceiling() {
    let World { app, acme, .. } = world().await;
    let (rita, kate) = {
        let mut conn = app.conn();
        (
            fixtures::reader(&mut conn, &acme, "rita@acme.test"),
            fixtures::key_manager(&mut conn, &acme, "kate@acme.test", &["positions.read"]),
        )
    };
    let both = ["positions.read", "vehicles.read"].map(String::from).to_vec();

    // A personal key: the dialog starts with every action Rita may grant, ticked.
    let rita_client = app.signed_in("rita@acme.test").await;
    let dialog = rita_client.open("/account/keys/new").await;
    assert_eq!(dialog.field("actions_mode").as_deref(), Some("selected"), "{dialog}");
    let mut ticked = dialog.fields("action");
    ticked.sort();
    assert_eq!(ticked, both);
    let (status, shown) = create(&rita_client, "/account/keys", &as_it_stands(&dialog, "Dispatch")).await;
    assert_eq!(status, StatusCode::OK, "{shown}");
    let (key, actions) = created(&app, &shown);
    assert_eq!((key.owner_user_id, key.all_actions, actions), (Some(rita.id), false, both.clone()));
    let secret = shown.select("#new-key").value().unwrap();
    assert!(verifies_as(&app, &secret, Some("vehicles.read"), "VALID").await);

    // A request naming nothing but the key (no JavaScript, a script): the same defaults.
    let token = rita_client.open("/account/keys/new").await.form_token();
    let (status, shown) =
        create(&rita_client, "/account/keys", &[("name".into(), "Bare".into()), ("form_token".into(), token)]).await;
    assert_eq!(status, StatusCode::OK, "{shown}");
    assert_eq!(created(&app, &shown).1, both);

    // An organization key: the proxy defaults to its creator, the actions to Kate's ceiling.
    let kate_client = app.signed_in("kate@acme.test").await;
    let dialog = kate_client.open("/admin/keys/new").await;
    assert_eq!(dialog.field("proxy_user_id"), Some(kate.id.to_string()), "{dialog}");
    assert_eq!(dialog.fields("action"), ["positions.read"]);
    let (status, shown) = create(&kate_client, "/admin/keys", &as_it_stands(&dialog, "Bridge")).await;
    assert_eq!(status, StatusCode::OK, "{shown}");
    let (key, actions) = created(&app, &shown);
    assert_eq!((key.proxy_user_id, actions), (Some(kate.id), vec!["positions.read".to_string()]));
    let token = kate_client.open("/admin/keys/new").await.form_token();
    let (status, shown) =
        create(&kate_client, "/admin/keys", &[("name".into(), "Bare bridge".into()), ("form_token".into(), token)])
            .await;
    assert_eq!(status, StatusCode::OK, "{shown}");
    assert_eq!(created(&app, &shown).0.proxy_user_id, Some(kate.id));

    // The proxy stays changeable.
    let dialog = kate_client.open("/admin/keys/new").await;
    let mut fields = as_it_stands(&dialog, "Bob's bridge");
    fields.retain(|(k, _)| k != "proxy_user_id");
    fields.push(("proxy_user_id".into(), user(&app, "bob@acme.test").id.to_string()));
    let (status, shown) = create(&kate_client, "/admin/keys", &fields).await;
    assert_eq!(status, StatusCode::OK, "{shown}");
    assert_eq!(created(&app, &shown).0.proxy_user_id, Some(user(&app, "bob@acme.test").id));
}

#[actix_web::test]
async fn the_actions_error_is_marked_at_the_field_like_the_others() {
    let World { app, acme, .. } = world().await;
    {
        let mut conn = app.conn();
        fixtures::reader(&mut conn, &acme, "rita@acme.test");
        fixtures::key_manager(&mut conn, &acme, "nora@acme.test", &[]);
    }
    let marked = |page: &Page| {
        let first = page.select("input[name=action]");
        page.has("fieldset > p.field-error#key-actions-error")
            && first.attr("aria-invalid").as_deref() == Some("true")
            && first.attr("aria-describedby").as_deref() == Some("key-actions-error")
    };
    let rita = app.signed_in("rita@acme.test").await;
    let dialog = rita.open("/account/keys/new").await;
    let mut fields = as_it_stands(&dialog, "Nothing ticked");
    fields.retain(|(k, _)| k != "action");
    let (status, page) = create(&rita, "/account/keys", &fields).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(marked(&page), "{page}");
    assert_eq!(page.field("name").as_deref(), Some("Nothing ticked"));

    // Someone whose roles allow no actions learns why at the same field.
    let nora = app.signed_in("nora@acme.test").await;
    let token = nora.open("/admin/keys/new").await.form_token();
    let (status, page) =
        create(&nora, "/admin/keys", &[("name".into(), "Empty".into()), ("form_token".into(), token)]).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.select("#key-actions-error").text().contains("Your roles allow no API actions"), "{page}");
}

#[actix_web::test]
async fn in_the_browser_a_name_alone_creates_a_key_and_the_actions_error_takes_focus() {
    use crate::browser::Browser;
    let World { app, acme, .. } = world().await;
    fixtures::reader(&mut app.conn(), &acme, "rita@acme.test");
    let browser = Browser::open(&app, true).await;
    browser.sign_in("rita@acme.test").await;
    browser.goto("/account/keys").await;

    // Unticking every action is explained at the actions, which take the focus.
    browser.open_dialog(".page-head a[data-dialog]").await;
    browser.find("dialog[open] #key-name").await.send_keys("Unticked").await.unwrap();
    for action in ["positions.read", "vehicles.read"] {
        browser.find(&format!("dialog[open] input[name=action][value='{action}']")).await.click().await.unwrap();
    }
    browser.find("dialog[open] button[type=submit]").await.click().await.unwrap();
    browser.wait_for_text("dialog[open] #key-actions-error", "Choose at least one action").await;
    let focused = browser.js("return document.activeElement.getAttribute('aria-describedby')").await;
    assert_eq!(focused, serde_json::json!("key-actions-error"), "focus on the field in error");
    let escape = char::from(fantoccini::key::Key::Escape).to_string();
    browser.client.active_element().await.unwrap().send_keys(&escape).await.unwrap();
    browser.wait_gone("dialog[open]").await;

    // A name and Create: a key with everything Rita may grant.
    browser.open_dialog(".page-head a[data-dialog]").await;
    browser.find("dialog[open] #key-name").await.send_keys("Just a name").await.unwrap();
    browser.find("dialog[open] button[type=submit]").await.click().await.unwrap();
    let secret = browser.find("dialog[open] #new-key").await.prop("value").await.unwrap().unwrap();
    assert!(verifies_as(&app, &secret, Some("vehicles.read"), "VALID").await);
    assert!(verifies_as(&app, &secret, Some("positions.read"), "VALID").await);
    browser.close().await;
}

#[actix_web::test]
async fn granting_access_says_what_the_person_could_put_on_keys_and_warns_when_nothing() {
    let World { app, acme, .. } = world().await;
    let mut conn = app.conn();
    // A key manager by role, without any API action: the default of a new role.
    let empty = fixtures::UserBuilder::new(&acme, "empty@acme.test")
        .role(&[keyward::domain::Permission::KeysManage])
        .insert(&mut conn);
    let reader = fixtures::UserBuilder::new(&acme, "reader@acme.test").may_grant(&["positions.read"]).insert(&mut conn);
    drop(conn);
    let admin = app.signed_in("admin@acme.test").await;

    let dialog = admin.open(&format!("/admin/users/{}/access", empty.id)).await;
    assert!(dialog.says("with no API action"), "{dialog}");
    assert!(dialog.says("roles allow no API actions"), "a warning: {dialog}");
    let dialog = admin.open(&format!("/admin/users/{}/access", reader.id)).await;
    assert!(dialog.says("with positions.read"), "{dialog}");
    assert!(!dialog.says("roles allow no API actions"), "{dialog}");

    // The user page says it too, and warns for someone who may manage keys.
    let page = admin.open(&format!("/admin/users/{}", empty.id)).await;
    assert!(page.says("roles allow no API actions"), "{page}");
    let page = admin.open(&format!("/admin/users/{}", reader.id)).await;
    assert!(page.says("positions.read") && !page.says("roles allow no API actions"), "{page}");

    // Saving a role that lets people handle keys with no action warns at once.
    let response = admin
        .post("/admin/roles", &[("name", "Key keepers"), ("permission", "keys.manage"), ("actions_mode", "selected")])
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let roles = admin.open("/admin/roles").await;
    assert!(roles.says("Created the role Key keepers. It allows no API actions"), "{roles}");
    admin
        .post(
            "/admin/roles",
            &[
                ("name", "Readers"),
                ("permission", "keys.manage"),
                ("actions_mode", "selected"),
                ("action", "positions.read"),
            ],
        )
        .await;
    let roles = admin.open("/admin/roles").await;
    assert!(roles.says("Created the role Readers.") && !roles.says("It allows no API actions"), "{roles}");
}

#[actix_web::test]
async fn a_keys_history_names_people_with_their_address_on_hover() {
    let World { app, .. } = world().await;
    let (key, _) = keys::personal(&mut app.conn(), &app.hasher, &user(&app, "bob@acme.test"), "Board");
    let admin = app.signed_in("admin@acme.test").await;
    let base = format!("/admin/keys/{}", key.public_id);
    assert_eq!(
        post_from(&admin, &format!("{base}/rename"), &format!("{base}/rename"), &[("name", "Board 2")]).await.status(),
        StatusCode::SEE_OTHER
    );

    let page = admin.open(&base).await;
    let name = user(&app, "admin@acme.test").display_name;
    assert_ne!(name, "admin@acme.test", "the fixture's name is not its address");
    let who = page.select("table.history tbody tr:first-child td:nth-child(2) span");
    assert_eq!((who.text(), who.attr("title")), (name, Some("admin@acme.test".to_string())), "{page}");
}
