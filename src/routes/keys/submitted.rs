//! What the key dialogs submit, and its parsing into the key service's typed input: field by
//! field, every problem a field error, so the dialog can be shown again with the user's input.
//! What needs the database (which actions exist, the policy) is the service's to settle.

use chrono::NaiveDate;
use serde::Deserialize;

use crate::{
    error::FieldErrors,
    keys::Environment,
    services::keys::{
        AssetScope,
        input::{ActionChoice, ActionCode, ExpiryChoice, KeyComment, KeyInput, KeyName, parse_cidrs},
    },
};

/// The fields of the key dialogs, as submitted (every field optional; parsing decides).
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

/// What the create dialog asks for besides the settings.
pub struct NewKeyHead {
    pub name: KeyName,
    pub environment: Environment,
    pub form_token: Option<String>,
}

/// A parsed dialog: the input, and the fields that did not parse. A field that did not parse
/// stands in the input as a value the service accepts (all actions, no comment…), so the
/// service can still be asked about the others and the dialog show every problem at once; an
/// input with errors is never acted on.
pub struct Parsed<T> {
    pub value: T,
    pub errors: FieldErrors,
}

impl KeyForm {
    /// The create dialog's fields: name and environment (if they parsed), and the settings.
    pub fn parse_new(&self) -> Parsed<(Option<NewKeyHead>, KeyInput)> {
        let Parsed { value: mut input, mut errors } = self.settings(true);
        // No choice at all (a name-only request): the key service's defaults for the creator.
        if self.actions_mode.is_empty() && self.action.is_empty() {
            input.actions = ActionChoice::OwnersDefault;
        }
        let name = errors.take("name", KeyName::parse(&self.name));
        let environment = errors.take("environment", parse_environment(&self.environment));
        let token = self.form_token.trim();
        let head = name.zip(environment).map(|(name, environment)| NewKeyHead {
            name,
            environment,
            form_token: (16..=64).contains(&token.len()).then(|| token.to_string()),
        });
        Parsed { value: (head, input), errors }
    }

    /// The settings fields (everything but name and environment), as the edit dialog has them.
    pub fn parse_settings(&self) -> Parsed<KeyInput> {
        self.settings(false)
    }

    /// The settings fields; for a new key (`new`), an empty expiry date is the policy's default.
    fn settings(&self, new: bool) -> Parsed<KeyInput> {
        let mut errors = FieldErrors::new();
        let stand_in = KeyInput::default();
        let value = KeyInput {
            comment: errors.take("comment", KeyComment::parse(&self.comment)).unwrap_or_default(),
            actions: errors.take("actions", self.actions()).unwrap_or(ActionChoice::All),
            assets: errors.take("assets", self.assets()).unwrap_or(AssetScope::All),
            cidrs: errors.take("allowed_ips", parse_cidrs(&self.allowed_ips)).unwrap_or_default(),
            expiry: errors.take("expires_on", self.expiry(new)).unwrap_or(stand_in.expiry),
            proxy_user_id: self.proxy_user_id.trim().parse::<i64>().ok(),
        };
        Parsed { value, errors }
    }

    fn actions(&self) -> Result<ActionChoice, String> {
        match self.actions_mode.as_str() {
            "all" | "" => Ok(ActionChoice::All),
            "selected" => {
                let mut codes = self.action.iter().map(|c| ActionCode::parse(c)).collect::<Result<Vec<_>, _>>()?;
                codes.sort();
                codes.dedup();
                Ok(ActionChoice::Only(codes))
            }
            _ => Err("Choose all actions or a list of actions.".into()),
        }
    }

    fn assets(&self) -> Result<AssetScope, String> {
        match self.assets_mode.as_str() {
            "all" | "" => Ok(AssetScope::All),
            "selected" => {
                Ok(AssetScope::Only { asset_ids: parse_ids(&self.asset)?, group_ids: parse_ids(&self.asset_group)? })
            }
            _ => Err("Choose all assets or a list of assets.".into()),
        }
    }

    fn expiry(&self, new: bool) -> Result<ExpiryChoice, String> {
        if self.never_expires.is_some() {
            return Ok(ExpiryChoice::Never);
        }
        match self.expires_on.trim() {
            "" if new => Ok(ExpiryChoice::PolicyDefault),
            "" => Err("Choose an expiry date.".into()),
            date => NaiveDate::parse_from_str(date, "%Y-%m-%d")
                .map(ExpiryChoice::On)
                .map_err(|_| "Enter the date as YYYY-MM-DD.".to_string()),
        }
    }
}

fn parse_environment(input: &str) -> Result<Environment, String> {
    match input.trim() {
        "" => Ok(Environment::Live),
        other => Environment::from_code(other).ok_or_else(|| "Choose live or test.".to_string()),
    }
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
