//! Liveness and readiness probes.

use actix_web::{HttpResponse, get, web};
use diesel::RunQueryDsl;

use crate::state::AppState;

/// The process is alive (no database involved).
#[get("/healthz")]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().content_type("application/json").body(r#"{"status":"ok"}"#)
}

/// The database is connected and migrated (see `readiness`) and answers a round trip.
#[get("/readyz")]
pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    if !state.readiness.is_ready() {
        return HttpResponse::ServiceUnavailable()
            .content_type("application/json")
            .body(r#"{"status":"unavailable","reason":"waiting for the database"}"#);
    }
    let ready = state.db.run(|conn| Ok(diesel::sql_query("SELECT 1").execute(conn)?)).await.is_ok();
    if ready {
        HttpResponse::Ok().content_type("application/json").body(r#"{"status":"ready"}"#)
    } else {
        HttpResponse::ServiceUnavailable()
            .content_type("application/json")
            .body(r#"{"status":"unavailable","reason":"database unreachable"}"#)
    }
}
