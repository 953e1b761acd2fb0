//! `POST /api/v1/leaks`: leaked keys reported in the body format of GitHub's secret-scanning
//! partner program (keys are deactivated, management tokens revoked). Anyone may report:
//! holding a key proves the right to stop it. Strings
//! that are not keys are answered without a database lookup.

use actix_web::{HttpRequest, HttpResponse, post, web};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::{
    domain::ClientIp,
    keys::{ParsedKey, ParsedToken},
    routes::api::{ApiBody, ApiError, error::ErrorBody},
    services::{
        Actor,
        keys::lifecycle::{self, LeakReport},
        management_tokens,
    },
    state::AppState,
};

/// Most reports per request.
pub const MAX_REPORTS: usize = 1000;

/// One reported token, with where it was found.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = LeakReport)]
pub struct Reported {
    /// The leaked string.
    token: String,
    /// The scanner's name for the kind of token.
    #[serde(rename = "type", default)]
    token_type: String,
    /// Where it was found.
    #[serde(default)]
    url: String,
    /// What found it, e.g. `content`, `commit`.
    #[serde(default)]
    source: String,
}

/// The answer about one reported token, in the order reported.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = LeakLabel)]
pub struct Labelled {
    token_raw: String,
    token_type: String,
    label: Label,
}

/// Whether the token was a working Keyward key (now deactivated).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Label {
    TruePositive,
    FalsePositive,
}

/// Report leaked keys (GitHub secret-scanning partner format)
///
/// Anyone may report: holding a key proves the right to stop it. Each working key is
/// deactivated at once and the report is recorded in the audit log with where it was found.
/// At most 1000 reports per request.
#[utoipa::path(
    tag = "leaks",
    operation_id = "reportLeaks",
    request_body(content = Vec<Reported>, content_type = "application/json"),
    responses(
        (status = 200, description = "One label per reported token", body = Vec<Labelled>),
        (status = 400, description = "A malformed body, or more than 1000 reports", body = ErrorBody),
        (status = 413, description = "The body is over 1 MiB", body = ErrorBody),
        (status = 429, description = "Too many reports of unknown keys from this address", body = ErrorBody),
        (status = 503, description = "The key store cannot be reached", body = ErrorBody,
            headers(("Retry-After" = u32, description = "Seconds"))),
    ),
)]
#[post("/leaks")]
pub async fn report(req: HttpRequest, state: web::Data<AppState>, body: ApiBody) -> Result<HttpResponse, ApiError> {
    let reports: Vec<Reported> = serde_json::from_slice(&body.0).map_err(|e| {
        ApiError::BadRequest(format!(
            "The body must be a JSON array of {{\"token\", \"type\", \"url\", \"source\"}}: {e}"
        ))
    })?;
    if reports.len() > MAX_REPORTS {
        return Err(ApiError::BadRequest(format!("At most {MAX_REPORTS} reports per request.")));
    }
    let (client_ip, now) = (ClientIp::of(&req), state.clock.now());
    // Checked once, before the batch: a batch is answered whole (a scanner's batch may hold
    // many stale tokens before a live one), and its misses count for the next request. The
    // work per request is bounded by `MAX_REPORTS`, and a miss locks nothing.
    if state.verifier.throttle.is_blocked(client_ip.0) {
        return Ok(HttpResponse::TooManyRequests()
            .json(ErrorBody { error: "rate_limited", message: "Too many invalid reports; try again later." }));
    }
    let mut answers = Vec::with_capacity(reports.len());
    for reported in reports {
        // A management token is revoked at once, like a key is deactivated; anything else
        // is answered without a database lookup.
        let is_token = ParsedToken::parse(&reported.token).is_some();
        let mut real = false;
        if is_token || ParsedKey::parse(&reported.token).is_some() {
            let (token, hasher) = (reported.token.clone(), state.hasher.clone());
            let report = LeakReport {
                token_type: reported.token_type.clone(),
                url: reported.url.clone(),
                source: reported.source.clone(),
            };
            real = state
                .db
                .transaction(move |conn| {
                    let actor = Actor::anonymous(client_ip).at(now);
                    if is_token {
                        management_tokens::report_leak(conn, &actor, &hasher, &token, &report)
                    } else {
                        lifecycle::report_leak(conn, &actor, &hasher, &token, &report)
                    }
                })
                .await?;
            if !real {
                state.verifier.throttle.failed(client_ip.0);
            }
        }
        answers.push(Labelled {
            token_raw: reported.token,
            token_type: reported.token_type,
            label: if real { Label::TruePositive } else { Label::FalsePositive },
        });
    }
    Ok(HttpResponse::Ok().json(answers))
}
