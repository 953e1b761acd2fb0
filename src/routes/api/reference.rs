//! The human-readable API reference at `/api/docs/`: Swagger UI rendering
//! `/api/v1/openapi.json`. Swagger UI's own files come from the `utoipa-swagger-ui` crate,
//! which vendors them and compiles them into the binary; the page and its initializer are
//! Keyward's (`static/api-docs/`), with no inline script or style, so the page runs under the
//! application's strict Content-Security-Policy like every other page.

use std::sync::{Arc, LazyLock};

use actix_web::{HttpResponse, get, http::header, web};
use utoipa_swagger_ui::Config;

use crate::error::AppError;

/// Where the page is.
pub const PATH: &str = "/api/docs/";

const PAGE: &str = include_str!("../../../static/api-docs/index.html");
const INITIALIZER: &str = include_str!("../../../static/api-docs/keyward-reference.js");

/// Swagger UI's files, but for its own page and initializer (replaced by Keyward's above).
const SWAGGER_UI_FILES: [&str; 3] = ["swagger-ui.css", "index.css", "swagger-ui-bundle.js"];

/// `utoipa_swagger_ui::serve` needs one; it only goes into the initializer, not served here.
static CONFIG: LazyLock<Arc<Config<'static>>> = LazyLock::new(|| Arc::new(Config::new(["/api/v1/openapi.json"])));

/// `/api/docs` without the slash: the page's files are relative to the directory.
#[get("/api/docs")]
pub async fn redirect() -> HttpResponse {
    HttpResponse::PermanentRedirect().insert_header((header::LOCATION, PATH)).finish()
}

/// The page (`/api/docs/`) and its files.
#[get("/api/docs/{file:[^/]*}")]
pub async fn serve(file: web::Path<String>) -> Result<HttpResponse, AppError> {
    let file = file.into_inner();
    // The page and the initializer say which document to load: never cached (the global
    // `no-store`), like pages.
    match file.as_str() {
        "" | "index.html" => return Ok(HttpResponse::Ok().content_type("text/html; charset=utf-8").body(PAGE)),
        "keyward-reference.js" => {
            return Ok(HttpResponse::Ok().content_type("text/javascript; charset=utf-8").body(INITIALIZER));
        }
        _ => {}
    }
    if !SWAGGER_UI_FILES.contains(&file.as_str()) {
        return Err(AppError::NotFound);
    }
    let found = utoipa_swagger_ui::serve(&file, CONFIG.clone())
        .map_err(|e| AppError::Internal(format!("API reference: {e}")))?
        .ok_or(AppError::NotFound)?;
    // Swagger UI's files under fixed names: cached for a day, like the favicon, so that a
    // release's new Swagger UI reaches everyone within a day.
    Ok(HttpResponse::Ok()
        .content_type(found.content_type)
        .insert_header((header::CACHE_CONTROL, "public, max-age=86400"))
        .body(found.bytes.into_owned()))
}
