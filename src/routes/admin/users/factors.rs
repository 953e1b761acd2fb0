//! Reset a user's second factor (support for a lost phone): the confirmation, then the
//! change. Administrators only, never on themselves (`Allowed::reset_second_factor`).

use actix_web::{HttpResponse, get, post, web};

use super::{Confirmation, ReturnQuery, UserPath, active::ReturnForm, load_user, return_path};
use crate::{
    auth::session::{self, FlashLevel},
    error::AppResult,
    services::users,
    state::AppState,
    views::redirect,
};

#[get("/admin/users/{id}/reset-second-factor")]
pub async fn reset_form(
    UserPath { who: manager, id }: UserPath,
    state: web::Data<AppState>,
    query: web::Query<ReturnQuery>,
) -> AppResult<HttpResponse> {
    let user = load_user(&state, &manager, id, |allowed, _| allowed.reset_second_factor).await?;
    let name = user.display_name.clone();
    let confirmation = Confirmation {
        heading: format!("Reset the second factor of {name}?"),
        message: format!(
            "{name}'s authenticator app, passkeys and recovery codes stop working, and {name} is signed out \
             everywhere at once. Their next sign-in asks for the password alone, or leads them to set up a new \
             second factor if the organization requires one."
        ),
        action: "reset-second-factor",
        button: "Reset second factor",
        danger: true,
        hidden: vec![],
        note: Some(
            "Make sure you are talking to the person: this is how an attacker with a stolen password would ask.".into(),
        ),
    };
    confirmation.render(&manager, user, &query)
}

#[post("/admin/users/{id}/reset-second-factor")]
pub async fn reset(
    UserPath { who: manager, id }: UserPath,
    state: web::Data<AppState>,
    form: crate::routes::extract::HtmlForm<ReturnForm>,
) -> AppResult<HttpResponse> {
    let user = manager
        .change(&state, move |conn, actor, organization| users::reset_second_factor(conn, actor, organization, id))
        .await?;
    let message = format!("Reset the second factor of {}: signed out everywhere.", user.display_name);
    session::flash(&manager.0.session, FlashLevel::Success, message);
    Ok(redirect(&return_path(&form.0.return_to, id)))
}
