//! The stylesheet, script and logo mark, compiled into the binary so the server needs no files
//! beside it, served under fingerprinted names (`/static/app.<hash>.css`) so that browsers may
//! cache them for a year and a deploy never pairs old JavaScript with new markup. Templates take
//! the URLs from `css_url()` / `js_url()` / `mark_url()` here, the only place that knows them.
//! `/favicon.ico`, the one fixed name browsers and tools ask for, serves the mark too.

use std::sync::LazyLock;

use actix_web::{HttpResponse, get, http::header, web};
use sha2::{Digest, Sha256};

use crate::error::AppError;

/// A file the pages load, with the name it is served under.
struct Asset {
    /// `app.<hash>.css`: changes whenever the content does.
    file_name: String,
    url: String,
    body: &'static str,
    content_type: &'static str,
}

impl Asset {
    fn new(stem: &str, extension: &str, body: &'static str, content_type: &'static str) -> Self {
        let file_name = format!("{stem}.{}.{extension}", fingerprint(body.as_bytes()));
        Self { url: format!("/static/{file_name}"), file_name, body, content_type }
    }
}

static CSS: LazyLock<Asset> =
    LazyLock::new(|| Asset::new("app", "css", include_str!("../../static/css/app.css"), "text/css; charset=utf-8"));
static JS: LazyLock<Asset> =
    LazyLock::new(|| Asset::new("app", "js", include_str!("../../static/js/app.js"), "text/javascript; charset=utf-8"));
static MARK: LazyLock<Asset> =
    LazyLock::new(|| Asset::new("mark", "svg", include_str!("../../static/img/mark.svg"), "image/svg+xml"));

/// The content's fingerprint: the first 16 hex digits (64 bits) of its SHA-256, plenty to
/// tell one release's file from another's.
pub fn fingerprint(content: &[u8]) -> String {
    Sha256::digest(content).iter().take(8).map(|b| format!("{b:02x}")).collect()
}

/// Where the current stylesheet is served.
pub fn css_url() -> &'static str {
    &CSS.url
}

/// Where the current script is served.
pub fn js_url() -> &'static str {
    &JS.url
}

/// Where the logo mark (also the favicon) is served.
pub fn mark_url() -> &'static str {
    &MARK.url
}

/// A fingerprinted file never changes, so it is cached for a year without revalidation. Any
/// other name, including an earlier release's hash, is a 404 rather than a redirect to the
/// current file: an old page must not run new JavaScript against its markup, and every page
/// works without the script (dialogs are also standalone pages).
#[get("/static/{name}")]
pub async fn serve(name: web::Path<String>) -> Result<HttpResponse, AppError> {
    let asset = [&*CSS, &*JS, &*MARK].into_iter().find(|asset| asset.file_name == *name).ok_or(AppError::NotFound)?;
    Ok(HttpResponse::Ok()
        .content_type(asset.content_type)
        .insert_header((header::CACHE_CONTROL, "public, max-age=31536000, immutable"))
        .body(asset.body))
}

/// The mark under the name clients ask for without reading a page (the pages link the
/// fingerprinted SVG). The name is fixed, so it is cached for a day, not forever: a new mark
/// reaches everyone within a day of a release.
#[get("/favicon.ico")]
pub async fn favicon() -> HttpResponse {
    HttpResponse::Ok()
        .content_type(MARK.content_type)
        .insert_header((header::CACHE_CONTROL, "public, max-age=86400"))
        .body(MARK.body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fingerprint_follows_the_content() {
        let before = fingerprint(b"body { color: black }");
        assert_eq!(before.len(), 16);
        assert!(before.chars().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(before, fingerprint(b"body { color: black }"), "stable for the same content");
        assert_ne!(before, fingerprint(b"body { color: white }"), "changes with the content");
    }

    #[test]
    fn the_urls_name_the_current_content() {
        let css = format!("/static/app.{}.css", fingerprint(include_bytes!("../../static/css/app.css")));
        let js = format!("/static/app.{}.js", fingerprint(include_bytes!("../../static/js/app.js")));
        assert_eq!(css_url(), css);
        assert_eq!(js_url(), js);
        let mark = format!("/static/mark.{}.svg", fingerprint(include_bytes!("../../static/img/mark.svg")));
        assert_eq!(mark_url(), mark);
    }
}
