//! Signing in: throttling, password verification (off the executor, with a dummy hash for
//! unknown accounts) and the audit trail of every attempt.
//!
//! Throttling counts the `login.failure` events of the audit log, so every instance behind
//! the load balancer sees the same counts and the limit cannot be multiplied by instances.
//! Failures on one account count per client address first: someone who knows a colleague's
//! email cannot lock them out from their own machine. A much higher limit for the account
//! from all addresses together bounds distributed guessing.

use crate::services::audit::AuditAction;
use chrono::{Duration, Utc};

use crate::{
    auth::password::PasswordHashers,
    db::{
        Database,
        models::{AuditEvent, StaffAccount, User},
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

/// Checks `email` and `password` and records the attempt.
pub async fn sign_in(
    db: &Database,
    passwords: &PasswordHashers,
    email: &str,
    password: String,
    client_ip: ClientIp,
) -> Result<SignedIn, LoginError> {
    // Whatever was typed is normalized the same way accounts are, and bounded, so that the
    // throttle counts attempts on one account together.
    let email: String = email.trim().to_lowercase().chars().take(254).collect();
    let lookup_email = email.clone();
    let (throttled, account) = db
        .run(move |conn| {
            let since = Utc::now() - Duration::minutes(WINDOW_MINUTES);
            let (by_account, by_account_from_here) =
                AuditEvent::count_login_failures_for_account(conn, &lookup_email, client_ip.network(), since)?;
            let by_ip = match client_ip.network() {
                Some(ip) => AuditEvent::count_login_failures_from_ip(conn, ip, since)?,
                None => 0,
            };
            let account = match User::find_by_email(conn, &lookup_email)? {
                Some(user) => Some(Account::User(user)),
                None => StaffAccount::find_by_email(conn, &lookup_email)?.map(Account::Staff),
            };
            let throttled =
                by_account_from_here >= ACCOUNT_FROM_ADDRESS_LIMIT || by_account >= ACCOUNT_LIMIT || by_ip >= IP_LIMIT;
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
            Account::User(user) => {
                User::record_login(conn, user.id)?;
                let actor = Actor {
                    kind: ActorKind::User {
                        id: user.id,
                        organization_id: user.organization_id,
                        email: user.email.clone(),
                        is_admin: user.is_admin,
                    },
                    client_ip,
                    now: Utc::now(),
                };
                audit::record(
                    conn,
                    &actor,
                    Entry::new(AuditAction::LoginSuccess).target(Target::new("user", user.id, &user.email)),
                )?;
                SignedIn::User(user)
            }
            Account::Staff(staff) => {
                StaffAccount::record_login(conn, staff.id)?;
                let actor = Actor {
                    kind: ActorKind::Staff { id: staff.id, email: staff.email.clone() },
                    client_ip,
                    now: Utc::now(),
                };
                audit::record(
                    conn,
                    &actor,
                    Entry::new(AuditAction::LoginSuccess).target(Target::new("staff", staff.id, &staff.email)),
                )?;
                SignedIn::Staff(staff)
            }
        };
        Ok(Ok(signed_in))
    })
    .await?
}
