//! Re-keying: a new secret, the old one kept for the chosen grace period.

use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use crate::{
    auth::session::{self, FlashLevel},
    error::{AppError, AppResult},
    routes::{extract::HtmlForm, keys::area::KeyArea},
    secrets::random_token,
    services::keys::{
        GRACE_CHOICES, KeyOp, Rekeyed,
        lifecycle::{self, policy_of},
    },
    state::AppState,
    views::{PageContext, redirect, render, time::Stamp},
};

use super::create::{SecretPage, secret_response};
use super::flow::{KeyDialog, KeyPath, not_blocked, perform};

/// A grace period option.
pub struct GraceOption {
    pub minutes: i32,
    pub label: String,
    pub selected: bool,
}

#[derive(Template)]
#[template(path = "keys/rekey.html")]
struct RekeyPage {
    ctx: PageContext,
    action_url: String,
    cancel_href: String,
    name: String,
    masked: String,
    rotating: bool,
    options: Vec<GraceOption>,
    form_token: String,
    /// The secret this form is about to replace (see `ApiKey::secret_version`).
    secret_version: String,
    return_to: String,
}

#[derive(Debug, Deserialize)]
pub struct RekeyForm {
    #[serde(default)]
    grace_minutes: String,
    #[serde(default)]
    form_token: String,
    #[serde(default)]
    secret_version: String,
}

fn grace_options(default_minutes: i32, selected: i32) -> Vec<GraceOption> {
    let mut options: Vec<GraceOption> = GRACE_CHOICES
        .iter()
        .map(|(minutes, label)| GraceOption {
            minutes: *minutes,
            label: label.to_string(),
            selected: *minutes == selected,
        })
        .collect();
    if !GRACE_CHOICES.iter().any(|(m, _)| *m == default_minutes) {
        options.push(GraceOption {
            minutes: default_minutes,
            label: format!("{default_minutes} minutes (organization default)"),
            selected: default_minutes == selected,
        });
        options.sort_by_key(|o| o.minutes);
    }
    for option in options.iter_mut().filter(|o| o.minutes == default_minutes) {
        option.label.push_str(" — default");
    }
    options
}

pub async fn rekey_form<A: KeyArea>(dialog: KeyDialog<A>) -> AppResult<HttpResponse> {
    let (key, detail_href, return_to) = dialog.open(KeyOp::Rekey).await?;
    let policy_key = key.clone();
    let policy = dialog
        .state
        .db
        .run(move |conn| Ok(policy_of(&crate::services::keys::OwnerContext::of_key(conn, &policy_key)?)))
        .await?;
    let ctx = dialog.area.context(&format!("Re-key {}", key.name))?;
    render(&RekeyPage {
        ctx,
        action_url: format!("{detail_href}/rekey"),
        cancel_href: return_to.clone(),
        rotating: key.is_rotating_at(dialog.area.actor().now),
        masked: key.masked(),
        name: key.name.clone(),
        options: grace_options(policy.default_grace_minutes, policy.default_grace_minutes),
        form_token: random_token(24),
        secret_version: key.secret_version(),
        return_to,
    })
}

pub async fn rekey<A: KeyArea>(
    area: A,
    KeyPath(public_id): KeyPath,
    state: web::Data<AppState>,
    form: HtmlForm<RekeyForm>,
) -> AppResult<HttpResponse> {
    not_blocked(&area)?;
    let form = form.into_inner();
    let grace: i32 =
        form.grace_minutes.trim().parse().map_err(|_| AppError::BadRequest("Choose a grace period.".into()))?;
    let token = form.form_token.trim().to_string();
    let token = (token.len() >= 16 && token.len() <= 64).then_some(token);
    let seen = Some(form.secret_version.trim().to_string()).filter(|v| !v.is_empty());
    let actor = area.actor();
    let hasher = state.hasher.clone();
    let result = perform(&state, &area, KeyOp::Rekey, &public_id, move |conn, at| {
        lifecycle::rekey(conn, &actor, &hasher, at, grace, token.as_deref(), seen.as_deref())
    })
    .await?;
    match result {
        Rekeyed::New { key, secret } => {
            let ctx = area.context("The new secret")?;
            secret_response(&SecretPage {
                ctx,
                rekeyed: true,
                name: key.name.clone(),
                masked: key.masked(),
                secret: secret.expose().to_string(),
                grace_ends: Stamp::maybe(key.previous_secret_expires_at),
                done_href: format!("{}/{}", area.base(), key.public_id),
            })
        }
        Rekeyed::Replayed(key) => {
            session::flash(
                area.session(),
                FlashLevel::Info,
                format!(
                    "\"{}\" was already re-keyed. The new secret is shown only once and cannot be shown again.",
                    key.name
                ),
            );
            Ok(redirect(&format!("{}/{}", area.base(), key.public_id)))
        }
    }
}
