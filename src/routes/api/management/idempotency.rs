//! `Idempotency-Key` on every POST of the management API. The first answer to a key (its
//! status and body, never a secret) is stored per token in the same transaction as the
//! change, under an advisory lock of the (token, key) pair, so a retry — even one racing the
//! first request — never makes a second key or a second secret: it gets the first answer,
//! marked as a replay. The same key with a different request is refused (422).

use actix_web::{HttpRequest, HttpResponse, http::StatusCode};
use diesel::PgConnection;
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::problem::Problem;
use crate::{db::models::management_token::IdempotencyRecord, error::AppError};

pub const HEADER: &str = "idempotency-key";

/// What a POST carries for idempotency: the key, if any, and the request's fingerprint.
#[derive(Debug, Clone)]
pub struct Idempotency {
    pub key: Option<String>,
    pub request_hash: Vec<u8>,
}

impl Idempotency {
    /// Reads the header (1 to 255 visible ASCII characters) and fingerprints the request.
    pub fn of(req: &HttpRequest, body: &[u8]) -> Result<Self, Problem> {
        let key = match req.headers().get(HEADER) {
            None => None,
            Some(value) => {
                let text = value.to_str().unwrap_or_default().trim();
                if text.is_empty() || text.len() > 255 || !text.bytes().all(|b| b.is_ascii_graphic()) {
                    return Err(Problem::invalid_field(
                        "Idempotency-Key",
                        "An Idempotency-Key is 1 to 255 visible ASCII characters (a UUID, say).",
                    ));
                }
                Some(text.to_string())
            }
        };
        let mut hash = Sha256::new();
        hash.update(req.method().as_str().as_bytes());
        hash.update([0]);
        hash.update(req.path().as_bytes());
        hash.update([0]);
        hash.update(canonical_body(body));
        Ok(Self { key, request_hash: hash.finalize().to_vec() })
    }

    /// The stored first answer, if this key was used before (inside the change's transaction).
    /// A different request under the same key is refused.
    pub fn replay(&self, conn: &mut PgConnection, token_id: i64) -> Result<Option<IdempotencyRecord>, AppError> {
        let Some(key) = &self.key else { return Ok(None) };
        let Some(record) = IdempotencyRecord::lock_and_find(conn, token_id, key)? else { return Ok(None) };
        if record.request_hash != self.request_hash {
            let mut errors = crate::error::FieldErrors::new();
            errors.add(
                "Idempotency-Key",
                "This Idempotency-Key was used for a different request; use a new key for a new request.",
            );
            return Err(AppError::Invalid(errors));
        }
        Ok(Some(record))
    }

    /// Stores the first answer (without any secret) in the change's transaction.
    pub fn remember(
        &self,
        conn: &mut PgConnection,
        token_id: i64,
        status: StatusCode,
        body: &Value,
    ) -> Result<(), AppError> {
        let Some(key) = &self.key else { return Ok(()) };
        IdempotencyRecord {
            token_id,
            key: key.clone(),
            request_hash: self.request_hash.clone(),
            status: status.as_u16() as i16,
            body: body.clone(),
        }
        .insert(conn)?;
        Ok(())
    }
}

/// The body as a retry is compared: a JSON body in one spelling (object members in name order,
/// no whitespace), so a client that re-serializes the same request differently — another
/// member order, other spacing — is still retrying it. Anything else as it came.
fn canonical_body(body: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    // `serde_json`'s map keeps members sorted (its `preserve_order` feature is off).
    match serde_json::from_slice::<Value>(body).ok().and_then(|json| serde_json::to_vec(&json).ok()) {
        Some(canonical) => canonical.into(),
        None => body.into(),
    }
}

/// The answer to a retry: the first answer's status and body, and no secret.
pub fn replayed(record: IdempotencyRecord) -> HttpResponse {
    let mut body = record.body;
    if let Value::Object(map) = &mut body
        && map.contains_key("secret")
    {
        map.insert("secret".into(), Value::Null);
        map.insert(
            "notice".into(),
            Value::from(
                "This answers an earlier request with the same Idempotency-Key. The secret was shown in \
                 that answer and is not shown again.",
            ),
        );
    }
    let status = StatusCode::from_u16(record.status as u16).unwrap_or(StatusCode::OK);
    HttpResponse::build(status)
        .insert_header(("Idempotency-Replayed", "true"))
        .insert_header(("Cache-Control", "no-store"))
        .json(body)
}

#[cfg(test)]
mod tests {
    use super::canonical_body;

    #[test]
    fn the_same_json_in_another_spelling_is_the_same_request() {
        let one = canonical_body(br#"{"name": "CI", "actions": ["a", "b"]}"#).into_owned();
        let other = canonical_body(br#"{ "actions":["a","b"],"name":"CI" }"#).into_owned();
        assert_eq!(one, other);
        assert_ne!(
            one,
            canonical_body(br#"{"name": "CI", "actions": ["b", "a"]}"#).into_owned(),
            "order of a list counts"
        );
        assert_eq!(canonical_body(b"not json").as_ref(), b"not json");
    }
}
