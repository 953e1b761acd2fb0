//! The key pages, generic over the [`KeyArea`] they are mounted in. Every modal flow is also a
//! standalone page: `GET …/rename` shows the form, `POST …/rename` acts and redirects (or
//! shows the form again with errors). Create and re-key answer with the secret directly, in
//! a `no-store` page, and never store it: a refresh, back or replay cannot show it again.

use actix_web::{
    HttpRequest, HttpResponse,
    http::{StatusCode, header},
    web,
};
use askama::Template;
use chrono::Utc;
use serde::Deserialize;

use crate::{
    auth::session::{self, FlashLevel},
    db::models::{
        ApiKey,
        api_key::{KeyListFilter, OwnerFilter, StateFilter},
    },
    error::{AppError, AppResult, FieldErrors},
    keys::format::is_public_id,
    routes::{
        extract::HtmlForm,
        keys::{
            area::KeyArea,
            form::{self, KeyFormView},
            view::{self, KeyDetail, KeyRow},
        },
    },
    secrets::random_token,
    services::keys::{
        Created, GRACE_CHOICES, KeyForm, KeyOp, KeySettings, NewKeyRequest, Rekeyed,
        input::{parse_environment, parse_name},
        lifecycle::{self, KeyRef, owner_context, policy_of},
    },
    state::AppState,
    views::{
        PageContext,
        confirm::ConfirmPage,
        pager::{Pager, page_index},
        redirect, render, render_with_status,
        time::Stamp,
    },
};

/// Keys per page of a list.
pub const PER_PAGE: i64 = 25;

/// The `public_id` path segment; anything that is not a public id cannot be a key.
fn public_id(req: &HttpRequest) -> AppResult<String> {
    let id = req.match_info().get("public_id").unwrap_or_default();
    if is_public_id(id) { Ok(id.to_string()) } else { Err(AppError::NotFound) }
}

/// `given` when it is a page of this area, else `fallback` (no open redirects).
fn return_path(area: &impl KeyArea, given: &str, fallback: String) -> String {
    crate::views::paths::safe_local_path(given, &area.base()).unwrap_or(fallback)
}

fn not_blocked(area: &impl KeyArea) -> AppResult<()> {
    match area.blocked_reason() {
        Some(_) => Err(AppError::Forbidden),
        None => Ok(()),
    }
}

/// Runs `work` on the key `public_id` of `area` in a transaction; a refusal on an existing
/// key is audited as a denied attempt. `work` gets the key's reference within the area's
/// scope (an administrator's Account pages reach only their own keys, a provider's pages
/// only that provider's keys).
async fn perform<T: Send + 'static>(
    state: &AppState,
    area: &impl KeyArea,
    op: KeyOp,
    public_id: &str,
    work: impl FnOnce(&mut diesel::PgConnection, KeyRef<'_>) -> AppResult<T> + Send + 'static,
) -> AppResult<T> {
    let (scope, id) = (area.scope(), public_id.to_string());
    let result = state.db.transaction(move |conn| work(conn, KeyRef { scope, public_id: &id })).await;
    if result.is_ok() {
        // This instance need not wait for its own change notice to come back.
        state.verifier.cache.invalidate(&format!("key:{public_id}"));
    }
    audit_if_denied(state, area, op, public_id, result).await
}

/// Passes `result` on; a refusal (forbidden, or not found) is first audited as a denied
/// attempt at `op` on `public_id`.
async fn audit_if_denied<T>(
    state: &AppState,
    area: &impl KeyArea,
    op: KeyOp,
    public_id: &str,
    result: AppResult<T>,
) -> AppResult<T> {
    if let Err(AppError::Forbidden | AppError::NotFound) = &result {
        let (actor, scope, public_id) = (area.actor(), area.scope(), public_id.to_string());
        let action = op.audit_action();
        state
            .db
            .transaction(move |conn| {
                lifecycle::record_denied(conn, &actor, action, KeyRef { scope, public_id: &public_id })
            })
            .await?;
    }
    result
}

/// Loads a key of this area that the actor may see (or `NotFound`), without locking it:
/// pages that only show a key or a form must not hold up changes to it.
async fn visible_key(state: &AppState, area: &impl KeyArea, public_id: String, op: KeyOp) -> AppResult<ApiKey> {
    let (actor, scope, id) = (area.actor(), area.scope(), public_id.clone());
    let result = state.db.run(move |conn| lifecycle::visible(conn, &actor, KeyRef { scope, public_id: &id }, op)).await;
    audit_if_denied(state, area, op, &public_id, result).await
}

// ---------------------------------------------------------------------------------------
// List

#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    owner: Option<String>,
    state: Option<String>,
    expiring: Option<String>,
    q: Option<String>,
    page: Option<i64>,
}

/// The list's filter bar.
pub struct ListView {
    pub owner: String,
    pub state: String,
    pub expiring: bool,
    pub q: String,
    pub filtered: bool,
}

#[derive(Template)]
#[template(path = "keys/list.html")]
struct ListPage {
    ctx: PageContext,
    base: String,
    title: &'static str,
    description: &'static str,
    shows_owner: bool,
    blocked: Option<String>,
    rows: Vec<KeyRow>,
    list: ListView,
    pager: Pager,
}

pub async fn list<A: KeyArea>(
    area: A,
    state: web::Data<AppState>,
    query: web::Query<ListQuery>,
) -> AppResult<HttpResponse> {
    let ctx = area.context(area.title())?;
    let base = area.base();
    let query = query.into_inner();
    let blocked = area.blocked_reason();
    let page = page_index(query.page, PER_PAGE);
    let filter = KeyListFilter {
        owner: match query.owner.as_deref() {
            Some("organization") if area.shows_owner() => OwnerFilter::Organization,
            Some("personal") if area.shows_owner() => OwnerFilter::Personal,
            _ => OwnerFilter::Any,
        },
        state: match query.state.as_deref() {
            Some("active") => StateFilter::Active,
            Some("inactive") => StateFilter::Inactive,
            Some("expired") => StateFilter::Expired,
            _ => StateFilter::Any,
        },
        expiring_soon: query.expiring.is_some(),
        search: query.q.as_deref().map(crate::db::search::term),
        page,
        per_page: PER_PAGE,
    };
    let (rows, total) = if blocked.is_some() {
        (Vec::new(), 0)
    } else {
        let scope = area.scope();
        let row_base = base.clone();
        let filter = filter.clone();
        state
            .db
            .run(move |conn| {
                let (keys, total) = ApiKey::list(conn, scope, &filter)?;
                Ok((view::rows(conn, &keys, &row_base)?, total))
            })
            .await?
    };
    let list = ListView {
        owner: query.owner.clone().unwrap_or_default(),
        state: query.state.clone().unwrap_or_default(),
        expiring: filter.expiring_soon,
        q: query.q.clone().unwrap_or_default(),
        filtered: filter.owner != OwnerFilter::Any
            || filter.state != StateFilter::Any
            || filter.expiring_soon
            || filter.search.as_deref().is_some_and(|s| !s.is_empty()),
    };
    let params = [
        ("owner", list.owner.as_str()),
        ("state", list.state.as_str()),
        ("expiring", query.expiring.as_deref().unwrap_or_default()),
        ("q", list.q.as_str()),
    ];
    let pager = Pager::new(&base, &params, page, PER_PAGE, rows.len(), total);
    render(&ListPage {
        pager,
        ctx,
        base,
        title: area.title(),
        description: area.description(),
        shows_owner: area.shows_owner(),
        blocked,
        rows,
        list,
    })
}

// ---------------------------------------------------------------------------------------
// Create and show once

#[derive(Template)]
#[template(path = "keys/form.html")]
struct FormPage {
    ctx: PageContext,
    heading: String,
    cancel_href: String,
    form: KeyFormView,
}

#[derive(Debug, Default, Deserialize)]
pub struct ReturnQuery {
    return_to: Option<String>,
}

pub async fn new_form<A: KeyArea>(area: A, state: web::Data<AppState>) -> AppResult<HttpResponse> {
    not_blocked(&area)?;
    let (actor, owner, base) = (area.actor(), area.new_owner(), area.base());
    let action_url = base.clone();
    let form = state
        .db
        .run(move |conn| {
            let owner = owner_context(conn, owner)?;
            let values = form::new_values(&policy_of(&owner), random_token(24), base);
            form::build(conn, &actor, &owner, None, values, FieldErrors::new(), action_url)
        })
        .await?;
    let ctx = area.context("New API key")?;
    render(&FormPage { ctx, heading: "New API key".into(), cancel_href: area.base(), form })
}

#[derive(Template)]
#[template(path = "keys/secret.html")]
struct SecretPage {
    ctx: PageContext,
    rekeyed: bool,
    name: String,
    masked: String,
    secret: String,
    grace_ends: Option<Stamp>,
    done_href: String,
}

/// The one page that ever shows a key: no cache may keep it.
fn secret_response(page: &SecretPage) -> AppResult<HttpResponse> {
    let mut response = render(page)?;
    response.headers_mut().insert(header::CACHE_CONTROL, header::HeaderValue::from_static("no-store, max-age=0"));
    response.headers_mut().insert(header::PRAGMA, header::HeaderValue::from_static("no-cache"));
    Ok(response)
}

/// Shows the form again with the user's input and the errors (422).
async fn form_again<A: KeyArea>(
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
    let heading = if form.editing { format!("Edit {}", form.values.name) } else { "New API key".into() };
    let ctx = area.context(&heading)?;
    render_with_status(&FormPage { ctx, heading, cancel_href: area.base(), form }, StatusCode::UNPROCESSABLE_ENTITY)
}

pub async fn create<A: KeyArea>(
    area: A,
    state: web::Data<AppState>,
    form: HtmlForm<KeyForm>,
) -> AppResult<HttpResponse> {
    not_blocked(&area)?;
    let values = form.into_inner();
    let (actor, owner_kind) = (area.actor(), area.new_owner());
    let submitted = values.clone();
    let hasher = state.hasher.clone();
    let result = state
        .db
        .transaction(move |conn| {
            let owner = owner_context(conn, owner_kind)?;
            let policy = policy_of(&owner);
            let mut errors = FieldErrors::new();
            let name = errors.take("name", parse_name(&submitted.name));
            let environment = errors.take("environment", parse_environment(&submitted.environment));
            let settings = KeySettings::from_form(conn, &submitted, &owner, &policy, &mut errors)?;
            errors.into_result()?;
            let token = submitted.form_token.trim();
            let request = NewKeyRequest {
                owner: owner_kind,
                name: name.expect("validated"),
                environment: environment.expect("validated"),
                settings: settings.expect("validated"),
                form_token: (token.len() >= 16 && token.len() <= 64).then(|| token.to_string()),
            };
            lifecycle::create(conn, &actor, &hasher, request)
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
                done_href: area.base(),
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
            Ok(redirect(&format!("{}/{}", area.base(), key.public_id)))
        }
        Err(AppError::Invalid(errors)) => form_again(&area, &state, None, values, errors).await,
        Err(e) => Err(e),
    }
}

// ---------------------------------------------------------------------------------------
// Detail

#[derive(Template)]
#[template(path = "keys/detail.html")]
struct DetailPage {
    ctx: PageContext,
    base: String,
    detail: KeyDetail,
}

pub async fn detail<A: KeyArea>(area: A, req: HttpRequest, state: web::Data<AppState>) -> AppResult<HttpResponse> {
    not_blocked(&area)?;
    let public_id = public_id(&req)?;
    let key = visible_key(&state, &area, public_id, KeyOp::View).await?;
    let base = area.base();
    let row_base = base.clone();
    let actor = area.actor();
    let detail = state.db.run(move |conn| view::detail(conn, &actor, &key, &row_base)).await?;
    let ctx = area.context(&detail.row.name)?;
    render(&DetailPage { ctx, base, detail })
}

// ---------------------------------------------------------------------------------------
// Rename

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

pub async fn rename_form<A: KeyArea>(
    area: A,
    req: HttpRequest,
    state: web::Data<AppState>,
    query: web::Query<ReturnQuery>,
) -> AppResult<HttpResponse> {
    not_blocked(&area)?;
    let public_id = public_id(&req)?;
    let key = visible_key(&state, &area, public_id, KeyOp::Rename).await?;
    let detail_href = format!("{}/{}", area.base(), key.public_id);
    let return_to = return_path(&area, query.return_to.as_deref().unwrap_or_default(), detail_href.clone());
    let ctx = area.context(&format!("Rename {}", key.name))?;
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
    req: HttpRequest,
    state: web::Data<AppState>,
    form: HtmlForm<RenameForm>,
) -> AppResult<HttpResponse> {
    not_blocked(&area)?;
    let public_id = public_id(&req)?;
    let form = form.into_inner();
    let actor = area.actor();
    let name = form.name.clone();
    let result =
        perform(&state, &area, KeyOp::Rename, &public_id, move |conn, at| lifecycle::rename(conn, &actor, at, &name))
            .await;
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

// ---------------------------------------------------------------------------------------
// Edit

pub async fn edit_form<A: KeyArea>(
    area: A,
    req: HttpRequest,
    state: web::Data<AppState>,
    query: web::Query<ReturnQuery>,
) -> AppResult<HttpResponse> {
    not_blocked(&area)?;
    let public_id = public_id(&req)?;
    let key = visible_key(&state, &area, public_id, KeyOp::Edit).await?;
    let detail_href = format!("{}/{}", area.base(), key.public_id);
    let return_to = return_path(&area, query.return_to.as_deref().unwrap_or_default(), detail_href.clone());
    let actor = area.actor();
    let form = state
        .db
        .run(move |conn| {
            let owner = crate::services::keys::OwnerContext::of_key(conn, &key)?;
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
    req: HttpRequest,
    state: web::Data<AppState>,
    form: HtmlForm<KeyForm>,
) -> AppResult<HttpResponse> {
    not_blocked(&area)?;
    let public_id = public_id(&req)?;
    let mut values = form.into_inner();
    let actor = area.actor();
    let submitted = values.clone();
    let result = perform(&state, &area, KeyOp::Edit, &public_id, move |conn, at| {
        lifecycle::update(conn, &actor, at, |conn, owner| {
            let mut errors = FieldErrors::new();
            let settings = KeySettings::from_form(conn, &submitted, owner, &policy_of(owner), &mut errors)?;
            errors.into_result()?;
            Ok(settings.expect("validated"))
        })
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

// ---------------------------------------------------------------------------------------
// Deactivate, reactivate, end grace, delete: confirmations

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
    req: HttpRequest,
    state: web::Data<AppState>,
    query: web::Query<ReturnQuery>,
    which: Confirmed,
) -> AppResult<HttpResponse> {
    not_blocked(&area)?;
    let public_id = public_id(&req)?;
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
    req: HttpRequest,
    state: web::Data<AppState>,
    form: HtmlForm<ConfirmForm>,
    which: Confirmed,
) -> AppResult<HttpResponse> {
    not_blocked(&area)?;
    let public_id = public_id(&req)?;
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

// ---------------------------------------------------------------------------------------
// Re-key

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

pub async fn rekey_form<A: KeyArea>(
    area: A,
    req: HttpRequest,
    state: web::Data<AppState>,
    query: web::Query<ReturnQuery>,
) -> AppResult<HttpResponse> {
    not_blocked(&area)?;
    let public_id = public_id(&req)?;
    let key = visible_key(&state, &area, public_id, KeyOp::Rekey).await?;
    let policy_key = key.clone();
    let policy = state
        .db
        .run(move |conn| Ok(policy_of(&crate::services::keys::OwnerContext::of_key(conn, &policy_key)?)))
        .await?;
    let detail_href = format!("{}/{}", area.base(), key.public_id);
    let return_to = return_path(&area, query.return_to.as_deref().unwrap_or_default(), detail_href.clone());
    let ctx = area.context(&format!("Re-key {}", key.name))?;
    render(&RekeyPage {
        ctx,
        action_url: format!("{detail_href}/rekey"),
        cancel_href: return_to.clone(),
        rotating: key.is_rotating_at(Utc::now()),
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
    req: HttpRequest,
    state: web::Data<AppState>,
    form: HtmlForm<RekeyForm>,
) -> AppResult<HttpResponse> {
    not_blocked(&area)?;
    let public_id = public_id(&req)?;
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
