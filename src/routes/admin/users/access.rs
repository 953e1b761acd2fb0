//! Grant or revoke a user's API key access: the confirmation, then the change. The texts are in
//! templates/admin/users/access.txt.

use actix_web::{HttpResponse, get, post, web};
use askama::Template;
use serde::Deserialize;

use super::{Confirmation, ReturnQuery, UserPath, load_user, return_path, text};
use crate::{
    auth::session::{self, FlashLevel},
    error::{AppError, AppResult},
    routes::extract::HtmlForm,
    services::users,
    state::AppState,
    views::redirect,
};

/// What is said about granting (`grant`) or revoking access for the user called `name`.
#[derive(Template)]
#[template(path = "admin/users/access.txt", blocks = ["heading", "message", "warning", "done"])]
struct Texts<'a> {
    grant: bool,
    name: &'a str,
    /// What they could put on keys ("any API action", a list, "no API action"); only the
    /// question of a grant says it.
    actions: &'a str,
}

#[derive(Debug, Deserialize)]
pub struct ToggleForm {
    #[serde(default)]
    grant: String,
    #[serde(default)]
    return_to: String,
}

#[get("/admin/users/{id}/access")]
pub async fn access_form(
    UserPath { who: manager, id }: UserPath,
    state: web::Data<AppState>,
    query: web::Query<ReturnQuery>,
) -> AppResult<HttpResponse> {
    let user = load_user(&state, &manager, id, |allowed, user| {
        allowed.sensitive && (user.is_admin || allowed.key_access_switch(user))
    })
    .await?;
    if user.is_admin {
        return Err(AppError::Conflict("Administrators always have API key access.".into()));
    }
    let grant = !user.api_key_access;
    let subject = user.clone();
    let actions = state.db.run(move |conn| users::key_actions(conn, &subject)).await?;
    let described = actions.describe();
    let texts = Texts { grant, name: &user.display_name, actions: &described };
    let confirmation = Confirmation {
        heading: text(&texts.as_heading())?,
        message: text(&texts.as_message())?,
        action: "access",
        button: if grant { "Grant access" } else { "Revoke access" },
        danger: !grant,
        hidden: vec![("grant", if grant { "1" } else { "0" }.into())],
        note: if grant && actions.is_nothing() { Some(text(&texts.as_warning())?) } else { None },
    };
    confirmation.render(&manager, user, &query)
}

#[post("/admin/users/{id}/access")]
pub async fn access(
    UserPath { who: manager, id }: UserPath,
    state: web::Data<AppState>,
    form: HtmlForm<ToggleForm>,
) -> AppResult<HttpResponse> {
    let form = form.into_inner();
    let grant = match form.grant.as_str() {
        "1" => true,
        "0" => false,
        _ => return Err(AppError::BadRequest("Say whether to grant or revoke access.".into())),
    };
    let user = manager
        .change(&state, move |conn, actor, organization| {
            users::set_api_key_access(conn, actor, organization, id, grant)
        })
        .await?;
    let done = text(&Texts { grant, name: &user.display_name, actions: "" }.as_done())?;
    session::flash(&manager.0.session, FlashLevel::Success, done);
    Ok(redirect(&return_path(&form.return_to, id)))
}
