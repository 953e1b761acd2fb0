//! Creating organizations (tenants).

use crate::services::audit::AuditAction;
use diesel::{OptionalExtension, PgConnection};

use crate::{
    db::models::{Organization, ServiceProvider, organization::NewOrganization},
    domain::{SecondFactorPolicy, text::clean_line},
    error::{AppError, FieldErrors},
    services::{
        Actor,
        actor::ActorKind,
        audit::{self, Entry, Target},
    },
};

/// Input of [`create`].
#[derive(Debug, Clone)]
pub struct CreateOrganization {
    pub name: String,
    /// Derived from the name when not given.
    pub slug: Option<String>,
    pub service_provider_id: Option<i64>,
}

/// Checks a slug: 1–63 lower-case letters, digits and inner hyphens.
pub fn parse_slug(input: &str) -> Result<String, String> {
    let slug = input.trim();
    let valid = !slug.is_empty()
        && slug.len() <= 63
        && slug.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !slug.starts_with('-')
        && !slug.ends_with('-');
    if valid {
        Ok(slug.to_string())
    } else {
        Err("Use 1–63 lower-case letters, digits and hyphens (not at the start or end).".into())
    }
}

/// A slug made from a name: `"Acme Logistics, Inc."` → `"acme-logistics-inc"`.
pub fn slugify(name: &str) -> String {
    let mut slug = String::new();
    for c in name.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_alphanumeric() {
            slug.push(c);
        } else if !slug.ends_with('-') && !slug.is_empty() {
            slug.push('-');
        }
    }
    slug.truncate(63);
    slug.trim_end_matches('-').to_string()
}

/// Creates an organization. Only the operator (command line) creates tenants.
pub fn create(conn: &mut PgConnection, actor: &Actor, input: CreateOrganization) -> Result<Organization, AppError> {
    if !matches!(actor.kind, ActorKind::System { .. }) {
        return Err(AppError::Forbidden);
    }
    let mut errors = FieldErrors::new();
    let name = errors.take("name", clean_line(&input.name, 1, 100, "name"));
    let slug = match &input.slug {
        Some(slug) => errors.take("slug", parse_slug(slug)),
        None => name.as_deref().map(slugify).and_then(|s| errors.take("slug", parse_slug(&s))),
    };
    if let Some(provider_id) = input.service_provider_id
        && ServiceProvider::find(conn, provider_id).optional()?.is_none()
    {
        errors.add("provider", format!("There is no service provider with id {provider_id}."));
    }
    if let Some(slug) = &slug
        && Organization::find_by_slug(conn, slug).optional()?.is_some()
    {
        errors.add("slug", format!("The slug {slug:?} is already taken."));
    }
    let (name, slug) = errors.finish(name.zip(slug))?;
    let organization = Organization::insert(
        conn,
        &NewOrganization { slug: &slug, name: &name, service_provider_id: input.service_provider_id },
    )?;
    audit::record(
        conn,
        actor,
        Entry::new(AuditAction::OrganizationCreate)
            .organization(Some(organization.id))
            .service_provider(organization.service_provider_id)
            .target(Target::new("organization", organization.id, &organization.name)),
    )?;
    Ok(organization)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_become_slugs() {
        assert_eq!(slugify("Acme Logistics, Inc."), "acme-logistics-inc");
        assert_eq!(slugify("  --Ünïcode Ltd"), "n-code-ltd");
    }

    #[test]
    fn slugs_are_checked() {
        assert!(parse_slug("acme").is_ok());
        assert!(parse_slug("acme-2").is_ok());
        for bad in ["", "-acme", "acme-", "Acme", "ac me", &"a".repeat(64)] {
            assert!(parse_slug(bad).is_err(), "{bad:?}");
        }
    }
}

/// New key policy values, as entered.
#[derive(Debug, Clone)]
pub struct PolicyInput {
    pub default_lifetime_days: String,
    pub max_lifetime_days: String,
    pub allow_never_expires: bool,
    pub default_grace_minutes: String,
    pub quota_per_user: String,
    pub quota_per_organization: String,
    pub creations_per_hour: String,
    /// Who must sign in with a second factor (a [`SecondFactorPolicy`] code); empty keeps
    /// the current setting.
    pub second_factor_required_for: String,
    /// Deactivate keys nobody used for this many days (the stale-key job); empty: never;
    /// `None` (a form without the field) keeps the current setting.
    pub deactivate_unused_after_days: Option<String>,
    /// Days before expiry that key reminders go out ("14, 7, 1"; empty: none); `None` (a
    /// form without the field) keeps the current setting.
    pub key_reminder_days: Option<String>,
    /// Whether the administrators get the mail about the organization's keys besides each
    /// key's creator; `None` (a form without the field) keeps the current setting.
    pub notify_admins_of_keys: Option<bool>,
}

/// Changes an organization's key policy (administrators). It applies to keys created,
/// edited and re-keyed from now on; existing keys keep their expiry. The stale-key setting
/// is applied by the `stale-keys` job (`services::keys::stale`) at its next run.
pub fn update_policy(
    conn: &mut PgConnection,
    actor: &Actor,
    organization_id: i64,
    input: &PolicyInput,
) -> Result<Organization, AppError> {
    use diesel::prelude::*;

    use crate::db::schema::organizations;
    crate::services::admin::require_admin(conn, actor, organization_id)?;
    let before = Organization::find(conn, organization_id)?;
    let mut errors = FieldErrors::new();
    let days = |text: &str, field: &'static str, errors: &mut FieldErrors| -> Option<i32> {
        match text.trim().parse::<i32>() {
            Ok(days) if (1..=3650).contains(&days) => Some(days),
            _ => {
                errors.add(field, "Enter a number of days from 1 to 3650.");
                None
            }
        }
    };
    let default_days = days(&input.default_lifetime_days, "default_lifetime_days", &mut errors);
    let max_days = if input.max_lifetime_days.trim().is_empty() {
        Some(None)
    } else {
        days(&input.max_lifetime_days, "max_lifetime_days", &mut errors).map(Some)
    };
    let grace = match input.default_grace_minutes.trim().parse::<i32>() {
        Ok(minutes) if crate::services::keys::GRACE_CHOICES.iter().any(|(m, _)| *m == minutes) => Some(minutes),
        _ => {
            errors.add("default_grace_minutes", "Choose one of the offered grace periods.");
            None
        }
    };
    if let (Some(default), Some(Some(max))) = (default_days, max_days)
        && default > max
    {
        errors.add("default_lifetime_days", "The default lifetime cannot be longer than the maximum.");
    }
    // A quota left empty keeps its current value.
    let whole = |text: &str, field: &'static str, max: i32, errors: &mut FieldErrors| -> Option<i32> {
        match text.trim().parse::<i32>() {
            Ok(n) if (1..=max).contains(&n) => Some(n),
            _ => {
                errors.add(field, format!("Enter a whole number from 1 to {max}."));
                None
            }
        }
    };
    let or_current =
        |text: &str, current: i32| if text.trim().is_empty() { current.to_string() } else { text.to_string() };
    let per_user =
        whole(&or_current(&input.quota_per_user, before.key_quota_per_user), "quota_per_user", 1_000_000, &mut errors);
    let per_organization = whole(
        &or_current(&input.quota_per_organization, before.key_quota_per_organization),
        "quota_per_organization",
        10_000_000,
        &mut errors,
    );
    let per_hour = whole(
        &or_current(&input.creations_per_hour, before.key_creations_per_hour),
        "creations_per_hour",
        1_000_000,
        &mut errors,
    );
    let factor_policy = if input.second_factor_required_for.trim().is_empty() {
        Some(before.second_factor_required_for)
    } else {
        let parsed = SecondFactorPolicy::parse(&input.second_factor_required_for);
        if parsed.is_none() {
            errors.add("second_factor_required_for", "Choose one of the offered settings.");
        }
        parsed
    };
    let unused_days = match input.deactivate_unused_after_days.as_deref().map(str::trim) {
        None => Some(before.deactivate_unused_after_days),
        Some("") => Some(None),
        Some(text) => {
            let range = crate::services::keys::stale::POLICY_DAYS;
            match text.parse::<i32>() {
                Ok(days) if range.contains(&days) => Some(Some(days)),
                _ => {
                    errors.add(
                        "deactivate_unused_after_days",
                        format!(
                            "Enter a number of days from {} to {}, or leave it empty to keep unused keys active.",
                            range.start(),
                            range.end()
                        ),
                    );
                    None
                }
            }
        }
    };
    let reminder_days = match input.key_reminder_days.as_deref() {
        None => Some(before.reminder_days()),
        Some(text) => match crate::services::notifications::expiry::parse_days(text) {
            Ok(days) => Some(days),
            Err(message) => {
                errors.add("key_reminder_days", message);
                None
            }
        },
    };
    let (
        Some(default_days),
        Some(max_days),
        Some(grace),
        Some(per_user),
        Some(per_organization),
        Some(per_hour),
        Some(factor_policy),
        Some(unused_days),
        Some(reminder_days),
    ) = (
        default_days,
        max_days,
        grace,
        per_user,
        per_organization,
        per_hour,
        factor_policy,
        unused_days,
        reminder_days,
    )
    else {
        return Err(AppError::Invalid(errors));
    };
    errors.into_result()?;
    let updated: Organization = diesel::update(organizations::table.find(organization_id))
        .set((
            organizations::key_default_lifetime_days.eq(default_days),
            organizations::key_max_lifetime_days.eq(max_days),
            organizations::key_allow_never_expires.eq(input.allow_never_expires),
            organizations::key_default_grace_minutes.eq(grace),
            organizations::key_quota_per_user.eq(per_user),
            organizations::key_quota_per_organization.eq(per_organization),
            organizations::key_creations_per_hour.eq(per_hour),
            organizations::second_factor_required_for.eq(factor_policy.code()),
            organizations::deactivate_unused_after_days.eq(unused_days),
            organizations::key_reminder_days.eq(reminder_days.iter().copied().map(Some).collect::<Vec<_>>()),
            organizations::notify_admins_of_keys
                .eq(input.notify_admins_of_keys.unwrap_or(before.notify_admins_of_keys)),
            organizations::updated_at.eq(diesel::dsl::now),
        ))
        .returning(Organization::as_returning())
        .get_result(conn)?;
    let snapshot = |o: &Organization| {
        serde_json::json!({
            "default_lifetime_days": o.key_default_lifetime_days,
            "max_lifetime_days": o.key_max_lifetime_days,
            "allow_never_expires": o.key_allow_never_expires,
            "default_grace_minutes": o.key_default_grace_minutes,
            "key_quota_per_user": o.key_quota_per_user,
            "key_quota_per_organization": o.key_quota_per_organization,
            "key_creations_per_hour": o.key_creations_per_hour,
            "second_factor_required_for": o.second_factor_required_for.code(),
            "deactivate_unused_after_days": o.deactivate_unused_after_days,
            "key_reminder_days": o.reminder_days(),
            "notify_admins_of_keys": o.notify_admins_of_keys,
        })
    };
    audit::record(
        conn,
        actor,
        Entry::new(AuditAction::OrganizationPolicyUpdate)
            .organization(Some(organization_id))
            .target(Target::new("organization", organization_id, &updated.name))
            .details(serde_json::json!({ "from": snapshot(&before), "to": snapshot(&updated) })),
    )?;
    Ok(updated)
}
