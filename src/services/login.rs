//! Signing in: throttling, password verification (off the executor, with a dummy hash for
//! unknown accounts) and the audit trail of every attempt.
//!
//! Throttling counts the `login.failure` events of the audit log, so every instance behind
//! the load balancer sees the same counts and the limit cannot be multiplied by instances.
//! Failures on one account count per client address first: someone who knows a colleague's
//! email cannot lock them out from their own machine. A much higher limit for the account
//! from all addresses together bounds distributed guessing.

use crate::services::audit::AuditAction;
use chrono::{DateTime, Duration, Utc};
use diesel::{PgConnection, QueryResult};

use crate::{
    auth::password::PasswordHashers,
    db::{
        Database,
        models::{
            AuditEvent, StaffAccount, User,
            second_factor::{FactorOwner, has_any_factor},
        },
    },
    domain::ClientIp,
    error::AppError,
    services::{
        Actor,
        actor::ActorKind,
        audit::{self, Entry, Outcome, Target},
    },
};

/// Failed attempts on one account from one address within [`WINDOW_MINUTES`] before that
/// address is throttled for the account.
pub const ACCOUNT_FROM_ADDRESS_LIMIT: i64 = 5;
/// Failed attempts on one account from all addresses within [`WINDOW_MINUTES`] before the
/// account is throttled.
pub const ACCOUNT_LIMIT: i64 = 50;
/// Failed attempts per client address within [`WINDOW_MINUTES`] before it is throttled.
pub const IP_LIMIT: i64 = 20;
pub const WINDOW_MINUTES: i64 = 15;

/// Who signed in.
#[derive(Debug, Clone)]
pub enum SignedIn {
    User(User),
    Staff(StaffAccount),
}

impl SignedIn {
    /// The account as the services and the audit log see it.
    pub fn actor(&self, client_ip: ClientIp, now: DateTime<Utc>) -> Actor {
        let kind = match self {
            SignedIn::User(user) => ActorKind::User {
                id: user.id,
                organization_id: user.organization_id,
                email: user.email.clone(),
                is_admin: user.is_admin,
            },
            SignedIn::Staff(staff) => ActorKind::Staff { id: staff.id, email: staff.email.clone() },
        };
        Actor { kind, client_ip, now }
    }

    pub fn factor_owner(&self) -> FactorOwner {
        match self {
            SignedIn::User(user) => FactorOwner::User(user.id),
            SignedIn::Staff(staff) => FactorOwner::Staff(staff.id),
        }
    }

    pub fn email(&self) -> &str {
        match self {
            SignedIn::User(user) => &user.email,
            SignedIn::Staff(staff) => &staff.email,
        }
    }

    fn target(&self) -> Target {
        match self {
            SignedIn::User(user) => Target::new("user", user.id, &user.email),
            SignedIn::Staff(staff) => Target::new("staff", staff.id, &staff.email),
        }
    }
}

/// A correct password: the account, and what it must still do to be signed in.
#[derive(Debug, Clone)]
pub struct PasswordAccepted {
    pub account: SignedIn,
    pub next: NextStep,
}

/// What follows a correct password.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NextStep {
    /// Nothing: signed in (recorded as such).
    SignedIn,
    /// The second factor the account has.
    SecondFactor,
    /// Setting one up: the policy requires a second factor the account does not have yet.
    Enrol,
}

/// Why a sign-in failed; the message never says whether the account exists.
#[derive(Debug)]
pub enum LoginError {
    Invalid,
    Throttled,
    Other(AppError),
}

impl From<AppError> for LoginError {
    fn from(e: AppError) -> Self {
        LoginError::Other(e)
    }
}

enum Account {
    User(User),
    Staff(StaffAccount),
}

impl Account {
    fn password_hash(&self) -> Option<String> {
        match self {
            Account::User(u) => u.password_hash.clone(),
            Account::Staff(s) => s.password_hash.clone(),
        }
    }

    fn active(&self) -> bool {
        match self {
            Account::User(u) => u.active,
            Account::Staff(s) => s.active,
        }
    }
}

/// Whether sign-in attempts on the account `email` (normalized) from `client_ip` are
/// throttled now: by failures on the account from this address, on the account from
/// anywhere, or from this address on any account. The second-factor step asks the same.
pub fn is_throttled(conn: &mut PgConnection, email: &str, client_ip: ClientIp) -> QueryResult<bool> {
    let since = Utc::now() - Duration::minutes(WINDOW_MINUTES);
    let (by_account, by_account_from_here) =
        AuditEvent::count_login_failures_for_account(conn, email, client_ip.network(), since)?;
    let by_ip = match client_ip.network() {
        Some(ip) => AuditEvent::count_login_failures_from_ip(conn, ip, since)?,
        None => 0,
    };
    Ok(by_account_from_here >= ACCOUNT_FROM_ADDRESS_LIMIT || by_account >= ACCOUNT_LIMIT || by_ip >= IP_LIMIT)
}

/// Checks `email` and `password` and records the attempt.
pub async fn sign_in(
    db: &Database,
    passwords: &PasswordHashers,
    email: &str,
    password: String,
    client_ip: ClientIp,
) -> Result<PasswordAccepted, LoginError> {
    // Whatever was typed is normalized the same way accounts are, and bounded, so that the
    // throttle counts attempts on one account together.
    let email: String = email.trim().to_lowercase().chars().take(254).collect();
    let lookup_email = email.clone();
    let (throttled, account) = db
        .run(move |conn| {
            let throttled = is_throttled(conn, &lookup_email, client_ip)?;
            let account = match User::find_by_email(conn, &lookup_email)? {
                Some(user) => Some(Account::User(user)),
                None => StaffAccount::find_by_email(conn, &lookup_email)?.map(Account::Staff),
            };
            Ok((throttled, account))
        })
        .await?;

    let stored_hash = account.as_ref().and_then(Account::password_hash);
    // Verify even when throttled or unknown so that timing reveals nothing.
    let password_ok = passwords.verify(stored_hash, password).await?;
    let success = password_ok && !throttled && account.as_ref().is_some_and(Account::active);

    db.transaction(move |conn| {
        let actor = Actor::anonymous(client_ip);
        if !success {
            let reason = if throttled { "throttled" } else { "invalid_credentials" };
            let organization_id = match &account {
                Some(Account::User(u)) => Some(u.organization_id),
                _ => None,
            };
            audit::record(
                conn,
                &actor,
                Entry::new(AuditAction::LoginFailure)
                    .organization(organization_id)
                    .target(Target::new("account", "", email.clone()))
                    .outcome(if throttled { Outcome::Denied } else { Outcome::Failure })
                    .details(serde_json::json!({ "reason": reason })),
            )?;
            return Ok(Err(if throttled { LoginError::Throttled } else { LoginError::Invalid }));
        }
        let signed_in = match account.expect("success implies an account") {
            Account::User(user) => SignedIn::User(user),
            Account::Staff(staff) => SignedIn::Staff(staff),
        };
        let actor = signed_in.actor(client_ip, Utc::now());
        // With a second factor (or one the policy requires and the account lacks) the
        // password alone signs nobody in: the attempt is recorded as such, and the sign-in
        // (last login, `login.success`) waits for the code or the enrolment.
        let next = if has_any_factor(conn, signed_in.factor_owner())? {
            NextStep::SecondFactor
        } else if crate::services::second_factor::required_for(conn, &signed_in)? {
            NextStep::Enrol
        } else {
            NextStep::SignedIn
        };
        match next {
            NextStep::SignedIn => record_success(conn, &signed_in, &actor, None)?,
            NextStep::SecondFactor => {
                audit::record(conn, &actor, Entry::new(AuditAction::LoginSecondFactorAsked).target(signed_in.target()))?
            }
            NextStep::Enrol => audit::record(
                conn,
                &actor,
                Entry::new(AuditAction::LoginSecondFactorAsked)
                    .target(signed_in.target())
                    .details(serde_json::json!({ "enrolment": true })),
            )?,
        }
        Ok(Ok(PasswordAccepted { account: signed_in, next }))
    })
    .await?
}

/// Records a completed sign-in of `signed_in` (its last login time and `login.success`),
/// naming the second factor that completed it, if any.
pub fn record_success(
    conn: &mut PgConnection,
    signed_in: &SignedIn,
    actor: &Actor,
    second_factor: Option<&'static str>,
) -> QueryResult<()> {
    match signed_in {
        SignedIn::User(user) => User::record_login(conn, user.id)?,
        SignedIn::Staff(staff) => StaffAccount::record_login(conn, staff.id)?,
    }
    let details = match second_factor {
        Some(method) => serde_json::json!({ "second_factor": method }),
        None => serde_json::json!({}),
    };
    audit::record(conn, actor, Entry::new(AuditAction::LoginSuccess).target(signed_in.target()).details(details))
}
