//! Renaming a key (its function is unaffected).

use actix_web::{HttpResponse, http::StatusCode, web};
use askama::Template;
use serde::Deserialize;

use crate::{
    auth::session::{self, FlashLevel},
    error::{AppError, AppResult, invalid},
    routes::{extract::HtmlForm, keys::area::KeyArea},
    services::keys::{KeyName, KeyOp, lifecycle},
    state::AppState,
    views::{PageContext, redirect, render, render_with_status},
};

use super::flow::{KeyDialog, KeyPath, not_blocked, perform, return_path, visible_key};

#[derive(Template)]
#[template(path = "keys/rename.html")]
struct RenamePage {
    ctx: PageContext,
    action_url: String,
    cancel_href: String,
    masked: String,
    name: String,
    error: Option<String>,
    return_to: String,
}

#[derive(Debug, Deserialize)]
pub struct RenameForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    return_to: String,
}

pub async fn rename_form<A: KeyArea>(dialog: KeyDialog<A>) -> AppResult<HttpResponse> {
    let (key, detail_href, return_to) = dialog.open(KeyOp::Rename).await?;
    let ctx = dialog.area.context(&format!("Rename {}", key.name))?;
    render(&RenamePage {
        ctx,
        action_url: format!("{detail_href}/rename"),
        cancel_href: return_to.clone(),
        masked: key.masked(),
        name: key.name,
        error: None,
        return_to,
    })
}

pub async fn rename<A: KeyArea>(
    area: A,
    KeyPath(public_id): KeyPath,
    state: web::Data<AppState>,
    form: HtmlForm<RenameForm>,
) -> AppResult<HttpResponse> {
    not_blocked(&area)?;
    let form = form.into_inner();
    let actor = area.actor();
    let result = match KeyName::parse(&form.name) {
        Ok(name) => {
            perform(&state, &area, KeyOp::Rename, &public_id, move |conn, at| lifecycle::rename(conn, &actor, at, name))
                .await
        }
        Err(message) => Err(invalid("name", message)),
    };
    let detail_href = format!("{}/{public_id}", area.base());
    let return_to = return_path(&area, &form.return_to, detail_href.clone());
    match result {
        Ok(key) => {
            session::flash(area.session(), FlashLevel::Success, format!("Renamed the key to \"{}\".", key.name));
            Ok(redirect(&return_to))
        }
        Err(AppError::Invalid(errors)) => {
            let key = visible_key(&state, &area, public_id, KeyOp::Rename).await?;
            let ctx = area.context(&format!("Rename {}", key.name))?;
            render_with_status(
                &RenamePage {
                    ctx,
                    action_url: format!("{detail_href}/rename"),
                    cancel_href: return_to.clone(),
                    masked: key.masked(),
                    name: form.name,
                    error: errors.get("name").map(str::to_string),
                    return_to,
                },
                StatusCode::UNPROCESSABLE_ENTITY,
            )
        }
        Err(e) => Err(e),
    }
}
