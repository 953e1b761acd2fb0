//! Admin → Key policy: default and maximum key lifetime, never-expiring keys, default re-key
//! grace, quotas, who must sign in with a second factor, and the deactivation of keys nobody
//! used for a number of days, and the days before expiry that key reminders go out.
//! Administrators only.

use actix_web::{HttpResponse, get, post, web};
use askama::Template;
use serde::Deserialize;

use crate::{
    auth::OrgAdmin,
    domain::SecondFactorPolicy,
    error::{AppResult, FieldErrors},
    routes::{extract::HtmlForm, saved},
    services::{
        keys::GRACE_CHOICES,
        organizations::{self, PolicyInput},
    },
    state::AppState,
    views::{PageContext, Section, render},
};

#[derive(Debug, Clone, Default, Deserialize)]
pub struct PolicyForm {
    #[serde(default)]
    default_lifetime_days: String,
    #[serde(default)]
    max_lifetime_days: String,
    #[serde(default)]
    allow_never_expires: Option<String>,
    #[serde(default)]
    default_grace_minutes: String,
    #[serde(default)]
    quota_per_user: String,
    #[serde(default)]
    quota_per_organization: String,
    #[serde(default)]
    creations_per_hour: String,
    #[serde(default)]
    second_factor_required_for: String,
    /// Absent (an older form, a script): the setting stays as it is.
    #[serde(default)]
    deactivate_unused_after_days: Option<String>,
    /// Absent: the setting stays as it is.
    #[serde(default)]
    key_reminder_days: Option<String>,
    /// Who gets the mail about organization keys: `creator_and_admins` or `creator`.
    /// Absent: the setting stays as it is.
    #[serde(default)]
    key_mail_to: Option<String>,
}

impl PolicyForm {
    /// The entered value of one of the quota fields (the template loops over them).
    pub fn quota_value(&self, field: &str) -> &str {
        match field {
            "quota_per_user" => &self.quota_per_user,
            "quota_per_organization" => &self.quota_per_organization,
            _ => &self.creations_per_hour,
        }
    }
}

#[derive(Template)]
#[template(path = "admin/policy.html")]
struct PolicyPage {
    ctx: PageContext,
    values: PolicyForm,
    errors: FieldErrors,
    grace_choices: Vec<(i32, &'static str)>,
    factor_choices: [SecondFactorPolicy; 4],
}

fn page(admin: &OrgAdmin, values: PolicyForm, errors: FieldErrors) -> AppResult<PolicyPage> {
    let ctx = PageContext::for_user(admin, "Key policy", Section::AdminPolicy)?;
    Ok(PolicyPage {
        ctx,
        values,
        errors,
        grace_choices: GRACE_CHOICES.to_vec(),
        factor_choices: SecondFactorPolicy::ALL,
    })
}

#[get("/admin/policy")]
pub async fn show(admin: OrgAdmin) -> AppResult<HttpResponse> {
    let org = &admin.organization;
    let values = PolicyForm {
        default_lifetime_days: org.key_default_lifetime_days.to_string(),
        max_lifetime_days: org.key_max_lifetime_days.map(|d| d.to_string()).unwrap_or_default(),
        allow_never_expires: org.key_allow_never_expires.then(|| "on".into()),
        default_grace_minutes: org.key_default_grace_minutes.to_string(),
        quota_per_user: org.key_quota_per_user.to_string(),
        quota_per_organization: org.key_quota_per_organization.to_string(),
        creations_per_hour: org.key_creations_per_hour.to_string(),
        second_factor_required_for: org.second_factor_required_for.code().to_string(),
        deactivate_unused_after_days: Some(org.deactivate_unused_after_days.map(|d| d.to_string()).unwrap_or_default()),
        key_reminder_days: Some(org.reminder_days().iter().map(i32::to_string).collect::<Vec<_>>().join(", ")),
        key_mail_to: Some(if org.notify_admins_of_keys { "creator_and_admins" } else { "creator" }.into()),
    };
    render(&page(&admin, values, FieldErrors::new())?)
}

#[post("/admin/policy")]
pub async fn update(
    admin: OrgAdmin,
    state: web::Data<AppState>,
    form: HtmlForm<PolicyForm>,
) -> AppResult<HttpResponse> {
    let values = form.into_inner();
    let input = PolicyInput {
        default_lifetime_days: values.default_lifetime_days.clone(),
        max_lifetime_days: values.max_lifetime_days.clone(),
        allow_never_expires: values.allow_never_expires.is_some(),
        default_grace_minutes: values.default_grace_minutes.clone(),
        quota_per_user: values.quota_per_user.clone(),
        quota_per_organization: values.quota_per_organization.clone(),
        creations_per_hour: values.creations_per_hour.clone(),
        second_factor_required_for: values.second_factor_required_for.clone(),
        deactivate_unused_after_days: values.deactivate_unused_after_days.clone(),
        key_reminder_days: values.key_reminder_days.clone(),
        // Anything but the two offered values keeps the setting (only a script sends those).
        notify_admins_of_keys: match values.key_mail_to.as_deref() {
            Some("creator_and_admins") => Some(true),
            Some("creator") => Some(false),
            _ => None,
        },
    };
    let actor = admin.actor();
    let organization_id = admin.organization.id;
    let result =
        state.db.transaction(move |conn| organizations::update_policy(conn, &actor, organization_id, &input)).await;
    saved::answer(
        &admin.session,
        result,
        |_| {
            let message = "Saved the key policy. It applies to keys created, edited and re-keyed from now on, \
                           a required second factor from each person's next sign-in, and the deactivation of \
                           unused keys and the expiry reminders from the next run of the background jobs (within \
                           the hour).";
            (message.into(), "/admin/policy".into())
        },
        |errors| async { page(&admin, values, errors) },
    )
    .await
}
