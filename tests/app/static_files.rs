//! Fingerprinted static files: the pages link them by content hash, they are cached for a
//! year, and a name that is not the current content's is not served.

use keyward::routes::static_files::{css_url, fingerprint, js_url};
use reqwest::{StatusCode, header};

use crate::helpers::{fixtures, http_client, spawn_app};

#[actix_web::test]
async fn pages_link_the_fingerprinted_files() {
    let app = spawn_app().await;
    let css = format!("/static/app.{}.css", fingerprint(include_bytes!("../../static/css/app.css")));
    let js = format!("/static/app.{}.js", fingerprint(include_bytes!("../../static/js/app.js")));
    let org = fixtures::organization(&mut app.conn(), "acme");
    fixtures::UserBuilder::new(&org, "ann@acme.test").admin().insert(&mut app.conn());
    let client = app.signed_in("ann@acme.test").await;
    let anonymous = app.client();
    for (client, path) in [(&anonymous, "/login"), (&client, "/account/keys"), (&client, "/admin")] {
        let (status, body) = client.page(path).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert!(body.contains(&format!(r#"<link rel="stylesheet" href="{css}">"#)), "{path} links {css}");
        assert!(body.contains(&format!(r#"<script src="{js}" defer></script>"#)), "{path} loads {js}");
    }
    // The error page has its own bare layout, with the stylesheet and without the script.
    let (status, body) = client.page("/no-such-page").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body.contains(&format!(r#"href="{css}""#)) && !body.contains("<script"), "{body}");
}

#[actix_web::test]
async fn fingerprinted_files_are_cached_for_a_year() {
    let app = spawn_app().await;
    let client = http_client();
    for (url, content_type, content) in [
        (css_url(), "text/css; charset=utf-8", include_str!("../../static/css/app.css")),
        (js_url(), "text/javascript; charset=utf-8", include_str!("../../static/js/app.js")),
    ] {
        let response = client.get(app.url(url)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{url}");
        assert_eq!(response.headers().get(header::CONTENT_TYPE).unwrap(), content_type, "{url}");
        assert_eq!(
            response.headers().get(header::CACHE_CONTROL).unwrap(),
            "public, max-age=31536000, immutable",
            "{url}"
        );
        assert_eq!(response.text().await.unwrap(), content, "{url}");
    }
}

#[actix_web::test]
async fn an_unknown_or_stale_name_is_not_served() {
    let app = spawn_app().await;
    let client = http_client();
    let stale = format!("/static/app.{}.js", fingerprint(b"the script of an earlier release"));
    for path in ["/static/app.css", "/static/app.js", stale.as_str(), "/static/app.0123456789abcdef.css"] {
        let response = client.get(app.url(path)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
        assert!(
            response.headers().get(header::CACHE_CONTROL).is_none_or(|v| !v.to_str().unwrap().contains("immutable"))
        );
        let body = response.text().await.unwrap();
        assert!(!body.contains("data-dialog-content"), "{path} serves no script");
    }
}
