//! Editing a key's settings.

use actix_web::{HttpResponse, web};

use crate::{
    auth::session::{self, FlashLevel},
    error::{AppError, AppResult, FieldErrors},
    routes::{
        extract::HtmlForm,
        keys::{
            area::KeyArea,
            form::{self},
            submitted::{KeyForm, Parsed},
        },
    },
    services::keys::{KeyOp, OwnerContext, lifecycle},
    state::AppState,
    views::{redirect, render},
};

use super::create::{FormPage, form_again};
use super::flow::{KeyDialog, KeyPath, not_blocked, perform, return_path, visible_key};

pub async fn edit_form<A: KeyArea>(dialog: KeyDialog<A>) -> AppResult<HttpResponse> {
    let (key, detail_href, return_to) = dialog.open(KeyOp::Edit).await?;
    let KeyDialog { area, state, .. } = dialog;
    let actor = area.actor();
    let form = state
        .db
        .run(move |conn| {
            let owner = OwnerContext::of_key(conn, &key)?;
            let values = form::edit_values(conn, &key, return_to)?;
            form::build(conn, &actor, &owner, Some(&key), values, FieldErrors::new(), format!("{detail_href}/edit"))
        })
        .await?;
    let heading = format!("Edit {}", form.values.name);
    let ctx = area.context(&heading)?;
    let cancel_href = form.values.return_to.clone();
    render(&FormPage { ctx, heading, cancel_href, form })
}

pub async fn edit<A: KeyArea>(
    area: A,
    KeyPath(public_id): KeyPath,
    state: web::Data<AppState>,
    form: HtmlForm<KeyForm>,
) -> AppResult<HttpResponse> {
    not_blocked(&area)?;
    let mut values = form.into_inner();
    let actor = area.actor();
    let Parsed { value: input, mut errors } = values.parse_settings();
    let result = perform(&state, &area, KeyOp::Edit, &public_id, move |conn, at| {
        if errors.is_empty() {
            return lifecycle::update(conn, &actor, at, input);
        }
        let key = lifecycle::visible(conn, &actor, at, KeyOp::Edit)?;
        let owner = OwnerContext::of_key(conn, &key)?;
        errors.extend(lifecycle::input_errors(conn, &actor, &owner, input)?);
        Err(AppError::Invalid(errors))
    })
    .await;
    let detail_href = format!("{}/{public_id}", area.base());
    match result {
        Ok(key) => {
            session::flash(area.session(), FlashLevel::Success, format!("Saved the changes to \"{}\".", key.name));
            Ok(redirect(&return_path(&area, &values.return_to, detail_href)))
        }
        Err(AppError::Invalid(errors)) => {
            let key = visible_key(&state, &area, public_id.clone(), KeyOp::Edit).await?;
            values.name = key.name;
            values.return_to = return_path(&area, &values.return_to, detail_href);
            form_again(&area, &state, Some(public_id), values, errors).await
        }
        Err(e) => Err(e),
    }
}
