//! Management tokens (the credentials of the management API) and the idempotency records of
//! their requests. Finders are scoped by the token's tenant (an organization or a service
//! provider), except [`ManagementToken::find_presented`] for callers that hold the token's secret.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use ipnetwork::IpNetwork;
use serde_json::Value;

use crate::db::schema::{management_idempotency, management_tokens, staff_accounts, users};

#[derive(Debug, Clone, Queryable, Selectable, Identifiable)]
#[diesel(table_name = management_tokens)]
pub struct ManagementToken {
    pub id: i64,
    pub public_id: String,
    pub organization_id: Option<i64>,
    pub created_by_user_id: Option<i64>,
    pub name: String,
    pub scopes: Vec<Option<String>>,
    pub allowed_cidrs: Vec<Option<IpNetwork>>,
    pub secret_hash: Vec<u8>,
    pub secret_last4: String,
    pub expires_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub revoked_reason: Option<String>,
    pub service_provider_id: Option<i64>,
    pub created_by_staff_id: Option<i64>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub last_used_ip: Option<IpNetwork>,
}

/// Whose a token is, and whose rights it acts with (the table allows exactly these two).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenHolder {
    /// An organization's token, acting as one of its web users.
    Organization { organization_id: i64, user_id: i64 },
    /// A service provider's token (keys only), acting as a support specialist.
    ServiceProvider { service_provider_id: i64, staff_id: i64 },
}

impl TokenHolder {
    pub fn tenant(self) -> TokenTenant {
        match self {
            TokenHolder::Organization { organization_id, .. } => TokenTenant::Organization(organization_id),
            TokenHolder::ServiceProvider { service_provider_id, .. } => {
                TokenTenant::ServiceProvider(service_provider_id)
            }
        }
    }
}

/// The list a token is in: an organization's (Admin → API access) or a service provider's
/// (Staff → Service providers → API access).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenTenant {
    Organization(i64),
    ServiceProvider(i64),
}

impl TokenTenant {
    /// The organization, for the audit log (a provider's tokens have none).
    pub fn organization_id(self) -> Option<i64> {
        match self {
            TokenTenant::Organization(id) => Some(id),
            TokenTenant::ServiceProvider(_) => None,
        }
    }

    /// The service provider, for the audit log.
    pub fn service_provider_id(self) -> Option<i64> {
        match self {
            TokenTenant::Organization(_) => None,
            TokenTenant::ServiceProvider(id) => Some(id),
        }
    }
}

#[derive(Debug, Insertable)]
#[diesel(table_name = management_tokens)]
pub struct NewManagementToken<'a> {
    pub public_id: &'a str,
    pub organization_id: Option<i64>,
    pub created_by_user_id: Option<i64>,
    pub service_provider_id: Option<i64>,
    pub created_by_staff_id: Option<i64>,
    pub name: &'a str,
    pub scopes: Vec<Option<String>>,
    pub allowed_cidrs: Vec<Option<IpNetwork>>,
    pub secret_hash: &'a [u8],
    pub secret_last4: &'a str,
    pub expires_at: Option<DateTime<Utc>>,
}

impl ManagementToken {
    pub fn insert(conn: &mut PgConnection, new: &NewManagementToken<'_>) -> QueryResult<Self> {
        diesel::insert_into(management_tokens::table).values(new).returning(Self::as_returning()).get_result(conn)
    }

    /// The token whose secret was presented, across tenants (the caller proves the secret).
    pub fn find_presented(conn: &mut PgConnection, public_id: &str) -> QueryResult<Option<Self>> {
        management_tokens::table
            .filter(management_tokens::public_id.eq(public_id))
            .select(Self::as_select())
            .first(conn)
            .optional()
    }

    /// The token with `public_id` of `tenant`, locked for the transaction.
    pub fn lock_in(conn: &mut PgConnection, tenant: TokenTenant, public_id: &str) -> QueryResult<Option<Self>> {
        let (organization_id, service_provider_id) = (tenant.organization_id(), tenant.service_provider_id());
        management_tokens::table
            .filter(management_tokens::public_id.eq(public_id))
            // The public id is unique: these only keep other tenants' tokens out.
            .filter(management_tokens::organization_id.is_not_distinct_from(organization_id))
            .filter(management_tokens::service_provider_id.is_not_distinct_from(service_provider_id))
            .select(Self::as_select())
            .for_update()
            .first(conn)
            .optional()
    }

    /// The token with `public_id` of `tenant`.
    pub fn find_in(conn: &mut PgConnection, tenant: TokenTenant, public_id: &str) -> QueryResult<Option<Self>> {
        Self::of_tenant(tenant)
            .filter(management_tokens::public_id.eq(public_id))
            .select(Self::as_select())
            .first(conn)
            .optional()
    }

    /// The tenant's tokens, newest first (revoked ones too: the page shows them), each with
    /// the name of the person it acts as (its creator; `None` once that account is gone).
    pub fn list(conn: &mut PgConnection, tenant: TokenTenant) -> QueryResult<Vec<(Self, Option<String>)>> {
        Self::of_tenant(tenant)
            .left_join(users::table)
            .left_join(staff_accounts::table)
            .order((management_tokens::created_at.desc(), management_tokens::id.desc()))
            .limit(500)
            .select((Self::as_select(), users::display_name.nullable(), staff_accounts::display_name.nullable()))
            .load::<(Self, Option<String>, Option<String>)>(conn)
            .map(|rows| rows.into_iter().map(|(token, user, staff)| (token, user.or(staff))).collect())
    }

    fn of_tenant(tenant: TokenTenant) -> management_tokens::BoxedQuery<'static, diesel::pg::Pg> {
        match tenant {
            TokenTenant::Organization(id) => {
                management_tokens::table.filter(management_tokens::organization_id.eq(id)).into_boxed()
            }
            TokenTenant::ServiceProvider(id) => {
                management_tokens::table.filter(management_tokens::service_provider_id.eq(id)).into_boxed()
            }
        }
    }

    /// Whose the token is (the table's check constraint allows only these two forms).
    pub fn holder(&self) -> Option<TokenHolder> {
        match (self.organization_id, self.created_by_user_id, self.service_provider_id, self.created_by_staff_id) {
            (Some(organization_id), Some(user_id), None, None) => {
                Some(TokenHolder::Organization { organization_id, user_id })
            }
            (None, None, Some(service_provider_id), Some(staff_id)) => {
                Some(TokenHolder::ServiceProvider { service_provider_id, staff_id })
            }
            _ => None,
        }
    }

    pub fn revoke(conn: &mut PgConnection, id: i64, reason: &str) -> QueryResult<Self> {
        diesel::update(management_tokens::table.find(id))
            .set((management_tokens::revoked_at.eq(diesel::dsl::now), management_tokens::revoked_reason.eq(reason)))
            .returning(Self::as_returning())
            .get_result(conn)
    }

    pub fn cidrs(&self) -> Vec<IpNetwork> {
        self.allowed_cidrs.iter().flatten().copied().collect()
    }

    pub fn scope_codes(&self) -> Vec<String> {
        self.scopes.iter().flatten().cloned().collect()
    }

    /// What lists show of the secret: `kw_mgmt_7Hq2xK9d…T4pz`.
    pub fn masked(&self) -> String {
        format!("kw_mgmt_{}…{}", self.public_id, self.secret_last4)
    }

    pub fn is_expired_at(&self, at: DateTime<Utc>) -> bool {
        self.expires_at.is_some_and(|e| e <= at)
    }
}

/// The first answer to an `Idempotency-Key` of a token.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = management_idempotency)]
pub struct IdempotencyRecord {
    pub token_id: i64,
    pub key: String,
    pub request_hash: Vec<u8>,
    pub status: i16,
    pub body: Value,
}

impl IdempotencyRecord {
    /// The record of `key` for `token_id`, after waiting for any transaction writing it: the
    /// caller holds the transaction-scoped advisory lock of the pair, so two requests with
    /// one key run one after the other.
    pub fn lock_and_find(conn: &mut PgConnection, token_id: i64, key: &str) -> QueryResult<Option<Self>> {
        use diesel::sql_types::{BigInt, Text};
        diesel::sql_query("SELECT pg_advisory_xact_lock(hashtextextended('keyward.idempotency:' || $2, $1))")
            .bind::<BigInt, _>(token_id)
            .bind::<Text, _>(key)
            .execute(conn)?;
        management_idempotency::table.find((token_id, key)).select(Self::as_select()).first(conn).optional()
    }

    /// Stores the record, and drops the token's records older than a day: a retry comes
    /// within minutes, and the table must not grow with every request of a busy script.
    pub fn insert(&self, conn: &mut PgConnection) -> QueryResult<()> {
        diesel::sql_query(
            "DELETE FROM management_idempotency WHERE token_id = $1 AND created_at < now() - interval '1 day'",
        )
        .bind::<diesel::sql_types::BigInt, _>(self.token_id)
        .execute(conn)?;
        diesel::insert_into(management_idempotency::table).values(self).execute(conn).map(|_| ())
    }
}
