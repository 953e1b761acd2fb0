//! `/api/v1/keys`: the key lifecycle for scripts, through the same services as the pages
//! (`services::keys::lifecycle` with the token as the actor): list, create, read, change,
//! re-key, end grace, deactivate, reactivate, delete. `id` is the key's public id.

use actix_web::{
    HttpRequest, HttpResponse, delete, get,
    http::{StatusCode, header},
    patch, post, web,
};
use chrono::{DateTime, NaiveDate, Utc};
use diesel::PgConnection;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{
    auth::Caller,
    cursor,
    denied::Refusal,
    idempotency::{self, Idempotency},
    problem::Problem,
};
use crate::{
    db::models::{
        ApiKey,
        api_key::{KeyListFilter, KeyScope, OwnerFilter, StateFilter, Unused},
        management_token::TokenHolder,
    },
    domain::{Capability, TokenScope},
    error::{AppError, FieldErrors},
    keys::Environment,
    routes::api::management::ProblemBody,
    services::keys::{
        ActionChoice, ActionCode, AssetScope, Created, ExpiryChoice, KeyComment, KeyInput, KeyName, KeyOp, NewKeyOwner,
        NewKeyRequest, OwnerContext, Rekeyed,
        input::parse_cidrs,
        lifecycle::{self, KeyRef},
    },
    state::AppState,
};

/// A key as the management API shows it (never its secret).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct KeyView {
    pub id: String,
    pub name: String,
    pub comment: String,
    pub environment: String,
    #[schema(value_type = Object)]
    pub owner: Value,
    pub proxy_user_id: Option<i64>,
    /// `"all"` or the action codes.
    #[schema(schema_with = shown::action_codes)]
    pub actions: Value,
    /// `"all"` or the assets (`id`, `code`).
    #[schema(schema_with = shown::assets)]
    pub assets: Value,
    #[schema(value_type = Vec<Object>)]
    pub asset_groups: Vec<Value>,
    pub allowed_ips: Vec<String>,
    pub expires_at: Option<DateTime<Utc>>,
    pub active: bool,
    pub deactivation_reason: Option<String>,
    pub masked: String,
    pub rotating: bool,
    pub previous_secret_expires_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
}

impl KeyView {
    /// The views of `keys`, their scopes loaded in one query per relation.
    pub fn load_many(conn: &mut PgConnection, keys: &[ApiKey], now: DateTime<Utc>) -> Result<Vec<Self>, AppError> {
        let ids: Vec<i64> = keys.iter().map(|k| k.id).collect();
        let mut actions = ApiKey::actions_of(conn, &ids)?;
        let mut assets = ApiKey::assets_of(conn, &ids)?;
        let mut groups = ApiKey::groups_of(conn, &ids)?;
        Ok(keys
            .iter()
            .map(|key| {
                let owner = key.owner();
                KeyView {
                    id: key.public_id.clone(),
                    name: key.name.clone(),
                    comment: key.comment.clone(),
                    environment: key.environment.clone(),
                    owner: json!({ "type": owner.kind(), "id": owner.id() }),
                    proxy_user_id: key.proxy_user_id,
                    actions: if key.all_actions {
                        json!("all")
                    } else {
                        json!(actions.remove(&key.id).unwrap_or_default())
                    },
                    assets: if key.all_assets {
                        json!("all")
                    } else {
                        json!(
                            assets
                                .remove(&key.id)
                                .unwrap_or_default()
                                .into_iter()
                                .map(|(id, code, _)| json!({ "id": id, "code": code }))
                                .collect::<Vec<_>>()
                        )
                    },
                    asset_groups: groups
                        .remove(&key.id)
                        .unwrap_or_default()
                        .into_iter()
                        .map(|(id, name)| json!({ "id": id, "name": name }))
                        .collect(),
                    allowed_ips: key.cidrs().iter().map(|c| c.to_string()).collect(),
                    expires_at: key.expires_at,
                    active: key.active,
                    deactivation_reason: key.deactivation_reason.clone(),
                    masked: key.masked(),
                    rotating: key.is_rotating_at(now),
                    previous_secret_expires_at: key.previous_secret_expires_at.filter(|_| key.is_rotating_at(now)),
                    created_at: key.created_at,
                    updated_at: key.updated_at,
                    last_used_at: key.last_used_at,
                }
            })
            .collect())
    }

    pub fn load(conn: &mut PgConnection, key: &ApiKey, now: DateTime<Utc>) -> Result<Self, AppError> {
        Ok(Self::load_many(conn, std::slice::from_ref(key), now)?.remove(0))
    }

    /// A strong validator of this representation: it changes whenever anything shown does.
    pub fn etag(&self) -> String {
        use sha2::{Digest, Sha256};
        let bytes = serde_json::to_vec(self).unwrap_or_default();
        let digest = Sha256::digest(bytes);
        let hex: String = digest[..12].iter().map(|b| format!("{b:02x}")).collect();
        format!("\"{hex}\"")
    }
}

/// The schemas of a key's actions and assets as shown: `"all"`, or a list.
mod shown {
    use utoipa::openapi::{
        RefOr, Schema,
        schema::{ArrayBuilder, ObjectBuilder, OneOfBuilder, Type},
    };

    fn all_or(item: impl Into<RefOr<Schema>>) -> Schema {
        let all = ObjectBuilder::new().schema_type(Type::String).enum_values(Some(["all"]));
        Schema::OneOf(OneOfBuilder::new().item(all).item(ArrayBuilder::new().items(item.into())).build())
    }

    pub fn action_codes() -> Schema {
        all_or(ObjectBuilder::new().schema_type(Type::String))
    }

    pub fn assets() -> Schema {
        all_or(
            ObjectBuilder::new()
                .property("id", ObjectBuilder::new().schema_type(Type::Integer))
                .property("code", ObjectBuilder::new().schema_type(Type::String))
                .required("id")
                .required("code"),
        )
    }
}

/// "all", or a list.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum AllOr<T> {
    Word(String),
    List(Vec<T>),
}

impl<T> AllOr<T> {
    /// `Ok(None)` for "all", the list otherwise; any other word is an error.
    fn list(self) -> Result<Option<Vec<T>>, String> {
        match self {
            AllOr::Word(word) if word == "all" => Ok(None),
            AllOr::Word(word) => Err(format!("{word:?}: give \"all\" or a list.")),
            AllOr::List(items) => Ok(Some(items)),
        }
    }
}

/// Whose key `POST /keys` creates.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum OwnerBody {
    /// A personal key of user `id`.
    User { id: i64 },
    /// An organization key, its calls attributed to `proxy_user_id` (default: the token's creator).
    Organization {
        #[serde(default)]
        proxy_user_id: Option<i64>,
    },
    /// A key of the service provider whose token this is (a provider's token's only choice).
    ServiceProvider {},
}

/// The body of `POST /keys`; every settings field is optional (the creator's defaults apply).
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateKeyBody {
    pub name: String,
    #[serde(default)]
    pub comment: Option<String>,
    /// `live` (default) or `test`.
    #[serde(default)]
    pub environment: Option<String>,
    #[serde(default)]
    /// `"all"` or a list of action codes.
    #[schema(value_type = Option<Object>)]
    pub actions: Option<AllOr<String>>,
    /// `"all"` or asset ids.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub assets: Option<AllOr<i64>>,
    /// Asset group ids (with `assets` as a list).
    #[serde(default)]
    pub asset_groups: Option<Vec<i64>>,
    #[serde(default)]
    pub allowed_ips: Option<Vec<String>>,
    /// A date (`2027-06-30`), an RFC 3339 time (its date counts: keys expire at the end of a
    /// day) or `"never"`; absent: the key policy's default.
    #[serde(default)]
    pub expires_at: Option<String>,
    #[serde(default)]
    pub owner: Option<OwnerBody>,
}

/// The body of `PATCH /keys/{id}`: the fields given are changed, the others kept.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateKeyBody {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub comment: Option<String>,
    #[serde(default)]
    /// `"all"` or a list of action codes.
    #[schema(value_type = Option<Object>)]
    pub actions: Option<AllOr<String>>,
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub assets: Option<AllOr<i64>>,
    #[serde(default)]
    pub asset_groups: Option<Vec<i64>>,
    #[serde(default)]
    pub allowed_ips: Option<Vec<String>>,
    #[serde(default)]
    pub expires_at: Option<String>,
    #[serde(default)]
    pub proxy_user_id: Option<i64>,
}

/// The body of `POST /keys/{id}/rekey`.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RekeyBody {
    /// How long the old secret keeps working, in minutes (one of the offered grace periods;
    /// default: the key policy's).
    #[serde(default)]
    pub grace_minutes: Option<i32>,
}

/// The body of `POST /keys/{id}/deactivate`.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeactivateBody {
    #[serde(default)]
    pub reason: Option<String>,
}

/// Parses a JSON body (an empty body is `T::default()` where there is one).
fn json_body<T: serde::de::DeserializeOwned>(req: &HttpRequest, body: &[u8], empty: Option<T>) -> Result<T, Problem> {
    if body.iter().all(u8::is_ascii_whitespace)
        && let Some(value) = empty
    {
        return Ok(value);
    }
    let json = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_none_or(|v| v.starts_with("application/json"));
    if !json {
        return Err(Problem::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, "Send the body as application/json."));
    }
    serde_json::from_slice(body)
        .map_err(|e| Problem::bad_request(format!("The body is not what this endpoint takes: {e}")))
}

fn parse_expiry(text: &str) -> Result<ExpiryChoice, String> {
    let text = text.trim();
    if text.eq_ignore_ascii_case("never") {
        return Ok(ExpiryChoice::Never);
    }
    if let Ok(date) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return Ok(ExpiryChoice::On(date));
    }
    DateTime::parse_from_rfc3339(text)
        .map(|at| ExpiryChoice::On(at.with_timezone(&Utc).date_naive()))
        .map_err(|_| format!("{text:?} is not a date (2027-06-30), an RFC 3339 time or \"never\"."))
}

fn parse_actions(errors: &mut FieldErrors, actions: AllOr<String>) -> Option<ActionChoice> {
    match errors.take("actions", actions.list())? {
        None => Some(ActionChoice::All),
        Some(codes) => {
            let codes = codes.iter().map(|c| ActionCode::parse(c)).collect::<Result<Vec<_>, _>>();
            errors.take("actions", codes).map(ActionChoice::Only)
        }
    }
}

fn parse_assets(errors: &mut FieldErrors, assets: Option<AllOr<i64>>, groups: Option<Vec<i64>>) -> Option<AssetScope> {
    let assets = match assets {
        None => None,
        Some(assets) => errors.take("assets", assets.list())?,
    };
    match (assets, groups) {
        (None, None) => Some(AssetScope::All),
        (None, Some(groups)) if groups.is_empty() => Some(AssetScope::All),
        (None, Some(_)) => {
            errors.add("asset_groups", "Asset groups limit a key whose assets are a list, not \"all\".");
            None
        }
        (Some(asset_ids), groups) => Some(AssetScope::Only { asset_ids, group_ids: groups.unwrap_or_default() }),
    }
}

/// A service provider's key belongs to no organization: it has no assets to be limited to
/// and no proxy user. Asking for either is an error, not a silently wider key.
fn refuse_organization_settings(errors: &mut FieldErrors, assets: &Option<AssetScope>, proxy_user_id: Option<i64>) {
    if matches!(assets, Some(AssetScope::Only { .. })) {
        errors.add("assets", "A service provider's key reaches every asset: it belongs to no organization.");
    }
    if proxy_user_id.is_some() {
        errors.add("proxy_user_id", "A service provider's key has no proxy user.");
    }
}

fn parse_ips(errors: &mut FieldErrors, ips: Vec<String>) -> Option<Vec<ipnetwork::IpNetwork>> {
    errors.take("allowed_ips", parse_cidrs(&ips.join(",")))
}

impl CreateKeyBody {
    /// The typed request, every syntax problem a field error.
    fn request(self, holder: TokenHolder) -> Result<NewKeyRequest, AppError> {
        let mut errors = FieldErrors::new();
        let name = errors.take("name", KeyName::parse(&self.name));
        let comment = errors.take("comment", KeyComment::parse(self.comment.as_deref().unwrap_or_default()));
        let environment = match self.environment.as_deref() {
            None => Some(Environment::Live),
            Some(code) => errors.take("environment", Environment::from_code(code).ok_or("Use \"live\" or \"test\".")),
        };
        let actions = match self.actions {
            None => Some(ActionChoice::OwnersDefault),
            Some(actions) => parse_actions(&mut errors, actions),
        };
        let assets = parse_assets(&mut errors, self.assets, self.asset_groups);
        let cidrs = parse_ips(&mut errors, self.allowed_ips.unwrap_or_default());
        let expiry = match self.expires_at.as_deref() {
            None => Some(ExpiryChoice::PolicyDefault),
            Some(text) => errors.take("expires_at", parse_expiry(text)),
        };
        let owner = match (holder, self.owner) {
            (TokenHolder::Organization { organization_id, .. }, Some(OwnerBody::User { id })) => {
                Some((NewKeyOwner::Personal { user_id: id, organization_id }, None))
            }
            (TokenHolder::Organization { organization_id, .. }, Some(OwnerBody::Organization { proxy_user_id })) => {
                Some((NewKeyOwner::Organization { organization_id }, proxy_user_id))
            }
            (TokenHolder::Organization { organization_id, .. }, None) => {
                Some((NewKeyOwner::Organization { organization_id }, None))
            }
            (TokenHolder::ServiceProvider { service_provider_id, .. }, None | Some(OwnerBody::ServiceProvider {})) => {
                Some((NewKeyOwner::ServiceProvider { service_provider_id }, None))
            }
            (TokenHolder::Organization { .. }, Some(OwnerBody::ServiceProvider {})) => errors.take(
                "owner",
                Err("An organization's token creates keys of its organization: a user's or the organization's."),
            ),
            (TokenHolder::ServiceProvider { .. }, Some(_)) => errors.take(
                "owner",
                Err("A service provider's token creates the provider's keys: leave owner out or use {\"type\": \"service_provider\"}."),
            ),
        };
        if let TokenHolder::ServiceProvider { .. } = holder {
            refuse_organization_settings(&mut errors, &assets, None);
        }
        let (((((name, comment), environment), actions), assets), (cidrs, (expiry, (owner, proxy_user_id)))) = errors
            .finish(
            name.zip(comment).zip(environment).zip(actions).zip(assets).zip(cidrs.zip(expiry.zip(owner))),
        )?;
        Ok(NewKeyRequest {
            owner,
            name,
            environment,
            input: KeyInput { comment, actions, assets, cidrs, expiry, proxy_user_id },
            form_token: None,
        })
    }
}

impl UpdateKeyBody {
    fn changes_settings(&self) -> bool {
        self.comment.is_some()
            || self.actions.is_some()
            || self.assets.is_some()
            || self.asset_groups.is_some()
            || self.allowed_ips.is_some()
            || self.expires_at.is_some()
            || self.proxy_user_id.is_some()
    }

    /// The key's current settings with the given fields replaced.
    fn input(self, conn: &mut PgConnection, key: &ApiKey) -> Result<(Option<KeyName>, Option<KeyInput>), AppError> {
        let mut errors = FieldErrors::new();
        let name = match &self.name {
            None => None,
            Some(name) => errors.take("name", KeyName::parse(name)),
        };
        if !self.changes_settings() {
            return errors.finish(Some((name, None)));
        }
        let comment = match &self.comment {
            Some(comment) => errors.take("comment", KeyComment::parse(comment)),
            None => Some(KeyComment::parse(&key.comment).unwrap_or_default()),
        };
        let actions = match self.actions {
            Some(actions) => parse_actions(&mut errors, actions),
            None if key.all_actions => Some(ActionChoice::All),
            None => {
                let codes = ApiKey::actions_of(conn, &[key.id])?.remove(&key.id).unwrap_or_default();
                Some(ActionChoice::Only(codes.iter().filter_map(|c| ActionCode::parse(c).ok()).collect()))
            }
        };
        let assets_given = self.assets.is_some() || self.asset_groups.is_some();
        let assets = match (self.assets, self.asset_groups) {
            (None, None) => Some(crate::services::keys::ceiling::KeyReach::assets_of_key(conn, key)?),
            (assets, groups) => parse_assets(&mut errors, assets, groups),
        };
        let cidrs = match self.allowed_ips {
            Some(ips) => parse_ips(&mut errors, ips),
            None => Some(key.cidrs()),
        };
        let expiry = match self.expires_at.as_deref() {
            Some(text) => errors.take("expires_at", parse_expiry(text)),
            None => Some(key.expires_at.map_or(ExpiryChoice::Never, |at| ExpiryChoice::On(at.date_naive()))),
        };
        if key.owner_service_provider_id.is_some() {
            let asked = if assets_given { assets.clone() } else { None };
            refuse_organization_settings(&mut errors, &asked, self.proxy_user_id);
        }
        let proxy_user_id = self.proxy_user_id.or(key.proxy_user_id);
        let ((((comment, actions), assets), cidrs), expiry) =
            errors.finish(comment.zip(actions).zip(assets).zip(cidrs).zip(expiry))?;
        Ok((name, Some(KeyInput { comment, actions, assets, cidrs, expiry, proxy_user_id })))
    }
}

/// The keys the token reaches in lists: a service provider's token, the provider's keys; an
/// organization's, every key of the organization if its creator manages keys, else the
/// creator's own.
fn list_scope(caller: &Caller) -> Result<KeyScope, Problem> {
    let TokenHolder::Organization { organization_id, user_id } = caller.token.holder else {
        return Ok(caller.key_scope());
    };
    if caller.token.creator_can.allows(Capability::ManageKeys) {
        Ok(KeyScope::Organization(organization_id))
    } else if caller.token.creator_can.allows(Capability::OwnKeys) {
        Ok(KeyScope::OwnedBy { organization_id, user_id })
    } else {
        Err(Problem::forbidden(Refusal::CreatorRights, "The token's creator may no longer use keys."))
    }
}

/// The query of `GET /keys` (the filters of the browser's key lists).
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// `organization`, `personal`, or a user id.
    owner: Option<String>,
    /// `active`, `inactive`, `expired`, `disabled`.
    state: Option<String>,
    /// `true`: keys expiring within 14 days.
    expiring: Option<bool>,
    /// Not used for this many days, or `never`.
    unused: Option<String>,
    q: Option<String>,
    limit: Option<i64>,
    cursor: Option<String>,
}

impl ListQuery {
    fn filter(&self, now: DateTime<Utc>) -> Result<KeyListFilter, Problem> {
        let owner = match self.owner.as_deref() {
            None | Some("") => OwnerFilter::Any,
            Some("organization") => OwnerFilter::Organization,
            Some("personal") => OwnerFilter::Personal,
            Some(id) => OwnerFilter::User(
                id.parse().map_err(|_| Problem::invalid_field("owner", "Use organization, personal or a user id."))?,
            ),
        };
        let state = match self.state.as_deref() {
            None | Some("") => StateFilter::Any,
            Some("active") => StateFilter::Active,
            Some("inactive") => StateFilter::Inactive,
            Some("expired") => StateFilter::Expired,
            Some("disabled") => StateFilter::Disabled,
            Some(_) => return Err(Problem::invalid_field("state", "Use active, inactive, expired or disabled.")),
        };
        let unused = match self.unused.as_deref() {
            None | Some("") => None,
            Some("never") => Some(Unused::Never),
            Some(days) => match days.parse::<i64>() {
                Ok(days @ 1..=3650) => Some(Unused::Since(now - chrono::Duration::days(days))),
                _ => return Err(Problem::invalid_field("unused", "Use a number of days (1 to 3650) or never.")),
            },
        };
        Ok(KeyListFilter {
            owner,
            state,
            expiring_soon: self.expiring.unwrap_or(false),
            unused,
            search: self.q.clone().filter(|q| !q.trim().is_empty()),
            page: 0,
            per_page: 50,
        })
    }
}

#[utoipa::path(
    get,
    path = "/keys",
    tag = "keys",
    summary = "List keys (filters as in the browser, cursor pagination)",
    params(ListQuery),
    responses((status = 200, description = "A page of keys", body = KeyPage), (status = 422, description = "Invalid fields", body = Problem, content_type = "application/problem+json")),
    security(("managementToken" = []))
)]
#[get("/keys")]
pub async fn list_keys(
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, Problem> {
    caller.require_scope(TokenScope::KeysRead)?;
    let scope = list_scope(&caller)?;
    let now = caller.actor.now;
    let filter = query.filter(now)?;
    let after = query.cursor.as_deref().map(cursor::decode).transpose()?;
    let limit = query.limit.unwrap_or(50).clamp(1, 200);
    let (views, next) = state
        .db
        .run(move |conn| {
            let keys = ApiKey::list_after(conn, scope, &filter, after, limit)?;
            let next = (keys.len() as i64 == limit).then(|| keys.last().map(|k| cursor::encode(k.created_at, k.id)));
            Ok((KeyView::load_many(conn, &keys, now)?, next.flatten()))
        })
        .await?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(KeyPage { data: views, next_cursor: next }))
}

fn at(caller: &Caller, public_id: &str) -> Result<(KeyScope, String), Problem> {
    if !crate::keys::format::is_public_id(public_id) {
        return Err(Problem::not_found());
    }
    Ok((caller.key_scope(), public_id.to_string()))
}

/// This instance need not wait for its own change notice to drop the key from its cache
/// (the pages do the same).
fn forget(state: &AppState, public_id: &str) {
    state.verifier.cache.invalidate(&format!("key:{public_id}"));
}

/// A key view with its `ETag`.
fn with_etag(status: StatusCode, view: &KeyView) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header((header::ETAG, view.etag()))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(view)
}

#[utoipa::path(
    get,
    path = "/keys/{id}",
    tag = "keys",
    summary = "Read a key (with an ETag)",
    params(("id" = String, Path, description = "The key's public id")),
    responses((status = 200, description = "The key", body = KeyView, headers(("ETag" = String, description = "Validator for If-Match"))), (status = 404, description = "No such key in the token's organization", body = Problem, content_type = "application/problem+json")),
    security(("managementToken" = []))
)]
#[get("/keys/{id}")]
pub async fn get_key(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, Problem> {
    caller.require_scope(TokenScope::KeysRead)?;
    let (scope, public_id) = at(&caller, &path)?;
    let actor = caller.actor.clone();
    let view = state
        .db
        .run(move |conn| {
            let key = lifecycle::visible(conn, &actor, KeyRef { scope, public_id: &public_id }, KeyOp::View)?;
            KeyView::load(conn, &key, actor.now)
        })
        .await?;
    Ok(with_etag(StatusCode::OK, &view))
}

/// A page of keys.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct KeyPage {
    pub data: Vec<KeyView>,
    /// Give it as `cursor` for the next page; absent on the last.
    pub next_cursor: Option<String>,
}

/// A key and its secret (create, re-key): the secret is in this answer only; a replay of the
/// request (same `Idempotency-Key`) has `secret: null` and a `notice`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct IssuedKey {
    #[serde(flatten)]
    pub key: KeyView,
    pub secret: Option<String>,
    pub notice: Option<String>,
}

/// A problem of `POST /keys` with the fields named as its body names them: the proxy user is
/// `owner.proxy_user_id` there (`PATCH` has it at the top).
fn in_create_body(error: AppError) -> Problem {
    let mut problem = Problem::from(error);
    for field in &mut problem.errors {
        if field.field == "proxy_user_id" {
            field.field = "owner.proxy_user_id".into();
        }
    }
    problem
}

/// The stored first answer to the request's `Idempotency-Key`, given again only while the
/// token may still change its key: the creator's rights are checked now, as for a change
/// (every POST needs `keys:write`, not `keys:read`), so a retry by a demoted creator's token
/// learns nothing it could not do.
fn replay_of(
    conn: &mut PgConnection,
    actor: &crate::services::Actor,
    scope: KeyScope,
    idempotency: &Idempotency,
    token_id: i64,
) -> Result<Option<crate::db::models::management_token::IdempotencyRecord>, AppError> {
    let Some(record) = idempotency.replay(conn, token_id)? else { return Ok(None) };
    let public_id = record.body.get("id").and_then(Value::as_str).unwrap_or_default().to_string();
    lifecycle::visible(conn, actor, KeyRef { scope, public_id: &public_id }, KeyOp::Edit)?;
    Ok(Some(record))
}

/// What a create or re-key gives: the first answer, or a replay.
enum Issued {
    New(Value),
    Replayed(crate::db::models::management_token::IdempotencyRecord),
}

fn issued(status: StatusCode, outcome: Issued, secret: Option<String>) -> HttpResponse {
    match outcome {
        Issued::Replayed(record) => idempotency::replayed(record),
        Issued::New(mut body) => {
            body["secret"] = json!(secret);
            HttpResponse::build(status).insert_header((header::CACHE_CONTROL, "no-store")).json(body)
        }
    }
}

#[utoipa::path(
    post,
    path = "/keys",
    tag = "keys",
    summary = "Create a key; its secret is in this answer only",
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes a retry answer with the first answer (without the secret)")),
    request_body = CreateKeyBody,
    responses((status = 201, description = "The key and its secret", body = IssuedKey), (status = 422, description = "Invalid fields", body = Problem, content_type = "application/problem+json")),
    security(("managementToken" = []))
)]
#[post("/keys")]
pub async fn create_key(
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: Caller,
    body: ProblemBody,
) -> Result<HttpResponse, Problem> {
    caller.require_scope(TokenScope::KeysWrite)?;
    let idempotency = Idempotency::of(&req, &body.0)?;
    let request =
        json_body::<CreateKeyBody>(&req, &body.0, None)?.request(caller.token.holder).map_err(in_create_body)?;
    let (actor, hasher, token_id) = (caller.actor.clone(), state.hasher.clone(), caller.token.id);
    let scope = caller.key_scope();
    let (outcome, secret) = state
        .db
        .transaction(move |conn| {
            if let Some(record) = replay_of(conn, &actor, scope, &idempotency, token_id)? {
                return Ok((Issued::Replayed(record), None));
            }
            let Created::New { key, secret } = lifecycle::create(conn, &actor, &hasher, request)? else {
                return Err(AppError::Conflict("The key was not created.".into()));
            };
            let mut body = json!(KeyView::load(conn, &key, actor.now)?);
            body["secret"] = Value::Null;
            idempotency.remember(conn, token_id, StatusCode::CREATED, &body)?;
            Ok((Issued::New(body), Some(secret.expose().to_string())))
        })
        .await
        .map_err(in_create_body)?;
    Ok(issued(StatusCode::CREATED, outcome, secret))
}

#[utoipa::path(
    patch,
    path = "/keys/{id}",
    tag = "keys",
    summary = "Change a key's name or settings (fields given are changed)",
    params(("id" = String, Path, description = "The key's public id"), ("If-Match" = Option<String>, Header, description = "The ETag the change is based on")),
    request_body = UpdateKeyBody,
    responses((status = 200, description = "The changed key", body = KeyView), (status = 404, description = "No such key in the token's organization", body = Problem, content_type = "application/problem+json"), (status = 412, description = "The key changed since the ETag", body = Problem, content_type = "application/problem+json"), (status = 422, description = "Invalid fields", body = Problem, content_type = "application/problem+json")),
    security(("managementToken" = []))
)]
#[patch("/keys/{id}")]
pub async fn update_key(
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    body: ProblemBody,
) -> Result<HttpResponse, Problem> {
    caller.require_scope(TokenScope::KeysWrite)?;
    let (scope, public_id) = at(&caller, &path)?;
    let body = json_body::<UpdateKeyBody>(&req, &body.0, None)?;
    let if_match = req.headers().get(header::IF_MATCH).and_then(|v| v.to_str().ok()).map(|v| v.trim().to_string());
    let actor = caller.actor.clone();
    let view = state
        .db
        .transaction(move |conn| {
            let at = KeyRef { scope, public_id: &public_id };
            // The row is locked from here: the validator checked is the one changed.
            let (key, _) = lifecycle::lock(conn, &actor, at, KeyOp::View)?;
            if let Some(expected) = if_match.as_deref().filter(|tag| *tag != "*") {
                let current = KeyView::load(conn, &key, actor.now)?.etag();
                if !expected.split(',').any(|tag| tag.trim() == current) {
                    return Ok(None);
                }
            }
            let (name, input) = body.input(conn, &key)?;
            if let Some(input) = input {
                lifecycle::update(conn, &actor, at, input)?;
            }
            let key = match name {
                Some(name) => lifecycle::rename(conn, &actor, at, name)?,
                None => lifecycle::visible(conn, &actor, at, KeyOp::View)?,
            };
            Ok(Some(KeyView::load(conn, &key, actor.now)?))
        })
        .await?;
    match view {
        Some(view) => {
            forget(&state, &view.id);
            Ok(with_etag(StatusCode::OK, &view))
        }
        None => Err(Problem::new(
            StatusCode::PRECONDITION_FAILED,
            "The key changed since the ETag given in If-Match: read it again and retry.",
        )),
    }
}

#[utoipa::path(
    post,
    path = "/keys/{id}/rekey",
    tag = "keys",
    summary = "Give a key a new secret; the old one works for the grace period",
    params(("id" = String, Path, description = "The key's public id"), ("Idempotency-Key" = Option<String>, Header, description = "Makes a retry answer with the first answer (without the secret)")),
    request_body = RekeyBody,
    responses((status = 200, description = "The key and its new secret", body = IssuedKey), (status = 404, description = "No such key in the token's organization", body = Problem, content_type = "application/problem+json"), (status = 422, description = "Invalid fields", body = Problem, content_type = "application/problem+json")),
    security(("managementToken" = []))
)]
#[post("/keys/{id}/rekey")]
pub async fn rekey_key(
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    body: ProblemBody,
) -> Result<HttpResponse, Problem> {
    caller.require_scope(TokenScope::KeysWrite)?;
    let (scope, public_id) = at(&caller, &path)?;
    let idempotency = Idempotency::of(&req, &body.0)?;
    let rekey = json_body::<RekeyBody>(&req, &body.0, Some(RekeyBody::default()))?;
    let (actor, hasher, token_id) = (caller.actor.clone(), state.hasher.clone(), caller.token.id);
    let (outcome, secret) = state
        .db
        .transaction(move |conn| {
            if let Some(record) = replay_of(conn, &actor, scope, &idempotency, token_id)? {
                return Ok((Issued::Replayed(record), None));
            }
            let at = KeyRef { scope, public_id: &public_id };
            let grace = match rekey.grace_minutes {
                Some(minutes) => minutes,
                None => {
                    let key = lifecycle::visible(conn, &actor, at, KeyOp::Rekey)?;
                    lifecycle::policy_of(&OwnerContext::of_key(conn, &key)?).default_grace_minutes
                }
            };
            let Rekeyed::New { key, secret } = lifecycle::rekey(conn, &actor, &hasher, at, grace, None, None)? else {
                return Err(AppError::Conflict("The key was not re-keyed.".into()));
            };
            let mut body = json!(KeyView::load(conn, &key, actor.now)?);
            body["secret"] = Value::Null;
            idempotency.remember(conn, token_id, StatusCode::OK, &body)?;
            Ok((Issued::New(body), Some(secret.expose().to_string())))
        })
        .await?;
    forget(&state, &path);
    Ok(issued(StatusCode::OK, outcome, secret))
}

/// An operation that changes a key and shows it: end grace, deactivate, reactivate.
async fn change(
    req: &HttpRequest,
    state: &AppState,
    caller: &Caller,
    public_id: &str,
    body: &[u8],
    work: impl FnOnce(&mut PgConnection, &crate::services::Actor, KeyRef<'_>) -> Result<ApiKey, AppError> + Send + 'static,
) -> Result<HttpResponse, Problem> {
    caller.require_scope(TokenScope::KeysWrite)?;
    let (scope, id) = at(caller, public_id)?;
    let idempotency = Idempotency::of(req, body)?;
    let (actor, token_id) = (caller.actor.clone(), caller.token.id);
    let outcome = state
        .db
        .transaction(move |conn| {
            if let Some(record) = replay_of(conn, &actor, scope, &idempotency, token_id)? {
                return Ok(Issued::Replayed(record));
            }
            let key = work(conn, &actor, KeyRef { scope, public_id: &id })?;
            let body = json!(KeyView::load(conn, &key, actor.now)?);
            idempotency.remember(conn, token_id, StatusCode::OK, &body)?;
            Ok(Issued::New(body))
        })
        .await?;
    forget(state, public_id);
    Ok(match outcome {
        Issued::Replayed(record) => idempotency::replayed(record),
        Issued::New(body) => HttpResponse::Ok().insert_header((header::CACHE_CONTROL, "no-store")).json(body),
    })
}

#[utoipa::path(
    post,
    path = "/keys/{id}/end-grace",
    tag = "keys",
    summary = "End a re-key's grace period now",
    params(("id" = String, Path, description = "The key's public id"), ("Idempotency-Key" = Option<String>, Header, description = "Makes a retry answer with the first answer (without the secret)")),
    responses((status = 200, description = "The key", body = KeyView), (status = 404, description = "No such key in the token's organization", body = Problem, content_type = "application/problem+json")),
    security(("managementToken" = []))
)]
#[post("/keys/{id}/end-grace")]
pub async fn end_grace(
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    body: ProblemBody,
) -> Result<HttpResponse, Problem> {
    change(&req, &state, &caller, &path, &body.0, lifecycle::end_grace).await
}

#[utoipa::path(
    post,
    path = "/keys/{id}/deactivate",
    tag = "keys",
    summary = "Deactivate a key (at once, on every instance)",
    params(("id" = String, Path, description = "The key's public id"), ("Idempotency-Key" = Option<String>, Header, description = "Makes a retry answer with the first answer (without the secret)")),
    request_body = DeactivateBody,
    responses((status = 200, description = "The key", body = KeyView), (status = 404, description = "No such key in the token's organization", body = Problem, content_type = "application/problem+json"), (status = 422, description = "Invalid fields", body = Problem, content_type = "application/problem+json")),
    security(("managementToken" = []))
)]
#[post("/keys/{id}/deactivate")]
pub async fn deactivate(
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    body: ProblemBody,
) -> Result<HttpResponse, Problem> {
    let reason = json_body::<DeactivateBody>(&req, &body.0, Some(DeactivateBody::default()))?.reason;
    change(&req, &state, &caller, &path, &body.0, move |conn, actor, at| {
        let reason = reason.as_deref().map(str::trim).filter(|r| !r.is_empty());
        if reason.is_some_and(|r| r.chars().count() > 500) {
            return Err(crate::error::invalid("reason", "A reason is at most 500 characters."));
        }
        lifecycle::set_active(conn, actor, at, false, reason)
    })
    .await
}

#[utoipa::path(
    post,
    path = "/keys/{id}/reactivate",
    tag = "keys",
    summary = "Reactivate a key (never extends its expiry)",
    params(("id" = String, Path, description = "The key's public id"), ("Idempotency-Key" = Option<String>, Header, description = "Makes a retry answer with the first answer (without the secret)")),
    responses((status = 200, description = "The key", body = KeyView), (status = 404, description = "No such key in the token's organization", body = Problem, content_type = "application/problem+json"), (status = 409, description = "A leaked key must be re-keyed first", body = Problem, content_type = "application/problem+json")),
    security(("managementToken" = []))
)]
#[post("/keys/{id}/reactivate")]
pub async fn reactivate(
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    body: ProblemBody,
) -> Result<HttpResponse, Problem> {
    change(&req, &state, &caller, &path, &body.0, |conn, actor, at| lifecycle::set_active(conn, actor, at, true, None))
        .await
}

#[utoipa::path(
    delete,
    path = "/keys/{id}",
    tag = "keys",
    summary = "Delete a key for good",
    params(("id" = String, Path, description = "The key's public id")),
    responses((status = 204, description = "Deleted"), (status = 404, description = "No such key in the token's organization", body = Problem, content_type = "application/problem+json")),
    security(("managementToken" = []))
)]
#[delete("/keys/{id}")]
pub async fn delete_key(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, Problem> {
    caller.require_scope(TokenScope::KeysWrite)?;
    let (scope, public_id) = at(&caller, &path)?;
    let actor = caller.actor.clone();
    state.db.transaction(move |conn| lifecycle::delete(conn, &actor, KeyRef { scope, public_id: &public_id })).await?;
    forget(&state, &path);
    Ok(HttpResponse::NoContent().finish())
}

/// The query of `GET /keys/{id}/usage`.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct UsageQuery {
    /// Whole UTC days back, today included (1 to 90, default 30).
    days: Option<i64>,
}

/// Verifications of a key on one UTC day with one outcome and action.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DailyCount {
    pub day: NaiveDate,
    pub code: String,
    /// Empty for verifications that named no action.
    pub action: String,
    pub count: i64,
}

/// A recent client address of a key.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AddressView {
    pub address: String,
    pub first_seen_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
    pub uses: i64,
}

/// What the key page's usage tab shows, as data.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UsageView {
    pub id: String,
    pub days: i64,
    pub last_used_at: Option<DateTime<Utc>>,
    pub daily: Vec<DailyCount>,
    pub addresses: Vec<AddressView>,
}

#[utoipa::path(
    get,
    path = "/keys/{id}/usage",
    tag = "keys",
    summary = "A key's verifications per day, outcome and action, and its recent client addresses",
    params(("id" = String, Path, description = "The key's public id"), UsageQuery),
    responses(
        (status = 200, description = "The key's usage", body = UsageView),
        (status = 404, description = "No such key in the token's organization", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid days", body = Problem, content_type = "application/problem+json"),
    ),
    security(("managementToken" = []))
)]
#[get("/keys/{id}/usage")]
pub async fn key_usage(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    query: web::Query<UsageQuery>,
) -> Result<HttpResponse, Problem> {
    use crate::db::models::key_usage;
    caller.require_scope(TokenScope::KeysRead)?;
    let days = query.days.unwrap_or(30);
    if !(1..=90).contains(&days) {
        return Err(Problem::invalid_field("days", "Give 1 to 90 days."));
    }
    let (scope, public_id) = at(&caller, &path)?;
    let actor = caller.actor.clone();
    let usage = state
        .db
        .run(move |conn| {
            let key = lifecycle::visible(conn, &actor, KeyRef { scope, public_id: &public_id }, KeyOp::View)?;
            let today = actor.now.date_naive();
            let first = today - chrono::Days::new((days - 1) as u64);
            let from = first.and_hms_opt(0, 0, 0).map(|t| t.and_utc()).unwrap_or(actor.now);
            let mut daily: Vec<DailyCount> = key_usage::buckets(conn, key.id, from, 86_400)?
                .into_iter()
                .filter_map(|b| {
                    let day = DateTime::from_timestamp(b.bucket * 86_400, 0)?.date_naive();
                    Some(DailyCount { day, code: b.code, action: b.action, count: b.count })
                })
                .collect();
            daily.sort_by(|a, b| (a.day, &a.code, &a.action).cmp(&(b.day, &b.code, &b.action)));
            let addresses = key_usage::addresses(conn, key.id)?
                .into_iter()
                .map(|a| AddressView {
                    address: a.address.ip().to_string(),
                    first_seen_at: a.first_seen_at,
                    last_seen_at: a.last_seen_at,
                    uses: a.uses,
                })
                .collect();
            Ok(UsageView { id: key.public_id, days, last_used_at: key.last_used_at, daily, addresses })
        })
        .await?;
    Ok(HttpResponse::Ok().insert_header((header::CACHE_CONTROL, "no-store")).json(usage))
}
