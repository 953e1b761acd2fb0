//! The key pages (list, create and show once, detail, rename, edit, deactivate, reactivate,
//! re-key, end grace, delete), written once and mounted in every key area.

pub mod area;
mod confirm;
mod create;
mod detail;
mod edit;
mod flow;
pub mod form;
mod list;
mod rekey;
mod rename;
pub mod submitted;
pub mod usage;
pub mod view;

use actix_web::web;

pub use area::{KeyArea, OrganizationKeys, OwnKeys, ProviderKeys, UserKeys};
use confirm::Confirmed;

/// Mounts the key pages of area `A` under `base` (e.g. `/account/keys`).
pub fn configure<A: KeyArea>(cfg: &mut web::ServiceConfig, base: &str) {
    let key = format!("{base}/{{public_id}}");
    cfg.service(
        web::resource(base.to_string())
            .route(web::get().to(list::list::<A>))
            .route(web::post().to(create::create::<A>)),
    )
    .service(web::resource(format!("{base}/new")).route(web::get().to(create::new_form::<A>)))
    .service(web::resource(key.clone()).route(web::get().to(detail::detail::<A>)))
    .service(
        web::resource(format!("{key}/rename"))
            .route(web::get().to(rename::rename_form::<A>))
            .route(web::post().to(rename::rename::<A>)),
    )
    .service(
        web::resource(format!("{key}/edit"))
            .route(web::get().to(edit::edit_form::<A>))
            .route(web::post().to(edit::edit::<A>)),
    )
    .service(
        web::resource(format!("{key}/rekey"))
            .route(web::get().to(rekey::rekey_form::<A>))
            .route(web::post().to(rekey::rekey::<A>)),
    );
    for which in [Confirmed::Deactivate, Confirmed::Reactivate, Confirmed::EndGrace, Confirmed::Delete] {
        cfg.service(
            web::resource(format!("{key}/{}", which.slug()))
                .route(
                    web::get()
                        .to(move |area: A, req, state, query| confirm::confirm_form(area, req, state, query, which)),
                )
                .route(
                    web::post().to(move |area: A, req, state, form| confirm::confirmed(area, req, state, form, which)),
                ),
        );
    }
}

/// Mounts only the create dialog of area `A` (`{base}/new`, posting to `base`): for areas
/// whose keys are listed and managed elsewhere.
pub fn configure_create<A: KeyArea>(cfg: &mut web::ServiceConfig, base: &str) {
    cfg.service(web::resource(base.to_string()).route(web::post().to(create::create::<A>)))
        .service(web::resource(format!("{base}/new")).route(web::get().to(create::new_form::<A>)));
}
