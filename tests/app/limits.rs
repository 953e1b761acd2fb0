//! Limits of the key policy: no expiry beyond the policy's maximum (or the hard ceiling),
//! quotas on live keys per person and per organization, and a creation rate per person.

use diesel::prelude::*;
use futures_util::future::join_all;
use keyward::{
    db::{
        models::Organization,
        schema::{api_keys, organizations},
    },
    error::AppError,
    keys::Environment,
    services::{
        Actor,
        keys::{ExpiryChoice, KeyName, NewKeyOwner, NewKeyRequest, lifecycle},
    },
};
use reqwest::{StatusCode, header};

use crate::{
    helpers::{TestApp, fixtures, keys, spawn_app, user},
    keys::{form_token, shown_secret, submit_new},
};

async fn world() -> (TestApp, Organization) {
    let app = spawn_app().await;
    let org = {
        let mut conn = app.conn();
        let (org, _) = fixtures::organization_with_admin(&mut conn, "acme");
        fixtures::key_owner(&mut conn, &org, "owner@acme.test");
        org
    };
    (app, org)
}

fn live_keys(app: &TestApp) -> i64 {
    api_keys::table.count().get_result(&mut *app.conn()).unwrap()
}

fn new_key<'a>(name: &'a str, expires_on: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![("name", name), ("actions_mode", "selected"), ("action", "positions.read"), ("expires_on", expires_on)]
}

fn in_days(days: i64) -> String {
    (chrono::Utc::now() + chrono::Duration::days(days)).date_naive().to_string()
}

#[actix_web::test]
async fn an_expiry_beyond_the_policy_or_the_hard_ceiling_is_refused() {
    let (app, org) = world().await;
    let owner = app.signed_in("owner@acme.test").await;
    // No maximum and no "never": a far-off date is "never" in disguise.
    for date in ["9999-12-31", &in_days(3651)] {
        let (status, page, _) = submit_new(&owner, "/account/keys", &new_key("Forever", date)).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{date}");
        assert!(page.contains("allows at most 3650 days"), "{page}");
    }
    assert_eq!(live_keys(&app), 0);
    let (status, ..) = submit_new(&owner, "/account/keys", &new_key("Ten years", &in_days(3650))).await;
    assert_eq!(status, StatusCode::OK);

    // Under a maximum, a day more is refused, at creation and at edit alike.
    diesel::update(organizations::table.find(org.id))
        .set((organizations::key_max_lifetime_days.eq(Some(90)), organizations::key_default_lifetime_days.eq(30)))
        .execute(&mut *app.conn())
        .unwrap();
    let (status, page, _) = submit_new(&owner, "/account/keys", &new_key("Long", &in_days(91))).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.contains("allows at most 90 days"));
    let key = keys::personal(&mut app.conn(), &app.hasher, &user(&app, "owner@acme.test"), "Existing").0;
    owner.page("/account/keys").await;
    let response = owner
        .post(
            &format!("/account/keys/{}/edit", key.public_id),
            &[("actions_mode", "selected"), ("action", "positions.read"), ("expires_on", "9999-12-31")],
        )
        .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(keys::reload(&mut app.conn(), &key).unwrap().expires_at, key.expires_at);

    // The key service refuses it for every caller, the operator's commands included.
    let mut settings = keys::settings(Some(&["positions.read"]));
    settings.expiry = ExpiryChoice::On(chrono::NaiveDate::from_ymd_opt(9999, 12, 31).unwrap());
    let owner_id = user(&app, "owner@acme.test").id;
    let request = NewKeyRequest {
        owner: NewKeyOwner::Personal { user_id: owner_id, organization_id: org.id },
        name: KeyName::parse("From a command").unwrap(),
        environment: Environment::Live,
        input: settings,
        form_token: None,
    };
    let result = app.conn().transaction(|conn| lifecycle::create(conn, &Actor::system("test"), &app.hasher, request));
    assert!(matches!(result, Err(AppError::Invalid(_))), "{result:?}");
}

fn set_quotas(app: &TestApp, org: &Organization, per_user: i32, per_org: i32, per_hour: i32) {
    diesel::update(organizations::table.find(org.id))
        .set((
            organizations::key_quota_per_user.eq(per_user),
            organizations::key_quota_per_organization.eq(per_org),
            organizations::key_creations_per_hour.eq(per_hour),
        ))
        .execute(&mut *app.conn())
        .unwrap();
}

#[actix_web::test]
async fn a_full_quota_is_said_in_the_dialog_and_expired_keys_do_not_count() {
    let (app, org) = world().await;
    set_quotas(&app, &org, 2, 1000, 1000);
    let owner = app.signed_in("owner@acme.test").await;
    let expires = in_days(30);
    let tomorrow = in_days(1);
    assert_eq!(submit_new(&owner, "/account/keys", &new_key("One", &tomorrow)).await.0, StatusCode::OK);
    assert_eq!(submit_new(&owner, "/account/keys", &new_key("Two", &expires)).await.0, StatusCode::OK);
    let (status, page, _) = submit_new(&owner, "/account/keys", &new_key("Three", &expires)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.contains("You have 2 live keys, the most the key policy allows per person"), "{page}");
    assert!(page.contains("value=\"Three\""), "the form keeps what was typed");
    assert_eq!(live_keys(&app), 2);

    // An expired key is no longer live: it frees its place. Three days on, "One" has expired
    // (the session too: sign in again).
    app.advance(std::time::Duration::from_secs(3 * 86_400));
    let owner = app.signed_in("owner@acme.test").await;
    assert_eq!(submit_new(&owner, "/account/keys", &new_key("Three", &expires)).await.0, StatusCode::OK);

    // The organization's quota counts every live key of it, whoever made it.
    set_quotas(&app, &org, 100, 3, 1000);
    let admin = app.signed_in("admin@acme.test").await;
    let proxy = user(&app, "owner@acme.test").id.to_string();
    let mut fields = new_key("Org key", &expires);
    fields.push(("proxy_user_id", &proxy));
    assert_eq!(submit_new(&admin, "/admin/keys", &fields).await.0, StatusCode::OK);
    let (status, page, _) = submit_new(&admin, "/admin/keys", &fields).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.contains("Org acme has 3 live keys, the most its key policy allows"), "{page}");

    // The operator's commands are not limited.
    let created = keys::personal(&mut app.conn(), &app.hasher, &user(&app, "owner@acme.test"), "By the operator");
    assert!(keys::find(&mut app.conn(), &created.0.public_id).unwrap().is_some());
}

#[actix_web::test]
async fn the_creation_rate_answers_429_with_retry_after_even_after_deletions() {
    let (app, org) = world().await;
    set_quotas(&app, &org, 100, 1000, 3);
    let owner = app.signed_in("owner@acme.test").await;
    let expires = in_days(30);
    for name in ["One", "Two", "Three"] {
        let (status, page, _) = submit_new(&owner, "/account/keys", &new_key(name, &expires)).await;
        assert_eq!(status, StatusCode::OK);
        assert!(shown_secret(&page).is_some());
    }
    // Deleting keys makes no room in the rate: it counts creations.
    let ids: Vec<String> = api_keys::table.select(api_keys::public_id).load(&mut *app.conn()).unwrap();
    for id in &ids {
        let response = owner.post(&format!("/account/keys/{id}/delete"), &[]).await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
    }
    let (status, page, headers) = submit_new(&owner, "/account/keys", &new_key("Four", &expires)).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = headers[header::RETRY_AFTER].to_str().unwrap().parse().unwrap();
    assert!((1..=3600).contains(&retry), "Retry-After {retry}");
    assert!(page.contains("You have created 3 keys in the last hour"), "{page}");
    assert_eq!(live_keys(&app), 0);
    // Another person of the organization has a rate of their own.
    let admin = app.signed_in("admin@acme.test").await;
    assert_eq!(submit_new(&admin, "/account/keys", &new_key("Admin's", &expires)).await.0, StatusCode::OK);
}

#[actix_web::test]
async fn parallel_submissions_cannot_overshoot_the_rate() {
    let (app, org) = world().await;
    set_quotas(&app, &org, 100, 1000, 4);
    let owner = app.signed_in("owner@acme.test").await;
    let expires = in_days(30);
    // Ten distinct create forms, submitted at once.
    let mut tokens = Vec::new();
    for _ in 0..10 {
        tokens.push(form_token(&owner.page("/account/keys/new").await.1));
    }
    let submissions = tokens.iter().map(|token| {
        let mut fields = new_key("Burst", &expires);
        fields.push(("form_token", token));
        let owner = &owner;
        async move { owner.post("/account/keys", &fields).await.status() }
    });
    let statuses = join_all(submissions).await;
    let created = statuses.iter().filter(|s| **s == StatusCode::OK).count();
    let limited = statuses.iter().filter(|s| **s == StatusCode::TOO_MANY_REQUESTS).count();
    assert_eq!((created, limited), (4, 6), "{statuses:?}");
    assert_eq!(live_keys(&app), 4);
}

#[actix_web::test]
async fn administrators_set_the_quotas_in_the_key_policy() {
    let (app, org) = world().await;
    let admin = app.signed_in("admin@acme.test").await;
    let page = admin.open("/admin/policy").await;
    assert_eq!(page.field("quota_per_user").as_deref(), Some("500"), "the defaults are shown");
    let base = [("default_lifetime_days", "365"), ("default_grace_minutes", "240")];
    let mut bad = base.to_vec();
    bad.push(("creations_per_hour", "0"));
    let response = admin.post("/admin/policy", &bad).await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(response.text().await.unwrap().contains("Enter a whole number from 1 to 1000000"));
    let mut good = base.to_vec();
    good.extend([("quota_per_user", "7"), ("quota_per_organization", "70"), ("creations_per_hour", "5")]);
    assert_eq!(admin.post("/admin/policy", &good).await.status(), StatusCode::SEE_OTHER);
    let org = Organization::find(&mut app.conn(), org.id).unwrap();
    assert_eq!((org.key_quota_per_user, org.key_quota_per_organization, org.key_creations_per_hour), (7, 70, 5));
}
