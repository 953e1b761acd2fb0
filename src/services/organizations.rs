//! Creating organizations (tenants).

use diesel::{OptionalExtension, PgConnection};

use crate::{
    db::models::{Organization, ServiceProvider, organization::NewOrganization},
    domain::text::clean_line,
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
    errors.into_result()?;
    let (name, slug) = (name.expect("validated"), slug.expect("validated"));
    let organization = Organization::insert(
        conn,
        &NewOrganization { slug: &slug, name: &name, service_provider_id: input.service_provider_id },
    )?;
    audit::record(
        conn,
        actor,
        Entry::new("organization.create")
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
