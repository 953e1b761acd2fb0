//! Forgotten passwords (issue 19, item 6): "Forgot your password?" on the sign-in page mails
//! a one-time link, valid for an hour, to a web user's or a support specialist's address. The link is an ordinary
//! set-password link (`password_links`: only the token's SHA-256 is stored, it works once,
//! and using it ends all the account's sessions), so there is one mechanism for invitations,
//! administrators' resets and forgotten passwords.
//!
//! The answer is the same whether the address belongs to an account or not. Every request is
//! written to the audit log (`login.password_reset_request`, naming the address as typed,
//! like a failed sign-in), and those entries are what throttles requests, per address and
//! per client address, for every instance alike. The token itself is never stored, logged or
//! put in the outbox administrators read: it only travels in the mail.

use chrono::Duration;
use diesel::{PgConnection, prelude::*};
use serde_json::json;

use crate::{
    db::{
        models::{
            StaffAccount, User,
            password_link::{LinkAccount, LinkPurpose, PasswordLink},
        },
        schema::audit_events,
    },
    error::AppError,
    services::{
        Actor,
        audit::{self, AuditAction, Entry, Outcome, Target},
        login::{IP_LIMIT, WINDOW_MINUTES},
        users::token_hash,
    },
};

/// Requests for one address within [`WINDOW_MINUTES`] before more are refused (a mailbox is
/// not flooded, and the link of the last one is the one that works).
pub const ADDRESS_LIMIT: i64 = 5;

/// How long a reset link works.
pub fn link_lifetime() -> Duration {
    Duration::hours(1)
}

/// What became of a request.
#[derive(Debug)]
pub enum Requested {
    /// Too many requests for this address or from this client address.
    Throttled,
    /// Accepted; for an active account (a web user or a support specialist), its address
    /// and the new link's token (to be mailed, never shown).
    Accepted(Option<(String, String)>),
}

/// Normalizes an address as sign-in does, so that the throttle counts one address together.
pub fn normalize(email: &str) -> String {
    email.trim().to_lowercase().chars().take(254).collect()
}

/// Handles a request for `email` by `actor` (anonymous, with the client address): throttles,
/// audits, and issues a link for the active account of that address (addresses are unique
/// across web users and staff, as sign-in finds them).
pub fn request(conn: &mut PgConnection, actor: &Actor, email: &str) -> Result<Requested, AppError> {
    let email = normalize(email);
    let since = actor.now - Duration::minutes(WINDOW_MINUTES);
    let requests = || {
        audit_events::table
            .filter(audit_events::action.eq(AuditAction::LoginPasswordResetRequest.code()))
            .filter(audit_events::occurred_at.gt(since))
            .into_boxed()
    };
    // Only accepted requests count for the address: refused ones from anywhere must not keep
    // its owner from resetting their password.
    let for_address: i64 = requests()
        .filter(audit_events::target_label.eq(&email))
        .filter(audit_events::result.eq(Outcome::Success.code()))
        .count()
        .get_result(conn)?;
    let from_here: i64 = match actor.client_ip.network() {
        Some(ip) => requests().filter(audit_events::client_ip.eq(ip)).count().get_result(conn)?,
        None => 0,
    };
    let throttled = for_address >= ADDRESS_LIMIT || from_here >= IP_LIMIT;
    // (account, its organization, its address)
    let account = if throttled {
        None
    } else if let Some(user) = User::find_by_email(conn, &email)?.filter(|u| u.active) {
        Some((LinkAccount::User(user.id), Some(user.organization_id), user.email))
    } else {
        StaffAccount::find_by_email(conn, &email)?
            .filter(|s| s.active)
            .map(|s| (LinkAccount::Staff(s.id), None, s.email))
    };
    audit::record(
        conn,
        actor,
        Entry::new(AuditAction::LoginPasswordResetRequest)
            .organization(account.as_ref().and_then(|(_, organization, _)| *organization))
            .target(Target::new("account", "", email.clone()))
            .outcome(if throttled { Outcome::Denied } else { Outcome::Success })
            .details(json!({ "throttled": throttled, "link_sent": account.is_some() })),
    )?;
    if throttled {
        return Ok(Requested::Throttled);
    }
    let Some((account, _, address)) = account else { return Ok(Requested::Accepted(None)) };
    let token = crate::secrets::random_token(32);
    PasswordLink::insert(conn, account, LinkPurpose::Reset, &token_hash(&token), actor.now + link_lifetime())?;
    Ok(Requested::Accepted(Some((address, token))))
}
