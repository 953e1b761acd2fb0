//! Create a user: the form, its submission, and the page that shows a one-time set-password
//! link (also used by `password` when a reset sends a new link).

use actix_web::{HttpRequest, HttpResponse, get, http::StatusCode, post, web};
use askama::Template;

use super::{BASE, UserForm, UserManager, render_form};
use crate::{
    auth::{
        csrf::SiteOrigin,
        session::{self, FlashLevel},
    },
    domain::{Capability, NewPassword},
    error::{AppError, AppResult, FieldErrors},
    routes::extract::HtmlForm,
    services::users::{self, CreateUser},
    state::AppState,
    views::{PageContext, redirect, render},
};

#[get("/admin/users/new")]
pub async fn new_form(manager: UserManager, state: web::Data<AppState>) -> AppResult<HttpResponse> {
    let values = UserForm { password_mode: "link".into(), ..UserForm::default() };
    render_form(&manager, &state, None, values, FieldErrors::new(), StatusCode::OK).await
}

#[derive(Template)]
#[template(path = "admin/users/link.html")]
struct LinkPage {
    ctx: PageContext,
    heading: String,
    email: String,
    link: String,
    hours: i64,
    done_href: String,
}

/// The page that shows a set-password link, once (no cache may keep it).
pub(super) fn link_response(
    manager: &UserManager,
    req: &HttpRequest,
    heading: String,
    email: String,
    token: &str,
) -> AppResult<HttpResponse> {
    // The configured public URL when there is one: a link must not follow whatever `Host`
    // the request carried.
    let origin = match req.app_data::<web::Data<SiteOrigin>>() {
        Some(site) => site.for_request(&req.connection_info()),
        None => {
            let info = req.connection_info();
            format!("{}://{}", info.scheme(), info.host())
        }
    };
    let link = format!("{origin}/password/{token}");
    let ctx = manager.context(&heading)?;
    render(&LinkPage { ctx, heading, email, link, hours: users::LINK_LIFETIME_HOURS, done_href: BASE.into() })
}

#[post("/admin/users")]
pub async fn create(
    manager: UserManager,
    req: HttpRequest,
    state: web::Data<AppState>,
    form: HtmlForm<UserForm>,
) -> AppResult<HttpResponse> {
    let values = form.into_inner();
    let mut errors = FieldErrors::new();
    let by_link = values.password_mode != "password";
    let password = if by_link { None } else { errors.take("password", NewPassword::parse(&values.password)) };
    let role_ids = values.role_ids();
    // The service refuses these too; refusing here first spares a password hash.
    if (values.is_admin.is_some() || !role_ids.is_empty()) && !manager.can.allows(Capability::Administer) {
        return Err(AppError::Forbidden);
    }
    // A new administrator is a grant of administrator rights (sudo mode).
    if values.is_admin.is_some() {
        manager.0.require_recent(&format!("{BASE}/new"))?;
    }
    let hash = match (&password, errors.is_empty()) {
        (Some(password), true) => Some(state.passwords.hash(password.clone()).await?),
        _ => None,
    };
    let actor = manager.0.actor();
    let organization_id = manager.0.organization.id;
    let input = CreateUser {
        organization_id,
        email: values.email.clone(),
        display_name: values.display_name.clone(),
        password_hash: hash,
        is_admin: values.is_admin.is_some(),
        api_key_access: values.api_key_access.is_some(),
        role_ids,
    };
    let result = if errors.is_empty() {
        state
            .db
            .transaction(move |conn| {
                let user = users::create(conn, &actor, input)?;
                let token = if by_link {
                    Some(users::issue_password_link(conn, &actor, organization_id, user.id)?)
                } else {
                    None
                };
                Ok((user, token))
            })
            .await
    } else {
        Err(AppError::Invalid(errors))
    };
    match result {
        Ok((user, Some(token))) => {
            session::flash(&manager.0.session, FlashLevel::Success, format!("Created {}.", user.email));
            link_response(&manager, &req, format!("{} can now set a password", user.display_name), user.email, &token)
        }
        Ok((user, None)) => {
            session::flash(
                &manager.0.session,
                FlashLevel::Success,
                format!("Created {} with the password you chose.", user.email),
            );
            Ok(redirect(BASE))
        }
        Err(AppError::Invalid(errors)) => {
            let values = UserForm { password: String::new(), ..values };
            render_form(&manager, &state, None, values, errors, StatusCode::UNPROCESSABLE_ENTITY).await
        }
        Err(e) => Err(e),
    }
}
