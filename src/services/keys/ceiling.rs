//! The ceiling rule (SPEC §3): nobody obtains a working secret (create, re-key, reactivate)
//! or widens a key (edit) beyond what they themselves may grant. Narrowing, deactivating and
//! deleting stay open to everyone who may manage the key.
//!
//! What one may grant:
//! - actions: the granting user's ceiling (administrators: all), and for a personal key also
//!   its owner's ceiling (the verifier applies the owner's again at every request);
//! - assets: any asset of the organization (roles do not limit assets), so the organization
//!   scope of the key's asset lists is the asset ceiling;
//! - secrets that act as someone: a web user obtains a secret of another user's personal key
//!   only as an administrator (the secret acts as its owner, so a re-key by a "Key: Manage"
//!   holder would let them act as a colleague), and a non-administrator never obtains one of a
//!   key that acts as, or is attributed to, an administrator.
//!
//! Support staff (service-provider keys) and the operator's commands grant without a ceiling;
//! the owner's ceiling still applies to personal keys they create.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use diesel::{OptionalExtension, PgConnection};
use ipnetwork::IpNetwork;

use crate::{
    db::models::{ApiKey, User, user::ActionCeiling},
    error::AppError,
    services::{
        actor::Actor,
        keys::{
            access::{OwnerContext, UserContext},
            input::{ActionScope, AssetScope, KeySettings},
        },
    },
};

/// How an operation would hand out or widen a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Issue {
    /// A new key and its secret.
    Create,
    /// A new secret for an existing key.
    Rekey,
    /// An existing secret made to work again.
    Reactivate,
}

/// Everything about a key that decides what its secret can do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyReach {
    pub actions: ActionCeiling,
    pub assets: AssetScope,
    pub cidrs: Vec<IpNetwork>,
    pub expires_at: Option<DateTime<Utc>>,
    pub proxy_user_id: Option<i64>,
}

impl KeyReach {
    /// The assets a stored key reaches: all, or its assets and asset groups.
    pub fn assets_of_key(conn: &mut PgConnection, key: &ApiKey) -> Result<AssetScope, AppError> {
        if key.all_assets {
            return Ok(AssetScope::All);
        }
        let asset_ids = ApiKey::assets_of(conn, &[key.id])?
            .remove(&key.id)
            .unwrap_or_default()
            .into_iter()
            .map(|(id, _, _)| id)
            .collect();
        let group_ids =
            ApiKey::groups_of(conn, &[key.id])?.remove(&key.id).unwrap_or_default().into_iter().map(|g| g.0).collect();
        Ok(AssetScope::Only { asset_ids, group_ids })
    }

    /// The reach of a stored key.
    pub fn of_key(conn: &mut PgConnection, key: &ApiKey) -> Result<Self, AppError> {
        let actions = if key.all_actions {
            ActionCeiling::All
        } else {
            ActionCeiling::Only(ApiKey::action_ids(conn, key.id)?.into_iter().collect())
        };
        let assets = Self::assets_of_key(conn, key)?;
        Ok(Self { actions, assets, cidrs: key.cidrs(), expires_at: key.expires_at, proxy_user_id: key.proxy_user_id })
    }

    /// The reach a key would have with `settings`.
    pub fn of_settings(settings: &KeySettings) -> Self {
        Self {
            actions: match &settings.actions {
                ActionScope::All => ActionCeiling::All,
                ActionScope::Only(actions) => ActionCeiling::Only(actions.iter().map(|a| a.id).collect()),
            },
            assets: settings.assets.clone(),
            cidrs: settings.cidrs.clone(),
            expires_at: settings.expires_at,
            proxy_user_id: settings.proxy_user_id,
        }
    }

    /// Whether this reach is nowhere wider than `before`: no action, asset, address range or
    /// day of life that `before` did not have, and the same proxy.
    pub fn is_within(&self, before: &KeyReach) -> bool {
        covers(&before.actions, &self.actions)
            && assets_cover(&before.assets, &self.assets)
            && cidrs_cover(&before.cidrs, &self.cidrs)
            && match (before.expires_at, self.expires_at) {
                (None, _) => true,
                (Some(_), None) => false,
                // Forms set expiry by date: the same date is no widening, whatever its hour.
                (Some(limit), Some(at)) => at.date_naive() <= limit.date_naive(),
            }
            && self.proxy_user_id == before.proxy_user_id
    }
}

impl KeyReach {
    /// Whether this reach is within `before` and strictly smaller in some way: fewer actions,
    /// assets or address ranges, or an earlier expiry date. Saving a key unchanged (or with
    /// only a new comment) is not narrowing it.
    pub fn narrows(&self, before: &KeyReach) -> bool {
        let ids = |ids: &[i64]| ids.iter().copied().collect::<BTreeSet<i64>>();
        let fewer_assets = match (&before.assets, &self.assets) {
            (AssetScope::All, AssetScope::All) => false,
            (AssetScope::Only { asset_ids, group_ids }, AssetScope::Only { asset_ids: now, group_ids: now_groups }) => {
                ids(asset_ids) != ids(now) || ids(group_ids) != ids(now_groups)
            }
            _ => true,
        };
        let nets = |nets: &[IpNetwork]| nets.iter().map(|n| n.to_string()).collect::<BTreeSet<String>>();
        let earlier = match (before.expires_at, self.expires_at) {
            (None, Some(_)) => true,
            (Some(limit), Some(at)) => at.date_naive() < limit.date_naive(),
            _ => false,
        };
        self.is_within(before)
            && (self.actions != before.actions || fewer_assets || nets(&self.cidrs) != nets(&before.cidrs) || earlier)
    }
}

/// Whether `outer` allows every action of `inner`.
pub fn covers(outer: &ActionCeiling, inner: &ActionCeiling) -> bool {
    match (outer, inner) {
        (ActionCeiling::All, _) => true,
        (ActionCeiling::Only(_), ActionCeiling::All) => false,
        (ActionCeiling::Only(outer), ActionCeiling::Only(inner)) => inner.is_subset(outer),
    }
}

/// The actions allowed by both.
pub fn intersect(a: &ActionCeiling, b: &ActionCeiling) -> ActionCeiling {
    match (a, b) {
        (ActionCeiling::All, other) | (other, ActionCeiling::All) => other.clone(),
        (ActionCeiling::Only(a), ActionCeiling::Only(b)) => {
            ActionCeiling::Only(a.intersection(b).copied().collect::<BTreeSet<i64>>())
        }
    }
}

fn assets_cover(outer: &AssetScope, inner: &AssetScope) -> bool {
    match (outer, inner) {
        (AssetScope::All, _) => true,
        (AssetScope::Only { .. }, AssetScope::All) => false,
        (
            AssetScope::Only { asset_ids: outer_assets, group_ids: outer_groups },
            AssetScope::Only { asset_ids, group_ids },
        ) => {
            asset_ids.iter().all(|id| outer_assets.contains(id)) && group_ids.iter().all(|id| outer_groups.contains(id))
        }
    }
}

/// Whether every address `inner` admits is admitted by `outer` (empty: any address).
fn cidrs_cover(outer: &[IpNetwork], inner: &[IpNetwork]) -> bool {
    if outer.is_empty() {
        return true;
    }
    !inner.is_empty()
        && inner.iter().all(|net| {
            outer
                .iter()
                .any(|o| o.is_ipv4() == net.is_ipv4() && o.prefix() <= net.prefix() && o.contains(net.network()))
        })
}

/// The actions `actor` may put on a key of `owner`: their own ceiling (staff and operator
/// commands: all), narrowed by a personal key's owner's.
pub fn grantable(user: Option<&UserContext>, owner: &OwnerContext) -> ActionCeiling {
    let mut grant = user.map_or(ActionCeiling::All, |ctx| ctx.ceiling.clone());
    if let OwnerContext::User { owner, .. } = owner {
        grant = intersect(&grant, &owner.ceiling);
    }
    grant
}

/// Whether a secret of a key with this owner and proxy acts as an administrator.
fn acts_as_admin(conn: &mut PgConnection, owner: &OwnerContext, proxy_user_id: Option<i64>) -> Result<bool, AppError> {
    Ok(match owner {
        OwnerContext::User { owner, .. } => owner.user.is_admin,
        OwnerContext::Organization(org) => match proxy_user_id {
            Some(id) => User::find_in_org(conn, org.id, id).optional()?.is_some_and(|u| u.is_admin),
            None => false,
        },
        OwnerContext::ServiceProvider(_) => false,
    })
}

/// Whether `actor` is a web user who is not an administrator (or a token of one).
fn is_plain_user(actor: &Actor) -> bool {
    actor.acting_user().is_some_and(|user| !user.is_admin)
}

/// Whether `actor` may attribute a key's calls to `proxy` (only administrators attribute
/// keys to administrators).
pub fn may_attribute_to(actor: &Actor, proxy: &User) -> bool {
    !proxy.is_admin || !is_plain_user(actor)
}

/// Refuses (403) handing out a working secret of a key with `reach` when it goes beyond what
/// `actor` may grant.
pub fn check_issue(
    conn: &mut PgConnection,
    actor: &Actor,
    user: Option<&UserContext>,
    owner: &OwnerContext,
    reach: &KeyReach,
    issue: Issue,
) -> Result<(), AppError> {
    if is_plain_user(actor) {
        let someone_elses = matches!((owner, actor.acting_user()),
            (OwnerContext::User { owner, .. }, Some(acting)) if owner.user.id != acting.id);
        // A re-key shows the secret to whoever makes it; reactivation shows nothing, so it is
        // only bounded by the actions below.
        let obtains_secret = matches!(issue, Issue::Create | Issue::Rekey);
        if obtains_secret && (someone_elses || acts_as_admin(conn, owner, reach.proxy_user_id)?) {
            return Err(AppError::Forbidden);
        }
    }
    // The secret's effective actions: a personal key never does more than its owner may.
    let effective = match owner {
        OwnerContext::User { owner, .. } => intersect(&reach.actions, &owner.ceiling),
        _ => reach.actions.clone(),
    };
    let grant = user.map_or(ActionCeiling::All, |ctx| ctx.ceiling.clone());
    if covers(&grant, &effective) { Ok(()) } else { Err(AppError::Forbidden) }
}

/// Refuses (403) an edit from `before` to `after` that leaves the key beyond what `actor` may
/// grant, unless it narrows the key: whoever cannot grant a key may only make it do less.
pub fn check_edit(
    conn: &mut PgConnection,
    actor: &Actor,
    user: Option<&UserContext>,
    owner: &OwnerContext,
    before: &KeyReach,
    after: &KeyReach,
) -> Result<(), AppError> {
    let proxy_allowed = !is_plain_user(actor)
        || after.proxy_user_id == before.proxy_user_id
        || !acts_as_admin(conn, owner, after.proxy_user_id)?;
    if (proxy_allowed && covers(&grantable(user, owner), &after.actions)) || after.narrows(before) {
        Ok(())
    } else {
        Err(AppError::Forbidden)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn only(ids: &[i64]) -> ActionCeiling {
        ActionCeiling::Only(ids.iter().copied().collect())
    }

    fn reach(actions: ActionCeiling) -> KeyReach {
        KeyReach {
            actions,
            assets: AssetScope::All,
            cidrs: vec![],
            expires_at: Some(DateTime::<Utc>::from_timestamp(2_000_000_000, 0).unwrap()),
            proxy_user_id: Some(1),
        }
    }

    #[test]
    fn action_sets_cover_their_subsets_only() {
        assert!(covers(&ActionCeiling::All, &only(&[1, 2])));
        assert!(covers(&only(&[1, 2]), &only(&[2])));
        assert!(!covers(&only(&[1]), &only(&[1, 2])));
        assert!(!covers(&only(&[1, 2]), &ActionCeiling::All));
        assert_eq!(intersect(&only(&[1, 2]), &only(&[2, 3])), only(&[2]));
        assert_eq!(intersect(&ActionCeiling::All, &only(&[3])), only(&[3]));
    }

    #[test]
    fn narrowing_is_within_and_widening_is_not() {
        let before = reach(ActionCeiling::All);
        assert!(reach(only(&[1])).is_within(&before));
        assert!(before.is_within(&before));

        let mut later = before.clone();
        later.expires_at = Some(DateTime::<Utc>::from_timestamp(2_100_000_000, 0).unwrap());
        assert!(!later.is_within(&before), "a later expiry widens");
        later.expires_at = None;
        assert!(!later.is_within(&before), "never expiring widens");

        let mut other_proxy = before.clone();
        other_proxy.proxy_user_id = Some(2);
        assert!(!other_proxy.is_within(&before), "another proxy is not a narrowing");

        let mut fenced = before.clone();
        fenced.cidrs = vec!["10.0.0.0/8".parse().unwrap()];
        assert!(fenced.is_within(&before));
        let mut tighter = fenced.clone();
        tighter.cidrs = vec!["10.1.0.0/16".parse().unwrap()];
        assert!(tighter.is_within(&fenced));
        assert!(!before.is_within(&fenced), "dropping the address ranges widens");
        let mut elsewhere = fenced.clone();
        elsewhere.cidrs = vec!["192.0.2.0/24".parse().unwrap()];
        assert!(!elsewhere.is_within(&fenced));

        let mut listed = before.clone();
        listed.assets = AssetScope::Only { asset_ids: vec![1, 2], group_ids: vec![] };
        let mut fewer = listed.clone();
        fewer.assets = AssetScope::Only { asset_ids: vec![2], group_ids: vec![] };
        assert!(fewer.is_within(&listed));
        assert!(!before.is_within(&listed), "all assets widens a list");
        assert!(fewer.narrows(&listed) && !listed.narrows(&listed), "saving unchanged is no narrowing");
        let mut grouped = listed.clone();
        grouped.assets = AssetScope::Only { asset_ids: vec![1], group_ids: vec![7] };
        assert!(!grouped.is_within(&listed), "a new group widens");
    }
}
