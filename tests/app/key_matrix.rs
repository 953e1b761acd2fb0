//! The authorization matrix of key operations: every kind of actor (support staff included)
//! × every key operation × a personal, an organization and a service-provider key, in the
//! three key areas and across organizations. Each cell checks the HTTP answer and, for
//! refusals, that the key did not change.

use diesel::prelude::*;
use keyward::{
    db::{
        models::{ApiKey, ServiceProvider},
        schema::api_keys,
    },
    services::{
        Actor,
        keys::{NewKeyOwner, lifecycle},
    },
};
use reqwest::StatusCode;

use crate::helpers::{TestApp, TestClient, fixtures, keys, spawn_app, user};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Who {
    /// A member without API key access.
    Member,
    /// The owner of the personal key (API key access).
    Owner,
    /// Another member with API key access.
    Peer,
    Admin,
    /// A member with a "Key: Manage" role.
    Manager,
    /// A member with a "Key: Manage" role who may grant `positions.read` only.
    Lead,
    /// The administrator of another organization.
    ForeignAdmin,
    Staff,
}

const EVERYONE: [Who; 8] =
    [Who::Member, Who::Owner, Who::Peer, Who::Admin, Who::Manager, Who::Lead, Who::ForeignAdmin, Who::Staff];

impl Who {
    fn email(self) -> &'static str {
        match self {
            Who::Member => "member@acme.test",
            Who::Owner => "owner@acme.test",
            Who::Peer => "peer@acme.test",
            Who::Admin => "admin@acme.test",
            Who::Manager => "manager@acme.test",
            Who::Lead => "lead@acme.test",
            Who::ForeignAdmin => "admin@globex.test",
            Who::Staff => "staff@platform.test",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Area {
    Account,
    Admin,
    /// Staff → a service provider's keys.
    Provider,
}

const AREAS: [Area; 3] = [Area::Account, Area::Admin, Area::Provider];

impl Area {
    fn base(self, app: &TestApp) -> String {
        match self {
            Area::Account => "/account/keys".into(),
            Area::Admin => "/admin/keys".into(),
            Area::Provider => format!("/staff/providers/{}/keys", provider_id(app)),
        }
    }
}

/// The one service provider of the world (Acme's).
fn provider_id(app: &TestApp) -> i64 {
    ServiceProvider::list_all(&mut app.conn()).unwrap()[0].id
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Personal,
    Organization,
    Provider,
}

const KINDS: [Kind; 3] = [Kind::Personal, Kind::Organization, Kind::Provider];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    View,
    RenameForm,
    Rename,
    Edit,
    Deactivate,
    Reactivate,
    Rekey,
    EndGrace,
    Delete,
}

const OPS: [Op; 9] = [
    Op::View,
    Op::RenameForm,
    Op::Rename,
    Op::Edit,
    Op::Deactivate,
    Op::Reactivate,
    Op::Rekey,
    Op::EndGrace,
    Op::Delete,
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    Allowed,
    Forbidden,
    NotFound,
    /// 403 or 404: staff asking a provider's area for a client key get either, depending on
    /// whether the operation is one staff may never do (403) or one outside the area (404).
    Refused,
}

/// The rules of SPEC §3, written as a table.
fn expected(who: Who, area: Area, kind: Kind, op: Op) -> Expect {
    use Expect::*;
    match (who, area) {
        // The manager may grant no action at all: no secret of a key with actions (the
        // personal key is someone else's besides), and no reactivation of one.
        (Who::Manager, Area::Admin) if kind != Kind::Provider && matches!(op, Op::Rekey | Op::Reactivate) => Forbidden,
        // The lead may grant positions.read: he reactivates the personal key (positions.read)
        // but obtains no secret of someone else's personal key, nor of an all-actions key.
        (Who::Lead, Area::Admin) if op == Op::Rekey && kind != Kind::Provider => Forbidden,
        (Who::Lead, Area::Admin) if op == Op::Reactivate && kind == Kind::Organization => Forbidden,
        // A provider's keys: support staff only, and only that provider's keys.
        (Who::Staff, Area::Provider) if kind == Kind::Provider => Allowed,
        (Who::Staff, Area::Provider) => Refused,
        (_, Area::Provider) => Forbidden,
        (Who::Staff, _) => Forbidden,
        // Account pages: only with API key access, and only one's own personal keys.
        (Who::Member | Who::Manager | Who::Lead, Area::Account) => Forbidden,
        (Who::Owner, Area::Account) if kind == Kind::Personal => Allowed,
        (_, Area::Account) => NotFound,
        // Admin pages: administrators and "Key: Manage", inside their organization.
        (Who::Admin | Who::Manager | Who::Lead, Area::Admin) if kind != Kind::Provider => Allowed,
        (Who::Admin | Who::Manager | Who::Lead | Who::ForeignAdmin, Area::Admin) => NotFound,
        (_, Area::Admin) => Forbidden,
    }
}

struct World {
    app: TestApp,
    clients: Vec<(Who, TestClient)>,
}

async fn world() -> World {
    let app = spawn_app().await;
    {
        let mut conn = app.conn();
        let (_, acme) = fixtures::served_organization(&mut conn, "acme", "Fleetlink");
        let globex = fixtures::organization(&mut conn, "globex");
        fixtures::UserBuilder::new(&acme, Who::Member.email()).insert(&mut conn);
        fixtures::key_owner(&mut conn, &acme, Who::Owner.email());
        fixtures::key_owner(&mut conn, &acme, Who::Peer.email());
        fixtures::admin(&mut conn, &acme, Who::Admin.email());
        fixtures::key_manager(&mut conn, &acme, Who::Manager.email(), &[]);
        fixtures::key_manager(&mut conn, &acme, Who::Lead.email(), &["positions.read"]);
        fixtures::inactive_proxy(&mut conn, &acme, "proxy@acme.test");
        fixtures::UserBuilder::new(&globex, Who::ForeignAdmin.email()).admin().may_grant_all().insert(&mut conn);
        fixtures::staff(&mut conn, Who::Staff.email());
    }
    let mut clients = Vec::new();
    for who in EVERYONE {
        let client = app.signed_in(who.email()).await;
        // The session's CSRF token, once: it holds for every cell of this actor.
        client.fetch_csrf_token(if who == Who::Staff { "/staff" } else { "/account" }).await;
        clients.push((who, client));
    }
    World { app, clients }
}

/// A fresh key of `kind` in Acme, prepared for `op` (deactivated for Reactivate, in a grace
/// period for EndGrace).
fn fresh_key(app: &TestApp, kind: Kind, op: Op) -> ApiKey {
    let mut conn = app.conn();
    let (key, _) = match kind {
        Kind::Personal => keys::personal(&mut conn, &app.hasher, &user(app, Who::Owner.email()), "Matrix key"),
        Kind::Organization => keys::organization(&mut conn, &app.hasher, &user(app, "proxy@acme.test"), "Matrix key"),
        Kind::Provider => {
            let owner = NewKeyOwner::ServiceProvider { service_provider_id: provider_id(app) };
            let settings = keys::settings(None);
            keys::create(&mut conn, &app.hasher, owner, "Matrix key", settings)
        }
    };
    let system = Actor::system("test");
    match op {
        Op::Reactivate => {
            lifecycle::set_active(&mut conn, &system, keys::at(&key), false, None).unwrap();
        }
        Op::EndGrace => {
            lifecycle::rekey(&mut conn, &system, &app.hasher, keys::at(&key), 60, None, None).unwrap();
        }
        _ => {}
    }
    keys::reload(&mut conn, &key).unwrap()
}

/// Performs `op` on `key` through `area` and returns the final status.
async fn attempt(client: &TestClient, app: &TestApp, area: Area, kind: Kind, key: &ApiKey, op: Op) -> StatusCode {
    let base = format!("{}/{}", area.base(app), key.public_id);
    let expires = (chrono::Utc::now() + chrono::Duration::days(10)).date_naive().to_string();
    let proxy = user(app, "proxy@acme.test").id.to_string();
    match op {
        Op::View => client.get(&base).await.status(),
        Op::RenameForm => client.get(&format!("{base}/rename")).await.status(),
        Op::Rename => client.post(&format!("{base}/rename"), &[("name", "Renamed in the matrix")]).await.status(),
        Op::Edit => {
            let mut fields = vec![
                ("comment", "edited in the matrix"),
                ("actions_mode", "selected"),
                ("action", "positions.read"),
                ("expires_on", expires.as_str()),
            ];
            if kind == Kind::Organization {
                fields.push(("proxy_user_id", proxy.as_str()));
            }
            client.post(&format!("{base}/edit"), &fields).await.status()
        }
        Op::Deactivate => client.post(&format!("{base}/deactivate"), &[]).await.status(),
        Op::Reactivate => client.post(&format!("{base}/reactivate"), &[]).await.status(),
        Op::Rekey => client.post(&format!("{base}/rekey"), &[("grace_minutes", "0")]).await.status(),
        Op::EndGrace => client.post(&format!("{base}/end-grace"), &[]).await.status(),
        Op::Delete => client.post(&format!("{base}/delete"), &[]).await.status(),
    }
}

/// Whether `op` visibly took effect on `before`.
fn took_effect(app: &TestApp, before: &ApiKey, op: Op) -> bool {
    let after = api_keys::table
        .filter(api_keys::id.eq(before.id))
        .select(ApiKey::as_select())
        .first(&mut *app.conn())
        .optional()
        .unwrap();
    match (op, after) {
        (Op::Delete, after) => after.is_none(),
        (_, None) => true,
        (Op::View | Op::RenameForm, _) => false,
        (Op::Rename, Some(after)) => after.name != before.name,
        (Op::Edit, Some(after)) => after.comment != before.comment,
        (Op::Deactivate, Some(after)) => !after.active,
        (Op::Reactivate, Some(after)) => after.active,
        (Op::Rekey, Some(after)) => after.secret_hash != before.secret_hash,
        (Op::EndGrace, Some(after)) => after.previous_secret_hash.is_none(),
    }
}

fn success_status(op: Op) -> StatusCode {
    match op {
        Op::View | Op::RenameForm | Op::Rekey => StatusCode::OK,
        _ => StatusCode::SEE_OTHER,
    }
}

#[actix_web::test]
async fn every_actor_may_do_exactly_what_the_rules_allow_with_every_key() {
    let World { app, clients } = world().await;
    let mut failures = Vec::new();
    for (who, client) in &clients {
        for area in AREAS {
            for kind in KINDS {
                for op in OPS {
                    let expect = expected(*who, area, kind, op);
                    let key = fresh_key(&app, kind, op);
                    let status = attempt(client, &app, area, kind, &key, op).await;
                    let changed = took_effect(&app, &key, op);
                    let ok = match expect {
                        Expect::Allowed => {
                            status == success_status(op) && (matches!(op, Op::View | Op::RenameForm) || changed)
                        }
                        Expect::Forbidden => status == StatusCode::FORBIDDEN && !changed,
                        Expect::NotFound => status == StatusCode::NOT_FOUND && !changed,
                        Expect::Refused => matches!(status, StatusCode::FORBIDDEN | StatusCode::NOT_FOUND) && !changed,
                    };
                    if !ok {
                        failures.push(format!(
                            "{who:?} {area:?} {kind:?} {op:?}: expected {expect:?}, got {status} (changed: {changed})"
                        ));
                    }
                }
            }
        }
    }
    assert!(failures.is_empty(), "{} cells wrong:\n{}", failures.len(), failures.join("\n"));
}

#[actix_web::test]
async fn every_actor_may_create_exactly_the_keys_the_rules_allow() {
    let World { app, clients } = world().await;
    let expires = (chrono::Utc::now() + chrono::Duration::days(10)).date_naive().to_string();
    let mut failures = Vec::new();
    for (who, client) in &clients {
        for area in AREAS {
            let before: i64 = api_keys::table.count().get_result(&mut *app.conn()).unwrap();
            // A refused dialog has no form token: post a made-up one.
            let token = client
                .open(&format!("{}/new", area.base(&app)))
                .await
                .field("form_token")
                .unwrap_or_else(|| "x".repeat(32));
            // Each actor's own organization: a proxy of the right tenant for organization keys.
            let proxy =
                user(&app, if *who == Who::ForeignAdmin { Who::ForeignAdmin.email() } else { "proxy@acme.test" })
                    .id
                    .to_string();
            let response = client
                .post(
                    &area.base(&app),
                    &[
                        ("form_token", token.as_str()),
                        ("name", "Created in the matrix"),
                        ("actions_mode", "selected"),
                        ("action", "positions.read"),
                        ("expires_on", expires.as_str()),
                        ("proxy_user_id", proxy.as_str()),
                    ],
                )
                .await;
            let after: i64 = api_keys::table.count().get_result(&mut *app.conn()).unwrap();
            let allowed = match (who, area) {
                (Who::Owner | Who::Peer | Who::Admin | Who::ForeignAdmin, Area::Account) => true,
                (Who::Admin | Who::ForeignAdmin, Area::Admin) => true,
                (Who::Staff, Area::Provider) => true,
                // The lead may grant positions.read, and the proxy is no administrator.
                (Who::Lead, Area::Admin) => true,
                // A "Key: Manage" role may create organization keys, within its own grants
                // (none here), so it may create none that carry positions.read.
                _ => false,
            };
            let status = response.status();
            let ok = if allowed {
                status == StatusCode::OK && after == before + 1
            } else {
                matches!(status, StatusCode::FORBIDDEN | StatusCode::UNPROCESSABLE_ENTITY) && after == before
            };
            if !ok {
                failures.push(format!(
                    "{who:?} create in {area:?}: allowed={allowed}, got {status}, keys {before}→{after}"
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// `who` as the services see them.
fn actor_of(conn: &mut PgConnection, who: Who) -> Actor {
    use keyward::{db::models::StaffAccount, services::actor::ActorKind};
    let client_ip = keyward::domain::ClientIp(None);
    if who == Who::Staff {
        let staff = StaffAccount::find_by_email(conn, who.email()).unwrap().unwrap();
        return Actor {
            kind: ActorKind::Staff { id: staff.id, email: staff.email },
            client_ip,
            now: chrono::Utc::now(),
        };
    }
    let u = keyward::db::models::User::find_by_email(conn, who.email()).unwrap().unwrap();
    Actor {
        kind: ActorKind::User { id: u.id, organization_id: u.organization_id, email: u.email, is_admin: u.is_admin },
        client_ip,
        now: chrono::Utc::now(),
    }
}

/// What a service call ended in, in the words of the expectation tables.
fn outcome<T>(result: Result<T, keyward::error::AppError>) -> &'static str {
    use keyward::error::AppError;
    match result {
        Ok(_) => "ok",
        Err(AppError::Forbidden) => "forbidden",
        Err(AppError::NotFound) => "not found",
        Err(AppError::Invalid(_) | AppError::BadRequest(_)) => "invalid",
        Err(_) => "other",
    }
}

/// The service rules on their own (without the areas' scope checks in front of them), so a
/// hole in either layer is caught.
#[actix_web::test]
async fn the_service_rules_alone_refuse_what_the_matrix_refuses() {
    use keyward::{
        error::AppError,
        services::keys::{KeyOp, lifecycle::lock},
    };
    let World { app, .. } = world().await;
    let mut conn = app.conn();
    let ops = [
        KeyOp::View,
        KeyOp::Rename,
        KeyOp::Edit,
        KeyOp::Deactivate,
        KeyOp::Reactivate,
        KeyOp::Rekey,
        KeyOp::EndGrace,
        KeyOp::Delete,
    ];
    let mut failures = Vec::new();
    for kind in KINDS {
        let key = fresh_key(&app, kind, Op::View);
        for who in EVERYONE {
            let actor = actor_of(&mut conn, who);
            for op in ops {
                let result = conn.transaction(|conn| lock(conn, &actor, keys::at(&key), op).map(|_| ()));
                let expected = match who {
                    // Only staff manage a service provider's keys.
                    Who::Staff if kind == Kind::Provider => "ok",
                    _ if kind == Kind::Provider => "not found",
                    Who::Admin | Who::Manager | Who::Lead => "ok",
                    Who::Owner if kind == Kind::Personal => "ok",
                    // Staff may view client keys and deactivate them in an incident.
                    Who::Staff if matches!(op, KeyOp::View | KeyOp::Deactivate) => "ok",
                    Who::Staff => "forbidden",
                    _ => "not found",
                };
                let got = match result {
                    Ok(()) => "ok",
                    Err(AppError::Forbidden) => "forbidden",
                    Err(AppError::NotFound) => "not found",
                    Err(_) => "other",
                };
                if got != expected {
                    failures.push(format!("{who:?} {kind:?} {op:?}: expected {expected}, got {got}"));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Who the service is asked to create a key for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NewFor {
    /// A personal key of the actor themselves.
    Themselves,
    /// A personal key of the key owner (someone else, for everyone but the owner).
    TheOwner,
    /// An organization key of Acme attributed to a plain (inactive) user.
    Acme,
    /// An organization key of Acme attributed to its administrator.
    AcmeAsAdmin,
    Provider,
}

/// The creation rules of SPEC §3 as a table: `actions` is None for all actions.
fn expected_creation(who: Who, new_for: NewFor, actions: Option<&str>) -> &'static str {
    // What each actor may grant (None: everything).
    let may_grant = |action: Option<&str>, grants: Option<&[&str]>| match (action, grants) {
        (_, None) => true,
        (None, Some(_)) => false,
        (Some(action), Some(grants)) => grants.contains(&action),
    };
    let grants: Option<&[&str]> = match who {
        Who::Admin | Who::ForeignAdmin | Who::Staff => None,
        Who::Owner | Who::Peer | Who::Lead => Some(&["positions.read"]),
        Who::Member | Who::Manager => Some(&[]),
    };
    let has_key_access = matches!(who, Who::Owner | Who::Peer | Who::Admin | Who::ForeignAdmin);
    let manages_keys = matches!(who, Who::Admin | Who::Manager | Who::Lead);
    match (who, new_for) {
        (Who::Staff, NewFor::Provider) => "ok",
        (_, NewFor::Provider) | (Who::Staff, _) => "forbidden",
        (Who::Owner, NewFor::TheOwner) | (_, NewFor::Themselves) if !has_key_access => "forbidden",
        // Only the owner and their organization's administrator create someone's personal key
        // (the administrator from the user's page), within the owner's own grants.
        (Who::Admin, NewFor::TheOwner) => {
            if may_grant(actions, Some(&["positions.read"])) {
                "ok"
            } else {
                "invalid"
            }
        }
        (who, NewFor::TheOwner) if who != Who::Owner => "forbidden",
        (_, NewFor::Themselves | NewFor::TheOwner) if may_grant(actions, grants) => "ok",
        (_, NewFor::Themselves | NewFor::TheOwner) => "invalid",
        (_, NewFor::Acme | NewFor::AcmeAsAdmin) if !manages_keys => "forbidden",
        (_, _) if !may_grant(actions, grants) => "invalid",
        // Only administrators obtain a secret attributed to an administrator.
        (who, NewFor::AcmeAsAdmin) if who != Who::Admin => "forbidden",
        _ => "ok",
    }
}

/// Creation, re-key and reactivation straight through the services, for every actor: the
/// routes' checks in front of them cannot hide a hole in the rules.
#[actix_web::test]
async fn the_service_rules_alone_decide_who_obtains_which_secret() {
    use keyward::{
        db::models::Organization,
        keys::Environment,
        services::keys::{NewKeyRequest, lifecycle},
    };
    let World { app, .. } = world().await;
    let mut conn = app.conn();
    let acme = Organization::find_by_slug(&mut conn, "acme").unwrap();
    let (owner, admin, proxy) =
        (user(&app, Who::Owner.email()), user(&app, Who::Admin.email()), user(&app, "proxy@acme.test"));
    let mut failures = Vec::new();
    for who in EVERYONE {
        let actor = actor_of(&mut conn, who);
        for new_for in [NewFor::Themselves, NewFor::TheOwner, NewFor::Acme, NewFor::AcmeAsAdmin, NewFor::Provider] {
            for actions in [None, Some("positions.read"), Some("vehicles.write")] {
                let codes = actions.map(|a| [a]);
                let mut settings = keys::settings(codes.as_ref().map(|c| &c[..]));
                let owner_kind = match new_for {
                    NewFor::Themselves => match &actor.kind {
                        keyward::services::actor::ActorKind::User { id, organization_id, .. } => {
                            NewKeyOwner::Personal { user_id: *id, organization_id: *organization_id }
                        }
                        _ => NewKeyOwner::Personal { user_id: owner.id, organization_id: acme.id },
                    },
                    NewFor::TheOwner => NewKeyOwner::Personal { user_id: owner.id, organization_id: acme.id },
                    NewFor::Acme | NewFor::AcmeAsAdmin => {
                        settings.proxy_user_id = Some(if new_for == NewFor::Acme { proxy.id } else { admin.id });
                        NewKeyOwner::Organization { organization_id: acme.id }
                    }
                    NewFor::Provider => NewKeyOwner::ServiceProvider { service_provider_id: provider_id(&app) },
                };
                let request = NewKeyRequest {
                    owner: owner_kind,
                    name: keyward::services::keys::KeyName::parse("Service matrix").unwrap(),
                    environment: Environment::Live,
                    input: settings,
                    form_token: None,
                };
                let got = outcome(conn.transaction(|conn| lifecycle::create(conn, &actor, &app.hasher, request)));
                // Staff "creating their own personal key" has no meaning: they have none.
                let expected = if who == Who::Staff && new_for == NewFor::Themselves {
                    "forbidden"
                } else {
                    expected_creation(who, new_for, actions)
                };
                if got != expected {
                    failures.push(format!(
                        "{who:?} creates for {new_for:?} with {actions:?}: expected {expected}, got {got}"
                    ));
                }
            }
        }
    }

    // Re-key and reactivate: the key's reach against the actor's grants.
    let narrow_org = {
        let mut settings = keys::settings(Some(&["positions.read"]));
        settings.proxy_user_id = Some(proxy.id);
        keys::create(&mut conn, &app.hasher, NewKeyOwner::Organization { organization_id: acme.id }, "Narrow", settings)
            .0
    };
    let wide_org = keys::organization(&mut conn, &app.hasher, &proxy, "Wide").0;
    let personal = keys::personal(&mut conn, &app.hasher, &owner, "Owner's").0;
    for (label, key) in [("narrow org", &narrow_org), ("wide org", &wide_org), ("owner's personal", &personal)] {
        for who in EVERYONE {
            let actor = actor_of(&mut conn, who);
            let visible = match who {
                Who::Admin | Who::Manager | Who::Lead => Some(true),
                Who::Owner if key.id == personal.id => Some(true),
                Who::Staff => None,
                _ => Some(false),
            };
            let rekey_expected = match (who, visible) {
                (_, None) => "forbidden",
                (_, Some(false)) => "not found",
                (Who::Admin, _) | (Who::Owner, _) => "ok",
                (Who::Lead, _) if key.id == narrow_org.id => "ok",
                _ => "forbidden",
            };
            let reactivate_expected = match (who, visible) {
                (_, None) => "forbidden",
                (_, Some(false)) => "not found",
                (Who::Admin, _) | (Who::Owner, _) => "ok",
                (Who::Lead, _) if key.id != wide_org.id => "ok",
                _ => "forbidden",
            };
            let rekeyed = outcome(
                conn.transaction(|conn| lifecycle::rekey(conn, &actor, &app.hasher, keys::at(key), 0, None, None)),
            );
            let system = Actor::system("test");
            conn.transaction(|conn| lifecycle::set_active(conn, &system, keys::at(key), false, None)).unwrap();
            let reactivated =
                outcome(conn.transaction(|conn| lifecycle::set_active(conn, &actor, keys::at(key), true, None)));
            conn.transaction(|conn| lifecycle::set_active(conn, &system, keys::at(key), true, None)).unwrap();
            for (op, got, expected) in
                [("re-key", rekeyed, rekey_expected), ("reactivate", reactivated, reactivate_expected)]
            {
                if got != expected {
                    failures.push(format!("{who:?} {op} {label}: expected {expected}, got {got}"));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{} wrong:\n{}", failures.len(), failures.join("\n"));
}
