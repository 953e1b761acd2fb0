//! Passkeys (WebAuthn) as a second factor: registering several per account, each named,
//! removing them, and checking one at sign-in or to confirm the person (sudo mode).
//!
//! The ceremonies are webauthn-rs's: Keyward hands the browser a challenge, keeps the
//! verifier's state in the server-side session, and checks the signed answer against it and
//! the stored public key. The relying party is this site's public origin, whose host must be
//! a domain name (WebAuthn refuses addresses): `http://localhost:8080` by default.

use hmac::{Hmac, KeyInit, Mac};
use serde_json::json;
use sha2::Sha256;
use webauthn_rs::prelude::{
    CreationChallengeResponse, Passkey, PasskeyAuthentication, PasskeyRegistration, PublicKeyCredential,
    RegisterPublicKeyCredential, RequestChallengeResponse, Url, Uuid, Webauthn, WebauthnBuilder, WebauthnError,
};

use diesel::PgConnection;

use crate::{
    db::models::second_factor::{FactorOwner, PasskeyInsert, PasskeyRow, has_any_factor},
    domain::text,
    error::AppError,
    services::{
        Actor,
        audit::{self, AuditAction, Entry, Outcome},
    },
};

use super::{SecondFactorKeys, account_of, changing_account_of, record_failure, replace_recovery_codes};

/// The most passkeys one account may have: enough for every device a person uses, few
/// enough that a sign-in's list of allowed credentials stays short.
pub const MAX_PER_ACCOUNT: usize = 10;
/// The longest name of a passkey, in characters.
pub const NAME_MAX: usize = 60;
const NAME_TAKEN: &str = "You have a passkey with this name already.";

/// This site as passkeys know it: the WebAuthn verifier for its origin, and the key of the
/// opaque account handles it gives authenticators.
pub struct RelyingParty {
    webauthn: Webauthn,
    origin: String,
    handle_key: Hmac<Sha256>,
}

impl std::fmt::Debug for RelyingParty {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RelyingParty").field("origin", &self.origin).finish_non_exhaustive()
    }
}

impl RelyingParty {
    /// The relying party of `origin` (`scheme://host[:port]`); an error saying why passkeys
    /// cannot work there (an address rather than a domain name).
    pub fn new(origin: &str, handle_key: &[u8; 32]) -> Result<Self, String> {
        let url = Url::parse(origin).map_err(|e| format!("{origin} is not a URL: {e}"))?;
        let Some(domain) = url.domain() else {
            return Err(format!(
                "passkeys need a domain name, and {origin} names an address: set KEYWARD_PUBLIC_URL to a name such as \
                 http://localhost:8080"
            ));
        };
        let webauthn = WebauthnBuilder::new(domain, &url)
            .and_then(|builder| builder.rp_name("Keyward").build())
            .map_err(|e| format!("passkeys cannot use {origin}: {e}"))?;
        let handle_key = Hmac::<Sha256>::new_from_slice(handle_key).expect("HMAC accepts any key length");
        Ok(Self { webauthn, origin: url.origin().ascii_serialization(), handle_key })
    }

    /// The origin passkeys work at (`http://localhost:8080`).
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The account's handle as authenticators store it: stable, and opaque (a keyed hash, so
    /// it reveals neither the account's id nor its email).
    fn user_handle(&self, owner: FactorOwner) -> Uuid {
        let mut mac = self.handle_key.clone();
        mac.update(owner.label().as_bytes());
        let digest = mac.finalize().into_bytes();
        let mut bytes = [0u8; 16];
        bytes.copy_from_slice(&digest[..16]);
        Uuid::from_bytes(bytes)
    }
}

/// A passkey as Account → Security lists it.
#[derive(Debug, Clone)]
pub struct PasskeySummary {
    pub id: i64,
    pub name: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub last_used_at: Option<chrono::DateTime<chrono::Utc>>,
}

pub fn list(conn: &mut PgConnection, owner: FactorOwner) -> Result<Vec<PasskeySummary>, AppError> {
    Ok(PasskeyRow::list(conn, owner)?
        .into_iter()
        .map(|row| PasskeySummary {
            id: row.id,
            name: row.name,
            created_at: row.created_at,
            last_used_at: row.last_used_at,
        })
        .collect())
}

/// A passkey's name, trimmed; the message to show beside the field otherwise.
pub fn valid_name(name: &str) -> Result<String, String> {
    text::clean_line(name, 1, NAME_MAX, "passkey name")
}

/// Why a registration cannot start or did not finish, in words for the person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// About the name field.
    Name(String),
    /// About the whole attempt.
    Attempt(&'static str),
}

const TOO_MANY: &str = "You have 10 passkeys, the most an account can have. Remove one first.";

/// Begins registering a passkey named `name`: the browser's options, and the state to keep
/// for [`finish_registration`]. Refused when the name is not valid or taken, or the account
/// has the most passkeys it may.
pub fn start_registration(
    conn: &mut PgConnection,
    party: &RelyingParty,
    actor: &Actor,
    name: &str,
) -> Result<Result<(CreationChallengeResponse, PasskeyRegistration), Refusal>, AppError> {
    let (owner, target) = account_of(actor)?;
    let name = match valid_name(name) {
        Ok(name) => name,
        Err(message) => return Ok(Err(Refusal::Name(message))),
    };
    let existing = PasskeyRow::list(conn, owner)?;
    if existing.len() >= MAX_PER_ACCOUNT {
        return Ok(Err(Refusal::Attempt(TOO_MANY)));
    }
    if existing.iter().any(|p| p.name.to_lowercase() == name.to_lowercase()) {
        return Ok(Err(Refusal::Name(NAME_TAKEN.into())));
    }
    // The authenticators that hold one of this account's passkeys already decline to make a
    // second one.
    let exclude = existing.into_iter().map(|p| p.credential_id.into()).collect();
    let started = party.webauthn.start_passkey_registration(
        party.user_handle(owner),
        &target.label,
        &target.label,
        Some(exclude),
    );
    started.map(Ok).map_err(|e| AppError::Internal(format!("passkey registration: {e}")))
}

/// How a registration ended.
pub enum Registered {
    /// Stored; the account's first factor also gets recovery codes, to show once.
    Added {
        name: String,
        recovery_codes: Option<Vec<String>>,
    },
    Refused(Refusal),
}

/// Finishes a registration with the browser's answer (`response`, JSON), checked against the
/// `state` kept since [`start_registration`]. A passkey that is the account's first second
/// factor comes with ten recovery codes. Audited either way.
pub fn finish_registration(
    conn: &mut PgConnection,
    keys: &SecondFactorKeys,
    party: &RelyingParty,
    actor: &Actor,
    name: &str,
    state: &PasskeyRegistration,
    response: &str,
) -> Result<Registered, AppError> {
    let (owner, target) = changing_account_of(conn, actor)?;
    let name = match valid_name(name) {
        Ok(name) => name,
        Err(message) => return Ok(Registered::Refused(Refusal::Name(message))),
    };
    let passkey = serde_json::from_str::<RegisterPublicKeyCredential>(response)
        .map_err(|_| "malformed_response")
        .and_then(|answer| party.webauthn.finish_passkey_registration(&answer, state).map_err(|_| "passkey_refused"));
    let passkey = match passkey {
        Ok(passkey) => passkey,
        Err(reason) => {
            let details = json!({ "stage": "passkey_registration", "reason": reason });
            record_failure(conn, actor, target, Outcome::Failure, details)?;
            return Ok(Registered::Refused(Refusal::Attempt(
                "Your browser's answer could not be verified, so no passkey was added. Try again.",
            )));
        }
    };
    // Checked again under the account's lock: two registrations started side by side both
    // passed the check at their start.
    if PasskeyRow::list(conn, owner)?.len() >= MAX_PER_ACCOUNT {
        return Ok(Registered::Refused(Refusal::Attempt(TOO_MANY)));
    }
    let first_factor = !has_any_factor(conn, owner)?;
    let credential =
        serde_json::to_value(&passkey).map_err(|e| AppError::Internal(format!("passkey credential: {e}")))?;
    match PasskeyRow::insert(conn, owner, &name, passkey.cred_id().as_ref(), &credential, actor.now)? {
        PasskeyInsert::Stored => {}
        PasskeyInsert::NameTaken => {
            return Ok(Registered::Refused(Refusal::Name(NAME_TAKEN.into())));
        }
        PasskeyInsert::CredentialTaken => {
            return Ok(Registered::Refused(Refusal::Attempt("This passkey is registered already.")));
        }
    }
    let recovery_codes = if first_factor { Some(replace_recovery_codes(conn, keys, owner)?) } else { None };
    audit::record(
        conn,
        actor,
        Entry::new(AuditAction::SecondFactorEnrol).target(target).details(json!({ "method": "passkey", "name": name })),
    )?;
    Ok(Registered::Added { name, recovery_codes })
}

/// Removes the account's passkey `id` (another account's is not found); when it was the last
/// second factor, the recovery codes go with it. Audited. Its name, and whether another
/// second factor remains.
pub fn remove(conn: &mut PgConnection, actor: &Actor, id: i64) -> Result<(String, bool), AppError> {
    let (owner, target) = changing_account_of(conn, actor)?;
    let name = PasskeyRow::delete(conn, owner, id)?.ok_or(AppError::NotFound)?;
    let others = has_any_factor(conn, owner)?;
    if !others {
        crate::db::models::second_factor::RecoveryCode::delete_for(conn, owner)?;
    }
    audit::record(
        conn,
        actor,
        Entry::new(AuditAction::SecondFactorRemove)
            .target(target)
            .details(json!({ "method": "passkey", "name": name })),
    )?;
    Ok((name, others))
}

/// The account's passkeys as the verifier reads them (a row it cannot read is skipped: it
/// could never sign in anyway).
fn passkeys_of(conn: &mut PgConnection, owner: FactorOwner) -> Result<Vec<Passkey>, AppError> {
    Ok(PasskeyRow::list(conn, owner)?
        .into_iter()
        .filter_map(|row| serde_json::from_value::<Passkey>(row.credential).ok())
        .collect())
}

/// Begins asking `owner` for one of its passkeys: the browser's options and the state to
/// keep, or `None` for an account without passkeys.
pub fn start_authentication(
    conn: &mut PgConnection,
    party: &RelyingParty,
    owner: FactorOwner,
) -> Result<Option<(RequestChallengeResponse, PasskeyAuthentication)>, AppError> {
    let passkeys = passkeys_of(conn, owner)?;
    if passkeys.is_empty() {
        return Ok(None);
    }
    party
        .webauthn
        .start_passkey_authentication(&passkeys)
        .map(Some)
        .map_err(|e| AppError::Internal(format!("passkey authentication: {e}")))
}

/// Checks the browser's answer (`response`, JSON) to the challenge kept in `state` (none: it
/// expired, or was answered already): a signature of one of the account's passkeys. The
/// passkey's counter and last use are recorded; a failure is audited with its `stage` and
/// counts against the sign-in throttle. The passkey's name on success.
pub(super) fn check_assertion(
    conn: &mut PgConnection,
    party: &RelyingParty,
    actor: &Actor,
    state: Option<&PasskeyAuthentication>,
    response: &str,
    stage: &str,
) -> Result<Option<String>, AppError> {
    let (owner, target) = account_of(actor)?;
    let verified = state.ok_or("no_challenge").and_then(|state| {
        let answer = serde_json::from_str::<PublicKeyCredential>(response).map_err(|_| "malformed_response")?;
        party.webauthn.finish_passkey_authentication(&answer, state).map_err(|e| match e {
            WebauthnError::CredentialPossibleCompromise => "counter_not_advanced",
            _ => "passkey_refused",
        })
    });
    let found = match verified {
        // The challenge named this account's passkeys, but one may have been removed since.
        Ok(result) => PasskeyRow::find_by_credential_for_update(conn, owner, result.cred_id().as_ref())?
            .map(|row| (result, row))
            .ok_or("unknown_passkey"),
        Err(reason) => Err(reason),
    };
    // webauthn-rs compared the signature counter with the copy taken when the challenge was
    // issued. Compare it again, under the row's lock, with the one stored now: two answers to
    // challenges issued before either was used cannot both pass, and a cloned authenticator
    // shows as a counter that did not advance. (Authenticators without a counter send 0.)
    let found = found.and_then(|(result, row)| {
        let stored = row.credential["cred"]["counter"].as_u64().unwrap_or(0);
        let counter = u64::from(result.counter());
        if (counter > 0 || stored > 0) && counter <= stored { Err("counter_not_advanced") } else { Ok((result, row)) }
    });
    let (result, row) = match found {
        Ok(found) => found,
        Err(reason) => {
            record_failure(conn, actor, target, Outcome::Failure, json!({ "stage": stage, "reason": reason }))?;
            return Ok(None);
        }
    };
    let mut passkey = serde_json::from_value::<Passkey>(row.credential)
        .map_err(|e| AppError::Internal(format!("stored passkey {}: {e}", row.id)))?;
    let changed = passkey.update_credential(&result) == Some(true);
    let credential = changed
        .then(|| serde_json::to_value(&passkey))
        .transpose()
        .map_err(|e| AppError::Internal(format!("passkey credential: {e}")))?;
    PasskeyRow::record_use(conn, row.id, credential.as_ref(), actor.now)?;
    Ok(Some(row.name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_relying_party_is_a_domain_name_never_an_address() {
        let key = [7u8; 32];
        let party = RelyingParty::new("http://localhost:8080", &key).unwrap();
        assert_eq!(party.origin(), "http://localhost:8080");
        assert_eq!(RelyingParty::new("https://keys.example.com", &key).unwrap().origin(), "https://keys.example.com");
        for address in ["http://127.0.0.1:8080", "http://[::1]:8080", "https://10.0.0.7"] {
            let refused = RelyingParty::new(address, &key).unwrap_err();
            assert!(refused.contains("domain name"), "{address}: {refused}");
        }
    }

    #[test]
    fn account_handles_are_stable_opaque_and_distinct() {
        let party = RelyingParty::new("http://localhost:8080", &[7u8; 32]).unwrap();
        let user = party.user_handle(FactorOwner::User(1));
        assert_eq!(user, party.user_handle(FactorOwner::User(1)));
        assert_ne!(user, party.user_handle(FactorOwner::Staff(1)));
        assert_ne!(
            user,
            RelyingParty::new("http://localhost:8080", &[8u8; 32]).unwrap().user_handle(FactorOwner::User(1))
        );
    }
}
