//! The routing table: every URL of the application, and the middleware of each part.
//!
//! - `/healthz`, `/readyz`, `/static/…`, `/favicon.ico`: no session.
//! - `/metrics`: no session, a bearer token; registered (in `startup`) only when
//!   `KEYWARD_METRICS_TOKEN` is set, so that otherwise it is an unknown page like any other.
//! - `/api/v1/…`: the JSON API for integrations and platform services; no session, no CSRF.
//! - `/api/docs/…`: the API's reference page; no session.
//! - everything else: browser pages with server-side sessions and CSRF protection.

pub mod account;
pub mod admin;
pub mod api;
pub mod extract;
pub mod health;
pub mod keys;
pub mod metrics;
pub mod passkeys;
pub mod password;
pub mod saved;
pub mod security;
pub mod session;
pub mod staff;
pub mod static_files;
pub mod token_pages;

use actix_web::web;

use crate::error::AppError;

/// Routes that need no session.
pub fn configure_public(cfg: &mut web::ServiceConfig) {
    // The API first: the verification path should not be matched against other patterns.
    cfg.configure(api::configure)
        .service(api::reference::redirect)
        .service(api::reference::serve)
        .service(health::healthz)
        .service(health::readyz)
        .service(static_files::serve)
        .service(static_files::favicon);
}

/// The browser-facing pages (wrapped by the caller in the session middleware).
pub fn configure_pages(cfg: &mut web::ServiceConfig) {
    cfg.service(session::home)
        .service(session::login_form)
        .service(session::login)
        .service(session::logout)
        .service(session::second_factor_form)
        .service(session::second_factor)
        .configure(security::configure)
        .configure(passkeys::configure)
        .service(account::overview)
        .service(account::notifications)
        // Before `/password/{token}`, which would otherwise be asked first.
        .service(password::forgot_form)
        .service(password::forgot)
        .service(password::set_form)
        .service(password::set)
        .service(admin::overview)
        .service(admin::users::list::list)
        .service(admin::users::create::new_form)
        .service(admin::users::create::create)
        .service(admin::users::detail::detail)
        .service(admin::users::edit::edit_form)
        .service(admin::users::edit::edit)
        .service(admin::users::access::access_form)
        .service(admin::users::access::access)
        .service(admin::users::active::active_form)
        .service(admin::users::factors::reset_form)
        .service(admin::users::factors::reset)
        .service(admin::users::active::set_active)
        .service(admin::users::password::password_form)
        .service(admin::users::password::reset_password)
        .service(admin::roles::list)
        .service(admin::roles::new_form)
        .service(admin::roles::create)
        .service(admin::roles::edit_form)
        .service(admin::roles::edit)
        .service(admin::roles::delete_form)
        .service(admin::roles::delete)
        .service(admin::assets::list)
        .service(admin::assets::new_asset)
        .service(admin::assets::create_asset)
        .service(admin::assets::new_group)
        .service(admin::assets::create_group)
        .service(admin::assets::edit_group_form)
        .service(admin::assets::edit_group)
        .service(admin::assets::delete_group_form)
        .service(admin::assets::delete_group)
        .service(admin::assets::edit_asset_form)
        .service(admin::assets::edit_asset)
        .service(admin::assets::delete_asset_form)
        .service(admin::assets::delete_asset)
        .service(admin::api_access::list)
        .service(admin::api_access::new_form)
        .service(admin::api_access::create)
        .service(admin::api_access::revoke_form)
        .service(admin::api_access::revoke)
        .service(admin::audit::list)
        .service(admin::audit::export)
        .service(admin::policy::show)
        .service(admin::policy::update)
        .service(admin::notifications::list)
        .service(admin::webhooks::list)
        .service(admin::webhooks::new_form)
        .service(admin::webhooks::create)
        .service(admin::webhooks::detail)
        .service(admin::webhooks::send_test)
        .service(admin::webhooks::enable)
        .service(admin::webhooks::disable)
        .service(admin::webhooks::rotate_form)
        .service(admin::webhooks::rotate)
        .service(admin::webhooks::delete_form)
        .service(admin::webhooks::delete)
        .service(staff::notifications::list)
        .service(staff::overview)
        .service(staff::providers::list)
        .service(staff::providers::new_form)
        .service(staff::providers::select)
        .service(staff::providers::create)
        .service(staff::providers::detail)
        .service(staff::providers::rename_form)
        .service(staff::providers::rename)
        .service(staff::provider_tokens::list)
        .service(staff::provider_tokens::new_form)
        .service(staff::provider_tokens::create)
        .service(staff::provider_tokens::revoke_form)
        .service(staff::provider_tokens::revoke)
        .service(staff::organizations::list)
        .service(staff::organizations::detail)
        .service(staff::organizations::user_list)
        .service(staff::organizations::deactivate_form)
        .service(staff::organizations::deactivate)
        .service(staff::organizations::refuse_create)
        .service(staff::organizations::refuse_rekey)
        .service(staff::actions::list)
        .service(staff::actions::new_form)
        .service(staff::actions::create)
        .service(staff::actions::edit_form)
        .service(staff::actions::edit)
        .service(staff::actions::retire_form)
        .service(staff::actions::retire)
        .service(staff::accounts::list)
        .service(staff::accounts::new_form)
        .service(staff::accounts::create)
        .service(staff::accounts::active_form)
        .service(staff::accounts::reset_factor_form)
        .service(staff::accounts::reset_factor)
        .service(staff::accounts::set_active)
        .configure(|cfg| keys::configure::<keys::OwnKeys>(cfg, "/account/keys"))
        .configure(|cfg| keys::configure::<keys::OrganizationKeys>(cfg, "/admin/keys"))
        .configure(|cfg| keys::configure_create::<keys::UserKeys>(cfg, "/admin/users/{user_id}/keys"))
        .configure(|cfg| keys::configure::<keys::ProviderKeys>(cfg, "/staff/providers/{provider_id}/keys"));
}

/// Any unknown page: the HTML 404.
pub async fn not_found() -> Result<actix_web::HttpResponse, AppError> {
    Err(AppError::NotFound)
}
