//! Creating a key, and the one page that shows a secret (also after a re-key).

use actix_web::{
    HttpResponse,
    http::{StatusCode, header},
    web,
};
use askama::Template;

use crate::{
    auth::session::{self, FlashLevel},
    error::{AppError, AppResult, FieldErrors},
    routes::{
        extract::HtmlForm,
        keys::{
            area::KeyArea,
            form::{self, KeyFormView},
            submitted::{KeyForm, NewKeyHead, Parsed},
        },
    },
    secrets::random_token,
    services::keys::{
        Created, KeyOp, NewKeyRequest,
        lifecycle::{self, KeyRef, owner_context, policy_of},
    },
    state::AppState,
    views::{PageContext, redirect, render, render_with_status, time::Stamp},
};

use super::flow::not_blocked;

#[derive(Template)]
#[template(path = "keys/form.html")]
pub(super) struct FormPage {
    pub(super) ctx: PageContext,
    pub(super) heading: String,
    pub(super) cancel_href: String,
    pub(super) form: KeyFormView,
}

pub async fn new_form<A: KeyArea>(area: A, state: web::Data<AppState>) -> AppResult<HttpResponse> {
    not_blocked(&area)?;
    area.require_recent_for_create(&format!("{}/new", area.base()))?;
    let (actor, owner, base) = (area.actor(), area.new_owner(), area.base());
    let action_url = base.clone();
    let form = state
        .db
        .run(move |conn| {
            let owner = owner_context(conn, owner)?;
            let values = form::new_values(&policy_of(&owner), actor.now.date_naive(), random_token(24), base);
            form::build(conn, &actor, &owner, None, values, FieldErrors::new(), action_url)
        })
        .await?;
    let heading = area.new_key_heading();
    let ctx = area.context(&heading)?;
    render(&FormPage { ctx, heading, cancel_href: area.return_href(), form })
}

#[derive(Template)]
#[template(path = "keys/secret.html")]
pub(super) struct SecretPage {
    pub(super) ctx: PageContext,
    pub(super) rekeyed: bool,
    pub(super) name: String,
    pub(super) masked: String,
    pub(super) secret: String,
    pub(super) grace_ends: Option<Stamp>,
    pub(super) done_href: String,
}

/// The one page that ever shows a key: no cache may keep it.
pub(super) fn secret_response(page: &SecretPage) -> AppResult<HttpResponse> {
    let mut response = render(page)?;
    response.headers_mut().insert(header::CACHE_CONTROL, header::HeaderValue::from_static("no-store, max-age=0"));
    response.headers_mut().insert(header::PRAGMA, header::HeaderValue::from_static("no-cache"));
    Ok(response)
}

/// Shows the form again with the user's input and the errors (422).
pub(super) async fn form_again<A: KeyArea>(
    area: &A,
    state: &AppState,
    key_public_id: Option<String>,
    values: KeyForm,
    errors: FieldErrors,
) -> AppResult<HttpResponse> {
    let actor = area.actor();
    let base = area.base();
    let (new_owner, scope) = (area.new_owner(), area.scope());
    let form = state
        .db
        .run(move |conn| match key_public_id {
            Some(public_id) => {
                let at = KeyRef { scope, public_id: &public_id };
                let key = lifecycle::visible(conn, &actor, at, KeyOp::Edit)?;
                let owner = crate::services::keys::OwnerContext::of_key(conn, &key)?;
                let url = format!("{base}/{public_id}/edit");
                form::build(conn, &actor, &owner, Some(&key), values, errors, url)
            }
            None => {
                let owner = owner_context(conn, new_owner)?;
                form::build(conn, &actor, &owner, None, values, errors, base)
            }
        })
        .await?;
    let heading = if form.editing { format!("Edit {}", form.values.name) } else { area.new_key_heading() };
    let ctx = area.context(&heading)?;
    render_with_status(
        &FormPage { ctx, heading, cancel_href: area.return_href(), form },
        StatusCode::UNPROCESSABLE_ENTITY,
    )
}

pub async fn create<A: KeyArea>(
    area: A,
    state: web::Data<AppState>,
    form: HtmlForm<KeyForm>,
) -> AppResult<HttpResponse> {
    not_blocked(&area)?;
    area.require_recent_for_create(&format!("{}/new", area.base()))?;
    let values = form.into_inner();
    let (actor, owner_kind) = (area.actor(), area.new_owner());
    let hasher = state.hasher.clone();
    let Parsed { value: (head, input), mut errors } = values.parse_new();
    let result = state
        .db
        .transaction(move |conn| match head {
            Some(NewKeyHead { name, environment, form_token }) if errors.is_empty() => {
                let request = NewKeyRequest { owner: owner_kind, name, environment, input, form_token };
                lifecycle::create(conn, &actor, &hasher, request)
            }
            _ => {
                let owner = owner_context(conn, owner_kind)?;
                errors.extend(lifecycle::new_input_errors(conn, &actor, &owner, input)?);
                Err(AppError::Invalid(errors))
            }
        })
        .await;
    if let Err(AppError::Forbidden) = &result {
        let actor = area.actor();
        state.db.transaction(move |conn| lifecycle::record_denied_create(conn, &actor)).await?;
    }
    match result {
        Ok(Created::New { key, secret }) => {
            let ctx = area.context("Your new API key")?;
            secret_response(&SecretPage {
                ctx,
                rekeyed: false,
                name: key.name.clone(),
                masked: key.masked(),
                secret: secret.expose().to_string(),
                grace_ends: None,
                done_href: area.return_href(),
            })
        }
        Ok(Created::Replayed(key)) => {
            session::flash(
                area.session(),
                FlashLevel::Info,
                format!(
                    "The key \"{}\" was already created. Its secret is shown only once and cannot be shown again.",
                    key.name
                ),
            );
            Ok(redirect(&area.key_href(&key.public_id)))
        }
        Err(AppError::Invalid(errors)) => form_again(&area, &state, None, values, errors).await,
        Err(e) => Err(e),
    }
}
