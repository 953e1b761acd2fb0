//! Deactivate or reactivate a user: the confirmation, then the change. The texts are in
//! templates/admin/users/active.txt.

use actix_web::{HttpRequest, HttpResponse, get, post, web};
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

/// What is said about reactivating (`activate`) or deactivating the user called `name`.
#[derive(Template)]
#[template(path = "admin/users/active.txt", blocks = ["heading", "message", "done"])]
struct Texts<'a> {
    activate: bool,
    name: &'a str,
}

/// Whether the address asks to reactivate (else to deactivate).
fn activates(req: &HttpRequest) -> bool {
    req.match_info().get("change") == Some("reactivate")
}

#[get("/admin/users/{id}/{change:deactivate|reactivate}")]
pub async fn active_form(
    UserPath { who: manager, id }: UserPath,
    req: HttpRequest,
    state: web::Data<AppState>,
    query: web::Query<ReturnQuery>,
) -> AppResult<HttpResponse> {
    let activate = activates(&req);
    let user = load_user(&state, &manager, id, |allowed, _| allowed.sensitive).await?;
    let texts = Texts { activate, name: &user.display_name };
    let confirmation = Confirmation {
        heading: text(&texts.as_heading())?,
        message: text(&texts.as_message())?,
        action: if activate { "reactivate" } else { "deactivate" },
        button: if activate { "Reactivate" } else { "Deactivate" },
        danger: !activate,
        hidden: vec![],
        note: None,
    };
    confirmation.render(&manager, user, &query)
}

#[derive(Debug, Deserialize)]
pub struct ReturnForm {
    #[serde(default)]
    pub(super) return_to: String,
}

#[post("/admin/users/{id}/{change:deactivate|reactivate}")]
pub async fn set_active(
    UserPath { who: manager, id }: UserPath,
    req: HttpRequest,
    state: web::Data<AppState>,
    form: HtmlForm<ReturnForm>,
) -> AppResult<HttpResponse> {
    let activate = activates(&req);
    let result = manager
        .change(&state, move |conn, actor, organization| users::set_active(conn, actor, organization, id, activate))
        .await;
    let target = return_path(&form.0.return_to, id);
    match result {
        Ok(user) => {
            let done = text(&Texts { activate, name: &user.display_name }.as_done())?;
            session::flash(&manager.0.session, FlashLevel::Success, done);
            Ok(redirect(&target))
        }
        Err(AppError::Conflict(message)) => {
            session::flash(&manager.0.session, FlashLevel::Error, message);
            Ok(redirect(&target))
        }
        Err(e) => Err(e),
    }
}
