//! API keys: the row, its scopes (actions, assets, asset groups), and the finders of the key
//! pages. Every finder is scoped: by organization, owner, or service provider.

use std::collections::HashMap;

use crate::{
    db::{count::CountRows, search::SearchPatterns},
    views::pager::MAX_COUNTED,
};
use chrono::{DateTime, Duration, Utc};
use diesel::{
    dsl::now,
    expression::BoxableExpression,
    pg::Pg,
    prelude::*,
    sql_types::{Bool, Nullable},
};
use ipnetwork::IpNetwork;

use crate::db::schema::{
    api_actions, api_key_actions, api_key_asset_groups, api_key_assets, api_keys, asset_groups, assets,
};

/// `(asset id, code, name)` of an asset a key is limited to.
pub type AssetLabel = (i64, String, String);

/// Keys that expire within this many days are marked in the lists.
pub const EXPIRING_SOON_DAYS: i64 = 14;

#[derive(Debug, Clone, Queryable, Selectable, Identifiable)]
#[diesel(table_name = api_keys)]
pub struct ApiKey {
    pub id: i64,
    pub public_id: String,
    pub environment: String,
    pub organization_id: Option<i64>,
    pub owner_user_id: Option<i64>,
    pub owner_organization_id: Option<i64>,
    pub owner_service_provider_id: Option<i64>,
    pub name: String,
    pub comment: String,
    pub all_actions: bool,
    pub all_assets: bool,
    pub allowed_cidrs: Vec<Option<IpNetwork>>,
    pub expires_at: Option<DateTime<Utc>>,
    pub proxy_user_id: Option<i64>,
    pub active: bool,
    pub secret_hash: Vec<u8>,
    pub secret_last4: String,
    pub previous_secret_hash: Option<Vec<u8>>,
    pub previous_secret_last4: Option<String>,
    pub previous_secret_expires_at: Option<DateTime<Utc>>,
    pub previous_secret_last_used_at: Option<DateTime<Utc>>,
    pub rekeyed_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub created_by_user_id: Option<i64>,
    pub created_by_staff_id: Option<i64>,
    pub updated_at: DateTime<Utc>,
    pub deactivated_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub last_used_ip: Option<IpNetwork>,
    pub create_token: Option<String>,
    pub rekey_token: Option<String>,
    pub deactivation_reason: Option<String>,
}

/// Who owns a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyOwner {
    User(i64),
    Organization(i64),
    ServiceProvider(i64),
}

impl KeyOwner {
    pub fn kind(self) -> &'static str {
        match self {
            KeyOwner::User(_) => "user",
            KeyOwner::Organization(_) => "organization",
            KeyOwner::ServiceProvider(_) => "service_provider",
        }
    }

    pub fn id(self) -> i64 {
        match self {
            KeyOwner::User(id) | KeyOwner::Organization(id) | KeyOwner::ServiceProvider(id) => id,
        }
    }
}

#[derive(Debug, Insertable)]
#[diesel(table_name = api_keys)]
pub struct NewApiKey<'a> {
    pub public_id: &'a str,
    pub environment: &'a str,
    pub organization_id: Option<i64>,
    pub owner_user_id: Option<i64>,
    pub owner_organization_id: Option<i64>,
    pub owner_service_provider_id: Option<i64>,
    pub name: &'a str,
    pub comment: &'a str,
    pub all_actions: bool,
    pub all_assets: bool,
    pub allowed_cidrs: Vec<Option<IpNetwork>>,
    pub expires_at: Option<DateTime<Utc>>,
    pub proxy_user_id: Option<i64>,
    pub secret_hash: &'a [u8],
    pub secret_last4: &'a str,
    pub created_by_user_id: Option<i64>,
    pub created_by_staff_id: Option<i64>,
    pub create_token: Option<&'a str>,
}

/// The editable settings of a key (everything but name, owner and secret).
#[derive(Debug, AsChangeset)]
#[diesel(table_name = api_keys, treat_none_as_null = true)]
pub struct KeySettingsChanges {
    pub comment: String,
    pub all_actions: bool,
    pub all_assets: bool,
    pub allowed_cidrs: Vec<Option<IpNetwork>>,
    pub expires_at: Option<DateTime<Utc>>,
    pub proxy_user_id: Option<i64>,
}

/// The keys an actor reaches in an area. Every look-up of a key for a person (lists, a key
/// by its public id, its lock) puts the scope in its `WHERE`, so another tenant's key is
/// never even read; only callers holding a key's secret look keys up across tenants
/// ([`ApiKey::find_presented`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyScope {
    /// A web user's own (personal) keys.
    OwnedBy { organization_id: i64, user_id: i64 },
    /// Every key of an organization (personal and organization keys).
    Organization(i64),
    /// The keys of a service provider.
    ServiceProvider(i64),
}

/// The condition of `scope` on `api_keys`, for the `WHERE` of every scoped query.
fn in_scope(scope: KeyScope) -> Box<dyn BoxableExpression<api_keys::table, Pg, SqlType = Nullable<Bool>>> {
    match scope {
        KeyScope::OwnedBy { organization_id, user_id } => {
            Box::new(api_keys::organization_id.eq(organization_id).and(api_keys::owner_user_id.eq(user_id)))
        }
        KeyScope::Organization(id) => Box::new(api_keys::organization_id.eq(id)),
        KeyScope::ServiceProvider(id) => Box::new(api_keys::owner_service_provider_id.eq(id)),
    }
}

/// Filter by kind of owner (organization lists only).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OwnerFilter {
    #[default]
    Any,
    Organization,
    Personal,
    User(i64),
}

/// Filter by state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StateFilter {
    #[default]
    Any,
    Active,
    Inactive,
    Expired,
    /// Active and unexpired, but stopped by its owner: deactivated, or without API key access.
    Disabled,
}

/// The users who let their personal keys work: active, holding `keys.own` (an administrator,
/// the access toggle, or a role). `alias` names the `users` row in the surrounding query.
/// The SQL twin of `keys::standing::OwnerBlock::of`; the key states of the lists, the
/// overview's counts and its count of users with API key access all read this one rule.
pub fn holds_key_access_sql(alias: &str) -> String {
    format!(
        "({alias}.active AND ({alias}.is_admin OR {alias}.api_key_access OR EXISTS (\
            SELECT 1 FROM user_roles AS ur JOIN role_permissions AS rp ON rp.role_id = ur.role_id \
            WHERE ur.user_id = {alias}.id AND rp.permission = 'keys.own')))"
    )
}

/// Whether a key's owner lets it work, as SQL on `api_keys`. Only personal keys have such an
/// owner.
fn owner_lets_it_work_sql() -> String {
    format!(
        "(api_keys.owner_user_id IS NULL OR EXISTS (\
            SELECT 1 FROM users AS o WHERE o.id = api_keys.owner_user_id AND {}))",
        holds_key_access_sql("o")
    )
}

/// [`owner_lets_it_work_sql`] as a Diesel expression.
fn owner_lets_it_work() -> diesel::expression::SqlLiteral<Bool> {
    diesel::dsl::sql(&owner_lets_it_work_sql())
}

/// Keys not used for this many days are "unused" on the overview.
pub const UNUSED_DAYS: i64 = 90;

/// An organization's keys counted as its key lists filter them: each number is the total of
/// the list its overview card links to. The states overlap as the filters do (an inactive
/// key past its expiry is both inactive and expired).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, diesel::QueryableByName)]
pub struct KeyCounts {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub active: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub inactive: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub expired: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub disabled: i64,
    /// `?expiring=1`
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub expiring: i64,
    /// `?state=active&unused=90`: keys that would work but nobody used for [`UNUSED_DAYS`].
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub unused: i64,
}

/// The "unused" filter of the key lists (`?unused=90`, `?unused=never`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unused {
    /// Not used since this instant; a key never used counts from its creation. The list
    /// computes it from the application's clock (`now - N days`).
    Since(DateTime<Utc>),
    /// Never used at all (neither its current secret nor an earlier one).
    Never,
}

/// Filters and page of a key list.
#[derive(Debug, Clone, Default)]
pub struct KeyListFilter {
    pub owner: OwnerFilter,
    pub state: StateFilter,
    pub expiring_soon: bool,
    /// Keys not used for a while, or never.
    pub unused: Option<Unused>,
    pub search: Option<String>,
    pub page: i64,
    pub per_page: i64,
}

type BoxedKeys<'a> = api_keys::BoxedQuery<'a, Pg>;

impl ApiKey {
    pub fn owner(&self) -> KeyOwner {
        match (self.owner_user_id, self.owner_organization_id, self.owner_service_provider_id) {
            (Some(id), _, _) => KeyOwner::User(id),
            (_, Some(id), _) => KeyOwner::Organization(id),
            (_, _, Some(id)) => KeyOwner::ServiceProvider(id),
            _ => unreachable!("the api_keys_exactly_one_owner constraint guarantees an owner"),
        }
    }

    pub fn is_expired_at(&self, at: DateTime<Utc>) -> bool {
        self.expires_at.is_some_and(|e| e <= at)
    }

    pub fn expires_within(&self, at: DateTime<Utc>, days: i64) -> bool {
        self.expires_at.is_some_and(|e| e > at && e <= at + Duration::days(days))
    }

    /// The old secret still works (re-key grace period).
    pub fn is_rotating_at(&self, at: DateTime<Utc>) -> bool {
        self.previous_secret_hash.is_some() && self.previous_secret_expires_at.is_some_and(|e| e > at)
    }

    /// Which secret the key has now ("original", or when it was last re-keyed): re-key forms
    /// carry it, so that a re-key based on an outdated view is refused.
    pub fn secret_version(&self) -> String {
        self.rekeyed_at.map_or_else(|| "original".into(), |at| at.timestamp_micros().to_string())
    }

    /// `kw_live_7Hq2xK9d…T4pz`: enough to recognize a key, nothing to use it.
    pub fn masked(&self) -> String {
        format!("kw_{}_{}…{}", self.environment, self.public_id, self.secret_last4)
    }

    pub fn cidrs(&self) -> Vec<IpNetwork> {
        self.allowed_cidrs.iter().flatten().copied().collect()
    }

    pub fn insert(conn: &mut PgConnection, new: &NewApiKey<'_>) -> QueryResult<ApiKey> {
        diesel::insert_into(api_keys::table).values(new).returning(ApiKey::as_returning()).get_result(conn)
    }

    /// A key whose secret was presented (verification, leak reports), by its public id and
    /// across tenants: callers must prove the secret before acting on the key. Everything
    /// else finds keys within a [`KeyScope`].
    pub fn find_presented(conn: &mut PgConnection, public_id: &str) -> QueryResult<Option<ApiKey>> {
        api_keys::table.filter(api_keys::public_id.eq(public_id)).select(ApiKey::as_select()).first(conn).optional()
    }

    /// [`ApiKey::find_presented`], locking the row for the rest of the transaction.
    pub fn lock_presented(conn: &mut PgConnection, public_id: &str) -> QueryResult<Option<ApiKey>> {
        api_keys::table
            .filter(api_keys::public_id.eq(public_id))
            .select(ApiKey::as_select())
            .for_update()
            .first(conn)
            .optional()
    }

    /// The key with `public_id` within `scope`.
    pub fn find_in(conn: &mut PgConnection, scope: KeyScope, public_id: &str) -> QueryResult<Option<ApiKey>> {
        Self::scoped(scope).filter(api_keys::public_id.eq(public_id)).select(ApiKey::as_select()).first(conn).optional()
    }

    /// The same, locking the row for the rest of the transaction (concurrent changes of one
    /// key serialize here).
    pub fn lock_in(conn: &mut PgConnection, scope: KeyScope, public_id: &str) -> QueryResult<Option<ApiKey>> {
        api_keys::table
            .filter(in_scope(scope))
            .filter(api_keys::public_id.eq(public_id))
            .select(ApiKey::as_select())
            .for_update()
            .first(conn)
            .optional()
    }

    /// The key a create form with `token` made, within `scope`.
    pub fn find_by_create_token(conn: &mut PgConnection, scope: KeyScope, token: &str) -> QueryResult<Option<ApiKey>> {
        Self::scoped(scope).filter(api_keys::create_token.eq(token)).select(ApiKey::as_select()).first(conn).optional()
    }

    fn scoped(scope: KeyScope) -> BoxedKeys<'static> {
        api_keys::table.filter(in_scope(scope)).into_boxed()
    }

    fn filtered(scope: KeyScope, filter: &KeyListFilter) -> BoxedKeys<'static> {
        let mut query = Self::scoped(scope);
        query = match filter.owner {
            OwnerFilter::Any => query,
            OwnerFilter::Organization => query.filter(api_keys::owner_organization_id.is_not_null()),
            OwnerFilter::Personal => query.filter(api_keys::owner_user_id.is_not_null()),
            OwnerFilter::User(id) => query.filter(api_keys::owner_user_id.eq(id)),
        };
        query = match filter.state {
            StateFilter::Any => query,
            StateFilter::Active => query
                .filter(api_keys::active.eq(true))
                .filter(api_keys::expires_at.is_null().or(api_keys::expires_at.gt(now)))
                .filter(owner_lets_it_work()),
            StateFilter::Disabled => query
                .filter(api_keys::active.eq(true))
                .filter(api_keys::expires_at.is_null().or(api_keys::expires_at.gt(now)))
                .filter(diesel::dsl::not(owner_lets_it_work())),
            StateFilter::Inactive => query.filter(api_keys::active.eq(false)),
            StateFilter::Expired => query.filter(api_keys::expires_at.le(now)),
        };
        if filter.expiring_soon {
            let horizon = Utc::now() + Duration::days(EXPIRING_SOON_DAYS);
            query = query.filter(api_keys::expires_at.gt(now)).filter(api_keys::expires_at.le(horizon));
        }
        match filter.unused {
            None => {}
            Some(Unused::Since(cutoff)) => {
                query = query.filter(
                    api_keys::last_used_at
                        .le(cutoff)
                        .or(api_keys::last_used_at.is_null().and(api_keys::created_at.le(cutoff))),
                );
            }
            Some(Unused::Never) => query = query.filter(api_keys::last_used_at.is_null()),
        }
        if let Some(search) = filter.search.as_deref().filter(|s| !s.is_empty()) {
            let SearchPatterns { first, second } = SearchPatterns::of(search);
            let exact = api_keys::public_id.eq(search.to_string());
            query = match second {
                None => query.filter(api_keys::name.ilike(first.clone()).or(exact).or(api_keys::comment.ilike(first))),
                Some(second) => query.filter(
                    api_keys::name
                        .ilike(first.clone())
                        .or(api_keys::name.ilike(second.clone()))
                        .or(exact)
                        .or(api_keys::comment.ilike(first))
                        .or(api_keys::comment.ilike(second)),
                ),
            };
        }
        query
    }

    /// One page of keys, newest first, and the number matching (up to `MAX_COUNTED + 1`).
    pub fn list(conn: &mut PgConnection, scope: KeyScope, filter: &KeyListFilter) -> QueryResult<(Vec<ApiKey>, i64)> {
        let counted = Self::filtered(scope, filter).select(api_keys::id).limit(MAX_COUNTED + 1);
        let total: i64 = CountRows(counted).get_result(conn)?;
        let per_page = filter.per_page.clamp(1, 200);
        let rows = Self::filtered(scope, filter)
            .order((api_keys::created_at.desc(), api_keys::id.desc()))
            .limit(per_page)
            .offset(filter.page.max(0) * per_page)
            .select(ApiKey::as_select())
            .load(conn)?;
        Ok((rows, total))
    }

    /// Up to `limit` keys after the cursor `after` (the `(created_at, id)` of the last key of
    /// the previous page), newest first: the management API's keyset pagination, which
    /// stays correct while keys are added.
    pub fn list_after(
        conn: &mut PgConnection,
        scope: KeyScope,
        filter: &KeyListFilter,
        after: Option<(DateTime<Utc>, i64)>,
        limit: i64,
    ) -> QueryResult<Vec<ApiKey>> {
        let mut query = Self::filtered(scope, filter);
        if let Some((at, id)) = after {
            query = query.filter(api_keys::created_at.lt(at).or(api_keys::created_at.eq(at).and(api_keys::id.lt(id))));
        }
        query
            .order((api_keys::created_at.desc(), api_keys::id.desc()))
            .limit(limit.clamp(1, 200))
            .select(ApiKey::as_select())
            .load(conn)
    }

    /// The organization's active keys (as the list's "active" state) not used since `cutoff`,
    /// stalest first: by last use, or by creation for keys never used. The overview's list.
    pub fn stalest(
        conn: &mut PgConnection,
        organization_id: i64,
        cutoff: DateTime<Utc>,
        limit: i64,
    ) -> QueryResult<Vec<ApiKey>> {
        let filter = KeyListFilter {
            state: StateFilter::Active,
            unused: Some(Unused::Since(cutoff)),
            ..KeyListFilter::default()
        };
        let unused_since =
            diesel::dsl::sql::<diesel::sql_types::Timestamptz>("COALESCE(api_keys.last_used_at, api_keys.created_at)");
        Self::filtered(KeyScope::Organization(organization_id), &filter)
            .order((unused_since.asc(), api_keys::id.asc()))
            .limit(limit)
            .select(ApiKey::as_select())
            .load(conn)
    }

    /// Action codes of each key (for keys limited to a list of actions), in one query.
    pub fn actions_of(conn: &mut PgConnection, key_ids: &[i64]) -> QueryResult<HashMap<i64, Vec<String>>> {
        let rows: Vec<(i64, String)> = api_key_actions::table
            .inner_join(api_actions::table)
            .filter(api_key_actions::api_key_id.eq_any(key_ids))
            .order(api_actions::code.asc())
            .select((api_key_actions::api_key_id, api_actions::code))
            .load(conn)?;
        Ok(group(rows))
    }

    /// Action ids of one key.
    pub fn action_ids(conn: &mut PgConnection, key_id: i64) -> QueryResult<Vec<i64>> {
        api_key_actions::table
            .filter(api_key_actions::api_key_id.eq(key_id))
            .select(api_key_actions::api_action_id)
            .load(conn)
    }

    /// `(asset id, code, name)` of each key's assets, in one query.
    pub fn assets_of(conn: &mut PgConnection, key_ids: &[i64]) -> QueryResult<HashMap<i64, Vec<AssetLabel>>> {
        let rows: Vec<(i64, AssetLabel)> = api_key_assets::table
            .inner_join(assets::table.on(assets::id.eq(api_key_assets::asset_id)))
            .filter(api_key_assets::api_key_id.eq_any(key_ids))
            .order(assets::code.asc())
            .select((api_key_assets::api_key_id, (assets::id, assets::code, assets::name)))
            .load(conn)?;
        Ok(group(rows))
    }

    /// `(group id, name)` of each key's asset groups, in one query.
    pub fn groups_of(conn: &mut PgConnection, key_ids: &[i64]) -> QueryResult<HashMap<i64, Vec<(i64, String)>>> {
        let rows: Vec<(i64, (i64, String))> = api_key_asset_groups::table
            .inner_join(asset_groups::table.on(asset_groups::id.eq(api_key_asset_groups::asset_group_id)))
            .filter(api_key_asset_groups::api_key_id.eq_any(key_ids))
            .order(asset_groups::name.asc())
            .select((api_key_asset_groups::api_key_id, (asset_groups::id, asset_groups::name)))
            .load(conn)?;
        Ok(group(rows))
    }

    /// Replaces the key's action list.
    pub fn set_actions(conn: &mut PgConnection, key_id: i64, action_ids: &[i64]) -> QueryResult<()> {
        diesel::delete(api_key_actions::table.filter(api_key_actions::api_key_id.eq(key_id))).execute(conn)?;
        let rows: Vec<_> = action_ids
            .iter()
            .map(|id| (api_key_actions::api_key_id.eq(key_id), api_key_actions::api_action_id.eq(*id)))
            .collect();
        diesel::insert_into(api_key_actions::table).values(&rows).execute(conn).map(|_| ())
    }

    /// Replaces the key's asset and asset-group lists (both of `organization_id`, which the
    /// composite foreign keys enforce).
    pub fn set_assets(
        conn: &mut PgConnection,
        key_id: i64,
        organization_id: i64,
        asset_ids: &[i64],
        group_ids: &[i64],
    ) -> QueryResult<()> {
        diesel::delete(api_key_assets::table.filter(api_key_assets::api_key_id.eq(key_id))).execute(conn)?;
        diesel::delete(api_key_asset_groups::table.filter(api_key_asset_groups::api_key_id.eq(key_id)))
            .execute(conn)?;
        let assets: Vec<_> = asset_ids
            .iter()
            .map(|id| {
                (
                    api_key_assets::organization_id.eq(organization_id),
                    api_key_assets::api_key_id.eq(key_id),
                    api_key_assets::asset_id.eq(*id),
                )
            })
            .collect();
        diesel::insert_into(api_key_assets::table).values(&assets).execute(conn)?;
        let groups: Vec<_> = group_ids
            .iter()
            .map(|id| {
                (
                    api_key_asset_groups::organization_id.eq(organization_id),
                    api_key_asset_groups::api_key_id.eq(key_id),
                    api_key_asset_groups::asset_group_id.eq(*id),
                )
            })
            .collect();
        diesel::insert_into(api_key_asset_groups::table).values(&groups).execute(conn).map(|_| ())
    }

    pub fn update_settings(conn: &mut PgConnection, key_id: i64, changes: &KeySettingsChanges) -> QueryResult<ApiKey> {
        diesel::update(api_keys::table.find(key_id))
            .set((changes, api_keys::updated_at.eq(now)))
            .returning(ApiKey::as_returning())
            .get_result(conn)
    }

    pub fn rename(conn: &mut PgConnection, key_id: i64, name: &str) -> QueryResult<ApiKey> {
        diesel::update(api_keys::table.find(key_id))
            .set((api_keys::name.eq(name), api_keys::updated_at.eq(now)))
            .returning(ApiKey::as_returning())
            .get_result(conn)
    }

    pub fn set_active(conn: &mut PgConnection, key_id: i64, active: bool, reason: Option<&str>) -> QueryResult<ApiKey> {
        let deactivated_at: Option<DateTime<Utc>> = if active { None } else { Some(Utc::now()) };
        diesel::update(api_keys::table.find(key_id))
            .set((
                api_keys::active.eq(active),
                api_keys::deactivated_at.eq(deactivated_at),
                api_keys::deactivation_reason.eq(if active { None } else { reason }),
                api_keys::updated_at.eq(now),
            ))
            .returning(ApiKey::as_returning())
            .get_result(conn)
    }

    /// Deactivates the active, unexpired keys of an organization that nobody used, created or
    /// reactivated since `cutoff`, giving them `reason`; returns them. One statement: a key
    /// used or reactivated meanwhile is checked again under its row lock and left alone.
    /// Reactivations are read from the key's audit trail (written in the same transaction as
    /// each reactivation), so someone who switches a stale key on again gets the policy's days.
    pub fn deactivate_unused(
        conn: &mut PgConnection,
        organization_id: i64,
        cutoff: DateTime<Utc>,
        at: DateTime<Utc>,
        reason: &str,
    ) -> QueryResult<Vec<ApiKey>> {
        use diesel::sql_types::Timestamptz;
        let not_reactivated_since = diesel::dsl::sql::<Bool>(
            "NOT EXISTS (SELECT 1 FROM audit_events AS e WHERE e.target_id = api_keys.public_id \
             AND e.target_type = 'api_key' AND e.action = 'key.reactivate' AND e.result = 'success' \
             AND e.occurred_at > ",
        )
        .bind::<Timestamptz, _>(cutoff)
        .sql(")");
        diesel::update(
            api_keys::table
                .filter(api_keys::organization_id.eq(organization_id))
                .filter(api_keys::active.eq(true))
                .filter(api_keys::expires_at.is_null().or(api_keys::expires_at.gt(at)))
                .filter(api_keys::created_at.le(cutoff))
                .filter(api_keys::last_used_at.is_null().or(api_keys::last_used_at.le(cutoff)))
                .filter(not_reactivated_since),
        )
        .set((
            api_keys::active.eq(false),
            api_keys::deactivated_at.eq(Some(at)),
            api_keys::deactivation_reason.eq(reason),
            api_keys::updated_at.eq(now),
        ))
        .returning(ApiKey::as_returning())
        .get_results(conn)
    }

    /// Replaces an inactive key's deactivation reason (the key stays inactive).
    pub fn set_deactivation_reason(conn: &mut PgConnection, key_id: i64, reason: &str) -> QueryResult<ApiKey> {
        diesel::update(api_keys::table.find(key_id))
            .set((api_keys::deactivation_reason.eq(reason), api_keys::updated_at.eq(now)))
            .returning(ApiKey::as_returning())
            .get_result(conn)
    }

    /// Installs a new secret. With a grace period the current secret becomes the previous
    /// one until `previous_expires_at`; any older previous secret ends now, so at most two
    /// secrets are ever valid.
    pub fn rekey(
        conn: &mut PgConnection,
        key: &ApiKey,
        new_hash: &[u8],
        new_last4: &str,
        previous_expires_at: Option<DateTime<Utc>>,
        expires_at: Option<DateTime<Utc>>,
        token: Option<&str>,
    ) -> QueryResult<ApiKey> {
        let (previous_hash, previous_last4) = match previous_expires_at {
            Some(_) => (Some(key.secret_hash.clone()), Some(key.secret_last4.clone())),
            None => (None, None),
        };
        diesel::update(api_keys::table.find(key.id))
            .set((
                api_keys::secret_hash.eq(new_hash),
                api_keys::secret_last4.eq(new_last4),
                api_keys::previous_secret_hash.eq(previous_hash),
                api_keys::previous_secret_last4.eq(previous_last4),
                api_keys::previous_secret_expires_at.eq(previous_expires_at),
                api_keys::previous_secret_last_used_at.eq(None::<DateTime<Utc>>),
                api_keys::rekeyed_at.eq(now),
                api_keys::expires_at.eq(expires_at),
                api_keys::rekey_token.eq(token),
                api_keys::updated_at.eq(now),
            ))
            .returning(ApiKey::as_returning())
            .get_result(conn)
    }

    /// Ends a re-key grace period at once.
    pub fn end_grace(conn: &mut PgConnection, key_id: i64) -> QueryResult<ApiKey> {
        diesel::update(api_keys::table.find(key_id))
            .set((
                api_keys::previous_secret_hash.eq(None::<Vec<u8>>),
                api_keys::previous_secret_last4.eq(None::<String>),
                api_keys::previous_secret_expires_at.eq(None::<DateTime<Utc>>),
                api_keys::previous_secret_last_used_at.eq(None::<DateTime<Utc>>),
                api_keys::updated_at.eq(now),
            ))
            .returning(ApiKey::as_returning())
            .get_result(conn)
    }

    pub fn delete(conn: &mut PgConnection, key_id: i64) -> QueryResult<()> {
        diesel::delete(api_keys::table.find(key_id)).execute(conn).map(|_| ())
    }

    /// The numbers of the admin overview, in one pass over the organization's keys. The
    /// conditions are those of [`ApiKey::list`]'s filters, with the same clocks (the
    /// database's `now()` for expiry, the application's for the horizons), so every number
    /// equals the total of the list it links to. The owner's standing is the lists' rule
    /// ([`holds_key_access_sql`]) asked once for the organization's users — a hashed set,
    /// not a look-up per key — which is the same answer because a personal key's owner is
    /// always of the key's organization (a foreign key says so). `OFFSET 0` keeps PostgreSQL
    /// from folding the inner query into the outer one, which would copy `owner_ok` into each
    /// count that reads it.
    /// "Unused" is measured from `as_of`, the application's clock, as the list measures it.
    pub fn counts(conn: &mut PgConnection, organization_id: i64, as_of: DateTime<Utc>) -> QueryResult<KeyCounts> {
        use diesel::sql_types::{BigInt, Timestamptz};
        let sql = format!(
            "SELECT \
               count(*) FILTER (WHERE live AND owner_ok) AS active, \
               count(*) FILTER (WHERE NOT active) AS inactive, \
               count(*) FILTER (WHERE expires_at <= now()) AS expired, \
               count(*) FILTER (WHERE live AND NOT owner_ok) AS disabled, \
               count(*) FILTER (WHERE expires_at > now() AND expires_at <= $2) AS expiring, \
               count(*) FILTER (WHERE live AND owner_ok AND (last_used_at <= $3 \
                 OR (last_used_at IS NULL AND created_at <= $3))) AS unused \
             FROM (SELECT active, expires_at, last_used_at, created_at, \
                     active AND (expires_at IS NULL OR expires_at > now()) AS live, \
                     (owner_user_id IS NULL OR owner_user_id IN (\
                        SELECT o.id FROM users AS o WHERE o.organization_id = $1 AND {})) AS owner_ok \
                   FROM api_keys WHERE organization_id = $1 OFFSET 0) AS k",
            holds_key_access_sql("o")
        );
        let at = Utc::now();
        diesel::sql_query(sql)
            .bind::<BigInt, _>(organization_id)
            .bind::<Timestamptz, _>(at + Duration::days(EXPIRING_SOON_DAYS))
            .bind::<Timestamptz, _>(as_of - Duration::days(UNUSED_DAYS))
            .get_result(conn)
    }

    /// Number of keys owned by each of `user_ids` (user lists).
    pub fn count_by_owner(conn: &mut PgConnection, user_ids: &[i64]) -> QueryResult<HashMap<i64, i64>> {
        let rows: Vec<(Option<i64>, i64)> = api_keys::table
            .filter(api_keys::owner_user_id.eq_any(user_ids))
            .group_by(api_keys::owner_user_id)
            .select((api_keys::owner_user_id, diesel::dsl::count_star()))
            .load(conn)?;
        Ok(rows.into_iter().filter_map(|(id, n)| id.map(|id| (id, n))).collect())
    }
}

fn group<V>(rows: Vec<(i64, V)>) -> HashMap<i64, Vec<V>> {
    let mut map: HashMap<i64, Vec<V>> = HashMap::new();
    for (key, value) in rows {
        map.entry(key).or_default().push(value);
    }
    map
}
