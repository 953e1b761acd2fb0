//! Organizations (tenants) and their key policy.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use diesel::prelude::*;

use crate::{
    db::{count::CountRows, schema::organizations, search::SearchPatterns},
    domain::SecondFactorPolicy,
    views::pager::MAX_COUNTED,
};

#[derive(Debug, Clone, Queryable, Selectable, Identifiable)]
#[diesel(table_name = organizations)]
pub struct Organization {
    pub id: i64,
    pub slug: String,
    pub name: String,
    pub service_provider_id: Option<i64>,
    pub key_default_lifetime_days: i32,
    pub key_max_lifetime_days: Option<i32>,
    pub key_allow_never_expires: bool,
    pub key_default_grace_minutes: i32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Live keys a web user may own or have created.
    pub key_quota_per_user: i32,
    /// Live keys the organization may have.
    pub key_quota_per_organization: i32,
    /// Keys a web user may create per hour.
    pub key_creations_per_hour: i32,
    /// Who must sign in with a second factor (see [`SecondFactorPolicy`]).
    #[diesel(deserialize_as = String)]
    pub second_factor_required_for: SecondFactorPolicy,
    /// Deactivate keys nobody used for this many days (the stale-key job); `None`: never.
    pub deactivate_unused_after_days: Option<i32>,
    /// How many days before a key expires its reminders go out (see [`Organization::reminder_days`]).
    pub key_reminder_days: Vec<Option<i32>>,
    /// Whether the administrators get the mail about the organization's keys, besides each
    /// key's creator.
    pub notify_admins_of_keys: bool,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = organizations)]
pub struct NewOrganization<'a> {
    pub slug: &'a str,
    pub name: &'a str,
    pub service_provider_id: Option<i64>,
}

impl Organization {
    /// The days before a key's expiry that its reminders go out, most distant first.
    pub fn reminder_days(&self) -> Vec<i32> {
        let mut days: Vec<i32> = self.key_reminder_days.iter().flatten().copied().collect();
        days.sort_unstable_by(|a, b| b.cmp(a));
        days
    }

    pub fn find(conn: &mut PgConnection, id: i64) -> QueryResult<Organization> {
        organizations::table.find(id).select(Organization::as_select()).first(conn)
    }

    pub fn find_by_slug(conn: &mut PgConnection, slug: &str) -> QueryResult<Organization> {
        organizations::table.filter(organizations::slug.eq(slug)).select(Organization::as_select()).first(conn)
    }

    /// One page of organizations by name, optionally of one provider or matching `search`
    /// (name or slug), and the number matching (up to `MAX_COUNTED + 1`).
    pub fn list_page(
        conn: &mut PgConnection,
        provider: Option<i64>,
        search: &str,
        page: i64,
        per_page: i64,
    ) -> QueryResult<(Vec<Organization>, i64)> {
        let filtered = || {
            let mut query = organizations::table.into_boxed();
            if let Some(provider) = provider {
                query = query.filter(organizations::service_provider_id.eq(provider));
            }
            if !search.is_empty() {
                let SearchPatterns { first, second } = SearchPatterns::of(search);
                query = match second {
                    None => query.filter(organizations::name.ilike(first.clone()).or(organizations::slug.ilike(first))),
                    Some(second) => query.filter(
                        organizations::name
                            .ilike(first.clone())
                            .or(organizations::name.ilike(second.clone()))
                            .or(organizations::slug.ilike(first))
                            .or(organizations::slug.ilike(second)),
                    ),
                };
            }
            query
        };
        let total = CountRows(filtered().select(organizations::id).limit(MAX_COUNTED + 1)).get_result(conn)?;
        let rows = filtered()
            .order((organizations::name.asc(), organizations::id.asc()))
            .limit(per_page)
            .offset(page * per_page)
            .select(Organization::as_select())
            .load(conn)?;
        Ok((rows, total))
    }

    /// The number of client organizations of each service provider.
    pub fn counts_by_provider(conn: &mut PgConnection) -> QueryResult<HashMap<i64, i64>> {
        let counts: Vec<(Option<i64>, i64)> = organizations::table
            .filter(organizations::service_provider_id.is_not_null())
            .group_by(organizations::service_provider_id)
            .select((organizations::service_provider_id, diesel::dsl::count_star()))
            .load(conn)?;
        Ok(counts.into_iter().filter_map(|(provider, count)| provider.map(|p| (p, count))).collect())
    }

    pub fn insert(conn: &mut PgConnection, new: &NewOrganization<'_>) -> QueryResult<Organization> {
        diesel::insert_into(organizations::table).values(new).returning(Organization::as_returning()).get_result(conn)
    }
}
