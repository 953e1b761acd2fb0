//! What a caller asks of a key, typed: the key dialogs (parsed in `routes::keys::submitted`),
//! `keyward create-key` and the management API build the same [`KeyInput`], checked for
//! syntax on construction. What depends on the database and the owner — which actions exist,
//! which assets are the organization's, what the key policy allows, the owner's default
//! actions — is settled once, by [`KeySettings::resolve`] inside the key service, with every
//! problem as a field error so a form can show them all at once.

use std::net::IpAddr;

use chrono::NaiveDate;
use diesel::PgConnection;
use ipnetwork::IpNetwork;

use crate::{
    db::models::{
        ApiAction, User,
        asset::{asset_ids_in_org, group_ids_in_org},
        user::ActionCeiling,
    },
    domain::text::{clean_line, clean_text},
    error::{AppError, FieldErrors},
    keys::format::looks_like_secret,
    services::keys::{
        access::OwnerContext,
        policy::{KeyPolicy, end_of_day},
    },
};

/// Most allowed IP ranges per key.
pub const MAX_CIDRS: usize = 50;

/// Which API actions a key may perform.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ActionScope {
    All,
    Only(Vec<ApiAction>),
}

/// Which assets a key may touch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AssetScope {
    All,
    Only { asset_ids: Vec<i64>, group_ids: Vec<i64> },
}

/// The settings of a key as the key service stores them, settled by [`KeySettings::resolve`].
#[derive(Debug, Clone)]
pub struct KeySettings {
    pub comment: String,
    pub actions: ActionScope,
    pub assets: AssetScope,
    pub cidrs: Vec<IpNetwork>,
    pub expires_at: Option<chrono::DateTime<chrono::Utc>>,
    pub proxy_user_id: Option<i64>,
}

/// Parses allowed IP ranges: CIDRs or single addresses, separated by commas, spaces or new
/// lines; host bits are cleared (`10.1.2.3/8` → `10.0.0.0/8`) and duplicates removed.
pub fn parse_cidrs(input: &str) -> Result<Vec<IpNetwork>, String> {
    let mut cidrs: Vec<IpNetwork> = Vec::new();
    let mut unreadable = Vec::new();
    for item in input.split(|c: char| c == ',' || c.is_whitespace()).filter(|s| !s.is_empty()) {
        let network = match item.parse::<IpNetwork>() {
            Ok(network) => IpNetwork::new(network.network(), network.prefix()).ok(),
            Err(_) => item.parse::<IpAddr>().ok().map(IpNetwork::from),
        };
        match network {
            Some(network) if !cidrs.contains(&network) => cidrs.push(network),
            Some(_) => {}
            // Every entry that cannot be read is named at once, not one per attempt.
            None => unreadable.push(format!("{item:?}")),
        }
    }
    match unreadable.as_slice() {
        [] => {}
        [one] => return Err(format!("{one} is not an IP address or range (like 203.0.113.0/24).")),
        many => {
            return Err(format!("{} are not IP addresses or ranges (like 203.0.113.0/24).", many.join(", ")));
        }
    }
    if cidrs.len() > MAX_CIDRS {
        return Err(format!("At most {MAX_CIDRS} IP ranges per key."));
    }
    Ok(cidrs)
}

/// A key name: 1–100 printable characters, and nothing that looks like a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyName(String);

impl KeyName {
    pub fn parse(input: &str) -> Result<Self, String> {
        let name = clean_line(input, 1, 100, "name")?;
        if looks_like_secret(&name) {
            return Err("A name must not contain a key, a token or any other secret. Say what uses it \
                        instead, e.g. \"Dispatch integration (production)\"."
                .into());
        }
        Ok(Self(name))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A key's comment: up to 1,000 characters, and nothing that looks like a key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyComment(String);

impl KeyComment {
    pub fn parse(input: &str) -> Result<Self, String> {
        let comment = clean_text(input, 1000, "comment")?;
        if looks_like_secret(&comment) {
            return Err("A comment must not contain a key or any other secret.".into());
        }
        Ok(Self(comment))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The code of an API action as a caller names it (`positions.read`); whether such an action
/// exists is the service's to check.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ActionCode(String);

impl ActionCode {
    pub fn parse(input: &str) -> Result<Self, String> {
        let code = input.trim();
        let valid = !code.is_empty()
            && code.len() <= 100
            && code.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | ':'));
        if valid { Ok(Self(code.to_string())) } else { Err(format!("{code:?} is not an API action code.")) }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Which actions a caller asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ActionChoice {
    /// Everything the key's owner may use: all actions, or a personal key's owner's ceiling.
    OwnersDefault,
    All,
    Only(Vec<ActionCode>),
}

/// When a caller asks a key to expire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpiryChoice {
    /// The key policy's default lifetime.
    PolicyDefault,
    Never,
    /// At the end of this day (UTC).
    On(NaiveDate),
    /// At the end of the day this many days from today.
    InDays(u32),
}

/// What a caller asks of a key's settings (everything but its name and environment).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyInput {
    pub comment: KeyComment,
    pub actions: ActionChoice,
    /// Asset and group ids as named; only the organization's own count.
    pub assets: AssetScope,
    pub cidrs: Vec<IpNetwork>,
    pub expiry: ExpiryChoice,
    /// The user calls with an organization key are attributed to (organization keys only).
    pub proxy_user_id: Option<i64>,
}

impl Default for KeyInput {
    /// A key with the owner's default actions, all assets, any address, the policy's lifetime.
    fn default() -> Self {
        Self {
            comment: KeyComment::default(),
            actions: ActionChoice::OwnersDefault,
            assets: AssetScope::All,
            cidrs: Vec::new(),
            expiry: ExpiryChoice::PolicyDefault,
            proxy_user_id: None,
        }
    }
}

impl KeySettings {
    /// Settles `input` for a key of `owner` under `policy` on `today`: every problem becomes
    /// a field error (`actions`, `assets`, `expires_on`, `proxy_user_id`).
    pub fn resolve(
        conn: &mut PgConnection,
        input: KeyInput,
        owner: &OwnerContext,
        policy: &KeyPolicy,
        today: NaiveDate,
    ) -> Result<KeySettings, AppError> {
        let mut errors = FieldErrors::new();
        let actions = errors.take("actions", resolve_actions(conn, input.actions, owner)?);
        let assets = errors.take("assets", resolve_assets(conn, input.assets, owner)?);
        let expires_at = errors.take("expires_on", resolve_expiry(input.expiry, policy, today));
        let proxy_user_id = errors.take("proxy_user_id", resolve_proxy(conn, input.proxy_user_id, owner)?);
        let (((actions, assets), expires_at), proxy_user_id) =
            errors.finish(actions.zip(assets).zip(expires_at).zip(proxy_user_id))?;
        Ok(KeySettings { comment: input.comment.0, actions, assets, cidrs: input.cidrs, expires_at, proxy_user_id })
    }
}

fn resolve_actions(
    conn: &mut PgConnection,
    choice: ActionChoice,
    owner: &OwnerContext,
) -> Result<Result<ActionScope, String>, AppError> {
    Ok(match choice {
        ActionChoice::All => Ok(ActionScope::All),
        ActionChoice::OwnersDefault => match owner {
            OwnerContext::User { owner, .. } => match &owner.ceiling {
                ActionCeiling::All => Ok(ActionScope::All),
                ActionCeiling::Only(ids) if ids.is_empty() => {
                    Err(format!("The roles of {} allow no API actions.", owner.user.email))
                }
                ActionCeiling::Only(ids) => Ok(ActionScope::Only(
                    ApiAction::list_active(conn)?.into_iter().filter(|a| ids.contains(&a.id)).collect(),
                )),
            },
            _ => Ok(ActionScope::All),
        },
        ActionChoice::Only(codes) if codes.is_empty() => {
            Err("Choose at least one action, or allow all actions.".into())
        }
        ActionChoice::Only(codes) => {
            let codes: Vec<String> = codes.into_iter().map(|c| c.0).collect();
            let found = ApiAction::find_active_by_codes(conn, &codes)?;
            match codes.iter().find(|c| !found.iter().any(|a| &a.code == *c)) {
                Some(unknown) => Err(format!("There is no API action {unknown:?} (any more); choose again.")),
                None => Ok(ActionScope::Only(found)),
            }
        }
    })
}

fn resolve_assets(
    conn: &mut PgConnection,
    scope: AssetScope,
    owner: &OwnerContext,
) -> Result<Result<AssetScope, String>, AppError> {
    Ok(match (owner.organization(), scope) {
        // Service-provider keys have no organization and so no asset restriction.
        (None, _) | (_, AssetScope::All) => Ok(AssetScope::All),
        (Some(org), AssetScope::Only { asset_ids, group_ids }) => {
            // Only the organization's own assets count, whatever the caller says.
            let asset_ids = asset_ids_in_org(conn, org.id, &asset_ids)?;
            let group_ids = group_ids_in_org(conn, org.id, &group_ids)?;
            if asset_ids.is_empty() && group_ids.is_empty() {
                Err("Choose at least one asset or asset group, or allow all assets.".into())
            } else {
                Ok(AssetScope::Only { asset_ids, group_ids })
            }
        }
    })
}

/// The expiry instant of `choice` under `policy` (`None`: never).
fn resolve_expiry(
    choice: ExpiryChoice,
    policy: &KeyPolicy,
    today: NaiveDate,
) -> Result<Option<chrono::DateTime<chrono::Utc>>, String> {
    let date = match choice {
        ExpiryChoice::Never if policy.allow_never_expires => return Ok(None),
        ExpiryChoice::Never => {
            return Err("Keys must expire: the key policy does not allow keys that never expire.".into());
        }
        ExpiryChoice::PolicyDefault => policy.default_expiry_date(today),
        ExpiryChoice::On(date) => date,
        ExpiryChoice::InDays(0) => return Err("A key must live at least one day.".into()),
        ExpiryChoice::InDays(days) => today
            .checked_add_days(chrono::Days::new(u64::from(days)))
            .ok_or_else(|| format!("{days} days from now is too far away."))?,
    };
    if date < today {
        return Err("The expiry date must not be in the past.".into());
    }
    if date > policy.latest_expiry_date(today) {
        return Err(format!(
            "The key policy allows at most {} days: choose {} or earlier.",
            policy.max_days(),
            policy.latest_expiry_date(today)
        ));
    }
    Ok(Some(end_of_day(date)))
}

fn resolve_proxy(
    conn: &mut PgConnection,
    proxy_user_id: Option<i64>,
    owner: &OwnerContext,
) -> Result<Result<Option<i64>, String>, AppError> {
    let OwnerContext::Organization(org) = owner else { return Ok(Ok(None)) };
    Ok(match proxy_user_id {
        // Any user of the organization may be the proxy, even an inactive one.
        Some(id) if User::find_in_org(conn, org.id, id).is_ok() => Ok(Some(id)),
        _ => Err("Choose the user to whom calls with this key are attributed.".into()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::Environment;

    #[test]
    fn names_with_secrets_are_refused() {
        assert!(KeyName::parse("Dispatch integration").is_ok());
        assert!(KeyName::parse("").is_err());
        assert!(KeyName::parse(&"n".repeat(101)).is_err());
        let key = crate::keys::GeneratedKey::generate(Environment::Live);
        assert!(KeyName::parse(&format!("my key {}", key.expose())).is_err());
        assert!(KeyName::parse("tab\tname").is_err());
        assert!(KeyComment::parse(&format!("see {}", key.expose())).is_err());
    }

    #[test]
    fn action_codes_are_plain_identifiers() {
        assert_eq!(ActionCode::parse(" positions.read ").unwrap().as_str(), "positions.read");
        assert!(ActionCode::parse("").is_err());
        assert!(ActionCode::parse("drop table").is_err());
    }

    #[test]
    fn ip_ranges_are_normalized() {
        let cidrs = parse_cidrs("10.1.2.3/8, 192.0.2.7\n2001:db8::1/32 10.0.0.0/8").unwrap();
        let text: Vec<String> = cidrs.iter().map(|c| c.to_string()).collect();
        assert_eq!(text, ["10.0.0.0/8", "192.0.2.7/32", "2001:db8::/32"]);
        assert!(parse_cidrs("").unwrap().is_empty());
        assert!(parse_cidrs("10.0.0.0/33").is_err());
        assert!(parse_cidrs("example.com").is_err());
        // Every bad entry is named at once.
        let error = parse_cidrs("10.0.0.0/33, 192.0.2.1, banana").unwrap_err();
        assert_eq!(error, "\"10.0.0.0/33\", \"banana\" are not IP addresses or ranges (like 203.0.113.0/24).");
    }

    #[test]
    fn expiry_follows_the_policy() {
        let today = NaiveDate::from_ymd_opt(2026, 1, 1).unwrap();
        let on = |y, m, d| ExpiryChoice::On(NaiveDate::from_ymd_opt(y, m, d).unwrap());
        let strict = KeyPolicy {
            default_lifetime_days: 30,
            max_lifetime_days: Some(90),
            allow_never_expires: false,
            default_grace_minutes: 240,
        };
        assert!(resolve_expiry(ExpiryChoice::Never, &strict, today).is_err(), "never is not allowed");
        assert!(resolve_expiry(on(2026, 4, 1), &strict, today).is_ok());
        assert!(resolve_expiry(on(2026, 4, 2), &strict, today).unwrap_err().contains("at most 90 days"));
        assert!(resolve_expiry(on(2025, 12, 31), &strict, today).is_err());
        assert!(resolve_expiry(ExpiryChoice::InDays(0), &strict, today).is_err());
        assert!(resolve_expiry(ExpiryChoice::InDays(91), &strict, today).is_err());
        assert_eq!(
            resolve_expiry(ExpiryChoice::PolicyDefault, &strict, today).unwrap(),
            Some(end_of_day(NaiveDate::from_ymd_opt(2026, 1, 31).unwrap()))
        );
        let lax = KeyPolicy { allow_never_expires: true, max_lifetime_days: None, ..strict };
        assert_eq!(resolve_expiry(ExpiryChoice::Never, &lax, today).unwrap(), None);
        assert!(resolve_expiry(on(2030, 1, 1), &lax, today).is_ok());
        assert!(resolve_expiry(on(9999, 12, 31), &lax, today).unwrap_err().contains("at most 3650 days"));
        assert!(resolve_expiry(ExpiryChoice::InDays(u32::MAX), &lax, today).is_err());
    }
}
