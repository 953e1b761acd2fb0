//! Key form input: what the create and edit dialogs (and `keyward create-key`) submit, and
//! its validation into [`KeySettings`]. Validation collects every problem as a field error so
//! the form can be shown again with the user's input and all messages at once.

use std::net::IpAddr;

use chrono::{NaiveDate, Utc};
use diesel::PgConnection;
use ipnetwork::IpNetwork;
use serde::Deserialize;

use crate::{
    db::models::{
        ApiAction, User,
        asset::{asset_ids_in_org, group_ids_in_org},
    },
    domain::text::{clean_line, clean_text},
    error::{AppError, FieldErrors},
    keys::{Environment, format::looks_like_secret},
    services::keys::{
        access::OwnerContext,
        policy::{KeyPolicy, end_of_day},
    },
};

/// Most allowed IP ranges per key.
pub const MAX_CIDRS: usize = 50;

/// The fields of the key dialogs, as submitted (every field optional; validation decides).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct KeyForm {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub comment: String,
    #[serde(default)]
    pub environment: String,
    /// `all` or `selected`.
    #[serde(default)]
    pub actions_mode: String,
    #[serde(default)]
    pub action: Vec<String>,
    /// `all` or `selected`.
    #[serde(default)]
    pub assets_mode: String,
    #[serde(default)]
    pub asset: Vec<String>,
    #[serde(default)]
    pub asset_group: Vec<String>,
    #[serde(default)]
    pub allowed_ips: String,
    #[serde(default)]
    pub expires_on: String,
    #[serde(default)]
    pub never_expires: Option<String>,
    #[serde(default)]
    pub proxy_user_id: String,
    /// Idempotency token of the create form.
    #[serde(default)]
    pub form_token: String,
    /// Where to go after success (validated by the handler).
    #[serde(default)]
    pub return_to: String,
}

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

/// Validated key settings (everything but the name).
#[derive(Debug, Clone)]
pub struct KeySettings {
    pub comment: String,
    pub actions: ActionScope,
    pub assets: AssetScope,
    pub cidrs: Vec<IpNetwork>,
    pub expires_at: Option<chrono::DateTime<Utc>>,
    pub proxy_user_id: Option<i64>,
}

/// Checks a key name: 1–100 printable characters and nothing that looks like a key.
pub fn parse_name(input: &str) -> Result<String, String> {
    let name = clean_line(input, 1, 100, "name")?;
    if looks_like_secret(&name) {
        return Err("A key name must not contain a key or any other secret. Describe the key instead, \
                    e.g. \"Dispatch integration (production)\"."
            .into());
    }
    Ok(name)
}

fn parse_comment(input: &str) -> Result<String, String> {
    let comment = clean_text(input, 1000, "comment")?;
    if looks_like_secret(&comment) {
        return Err("A comment must not contain a key or any other secret.".into());
    }
    Ok(comment)
}

pub fn parse_environment(input: &str) -> Result<Environment, String> {
    match input.trim() {
        "" => Ok(Environment::Live),
        other => Environment::from_code(other).ok_or_else(|| "Choose live or test.".to_string()),
    }
}

/// Parses allowed IP ranges: CIDRs or single addresses, separated by commas, spaces or new
/// lines; host bits are cleared (`10.1.2.3/8` → `10.0.0.0/8`) and duplicates removed.
pub fn parse_cidrs(input: &str) -> Result<Vec<IpNetwork>, String> {
    let mut cidrs: Vec<IpNetwork> = Vec::new();
    for item in input.split(|c: char| c == ',' || c.is_whitespace()).filter(|s| !s.is_empty()) {
        let network = match item.parse::<IpNetwork>() {
            Ok(network) => IpNetwork::new(network.network(), network.prefix()).map_err(|e| e.to_string())?,
            Err(_) => match item.parse::<IpAddr>() {
                Ok(ip) => IpNetwork::from(ip),
                Err(_) => return Err(format!("{item:?} is not an IP address or range (like 203.0.113.0/24).")),
            },
        };
        if !cidrs.contains(&network) {
            cidrs.push(network);
        }
    }
    if cidrs.len() > MAX_CIDRS {
        return Err(format!("At most {MAX_CIDRS} IP ranges per key."));
    }
    Ok(cidrs)
}

/// Parses the expiry: a date within the policy, or "never" where the policy allows it.
pub fn parse_expiry(
    date: &str,
    never: bool,
    policy: &KeyPolicy,
    today: NaiveDate,
) -> Result<Option<chrono::DateTime<Utc>>, String> {
    if never {
        return if policy.allow_never_expires {
            Ok(None)
        } else {
            Err("Keys must expire: the key policy does not allow keys that never expire.".into())
        };
    }
    let date = date.trim();
    if date.is_empty() {
        return Err("Choose an expiry date.".into());
    }
    let date = NaiveDate::parse_from_str(date, "%Y-%m-%d").map_err(|_| "Enter the date as YYYY-MM-DD.".to_string())?;
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

fn parse_ids(values: &[String]) -> Result<Vec<i64>, String> {
    let mut ids = Vec::new();
    for value in values {
        let id: i64 = value.trim().parse().map_err(|_| "Choose from the list.".to_string())?;
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    Ok(ids)
}

impl KeySettings {
    /// Validates the settings part of `form` for a key of `owner` under `policy`.
    pub fn from_form(
        conn: &mut PgConnection,
        form: &KeyForm,
        owner: &OwnerContext,
        policy: &KeyPolicy,
        errors: &mut FieldErrors,
    ) -> Result<Option<KeySettings>, AppError> {
        let comment = errors.take("comment", parse_comment(&form.comment));
        let actions = match form.actions_mode.as_str() {
            "all" | "" => Some(ActionScope::All),
            "selected" => {
                let codes: Vec<String> = form.action.iter().map(|c| c.trim().to_string()).collect();
                let found = ApiAction::find_active_by_codes(conn, &codes)?;
                if codes.is_empty() {
                    errors.add("actions", "Choose at least one action, or allow all actions.");
                    None
                } else if found.len() != codes.iter().collect::<std::collections::BTreeSet<_>>().len() {
                    errors.add("actions", "Some of the chosen actions no longer exist; choose again.");
                    None
                } else {
                    Some(ActionScope::Only(found))
                }
            }
            _ => {
                errors.add("actions", "Choose all actions or a list of actions.");
                None
            }
        };
        let assets = match (owner.organization(), form.assets_mode.as_str()) {
            (None, _) | (Some(_), "all" | "") => Some(AssetScope::All),
            (Some(org), "selected") => {
                match (parse_ids(&form.asset), parse_ids(&form.asset_group)) {
                    (Ok(asset_ids), Ok(group_ids)) => {
                        // Only the organization's own assets count, whatever the form says.
                        let asset_ids = asset_ids_in_org(conn, org.id, &asset_ids)?;
                        let group_ids = group_ids_in_org(conn, org.id, &group_ids)?;
                        if asset_ids.is_empty() && group_ids.is_empty() {
                            errors.add("assets", "Choose at least one asset or asset group, or allow all assets.");
                            None
                        } else {
                            Some(AssetScope::Only { asset_ids, group_ids })
                        }
                    }
                    (Err(e), _) | (_, Err(e)) => {
                        errors.add("assets", e);
                        None
                    }
                }
            }
            _ => {
                errors.add("assets", "Choose all assets or a list of assets.");
                None
            }
        };
        let cidrs = errors.take("allowed_ips", parse_cidrs(&form.allowed_ips));
        let expires_at = errors.take(
            "expires_on",
            parse_expiry(&form.expires_on, form.never_expires.is_some(), policy, Utc::now().date_naive()),
        );
        let proxy_user_id = match owner {
            OwnerContext::Organization(org) => match form.proxy_user_id.trim().parse::<i64>() {
                // Any user of the organization may be the proxy, even an inactive one.
                Ok(id) if User::find_in_org(conn, org.id, id).is_ok() => Some(Some(id)),
                _ => {
                    errors.add("proxy_user_id", "Choose the user to whom calls with this key are attributed.");
                    None
                }
            },
            _ => Some(None),
        };
        Ok(match (comment, actions, assets, cidrs, expires_at, proxy_user_id) {
            (Some(comment), Some(actions), Some(assets), Some(cidrs), Some(expires_at), Some(proxy_user_id)) => {
                Some(KeySettings { comment, actions, assets, cidrs, expires_at, proxy_user_id })
            }
            _ => None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_with_secrets_are_refused() {
        assert!(parse_name("Dispatch integration").is_ok());
        assert!(parse_name("").is_err());
        assert!(parse_name(&"n".repeat(101)).is_err());
        let key = crate::keys::GeneratedKey::generate(Environment::Live);
        assert!(parse_name(&format!("my key {}", key.expose())).is_err());
        assert!(parse_name("tab\tname").is_err());
    }

    #[test]
    fn ip_ranges_are_normalized() {
        let cidrs = parse_cidrs("10.1.2.3/8, 192.0.2.7\n2001:db8::1/32 10.0.0.0/8").unwrap();
        let text: Vec<String> = cidrs.iter().map(|c| c.to_string()).collect();
        assert_eq!(text, ["10.0.0.0/8", "192.0.2.7/32", "2001:db8::/32"]);
        assert!(parse_cidrs("").unwrap().is_empty());
        assert!(parse_cidrs("10.0.0.0/33").is_err());
        assert!(parse_cidrs("example.com").is_err());
    }

    #[test]
    fn expiry_follows_the_policy() {
        let today = NaiveDate::from_ymd_opt(2026, 1, 1).unwrap();
        let strict = KeyPolicy {
            default_lifetime_days: 30,
            max_lifetime_days: Some(90),
            allow_never_expires: false,
            default_grace_minutes: 240,
        };
        assert!(parse_expiry("", true, &strict, today).is_err(), "never is not allowed");
        assert!(parse_expiry("2026-04-01", false, &strict, today).is_ok());
        assert!(parse_expiry("2026-04-02", false, &strict, today).unwrap_err().contains("at most 90 days"));
        assert!(parse_expiry("2025-12-31", false, &strict, today).is_err());
        assert!(parse_expiry("01/02/2026", false, &strict, today).is_err());
        let lax = KeyPolicy { allow_never_expires: true, max_lifetime_days: None, ..strict };
        assert_eq!(parse_expiry("", true, &lax, today).unwrap(), None);
        assert!(parse_expiry("2030-01-01", false, &lax, today).is_ok());
        assert!(parse_expiry("9999-12-31", false, &lax, today).unwrap_err().contains("at most 3650 days"));
    }
}
