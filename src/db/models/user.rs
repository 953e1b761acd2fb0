//! Web users: members of exactly one organization.

use crate::{
    db::{count::CountRows, search::SearchPatterns},
    views::pager::MAX_COUNTED,
};
use chrono::{DateTime, Utc};
use diesel::prelude::*;

use std::collections::{BTreeSet, HashMap};

use crate::{
    db::models::api_key::holds_key_access_sql,
    db::schema::{api_actions, role_api_actions, role_permissions, roles, user_roles, users},
    domain::{Permission, PermissionSet},
    keys::standing::OwnerBlock,
};

/// The API actions a user may put on keys (SPEC §3: never more than the creator may do).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ActionCeiling {
    /// Administrators, and holders of a role allowing every action.
    All,
    /// The union of the actions the user's roles allow (action ids).
    Only(BTreeSet<i64>),
}

impl ActionCeiling {
    pub fn allows(&self, action_id: i64) -> bool {
        match self {
            ActionCeiling::All => true,
            ActionCeiling::Only(ids) => ids.contains(&action_id),
        }
    }

    pub fn is_all(&self) -> bool {
        matches!(self, ActionCeiling::All)
    }
}

#[derive(Debug, Clone, Queryable, Selectable, Identifiable)]
#[diesel(table_name = users)]
pub struct User {
    pub id: i64,
    pub organization_id: i64,
    pub email: String,
    pub display_name: String,
    pub password_hash: Option<String>,
    pub is_admin: bool,
    pub api_key_access: bool,
    pub active: bool,
    pub last_login_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Whether they want expiry reminders for their keys (other notices always go out).
    pub receive_reminders: bool,
    /// Whether they (an administrator) want the weekly digest.
    pub receive_digest: bool,
}

/// Changes to a user; `None` leaves a column as it is.
#[derive(Debug, Default, AsChangeset)]
#[diesel(table_name = users)]
pub struct UserChanges {
    pub display_name: Option<String>,
    pub is_admin: Option<bool>,
    pub api_key_access: Option<bool>,
    pub active: Option<bool>,
    pub password_hash: Option<Option<String>>,
}

/// Orders of the user list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UserSort {
    #[default]
    Name,
    Email,
    LastLogin,
    Newest,
}

impl UserSort {
    pub fn from_code(code: &str) -> Self {
        match code {
            "email" => UserSort::Email,
            "last_login" => UserSort::LastLogin,
            "newest" => UserSort::Newest,
            _ => UserSort::Name,
        }
    }

    pub fn code(self) -> &'static str {
        match self {
            UserSort::Name => "name",
            UserSort::Email => "email",
            UserSort::LastLogin => "last_login",
            UserSort::Newest => "newest",
        }
    }
}

#[derive(Debug, Insertable)]
#[diesel(table_name = users)]
pub struct NewUser<'a> {
    pub organization_id: i64,
    pub email: &'a str,
    pub display_name: &'a str,
    pub password_hash: Option<&'a str>,
    pub is_admin: bool,
    pub api_key_access: bool,
}

impl User {
    /// A user by id, inside `organization_id` only.
    pub fn find_in_org(conn: &mut PgConnection, organization_id: i64, id: i64) -> QueryResult<User> {
        users::table
            .filter(users::id.eq(id))
            .filter(users::organization_id.eq(organization_id))
            .select(User::as_select())
            .first(conn)
    }

    /// A user by id across organizations: only for resolving the signed-in user.
    pub fn find(conn: &mut PgConnection, id: i64) -> QueryResult<User> {
        users::table.find(id).select(User::as_select()).first(conn)
    }

    pub fn find_by_email(conn: &mut PgConnection, email: &str) -> QueryResult<Option<User>> {
        users::table.filter(users::email.eq(email)).select(User::as_select()).first(conn).optional()
    }

    pub fn insert(conn: &mut PgConnection, new: &NewUser<'_>) -> QueryResult<User> {
        diesel::insert_into(users::table).values(new).returning(User::as_returning()).get_result(conn)
    }

    pub fn record_login(conn: &mut PgConnection, id: i64) -> QueryResult<()> {
        diesel::update(users::table.find(id)).set(users::last_login_at.eq(diesel::dsl::now)).execute(conn).map(|_| ())
    }

    /// Permissions granted through the user's roles (not counting admin or the access toggle).
    pub fn role_permissions(conn: &mut PgConnection, id: i64) -> QueryResult<Vec<Permission>> {
        let codes: Vec<String> = user_roles::table
            .inner_join(role_permissions::table.on(role_permissions::role_id.eq(user_roles::role_id)))
            .filter(user_roles::user_id.eq(id))
            .select(role_permissions::permission)
            .distinct()
            .load(conn)?;
        Ok(codes.iter().filter_map(|c| Permission::from_code(c)).collect())
    }

    /// The API actions this user may grant: everything for administrators, otherwise what
    /// their roles allow (retired actions excluded).
    pub fn action_ceiling(&self, conn: &mut PgConnection) -> QueryResult<ActionCeiling> {
        if self.is_admin {
            return Ok(ActionCeiling::All);
        }
        let any_all: bool = diesel::select(diesel::dsl::exists(
            user_roles::table
                .inner_join(roles::table.on(roles::id.eq(user_roles::role_id)))
                .filter(user_roles::user_id.eq(self.id))
                .filter(roles::all_api_actions.eq(true)),
        ))
        .get_result(conn)?;
        if any_all {
            return Ok(ActionCeiling::All);
        }
        let ids: Vec<i64> = user_roles::table
            .inner_join(role_api_actions::table.on(role_api_actions::role_id.eq(user_roles::role_id)))
            .inner_join(api_actions::table.on(api_actions::id.eq(role_api_actions::api_action_id)))
            .filter(user_roles::user_id.eq(self.id))
            .filter(api_actions::retired_at.is_null())
            .select(role_api_actions::api_action_id)
            .load(conn)?;
        Ok(ActionCeiling::Only(ids.into_iter().collect()))
    }

    /// The effective permissions and action ceilings of `users`, by id, in three queries
    /// however many users (a page of a user list).
    pub fn standings_of(
        conn: &mut PgConnection,
        users: &[User],
    ) -> QueryResult<HashMap<i64, (PermissionSet, ActionCeiling)>> {
        let ids: Vec<i64> = users.iter().filter(|u| !u.is_admin).map(|u| u.id).collect();
        let permissions: Vec<(i64, String)> = user_roles::table
            .inner_join(role_permissions::table.on(role_permissions::role_id.eq(user_roles::role_id)))
            .filter(user_roles::user_id.eq_any(&ids))
            .select((user_roles::user_id, role_permissions::permission))
            .load(conn)?;
        let all_actions: Vec<i64> = user_roles::table
            .inner_join(roles::table.on(roles::id.eq(user_roles::role_id)))
            .filter(user_roles::user_id.eq_any(&ids))
            .filter(roles::all_api_actions.eq(true))
            .select(user_roles::user_id)
            .load(conn)?;
        let actions: Vec<(i64, i64)> = user_roles::table
            .inner_join(role_api_actions::table.on(role_api_actions::role_id.eq(user_roles::role_id)))
            .inner_join(api_actions::table.on(api_actions::id.eq(role_api_actions::api_action_id)))
            .filter(user_roles::user_id.eq_any(&ids))
            .filter(api_actions::retired_at.is_null())
            .select((user_roles::user_id, role_api_actions::api_action_id))
            .load(conn)?;
        Ok(users
            .iter()
            .map(|user| {
                if user.is_admin {
                    return (user.id, (PermissionSet::all(), ActionCeiling::All));
                }
                let from_roles = permissions
                    .iter()
                    .filter(|(id, _)| *id == user.id)
                    .filter_map(|(_, code)| Permission::from_code(code));
                let set = PermissionSet::effective(false, user.api_key_access, from_roles);
                let ceiling = if all_actions.contains(&user.id) {
                    ActionCeiling::All
                } else {
                    ActionCeiling::Only(actions.iter().filter(|(id, _)| *id == user.id).map(|(_, a)| *a).collect())
                };
                (user.id, (set, ceiling))
            })
            .collect())
    }

    /// `id → (display name, email)` for `ids`, in one query.
    pub fn names_by_id(conn: &mut PgConnection, ids: &[i64]) -> QueryResult<HashMap<i64, (String, String)>> {
        let rows: Vec<(i64, String, String)> = users::table
            .filter(users::id.eq_any(ids))
            .select((users::id, users::display_name, users::email))
            .load(conn)?;
        Ok(rows.into_iter().map(|(id, name, email)| (id, (name, email))).collect())
    }

    /// `id → display name` for those of `ids` who are users of `organization_id`, in one query.
    pub fn names_in_org(
        conn: &mut PgConnection,
        organization_id: i64,
        ids: &[i64],
    ) -> QueryResult<HashMap<i64, String>> {
        let rows: Vec<(i64, String)> = users::table
            .filter(users::organization_id.eq(organization_id))
            .filter(users::id.eq_any(ids))
            .select((users::id, users::display_name))
            .load(conn)?;
        Ok(rows.into_iter().collect())
    }

    /// `id → what stops their personal keys` for the users among `ids` whose keys are
    /// stopped (the verifier's rule, [`OwnerBlock::of`]), in two queries whatever the count.
    pub fn owner_blocks(conn: &mut PgConnection, ids: &[i64]) -> QueryResult<HashMap<i64, OwnerBlock>> {
        let people: Vec<(i64, bool, bool, bool)> = users::table
            .filter(users::id.eq_any(ids))
            .select((users::id, users::active, users::is_admin, users::api_key_access))
            .load(conn)?;
        let granted: Vec<(i64, String)> = user_roles::table
            .inner_join(role_permissions::table.on(role_permissions::role_id.eq(user_roles::role_id)))
            .filter(user_roles::user_id.eq_any(ids))
            .select((user_roles::user_id, role_permissions::permission))
            .load(conn)?;
        let mut from_roles: HashMap<i64, Vec<Permission>> = HashMap::new();
        for (user_id, code) in granted {
            from_roles.entry(user_id).or_default().extend(Permission::from_code(&code));
        }
        Ok(people
            .into_iter()
            .filter_map(|(id, active, is_admin, access)| {
                let permissions =
                    PermissionSet::effective(is_admin, access, from_roles.remove(&id).unwrap_or_default());
                OwnerBlock::of(active, permissions).map(|block| (id, block))
            })
            .collect())
    }

    /// Every user of an organization, by name (proxy choices; inactive users may be proxies).
    pub fn list_for_org(conn: &mut PgConnection, organization_id: i64) -> QueryResult<Vec<User>> {
        users::table
            .filter(users::organization_id.eq(organization_id))
            .order((users::display_name.asc(), users::id.asc()))
            .select(User::as_select())
            .load(conn)
    }

    /// Up to `limit` users of the organization with an id above `after`, by id (the
    /// management API's pages).
    pub fn page_in_org(
        conn: &mut PgConnection,
        organization_id: i64,
        after: Option<i64>,
        limit: i64,
    ) -> QueryResult<Vec<User>> {
        users::table
            .filter(users::organization_id.eq(organization_id))
            .filter(users::id.gt(after.unwrap_or(0)))
            .order(users::id.asc())
            .limit(limit.clamp(1, 200))
            .select(User::as_select())
            .load(conn)
    }

    /// One page of an organization's users matching `search` (name or email), sorted.
    pub fn list_for_admin(
        conn: &mut PgConnection,
        organization_id: i64,
        search: &str,
        sort: UserSort,
        page: i64,
        per_page: i64,
    ) -> QueryResult<(Vec<User>, i64)> {
        Self::list_for_admin_filtered(conn, organization_id, search, false, sort, page, per_page)
    }

    /// [`User::list_for_admin`], limited to the users whose keys work (active, holding
    /// `keys.own`) when `with_key_access` is set.
    pub fn list_for_admin_filtered(
        conn: &mut PgConnection,
        organization_id: i64,
        search: &str,
        with_key_access: bool,
        sort: UserSort,
        page: i64,
        per_page: i64,
    ) -> QueryResult<(Vec<User>, i64)> {
        let filtered = || {
            let mut query = users::table.filter(users::organization_id.eq(organization_id)).into_boxed();
            if with_key_access {
                query = query.filter(diesel::dsl::sql::<diesel::sql_types::Bool>(&holds_key_access_sql("users")));
            }
            if !search.is_empty() {
                let SearchPatterns { first, second } = SearchPatterns::of(search);
                query = match second {
                    None => query.filter(users::display_name.ilike(first.clone()).or(users::email.ilike(first))),
                    Some(second) => query.filter(
                        users::display_name
                            .ilike(first.clone())
                            .or(users::display_name.ilike(second.clone()))
                            .or(users::email.ilike(first))
                            .or(users::email.ilike(second)),
                    ),
                };
            }
            query
        };
        let total: i64 = CountRows(filtered().select(users::id).limit(MAX_COUNTED + 1)).get_result(conn)?;
        let query = filtered();
        let query = match sort {
            UserSort::Name => query.order((users::display_name.asc(), users::id.asc())),
            UserSort::Email => query.order(users::email.asc()),
            UserSort::LastLogin => query.order((users::last_login_at.desc().nulls_last(), users::id.asc())),
            UserSort::Newest => query.order((users::created_at.desc(), users::id.desc())),
        };
        let rows = query.limit(per_page).offset(page * per_page).select(User::as_select()).load(conn)?;
        Ok((rows, total))
    }

    /// The organization's users whose keys work (active, holding `keys.own`): the number
    /// behind the overview's card, and the total of `list_for_admin_filtered(…, true, …)`.
    pub fn count_with_key_access(conn: &mut PgConnection, organization_id: i64) -> QueryResult<i64> {
        users::table
            .filter(users::organization_id.eq(organization_id))
            .filter(diesel::dsl::sql::<diesel::sql_types::Bool>(&holds_key_access_sql("users")))
            .count()
            .get_result(conn)
    }

    /// Locks and returns the active administrators of an organization (changes that could
    /// remove the last one serialize on these rows).
    pub fn lock_active_admins(conn: &mut PgConnection, organization_id: i64) -> QueryResult<Vec<i64>> {
        users::table
            .filter(users::organization_id.eq(organization_id))
            .filter(users::is_admin.eq(true))
            .filter(users::active.eq(true))
            .select(users::id)
            .for_update()
            .load(conn)
    }

    /// Applies `changes` to the user.
    pub fn update(conn: &mut PgConnection, id: i64, changes: &UserChanges) -> QueryResult<User> {
        diesel::update(users::table.find(id))
            .set((changes, users::updated_at.eq(diesel::dsl::now)))
            .returning(User::as_returning())
            .get_result(conn)
    }

    /// The user's effective permissions (SPEC §2).
    pub fn effective_permissions(&self, conn: &mut PgConnection) -> QueryResult<PermissionSet> {
        if self.is_admin {
            return Ok(PermissionSet::all());
        }
        let from_roles = Self::role_permissions(conn, self.id)?;
        Ok(PermissionSet::effective(false, self.api_key_access, from_roles))
    }
}
