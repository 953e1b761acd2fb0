//! Browser tests of the page chrome: the collapsible navigation and page width on a 375 px
//! phone screen, tap target sizes, and the user menu, with and without JavaScript.

use fantoccini::{Locator, key::Key};
use serde_json::json;

use crate::{
    browser::Browser,
    helpers::{TestApp, fixtures, spawn_app},
};

/// An organization with an administrator and a member with a long address, so that the user
/// list has more to show than a phone's width.
async fn admin_world() -> TestApp {
    let app = spawn_app().await;
    let mut conn = app.conn();
    let org = fixtures::organization(&mut conn, "acme");
    fixtures::UserBuilder::new(&org, "admin@acme.test").admin().insert(&mut conn);
    fixtures::UserBuilder::new(&org, "carolina.montgomery-featherstone@acme.test").insert(&mut conn);
    drop(conn);
    app
}

/// Whether the element `css` is drawn (the first one that matches).
async fn shown(browser: &Browser, css: &str) -> bool {
    browser.find(css).await.is_displayed().await.unwrap()
}

/// The page is no wider than the window: no sideways scrolling of the whole page.
const NO_PAGE_OVERFLOW: &str = "return document.documentElement.scrollWidth <= window.innerWidth";

#[actix_web::test]
async fn at_375_px_the_navigation_hides_behind_menu_and_no_page_is_wider_than_the_screen() {
    let app = admin_world().await;
    let browser = Browser::open(&app, true).await;
    browser.sign_in("admin@acme.test").await;
    browser.client.set_window_size(375, 800).await.unwrap();
    browser.goto("/admin/users").await;
    browser.wait_until("the phone width", "return window.innerWidth <= 375").await;
    browser.find("tr[data-user='carolina.montgomery-featherstone@acme.test']").await;

    // The heading, not the navigation, is on the first screen.
    let users_link = "#nav a[href='/admin/users']";
    assert!(!shown(&browser, users_link).await, "the navigation is collapsed");
    let heading_bottom = browser.js("return document.querySelector('main h1').getBoundingClientRect().bottom").await;
    let height = browser.js("return window.innerHeight").await;
    assert!(
        heading_bottom.as_f64().unwrap() < height.as_f64().unwrap(),
        "h1 ends at {heading_bottom}, screen {height}"
    );

    // No page is wider than the screen: the table scrolls inside its box.
    let widths = "return [document.documentElement.scrollWidth, window.innerWidth]";
    assert_eq!(browser.js(NO_PAGE_OVERFLOW).await, json!(true), "{}", browser.js(widths).await);
    let table_scrolls = "const w = document.querySelector('.table-wrap'); return w.scrollWidth > w.clientWidth";
    assert_eq!(browser.js(table_scrolls).await, json!(true), "the table scrolls in its box instead");

    // Menu is one button that says whether the navigation is open.
    let menu = browser.find("button.nav-toggle").await;
    assert_eq!(menu.attr("aria-expanded").await.unwrap().as_deref(), Some("false"));
    assert!(browser.client.find(Locator::Css("a[data-nav-toggle]")).await.is_err(), "the links gave way");
    menu.click().await.unwrap();
    assert!(shown(&browser, users_link).await, "the menu shows the links");
    assert_eq!(menu.attr("aria-expanded").await.unwrap().as_deref(), Some("true"));

    // Every control is a tap target of at least 24 × 24 px.
    let small = browser
        .js("return [...document.querySelectorAll('#nav a, .nav-toggle, .user-menu summary, .switch, .button, \
             .pagination a, .row-actions a')].filter(e => e.offsetParent !== null) \
             .map(e => [e.textContent.trim(), e.getBoundingClientRect()]) \
             .filter(([, r]) => r.width < 24 || r.height < 24).map(([t, r]) => `${t}: ${r.width}x${r.height}`)")
        .await;
    assert_eq!(small, json!([]), "too small to tap");

    // Escape closes it again and leaves focus on the button.
    browser.find(users_link).await.send_keys(&char::from(Key::Escape).to_string()).await.unwrap();
    browser.wait_until("the menu closed", "return document.querySelector('#nav a').offsetParent === null").await;
    assert_eq!(menu.attr("aria-expanded").await.unwrap().as_deref(), Some("false"));
    assert_eq!(browser.js("return document.activeElement.matches('button.nav-toggle')").await, json!(true));

    // At a desktop width the navigation is always there and Menu is not.
    browser.client.set_window_size(1280, 1000).await.unwrap();
    browser.wait_until("the desktop width", "return window.innerWidth > 1000").await;
    assert!(shown(&browser, users_link).await);
    assert!(!menu.is_displayed().await.unwrap());
    browser.close().await;
}

#[actix_web::test]
async fn without_javascript_the_menu_opens_and_the_user_menu_signs_out() {
    let app = admin_world().await;
    let browser = Browser::open(&app, false).await;
    browser.sign_in("admin@acme.test").await;
    browser.client.set_window_size(375, 800).await.unwrap();
    browser.goto("/admin/users").await;
    browser.wait_until("the phone width", "return window.innerWidth <= 375").await;
    assert_eq!(browser.js(NO_PAGE_OVERFLOW).await, json!(true));

    let users_link = "#nav a[href='/admin/users']";
    assert!(!shown(&browser, users_link).await, "the navigation is collapsed");
    browser.find("a.nav-open").await.click().await.unwrap();
    assert!(shown(&browser, users_link).await, "Menu shows the links");
    browser.find("a.nav-close").await.click().await.unwrap();
    assert!(!shown(&browser, users_link).await, "Close menu hides them");

    // The user menu: name and organization, the account page, and Sign out.
    let summary = browser.find(".user-menu summary").await;
    assert!(summary.text().await.unwrap().contains("admin"), "names who is signed in");
    assert!(!shown(&browser, ".user-menu button[type=submit]").await, "closed at first");
    summary.click().await.unwrap();
    let panel = browser.find(".user-menu-panel").await.text().await.unwrap();
    assert!(panel.to_lowercase().contains("acme"), "names the organization: {panel}");
    assert!(shown(&browser, ".user-menu a[href='/account']").await);
    browser.find(".user-menu button[type=submit]").await.click().await.unwrap();
    browser.wait_until("the sign-in page", "return location.pathname === '/login'").await;
    browser.goto("/admin/users").await;
    browser.wait_until("sent to sign in", "return location.pathname === '/login'").await;
    browser.close().await;
}

#[actix_web::test]
async fn the_user_menu_closes_on_escape_and_signs_out() {
    let app = admin_world().await;
    let browser = Browser::open(&app, true).await;
    browser.sign_in("admin@acme.test").await;
    browser.goto("/account").await;

    let summary = browser.find(".user-menu summary").await;
    summary.click().await.unwrap();
    let account = browser.find(".user-menu a[href='/account']").await;
    assert!(account.is_displayed().await.unwrap());
    // Escape from inside the menu closes it and puts focus back on its button.
    account.send_keys(&char::from(Key::Escape).to_string()).await.unwrap();
    browser.wait_until("the menu closed", "return !document.querySelector('.user-menu').open").await;
    assert_eq!(browser.js("return document.activeElement.matches('.user-menu summary')").await, json!(true));
    // A click elsewhere closes it too.
    summary.click().await.unwrap();
    browser.find("main h1").await.click().await.unwrap();
    browser.wait_until("the menu closed", "return !document.querySelector('.user-menu').open").await;

    summary.click().await.unwrap();
    browser.find(".user-menu button[type=submit]").await.click().await.unwrap();
    browser.wait_until("the sign-in page", "return location.pathname === '/login'").await;
    browser.goto("/account").await;
    browser.wait_until("sent to sign in", "return location.pathname === '/login'").await;
    browser.close().await;
}
