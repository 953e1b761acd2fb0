//! Bad input everywhere: oversized bodies, invalid UTF-8, NUL bytes, huge and negative ids
//! in paths, unknown fields and wrong content types get a clear 4xx — never a 500 — and
//! store nothing.

use diesel::prelude::*;
use keyward::db::schema::{api_keys, audit_events, users};
use reqwest::header;

use crate::helpers::{TestApp, csrf_token, fixtures, http_client, keys, spawn_app, user};

/// Rows of the tables bad requests must not touch.
fn stored(app: &TestApp) -> (i64, i64, i64) {
    let mut conn = app.conn();
    (
        api_keys::table.count().get_result(&mut conn).unwrap(),
        users::table.count().get_result(&mut conn).unwrap(),
        audit_events::table.filter(audit_events::result.eq("success")).count().get_result(&mut conn).unwrap(),
    )
}

#[actix_web::test]
async fn malformed_paths_queries_and_forms_get_a_4xx_and_store_nothing() {
    let app = spawn_app().await;
    let org = fixtures::organization(&mut app.conn(), "acme");
    fixtures::UserBuilder::new(&org, "admin@acme.test").admin().may_grant_all().insert(&mut app.conn());
    let admin_user = user(&app, "admin@acme.test");
    let (key, secret) = keys::personal(&mut app.conn(), &app.hasher, &admin_user, "Existing");
    fixtures::staff(&mut app.conn(), "sam@support.test");
    let admin = app.signed_in("admin@acme.test").await;
    let staff = app.signed_in("sam@support.test").await;
    let before = stored(&app);
    let huge = "9".repeat(30);
    let long = "x".repeat(5000);
    let mut failures = Vec::new();

    let admin_gets = [
        "/admin/users/-1/edit".to_string(),
        "/admin/users/0/password".into(),
        format!("/admin/users/{huge}/edit"),
        "/admin/users/abc/access".into(),
        "/admin/roles/-7/edit".into(),
        format!("/admin/assets/{huge}/edit"),
        "/admin/keys/%00%00%00%00%00%00%00%00".into(),
        format!("/admin/keys/{long}/rename"),
        "/admin/keys/%FF%FE/edit".into(),
        format!("/admin/users?page={huge}"),
        "/admin/users?page=-5&sort=%00".into(),
        "/admin/users?q=%00".into(),
        "/admin/users?q=%FF%FE".into(),
        "/admin/keys?q=%00abc&state=%00".into(),
        format!("/admin/keys?q={long}"),
        "/admin/audit?actor=%00&target=%00&action=%00".into(),
        "/admin/audit?from=%FF&to=%00".into(),
        "/account/keys?page=-1&q=a%00b".into(),
        format!("/account/keys/{}/rename?return_to=%00", key.public_id),
        "/login?next=%00".into(),
        "/password/%00".into(),
    ];
    for path in &admin_gets {
        let status = admin.get(path).await.status();
        if status.is_server_error() || status.is_success() && path.contains("-1") {
            failures.push(format!("GET {path}: {status}"));
        }
    }
    for path in ["/staff/organizations/-5", "/staff/providers/0/keys", &format!("/staff/providers/{huge}")] {
        let status = staff.get(path).await.status();
        if !status.is_client_error() {
            failures.push(format!("GET {path}: {status}"));
        }
    }

    // Forms: NUL bytes, invalid UTF-8, unknown fields, huge numbers.
    let (_, page) = admin.page("/account/keys/new").await;
    let token = csrf_token(&page).unwrap();
    let form_posts: Vec<(String, Vec<u8>)> = vec![
        ("/account/keys".into(), format!("csrf_token={token}&name=a%00b&actions_mode=all").into_bytes()),
        ("/account/keys".into(), [format!("csrf_token={token}&name=").into_bytes(), vec![0xff, 0xfe, 0x00]].concat()),
        (format!("/account/keys/{}/rename", key.public_id), format!("csrf_token={token}&name=ok%00").into_bytes()),
        (format!("/account/keys/{}/deactivate", key.public_id), format!("csrf_token={token}&reason=%00").into_bytes()),
        (
            format!("/account/keys/{}/rekey", key.public_id),
            format!("csrf_token={token}&grace_minutes={huge}").into_bytes(),
        ),
        (
            "/admin/users".into(),
            format!("csrf_token={token}&email=a%00@b.test&display_name=x&password_mode=link").into_bytes(),
        ),
        (
            "/admin/users".into(),
            format!("csrf_token={token}&email=new@acme.test&display_name=N%00&role_id={huge}").into_bytes(),
        ),
        ("/admin/users/-1/edit".into(), format!("csrf_token={token}&display_name=x").into_bytes()),
        ("/admin/assets".into(), format!("csrf_token={token}&code=%00&name=x").into_bytes()),
        ("/admin/roles".into(), format!("csrf_token={token}&name=R%00&permission=%00").into_bytes()),
        (
            "/admin/policy".into(),
            format!("csrf_token={token}&default_lifetime_days={huge}&max_lifetime_days=-3").into_bytes(),
        ),
        (
            format!("/account/keys/{}/rename", key.public_id),
            format!("csrf_token={token}&unknown=%00&name=").into_bytes(),
        ),
    ];
    for (path, body) in &form_posts {
        let response = admin
            .http
            .post(app.url(path))
            .header(header::COOKIE, admin.cookie().unwrap())
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(body.clone())
            .send()
            .await
            .unwrap();
        let status = response.status();
        if status.is_server_error() || status.is_success() && path == "/admin/users" {
            failures.push(format!("POST {path} {:?}: {status}", String::from_utf8_lossy(body)));
        }
    }

    // Wrong content types and an oversized form.
    for (content_type, body) in [
        ("application/json", format!(r#"{{"csrf_token":"{token}","name":"x"}}"#).into_bytes()),
        ("multipart/form-data; boundary=x", b"--x--".to_vec()),
        ("application/x-www-form-urlencoded", format!("csrf_token={token}&name={}", "y".repeat(300_000)).into_bytes()),
    ] {
        let status = admin
            .http
            .post(app.url("/account/keys"))
            .header(header::COOKIE, admin.cookie().unwrap())
            .header(header::CONTENT_TYPE, content_type)
            .body(body)
            .send()
            .await
            .unwrap()
            .status();
        if !status.is_client_error() {
            failures.push(format!("POST /account/keys as {content_type}: {status}"));
        }
    }

    // The login form and the API.
    let client = app.client();
    let (_, login) = client.page("/login").await;
    let login_token = csrf_token(&login).unwrap();
    let status = client
        .post_raw("/login", &[("csrf_token", &login_token), ("email", "a\0@b.test"), ("password", "x\0")])
        .await
        .status();
    if !status.is_client_error() {
        failures.push(format!("POST /login with NUL: {status}"));
    }
    let api = http_client();
    for (path, body) in [
        ("/api/v1/verify", r#"{"action": "a\u0000b", "asset": "\u0000"}"#.to_string()),
        ("/api/v1/verify", "{\"action\": \"\u{0}\"}".to_string()),
        ("/api/v1/leaks", r#"[{"token": "kw_live_x", "type": "\u0000", "url": "\u0000", "source": "\u0000"}]"#.into()),
        ("/api/v1/leaks", format!(r#"[{{"token": "{}", "type": "t", "url": "u", "source": "s"}}]"#, "\u{0}".repeat(3))),
        ("/api/v1/verify", format!(r#"{{"action": "{}"}}"#, "z".repeat(2_000_000))),
        ("/api/v1/leaks", format!(r#"[{{"token": "{secret}", "type": "t\u0000", "url": "\u0000", "source": "s"}}]"#)),
    ] {
        let response = api
            .post(app.url(path))
            .bearer_auth("kw_live_notakey")
            .header(header::CONTENT_TYPE, "application/json")
            .body(body.clone())
            .send()
            .await
            .unwrap();
        let status = response.status();
        if status.is_server_error() {
            failures.push(format!("POST {path} {}: {status}", &body[..body.len().min(80)]));
        }
    }

    // The refusal of a NUL in the address carries the security headers, and is JSON on the API.
    let page = admin.get("/admin/users?q=%00").await;
    assert!(page.headers().contains_key(header::CONTENT_SECURITY_POLICY));
    let api_answer = api.get(app.url("/api/v1/me?x=%00")).send().await.unwrap();
    assert_eq!(api_answer.status(), reqwest::StatusCode::BAD_REQUEST);
    let body: serde_json::Value = api_answer.json().await.unwrap();
    assert!(body["error"].is_string(), "{body}");

    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert_eq!(stored(&app), before, "nothing was stored");
}
