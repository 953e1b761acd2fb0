//! The authorization matrix of the Admin area: every kind of actor × every administration
//! action, on objects of their own and of another organization.

use keyward::{
    db::models::{Organization, Role, asset::Asset},
    domain::Permission,
};
use reqwest::StatusCode;

use crate::helpers::{TestApp, TestClient, fixtures, spawn_app, user};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Who {
    Member,
    /// A "Users: Manage" role.
    UserManager,
    /// A "Key: Manage" role.
    KeyManager,
    /// An "Audit log: Read" role.
    Auditor,
    Admin,
    /// The administrator of another organization (all targets below belong to Acme).
    ForeignAdmin,
    Staff,
}

const EVERYONE: [Who; 7] =
    [Who::Member, Who::UserManager, Who::KeyManager, Who::Auditor, Who::Admin, Who::ForeignAdmin, Who::Staff];

impl Who {
    fn email(self) -> &'static str {
        match self {
            Who::Member => "member@acme.test",
            Who::UserManager => "hr@acme.test",
            Who::KeyManager => "keys@acme.test",
            Who::Auditor => "auditor@acme.test",
            Who::Admin => "admin@acme.test",
            Who::ForeignAdmin => "admin@globex.test",
            Who::Staff => "staff@platform.test",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    ListUsers,
    CreateUser,
    ToggleAccess,
    DeactivateUser,
    EditUserRoles,
    ListRoles,
    CreateRole,
    DeleteRole,
    ListAssets,
    CreateAsset,
    DeleteAsset,
    ShowPolicy,
    ChangePolicy,
    ReadAudit,
    ExportAudit,
}

const OPS: [Op; 15] = [
    Op::ListUsers,
    Op::CreateUser,
    Op::ToggleAccess,
    Op::DeactivateUser,
    Op::EditUserRoles,
    Op::ListRoles,
    Op::CreateRole,
    Op::DeleteRole,
    Op::ListAssets,
    Op::CreateAsset,
    Op::DeleteAsset,
    Op::ShowPolicy,
    Op::ChangePolicy,
    Op::ReadAudit,
    Op::ExportAudit,
];

/// SPEC §1/§5 as a table: `Some(status)` expected, by actor and action.
fn expected(who: Who, op: Op) -> StatusCode {
    use Op::*;
    const OK: StatusCode = StatusCode::OK;
    const DONE: StatusCode = StatusCode::SEE_OTHER;
    const NO: StatusCode = StatusCode::FORBIDDEN;
    const GONE: StatusCode = StatusCode::NOT_FOUND;
    let users = matches!(who, Who::Admin | Who::UserManager | Who::ForeignAdmin);
    let admin = matches!(who, Who::Admin | Who::ForeignAdmin);
    let audit = matches!(who, Who::Admin | Who::Auditor | Who::ForeignAdmin);
    // Targets are Acme's: another organization's administrator finds none of them.
    let foreign = who == Who::ForeignAdmin;
    match op {
        ListUsers => {
            if users {
                OK
            } else {
                NO
            }
        }
        CreateUser => {
            if users {
                OK
            } else {
                NO
            }
        }
        DeactivateUser => {
            if foreign {
                GONE
            } else if users {
                DONE
            } else {
                NO
            }
        }
        // Granting API key access hands out `keys.own`: only administrators and holders of it
        // (the user manager holds only `users.manage`).
        ToggleAccess => {
            if foreign {
                GONE
            } else if admin {
                DONE
            } else {
                NO
            }
        }
        // Only administrators hand out roles; a user manager's role list is ignored.
        EditUserRoles => {
            if foreign {
                GONE
            } else if users {
                DONE
            } else {
                NO
            }
        }
        ListRoles | ListAssets | ShowPolicy => {
            if admin {
                OK
            } else {
                NO
            }
        }
        CreateRole | CreateAsset => {
            if admin {
                DONE
            } else {
                NO
            }
        }
        DeleteRole | DeleteAsset => {
            if foreign {
                GONE
            } else if admin {
                DONE
            } else {
                NO
            }
        }
        ChangePolicy => {
            if admin {
                DONE
            } else {
                NO
            }
        }
        ReadAudit | ExportAudit => {
            if audit {
                OK
            } else {
                NO
            }
        }
    }
}

struct World {
    app: TestApp,
    acme: Organization,
    clients: Vec<(Who, TestClient)>,
}

async fn world() -> World {
    let app = spawn_app().await;
    let mut conn = app.conn();
    // Acme's administrator and the foreign one (Globex's).
    let acme = fixtures::acme_and_globex(&mut conn);
    fixtures::UserBuilder::new(&acme, Who::Member.email()).insert(&mut conn);
    fixtures::UserBuilder::new(&acme, Who::UserManager.email()).role(&[Permission::UsersManage]).insert(&mut conn);
    fixtures::UserBuilder::new(&acme, Who::KeyManager.email()).role(&[Permission::KeysManage]).insert(&mut conn);
    fixtures::UserBuilder::new(&acme, Who::Auditor.email()).role(&[Permission::AuditRead]).insert(&mut conn);
    fixtures::staff(&mut conn, Who::Staff.email());
    drop(conn);
    let mut clients = Vec::new();
    for who in EVERYONE {
        let client = app.signed_in(who.email()).await;
        // The session's CSRF token, once: it holds for every cell of this actor.
        client.fetch_csrf_token(if who == Who::Staff { "/staff" } else { "/account" }).await;
        clients.push((who, client));
    }
    World { app, acme, clients }
}

async fn attempt(world: &World, who: Who, client: &TestClient, op: Op, n: usize) -> StatusCode {
    let app = &world.app;
    let org = world.acme.id;
    let target = fixtures::UserBuilder::new(&world.acme, &format!("target{n}@acme.test")).insert(&mut app.conn());
    let role = Role::insert(&mut app.conn(), org, &format!("Role {n}"), "", &[]).unwrap();
    let asset = Asset::insert(&mut app.conn(), org, &format!("A-{n}"), "Asset").unwrap();
    let email = format!("created{n}@acme.test");
    match op {
        Op::ListUsers => client.get("/admin/users").await.status(),
        Op::CreateUser => client
            .post("/admin/users", &[("email", email.as_str()), ("display_name", "New"), ("password_mode", "link")])
            .await
            .status(),
        Op::ToggleAccess => {
            client.post(&format!("/admin/users/{}/access", target.id), &[("grant", "1")]).await.status()
        }
        Op::DeactivateUser => client.post(&format!("/admin/users/{}/deactivate", target.id), &[]).await.status(),
        Op::EditUserRoles => {
            let response = client
                .post(
                    &format!("/admin/users/{}/edit", target.id),
                    &[("display_name", "Renamed"), ("role", &role.id.to_string())],
                )
                .await;
            let roles = Role::ids_of_user(&mut app.conn(), target.id).unwrap();
            let renamed = user(app, &target.email).display_name == "Renamed";
            // Roles only ever change for administrators; the name for every user manager.
            assert_eq!(!roles.is_empty(), who == Who::Admin, "{who:?} assigned roles: {roles:?}");
            assert_eq!(renamed, matches!(who, Who::Admin | Who::UserManager), "{who:?} renamed");
            response.status()
        }
        Op::ListRoles => client.get("/admin/roles").await.status(),
        Op::CreateRole => {
            client.post("/admin/roles", &[("name", &format!("New role {n}")), ("actions_mode", "all")]).await.status()
        }
        Op::DeleteRole => client.post(&format!("/admin/roles/{}/delete", role.id), &[]).await.status(),
        Op::ListAssets => client.get("/admin/assets").await.status(),
        Op::CreateAsset => {
            client.post("/admin/assets", &[("code", &format!("NEW-{n}")), ("name", "New")]).await.status()
        }
        Op::DeleteAsset => client.post(&format!("/admin/assets/{}/delete", asset.id), &[]).await.status(),
        Op::ShowPolicy => client.get("/admin/policy").await.status(),
        Op::ChangePolicy => client
            .post("/admin/policy", &[("default_lifetime_days", "200"), ("default_grace_minutes", "60")])
            .await
            .status(),
        Op::ReadAudit => client.get("/admin/audit").await.status(),
        Op::ExportAudit => client.get("/admin/audit.csv").await.status(),
    }
}

#[actix_web::test]
async fn every_actor_may_administer_exactly_what_the_rules_allow() {
    let world = world().await;
    let mut failures = Vec::new();
    let mut n = 0;
    for (who, client) in &world.clients {
        for op in OPS {
            n += 1;
            let got = attempt(&world, *who, client, op, n).await;
            let want = expected(*who, op);
            if got != want {
                failures.push(format!("{who:?} {op:?}: expected {want}, got {got}"));
            }
        }
    }
    assert!(failures.is_empty(), "{} cells wrong:\n{}", failures.len(), failures.join("\n"));
}
