//! Editing a key's settings. `?actions=used` (or `used-30d`) opens the form with only the
//! actions the key was validly used for in the last 90 (30) days ticked: the key page's
//! least-privilege suggestion. Only the choices are prefilled; saving goes through the same
//! checks as any edit, and actions beyond the editor's power are not even offered.

use actix_web::{HttpResponse, web};
use serde::Deserialize;

use crate::{
    auth::session::{self, FlashLevel},
    error::{AppError, AppResult, FieldErrors},
    routes::{
        extract::HtmlForm,
        keys::{
            area::KeyArea,
            form::{self},
            submitted::{KeyForm, Parsed},
            usage,
        },
    },
    services::keys::{KeyOp, OwnerContext, lifecycle},
    state::AppState,
    views::{redirect, render},
};

use super::create::{FormPage, form_again};
use super::flow::{KeyDialog, KeyPath, not_blocked, perform, return_path, visible_key};

/// Which actions the edit form starts with.
#[derive(Debug, Clone, Copy, Deserialize)]
pub enum Preselect {
    /// Those validly used in the last 90 days.
    #[serde(rename = "used")]
    Used90,
    /// Those validly used in the last 30 days.
    #[serde(rename = "used-30d")]
    Used30,
}

#[derive(Debug, Default, Deserialize)]
pub struct EditQuery {
    actions: Option<Preselect>,
}

pub async fn edit_form<A: KeyArea>(dialog: KeyDialog<A>, query: web::Query<EditQuery>) -> AppResult<HttpResponse> {
    let (key, detail_href, return_to) = dialog.open(KeyOp::Edit).await?;
    let KeyDialog { area, state, .. } = dialog;
    let actor = area.actor();
    let preselect = query.into_inner().actions;
    let form = state
        .db
        .run(move |conn| {
            let owner = OwnerContext::of_key(conn, &key)?;
            let mut values = form::edit_values(conn, &key, return_to)?;
            let mut notice = None;
            if let Some(preselect) = preselect {
                let days = match preselect {
                    Preselect::Used90 => 90,
                    Preselect::Used30 => 30,
                };
                let (used, _) = usage::used_actions(conn, key.id, actor.now, days)?;
                // Only actions it may still do: narrowing, never widening.
                let granted = usage::granted_actions(conn, &key, &values.action)?;
                let keep: Vec<String> = granted.into_iter().filter(|a| used.contains(a)).collect();
                if !keep.is_empty() {
                    values.actions_mode = "selected".into();
                    values.action = keep;
                    notice = Some(format!(
                        "Only the actions this key was used for in the last {days} days are ticked. \
                         Check them, then save to narrow the key."
                    ));
                }
            }
            let mut view = form::build(
                conn,
                &actor,
                &owner,
                Some(&key),
                values,
                FieldErrors::new(),
                format!("{detail_href}/edit"),
            )?;
            view.notice = notice;
            Ok(view)
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
