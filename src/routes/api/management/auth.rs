//! `Caller`: the management token of a request, authenticated. From `Authorization: Bearer
//! kw_mgmt_…` to an actor in one HMAC and (while the listener vouches for the cache) no read:
//! the token comes from the instance's token cache (see `keys::tokens`), revocations reach
//! it through the database's change notices. The one write is the rate limit's count (`limit`). A key of the platform never opens this API (it
//! is not a token); a token never passes the verification API (it is not a key).

use std::sync::Arc;

use actix_web::{FromRequest, HttpMessage, HttpRequest, dev::Payload, http::header, web};
use futures_util::future::LocalBoxFuture;

use super::{denied::Refusal, problem::Problem};
use crate::{
    db::models::{api_key::KeyScope, management_token::TokenHolder},
    domain::{Capability, ClientIp, TokenScope},
    keys::{ParsedToken, tokens::CachedToken},
    services::actor::{Actor, ActorKind},
    state::AppState,
};

/// An authenticated management token, acting as its creator within its scopes.
#[derive(Debug, Clone)]
pub struct Caller {
    pub token: Arc<CachedToken>,
    pub actor: Actor,
}

impl Caller {
    /// The organization the token belongs to: everything it reaches is in it. A service
    /// provider's token has none (and no scope that needs one): refused.
    pub fn organization_id(&self) -> Result<i64, Problem> {
        match self.token.holder {
            TokenHolder::Organization { organization_id, .. } => Ok(organization_id),
            TokenHolder::ServiceProvider { .. } => {
                // (Unreachable through the scopes, which a provider's token cannot have.)
                Err(Problem::forbidden(
                    Refusal::CreatorRights,
                    "A service provider's token manages the provider's keys only.",
                ))
            }
        }
    }

    /// Where the keys the token may reach by id are.
    pub fn key_scope(&self) -> KeyScope {
        match self.token.holder {
            TokenHolder::Organization { organization_id, .. } => KeyScope::Organization(organization_id),
            TokenHolder::ServiceProvider { service_provider_id, .. } => KeyScope::ServiceProvider(service_provider_id),
        }
    }

    /// Refuses (403) unless the token holds `scope` and its creator, now, `capability`.
    pub fn require(&self, scope: TokenScope, capability: Capability) -> Result<(), Problem> {
        if !self.token.scopes.contains(scope) {
            return Err(Problem::forbidden(Refusal::Scope(scope), format!("The token lacks the scope {scope}.")));
        }
        if !self.token.creator_can.allows(capability) {
            return Err(Problem::forbidden(Refusal::CreatorRights, "The token's creator may no longer do this."));
        }
        Ok(())
    }

    /// Refuses (403) unless the token holds `scope` (the service checks its creator's rights).
    pub fn require_scope(&self, scope: TokenScope) -> Result<(), Problem> {
        if self.token.scopes.contains(scope) {
            Ok(())
        } else {
            Err(Problem::forbidden(Refusal::Scope(scope), format!("The token lacks the scope {scope}.")))
        }
    }
}

/// The token from `Authorization: Bearer <token>` (never from anywhere else).
fn bearer(req: &HttpRequest) -> Option<&str> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

async fn lookup(state: &AppState, public_id: &str) -> Result<Option<Arc<CachedToken>>, Problem> {
    let verifier = &state.verifier;
    let trusted = verifier.cache.enabled() && verifier.cache.coherent();
    if trusted && let Some(token) = verifier.tokens.get(public_id) {
        return Ok(Some(token));
    }
    let generation = verifier.tokens.generation();
    let id = public_id.to_string();
    let loaded = state.db.run(move |conn| CachedToken::load(conn, &id)).await?.map(Arc::new);
    if trusted && let Some(token) = &loaded {
        verifier.tokens.insert(Arc::clone(token), generation);
    }
    Ok(loaded)
}

async fn authenticate(req: HttpRequest) -> Result<Caller, Problem> {
    let state = req
        .app_data::<web::Data<AppState>>()
        .cloned()
        .ok_or_else(|| Problem::from(crate::error::AppError::Internal("AppState is not registered".into())))?;
    let client_ip = ClientIp::of(&req);
    // Malformed tokens (and keys) are refused before any database work; guesses count
    // toward the address's throttle like failed verifications.
    let presented = bearer(&req).unwrap_or_default();
    let Some(parsed) = ParsedToken::parse(presented) else {
        state.verifier.throttle.failed(client_ip.0);
        return Err(Problem::unauthenticated());
    };
    if state.verifier.throttle.is_blocked(client_ip.0) {
        let mut problem = Problem::new(
            actix_web::http::StatusCode::TOO_MANY_REQUESTS,
            "Too many invalid tokens from this address; try again later.",
        );
        problem.retry_after_secs = Some(60);
        return Err(problem);
    }
    let token = lookup(&state, parsed.public_id).await?;
    let Some(token) = token.filter(|t| state.hasher.matches(parsed.full, &t.secret_hash)) else {
        state.verifier.throttle.failed(client_ip.0);
        return Err(Problem::unauthenticated());
    };
    let now = state.clock.now();
    // Revoked, expired, or a creator who was deactivated or left: the token is powerless.
    if token.revoked || token.expires_at.is_some_and(|at| at <= now) || !token.creator_active {
        return Err(Problem::unauthenticated());
    }
    // Counted before any refusal, so refused calls spend the token's quota too.
    let standing = state.management_limits.check(&state.db, token.id, now).await?;
    req.extensions_mut().insert(standing);
    if standing.exceeded {
        let wait = standing.reset_secs;
        let mut problem = Problem::new(
            actix_web::http::StatusCode::TOO_MANY_REQUESTS,
            format!("This token made too many requests; retry in {wait} seconds."),
        );
        problem.retry_after_secs = Some(wait);
        return Err(problem);
    }
    let kind = match token.holder {
        TokenHolder::Organization { organization_id, user_id } => ActorKind::Token {
            id: token.id,
            public_id: token.public_id.clone(),
            name: token.name.clone(),
            organization_id,
            scopes: token.scopes,
            user_id,
            email: token.creator_email.clone(),
            is_admin: token.creator_can.is_admin(),
        },
        TokenHolder::ServiceProvider { service_provider_id, staff_id } => ActorKind::ProviderToken {
            id: token.id,
            public_id: token.public_id.clone(),
            name: token.name.clone(),
            service_provider_id,
            scopes: token.scopes,
            staff_id,
            email: token.creator_email.clone(),
        },
    };
    let caller = Caller { token, actor: Actor { kind, client_ip, now } };
    // From here on a refusal is the live token's, and audited as such (see `denied`); the
    // rate limit above counts it, so a leaked token's refused calls stay bounded.
    req.extensions_mut().insert(caller.clone());
    let cidrs = &caller.token.cidrs;
    if !cidrs.is_empty() && !client_ip.0.is_some_and(|ip| cidrs.iter().any(|net| net.contains(ip))) {
        return Err(Problem::forbidden(Refusal::Address, "The token may not be used from this address."));
    }
    // Its last use, for the API access pages: noted in memory, written in batches.
    state.verifier.token_usage.record(caller.token.id, now, client_ip.0, false);
    Ok(caller)
}

impl FromRequest for Caller {
    type Error = Problem;
    type Future = LocalBoxFuture<'static, Result<Self, Problem>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        Box::pin(authenticate(req.clone()))
    }
}
