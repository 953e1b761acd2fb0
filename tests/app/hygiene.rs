//! Browser hygiene: logout clears what the browser kept, oversized headers get 431, `HEAD`
//! answers like `GET`, and forms from another origin are refused even with a valid token.

use std::io::{Read, Write};

use reqwest::{StatusCode, header};

use crate::helpers::{
    SpawnOptions, TestApp, TestClient, csrf_token, fixtures, http_client, spawn_app, spawn_app_with, verify_code,
};

async fn signed_in_ann(app: &TestApp) -> TestClient {
    let org = fixtures::organization(&mut app.conn(), "acme");
    fixtures::UserBuilder::new(&org, "ann@acme.test").insert(&mut app.conn());
    app.signed_in("ann@acme.test").await
}

/// Signs out with a valid token and `origin` (if any); returns the status.
async fn logout_from(app: &TestApp, client: &TestClient, origin: Option<&str>) -> StatusCode {
    let (_, body) = client.page("/account").await;
    let token = csrf_token(&body).unwrap();
    let mut request = client
        .http
        .post(app.url("/logout"))
        .header(header::COOKIE, client.cookie().unwrap())
        .form(&[("csrf_token", &token)]);
    if let Some(origin) = origin {
        request = request.header(header::ORIGIN, origin);
    }
    request.send().await.unwrap().status()
}

#[actix_web::test]
async fn logout_tells_the_browser_to_clear_the_sites_cache_cookies_and_storage() {
    let app = spawn_app().await;
    let client = signed_in_ann(&app).await;
    client.page("/account").await;
    let response = client.post("/logout", &[]).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(response.headers().get("clear-site-data").unwrap(), r#""cache", "cookies", "storage""#);
}

#[actix_web::test]
async fn a_single_request_header_over_16_kib_is_answered_431() {
    let app = spawn_app().await;
    let send = async |path: &str, bytes: usize| {
        let value = "a".repeat(bytes - "x-filler".len());
        http_client().get(app.url(path)).header("x-filler", value).send().await.unwrap().status()
    };
    for path in ["/login", "/healthz", "/api/v1/openapi.json"] {
        assert_eq!(send(path, 16 * 1024 + 1).await, StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE, "{path}");
        assert_ne!(send(path, 16 * 1024).await, StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE, "{path}: at the limit");
    }
    // A cookie is a header like any other.
    let cookie = format!("keyward_session={}", "b".repeat(17 * 1024));
    let response = http_client().get(app.url("/login")).header(header::COOKIE, cookie).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
}

#[actix_web::test]
async fn head_on_a_page_answers_like_get_without_a_body() {
    let app = spawn_app().await;
    for (path, status) in
        [("/login", StatusCode::OK), ("/account", StatusCode::SEE_OTHER), ("/no-such-page", StatusCode::NOT_FOUND)]
    {
        let get = http_client().get(app.url(path)).send().await.unwrap();
        let head = http_client().head(app.url(path)).send().await.unwrap();
        assert_eq!((get.status(), head.status()), (status, status), "{path}");
        for name in [header::CONTENT_TYPE, header::LOCATION, header::CONTENT_SECURITY_POLICY] {
            assert_eq!(get.headers().get(&name), head.headers().get(&name), "{path}: {name}");
        }
    }
    // On the wire: the head of the response and nothing after it.
    let mut stream = std::net::TcpStream::connect(app.address).unwrap();
    write!(stream, "HEAD /login HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n", app.address).unwrap();
    let mut raw = String::new();
    stream.read_to_string(&mut raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(head.to_ascii_lowercase().contains("content-length: "), "the length of the body GET would send: {head}");
    assert_eq!(body, "", "no body");
}

#[actix_web::test]
async fn a_form_from_another_origin_is_refused_even_with_a_valid_token() {
    let app = spawn_app().await;
    let client = signed_in_ann(&app).await;
    for origin in ["http://evil.example", "null", "https://127.0.0.1", &format!("http://{}.evil.example", app.address)]
    {
        assert_eq!(logout_from(&app, &client, Some(origin)).await, StatusCode::FORBIDDEN, "{origin}");
        assert_eq!(client.page("/account").await.0, StatusCode::OK, "{origin}: still signed in");
    }
    // The site's own origin, as browsers send it, and no Origin at all, are fine.
    assert_eq!(logout_from(&app, &client, Some(&format!("http://{}", app.address))).await, StatusCode::SEE_OTHER);
    let client = app.signed_in("ann@acme.test").await;
    assert_eq!(logout_from(&app, &client, None).await, StatusCode::SEE_OTHER);
}

#[actix_web::test]
async fn the_configured_public_url_is_the_only_origin_forms_may_come_from() {
    let app = spawn_app_with(SpawnOptions {
        public_origin: Some("https://keys.example.com".into()),
        ..SpawnOptions::default()
    })
    .await;
    let client = signed_in_ann(&app).await;
    let own_address = format!("http://{}", app.address);
    assert_eq!(logout_from(&app, &client, Some(&own_address)).await, StatusCode::FORBIDDEN);
    assert_eq!(logout_from(&app, &client, Some("https://keys.example.com")).await, StatusCode::SEE_OTHER);
}

#[actix_web::test]
async fn the_bearer_key_api_is_not_held_to_the_browser_origin_rule() {
    let app = spawn_app().await;
    let org = fixtures::organization(&mut app.conn(), "acme");
    let bob = fixtures::UserBuilder::new(&org, "bob@acme.test")
        .api_key_access()
        .may_grant(&["positions.read"])
        .role(&[keyward::domain::Permission::KeysOwn])
        .insert(&mut app.conn());
    let (_, secret) = crate::helpers::keys::personal(&mut app.conn(), &app.hasher, &bob, "Integration");
    let response = http_client()
        .post(app.url("/api/v1/verify"))
        .bearer_auth(&secret)
        .header(header::ORIGIN, "https://integrator.example")
        .json(&serde_json::json!({ "action": "positions.read" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(verify_code(&app, &secret, Some("positions.read")).await, "VALID");
}

/// A table that scrolls sideways on a narrow screen must be reachable by keyboard, or a
/// keyboard user cannot see its right-hand columns when no cell holds a link (axe's
/// `scrollable-region-focusable`): every wrapper is a focusable, named region.
#[test]
fn every_scrolling_table_is_a_focusable_named_region() {
    let mut unreachable = Vec::new();
    let mut pending = vec![std::path::PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/templates"))];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            for tag in text.split('<').filter(|tag| tag.contains("class=\"table-scroll\"")) {
                let tag = tag.split('>').next().unwrap_or_default();
                if !(tag.contains("tabindex=\"0\"") && tag.contains("role=\"region\"") && tag.contains("aria-label=")) {
                    unreachable.push(format!("{}: <{tag}>", path.display()));
                }
            }
        }
    }
    assert!(unreachable.is_empty(), "scrolling tables without tabindex, role and label: {unreachable:#?}");
}
