//! Who must have a second factor (issue 17, item 4): staff always, web users as their
//! organization's policy says (nobody, administrators, managers, everyone). Whoever must and
//! has none is sent, after the password, to set one up — and nowhere else — and is signed in
//! once it is confirmed.

use std::time::Duration;

use diesel::prelude::*;
use keyward::{
    db::{
        models::{AuditEvent, Organization},
        schema::audit_events,
    },
    domain::Permission,
};
use reqwest::StatusCode;

use crate::helpers::{ENROL, PASSWORD, SECOND_FACTOR, TestApp, TestClient, audit_count, fixtures, location, spawn_app};

/// Sets the organization's policy on the Key policy page, as its administrator.
async fn require(admin: &TestClient, setting: &str) {
    admin.fetch_csrf_token("/admin/policy").await;
    let response = admin
        .post(
            "/admin/policy",
            &[
                ("default_lifetime_days", "365"),
                ("default_grace_minutes", "0"),
                ("second_factor_required_for", setting),
            ],
        )
        .await;
    assert_eq!(location(&response), "/admin/policy", "{setting}");
}

/// Where the password alone leads `email`.
async fn after_password(app: &TestApp, email: &str) -> String {
    location(&app.client().login(email, PASSWORD).await)
}

#[actix_web::test]
async fn each_setting_requires_a_factor_of_whom_it_names_and_changing_it_is_audited() {
    let app = spawn_app().await;
    let mut conn = app.conn();
    let (acme, admin) = fixtures::organization_with_admin(&mut conn, "acme");
    let keys = fixtures::key_manager(&mut conn, &acme, "keys@acme.test", &[]);
    let users = fixtures::UserBuilder::new(&acme, "users@acme.test").role(&[Permission::UsersManage]).insert(&mut conn);
    let auditor = fixtures::UserBuilder::new(&acme, "auditor@acme.test")
        .role(&[Permission::AuditRead])
        .api_key_access()
        .insert(&mut conn);
    drop(conn);
    let admin_client = app.signed_in(&admin.email).await;
    let page = admin_client.open("/admin/policy").await;
    let selected = page.select("select[name=second_factor_required_for] option[selected]").attr("value");
    assert_eq!(selected.as_deref(), Some("nobody"), "{page}");

    let everyone = [&admin.email, &keys.email, &users.email, &auditor.email];
    for (setting, expected) in [
        ("nobody", [false, false, false, false]),
        ("administrators", [true, false, false, false]),
        ("managers", [true, true, true, false]),
        ("everyone", [true, true, true, true]),
    ] {
        require(&admin_client, setting).await;
        for (email, must) in everyone.iter().zip(expected) {
            let went = after_password(&app, email).await;
            assert_eq!(went, if must { ENROL } else { "/account" }, "{email} under {setting}");
        }
    }
    // The administrator's own session, signed in before, goes on: the policy applies at sign-in.
    assert_eq!(admin_client.open("/admin/policy").await.status, StatusCode::OK);
    let org = Organization::find(&mut app.conn(), acme.id).unwrap();
    assert_eq!(org.second_factor_required_for.code(), "everyone");
    let events: Vec<AuditEvent> = audit_events::table
        .filter(audit_events::action.eq("organization.policy_update"))
        .order(audit_events::id)
        .select(AuditEvent::as_select())
        .load(&mut *app.conn())
        .unwrap();
    let last = events.last().unwrap();
    assert_eq!(last.details["from"]["second_factor_required_for"], "managers");
    assert_eq!(last.details["to"]["second_factor_required_for"], "everyone");
    // Nothing else is accepted, with a clear answer.
    let bad = admin_client
        .post(
            "/admin/policy",
            &[
                ("default_lifetime_days", "365"),
                ("default_grace_minutes", "0"),
                ("second_factor_required_for", "robots"),
            ],
        )
        .await;
    assert_eq!(bad.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(Organization::find(&mut app.conn(), acme.id).unwrap().second_factor_required_for.code(), "everyone");
    // A form without the field (an older page) keeps the setting.
    require(&admin_client, "").await;
    assert_eq!(Organization::find(&mut app.conn(), acme.id).unwrap().second_factor_required_for.code(), "everyone");
}

#[actix_web::test]
async fn an_unenrolled_key_manager_is_sent_to_enrolment_and_nowhere_else_then_reaches_everything() {
    let app = spawn_app().await;
    let mut conn = app.conn();
    let (acme, admin) = fixtures::organization_with_admin(&mut conn, "acme");
    let manager = fixtures::key_manager(&mut conn, &acme, "keys@acme.test", &[]);
    let proxy = fixtures::key_owner(&mut conn, &acme, "proxy@acme.test");
    let (key, _) = fixtures::keys::organization(&mut conn, &app.hasher, &proxy, "Telematics");
    drop(conn);
    require(&app.signed_in(&admin.email).await, "managers").await;

    let mut pages: Vec<String> = Vec::new();
    let client = app.client();
    client.open("/login").await;
    let anonymous = client.cookie().unwrap();
    assert_eq!(location(&client.login(&manager.email, PASSWORD).await), ENROL);
    let enrolling = client.cookie().unwrap();
    assert_ne!(enrolling, anonymous, "the password step renews the session");
    assert_eq!(audit_count(&app, "login.success"), 1, "the administrator's only");

    pages.extend(["/account", "/account/keys", "/account/security", "/admin/keys"].map(str::to_string));
    for key_page in ["", "/rename", "/edit", "/rekey"] {
        pages.push(format!("/admin/keys/{}{key_page}", key.public_id));
    }
    let opens_once_signed_in = pages.clone();
    pages.extend(
        ["/", "/login", SECOND_FACTOR, "/admin", "/admin/audit", "/staff", "/staff/security"].map(str::to_string),
    );
    for page in &pages {
        let response = client.get(page).await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{page}");
        assert_eq!(location(&response), ENROL, "{page}");
    }
    // Forms too, with the session's own CSRF token.
    client.fetch_csrf_token(ENROL).await;
    for (form, fields) in [
        ("/account/keys", vec![("name", "sneaky")]),
        ("/account/security/totp", vec![]),
        ("/admin/users", vec![("email", "new@acme.test"), ("display_name", "New")]),
        (SECOND_FACTOR, vec![("code", "123456")]),
    ] {
        let response = client.post(form, &fields).await;
        assert_eq!(location(&response), ENROL, "{form}");
    }
    // The JSON API answers 401: a session is no credential there.
    assert_eq!(client.get("/api/v1/me").await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(audit_count(&app, "key.create"), 1, "the fixture key only");
    assert_eq!(audit_count(&app, "second_factor.enrol"), 0);

    // Set up the authenticator: the session is signed in, under a new key.
    let secret = app.enrol_at_sign_in(&client).await;
    assert_ne!(client.cookie().unwrap(), enrolling, "enrolling renews the session");
    assert_eq!(audit_count(&app, "second_factor.enrol"), 1);
    assert_eq!(audit_count(&app, "login.success"), 2);
    for page in &opens_once_signed_in {
        assert_eq!(client.get(page).await.status(), StatusCode::OK, "{page}");
    }
    assert!(client.open("/account/security").await.says("10 of 10 recovery codes left"));
    assert_eq!(location(&client.get(ENROL).await), "/", "an enrolled session has nothing to set up");

    // The next sign-in asks for a code.
    app.advance(Duration::from_secs(30));
    let next = app.client();
    assert_eq!(location(&next.login(&manager.email, PASSWORD).await), SECOND_FACTOR);
    next.fetch_csrf_token(SECOND_FACTOR).await;
    let response = next.post(SECOND_FACTOR, &[("code", &app.factors.code_at_now(&secret))]).await;
    assert_eq!(location(&response), "/account");
}

#[actix_web::test]
async fn an_enrolment_takes_at_most_half_an_hour_and_a_deactivated_account_cannot_finish_it() {
    let app = spawn_app().await;
    let staff = fixtures::staff(&mut app.conn(), "sam@support.test");
    let other = fixtures::staff(&mut app.conn(), "kim@support.test");

    let slow = app.client();
    assert_eq!(location(&slow.login(&staff.email, PASSWORD).await), ENROL);
    assert_eq!(location(&slow.get("/staff").await), ENROL);
    app.advance(Duration::from_secs(30 * 60 + 1));
    assert_eq!(location(&slow.get("/staff").await), "/login?next=%2Fstaff");
    assert_eq!(location(&slow.get(ENROL).await), "/login");

    let gone = app.client();
    assert_eq!(location(&gone.login(&other.email, PASSWORD).await), ENROL);
    gone.fetch_csrf_token(ENROL).await;
    diesel::update(keyward::db::schema::staff_accounts::table.find(other.id))
        .set(keyward::db::schema::staff_accounts::active.eq(false))
        .execute(&mut *app.conn())
        .unwrap();
    assert_eq!(location(&gone.post("/login/enrol/totp", &[]).await), "/login");
    assert_eq!(location(&gone.get("/staff").await), "/login?next=%2Fstaff");
    assert_eq!(audit_count(&app, "second_factor.enrol"), 0);
}

/// The number of enrolled or pending authenticators of the user or staff account `email`.
fn authenticators_of(app: &TestApp, email: &str) -> i64 {
    use keyward::db::schema::{staff_accounts, totp_factors, users};
    let staff = staff_accounts::table.filter(staff_accounts::email.eq(email)).select(staff_accounts::id);
    let user = users::table.filter(users::email.eq(email)).select(users::id);
    totp_factors::table
        .filter(totp_factors::staff_id.eq_any(staff.nullable()).or(totp_factors::user_id.eq_any(user.nullable())))
        .count()
        .get_result(&mut *app.conn())
        .unwrap()
}

#[actix_web::test]
async fn administrators_reset_a_users_second_factor_ending_their_sessions_but_never_their_own() {
    let app = spawn_app().await;
    let mut conn = app.conn();
    let (acme, admin) = fixtures::organization_with_admin(&mut conn, "acme");
    let bob = fixtures::UserBuilder::new(&acme, "bob@acme.test").api_key_access().insert(&mut conn);
    let manager =
        fixtures::UserBuilder::new(&acme, "users@acme.test").role(&[Permission::UsersManage]).insert(&mut conn);
    let (_, globex_admin) = fixtures::organization_with_admin(&mut conn, "globex");
    diesel::update(keyward::db::schema::organizations::table.find(acme.id))
        .set(keyward::db::schema::organizations::second_factor_required_for.eq("everyone"))
        .execute(&mut conn)
        .unwrap();
    drop(conn);
    // Everyone at Acme sets up an authenticator at the first sign-in; Bob is signed in twice.
    let admin_client = app.signed_in(&admin.email).await;
    let bob_here = app.signed_in(&bob.email).await;
    let bob_there = app.signed_in(&bob.email).await;
    let manager_client = app.signed_in(&manager.email).await;
    assert_eq!(authenticators_of(&app, &bob.email), 1);
    let reset = format!("/admin/users/{}/reset-second-factor", bob.id);

    let page = admin_client.open(&format!("/admin/users/{}", bob.id)).await;
    assert!(page.select(".page-head a").attrs("href").contains(&reset), "{page}");
    assert_eq!(page.select("#second-factor").text().trim(), "Authenticator app");
    // Not on oneself: a stolen password must not strip its own account's second factor.
    let own = format!("/admin/users/{}/reset-second-factor", admin.id);
    let page = admin_client.open(&format!("/admin/users/{}", admin.id)).await;
    assert!(!page.select("a").attrs("href").contains(&own), "{page}");
    assert_eq!(admin_client.get(&own).await.status(), StatusCode::FORBIDDEN);
    assert_eq!(admin_client.post(&own, &[]).await.status(), StatusCode::FORBIDDEN);
    // Not by a user manager who is no administrator.
    let page = manager_client.open(&format!("/admin/users/{}", bob.id)).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(!page.select("a").attrs("href").contains(&reset), "{page}");
    assert_eq!(manager_client.get(&reset).await.status(), StatusCode::FORBIDDEN);
    assert_eq!(manager_client.post(&reset, &[]).await.status(), StatusCode::FORBIDDEN);
    // Not from another organization: there is no such user there.
    let globex = app.signed_in(&globex_admin.email).await;
    globex.fetch_csrf_token("/account").await;
    assert_eq!(globex.post(&reset, &[]).await.status(), StatusCode::NOT_FOUND);
    assert_eq!(audit_count(&app, "second_factor.reset"), 0);
    assert_eq!(authenticators_of(&app, &bob.email), 1);
    assert_eq!(bob_here.get("/account").await.status(), StatusCode::OK);

    let form = admin_client.open(&reset).await;
    assert!(form.has_form(&reset), "{form}");
    let response = admin_client.post(&reset, &[]).await;
    assert_eq!(location(&response), format!("/admin/users/{}", bob.id));
    assert!(admin_client.open(&format!("/admin/users/{}", bob.id)).await.says("signed out everywhere"));
    assert_eq!(authenticators_of(&app, &bob.email), 0);
    for client in [&bob_here, &bob_there] {
        assert_eq!(location(&client.get("/account").await), "/login?next=%2Faccount");
    }
    let event: AuditEvent = audit_events::table
        .filter(audit_events::action.eq("second_factor.reset"))
        .select(AuditEvent::as_select())
        .first(&mut *app.conn())
        .unwrap();
    assert_eq!((event.organization_id, event.actor_id), (Some(acme.id), Some(admin.id)));
    assert_eq!(event.target_label.as_deref(), Some("bob@acme.test"));
    assert_eq!(event.details["sessions_ended"], 2);
    // The policy still requires one: Bob sets up a new authenticator at his next sign-in.
    assert_eq!(after_password(&app, &bob.email).await, ENROL);
}

#[actix_web::test]
async fn staff_reset_another_staff_accounts_second_factor_but_not_their_own() {
    let app = spawn_app().await;
    let sam = fixtures::staff(&mut app.conn(), "sam@support.test");
    let kim = fixtures::staff(&mut app.conn(), "kim@support.test");
    let sam_client = app.signed_in(&sam.email).await;
    let kim_client = app.signed_in(&kim.email).await;
    assert_eq!(authenticators_of(&app, &kim.email), 1);
    let (reset_kim, reset_own) = (
        format!("/staff/accounts/{}/reset-second-factor", kim.id),
        format!("/staff/accounts/{}/reset-second-factor", sam.id),
    );

    let list = sam_client.open("/staff/accounts").await;
    let links = list.select("a").attrs("href");
    assert!(links.contains(&reset_kim) && !links.contains(&reset_own), "{links:?}");
    assert_eq!(sam_client.get(&reset_own).await.status(), StatusCode::FORBIDDEN);
    assert_eq!(sam_client.post(&reset_own, &[]).await.status(), StatusCode::FORBIDDEN);
    assert_eq!(authenticators_of(&app, &sam.email), 1);

    assert!(sam_client.open(&reset_kim).await.has_form(&reset_kim));
    let response = sam_client.post(&reset_kim, &[]).await;
    assert_eq!(location(&response), "/staff/accounts");
    assert_eq!(authenticators_of(&app, &kim.email), 0);
    assert_eq!(location(&kim_client.get("/staff").await), "/login?next=%2Fstaff");
    assert_eq!(sam_client.get("/staff").await.status(), StatusCode::OK);
    assert_eq!(audit_count(&app, "second_factor.reset"), 1);
    // Staff must have one: Kim sets up a new authenticator at the next sign-in.
    assert_eq!(after_password(&app, &kim.email).await, ENROL);
}
