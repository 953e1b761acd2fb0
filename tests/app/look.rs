//! The look of the key pages in a real browser: the compact key list and its row menus, the
//! show-once secret, the dialogs' close button and kept-in-view actions, at desktop and
//! phone widths.

use fantoccini::{Locator, key::Key};
use serde_json::json;

use crate::{
    browser::Browser,
    helpers::{TestApp, fixtures, keys, spawn_app},
};

/// An organization whose user bob has API key access and a few keys, one of them with a long
/// name and comment.
async fn world() -> TestApp {
    let app = spawn_app().await;
    let mut conn = app.conn();
    let org = fixtures::organization(&mut conn, "acme");
    let bob = fixtures::reader(&mut conn, &org, "bob@acme.test");
    for name in ["Nightly export", "Dispatch board", "A very long key name for the warehouse synchronisation job"] {
        keys::personal(&mut conn, &app.hasher, &bob, name);
    }
    drop(conn);
    app
}

/// Whether the page is wider than the viewport (it would scroll sideways).
async fn overflows(browser: &Browser) -> bool {
    browser.js("return document.documentElement.scrollWidth > window.innerWidth").await == json!(true)
}

#[actix_web::test]
async fn the_key_list_is_one_line_per_key_with_its_state_and_expiry_and_a_keyboard_menu() {
    let app = world().await;
    let browser = Browser::open(&app, true).await;
    browser.sign_in("bob@acme.test").await;
    browser.goto("/account/keys").await;
    browser.find("tr[data-key]").await;
    assert!(!overflows(&browser).await, "the list fits at 1280 px");
    // One line per key: every row is about as tall as the shortest (no wrapped cells).
    let heights = browser
        .js("return Array.from(document.querySelectorAll('tr[data-key]')).map(r => r.getBoundingClientRect().height)")
        .await;
    let heights: Vec<f64> = heights.as_array().unwrap().iter().map(|h| h.as_f64().unwrap()).collect();
    assert_eq!(heights.len(), 3);
    assert!(heights.iter().all(|h| *h < 64.0), "compact rows: {heights:?}");
    // The state and the expiry date are shown for every key.
    let states = browser
        .js("return Array.from(document.querySelectorAll('tr[data-key] .key-state')).map(c => c.innerText.trim())")
        .await;
    assert_eq!(states, json!(["Active", "Active", "Active"]));
    let dated = browser.js("return document.querySelectorAll('tr[data-key] .key-expires time').length").await;
    assert_eq!(dated, json!(3));

    // The row menu: its entries are hidden until it opens, and it is a keyboard menu.
    let rename = "tr[data-key] a[href*='/rename']";
    assert!(!browser.find(rename).await.is_displayed().await.unwrap(), "menu entries start hidden");
    let summary = browser.find("tr[data-key] details.row-menu summary").await;
    summary.send_keys(&char::from(Key::Enter).to_string()).await.unwrap();
    assert!(browser.find(rename).await.is_displayed().await.unwrap(), "Enter opens the menu");
    browser.client.active_element().await.unwrap().send_keys(&char::from(Key::Tab).to_string()).await.unwrap();
    browser.client.active_element().await.unwrap().send_keys(&char::from(Key::Escape).to_string()).await.unwrap();
    assert_eq!(browser.js("return document.querySelectorAll('details.row-menu[open]').length").await, json!(0));
    let back = browser.js("return document.activeElement.matches('details.row-menu summary')").await;
    assert_eq!(back, json!(true), "Escape closes the menu and puts focus back on its button");
    // Opening another menu closes the first (the lower one first: an open menu covers the rows
    // below it).
    let menus = browser.client.find_all(Locator::Css("tr[data-key] details.row-menu summary")).await.unwrap();
    menus[1].click().await.unwrap();
    menus[0].click().await.unwrap();
    assert_eq!(browser.js("return document.querySelectorAll('details.row-menu[open]').length").await, json!(1));

    // A dialog opened from a menu gives focus back to the menu's button when it closes.
    browser.client.find_all(Locator::Css(rename)).await.unwrap()[0].click().await.unwrap();
    browser.find("dialog[open] #rename-name").await;
    browser.find("dialog[open] .dialog-head button.dialog-close").await.click().await.unwrap();
    browser.wait_gone("dialog[open]").await;
    // Focus moves in the dialog's close event, a moment after it is gone (on a busy machine).
    browser
        .wait_until(
            "the header's close button closes the dialog and focus returns",
            "return document.activeElement.matches('tr[data-key] details.row-menu summary')",
        )
        .await;
    browser.close().await;
}

#[actix_web::test]
async fn on_a_phone_keys_are_cards_with_their_state_and_the_dialog_actions_stay_in_view() {
    let app = world().await;
    let browser = Browser::open(&app, true).await;
    browser.sign_in("bob@acme.test").await;
    browser.set_size(375, 800).await;
    browser.goto("/account/keys").await;
    browser.find("tr[data-key]").await;
    assert_eq!(browser.js("return window.innerWidth").await, json!(375));
    assert!(!overflows(&browser).await, "no sideways scrolling at 375 px");
    // Every key's state is visible within the screen's width.
    let visible = browser
        .js("return Array.from(document.querySelectorAll('tr[data-key] .key-state .badge')).every(b => { \
             const r = b.getBoundingClientRect(); return r.width > 0 && r.left >= 0 && r.right <= window.innerWidth; })")
        .await;
    assert_eq!(visible, json!(true));
    // The row menu opens within the screen.
    browser.find("tr[data-key] details.row-menu summary").await.click().await.unwrap();
    let inside = browser
        .js("const m = document.querySelector('details.row-menu[open] .menu').getBoundingClientRect(); \
             return m.left >= 0 && m.right <= window.innerWidth")
        .await;
    assert_eq!(inside, json!(true), "the menu is not cut off");
    browser.client.active_element().await.unwrap().send_keys(&char::from(Key::Escape).to_string()).await.unwrap();

    // The new-key dialog is taller than the screen, yet its Create button is in view.
    browser.open_dialog(".page-head a[data-dialog]").await;
    let in_view = browser
        .js("const b = document.querySelector('dialog[open] button[type=submit]').getBoundingClientRect(); \
             return b.top >= 0 && b.bottom <= window.innerHeight")
        .await;
    assert_eq!(in_view, json!(true), "the dialog's actions stay in view");
    let scrolls =
        browser.js("const d = document.querySelector('dialog[open]'); return d.scrollHeight > d.clientHeight").await;
    assert_eq!(scrolls, json!(true), "the dialog really is longer than the screen");

    // Create: the whole secret is visible, wrapped, beside the copy button and the notice.
    browser.find("dialog[open] #key-name").await.send_keys("Phone key").await.unwrap();
    browser.find("dialog[open] button[type=submit]").await.click().await.unwrap();
    let secret = browser.find("dialog[open] #new-key").await;
    let value = secret.prop("value").await.unwrap().unwrap();
    assert!(keyward::keys::ParsedKey::parse(&value).is_some());
    let whole = browser
        .js("const s = document.querySelector('dialog[open] #new-key'); \
             return s.scrollHeight <= s.clientHeight + 1 && s.scrollWidth <= s.clientWidth + 1 \
               && s.getBoundingClientRect().right <= window.innerWidth")
        .await;
    assert_eq!(whole, json!(true), "the secret is shown whole, wrapped within the screen");
    browser.wait_for_text("dialog[open] .show-once-notice", "it will not be shown again").await;
    assert!(browser.find("dialog[open] button[data-copy]").await.is_displayed().await.unwrap());
    assert!(!overflows(&browser).await);
    browser.close().await;
}

#[actix_web::test]
async fn without_javascript_the_row_menu_opens_and_its_entries_work() {
    let app = world().await;
    let browser = Browser::open(&app, false).await;
    browser.sign_in("bob@acme.test").await;
    browser.goto("/account/keys").await;
    browser.menu_item("tr[data-key] a[href*='/rename']").await;
    browser.wait_for_text("h1", "Rename key").await;
    assert!(
        !browser.find(".dialog-close").await.is_displayed().await.unwrap(),
        "a plain page has its Cancel link, not a dialog's close button"
    );
    assert!(browser.client.find(Locator::Css("a[data-dialog-close]")).await.is_ok());
    browser.close().await;
}
