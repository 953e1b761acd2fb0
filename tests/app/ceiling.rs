//! The ceiling rule (SPEC §3): nobody obtains a working secret (create, re-key, reactivate)
//! or widens a key (edit) beyond what they themselves may grant. Actors here hold narrower
//! grants than the keys they manage; every secret any of them obtains is verified, and what
//! it can do must stay within what that actor may grant.

use std::collections::{BTreeSet, HashMap};

use diesel::prelude::*;
use keyward::db::{
    models::{ApiKey, Organization, User},
    schema::{api_actions, audit_events},
};
use reqwest::StatusCode;

use crate::{
    helpers::{TestApp, TestClient, fixtures, http_client, keys, spawn_app, user},
    keys::{shown_secret, submit_new},
};

/// The actors, and the actions each may grant (`None`: all).
const ACTORS: [(&str, Option<&[&str]>); 5] = [
    ("admin@acme.test", None),
    // "Key: Manage", but may grant positions.read only: the attacker of the report.
    ("lead@acme.test", Some(&["positions.read"])),
    // "Key: Manage" and no action at all.
    ("manager@acme.test", Some(&[])),
    ("owner@acme.test", Some(&["positions.read"])),
    ("fleet@acme.test", Some(&["positions.read", "vehicles.read"])),
];

struct World {
    app: TestApp,
    acme: Organization,
    /// name → key
    keys: HashMap<&'static str, ApiKey>,
}

async fn world() -> World {
    let app = spawn_app().await;
    let mut conn = app.conn();
    let acme = fixtures::organization(&mut conn, "acme");
    let admin = fixtures::admin(&mut conn, &acme, "admin@acme.test");
    fixtures::key_manager(&mut conn, &acme, "lead@acme.test", &["positions.read"]);
    fixtures::key_manager(&mut conn, &acme, "manager@acme.test", &[]);
    let owner = fixtures::key_owner(&mut conn, &acme, "owner@acme.test");
    let fleet = fixtures::reader(&mut conn, &acme, "fleet@acme.test");
    let proxy = fixtures::UserBuilder::new(&acme, "proxy@acme.test").insert(&mut conn);
    let personal = |conn: &mut PgConnection, owner: &User, actions: Option<&[&str]>, name: &str| {
        keys::personal_with(conn, &app.hasher, owner, actions, name).0
    };
    let organization = |conn: &mut PgConnection, proxy: &User, actions: Option<&[&str]>, name: &str| {
        keys::organization_with(conn, &app.hasher, proxy, actions, name).0
    };
    let mut all = HashMap::new();
    all.insert("admin org", organization(&mut conn, &admin, None, "Admin integration"));
    all.insert("admin personal", personal(&mut conn, &admin, None, "Admin's own"));
    all.insert("proxied org", organization(&mut conn, &proxy, None, "Dispatch integration"));
    all.insert("narrow org", organization(&mut conn, &proxy, Some(&["positions.read"]), "Tracker"));
    all.insert("owner personal", personal(&mut conn, &owner, Some(&["positions.read"]), "Owner's"));
    all.insert("fleet personal", personal(&mut conn, &fleet, Some(&["positions.read", "vehicles.read"]), "Fleet's"));
    drop(conn);
    World { app, acme, keys: all }
}

fn reload(app: &TestApp, key: &ApiKey) -> ApiKey {
    keys::reload(&mut app.conn(), key).expect("the key still exists")
}

fn denied_events(app: &TestApp, action: &str, key: &ApiKey) -> i64 {
    audit_events::table
        .filter(audit_events::action.eq(action))
        .filter(audit_events::result.eq("denied"))
        .filter(audit_events::target_id.eq(&key.public_id))
        .count()
        .get_result(&mut *app.conn())
        .unwrap()
}

/// What `secret` may do according to the verification API: its action codes, and the user
/// its calls are attributed to.
async fn verified_reach(app: &TestApp, secret: &str) -> (BTreeSet<String>, String) {
    let response = http_client().get(app.url("/api/v1/me")).bearer_auth(secret).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK, "an obtained secret verifies");
    let answer: serde_json::Value = response.json().await.unwrap();
    let actions = match &answer["actions"] {
        serde_json::Value::Array(codes) => codes.iter().map(|c| c.as_str().unwrap().to_string()).collect(),
        _ => {
            assert_eq!(answer["actions"], "all");
            all_action_codes(app)
        }
    };
    (actions, answer["attribute_to"]["user_id"].as_str().unwrap_or_default().to_string())
}

fn all_action_codes(app: &TestApp) -> BTreeSet<String> {
    api_actions::table
        .filter(api_actions::retired_at.is_null())
        .select(api_actions::code)
        .load::<String>(&mut *app.conn())
        .unwrap()
        .into_iter()
        .collect()
}

fn edit_fields<'a>(actions: &'a [&'a str], expires_on: &'a str, proxy: &'a str) -> Vec<(&'a str, &'a str)> {
    let mut fields = vec![("comment", "edited"), ("expires_on", expires_on), ("proxy_user_id", proxy)];
    if actions.is_empty() {
        fields.push(("actions_mode", "all"));
    } else {
        fields.push(("actions_mode", "selected"));
        fields.extend(actions.iter().map(|a| ("action", *a)));
    }
    fields
}

fn date_in(days: i64) -> String {
    (chrono::Utc::now() + chrono::Duration::days(days)).date_naive().to_string()
}

#[actix_web::test]
async fn a_key_manager_obtains_no_secret_and_widens_no_key_beyond_his_own_grants() {
    let World { app, keys: world_keys, .. } = world().await;
    let lead = app.signed_in("lead@acme.test").await;
    lead.page("/admin/keys").await;
    let admin_id = user(&app, "admin@acme.test").id.to_string();
    let lead_id = user(&app, "lead@acme.test").id.to_string();
    let proxy_id = user(&app, "proxy@acme.test").id.to_string();

    // Re-keying the administrator's all-actions keys would hand him vehicles.write and
    // dispatch.create, the personal one acting as the administrator.
    for name in ["admin org", "admin personal", "proxied org"] {
        let key = &world_keys[name];
        let response = lead.post(&format!("/admin/keys/{}/rekey", key.public_id), &[("grace_minutes", "0")]).await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "re-key of {name}");
        assert!(shown_secret(&response.text().await.unwrap()).is_none());
        assert_eq!(reload(&app, key).secret_hash, key.secret_hash, "{name} keeps its secret");
        assert_eq!(denied_events(&app, "key.rekey", key), 1, "the refusal of {name} is audited");
    }
    // The key page does not offer what he may not do, and says why.
    let (_, page) = lead.page(&format!("/admin/keys/{}", world_keys["admin org"].public_id)).await;
    assert!(!page.contains("/rekey\"") && page.contains("You may still narrow, deactivate or delete it."));
    let (_, page) = lead.page(&format!("/admin/keys/{}", world_keys["narrow org"].public_id)).await;
    assert!(page.contains("/rekey\""), "a key within his grants offers a re-key");
    // Someone else's personal key hands its re-keyer a secret acting as that person.
    let owners = &world_keys["owner personal"];
    let response = lead.post(&format!("/admin/keys/{}/rekey", owners.public_id), &[("grace_minutes", "0")]).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);

    // Edits that widen a key he could not grant: another proxy (himself), a later expiry,
    // no more expiry. Each is refused and changes nothing.
    let key = &world_keys["admin org"];
    let edit = format!("/admin/keys/{}/edit", key.public_id);
    let (today_plus_30, later) = (date_in(30), date_in(200));
    let widening = [
        edit_fields(&[], &today_plus_30, &lead_id),
        // Saving it as it is (a new comment only) is no narrowing either.
        edit_fields(&[], &today_plus_30, &admin_id),
        edit_fields(&[], &later, &admin_id),
        edit_fields(&["vehicles.write"], &later, &admin_id),
    ];
    for fields in &widening {
        let response = lead.post(&edit, fields).await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{fields:?}");
        let after = reload(&app, key);
        assert_eq!(
            (after.comment.as_str(), after.expires_at, after.proxy_user_id),
            ("", key.expires_at, key.proxy_user_id)
        );
    }
    assert_eq!(denied_events(&app, "key.update", key), widening.len() as i64);
    // Narrowing stays open to him: fewer actions, an earlier expiry.
    let response = lead.post(&edit, &edit_fields(&["vehicles.write"], &date_in(20), &admin_id)).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let narrowed = reload(&app, key);
    assert!(!narrowed.all_actions && narrowed.expires_at < key.expires_at);

    // Deactivating is open; reactivating a key that can do more than he may grant is not.
    let toggle = |op: &str| format!("/admin/keys/{}/{op}", key.public_id);
    assert_eq!(lead.post(&toggle("deactivate"), &[]).await.status(), StatusCode::SEE_OTHER);
    assert_eq!(lead.post(&toggle("reactivate"), &[]).await.status(), StatusCode::FORBIDDEN);
    assert!(!reload(&app, key).active);

    // Within his grants he works as before: re-key and reactivate a positions.read key
    // attributed to a plain user, and create one.
    let narrow = &world_keys["narrow org"];
    let response = lead.post(&format!("/admin/keys/{}/rekey", narrow.public_id), &[("grace_minutes", "0")]).await;
    assert_eq!(response.status(), StatusCode::OK);
    let secret = shown_secret(&response.text().await.unwrap()).expect("the new secret is shown");
    assert_eq!(verified_reach(&app, &secret).await.0, BTreeSet::from(["positions.read".to_string()]));
    let created = submit_new(
        &lead,
        "/admin/keys",
        &[
            ("name", "Lead's tracker"),
            ("actions_mode", "selected"),
            ("action", "positions.read"),
            ("expires_on", &today_plus_30),
            ("proxy_user_id", &proxy_id),
        ],
    )
    .await;
    assert_eq!(created.0, StatusCode::OK);
    // … but never a key attributed to an administrator.
    let (status, ..) = submit_new(
        &lead,
        "/admin/keys",
        &[
            ("name", "Acting as the admin"),
            ("actions_mode", "selected"),
            ("action", "positions.read"),
            ("expires_on", &today_plus_30),
            ("proxy_user_id", &admin_id),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let denied_creations: i64 = audit_events::table
        .filter(audit_events::action.eq("key.create"))
        .filter(audit_events::result.eq("denied"))
        .count()
        .get_result(&mut *app.conn())
        .unwrap();
    assert_eq!(denied_creations, 1, "the refused creation is audited");
    // The create form does not offer administrators as proxies to him.
    let (_, form) = lead.page("/admin/keys/new").await;
    assert!(form.contains(&format!("value=\"{proxy_id}\"")) && !form.contains(&format!("value=\"{admin_id}\"")));
}

#[actix_web::test]
async fn an_administrator_may_rekey_any_key_of_the_organization() {
    let World { app, keys: world_keys, .. } = world().await;
    let admin = app.signed_in("admin@acme.test").await;
    admin.page("/admin/keys").await;
    for name in ["admin org", "owner personal", "fleet personal", "narrow org"] {
        let key = &world_keys[name];
        let response = admin.post(&format!("/admin/keys/{}/rekey", key.public_id), &[("grace_minutes", "0")]).await;
        assert_eq!(response.status(), StatusCode::OK, "{name}");
        assert!(shown_secret(&response.text().await.unwrap()).is_some());
    }
}

/// Every actor tries to obtain secrets in every way the pages offer (and some they do not):
/// each secret obtained verifies, and does no more than its obtainer may grant; none acts as
/// an administrator unless an administrator obtained it.
#[actix_web::test]
async fn every_secret_obtained_does_no_more_than_its_obtainer_may_grant() {
    let World { app, acme, keys: world_keys } = world().await;
    let catalog = all_action_codes(&app);
    let admin_ids: BTreeSet<String> = User::list_for_org(&mut app.conn(), acme.id)
        .unwrap()
        .into_iter()
        .filter(|u| u.is_admin)
        .map(|u| u.id.to_string())
        .collect();
    let proxies: Vec<String> =
        ["admin@acme.test", "proxy@acme.test"].iter().map(|e| user(&app, e).id.to_string()).collect();
    let expires = date_in(30);
    let action_choices: [&[&str]; 4] =
        [&[], &["positions.read"], &["vehicles.write"], &["positions.read", "vehicles.read"]];
    let mut obtained = 0;
    for (email, grants) in ACTORS {
        let may_grant: BTreeSet<String> = match grants {
            None => catalog.clone(),
            Some(codes) => codes.iter().map(|c| c.to_string()).collect(),
        };
        let client: TestClient = app.signed_in(email).await;
        client.page("/account").await;
        // Each secret is checked as soon as it is shown: a later re-key ends it.
        let check = async |how: String, secret: String| {
            let (actions, attributed_to) = verified_reach(&app, &secret).await;
            assert!(
                actions.is_subset(&may_grant),
                "{email} obtained by {how} a secret doing {actions:?}, beyond {may_grant:?}"
            );
            if grants.is_some() {
                assert!(
                    !admin_ids.contains(&attributed_to),
                    "{email} obtained by {how} a secret acting as an administrator"
                );
            }
        };
        // Re-keys of every key, in both areas that could hold it.
        for key in world_keys.values() {
            for base in ["/admin/keys", "/account/keys"] {
                let response = client.post(&format!("{base}/{}/rekey", key.public_id), &[("grace_minutes", "0")]).await;
                if let Some(secret) = shown_secret(&response.text().await.unwrap()) {
                    obtained += 1;
                    check(format!("re-key of {} in {base}", key.name), secret).await;
                }
            }
        }
        // Creation, with every action choice and either proxy.
        for base in ["/admin/keys", "/account/keys"] {
            for actions in action_choices {
                for proxy in &proxies {
                    if client.get(&format!("{base}/new")).await.status() != StatusCode::OK {
                        continue;
                    }
                    let mut fields = edit_fields(actions, &expires, proxy);
                    fields.push(("name", "Obtained"));
                    let (_, page, _) = submit_new(&client, base, &fields).await;
                    if let Some(secret) = shown_secret(&page) {
                        obtained += 1;
                        check(format!("create in {base} with {actions:?} via {proxy}"), secret).await;
                    }
                }
            }
        }
    }
    // The rule was exercised, not vacuous: administrators and narrower actors obtained some.
    assert!(obtained >= 20, "only {obtained} secrets were obtained");
}
