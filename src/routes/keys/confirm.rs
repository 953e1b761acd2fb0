//! The confirmed changes: deactivate, reactivate, end grace, delete.

use actix_web::{HttpResponse, web};
use chrono::Utc;
use serde::Deserialize;

use crate::{
    auth::session::{self, FlashLevel},
    db::models::ApiKey,
    error::{AppError, AppResult},
    routes::{extract::HtmlForm, keys::area::KeyArea},
    services::keys::{KeyOp, lifecycle},
    state::AppState,
    views::{confirm::ConfirmPage, redirect, render},
};

use super::flow::{KeyPath, ReturnQuery, not_blocked, perform, return_path, visible_key};

#[derive(Debug, Deserialize)]
pub struct ConfirmForm {
    #[serde(default)]
    return_to: String,
    #[serde(default)]
    reason: String,
}

/// What each confirmed operation says and does.
#[derive(Debug, Clone, Copy)]
pub enum Confirmed {
    Deactivate,
    Reactivate,
    EndGrace,
    Delete,
}

impl Confirmed {
    fn op(self) -> KeyOp {
        match self {
            Confirmed::Deactivate => KeyOp::Deactivate,
            Confirmed::Reactivate => KeyOp::Reactivate,
            Confirmed::EndGrace => KeyOp::EndGrace,
            Confirmed::Delete => KeyOp::Delete,
        }
    }

    pub fn slug(self) -> &'static str {
        match self {
            Confirmed::Deactivate => "deactivate",
            Confirmed::Reactivate => "reactivate",
            Confirmed::EndGrace => "end-grace",
            Confirmed::Delete => "delete",
        }
    }

    fn page(self, key: &ApiKey) -> (String, String, Option<String>, &'static str, bool) {
        let name = &key.name;
        match self {
            Confirmed::Deactivate => (
                format!("Deactivate \"{name}\"?"),
                "Integrations using this key stop working at once. You can reactivate it later.".into(),
                None,
                "Deactivate key",
                true,
            ),
            Confirmed::Reactivate => {
                let expiry = match key.expires_at {
                    Some(at) if at <= Utc::now() => Some(format!(
                        "This key expired on {}: reactivating it will not make it work.",
                        at.format("%Y-%m-%d")
                    )),
                    Some(at) => Some(format!(
                        "It still expires on {} (reactivation never extends the expiry).",
                        at.format("%Y-%m-%d")
                    )),
                    None => None,
                };
                (
                    format!("Reactivate \"{name}\"?"),
                    "The key works again at once.".into(),
                    expiry,
                    "Reactivate key",
                    false,
                )
            }
            Confirmed::EndGrace => (
                format!("End the grace period of \"{name}\" now?"),
                "The old secret stops working at once; only the new secret works.".into(),
                None,
                "End grace period",
                true,
            ),
            Confirmed::Delete => (
                format!("Delete \"{name}\"?"),
                format!(
                    "Deleting the key \"{name}\" is permanent and cannot be undone. Any integration using it \
                     stops working immediately. The audit log keeps a record that it existed."
                ),
                None,
                "Delete key",
                true,
            ),
        }
    }

    fn done(self, key: &ApiKey) -> String {
        match self {
            Confirmed::Deactivate => format!("Deactivated \"{}\": it no longer works.", key.name),
            Confirmed::Reactivate => format!("Reactivated \"{}\".", key.name),
            Confirmed::EndGrace => format!("The old secret of \"{}\" no longer works.", key.name),
            Confirmed::Delete => format!("Deleted \"{}\".", key.name),
        }
    }
}

pub async fn confirm_form<A: KeyArea>(
    area: A,
    KeyPath(public_id): KeyPath,
    state: web::Data<AppState>,
    query: web::Query<ReturnQuery>,
    which: Confirmed,
) -> AppResult<HttpResponse> {
    not_blocked(&area)?;
    let key = visible_key(&state, &area, public_id, which.op()).await?;
    let detail_href = format!("{}/{}", area.base(), key.public_id);
    let fallback = if matches!(which, Confirmed::Delete) { area.base() } else { detail_href.clone() };
    let mut return_to = return_path(&area, query.return_to.as_deref().unwrap_or_default(), fallback);
    if matches!(which, Confirmed::Delete) && return_to.starts_with(&detail_href) {
        return_to = area.base();
    }
    let (heading, message, note, button, danger) = which.page(&key);
    let ctx = area.context(&heading)?;
    render(&ConfirmPage {
        ctx,
        heading,
        message,
        note,
        detail: Some(key.masked()),
        action_url: format!("{detail_href}/{}", which.slug()),
        button,
        danger,
        with_reason: matches!(which, Confirmed::Deactivate),
        hidden: Vec::new(),
        cancel_href: query
            .return_to
            .clone()
            .map(|r| return_path(&area, &r, detail_href.clone()))
            .unwrap_or(detail_href),
        return_to,
    })
}

pub async fn confirmed<A: KeyArea>(
    area: A,
    KeyPath(public_id): KeyPath,
    state: web::Data<AppState>,
    form: HtmlForm<ConfirmForm>,
    which: Confirmed,
) -> AppResult<HttpResponse> {
    not_blocked(&area)?;
    let form = form.into_inner();
    let actor = area.actor();
    let reason = crate::domain::text::clean_text(&form.reason, 500, "reason").map_err(AppError::BadRequest)?;
    let key = perform(&state, &area, which.op(), &public_id, move |conn, at| {
        let reason = (!reason.is_empty()).then_some(reason);
        match which {
            Confirmed::Deactivate => lifecycle::set_active(conn, &actor, at, false, reason.as_deref()),
            Confirmed::Reactivate => lifecycle::set_active(conn, &actor, at, true, None),
            Confirmed::EndGrace => lifecycle::end_grace(conn, &actor, at),
            Confirmed::Delete => lifecycle::delete(conn, &actor, at),
        }
    })
    .await?;
    session::flash(area.session(), FlashLevel::Success, which.done(&key));
    let detail_href = format!("{}/{public_id}", area.base());
    let mut target = return_path(&area, &form.return_to, detail_href.clone());
    if matches!(which, Confirmed::Delete) && target.starts_with(&detail_href) {
        target = area.base();
    }
    Ok(redirect(&target))
}
