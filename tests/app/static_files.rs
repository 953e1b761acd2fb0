//! Fingerprinted static files: the pages link them by content hash, they are cached for a
//! year, and a name that is not the current content's is not served.

use keyward::routes::static_files::{css_url, fingerprint, js_url, mark_url};
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
        (mark_url(), "image/svg+xml", include_str!("../../static/img/mark.svg")),
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

#[actix_web::test]
async fn the_logo_mark_is_the_favicon_of_every_page_and_of_favicon_ico() {
    let app = spawn_app().await;
    let mark = format!("/static/mark.{}.svg", fingerprint(include_bytes!("../../static/img/mark.svg")));
    let org = fixtures::organization(&mut app.conn(), "acme");
    fixtures::UserBuilder::new(&org, "ann@acme.test").insert(&mut app.conn());
    let client = app.signed_in("ann@acme.test").await;
    let icon = format!(r#"<link rel="icon" type="image/svg+xml" href="{mark}">"#);
    for (client, path) in [(&app.client(), "/login"), (&client, "/account"), (&client, "/no-such-page")] {
        let (_, body) = client.page(path).await;
        assert!(body.contains(&icon), "{path} links the favicon");
    }
    // The top bar shows the mark beside the name.
    let page = client.open("/account").await;
    assert_eq!(page.select(".topbar .brand img").attr("src").as_deref(), Some(mark.as_str()));
    assert_eq!(page.select(".topbar .brand").text(), "Keyward");

    // Clients that ask for /favicon.ico without reading a page get the mark, not a 404.
    let response = http_client().get(app.url("/favicon.ico")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers().get(header::CONTENT_TYPE).unwrap(), "image/svg+xml");
    assert_eq!(response.headers().get(header::CACHE_CONTROL).unwrap(), "public, max-age=86400");
    assert_eq!(response.text().await.unwrap(), include_str!("../../static/img/mark.svg"));
}
