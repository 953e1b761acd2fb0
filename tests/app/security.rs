//! Security headers, CSRF protection, role gating, error pages and health probes.

use keyward::domain::Permission;
use reqwest::{StatusCode, header};

use crate::helpers::{csrf_token, fixtures, http_client, location, spawn_app};

#[actix_web::test]
async fn every_page_carries_the_security_headers() {
    let app = spawn_app().await;
    let org = fixtures::organization(&mut app.conn(), "acme");
    fixtures::UserBuilder::new(&org, "ann@acme.test").insert(&mut app.conn());
    let client = app.signed_in("ann@acme.test").await;
    for path in ["/login", "/account", "/healthz", "/no-such-page"] {
        let response = client.get(path).await;
        let headers = response.headers();
        let csp = headers.get(header::CONTENT_SECURITY_POLICY).unwrap().to_str().unwrap();
        assert!(csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
        assert!(csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"), "{path}: {csp}");
        assert_eq!(headers.get(header::X_CONTENT_TYPE_OPTIONS).unwrap(), "nosniff", "{path}");
        assert_eq!(headers.get(header::REFERRER_POLICY).unwrap(), "same-origin", "{path}");
        assert!(headers.get("x-request-id").is_some(), "{path}");
    }
    let account = client.get("/account").await;
    assert_eq!(account.headers().get(header::CACHE_CONTROL).unwrap(), "no-store");
}

#[actix_web::test]
async fn the_session_cookie_is_http_only_and_same_site_strict() {
    let app = spawn_app().await;
    let response = app.client().get("/login").await;
    let cookie = response.headers().get(header::SET_COOKIE).unwrap().to_str().unwrap().to_string();
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite=Strict"), "{cookie}");
    assert!(cookie.contains("Path=/"), "{cookie}");
}

#[actix_web::test]
async fn pages_contain_no_inline_script() {
    let app = spawn_app().await;
    let org = fixtures::organization(&mut app.conn(), "acme");
    fixtures::UserBuilder::new(&org, "ann@acme.test").admin().insert(&mut app.conn());
    let client = app.signed_in("ann@acme.test").await;
    for path in ["/login", "/account", "/account/keys", "/admin"] {
        let (_, body) = client.page(path).await;
        assert!(!body.contains("<script>"), "{path} has an inline script");
        assert!(!body.contains(" onclick="), "{path} has an inline handler");
    }
}

#[actix_web::test]
async fn a_form_without_a_csrf_token_is_refused() {
    let app = spawn_app().await;
    let org = fixtures::organization(&mut app.conn(), "acme");
    fixtures::UserBuilder::new(&org, "ann@acme.test").insert(&mut app.conn());
    let client = app.signed_in("ann@acme.test").await;

    let missing = client.post_raw("/logout", &[]).await;
    assert_eq!(missing.status(), StatusCode::FORBIDDEN);
    assert!(missing.text().await.unwrap().contains("Form expired"));
    let wrong = client.post_raw("/logout", &[("csrf_token", "forged")]).await;
    assert_eq!(wrong.status(), StatusCode::FORBIDDEN);
    assert_eq!(client.page("/account").await.0, StatusCode::OK, "the forged logouts did nothing");
}

#[actix_web::test]
async fn a_login_form_without_a_csrf_token_is_refused() {
    let app = spawn_app().await;
    let org = fixtures::organization(&mut app.conn(), "acme");
    fixtures::UserBuilder::new(&org, "ann@acme.test").insert(&mut app.conn());
    let client = app.client();
    client.page("/login").await;
    let response =
        client.post_raw("/login", &[("email", "ann@acme.test"), ("password", crate::helpers::PASSWORD)]).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
}

#[actix_web::test]
async fn a_cross_site_post_is_refused_even_with_a_token() {
    let app = spawn_app().await;
    let org = fixtures::organization(&mut app.conn(), "acme");
    fixtures::UserBuilder::new(&org, "ann@acme.test").insert(&mut app.conn());
    let client = app.signed_in("ann@acme.test").await;
    let (_, body) = client.page("/account").await;
    let token = csrf_token(&body).unwrap();
    let response = client
        .http
        .post(app.url("/logout"))
        .header(header::COOKIE, client.cookie().unwrap())
        .header("sec-fetch-site", "cross-site")
        .form(&[("csrf_token", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(client.page("/account").await.0, StatusCode::OK);
}

#[actix_web::test]
async fn a_form_post_with_another_content_type_is_refused() {
    let app = spawn_app().await;
    let response = http_client()
        .post(app.url("/login"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(r#"{"email":"a@b.c"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
}

#[actix_web::test]
async fn anonymous_visitors_are_sent_to_the_login_page() {
    let app = spawn_app().await;
    for (path, login) in [
        ("/", "/login"),
        ("/account", "/login?next=%2Faccount"),
        ("/account/keys", "/login?next=%2Faccount%2Fkeys"),
        ("/admin", "/login?next=%2Fadmin"),
        ("/staff", "/login?next=%2Fstaff"),
    ] {
        let response = app.client().get(path).await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{path}");
        assert_eq!(location(&response), login, "{path}");
    }
}

#[actix_web::test]
async fn a_web_user_cannot_open_admin_or_staff() {
    let app = spawn_app().await;
    let org = fixtures::organization(&mut app.conn(), "acme");
    fixtures::UserBuilder::new(&org, "ann@acme.test").api_key_access().insert(&mut app.conn());
    let client = app.signed_in("ann@acme.test").await;
    let account = client.open("/account").await;
    assert!(account.has("nav a[href]") && !account.links_to("/admin"), "no Admin navigation for a plain user");
    assert_eq!(client.get("/admin").await.status(), StatusCode::FORBIDDEN);
    assert_eq!(client.get("/staff").await.status(), StatusCode::FORBIDDEN);
}

#[actix_web::test]
async fn an_org_admin_opens_admin_but_not_staff() {
    let app = spawn_app().await;
    let org = fixtures::organization(&mut app.conn(), "acme");
    fixtures::UserBuilder::new(&org, "boss@acme.test").admin().insert(&mut app.conn());
    let client = app.signed_in("boss@acme.test").await;
    let page = client.open("/admin").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.links_to("/admin/users") && page.links_to("/admin/roles"));
    assert!(!page.links_to("/staff"));
    assert_eq!(client.get("/staff").await.status(), StatusCode::FORBIDDEN);
}

#[actix_web::test]
async fn a_role_holder_sees_only_the_admin_sections_of_their_permissions() {
    let app = spawn_app().await;
    let org = fixtures::organization(&mut app.conn(), "acme");
    fixtures::UserBuilder::new(&org, "kim@acme.test").role(&[Permission::KeysManage]).insert(&mut app.conn());
    let client = app.signed_in("kim@acme.test").await;
    let page = client.open("/admin").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.links_to("/admin/keys"));
    assert!(!page.links_to("/admin/users") && !page.links_to("/admin/roles"));
    let body = page.body;
    assert!(!body.contains("Recent activity"), "no audit.read, no activity");
}

#[actix_web::test]
async fn staff_cannot_open_account_or_admin() {
    let app = spawn_app().await;
    fixtures::staff(&mut app.conn(), "sam@support.test");
    let client = app.signed_in("sam@support.test").await;
    assert_eq!(client.get("/account").await.status(), StatusCode::FORBIDDEN);
    assert_eq!(client.get("/admin").await.status(), StatusCode::FORBIDDEN);
    assert_eq!(client.get("/staff").await.status(), StatusCode::OK);
}

#[actix_web::test]
async fn unknown_pages_get_a_friendly_404_without_internals() {
    let app = spawn_app().await;
    let response = app.client().get("/no/such/page").await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let body = response.text().await.unwrap();
    assert!(body.contains("Not found"));
    assert!(!body.to_lowercase().contains("diesel") && !body.contains("panicked"));
}

#[actix_web::test]
async fn health_and_readiness_probes_answer() {
    let app = spawn_app().await;
    let client = http_client();
    let health = client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    let ready = client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), StatusCode::OK);
    assert!(ready.text().await.unwrap().contains("ready"));
}

#[actix_web::test]
async fn without_a_database_healthz_is_alive_readyz_and_pages_are_unavailable() {
    use keyward::{
        db::{Database, PoolOptions},
        secrets::MasterSecret,
        startup::{AppSettings, Application},
    };
    use std::time::Duration;
    let db = Database::new(
        "host=/nonexistent/keyward dbname=nothing user=nobody connect_timeout=1",
        &PoolOptions {
            size: 2,
            checkout_timeout: Duration::from_millis(500),
            statement_timeout: Duration::from_secs(1),
        },
    );
    let app = Application::build(AppSettings {
        db,
        keys: MasterSecret::generate().derive(),
        addr: "127.0.0.1:0".parse().unwrap(),
        public_origin: None,
        cookie_secure: false,
        trust_forwarded: keyward::domain::client_ip::TrustForwarded::No,
        session_idle: Duration::from_secs(60),
        session_max: Duration::from_secs(60),
        workers: Some(1),
        password_hashers: 1,
        verify_cache: true,
        invalid_attempts_per_minute: 60,
        management_rate_per_minute: 600,
        run_jobs: false,
        usage_recording: true,
        clock: keyward::clock::Clock::system(),
        metrics_token: None,
        mail: None,
        webhook_allow_private: false,
    })
    .unwrap();
    let base = format!("http://{}", app.local_addr());
    let handle = app.handle();
    actix_web::rt::spawn(app.run_until_stopped());
    let client = http_client();
    assert_eq!(client.get(format!("{base}/healthz")).send().await.unwrap().status(), StatusCode::OK);
    assert_eq!(client.get(format!("{base}/readyz")).send().await.unwrap().status(), StatusCode::SERVICE_UNAVAILABLE);
    handle.stop(false).await;
}
