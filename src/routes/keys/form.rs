//! The create/edit form as the template sees it: the user's values (kept on errors), field
//! errors, and the choices this actor may make (actions within their ceiling, the
//! organization's assets and groups, proxy users) under the key policy.

use chrono::NaiveDate;
use diesel::PgConnection;

use super::submitted::KeyForm;
use crate::{
    db::models::{
        ApiAction, ApiKey, User,
        asset::{Asset, AssetGroup},
    },
    error::{AppError, FieldErrors},
    services::{
        Actor,
        actor::ActorKind,
        keys::{
            KeyPolicy,
            access::{self, OwnerContext},
            ceiling,
            lifecycle::policy_of,
        },
    },
};

/// A checkbox or option.
#[derive(Debug, Clone)]
pub struct Choice {
    pub value: String,
    pub label: String,
    pub hint: String,
    pub checked: bool,
}

impl Choice {
    /// An API action, checked if its code is among `chosen`.
    pub fn action(action: ApiAction, chosen: &[String]) -> Self {
        Choice {
            checked: chosen.contains(&action.code),
            value: action.code.clone(),
            label: action.code,
            hint: action.description,
        }
    }

    /// An asset, checked if its id is among `chosen`.
    pub fn asset(asset: Asset, chosen: &[String]) -> Self {
        let value = asset.id.to_string();
        Choice {
            checked: chosen.contains(&value),
            value,
            label: format!("{} · {}", asset.code, asset.name),
            hint: String::new(),
        }
    }

    /// An asset group, checked if its id is among `chosen`.
    pub fn group(group: AssetGroup, chosen: &[String]) -> Self {
        let value = group.id.to_string();
        Choice { checked: chosen.contains(&value), value, label: group.name, hint: String::new() }
    }
}

/// Everything the key form template needs.
#[derive(Debug, Clone)]
pub struct KeyFormView {
    pub editing: bool,
    pub action_url: String,
    pub values: KeyForm,
    pub errors: FieldErrors,
    pub actions: Vec<Choice>,
    pub may_grant_all_actions: bool,
    pub actions_all: bool,
    pub assets: Vec<Choice>,
    pub groups: Vec<Choice>,
    pub shows_assets: bool,
    pub assets_all: bool,
    pub proxies: Option<Vec<Choice>>,
    pub policy: KeyPolicy,
    pub never: bool,
    pub today: String,
    pub latest: Option<String>,
    /// Why no key can be created (nothing to grant), if so.
    pub nothing_to_grant: bool,
    /// A note above the fields (e.g. which actions were preselected, and why).
    pub notice: Option<String>,
}

impl KeyFormView {
    pub fn error(&self, field: &str) -> Option<&str> {
        self.errors.get(field)
    }

    pub fn policy_hint(&self) -> String {
        let mut hint = format!("Default: {} days.", self.policy.default_lifetime_days);
        hint.push_str(&format!(" At most {} days.", self.policy.max_days()));
        hint
    }
}

/// The values of the create form for a new key under `policy`, made `today`.
pub fn new_values(policy: &KeyPolicy, today: NaiveDate, form_token: String, return_to: String) -> KeyForm {
    KeyForm {
        environment: "live".into(),
        actions_mode: "all".into(),
        assets_mode: "all".into(),
        expires_on: policy.default_expiry_date(today).to_string(),
        form_token,
        return_to,
        ..KeyForm::default()
    }
}

/// The values of the edit form of `key`.
pub fn edit_values(conn: &mut PgConnection, key: &ApiKey, return_to: String) -> Result<KeyForm, AppError> {
    let actions: Vec<String> = ApiKey::actions_of(conn, &[key.id])?.remove(&key.id).unwrap_or_default();
    let assets = ApiKey::assets_of(conn, &[key.id])?.remove(&key.id).unwrap_or_default();
    let groups = ApiKey::groups_of(conn, &[key.id])?.remove(&key.id).unwrap_or_default();
    Ok(KeyForm {
        name: key.name.clone(),
        comment: key.comment.clone(),
        environment: key.environment.clone(),
        actions_mode: if key.all_actions { "all".into() } else { "selected".into() },
        action: actions,
        assets_mode: if key.all_assets { "all".into() } else { "selected".into() },
        asset: assets.into_iter().map(|(id, _, _)| id.to_string()).collect(),
        asset_group: groups.into_iter().map(|(id, _)| id.to_string()).collect(),
        allowed_ips: key.cidrs().iter().map(|c| c.to_string()).collect::<Vec<_>>().join("\n"),
        expires_on: key.expires_at.map(|at| at.date_naive().to_string()).unwrap_or_default(),
        never_expires: key.expires_at.is_none().then(|| "on".into()),
        proxy_user_id: key.proxy_user_id.map(|id| id.to_string()).unwrap_or_default(),
        form_token: String::new(),
        return_to,
    })
}

/// Builds the form view for `actor` and a key of `owner` (existing `key` when editing).
pub fn build(
    conn: &mut PgConnection,
    actor: &Actor,
    owner: &OwnerContext,
    key: Option<&ApiKey>,
    values: KeyForm,
    errors: FieldErrors,
    action_url: String,
) -> Result<KeyFormView, AppError> {
    let user = access::user_context(conn, actor)?;
    let ceilings = access::granting_ceilings(user.as_ref(), owner);
    let existing: Vec<i64> = match key {
        Some(key) => ApiKey::action_ids(conn, key.id)?,
        None => vec![],
    };
    let actions: Vec<Choice> = ApiAction::list_active(conn)?
        .into_iter()
        .filter(|a| existing.contains(&a.id) || ceilings.iter().all(|c| c.allows(a.id)))
        .map(|a| Choice::action(a, &values.action))
        .collect();
    let may_grant_all_actions = key.is_some_and(|k| k.all_actions) || ceilings.iter().all(|c| c.is_all());
    // A new key starts with everything its creator may grant, so a name alone creates a
    // working key: "all actions" where allowed, else every action offered, ticked.
    let mut actions = actions;
    if key.is_none() && values.actions_mode == "all" && !may_grant_all_actions {
        actions.iter_mut().for_each(|choice| choice.checked = true);
    }
    // And an organization key's calls go to its creator unless another proxy is chosen.
    let default_proxy = match (&actor.kind, key) {
        (ActorKind::User { id, .. }, None) if values.proxy_user_id.is_empty() => Some(id.to_string()),
        _ => None,
    };
    let proxy_checked = |id: &str| values.proxy_user_id == id || default_proxy.as_deref() == Some(id);
    let (assets, groups, proxies) = match owner.organization() {
        Some(org) => {
            let assets =
                Asset::list_for_org(conn, org.id)?.into_iter().map(|a| Choice::asset(a, &values.asset)).collect();
            let groups = AssetGroup::list_for_org(conn, org.id)?
                .into_iter()
                .map(|g| Choice::group(g, &values.asset_group))
                .collect();
            let proxies = matches!(owner, OwnerContext::Organization(_)).then(|| -> Result<Vec<Choice>, AppError> {
                Ok(User::list_for_org(conn, org.id)?
                    .into_iter()
                    .filter(|u| ceiling::may_attribute_to(actor, u) || values.proxy_user_id == u.id.to_string())
                    .map(|u| Choice {
                        checked: proxy_checked(&u.id.to_string()),
                        value: u.id.to_string(),
                        label: format!("{} <{}>", u.display_name, u.email),
                        hint: if u.active { String::new() } else { "inactive".into() },
                    })
                    .collect())
            });
            (assets, groups, proxies.transpose()?)
        }
        None => (vec![], vec![], None),
    };
    let policy = policy_of(owner);
    let today = actor.now.date_naive();
    let nothing_to_grant = key.is_none() && actions.is_empty() && !may_grant_all_actions;
    Ok(KeyFormView {
        editing: key.is_some(),
        action_url,
        actions_all: values.actions_mode != "selected" && may_grant_all_actions,
        assets_all: values.assets_mode != "selected",
        never: values.never_expires.is_some(),
        values,
        errors,
        actions,
        may_grant_all_actions,
        shows_assets: owner.organization().is_some(),
        assets,
        groups,
        proxies,
        policy,
        today: today.to_string(),
        latest: Some(policy.latest_expiry_date(today).to_string()),
        nothing_to_grant,
        notice: None,
    })
}
