//! The confirmed changes: deactivate, reactivate, end grace, delete.

use actix_web::{HttpResponse, web};
use askama::Template;
use chrono::{DateTime, Utc};
use serde::Deserialize;

use crate::{
    auth::session::{self, FlashLevel},
    db::models::ApiKey,
    error::{AppError, AppResult},
    routes::{extract::HtmlForm, keys::area::KeyArea},
    services::keys::{KeyOp, lifecycle},
    state::AppState,
    views::{confirm::ConfirmPage, redirect, render, text},
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

    /// The confirmation's heading, message, note, button and whether it is dangerous. The
    /// texts are in templates/keys/confirm.txt.
    fn page(self, key: &ApiKey, now: DateTime<Utc>) -> AppResult<(String, String, Option<String>, &'static str, bool)> {
        let texts = Texts::of(self, key, now);
        let note = text(&texts.as_note())?;
        let (button, danger) = match self {
            Confirmed::Deactivate => ("Deactivate key", true),
            Confirmed::Reactivate => ("Reactivate key", false),
            Confirmed::EndGrace => ("End grace period", true),
            Confirmed::Delete => ("Delete key", true),
        };
        Ok((text(&texts.as_heading())?, text(&texts.as_message())?, (!note.is_empty()).then_some(note), button, danger))
    }

    /// The flash message once it is done.
    fn done(self, key: &ApiKey, now: DateTime<Utc>) -> AppResult<String> {
        text(&Texts::of(self, key, now).as_done())
    }
}

/// What is said about confirming `op` on the key called `name`.
#[derive(Template)]
#[template(path = "keys/confirm.txt", blocks = ["heading", "message", "note", "done"])]
struct Texts<'a> {
    op: &'static str,
    name: &'a str,
    expired_on: Option<String>,
    expires_on: Option<String>,
}

impl<'a> Texts<'a> {
    /// `now` (the application's clock) decides whether the key has expired.
    fn of(which: Confirmed, key: &'a ApiKey, now: DateTime<Utc>) -> Self {
        let date = |at: DateTime<Utc>| at.format("%Y-%m-%d").to_string();
        let expired = key.expires_at.is_some_and(|at| at <= now);
        Texts {
            op: which.slug(),
            name: &key.name,
            expired_on: key.expires_at.filter(|_| expired).map(date),
            expires_on: key.expires_at.filter(|_| !expired).map(date),
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
    let (heading, message, note, button, danger) = which.page(&key, state.clock.now())?;
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
    session::flash(area.session(), FlashLevel::Success, which.done(&key, state.clock.now())?);
    let detail_href = format!("{}/{public_id}", area.base());
    let mut target = return_path(&area, &form.return_to, detail_href.clone());
    if matches!(which, Confirmed::Delete) && target.starts_with(&detail_href) {
        target = area.base();
    }
    Ok(redirect(&target))
}
