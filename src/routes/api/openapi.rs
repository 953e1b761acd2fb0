//! `GET /api/v1/openapi.json`: the OpenAPI 3.1 description of the API.

use actix_web::{HttpResponse, get};

const DOCUMENT: &str = include_str!("openapi.json");

#[get("/openapi.json")]
pub async fn document() -> HttpResponse {
    HttpResponse::Ok().content_type("application/json").body(DOCUMENT)
}
