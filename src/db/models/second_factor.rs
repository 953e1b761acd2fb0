//! Rows of the second factor: an account's TOTP authenticator (`totp_factors`, one per
//! account, pending until a correct code confirms it) and its recovery codes
//! (`recovery_codes`, keyed hashes, each used once), and its passkeys (`passkeys`, WebAuthn
//! credentials, several per account). Every finder is scoped to one account.

use chrono::{DateTime, Utc};
use diesel::{
    pg::Pg,
    prelude::*,
    sql_types::{Bool, Nullable},
};

use crate::db::schema::{passkeys, recovery_codes, totp_factors};

/// The account a factor belongs to: web users and staff accounts are separate tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FactorOwner {
    User(i64),
    Staff(i64),
}

impl FactorOwner {
    fn user_id(self) -> Option<i64> {
        match self {
            FactorOwner::User(id) => Some(id),
            FactorOwner::Staff(_) => None,
        }
    }

    fn staff_id(self) -> Option<i64> {
        match self {
            FactorOwner::Staff(id) => Some(id),
            FactorOwner::User(_) => None,
        }
    }

    /// Bound into the sealed secret, so a secret copied onto another account's row fails to open.
    pub fn label(self) -> String {
        match self {
            FactorOwner::User(id) => format!("user:{id}"),
            FactorOwner::Staff(id) => format!("staff:{id}"),
        }
    }
}

type Owned<T> = Box<dyn BoxableExpression<T, Pg, SqlType = Nullable<Bool>>>;

fn totp_of(owner: FactorOwner) -> Owned<totp_factors::table> {
    match owner {
        FactorOwner::User(id) => Box::new(totp_factors::user_id.eq(id)),
        FactorOwner::Staff(id) => Box::new(totp_factors::staff_id.eq(id)),
    }
}

fn passkeys_of(owner: FactorOwner) -> Owned<passkeys::table> {
    match owner {
        FactorOwner::User(id) => Box::new(passkeys::user_id.eq(id)),
        FactorOwner::Staff(id) => Box::new(passkeys::staff_id.eq(id)),
    }
}

fn codes_of(owner: FactorOwner) -> Owned<recovery_codes::table> {
    match owner {
        FactorOwner::User(id) => Box::new(recovery_codes::user_id.eq(id)),
        FactorOwner::Staff(id) => Box::new(recovery_codes::staff_id.eq(id)),
    }
}

/// An account's authenticator. Never `Debug`-printed with its sealed secret.
#[derive(Clone, Queryable, Selectable)]
#[diesel(table_name = totp_factors)]
pub struct TotpFactor {
    pub id: i64,
    pub secret_sealed: Vec<u8>,
    pub confirmed_at: Option<DateTime<Utc>>,
    pub last_used_step: Option<i64>,
}

impl std::fmt::Debug for TotpFactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TotpFactor").field("id", &self.id).field("confirmed_at", &self.confirmed_at).finish()
    }
}

impl TotpFactor {
    /// The account's authenticator, confirmed or pending, locked for the transaction (a code
    /// is checked and its step recorded under this lock, so two requests cannot both use it).
    pub fn find_for_update(conn: &mut PgConnection, owner: FactorOwner) -> QueryResult<Option<TotpFactor>> {
        totp_factors::table.filter(totp_of(owner)).select(TotpFactor::as_select()).for_update().first(conn).optional()
    }

    /// Whether the account has a confirmed authenticator (sign-in asks for a code).
    pub fn is_enrolled(conn: &mut PgConnection, owner: FactorOwner) -> QueryResult<bool> {
        diesel::select(diesel::dsl::exists(
            totp_factors::table.filter(totp_of(owner)).filter(totp_factors::confirmed_at.is_not_null()),
        ))
        .get_result(conn)
    }

    /// Starts an enrolment: any earlier pending one is replaced. The caller has checked that
    /// no confirmed authenticator exists (the unique index refuses a second row anyway).
    pub fn insert_pending(conn: &mut PgConnection, owner: FactorOwner, sealed: &[u8]) -> QueryResult<()> {
        diesel::delete(totp_factors::table.filter(totp_of(owner)).filter(totp_factors::confirmed_at.is_null()))
            .execute(conn)?;
        diesel::insert_into(totp_factors::table)
            .values((
                totp_factors::user_id.eq(owner.user_id()),
                totp_factors::staff_id.eq(owner.staff_id()),
                totp_factors::secret_sealed.eq(sealed),
            ))
            .execute(conn)
            .map(|_| ())
    }

    /// Confirms a pending authenticator with the step of the code that proved it.
    pub fn confirm(conn: &mut PgConnection, id: i64, step: i64, now: DateTime<Utc>) -> QueryResult<()> {
        diesel::update(totp_factors::table.find(id))
            .set((totp_factors::confirmed_at.eq(now), totp_factors::last_used_step.eq(step)))
            .execute(conn)
            .map(|_| ())
    }

    /// Records the step of an accepted code: it and every earlier step are spent.
    pub fn record_step(conn: &mut PgConnection, id: i64, step: i64) -> QueryResult<()> {
        diesel::update(totp_factors::table.find(id))
            .set(totp_factors::last_used_step.eq(step))
            .execute(conn)
            .map(|_| ())
    }

    /// Removes the account's authenticator (confirmed or pending); true if there was one.
    pub fn delete_for(conn: &mut PgConnection, owner: FactorOwner) -> QueryResult<bool> {
        diesel::delete(totp_factors::table.filter(totp_of(owner))).execute(conn).map(|n| n > 0)
    }
}

/// Recovery codes of an account (only their keyed hashes are stored).
pub struct RecoveryCode;

impl RecoveryCode {
    /// Replaces every code of the account with `hashes`: the old ones stop working.
    pub fn replace_all(conn: &mut PgConnection, owner: FactorOwner, hashes: &[[u8; 32]]) -> QueryResult<()> {
        Self::delete_for(conn, owner)?;
        let rows: Vec<_> = hashes
            .iter()
            .map(|hash| {
                (
                    recovery_codes::user_id.eq(owner.user_id()),
                    recovery_codes::staff_id.eq(owner.staff_id()),
                    recovery_codes::code_hash.eq(hash.as_slice()),
                )
            })
            .collect();
        diesel::insert_into(recovery_codes::table).values(rows).execute(conn).map(|_| ())
    }

    /// Spends the unused code with `hash`, in one statement (two requests cannot both spend
    /// it); false if the account has no such unused code.
    pub fn spend(
        conn: &mut PgConnection,
        owner: FactorOwner,
        hash: &[u8; 32],
        now: DateTime<Utc>,
    ) -> QueryResult<bool> {
        diesel::update(
            recovery_codes::table
                .filter(codes_of(owner))
                .filter(recovery_codes::code_hash.eq(hash.as_slice()))
                .filter(recovery_codes::used_at.is_null()),
        )
        .set(recovery_codes::used_at.eq(now))
        .execute(conn)
        .map(|n| n == 1)
    }

    /// How many codes the account can still use.
    pub fn count_unused(conn: &mut PgConnection, owner: FactorOwner) -> QueryResult<i64> {
        recovery_codes::table.filter(codes_of(owner)).filter(recovery_codes::used_at.is_null()).count().get_result(conn)
    }

    pub fn delete_for(conn: &mut PgConnection, owner: FactorOwner) -> QueryResult<()> {
        diesel::delete(recovery_codes::table.filter(codes_of(owner))).execute(conn).map(|_| ())
    }
}

/// One passkey of an account: its name, and the verifier's record of the credential (public
/// key and signature counter, as webauthn-rs serializes it; no secret).
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = passkeys)]
pub struct PasskeyRow {
    pub id: i64,
    pub name: String,
    pub credential_id: Vec<u8>,
    pub credential: serde_json::Value,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
}

/// Why a passkey could not be stored.
#[derive(Debug, PartialEq, Eq)]
pub enum PasskeyInsert {
    Stored,
    /// The account has a passkey of that name already.
    NameTaken,
    /// This credential is registered already (to this account or another).
    CredentialTaken,
}

impl PasskeyRow {
    /// The account's passkeys, oldest first.
    pub fn list(conn: &mut PgConnection, owner: FactorOwner) -> QueryResult<Vec<PasskeyRow>> {
        passkeys::table
            .filter(passkeys_of(owner))
            .order((passkeys::created_at, passkeys::id))
            .select(PasskeyRow::as_select())
            .load(conn)
    }

    pub fn count(conn: &mut PgConnection, owner: FactorOwner) -> QueryResult<i64> {
        passkeys::table.filter(passkeys_of(owner)).count().get_result(conn)
    }

    /// The account's passkey with credential id `credential_id`, locked for the transaction (its
    /// stored signature counter is compared and advanced under this lock).
    pub fn find_by_credential_for_update(
        conn: &mut PgConnection,
        owner: FactorOwner,
        credential_id: &[u8],
    ) -> QueryResult<Option<PasskeyRow>> {
        passkeys::table
            .filter(passkeys_of(owner))
            .filter(passkeys::credential_id.eq(credential_id))
            .select(PasskeyRow::as_select())
            .for_update()
            .first(conn)
            .optional()
    }

    /// Stores a new passkey; a taken name or credential is reported, not an error (the unique
    /// indexes decide, so two tabs cannot both add one).
    pub fn insert(
        conn: &mut PgConnection,
        owner: FactorOwner,
        name: &str,
        credential_id: &[u8],
        credential: &serde_json::Value,
        now: DateTime<Utc>,
    ) -> QueryResult<PasskeyInsert> {
        use diesel::result::{DatabaseErrorKind, Error};
        let inserted = conn.transaction(|conn| {
            diesel::insert_into(passkeys::table)
                .values((
                    passkeys::user_id.eq(owner.user_id()),
                    passkeys::staff_id.eq(owner.staff_id()),
                    passkeys::name.eq(name),
                    passkeys::credential_id.eq(credential_id),
                    passkeys::credential.eq(credential),
                    passkeys::created_at.eq(now),
                ))
                .execute(conn)
        });
        match inserted {
            Ok(_) => Ok(PasskeyInsert::Stored),
            Err(Error::DatabaseError(DatabaseErrorKind::UniqueViolation, info)) => {
                Ok(if info.constraint_name().is_some_and(|c| c.contains("credential_id")) {
                    PasskeyInsert::CredentialTaken
                } else {
                    PasskeyInsert::NameTaken
                })
            }
            Err(e) => Err(e),
        }
    }

    /// Records a use: the credential's new state (counter, backup flags) when it changed.
    pub fn record_use(
        conn: &mut PgConnection,
        id: i64,
        credential: Option<&serde_json::Value>,
        now: DateTime<Utc>,
    ) -> QueryResult<()> {
        match credential {
            Some(credential) => diesel::update(passkeys::table.find(id))
                .set((passkeys::credential.eq(credential), passkeys::last_used_at.eq(now)))
                .execute(conn),
            None => diesel::update(passkeys::table.find(id)).set(passkeys::last_used_at.eq(now)).execute(conn),
        }
        .map(|_| ())
    }

    /// Removes the account's passkey `id`; its name if there was one (another account's is
    /// not found).
    pub fn delete(conn: &mut PgConnection, owner: FactorOwner, id: i64) -> QueryResult<Option<String>> {
        diesel::delete(passkeys::table.filter(passkeys_of(owner)).filter(passkeys::id.eq(id)))
            .returning(passkeys::name)
            .get_result(conn)
            .optional()
    }

    pub fn delete_for(conn: &mut PgConnection, owner: FactorOwner) -> QueryResult<usize> {
        diesel::delete(passkeys::table.filter(passkeys_of(owner))).execute(conn)
    }
}

/// Whether the account has any second factor: a confirmed authenticator or a passkey.
pub fn has_any_factor(conn: &mut PgConnection, owner: FactorOwner) -> QueryResult<bool> {
    Ok(TotpFactor::is_enrolled(conn, owner)? || PasskeyRow::count(conn, owner)? > 0)
}
