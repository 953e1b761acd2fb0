//! Management tokens (the credentials of the management API) and the idempotency records of
//! their requests. Finders are scoped by organization, except [`ManagementToken::find_presented`]
//! for callers that hold the token's secret.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use ipnetwork::IpNetwork;
use serde_json::Value;

use crate::db::schema::{management_idempotency, management_tokens};

#[derive(Debug, Clone, Queryable, Selectable, Identifiable)]
#[diesel(table_name = management_tokens)]
pub struct ManagementToken {
    pub id: i64,
    pub public_id: String,
    pub organization_id: i64,
    pub created_by_user_id: i64,
    pub name: String,
    pub scopes: Vec<Option<String>>,
    pub allowed_cidrs: Vec<Option<IpNetwork>>,
    pub secret_hash: Vec<u8>,
    pub secret_last4: String,
    pub expires_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub revoked_reason: Option<String>,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = management_tokens)]
pub struct NewManagementToken<'a> {
    pub public_id: &'a str,
    pub organization_id: i64,
    pub created_by_user_id: i64,
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

    /// The token with `public_id` of `organization_id`, locked for the transaction.
    pub fn lock_in(conn: &mut PgConnection, organization_id: i64, public_id: &str) -> QueryResult<Option<Self>> {
        management_tokens::table
            .filter(management_tokens::organization_id.eq(organization_id))
            .filter(management_tokens::public_id.eq(public_id))
            .select(Self::as_select())
            .for_update()
            .first(conn)
            .optional()
    }

    /// The organization's tokens, newest first (revoked ones too: the page shows them).
    pub fn list(conn: &mut PgConnection, organization_id: i64) -> QueryResult<Vec<Self>> {
        management_tokens::table
            .filter(management_tokens::organization_id.eq(organization_id))
            .order((management_tokens::created_at.desc(), management_tokens::id.desc()))
            .limit(500)
            .select(Self::as_select())
            .load(conn)
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
