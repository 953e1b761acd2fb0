//! Refused calls of live tokens in the audit log (SPEC §6): a 403 that leaves the management
//! API for an authenticated token becomes one `access.denied` event (outcome denied) as the
//! token, written by one middleware after the handler, so no handler records anything itself.
//!
//! Only live tokens: a 401 (unknown, malformed, revoked token) names no actor and would let
//! anyone fill the log; 404s are not denials; 429s are the rate limit's. The rows a leaked
//! token can cause are bounded by its rate limit, which authentication counts before any
//! refusal (see `auth`).

use actix_web::{
    HttpMessage,
    body::MessageBody,
    dev::{ServiceRequest, ServiceResponse},
    http::StatusCode,
    middleware::Next,
    web,
};
use serde_json::json;

use super::{auth::Caller, problem::Problem};
use crate::{
    domain::TokenScope,
    services::audit::{self, AuditAction, Entry, Outcome},
    state::AppState,
};

/// Why a live token was refused, as the audit event's `reason` says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The token lacks this scope.
    Scope(TokenScope),
    /// Its creator's current rights do not allow the operation.
    CreatorRights,
    /// The request comes from outside the token's allowed address ranges.
    Address,
}

impl Refusal {
    pub fn reason(self) -> &'static str {
        match self {
            Refusal::Scope(_) => "scope",
            Refusal::CreatorRights => "creator_rights",
            Refusal::Address => "address",
        }
    }
}

/// Middleware of the API scope: records the 403 answers to requests whose token was
/// authenticated (authentication leaves the `Caller` in the request's extensions).
pub async fn audit_refusals(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let response = next.call(req).await?;
    if response.status() != StatusCode::FORBIDDEN {
        return Ok(response);
    }
    let caller = response.request().extensions().get::<Caller>().cloned();
    let state = response.request().app_data::<web::Data<AppState>>().cloned();
    if let (Some(caller), Some(state)) = (caller, state) {
        // The refusal travels with the problem the handler (or the extractor) returned.
        let refusal = response.response().error().and_then(|e| e.as_error::<Problem>()).and_then(|p| p.refusal);
        let request = response.request();
        record(&state, caller, request.method().as_str(), request.path(), refusal).await;
    }
    Ok(response)
}

/// Writes the event in a transaction of its own (the refused operation's has rolled back
/// already); a failure is logged and the answer stays the 403.
async fn record(state: &AppState, caller: Caller, method: &str, path: &str, refusal: Option<Refusal>) {
    let mut details = json!({
        "method": method,
        "path": path,
        "reason": refusal.map_or("forbidden", Refusal::reason),
    });
    if let Some(Refusal::Scope(scope)) = refusal {
        details["scope"] = json!(scope.to_string());
    }
    let result = state
        .db
        .transaction(move |conn| {
            // The token's organization (or service provider) is the actor's, as for its changes.
            let entry = Entry::new(AuditAction::AccessDenied).outcome(Outcome::Denied).details(details);
            Ok(audit::record(conn, &caller.actor, entry)?)
        })
        .await;
    if let Err(e) = result {
        log::warn!("management api: cannot record a refused call: {e}");
    }
}
