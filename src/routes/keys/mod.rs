//! The key pages (list, create and show once, detail, rename, edit, deactivate, reactivate,
//! re-key, end grace, delete), written once and mounted in every key area.

pub mod area;
pub mod form;
pub mod handlers;
pub mod view;

use actix_web::web;

pub use area::{KeyArea, OrganizationKeys, OwnKeys, ProviderKeys};
use handlers::Confirmed;

/// Mounts the key pages of area `A` under `base` (e.g. `/account/keys`).
pub fn configure<A: KeyArea>(cfg: &mut web::ServiceConfig, base: &str) {
    let key = format!("{base}/{{public_id}}");
    cfg.service(
        web::resource(base.to_string())
            .route(web::get().to(handlers::list::<A>))
            .route(web::post().to(handlers::create::<A>)),
    )
    .service(web::resource(format!("{base}/new")).route(web::get().to(handlers::new_form::<A>)))
    .service(web::resource(key.clone()).route(web::get().to(handlers::detail::<A>)))
    .service(
        web::resource(format!("{key}/rename"))
            .route(web::get().to(handlers::rename_form::<A>))
            .route(web::post().to(handlers::rename::<A>)),
    )
    .service(
        web::resource(format!("{key}/edit"))
            .route(web::get().to(handlers::edit_form::<A>))
            .route(web::post().to(handlers::edit::<A>)),
    )
    .service(
        web::resource(format!("{key}/rekey"))
            .route(web::get().to(handlers::rekey_form::<A>))
            .route(web::post().to(handlers::rekey::<A>)),
    );
    for which in [Confirmed::Deactivate, Confirmed::Reactivate, Confirmed::EndGrace, Confirmed::Delete] {
        cfg.service(
            web::resource(format!("{key}/{}", which.slug()))
                .route(
                    web::get()
                        .to(move |area: A, req, state, query| handlers::confirm_form(area, req, state, query, which)),
                )
                .route(
                    web::post().to(move |area: A, req, state, form| handlers::confirmed(area, req, state, form, which)),
                ),
        );
    }
}
