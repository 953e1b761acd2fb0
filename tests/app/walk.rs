//! The layout crawl: as each kind of actor, every page reachable from the navigation (and the
//! pages one and two links further: a key, a user, an organization…) and every distinct dialog
//! on them, at 1440 and at 375 px: axe-core finds no violation, nothing makes the page wider
//! than the window, key lists show the state column, and each dialog's primary action can be
//! reached. With `KEYWARD_SCREENSHOTS=<dir>` it also writes a PNG of each page and dialog at
//! both widths there, for review (see the README).

use std::{
    collections::{BTreeSet, HashSet},
    path::PathBuf,
};

use fantoccini::key::Key;
use keyward::{
    db::models::{
        ServiceProvider,
        asset::{Asset, AssetGroup},
    },
    domain::Permission,
    services::keys::{KeyComment, NewKeyOwner},
};
use serde_json::json;

use crate::{
    browser::Browser,
    helpers::{TestApp, fixtures, keys, spawn_app},
};

/// The widths checked, each with a phone's or a laptop's height.
const SIZES: [(u32, u32); 2] = [(1440, 900), (375, 812)];

/// How deep the crawl follows links from a navigation entry: its page, the pages it links to
/// (a key, a user, an organization) and theirs (an organization's users).
const DEPTH: usize = 2;

/// A client organization of a service provider, with what each kind of user works with: an
/// administrator, a manager of users and keys who reads the audit log, two members with API
/// key access and personal keys (one active, one stopped), one without access, an organization
/// key, assets and a group; and support staff with the provider's own keys.
async fn world() -> TestApp {
    let app = spawn_app().await;
    let mut conn = app.conn();
    fixtures::staff(&mut conn, "sam@support.test");
    let (provider, org) = fixtures::served_organization(&mut conn, "acme", "Fleetlink");
    ServiceProvider::insert(&mut conn, "Northwind Telematics").unwrap();
    let admin = fixtures::admin(&mut conn, &org, "admin@acme.test");
    fixtures::UserBuilder::new(&org, "maria@acme.test")
        .role(&[Permission::KeysManage, Permission::UsersManage, Permission::AuditRead])
        .may_grant(&["positions.read", "vehicles.read"])
        .insert(&mut conn);
    let bob = fixtures::reader(&mut conn, &org, "bob@acme.test");
    let dora = fixtures::key_owner(&mut conn, &org, "dora@acme.test");
    fixtures::UserBuilder::new(&org, "carol@acme.test").insert(&mut conn);
    fixtures::inactive_proxy(&mut conn, &org, "former@acme.test");

    let truck = Asset::insert(&mut conn, org.id, "TRK-1", "Delivery truck 1").unwrap();
    let van = Asset::insert(&mut conn, org.id, "VAN-2", "Service van 2").unwrap();
    AssetGroup::insert(&mut conn, org.id, "North depot", &[truck.id, van.id]).unwrap();

    let mut commented = keys::settings(Some(&["positions.read", "vehicles.read"]));
    commented.comment = KeyComment::parse("Exports positions every night to the data warehouse").unwrap();
    let owner = NewKeyOwner::Personal { user_id: bob.id, organization_id: org.id };
    keys::create(&mut conn, &app.hasher, owner, "Nightly export", commented);
    let (board, _) = keys::personal(&mut conn, &app.hasher, &bob, "Dispatch board");
    rotate(&mut conn, &app, &board);
    let (stopped, _) = keys::personal(&mut conn, &app.hasher, &dora, "Old tablet");
    stop(&mut conn, &stopped);
    keys::organization(&mut conn, &app.hasher, &admin, "Telematics gateway");
    for name in ["Locator Control Manager", "Billing sync"] {
        let owner = NewKeyOwner::ServiceProvider { service_provider_id: provider.id };
        keys::create(&mut conn, &app.hasher, owner, name, keys::settings(None));
    }
    used(&mut conn, app.now());
    drop(conn);
    app
}

/// A day of usage for every key (valid and refused verifications, a few client addresses,
/// the old secret of the rotating key), so key pages show their chart, tables and the
/// least-privilege suggestion with data.
fn used(conn: &mut diesel::PgConnection, now: chrono::DateTime<chrono::Utc>) {
    use diesel::{RunQueryDsl, sql_types::Timestamptz};
    diesel::sql_query(
        "INSERT INTO key_usage_hourly (api_key_id, hour, code, action, previous_secret, count) \
         SELECT k.id, date_trunc('hour', $1) - make_interval(hours => h), c.code, 'positions.read', \
                c.code = 'VALID' AND k.previous_secret_hash IS NOT NULL AND h < 2, 1 + (h * 7 + k.id) % 40 \
         FROM api_keys k, generate_series(0, 23) h, (VALUES ('VALID'), ('FORBIDDEN_ACTION')) c(code) \
         WHERE c.code = 'VALID' OR h % 5 = 0",
    )
    .bind::<Timestamptz, _>(now)
    .execute(conn)
    .unwrap();
    // The flush writes every count per day too.
    diesel::sql_query(
        "INSERT INTO key_usage_daily (api_key_id, day, code, action, previous_secret, count) \
         SELECT api_key_id, (hour AT TIME ZONE 'UTC')::date, code, action, previous_secret, sum(count) \
         FROM key_usage_hourly GROUP BY 1, 2, 3, 4, 5",
    )
    .execute(conn)
    .unwrap();
    diesel::sql_query(
        "INSERT INTO key_usage_addresses (api_key_id, address, first_seen_at, last_seen_at, uses, previous_secret_last_seen_at) \
         SELECT k.id, ('198.51.100.' || a)::inet, $1 - interval '20 hours', $1 - make_interval(mins => a), 10 * a, \
                CASE WHEN k.previous_secret_hash IS NOT NULL AND a = 1 THEN $1 END \
         FROM api_keys k, generate_series(1, 3) a",
    )
    .bind::<Timestamptz, _>(now)
    .execute(conn)
    .unwrap();
}

/// Deactivates `key` with a reason, as the operator would (so the audit log shows it).
fn stop(conn: &mut diesel::PgConnection, key: &keyward::db::models::ApiKey) {
    use keyward::services::{Actor, keys::lifecycle};
    let actor = Actor::system("deactivate-key");
    lifecycle::set_active(conn, &actor, keys::at(key), false, Some("Tablet lost")).unwrap();
}

/// Re-keys `key` with an hour's grace, so the lists show a rotating key.
fn rotate(conn: &mut diesel::PgConnection, app: &TestApp, key: &keyward::db::models::ApiKey) {
    use keyward::services::{Actor, keys::lifecycle};
    let actor = Actor::system("rekey");
    lifecycle::rekey(conn, &actor, &app.hasher, keys::at(key), 60, None, None).unwrap();
}

// Each test names pages and dialogs its crawl must at least have reached, so that a crawl
// that finds less than it should fails rather than checks less.

#[actix_web::test]
async fn walk_as_support_staff() {
    let pages = [
        "/staff",
        "/staff/providers",
        "/staff/providers/{id}/keys",
        "/staff/providers/{id}/keys/{id}",
        "/staff/organizations",
        "/staff/organizations/{id}",
        "/staff/actions",
        "/staff/accounts",
    ];
    let dialogs = [
        "/staff/providers/new",
        "/staff/providers/{id}/keys/new",
        "/staff/organizations/{id}/keys/{id}/deactivate",
        "/staff/actions/new",
        "/staff/actions/{id}/retire",
        "/staff/accounts/new",
    ];
    walk("staff", "sam@support.test", &pages, &dialogs).await;
}

// The administrator sees the most: the two widths are two tests, which run side by side.
#[actix_web::test]
async fn walk_as_an_administrator_at_1440_px() {
    walk_as_an_administrator(SIZES[0]).await;
}

#[actix_web::test]
async fn walk_as_an_administrator_at_375_px() {
    walk_as_an_administrator(SIZES[1]).await;
}

async fn walk_as_an_administrator(size: (u32, u32)) {
    let pages = [
        "/account",
        "/account/keys",
        "/admin",
        "/admin/users",
        "/admin/users/{id}",
        "/admin/roles",
        "/admin/keys",
        "/admin/keys/{id}",
        "/admin/assets",
        "/admin/policy",
        "/admin/audit",
    ];
    let dialogs = [
        "/admin/users/new",
        "/admin/users/{id}/access",
        "/admin/roles/new",
        "/admin/keys/new",
        "/admin/keys/{id}/edit",
        "/admin/keys/{id}/rekey",
        "/admin/keys/{id}/deactivate",
        "/admin/keys/{id}/delete",
        "/admin/assets/new",
        "/admin/assets/groups/new",
    ];
    walk_at(&[size], "admin", "admin@acme.test", &pages, &dialogs).await;
}

#[actix_web::test]
async fn walk_as_a_user_and_key_manager() {
    let pages = ["/account", "/admin/users", "/admin/users/{id}", "/admin/keys", "/admin/keys/{id}", "/admin/audit"];
    walk("manager", "maria@acme.test", &pages, &["/admin/keys/new", "/admin/users/new"]).await;
}

#[actix_web::test]
async fn walk_as_a_user_with_api_key_access() {
    let pages = ["/account", "/account/keys", "/account/keys/{id}"];
    let dialogs = ["/account/keys/new", "/account/keys/{id}/rename", "/account/keys/{id}/rekey"];
    walk("user", "bob@acme.test", &pages, &dialogs).await;
}

#[actix_web::test]
async fn walk_as_a_user_without_api_key_access() {
    walk("no-access", "carol@acme.test", &["/account"], &[]).await;
}

/// Signs in as `email` and crawls at each width; fails listing every problem found, or if
/// the crawl missed one of `pages` or `dialogs` (URL shapes, see [`shape`]).
async fn walk(actor: &'static str, email: &str, pages: &[&str], dialogs: &[&str]) {
    walk_at(&SIZES, actor, email, pages, dialogs).await;
}

/// [`walk`] at the window sizes `sizes` only.
async fn walk_at(sizes: &[(u32, u32)], actor: &'static str, email: &str, pages: &[&str], dialogs: &[&str]) {
    let app = world().await;
    // The staff's provider keys are one "Select service provider" away from the navigation.
    let provider = {
        use diesel::prelude::*;
        use keyward::db::schema::service_providers;
        service_providers::table
            .filter(service_providers::name.eq("Fleetlink"))
            .select(service_providers::id)
            .first::<i64>(&mut *app.conn())
            .unwrap()
    };
    let browser = Browser::open(&app, true).await;
    browser.sign_in(email).await;
    let mut crawl = Crawl {
        browser: &browser,
        actor,
        width: 0,
        problems: Vec::new(),
        pages: BTreeSet::new(),
        dialogs: BTreeSet::new(),
        shots: screenshots_dir(),
    };
    for &(width, height) in sizes {
        browser.set_size(width, height).await;
        crawl.width = width;
        let mut start = vec!["/".to_string()];
        if actor == "staff" {
            start.push(format!("/staff/providers/{provider}/keys"));
        }
        crawl.run(start).await;
    }
    let mut problems = crawl.problems;
    for (expected, seen, what) in [(pages, &crawl.pages, "page"), (dialogs, &crawl.dialogs, "dialog")] {
        for missed in expected.iter().filter(|shape| !seen.contains(**shape)) {
            problems.push(format!("the crawl never reached the {what} {missed}; it saw {seen:?}"));
        }
    }
    browser.close().await;
    assert!(problems.is_empty(), "as {actor}, {} problem(s):\n  {}", problems.len(), problems.join("\n  "));
}

fn screenshots_dir() -> Option<PathBuf> {
    let dir = PathBuf::from(std::env::var_os("KEYWARD_SCREENSHOTS")?);
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
    Some(dir)
}

struct Crawl<'a> {
    browser: &'a Browser,
    actor: &'static str,
    width: u32,
    problems: Vec<String>,
    /// The shapes of the pages and dialogs checked (at either width).
    pages: BTreeSet<String>,
    dialogs: BTreeSet<String>,
    shots: Option<PathBuf>,
}

impl Crawl<'_> {
    /// Visits `start`, the navigation's pages, and what they link to up to [`DEPTH`], one
    /// page per URL shape; on each, checks the page and then each dialog not seen before.
    async fn run(&mut self, start: Vec<String>) {
        let mut seen_pages = HashSet::new();
        let mut seen_dialogs = HashSet::new();
        let mut queue: Vec<(String, usize)> = start.into_iter().map(|path| (path, 0)).collect();
        let mut navigation_added = false;
        while !queue.is_empty() {
            let (path, depth) = queue.remove(0);
            if !seen_pages.insert(shape(&path)) {
                continue;
            }
            self.browser.goto(&path).await;
            self.browser.wait_until("the page loaded", "return document.readyState === 'complete'").await;
            let landed = self.browser.js("return location.pathname").await.as_str().unwrap_or_default().to_string();
            if landed != path.split('?').next().unwrap() {
                // A redirect (the home page leads to the actor's own start page).
                seen_pages.insert(shape(&landed));
            }
            self.pages.insert(shape(&landed));
            let name = slug(&landed);
            self.check_page(&name).await;
            if !navigation_added {
                navigation_added = true;
                for href in self.links("nav a[href]").await {
                    queue.push((href, 0));
                }
            }
            if depth < DEPTH {
                for href in self.links("main a[href]:not([data-dialog])").await {
                    queue.push((href, depth + 1));
                }
            }
            let dialogs = self.links("main a[data-dialog]").await;
            for href in dialogs {
                if seen_dialogs.insert(shape(&href)) {
                    self.dialogs.insert(shape(&href));
                    self.check_dialog(&name, &href).await;
                }
            }
        }
    }

    /// The application's pages `css` links to (not downloads, static files, set-password links or the API reference).
    async fn links(&self, css: &str) -> Vec<String> {
        let script = format!(
            "return [...document.querySelectorAll({})]
               .filter(a => a.origin === location.origin && !a.hasAttribute('download'))
               .map(a => a.pathname + a.search)",
            json!(css)
        );
        let hrefs = self.browser.js(&script).await;
        hrefs
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|h| h.as_str())
            .filter(|h| {
                let path = h.split('?').next().unwrap();
                !path.ends_with(".csv") && !path.ends_with(".json")
            })
            .filter(|h| !h.starts_with("/static/") && !h.starts_with("/password/"))
            // The API reference is Swagger UI's page, not one of Keyward's layout (its own
            // test is in `openapi`).
            .filter(|h| !h.starts_with("/api/"))
            .map(str::to_string)
            .collect()
    }

    fn problem(&mut self, what: &str, problem: String) {
        self.problems.push(format!("{} px, {what}: {problem}", self.width));
    }

    async fn check_page(&mut self, name: &str) {
        let violations = self.browser.axe_violations("document").await;
        for violation in violations {
            self.problem(name, violation);
        }
        let overflow = self
            .browser
            .js("const w = document.documentElement.scrollWidth;
                 return w > window.innerWidth ? `the page is ${w} px wide: ` + [...document.querySelectorAll('body *')]
                   .filter(e => e.getBoundingClientRect().right > window.innerWidth)
                   .slice(0, 3).map(e => e.outerHTML.slice(0, 120)).join(' | ') : null")
            .await;
        if let Some(overflow) = overflow.as_str() {
            self.problem(name, overflow.to_string());
        }
        if let Some(hidden) = self.browser.js(STATE_COLUMN_HIDDEN).await.as_str() {
            self.problem(name, hidden.to_string());
        }
        self.screenshot(name, true).await;
    }

    /// Opens the dialog of `href` as a click would, checks it, and closes it with Escape.
    async fn check_dialog(&mut self, page: &str, href: &str) {
        let name = format!("{}-dialog", slug(href.split('?').next().unwrap()));
        let what = format!("{name} (on {page})");
        let opened = self
            .browser
            .js(&format!(
                "const link = [...document.querySelectorAll('a[data-dialog]')]
                   .find(a => a.pathname + a.search === {});
                 if (!link) return false;
                 link.click();
                 return true",
                json!(href)
            ))
            .await;
        assert_eq!(opened, json!(true), "the link to {href} is on the page");
        self.browser.find("dialog[open] [data-dialog-content]").await;
        for violation in self.browser.axe_violations("dialog[open]").await {
            self.problem(&what, violation);
        }
        self.screenshot(&name, false).await;
        if let Some(problem) = self.browser.js(PRIMARY_ACTION_UNREACHABLE).await.as_str() {
            self.problem(&what, problem.to_string());
        }
        let focused = self.browser.client.active_element().await.unwrap();
        focused.send_keys(&char::from(Key::Escape).to_string()).await.unwrap();
        self.browser.wait_gone("dialog[open]").await;
    }

    /// Writes `{width}-{actor}-{name}.png` when screenshots were asked for: the whole page
    /// (the window made as tall as the page for a moment), or the window as it is.
    async fn screenshot(&self, name: &str, whole_page: bool) {
        let Some(dir) = &self.shots else { return };
        let height = SIZES.iter().find(|(w, _)| *w == self.width).unwrap().1;
        if whole_page {
            let tall = self.browser.js("return document.documentElement.scrollHeight").await.as_u64().unwrap();
            self.browser.set_size(self.width, (tall as u32).max(height)).await;
        }
        let png = self.browser.client.screenshot().await.unwrap();
        let file = dir.join(format!("{}-{}-{name}.png", self.width, self.actor));
        std::fs::write(&file, png).unwrap_or_else(|e| panic!("cannot write {}: {e}", file.display()));
        if whole_page {
            self.browser.set_size(self.width, height).await;
        }
    }
}

/// A page's path with each part that is an id (a number, or a key's public id: the part after
/// `keys` other than `new`) as `{id}`, and without its query: pages and dialogs of one shape
/// look alike.
fn shape(path: &str) -> String {
    let path = path.split('?').next().unwrap();
    let mut previous = "";
    let mut parts = Vec::new();
    for part in path.split('/') {
        let id = part.bytes().any(|b| b.is_ascii_digit()) || (previous == "keys" && !part.is_empty() && part != "new");
        parts.push(if id { "{id}" } else { part });
        previous = part;
    }
    parts.join("/")
}

/// A file-name part for a page: `/admin/keys/{id}` → `admin-keys-id`, `/` → `home`.
fn slug(path: &str) -> String {
    let shaped = shape(path).replace("{id}", "id");
    let trimmed = shaped.trim_matches('/');
    if trimmed.is_empty() { "home".into() } else { trimmed.replace('/', "-") }
}

/// Returns why a key list's state column cannot be seen without scrolling, or null: the first
/// key's cell in the column headed Active, State or Status must lie within the window and
/// within the box that scrolls the table.
const STATE_COLUMN_HIDDEN: &str = "
    const problems = [];
    for (const table of document.querySelectorAll('table:has(tr[data-key])')) {
      const heads = [...table.querySelectorAll('thead th')];
      const head = heads.find(th => /^(active|state|status)$/i.test(th.textContent.trim()));
      if (!head) { problems.push('a key list without a state column'); continue; }
      // The first key's cell in that column: on a phone the heads are read, not drawn, and
      // each row is a card that names its cells.
      const cell = table.querySelector('tr[data-key]').cells[head.cellIndex];
      const r = cell.getBoundingClientRect();
      let box = { left: 0, right: window.innerWidth };
      for (let e = table.parentElement; e; e = e.parentElement) {
        if (getComputedStyle(e).overflowX !== 'visible') {
          const b = e.getBoundingClientRect();
          box = { left: Math.max(box.left, b.left), right: Math.min(box.right, b.right) };
        }
      }
      if (r.width === 0 || r.left < box.left - 1 || r.right > box.right + 1) {
        problems.push(`the key list's state column is out of sight (${Math.round(r.left)}–${Math.round(r.right)} px, visible ${Math.round(box.left)}–${Math.round(box.right)} px)`);
      }
    }
    return problems.length ? problems.join('; ') : null";

/// Returns why the open dialog's primary action (its submit button, or Done) cannot be
/// reached, or null: scrolled into view, it must lie within the window, not under anything.
/// Also flags a dialog wider than itself (content scrolling sideways).
const PRIMARY_ACTION_UNREACHABLE: &str = "
    const dialog = document.querySelector('dialog[open]');
    const action = dialog.querySelector('button.primary, button.danger, button[type=submit], [data-dialog-done]');
    if (!action) return 'no primary action (submit button or Done link)';
    action.scrollIntoView({ block: 'nearest', inline: 'nearest' });
    const r = action.getBoundingClientRect();
    if (r.width === 0 || r.height === 0) return 'the primary action is not displayed';
    if (r.left < 0 || r.top < 0 || r.right > window.innerWidth || r.bottom > window.innerHeight) {
      return `the primary action lies outside the window (${Math.round(r.left)},${Math.round(r.top)}–${Math.round(r.right)},${Math.round(r.bottom)})`;
    }
    const hit = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);
    if (!hit || !(hit === action || action.contains(hit))) {
      return 'the primary action is covered by ' + (hit ? hit.outerHTML.slice(0, 100) : 'nothing');
    }
    if (dialog.scrollWidth > dialog.clientWidth + 1) {
      return `the dialog's content is ${dialog.scrollWidth} px wide in a ${dialog.clientWidth} px dialog`;
    }
    return null";
