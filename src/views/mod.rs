//! Page rendering: the `PageContext` every page template receives (who is signed in, the
//! navigation they may use, flash messages, the CSRF token) and `render`.

pub mod actors;
pub mod confirm;
pub mod nav;
pub mod pager;
pub mod paths;
pub mod time;
pub mod words;

use actix_session::Session;
use actix_web::{HttpResponse, http::header};
use askama::Template;

use crate::{
    auth::{
        CurrentStaff, CurrentUser,
        session::{self, Flash},
    },
    error::{AppError, AppResult},
};

pub use nav::{Nav, Section};

/// What the layout needs on every page.
#[derive(Debug, Clone)]
pub struct PageContext {
    pub title: String,
    pub csrf_token: String,
    pub flashes: Vec<Flash>,
    pub nav: Nav,
    /// The signed-in account's name and organization (or "Support"), for the header.
    pub signed_in_as: Option<String>,
    pub organization_name: Option<String>,
    /// Whose things a page or dialog is about, when its heading alone would not say (a
    /// service provider's keys): shown above the heading.
    pub subject: Option<String>,
    /// The signed-in account's own page, for the user menu (support staff have none).
    pub account_href: Option<&'static str>,
}

impl PageContext {
    /// Context for a page of a signed-in web user.
    pub fn for_user(user: &CurrentUser, title: impl Into<String>, section: Section) -> AppResult<Self> {
        Self::build(
            &user.session,
            title,
            Nav::for_user(user, section),
            Some(user.user.display_name.clone()),
            Some(user.organization.name.clone()),
            Some("/account"),
        )
    }

    /// Context for a page of a signed-in support specialist.
    pub fn for_staff(staff: &CurrentStaff, title: impl Into<String>, section: Section) -> AppResult<Self> {
        Self::build(
            &staff.session,
            title,
            Nav::for_staff(section),
            Some(staff.staff.display_name.clone()),
            Some("Platform support".into()),
            None,
        )
    }

    /// Context for a page nobody needs to be signed in for (login).
    pub fn anonymous(session: &Session, title: impl Into<String>) -> AppResult<Self> {
        Self::build(session, title, Nav::default(), None, None, None)
    }

    fn build(
        session: &Session,
        title: impl Into<String>,
        nav: Nav,
        signed_in_as: Option<String>,
        organization_name: Option<String>,
        account_href: Option<&'static str>,
    ) -> AppResult<Self> {
        Ok(Self {
            title: title.into(),
            csrf_token: session::csrf_token(session)?,
            flashes: session::take_flashes(session),
            nav,
            signed_in_as,
            organization_name,
            subject: None,
            account_href,
        })
    }

    /// This context for a page about `subject`'s things.
    pub fn about(self, subject: impl Into<String>) -> Self {
        Self { subject: Some(subject.into()), ..self }
    }
}

/// Renders `page` as an HTML response with `status`.
pub fn render_with_status(page: &impl Template, status: actix_web::http::StatusCode) -> AppResult<HttpResponse> {
    let body = page.render().map_err(|e| AppError::Internal(format!("template: {e}")))?;
    Ok(HttpResponse::build(status).content_type("text/html; charset=utf-8").body(body))
}

/// Renders `page` as a 200 HTML response.
pub fn render(page: &impl Template) -> AppResult<HttpResponse> {
    render_with_status(page, actix_web::http::StatusCode::OK)
}

/// A text template (a confirmation's sentences, a flash message) as a string.
pub fn text(template: &impl Template) -> AppResult<String> {
    template.render().map_err(|e| AppError::Internal(format!("template: {e}")))
}

/// Post/redirect/get: a 303 to `location`.
pub fn redirect(location: &str) -> HttpResponse {
    HttpResponse::SeeOther().insert_header((header::LOCATION, location)).finish()
}
