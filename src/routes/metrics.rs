//! `GET /metrics`: the Prometheus text exposition for operators, behind the bearer token
//! `KEYWARD_METRICS_TOKEN`. Registered only when the token is configured (see `startup`).

use actix_web::{
    HttpRequest, HttpResponse, get,
    http::header::{self, CacheControl, CacheDirective},
    web,
};

use crate::metrics::{CONTENT_TYPE, Exposition};

/// The token of `Authorization: Bearer <token>`, if that is how the request is authorized.
fn bearer(req: &HttpRequest) -> Option<&str> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

#[get("/metrics")]
pub async fn metrics(req: HttpRequest, exposition: web::Data<Exposition>) -> HttpResponse {
    // Compared as digests in constant time; the presented token is never logged.
    if !bearer(&req).is_some_and(|token| exposition.token.matches(token)) {
        return HttpResponse::Unauthorized()
            .insert_header((header::WWW_AUTHENTICATE, "Bearer realm=\"keyward-metrics\""))
            .insert_header(CacheControl(vec![CacheDirective::NoStore]))
            .content_type("text/plain; charset=utf-8")
            .body("A metrics token is required: Authorization: Bearer $KEYWARD_METRICS_TOKEN\n");
    }
    HttpResponse::Ok()
        .insert_header(CacheControl(vec![CacheDirective::NoStore]))
        .content_type(CONTENT_TYPE)
        .body(exposition.render())
}
