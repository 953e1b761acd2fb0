//! Browser tests: headless Chromium driven through WebDriver (chromedriver), through every key
//! modal flow with JavaScript, and the create and delete flows again without JavaScript.

use std::{
    net::TcpListener,
    path::PathBuf,
    process::{Child, Command, Stdio},
    sync::{Mutex, OnceLock},
    time::{Duration, Instant},
};

use fantoccini::{Client, ClientBuilder, Locator, elements::Element, key::Key};
use keyward::keys::ParsedKey;
use serde_json::json;
use tokio::sync::{Semaphore, SemaphorePermit};

use crate::helpers::{PASSWORD, TestApp, fixtures, keys, spawn_app, user};

/// Chromium is heavy: at most two browsers at a time on a two-core machine.
static BROWSER_SLOTS: Semaphore = Semaphore::const_new(2);
static CHROMEDRIVER: OnceLock<Mutex<Option<(Child, u16)>>> = OnceLock::new();

extern "C" fn stop_chromedriver() {
    if let Some(lock) = CHROMEDRIVER.get()
        && let Ok(mut guard) = lock.lock()
        && let Some((child, _)) = guard.as_mut()
    {
        let _ = child.kill();
        let _ = child.wait();
    }
}

fn find_program(names: &[&str]) -> String {
    for name in names {
        let found = std::env::var_os("PATH")
            .map(|path| std::env::split_paths(&path).any(|dir| dir.join(name).is_file()))
            .unwrap_or(false);
        if found {
            return name.to_string();
        }
    }
    panic!("none of {names:?} is installed: run `bash .ci/setup --browser` (installs chromium and chromium-driver)");
}

/// The port of the shared chromedriver, started on first use.
fn chromedriver_port() -> u16 {
    let lock = CHROMEDRIVER.get_or_init(|| Mutex::new(None));
    let mut guard = lock.lock().unwrap();
    if let Some((_, port)) = guard.as_ref() {
        return *port;
    }
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let child = Command::new(find_program(&["chromedriver"]))
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromedriver");
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "chromedriver did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    #[expect(unsafe_code, reason = "atexit is the only hook that runs after the test harness finishes")]
    unsafe {
        libc::atexit(stop_chromedriver);
    }
    *guard = Some((child, port));
    port
}

/// WebDriver's "Add Virtual Authenticator" command (W3C WebAuthn, §11.3).
#[derive(Debug)]
struct AddVirtualAuthenticator;

impl fantoccini::wd::WebDriverCompatibleCommand for AddVirtualAuthenticator {
    fn endpoint(&self, base_url: &url::Url, session_id: Option<&str>) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!("session/{}/webauthn/authenticator", session_id.unwrap_or_default()))
    }

    fn method_and_body(&self, _: &url::Url) -> (http::Method, Option<String>) {
        let body = json!({
            "protocol": "ctap2",
            "transport": "internal",
            "hasResidentKey": true,
            "hasUserVerification": true,
            "isUserConsenting": true,
            "isUserVerified": true,
        });
        (http::Method::POST, Some(body.to_string()))
    }
}

/// A headless Chromium session (its slot is released when dropped).
pub struct Browser {
    pub client: Client,
    base: String,
    /// The authenticators of accounts that must sign in with one (staff).
    factors: crate::helpers::Factors,
    _slot: SemaphorePermit<'static>,
    _profile: PathBuf,
}

impl Browser {
    pub async fn open(app: &TestApp, javascript: bool) -> Browser {
        let slot = BROWSER_SLOTS.acquire().await.unwrap();
        let port = chromedriver_port();
        let profile = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("chromium-profile-{}", keyward::secrets::random_token(6)));
        std::fs::create_dir_all(&profile).unwrap();
        let mut options = json!({
            "binary": which(&["chromium", "chromium-browser"]),
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--no-first-run", "--disable-quic", "--window-size=1280,1000",
                format!("--user-data-dir={}", profile.display()),
            ],
        });
        if !javascript {
            options["prefs"] = json!({ "profile.managed_default_content_settings.javascript": 2 });
        }
        let mut capabilities = serde_json::Map::new();
        capabilities.insert("browserName".into(), json!("chrome"));
        capabilities.insert("goog:chromeOptions".into(), options);
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(capabilities)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
            .expect("a WebDriver session");
        // `localhost`, not the address: passkeys belong to a domain name (the application's
        // relying party is `localhost` with its port), and browsers refuse them on an address.
        let base = format!("http://localhost:{}", app.address.port());
        Browser { client, base, factors: app.factors.clone(), _slot: slot, _profile: profile }
    }

    pub async fn goto(&self, path: &str) {
        self.client.goto(&format!("{}{path}", self.base)).await.unwrap();
    }

    pub async fn find(&self, css: &str) -> Element {
        self.client
            .wait()
            .at_most(Duration::from_secs(10))
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("{css} did not appear: {e}"))
    }

    /// Waits until the element `css` contains `text`.
    pub async fn wait_for_text(&self, css: &str, text: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(element) = self.client.find(Locator::Css(css)).await
                && element.text().await.unwrap_or_default().contains(text)
            {
                return;
            }
            if Instant::now() > deadline {
                let source = self.client.source().await.unwrap_or_default();
                panic!("{css} never contained {text:?}; page:\n{source}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until `script` (a JavaScript expression's body, `return …`) returns true. A
    /// script that fails counts as "not yet": it may run on the page being left, while the
    /// next one loads.
    pub async fn wait_until(&self, what: &str, script: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.client.execute(script, vec![]).await.ok() != Some(json!(true)) {
            if Instant::now() > deadline {
                let source = self.client.source().await.unwrap_or_default();
                panic!("never saw {what}; page:\n{source}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until no element matches `css`.
    pub async fn wait_gone(&self, css: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.client.find(Locator::Css(css)).await.is_ok() {
            assert!(Instant::now() < deadline, "{css} did not go away");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn js(&self, script: &str) -> serde_json::Value {
        self.client.execute(script, vec![]).await.unwrap()
    }

    pub async fn sign_in(&self, email: &str) {
        self.goto("/login").await;
        self.find("#email").await.send_keys(email).await.unwrap();
        self.find("#password").await.send_keys(PASSWORD).await.unwrap();
        self.find("form[action='/login'] button[type=submit]").await.click().await.unwrap();
        // An account that must have a second factor sets one up at its first sign-in, as a
        // person would, and gives its code at later ones.
        let state = "document.querySelector('.flash-success') ? 'in' \
                     : document.querySelector(\"form[action='/login/second-factor']\") ? 'code' \
                     : document.querySelector(\"form[action='/login/enrol/totp']\") ? 'enrol' : ''";
        self.wait_until("signed in or asked for a second factor", &format!("return ({state}) !== ''")).await;
        match self.js(&format!("return {state}")).await.as_str() {
            Some("code") => {
                self.find("#code").await.send_keys(&self.factors.fresh_code(email)).await.unwrap();
                self.find("form[action='/login/second-factor'] button[type=submit]").await.click().await.unwrap();
            }
            Some("enrol") => {
                self.find("form[action='/login/enrol/totp'] button[type=submit]").await.click().await.unwrap();
                let shown = self.find("#totp-secret").await.text().await.unwrap().replace(' ', "");
                let secret = totp_rs::Secret::try_from_base32(&shown).unwrap().as_bytes().to_vec();
                self.find("#code").await.send_keys(&self.factors.code_at_now(&secret)).await.unwrap();
                self.factors.remember(email, secret);
                self.find("form[action='/login/enrol/totp/confirm'] button[type=submit]").await.click().await.unwrap();
                self.find(".show-once-notice").await;
                self.find(".form-actions a.button.primary").await.click().await.unwrap();
            }
            _ => {}
        }
        self.wait_for_text(".flash-success", "Welcome").await;
    }

    /// Gives the browser a virtual authenticator (WebDriver's WebAuthn extension): a platform
    /// authenticator that holds passkeys and verifies its user at once, as a fingerprint
    /// reader would. The ceremonies it takes part in are the real ones, end to end.
    pub async fn add_virtual_authenticator(&self) {
        let added = self.client.issue_cmd(AddVirtualAuthenticator).await.expect("a virtual authenticator");
        assert!(added.as_str().is_some_and(|id| !id.is_empty()), "{added}");
    }

    /// Clicks the link `css` that opens a dialog, and waits for the dialog.
    pub async fn open_dialog(&self, css: &str) -> Element {
        self.find(css).await.click().await.unwrap();
        self.find("dialog[open] [data-dialog-content]").await
    }

    /// Clicks the entry `css` of a row's menu, opening the menu first with a real click on its
    /// button, as a person would (the entry is hidden until then).
    pub async fn menu_item(&self, css: &str) {
        let item = self.find(css).await;
        let button = item.find(Locator::XPath("./ancestor::details[1]/summary")).await.unwrap();
        button.click().await.unwrap();
        item.click().await.unwrap();
    }

    /// Sets the viewport to `width` × `height` CSS pixels: the window is made larger by what
    /// its frame takes, measured (again, until the page sees the size: a resize is laid out
    /// a moment later).
    pub async fn set_size(&self, width: u32, height: u32) {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut frame = 0;
        loop {
            self.client.set_window_size(width, height + frame).await.unwrap();
            let seen = self.js("return [window.innerWidth, window.innerHeight, window.outerHeight]").await;
            let [inner_width, inner_height, outer_height] =
                [0, 1, 2].map(|i| seen[i].as_u64().unwrap_or_default() as u32);
            if (inner_width, inner_height) == (width, height) {
                return;
            }
            frame = outer_height.saturating_sub(inner_height);
            assert!(
                Instant::now() < deadline,
                "the viewport stays {inner_width} × {inner_height}, not {width} × {height}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Runs axe-core on `within` (a CSS selector; "document" for the whole page) and returns
    /// its violations, one line per failing element. WebDriver scripts run outside the page's
    /// Content-Security-Policy, so axe works under the app's strict one without an inline
    /// script in the page. (Not in a browser opened without JavaScript: axe's timers never
    /// fire there.)
    pub async fn axe_violations(&self, within: &str) -> Vec<String> {
        if self.js("return typeof window.axe === 'object'").await != json!(true) {
            self.client.execute(&format!("{}\nreturn null", axe_source()), vec![]).await.expect("inject axe-core");
        }
        let context = if within == "document" { json!(null) } else { json!(within) };
        let result = self
            .client
            .execute_async(
                "const [context, done] = arguments;
                 axe.run(context ?? document, {
                   runOnly: { type: 'tag', values: AXE_TAGS },
                   resultTypes: ['violations'],
                 }).then(r => done(r.violations.flatMap(v => v.nodes.map(n =>
                     `${v.id} (${v.impact}) at ${n.target.join(' ')}: ${v.help}`))),
                   e => done(['axe failed: ' + e]));"
                    .replace("AXE_TAGS", &json!(AXE_TAGS).to_string())
                    .as_str(),
                vec![context],
            )
            .await
            .expect("run axe-core");
        result.as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_string()).collect()
    }

    /// Panics listing every axe-core violation on `what` (see [`Browser::axe_violations`]).
    pub async fn axe(&self, what: &str) {
        let violations = self.axe_violations(what).await;
        let url = self.client.current_url().await.map(|u| u.to_string()).unwrap_or_default();
        assert!(violations.is_empty(), "axe-core violations on {what} of {url}:\n  {}", violations.join("\n  "));
    }

    pub async fn close(self) {
        let _ = self.client.close().await;
    }
}

/// The rules axe-core checks: WCAG 2.0, 2.1 and 2.2, levels A and AA, plus its best
/// practices (landmarks, headings, one main; what a reviewer would flag anyway).
const AXE_TAGS: &[&str] = &["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa", "best-practice"];

/// axe-core's script: installed (pinned by .ci/axe/package-lock.json) by `bash .ci/setup
/// --browser` into target/axe, or wherever `KEYWARD_AXE_JS` points. Never vendored.
fn axe_source() -> &'static str {
    static SOURCE: OnceLock<String> = OnceLock::new();
    SOURCE.get_or_init(|| {
        let path = std::env::var_os("KEYWARD_AXE_JS").map(PathBuf::from).unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/axe/node_modules/axe-core/axe.min.js")
        });
        std::fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!(
                "axe-core is not installed at {} ({e}): run `bash .ci/setup --browser` (npm ci of .ci/axe into \
                 target/axe), or point KEYWARD_AXE_JS at an axe.min.js",
                path.display()
            )
        })
    })
}

fn which(names: &[&str]) -> String {
    let name = find_program(names);
    std::env::split_paths(&std::env::var_os("PATH").unwrap())
        .map(|dir| dir.join(&name))
        .find(|path| path.is_file())
        .unwrap()
        .display()
        .to_string()
}

/// An organization with a user who has API key access and may grant the read actions.
async fn world() -> TestApp {
    let app = spawn_app().await;
    let mut conn = app.conn();
    let org = fixtures::organization(&mut conn, "acme");
    fixtures::reader(&mut conn, &org, "bob@acme.test");
    drop(conn);
    app
}

/// The row of the key named `name` in the list.
fn row(name: &str) -> String {
    format!("//tr[td/a[normalize-space(text())='{name}']]")
}

#[actix_web::test]
async fn create_shows_the_key_once_in_a_dialog_with_copy_and_done() {
    let app = world().await;
    let browser = Browser::open(&app, true).await;
    browser.sign_in("bob@acme.test").await;
    browser.goto("/account/keys").await;
    browser.find(".empty-state").await;

    let dialog = browser.open_dialog(".page-head a[data-dialog]").await;
    assert!(dialog.text().await.unwrap().contains("New API key"));
    let focus_in_dialog = browser.js("return document.activeElement.closest('dialog[open]') !== null").await;
    assert_eq!(focus_in_dialog, json!(true), "focus moves into the dialog");

    browser.find("dialog #key-name").await.send_keys("Browser integration").await.unwrap();
    browser.find("dialog #actions-selected").await.click().await.unwrap();
    browser.find("dialog input[name=action][value='positions.read']").await.click().await.unwrap();
    browser.find("dialog button[type=submit]").await.click().await.unwrap();

    // The secret appears once, inside the dialog.
    let secret_input = browser.find("dialog[open] #new-key").await;
    let secret = secret_input.prop("value").await.unwrap().unwrap();
    assert!(ParsedKey::parse(&secret).is_some(), "a real key: {secret}");
    browser.axe("dialog[open]").await;
    // Marks this document (the one that showed the secret) to recognize it if it comes back.
    browser.js("window.keywardShowedSecret = true; return null").await;
    let copy = browser.find("dialog[open] button[data-copy]").await;
    assert!(copy.is_displayed().await.unwrap(), "the copy button is shown with JavaScript");
    copy.click().await.unwrap();
    browser.wait_for_text("dialog[open] [data-copy-status]", "Copied").await;
    // The clipboard really holds the key: paste it into the search field.
    browser.find("dialog[open] [data-dialog-done]").await.click().await.unwrap();
    browser.wait_gone("dialog[open]").await;
    browser.find("tr[data-key]").await;
    let search = browser.find("#filter-q").await;
    search.click().await.unwrap();
    search.send_keys(&format!("{}v{}", char::from(Key::Control), char::from(Key::Null))).await.unwrap();
    let pasted = browser.js("return document.getElementById('filter-q').value").await;
    let pasted = pasted.as_str().unwrap_or_default().to_string();
    assert_eq!(pasted, secret, "the clipboard holds the key");
    // The test put it there: take it out again, so that only the application could bring the
    // secret back below.
    search.clear().await.unwrap();

    // Done closed the dialog and the list shows the key, masked; the secret is gone.
    let source = browser.client.source().await.unwrap();
    assert!(source.contains("Browser integration"));
    assert!(!source.contains(&secret), "the secret is not in the page any more");
    let key = keys::reload(
        &mut app.conn(),
        &keys::find(&mut app.conn(), ParsedKey::parse(&secret).unwrap().public_id).unwrap().unwrap(),
    )
    .unwrap();
    assert!(app.hasher.matches(&secret, &key.secret_hash));
    assert!(source.contains(&key.masked()));

    // Going back to the list does not bring the secret back. (Done replaced the history
    // entry that showed it.) Leave the list, go Back, and wait for the list to be there
    // again: a document other than the one that showed the secret, listing the key.
    browser.goto("/account").await;
    browser
        .wait_until("the account page", "return location.pathname === '/account' && document.readyState === 'complete'")
        .await;
    browser.client.back().await.unwrap();
    browser
        .wait_until(
            "the key list again after Back",
            "return location.pathname === '/account/keys' && document.readyState === 'complete' \
             && window.keywardShowedSecret === undefined && document.querySelector('tr[data-key]') !== null",
        )
        .await;
    let source = browser.client.source().await.unwrap();
    assert!(source.contains(&key.masked()), "the list as the server shows it now");
    assert!(!source.contains(&secret), "the secret is not in the page after Back");
    let in_a_field =
        format!("return [...document.querySelectorAll('input, textarea')].some(f => f.value === {})", json!(secret));
    assert_eq!(browser.js(&in_a_field).await, json!(false), "nor in any field's value");
    browser.close().await;
}

#[actix_web::test]
async fn dialog_errors_stay_in_the_dialog_and_escape_returns_focus() {
    let app = world().await;
    let browser = Browser::open(&app, true).await;
    browser.sign_in("bob@acme.test").await;
    browser.goto("/account/keys").await;
    browser.open_dialog(".page-head a[data-dialog]").await;
    browser.find("dialog button[type=submit]").await.click().await.unwrap();
    browser.wait_for_text("dialog[open] #key-name-error", "Enter a name").await;
    browser.axe("dialog[open]").await;
    let focused = browser.js("return document.activeElement.id").await;
    assert_eq!(focused, json!("key-name"), "focus goes to the first invalid field");

    browser.client.active_element().await.unwrap().send_keys(&char::from(Key::Escape).to_string()).await.unwrap();
    browser.wait_gone("dialog[open]").await;
    let focused = browser.js("return document.activeElement.matches('.page-head a[data-dialog]')").await;
    assert_eq!(focused, json!(true), "focus returns to the link that opened the dialog");
    let count: i64 = {
        use diesel::prelude::*;
        keyward::db::schema::api_keys::table.count().get_result(&mut *app.conn()).unwrap()
    };
    assert_eq!(count, 0);
    browser.close().await;
}

#[actix_web::test]
async fn rename_deactivate_reactivate_rekey_and_delete_through_dialogs() {
    let app = world().await;
    let bob = user(&app, "bob@acme.test");
    let (key, original) = keys::personal(&mut app.conn(), &app.hasher, &bob, "Nightly export");
    let browser = Browser::open(&app, true).await;
    browser.sign_in("bob@acme.test").await;
    browser.goto("/account/keys").await;
    let key_row = row("Nightly export");

    // Rename.
    browser.menu_item("tr[data-key] a[href$='/rename?return_to=/account/keys']").await;
    let name = browser.find("dialog[open] #rename-name").await;
    name.clear().await.unwrap();
    name.send_keys("Nightly export (v2)").await.unwrap();
    browser.find("dialog[open] button[type=submit]").await.click().await.unwrap();
    browser.wait_for_text(".flash-success", "Renamed the key").await;
    browser.client.find(Locator::XPath(&row("Nightly export (v2)"))).await.unwrap();
    assert!(browser.client.find(Locator::XPath(&key_row)).await.is_err());

    // Deactivate, then reactivate.
    browser.menu_item("tr[data-key] a[href$='/deactivate?return_to=/account/keys']").await;
    browser.wait_for_text("dialog[open] h1", "Deactivate").await;
    browser.find("dialog[open] button[type=submit]").await.click().await.unwrap();
    browser.wait_for_text(".flash-success", "Deactivated").await;
    browser.wait_for_text("tr[data-key] .badge-off", "Inactive").await;
    browser.menu_item("tr[data-key] a[href$='/reactivate?return_to=/account/keys']").await;
    browser.wait_for_text("dialog[open] h1", "Reactivate").await;
    browser.find("dialog[open] button[type=submit]").await.click().await.unwrap();
    browser.wait_for_text(".flash-success", "Reactivated").await;
    browser.wait_for_text("tr[data-key] .badge-ok", "Active").await;

    // Re-key with a one-hour grace period.
    browser.menu_item("tr[data-key] a[href$='/rekey?return_to=/account/keys']").await;
    browser.find("dialog[open] #rekey-grace").await.select_by_value("60").await.unwrap();
    browser.find("dialog[open] button[type=submit]").await.click().await.unwrap();
    let new_secret = browser.find("dialog[open] #new-key").await.prop("value").await.unwrap().unwrap();
    assert_ne!(new_secret, original);
    browser.wait_for_text("dialog[open]", "The old secret keeps working until").await;
    browser.find("dialog[open] [data-dialog-done]").await.click().await.unwrap();
    browser.wait_gone("dialog[open]").await;
    let rekeyed = keys::reload(&mut app.conn(), &key).unwrap();
    assert!(app.hasher.matches(&new_secret, &rekeyed.secret_hash));
    assert!(app.hasher.matches(&original, rekeyed.previous_secret_hash.as_ref().unwrap()));

    // Delete: the confirmation names the key.
    browser.goto("/account/keys").await;
    browser.menu_item("tr[data-key] a[href$='/delete?return_to=/account/keys']").await;
    browser.wait_for_text("dialog[open] h1", "Delete \"Nightly export (v2)\"?").await;
    let focused = browser.js("return document.activeElement.matches('dialog[open] [data-dialog-close]')").await;
    assert_eq!(focused, json!(true), "a destructive confirmation starts on Cancel");
    browser.find("dialog[open] button.danger").await.click().await.unwrap();
    browser.wait_for_text(".flash-success", "Deleted \"Nightly export (v2)\"").await;
    browser.find(".empty-state").await;
    assert!(keys::reload(&mut app.conn(), &key).is_none());
    browser.close().await;
}

#[actix_web::test]
async fn without_javascript_create_and_delete_work_as_plain_pages() {
    let app = world().await;
    let browser = Browser::open(&app, false).await;
    browser.sign_in("bob@acme.test").await;
    browser.goto("/account/keys").await;
    browser.find(".page-head a[href='/account/keys/new']").await.click().await.unwrap();
    browser.find("form[action='/account/keys'] #key-name").await.send_keys("Plain page key").await.unwrap();
    browser.find("#actions-selected").await.click().await.unwrap();
    browser.find("input[name=action][value='vehicles.read']").await.click().await.unwrap();
    browser.find("form[action='/account/keys'] button[type=submit]").await.click().await.unwrap();

    let secret = browser.find("#new-key").await.prop("value").await.unwrap().unwrap();
    assert!(ParsedKey::parse(&secret).is_some());
    assert!(
        !browser.find("button[data-copy]").await.is_displayed().await.unwrap(),
        "no copy button without JavaScript"
    );
    assert!(browser.client.find(Locator::Css("dialog")).await.is_err(), "no dialog without JavaScript");
    browser.find("[data-dialog-done]").await.click().await.unwrap();
    browser.wait_for_text("tr[data-key]", "Plain page key").await;
    assert!(!browser.client.source().await.unwrap().contains(&secret));

    browser.menu_item("tr[data-key] a[href$='/delete?return_to=/account/keys']").await;
    browser.wait_for_text("h1", "Delete \"Plain page key\"?").await;
    browser.find("button.danger").await.click().await.unwrap();
    browser.wait_for_text(".flash-success", "Deleted \"Plain page key\"").await;
    browser.find(".empty-state").await;
    browser.close().await;
}

#[actix_web::test]
async fn support_staff_select_a_provider_and_create_its_key_in_a_dialog() {
    let app = spawn_app().await;
    let provider = {
        let mut conn = app.conn();
        fixtures::staff(&mut conn, "sam@support.test");
        keyward::db::models::ServiceProvider::insert(&mut conn, "Fleetlink").unwrap()
    };
    let browser = Browser::open(&app, true).await;
    browser.sign_in("sam@support.test").await;
    browser.goto("/staff").await;
    browser.find("#select-provider").await;
    browser.find("form[action='/staff/providers/select'] button[type=submit]").await.click().await.unwrap();
    browser.wait_for_text("h1", "API keys of Fleetlink").await;
    browser.find(".empty-state").await;

    browser.open_dialog(".page-head a[data-dialog]").await;
    browser.wait_for_text("dialog[open] h1", "New API key for Fleetlink").await;
    browser.find("dialog #key-name").await.send_keys("Locator Control Manager").await.unwrap();
    browser.find("dialog button[type=submit]").await.click().await.unwrap();
    let secret = browser.find("dialog[open] #new-key").await.prop("value").await.unwrap().unwrap();
    let parsed = ParsedKey::parse(&secret).expect("a real key");
    browser.find("dialog[open] [data-dialog-done]").await.click().await.unwrap();
    browser.wait_for_text("tr[data-key]", "Locator Control Manager").await;
    assert!(!browser.client.source().await.unwrap().contains(&secret), "shown once");

    let key = keys::find(&mut app.conn(), parsed.public_id).unwrap().expect("stored");
    assert_eq!(key.owner_service_provider_id, Some(provider.id));
    assert!(app.hasher.matches(&secret, &key.secret_hash));
    browser.close().await;
}

#[actix_web::test]
async fn support_staff_add_a_provider_retire_an_action_and_deactivate_a_client_key_in_dialogs() {
    let app = spawn_app().await;
    let (org, key) = {
        let mut conn = app.conn();
        fixtures::staff(&mut conn, "sam@support.test");
        let org = fixtures::organization(&mut conn, "acme");
        let bob = fixtures::UserBuilder::new(&org, "bob@acme.test")
            .api_key_access()
            .may_grant(&["positions.read", "vehicles.read"])
            .insert(&mut conn);
        let (key, _) = keys::personal(&mut conn, &app.hasher, &bob, "Leaky dispatch");
        (org, key)
    };
    let browser = Browser::open(&app, true).await;
    browser.sign_in("sam@support.test").await;

    // A new service provider, in a dialog.
    browser.goto("/staff/providers").await;
    browser.open_dialog(".page-head a[data-dialog]").await;
    browser.find("dialog[open] #provider-name").await.send_keys("Northwind Telematics").await.unwrap();
    browser.find("dialog[open] button[type=submit]").await.click().await.unwrap();
    browser.wait_for_text(".flash-success", "Added Northwind Telematics.").await;

    // Retiring an action: the confirmation says how many keys lose it.
    let positions: i64 = {
        use diesel::prelude::*;
        use keyward::db::schema::api_actions;
        api_actions::table
            .filter(api_actions::code.eq("positions.read"))
            .select(api_actions::id)
            .first(&mut *app.conn())
            .unwrap()
    };
    browser.goto("/staff/actions").await;
    browser.open_dialog(&format!("a[href='/staff/actions/{positions}/retire']")).await;
    browser.wait_for_text("dialog[open]", "Keys listing this action (1 key) lose it").await;
    browser.find("dialog[open] button[type=submit]").await.click().await.unwrap();
    browser.wait_for_text(".flash-success", "Retired positions.read; 1 key lost it.").await;

    // An incident: the client's key is deactivated with a reason.
    browser.goto(&format!("/staff/organizations/{}", org.id)).await;
    browser.open_dialog(&format!("a[href$='/keys/{}/deactivate']", key.public_id)).await;
    // A blank reason is explained at the field, inside the dialog, and the field is focused.
    browser.find("dialog[open] #confirm-reason").await.send_keys("   ").await.unwrap();
    browser.find("dialog[open] button[type=submit]").await.click().await.unwrap();
    browser.wait_for_text("dialog[open] #confirm-reason-error", "Give a reason").await;
    browser.axe("dialog[open]").await;
    let focused = browser.client.execute("return document.activeElement.id", vec![]).await.unwrap();
    assert_eq!(focused, json!("confirm-reason"));
    assert!(keys::reload(&mut app.conn(), &key).unwrap().active);
    let reason = browser.find("dialog[open] #confirm-reason").await;
    reason.clear().await.unwrap();
    reason.send_keys("Found in a public gist").await.unwrap();
    browser.find("dialog[open] button[type=submit]").await.click().await.unwrap();
    browser.wait_for_text(".flash-success", "Deactivated the client").await;
    let stopped = keys::reload(&mut app.conn(), &key).unwrap();
    assert!(!stopped.active);
    assert_eq!(stopped.deactivation_reason.as_deref(), Some("Found in a public gist"));

    // A new action, whose bad code is explained inside the dialog.
    browser.goto("/staff/actions").await;
    browser.open_dialog(".page-head a[data-dialog]").await;
    browser.find("dialog[open] #action-code").await.send_keys("Trips").await.unwrap();
    browser.find("dialog[open] button[type=submit]").await.click().await.unwrap();
    browser.wait_for_text("dialog[open]", "dotted lower-case").await;
    let code = browser.find("dialog[open] #action-code").await;
    code.clear().await.unwrap();
    code.send_keys("trips.read").await.unwrap();
    browser.find("dialog[open] button[type=submit]").await.click().await.unwrap();
    browser.wait_for_text(".flash-success", "trips.read").await;

    // A new staff account, then deactivated.
    browser.goto("/staff/accounts").await;
    browser.open_dialog(".page-head a[data-dialog]").await;
    browser.find("dialog[open] #staff-email").await.send_keys("kim@support.test").await.unwrap();
    browser.find("dialog[open] #staff-name").await.send_keys("Kim").await.unwrap();
    browser.find("dialog[open] #staff-password").await.send_keys("a long enough password").await.unwrap();
    browser.find("dialog[open] button[type=submit]").await.click().await.unwrap();
    browser.wait_for_text("table", "kim@support.test").await;
    let kim = keyward::db::models::StaffAccount::find_by_email(&mut app.conn(), "kim@support.test").unwrap().unwrap();
    browser.open_dialog(&format!("a[href='/staff/accounts/{}/deactivate']", kim.id)).await;
    browser.find("dialog[open] button[type=submit]").await.click().await.unwrap();
    browser.wait_for_text(".flash-success", "Deactivated kim@support.test.").await;
    browser.close().await;
}

/// An organization with an administrator and a member without API key access.
async fn admin_world() -> TestApp {
    let app = spawn_app().await;
    let mut conn = app.conn();
    let org = fixtures::organization(&mut conn, "acme");
    fixtures::UserBuilder::new(&org, "admin@acme.test").admin().insert(&mut conn);
    fixtures::UserBuilder::new(&org, "carol@acme.test").insert(&mut conn);
    drop(conn);
    app
}

#[actix_web::test]
async fn a_dialog_form_that_needs_a_fresh_confirmation_leads_to_the_confirm_page_not_a_reload() {
    let app = admin_world().await;
    let browser = Browser::open(&app, true).await;
    browser.sign_in("admin@acme.test").await;
    // Granting administrator rights wants a proof of the person from the last 10 minutes.
    app.advance(Duration::from_secs(11 * 60));
    browser.goto("/admin/users").await;
    browser.open_dialog(".page-head a[data-dialog]").await;
    browser.find("dialog #user-email").await.send_keys("nina@acme.test").await.unwrap();
    browser.find("dialog #user-name").await.send_keys("Nina New").await.unwrap();
    browser.find("dialog #user-admin").await.click().await.unwrap();
    browser.find("dialog button[type=submit]").await.click().await.unwrap();

    browser.wait_for_text("h1", "Confirm it's you").await;
    assert!(!user_exists(&app, "nina@acme.test"), "nothing was created without the confirmation");
    browser.find("#password").await.send_keys(PASSWORD).await.unwrap();
    browser.find("#confirm-form button[type=submit]").await.click().await.unwrap();
    // On to the form's own page (a submitted form is not replayed): sent again, it creates
    // the administrator.
    browser.find("#user-email").await.send_keys("nina@acme.test").await.unwrap();
    assert_eq!(browser.client.current_url().await.unwrap().path(), "/admin/users/new");
    browser.find("#user-name").await.send_keys("Nina New").await.unwrap();
    browser.find("#user-admin").await.click().await.unwrap();
    browser.find("main button[type=submit]").await.click().await.unwrap();
    browser.find("#password-link").await;
    assert!(user(&app, "nina@acme.test").is_admin);
    browser.close().await;
}

fn user_exists(app: &TestApp, email: &str) -> bool {
    use diesel::prelude::*;
    use keyward::db::schema::users;
    diesel::select(diesel::dsl::exists(users::table.filter(users::email.eq(email))))
        .get_result(&mut app.conn())
        .unwrap()
}

#[actix_web::test]
async fn an_administrator_creates_a_user_in_a_dialog_and_copies_the_set_password_link() {
    let app = admin_world().await;
    let browser = Browser::open(&app, true).await;
    browser.sign_in("admin@acme.test").await;
    browser.goto("/admin/users").await;
    browser.open_dialog(".page-head a[data-dialog]").await;
    assert_eq!(
        browser.js("return document.activeElement.id").await,
        json!("user-email"),
        "focus lands on the first field"
    );
    browser.find("dialog #user-email").await.send_keys("nina@acme.test").await.unwrap();
    browser.find("dialog #user-name").await.send_keys("Nina New").await.unwrap();
    browser.find("dialog #user-access").await.click().await.unwrap();
    browser.find("dialog button[type=submit]").await.click().await.unwrap();

    let link = browser.find("dialog[open] #password-link").await.prop("value").await.unwrap().unwrap();
    assert!(link.contains("/password/"), "{link}");
    browser.axe("dialog[open]").await;
    browser.find("dialog[open] button[data-copy]").await.click().await.unwrap();
    browser.wait_for_text("dialog[open] [data-copy-status]", "Copied").await;
    browser.find("dialog[open] [data-dialog-done]").await.click().await.unwrap();
    browser.wait_gone("dialog[open]").await;
    browser.wait_for_text("tr[data-user='nina@acme.test']", "Nina New").await;
    assert!(!browser.client.source().await.unwrap().contains(&link), "the link is gone from the page");
    let nina = user(&app, "nina@acme.test");
    assert!(nina.api_key_access);

    // The link works in the browser too.
    browser.client.goto(&link).await.unwrap();
    browser.find("#new-password").await.send_keys("nina's new password").await.unwrap();
    browser.find("#confirm-password").await.send_keys("nina's new password").await.unwrap();
    browser.find("form button[type=submit]").await.click().await.unwrap();
    browser.wait_for_text(".flash-success", "Your password is set").await;
    browser.close().await;
}

#[actix_web::test]
async fn the_api_key_access_switch_confirms_and_flips_at_once() {
    let app = admin_world().await;
    let browser = Browser::open(&app, true).await;
    browser.sign_in("admin@acme.test").await;
    browser.goto("/admin/users").await;
    let switch = "tr[data-user='carol@acme.test'] a[role=switch]";
    assert_eq!(browser.find(switch).await.attr("aria-checked").await.unwrap().as_deref(), Some("false"));
    // It draws as a switch: a track with the thumb at the off end, and the state in words.
    let thumb_at = |on| {
        format!(
            "const s = document.querySelector(\"{switch}\"); \
             const t = s.querySelector('.switch-track').getBoundingClientRect(); \
             const b = s.querySelector('.switch-thumb').getBoundingClientRect(); \
             return t.width >= 1.5 * t.height && b.width > 0 && b.height < t.height \
               && (b.left + b.width / 2 > t.left + t.width / 2) === {on} \
               && s.querySelector('.switch-state').textContent.trim() === '{}'",
            if on { "On" } else { "Off" }
        )
    };
    assert_eq!(browser.js(&thumb_at(false)).await, json!(true), "drawn off");
    browser.find(switch).await.click().await.unwrap();
    browser.wait_for_text("dialog[open] h1", "Grant API key access to carol?").await;
    browser.find("dialog[open] button[type=submit]").await.click().await.unwrap();
    browser.wait_for_text(".flash-success", "Granted API key access to carol").await;
    assert_eq!(browser.find(switch).await.attr("aria-checked").await.unwrap().as_deref(), Some("true"));
    assert_eq!(browser.js(&thumb_at(true)).await, json!(true), "drawn on");
    assert!(user(&app, "carol@acme.test").api_key_access);

    browser.find(switch).await.click().await.unwrap();
    browser.wait_for_text("dialog[open] h1", "Revoke API key access from carol?").await;
    // Cancel leaves it as it was.
    browser.find("dialog[open] [data-dialog-close]").await.click().await.unwrap();
    browser.wait_gone("dialog[open]").await;
    assert!(user(&app, "carol@acme.test").api_key_access);
    browser.find(switch).await.click().await.unwrap();
    browser.find("dialog[open] button.danger").await.click().await.unwrap();
    browser.wait_for_text(".flash-success", "Revoked API key access from carol").await;
    assert_eq!(browser.find(switch).await.attr("aria-checked").await.unwrap().as_deref(), Some("false"));
    assert!(!user(&app, "carol@acme.test").api_key_access);
    browser.close().await;
}

#[actix_web::test]
async fn an_administrator_enrols_an_authenticator_app_and_signs_in_with_its_code() {
    use keyward::services::second_factor::totp;
    let app = admin_world().await;
    let browser = Browser::open(&app, true).await;
    browser.sign_in("admin@acme.test").await;
    browser.find("nav.sidebar a[href='/account/security']").await.click().await.unwrap();
    browser.find("form[action='/account/security/totp'] button[type=submit]").await.click().await.unwrap();

    // The QR code is an image the browser decodes (the page's CSP allows it), next to the key.
    browser
        .wait_until(
            "the QR code drawn",
            "var img = document.querySelector('img.qr-code'); return !!img && img.complete && img.naturalWidth >= 200",
        )
        .await;
    let shown = browser.find("#totp-secret").await.text().await.unwrap().replace(' ', "");
    let secret = totp_rs::Secret::try_from_base32(&shown).unwrap().as_bytes().to_vec();
    let code = totp::code_at(&secret, app.now().timestamp()).unwrap();
    browser.find("#code").await.send_keys(&code).await.unwrap();
    browser.find("form[action='/account/security/totp/confirm'] button[type=submit]").await.click().await.unwrap();

    browser.wait_for_text(".show-once-notice", "will not be shown again").await;
    let codes = browser.find("#recovery-codes").await.prop("value").await.unwrap().unwrap();
    assert_eq!(codes.lines().count(), 10, "{codes}");
    browser.find("button[data-copy='recovery-codes']").await.click().await.unwrap();
    browser.wait_for_text("[data-copy-status]", "Copied").await;
    browser.find(".form-actions a.button.primary").await.click().await.unwrap();
    browser.wait_for_text("#recovery-left", "10 of 10").await;

    browser.find("header details.user-menu summary").await.click().await.unwrap();
    browser.find("header form[action='/logout'] button").await.click().await.unwrap();
    browser.find("#email").await;
    app.advance(Duration::from_secs(30));
    browser.find("#email").await.send_keys("admin@acme.test").await.unwrap();
    browser.find("#password").await.send_keys(PASSWORD).await.unwrap();
    browser.find("form[action='/login'] button[type=submit]").await.click().await.unwrap();
    let code = totp::code_at(&secret, app.now().timestamp()).unwrap();
    browser.find("form[action='/login/second-factor'] #code").await.send_keys(&code).await.unwrap();
    browser.find("form[action='/login/second-factor'] button[type=submit]").await.click().await.unwrap();
    browser.wait_for_text(".flash-success", "Welcome").await;
    browser.close().await;
}
