//! What every key page shares: the key named in the path, the area's return paths, and
//! running a change with its denied-attempt audit.

use actix_web::{FromRequest, HttpRequest, dev::Payload, web};
use futures_util::future::LocalBoxFuture;
use serde::Deserialize;

use crate::{
    db::models::ApiKey,
    error::{AppError, AppResult},
    keys::format::is_public_id,
    routes::keys::area::KeyArea,
    services::keys::{
        KeyOp,
        lifecycle::{self, KeyRef},
    },
    state::AppState,
};

/// Keys per page of a list.
pub const PER_PAGE: i64 = 25;

/// The key named in the path (`…/{public_id}/…`). Anything that is not a public id cannot
/// be a key: 404 before any database work.
pub struct KeyPath(pub String);

impl FromRequest for KeyPath {
    type Error = AppError;
    type Future = std::future::Ready<Result<Self, AppError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let id = req.match_info().get("public_id").unwrap_or_default();
        std::future::ready(if is_public_id(id) { Ok(KeyPath(id.to_string())) } else { Err(AppError::NotFound) })
    }
}

/// `given` when it is a page of this area, else `fallback` (no open redirects).
pub(super) fn return_path(area: &impl KeyArea, given: &str, fallback: String) -> String {
    crate::views::paths::safe_local_path(given, &area.base()).unwrap_or(fallback)
}

pub(super) fn not_blocked(area: &impl KeyArea) -> AppResult<()> {
    match area.blocked_reason() {
        Some(_) => Err(AppError::Forbidden),
        None => Ok(()),
    }
}

/// Runs `work` on the key `public_id` of `area` in a transaction; a refusal on an existing
/// key is audited as a denied attempt. `work` gets the key's reference within the area's
/// scope (an administrator's Account pages reach only their own keys, a provider's pages
/// only that provider's keys).
pub(super) async fn perform<T: Send + 'static>(
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
pub(super) async fn audit_if_denied<T>(
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
pub(super) async fn visible_key(
    state: &AppState,
    area: &impl KeyArea,
    public_id: String,
    op: KeyOp,
) -> AppResult<ApiKey> {
    let (actor, scope, id) = (area.actor(), area.scope(), public_id.clone());
    let result = state.db.run(move |conn| lifecycle::visible(conn, &actor, KeyRef { scope, public_id: &id }, op)).await;
    audit_if_denied(state, area, op, &public_id, result).await
}

#[derive(Debug, Default, Deserialize)]
pub struct ReturnQuery {
    pub(super) return_to: Option<String>,
}

/// What a key's dialog page (edit, rename, re-key) is asked with: the area, the key named in
/// the path, and where the dialog returns to (`?return_to=`).
pub struct KeyDialog<A> {
    pub area: A,
    pub state: web::Data<AppState>,
    public_id: String,
    return_to: Option<String>,
}

impl<A: KeyArea<Future: 'static>> FromRequest for KeyDialog<A> {
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<'static, Result<Self, actix_web::Error>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        // Extracted as a handler naming these four would extract them, so every refusal
        // (sign-in, 403, 404, a bad query) stays the same.
        let parts = <(A, KeyPath, web::Data<AppState>, web::Query<ReturnQuery>)>::from_request(req, payload);
        Box::pin(async move {
            let (area, KeyPath(public_id), state, query) = parts.await?;
            Ok(KeyDialog { area, state, public_id, return_to: query.into_inner().return_to })
        })
    }
}

impl<A: KeyArea> KeyDialog<A> {
    /// Opens the dialog: the area must not be blocked and the key visible for `op`. Gives
    /// the key, its page, and where the dialog returns to (a page of this area named by
    /// `return_to`, else the key's page).
    pub(super) async fn open(&self, op: KeyOp) -> AppResult<(ApiKey, String, String)> {
        let area = &self.area;
        not_blocked(area)?;
        let key = visible_key(&self.state, area, self.public_id.clone(), op).await?;
        let detail_href = format!("{}/{}", area.base(), key.public_id);
        let return_to = return_path(area, self.return_to.as_deref().unwrap_or_default(), detail_href.clone());
        Ok((key, detail_href, return_to))
    }
}
