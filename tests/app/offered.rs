//! A page offers exactly what its viewer may do: for actors of every standing, every link of
//! the navigation and every button of the user pages opens (never 403), and every admin page
//! or user action that is not offered is refused. The navigation, the buttons and the
//! handlers' extractors all ask one capability type; this holds them to each other.

use keyward::{db::models::User, domain::Permission};
use reqwest::StatusCode;
use scraper::{Html, Selector};

use crate::helpers::{TestClient, fixtures, spawn_app};

/// Every page of the Admin area that has an entry in the navigation.
const ADMIN_PAGES: [&str; 7] =
    ["/admin", "/admin/users", "/admin/roles", "/admin/keys", "/admin/assets", "/admin/policy", "/admin/audit"];

fn hrefs(html: &str, css: &str) -> Vec<String> {
    let selector = Selector::parse(css).unwrap();
    Html::parse_document(html).select(&selector).filter_map(|a| a.value().attr("href")).map(str::to_string).collect()
}

/// The paths of a link without its query.
fn path(href: &str) -> &str {
    href.split('?').next().unwrap_or(href)
}

/// The forms a user page may offer for `user`, by the address of their dialog.
fn user_actions(user: &User) -> Vec<String> {
    let change = if user.active { "deactivate" } else { "reactivate" };
    ["edit", "access", "password", change, "keys/new", "reset-second-factor"]
        .iter()
        .map(|a| format!("/admin/users/{}/{a}", user.id))
        .collect()
}

async fn status(client: &TestClient, href: &str) -> StatusCode {
    client.get(href).await.status()
}

#[actix_web::test]
async fn pages_offer_exactly_what_their_viewer_may_do() {
    let app = spawn_app().await;
    let mut conn = app.conn();
    let acme = fixtures::organization(&mut conn, "acme");
    let builder = |email: &str| fixtures::UserBuilder::new(&acme, email);
    let actors = [
        builder("member@acme.test").api_key_access().insert(&mut conn),
        builder("hr@acme.test").role(&[Permission::UsersManage]).insert(&mut conn),
        builder("hr-keys@acme.test").role(&[Permission::UsersManage]).api_key_access().insert(&mut conn),
        builder("keys@acme.test").role(&[Permission::KeysManage]).insert(&mut conn),
        builder("auditor@acme.test").role(&[Permission::AuditRead]).insert(&mut conn),
        builder("admin@acme.test").admin().insert(&mut conn),
    ];
    // Targets of every standing towards the managers above: plain members with and without
    // key access, one holding more than a user manager (an auditor), an inactive one, and an
    // administrator; the actors themselves are targets too.
    let mut targets = vec![
        builder("plain@acme.test").insert(&mut conn),
        builder("owner@acme.test").api_key_access().insert(&mut conn),
        builder("reader@acme.test").role(&[Permission::AuditRead]).insert(&mut conn),
        builder("gone@acme.test").inactive().insert(&mut conn),
        builder("boss@acme.test").admin().insert(&mut conn),
    ];
    targets.extend(actors.iter().cloned());
    drop(conn);

    let (mut offered_links, mut refused) = (0, 0);
    for actor in &actors {
        let client = app.signed_in(&actor.email).await;
        let (_, account) = client.page("/account").await;
        let nav = hrefs(&account, "nav.sidebar a");
        assert!(nav.contains(&"/account/keys".to_string()), "{}: {nav:?}", actor.email);
        for href in &nav {
            assert_eq!(status(&client, href).await, StatusCode::OK, "{} is offered {href}", actor.email);
            offered_links += 1;
        }
        for page in ADMIN_PAGES {
            if !nav.iter().any(|href| href == page) {
                assert_eq!(status(&client, page).await, StatusCode::FORBIDDEN, "{} is not offered {page}", actor.email);
                refused += 1;
            }
        }
        if !nav.iter().any(|href| href == "/admin/users") {
            continue;
        }
        let (_, list) = client.page("/admin/users").await;
        for href in hrefs(&list, "table a[data-dialog]") {
            assert_eq!(status(&client, &href).await, StatusCode::OK, "{} is offered {href} in the list", actor.email);
            offered_links += 1;
        }
        for target in &targets {
            let (code, page) = client.page(&format!("/admin/users/{}", target.id)).await;
            assert_eq!(code, StatusCode::OK);
            let buttons: Vec<String> =
                hrefs(&page, "main a[data-dialog]").iter().map(|h| path(h).to_string()).collect();
            for action in user_actions(target) {
                let answer = status(&client, &action).await;
                if buttons.contains(&action) {
                    assert_eq!(answer, StatusCode::OK, "{} is offered {action} for {}", actor.email, target.email);
                    offered_links += 1;
                } else {
                    // Administrators always hold key access: that dialog only says so.
                    let expected = if target.is_admin && action.ends_with("/access") && actor.is_admin {
                        StatusCode::CONFLICT
                    } else {
                        StatusCode::FORBIDDEN
                    };
                    assert_eq!(answer, expected, "{} is not offered {action} for {}", actor.email, target.email);
                    refused += 1;
                }
            }
        }
    }
    // The matrix must have covered both sides broadly.
    assert!(offered_links >= 60, "only {offered_links} offered links were followed");
    assert!(refused >= 40, "only {refused} refusals were checked");
}
