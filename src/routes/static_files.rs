//! The stylesheet and script, compiled into the binary so the server needs no files beside it.

use actix_web::{HttpResponse, get, http::header, web};

use crate::error::AppError;

const APP_CSS: &str = include_str!("../../static/css/app.css");
const APP_JS: &str = include_str!("../../static/js/app.js");

#[get("/static/{name}")]
pub async fn serve(name: web::Path<String>) -> Result<HttpResponse, AppError> {
    let (body, content_type) = match name.as_str() {
        "app.css" => (APP_CSS, "text/css; charset=utf-8"),
        "app.js" => (APP_JS, "text/javascript; charset=utf-8"),
        _ => return Err(AppError::NotFound),
    };
    Ok(HttpResponse::Ok()
        .content_type(content_type)
        .insert_header((header::CACHE_CONTROL, "public, max-age=3600"))
        .body(body))
}
