//! Second factors of web users and staff accounts alike: an authenticator app (TOTP),
//! passkeys (`passkey`), the recovery codes that come with the first of them, removing them,
//! and checking one at sign-in or to confirm the person. Every change and
//! every failed code is written to the audit log in the same transaction; wrong codes count
//! against the sign-in throttle of `services::login`.

pub mod passkey;
pub mod recovery;
pub mod totp;

use std::sync::Arc;

use diesel::PgConnection;
use serde_json::json;

use crate::{
    db::models::{
        Organization,
        second_factor::{FactorOwner, PasskeyRow, RecoveryCode, TotpFactor, has_any_factor},
    },
    domain::Capabilities,
    error::AppError,
    secrets::DerivedKeys,
    services::{
        Actor,
        actor::ActorKind,
        audit::{self, AuditAction, Entry, Outcome, Target},
        login::{self, SignedIn},
    },
};

pub use passkey::{PasskeySummary, RelyingParty};
pub use recovery::RecoveryHasher;
pub use totp::{Provisioning, SecretSeal};

/// The keys of the second factor (derived from the master secret), and the relying party
/// of passkeys.
#[derive(Debug, Clone)]
pub struct SecondFactorKeys {
    pub seal: SecretSeal,
    pub recovery: RecoveryHasher,
    /// Passkeys at this site's public origin; why not, when that origin cannot have them.
    pub passkeys: Result<Arc<RelyingParty>, String>,
}

impl SecondFactorKeys {
    /// The keys, with passkeys at `public_origin` (`http://localhost:8080`).
    pub fn new(keys: &DerivedKeys, public_origin: &str) -> Self {
        Self {
            seal: SecretSeal::new(&keys.totp_seal_key),
            recovery: RecoveryHasher::new(&keys.recovery_pepper),
            passkeys: RelyingParty::new(public_origin, &keys.passkey_handle_key).map(Arc::new),
        }
    }

    /// The relying party of passkeys, or a clear refusal when this site cannot have them.
    pub fn relying_party(&self) -> Result<Arc<RelyingParty>, AppError> {
        self.passkeys.clone().map_err(|why| AppError::Conflict(format!("Passkeys are not available: {why}.")))
    }
}

/// The signed-in account of `actor` (a web user or a support specialist).
fn account_of(actor: &Actor) -> Result<(FactorOwner, Target), AppError> {
    match &actor.kind {
        ActorKind::User { id, email, .. } => Ok((FactorOwner::User(*id), Target::new("user", id, email))),
        ActorKind::Staff { id, email } => Ok((FactorOwner::Staff(*id), Target::new("staff", id, email))),
        _ => Err(AppError::Forbidden),
    }
}

/// The signed-in account of `actor`, its row locked for the rest of the transaction: every
/// change of an account's second factors takes this lock first, so two at once (two tabs)
/// run one after the other and each sees what the other did — the first factor gets its
/// recovery codes once, the passkey cap holds, and the last factor's removal takes the codes.
fn changing_account_of(conn: &mut PgConnection, actor: &Actor) -> Result<(FactorOwner, Target), AppError> {
    let (owner, target) = account_of(actor)?;
    lock_account(conn, owner)?;
    Ok((owner, target))
}

/// Locks `owner`'s row (see [`changing_account_of`]).
fn lock_account(conn: &mut PgConnection, owner: FactorOwner) -> Result<(), AppError> {
    use diesel::prelude::*;

    use crate::db::schema::{staff_accounts, users};
    let found = match owner {
        FactorOwner::User(id) => users::table.find(id).select(users::id).for_update().first::<i64>(conn).optional()?,
        FactorOwner::Staff(id) => {
            staff_accounts::table.find(id).select(staff_accounts::id).for_update().first::<i64>(conn).optional()?
        }
    };
    found.map(|_| ()).ok_or(AppError::NotFound)
}

/// The account's authenticator if enrolled (not merely pending), locked.
fn confirmed_factor(conn: &mut PgConnection, owner: FactorOwner) -> Result<Option<TotpFactor>, AppError> {
    Ok(TotpFactor::find_for_update(conn, owner)?.filter(|f| f.confirmed_at.is_some()))
}

/// Whether `account` must sign in with a second factor: every staff account, and a web user
/// whom their organization's policy names, judged by the same capabilities the pages and
/// services grant (re-read here, so a new role or administrator flag counts at next sign-in).
/// The one place this is decided.
pub fn required_for(conn: &mut PgConnection, account: &SignedIn) -> Result<bool, AppError> {
    match account {
        SignedIn::Staff(_) => Ok(true),
        SignedIn::User(user) => {
            let policy = Organization::find(conn, user.organization_id)?.second_factor_required_for;
            let can = Capabilities::new(user.is_admin, user.effective_permissions(conn)?);
            Ok(policy.requires(can))
        }
    }
}

/// What Account → Security shows.
#[derive(Debug, Clone)]
pub struct Status {
    /// Any second factor: sign-in asks for one.
    pub enrolled: bool,
    /// An authenticator app.
    pub authenticator: bool,
    pub passkeys: Vec<PasskeySummary>,
    pub recovery_codes_left: i64,
}

pub fn status(conn: &mut PgConnection, actor: &Actor) -> Result<Status, AppError> {
    let (owner, _) = account_of(actor)?;
    let authenticator = TotpFactor::is_enrolled(conn, owner)?;
    let passkeys = passkey::list(conn, owner)?;
    Ok(Status {
        enrolled: authenticator || !passkeys.is_empty(),
        authenticator,
        passkeys,
        recovery_codes_left: RecoveryCode::count_unused(conn, owner)?,
    })
}

/// Starts enrolling an authenticator: a new secret, kept server-side (sealed) until a
/// correct code confirms it. An account that has one already must remove it first.
pub fn start_enrolment(conn: &mut PgConnection, keys: &SecondFactorKeys, actor: &Actor) -> Result<(), AppError> {
    let (owner, _) = changing_account_of(conn, actor)?;
    if confirmed_factor(conn, owner)?.is_some() {
        return Err(AppError::Conflict("An authenticator app is set up already. Remove it first.".into()));
    }
    let sealed = keys.seal.seal(owner, &totp::new_secret())?;
    TotpFactor::insert_pending(conn, owner, &sealed)?;
    Ok(())
}

/// The enrolment in progress, to show (QR code, secret), if there is one.
pub fn pending_enrolment(
    conn: &mut PgConnection,
    keys: &SecondFactorKeys,
    actor: &Actor,
) -> Result<Option<Provisioning>, AppError> {
    let (owner, target) = account_of(actor)?;
    let Some(factor) = TotpFactor::find_for_update(conn, owner)?.filter(|f| f.confirmed_at.is_none()) else {
        return Ok(None);
    };
    let secret = keys.seal.open(owner, &factor.secret_sealed)?;
    totp::provisioning(&secret, &target.label).map(Some)
}

/// How a code that a signed-in account typed (enrolment) turned out. Not `Debug`: it
/// carries the recovery codes.
pub enum Confirmation {
    /// Enrolled: the recovery codes to show once, when it is the account's first second
    /// factor (one with passkeys keeps the codes it has).
    Enrolled(Option<Vec<String>>),
    /// Not six digits, or not the code of now (recorded as a failure).
    Wrong,
    /// No enrolment in progress (it was confirmed or replaced in another tab).
    NothingPending,
}

fn record_failure(
    conn: &mut PgConnection,
    actor: &Actor,
    target: Target,
    outcome: Outcome,
    details: serde_json::Value,
) -> Result<(), AppError> {
    audit::record(
        conn,
        actor,
        Entry::new(AuditAction::SecondFactorFailure).target(target).outcome(outcome).details(details),
    )?;
    Ok(())
}

/// Confirms the enrolment in progress with a code of the new secret; on success the
/// authenticator counts from now on, and — when it is the account's first second factor —
/// ten recovery codes come with it (as with a first passkey).
pub fn confirm_enrolment(
    conn: &mut PgConnection,
    keys: &SecondFactorKeys,
    actor: &Actor,
    code: &str,
) -> Result<Confirmation, AppError> {
    let (owner, target) = changing_account_of(conn, actor)?;
    let Some(factor) = TotpFactor::find_for_update(conn, owner)?.filter(|f| f.confirmed_at.is_none()) else {
        return Ok(Confirmation::NothingPending);
    };
    let secret = keys.seal.open(owner, &factor.secret_sealed)?;
    let matched = match totp::parse_code(code) {
        Some(code) => totp::check(&secret, &code, actor.now.timestamp(), None)?,
        None => totp::CodeMatch::Wrong,
    };
    let totp::CodeMatch::Fresh(step) = matched else {
        record_failure(conn, actor, target, Outcome::Failure, json!({ "stage": "enrolment", "reason": "wrong_code" }))?;
        return Ok(Confirmation::Wrong);
    };
    let first_factor = !has_any_factor(conn, owner)?;
    TotpFactor::confirm(conn, factor.id, step, actor.now)?;
    let codes = if first_factor { Some(replace_recovery_codes(conn, keys, owner)?) } else { None };
    audit::record(
        conn,
        actor,
        Entry::new(AuditAction::SecondFactorEnrol).target(target).details(json!({ "method": "totp" })),
    )?;
    Ok(Confirmation::Enrolled(codes))
}

fn replace_recovery_codes(
    conn: &mut PgConnection,
    keys: &SecondFactorKeys,
    owner: FactorOwner,
) -> Result<Vec<String>, AppError> {
    let codes = recovery::generate();
    let hashes: Vec<[u8; 32]> = codes
        .iter()
        .map(|code| keys.recovery.hash(&recovery::normalize(code).expect("generated codes are valid")))
        .collect();
    RecoveryCode::replace_all(conn, owner, &hashes)?;
    Ok(codes)
}

/// Ten new recovery codes for an enrolled account; the old ones stop working.
pub fn regenerate_recovery_codes(
    conn: &mut PgConnection,
    keys: &SecondFactorKeys,
    actor: &Actor,
) -> Result<Vec<String>, AppError> {
    let (owner, target) = changing_account_of(conn, actor)?;
    if !has_any_factor(conn, owner)? {
        return Err(AppError::Conflict("Set up an authenticator app or a passkey first.".into()));
    }
    let codes = replace_recovery_codes(conn, keys, owner)?;
    audit::record(conn, actor, Entry::new(AuditAction::SecondFactorRecoveryCodesRegenerate).target(target))?;
    Ok(codes)
}

/// Removes the account's authenticator (the caller has confirmed the person), and the
/// recovery codes when no passkey remains: signing in then asks for the password alone.
/// Whether another second factor remains.
pub fn remove(conn: &mut PgConnection, actor: &Actor) -> Result<bool, AppError> {
    let (owner, target) = changing_account_of(conn, actor)?;
    if confirmed_factor(conn, owner)?.is_none() {
        return Err(AppError::NotFound);
    }
    TotpFactor::delete_for(conn, owner)?;
    let others = has_any_factor(conn, owner)?;
    if !others {
        RecoveryCode::delete_for(conn, owner)?;
    }
    audit::record(
        conn,
        actor,
        Entry::new(AuditAction::SecondFactorRemove).target(target).details(json!({ "method": "totp" })),
    )?;
    Ok(others)
}

/// Support for someone who lost their second factor: removes the authenticator (enrolled or
/// pending), passkeys and recovery codes of `owner` and ends every session of the account, recorded
/// as `second_factor.reset` by `actor`. The caller has decided that `actor` may (see
/// `services::users::reset_second_factor`, `services::staff::reset_second_factor`, the
/// operator's command). Returns the number of sessions ended.
pub fn reset(
    conn: &mut PgConnection,
    actor: &Actor,
    owner: FactorOwner,
    target: Target,
    organization_id: Option<i64>,
) -> Result<usize, AppError> {
    lock_account(conn, owner)?;
    let had_authenticator = TotpFactor::is_enrolled(conn, owner)?;
    TotpFactor::delete_for(conn, owner)?;
    let passkeys_removed = PasskeyRow::delete_for(conn, owner)?;
    RecoveryCode::delete_for(conn, owner)?;
    let ended = match owner {
        FactorOwner::User(id) => crate::db::models::session::delete_for_user(conn, id)?,
        FactorOwner::Staff(id) => crate::db::models::session::delete_for_staff(conn, id)?,
    };
    audit::record(
        conn,
        actor,
        Entry::new(AuditAction::SecondFactorReset).organization(organization_id).target(target).details(json!({
            "had_authenticator": had_authenticator,
            "passkeys_removed": passkeys_removed,
            "sessions_ended": ended,
        })),
    )?;
    Ok(ended)
}

/// The second factors an account can sign in with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignInMethods {
    pub authenticator: bool,
    pub passkeys: bool,
}

pub fn sign_in_methods(conn: &mut PgConnection, owner: FactorOwner) -> Result<SignInMethods, AppError> {
    Ok(SignInMethods {
        authenticator: TotpFactor::is_enrolled(conn, owner)?,
        passkeys: PasskeyRow::count(conn, owner)? > 0,
    })
}

/// How the second step of a sign-in turned out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignInCode {
    /// A fresh code of the authenticator app.
    Totp,
    /// One of the account's passkeys.
    Passkey,
    /// One of the recovery codes (now spent); `left` remain.
    RecoveryCode { left: i64 },
    /// Wrong, replayed, or not a code at all (recorded as a failure).
    Wrong,
    /// Too many failures on this account or from this address (recorded as denied).
    Throttled,
}

/// Checks a code of `owner`'s second factor: a six-digit code of its authenticator (each time
/// step accepted once) or one of its unused recovery codes (spent, and audited, here). Wrong
/// codes are recorded as failures of `stage` and count against the sign-in throttle.
fn check_code(
    conn: &mut PgConnection,
    keys: &SecondFactorKeys,
    actor: &Actor,
    code: &str,
    stage: &str,
) -> Result<SignInCode, AppError> {
    let (owner, target) = account_of(actor)?;
    let factor = confirmed_factor(conn, owner)?;
    // Recovery codes stand in for any factor: an account with passkeys alone has them too.
    let enrolled = factor.is_some() || PasskeyRow::count(conn, owner)? > 0;
    let outcome = match (factor, totp::parse_code(code), recovery::normalize(code)) {
        (Some(factor), Some(code), _) => {
            let secret = keys.seal.open(owner, &factor.secret_sealed)?;
            match totp::check(&secret, &code, actor.now.timestamp(), factor.last_used_step)? {
                totp::CodeMatch::Fresh(step) => {
                    TotpFactor::record_step(conn, factor.id, step)?;
                    Ok(SignInCode::Totp)
                }
                totp::CodeMatch::Replayed => Err("replayed_code"),
                totp::CodeMatch::Wrong => Err("wrong_code"),
            }
        }
        (None, Some(_), _) if enrolled => Err("no_authenticator"),
        (_, None, Some(normalized)) if enrolled => {
            if RecoveryCode::spend(conn, owner, &keys.recovery.hash(&normalized), actor.now)? {
                let left = RecoveryCode::count_unused(conn, owner)?;
                audit::record(
                    conn,
                    actor,
                    Entry::new(AuditAction::SecondFactorRecoveryCodeUse)
                        .target(target.clone())
                        .details(json!({ "left": left, "stage": stage })),
                )?;
                Ok(SignInCode::RecoveryCode { left })
            } else {
                Err("wrong_recovery_code")
            }
        }
        _ if enrolled => Err("not_a_code"),
        // Every factor was removed meanwhile: nothing can complete this step.
        _ => Err("no_second_factor"),
    };
    match outcome {
        Ok(accepted) => Ok(accepted),
        Err(reason) => {
            record_failure(conn, actor, target, Outcome::Failure, json!({ "stage": stage, "reason": reason }))?;
            Ok(SignInCode::Wrong)
        }
    }
}

/// Checks the second factor of `account`, whose password was correct (see [`check_code`]).
/// On success the sign-in is recorded as complete, in the same transaction.
pub fn complete_sign_in(
    conn: &mut PgConnection,
    keys: &SecondFactorKeys,
    account: &SignedIn,
    actor: &Actor,
    code: &str,
) -> Result<SignInCode, AppError> {
    let (_, target) = account_of(actor)?;
    if login::is_throttled(conn, account.email(), actor.client_ip)? {
        record_failure(conn, actor, target, Outcome::Denied, json!({ "stage": "sign_in", "reason": "throttled" }))?;
        return Ok(SignInCode::Throttled);
    }
    let accepted = check_code(conn, keys, actor, code, "sign_in")?;
    if let SignInCode::Totp | SignInCode::RecoveryCode { .. } = accepted {
        let method = if accepted == SignInCode::Totp { "totp" } else { "recovery_code" };
        login::record_success(conn, account, actor, Some(method))?;
    }
    Ok(accepted)
}

/// Checks a passkey of `account`, whose password was correct: the browser's `response` to
/// the challenge kept in `state`. On success the sign-in is recorded as complete, in the same
/// transaction; failures count against the sign-in throttle like wrong codes.
pub fn complete_sign_in_with_passkey(
    conn: &mut PgConnection,
    party: &RelyingParty,
    account: &SignedIn,
    actor: &Actor,
    state: Option<&webauthn_rs::prelude::PasskeyAuthentication>,
    response: &str,
) -> Result<SignInCode, AppError> {
    let (_, target) = account_of(actor)?;
    if login::is_throttled(conn, account.email(), actor.client_ip)? {
        record_failure(conn, actor, target, Outcome::Denied, json!({ "stage": "sign_in", "reason": "throttled" }))?;
        return Ok(SignInCode::Throttled);
    }
    if passkey::check_assertion(conn, party, actor, state, response, "sign_in")?.is_none() {
        return Ok(SignInCode::Wrong);
    }
    login::record_success(conn, account, actor, Some("passkey"))?;
    Ok(SignInCode::Passkey)
}

/// What the "Confirm it's you" page (sudo mode) asks of an account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfirmWith {
    /// Its second factor: a code (of its authenticator app, or a recovery code), or one of
    /// its passkeys when it has any.
    SecondFactor { authenticator: bool, passkeys: bool },
    /// Its password (an account without a second factor); the hash to check it against.
    Password(Option<String>),
}

/// How a confirmation (sudo mode) turned out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Confirmed {
    Yes,
    Wrong,
    Throttled,
}

/// The first half of a confirmation: refused when throttled (recorded as denied), otherwise
/// what to ask the account for. `password_hash` is the account's, for one without a factor.
pub fn confirm_identity_with(
    conn: &mut PgConnection,
    actor: &Actor,
    email: &str,
    password_hash: Option<String>,
) -> Result<Result<ConfirmWith, Confirmed>, AppError> {
    let (owner, target) = account_of(actor)?;
    if login::is_throttled(conn, email, actor.client_ip)? {
        record_failure(conn, actor, target, Outcome::Denied, json!({ "stage": "confirm", "reason": "throttled" }))?;
        return Ok(Err(Confirmed::Throttled));
    }
    let SignInMethods { authenticator, passkeys } = sign_in_methods(conn, owner)?;
    Ok(Ok(if authenticator || passkeys {
        ConfirmWith::SecondFactor { authenticator, passkeys }
    } else {
        ConfirmWith::Password(password_hash)
    }))
}

/// Confirms the person with a code of their second factor (see [`check_code`]); audited
/// either way.
pub fn confirm_identity_by_code(
    conn: &mut PgConnection,
    keys: &SecondFactorKeys,
    actor: &Actor,
    code: &str,
) -> Result<Confirmed, AppError> {
    match check_code(conn, keys, actor, code, "confirm")? {
        SignInCode::Totp | SignInCode::Passkey | SignInCode::RecoveryCode { .. } => {
            record_confirmed(conn, actor, "second_factor")?;
            Ok(Confirmed::Yes)
        }
        SignInCode::Wrong => Ok(Confirmed::Wrong),
        SignInCode::Throttled => Ok(Confirmed::Throttled),
    }
}

/// Confirms the person with one of their passkeys (see [`passkey::check_assertion`]); audited
/// either way.
pub fn confirm_identity_by_passkey(
    conn: &mut PgConnection,
    party: &RelyingParty,
    actor: &Actor,
    state: Option<&webauthn_rs::prelude::PasskeyAuthentication>,
    response: &str,
) -> Result<Confirmed, AppError> {
    if passkey::check_assertion(conn, party, actor, state, response, "confirm")?.is_none() {
        return Ok(Confirmed::Wrong);
    }
    record_confirmed(conn, actor, "passkey")?;
    Ok(Confirmed::Yes)
}

/// Records the outcome of a password given to confirm the person (checked by the caller, off
/// the executor): a wrong one exactly like a failed sign-in, so it counts against the same
/// throttle.
pub fn record_confirm_password(conn: &mut PgConnection, actor: &Actor, correct: bool) -> Result<Confirmed, AppError> {
    let (_, target) = account_of(actor)?;
    if correct {
        record_confirmed(conn, actor, "password")?;
        return Ok(Confirmed::Yes);
    }
    audit::record(
        conn,
        actor,
        Entry::new(AuditAction::LoginFailure)
            .target(Target::new("account", "", target.label))
            .outcome(Outcome::Failure)
            .details(json!({ "stage": "confirm", "reason": "invalid_credentials" })),
    )?;
    Ok(Confirmed::Wrong)
}

fn record_confirmed(conn: &mut PgConnection, actor: &Actor, method: &str) -> Result<(), AppError> {
    let (_, target) = account_of(actor)?;
    audit::record(
        conn,
        actor,
        Entry::new(AuditAction::SessionConfirm).target(target).details(json!({ "method": method })),
    )?;
    Ok(())
}
