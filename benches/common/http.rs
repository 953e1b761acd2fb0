//! A signed-in browser session over plain HTTP (one cookie, CSRF tokens from the pages) and
//! the server's own timing of each response (`Server-Timing`).

use keyward::services::demo;
use reqwest::{Client, Response, header};

/// Server time (ms) and query count from a response's `Server-Timing` header.
pub fn server_timing(response: &Response) -> (f64, u32) {
    let timing = response.headers().get("server-timing").and_then(|v| v.to_str().ok()).unwrap_or_default();
    let millis = timing
        .split("app;dur=")
        .nth(1)
        .and_then(|rest| rest.split(',').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(f64::NAN);
    let queries = timing
        .split("db;desc=\"")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    (millis, queries)
}

pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1]
}

/// A signed-in browser session: one cookie, the CSRF token of the last page.
pub struct Session {
    base: String,
    http: Client,
    cookie: String,
}

impl Session {
    pub async fn sign_in(base: &str, email: &str) -> (Session, f64) {
        let http = Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        let page = http.get(format!("{base}/login")).send().await.unwrap();
        let cookie = session_cookie(&page).expect("a session cookie");
        let token = csrf_token(&page.text().await.unwrap());
        let response = http
            .post(format!("{base}/login"))
            .header(header::COOKIE, &cookie)
            .form(&[("csrf_token", token.as_str()), ("email", email), ("password", demo::DEMO_PASSWORD)])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 303, "{email} signs in");
        let (millis, _) = server_timing(&response);
        let cookie = session_cookie(&response).expect("a renewed session cookie");
        (Session { base: base.to_string(), http, cookie }, millis)
    }

    pub async fn get(&self, path: &str) -> Response {
        self.http.get(format!("{}{path}", self.base)).header(header::COOKIE, &self.cookie).send().await.unwrap()
    }

    /// Submits the "New API key" form `form` (the page's HTML) for a personal key `name`
    /// with every action, expiring in 30 days.
    pub async fn create_key(&self, form: &str, name: &str) -> Response {
        let expires = (chrono::Utc::now() + chrono::Duration::days(30)).date_naive().to_string();
        let (csrf, token) = (csrf_token(form), hidden(form, "form_token"));
        let fields = [
            ("csrf_token", csrf.as_str()),
            ("form_token", token.as_str()),
            ("name", name),
            ("actions_mode", "all"),
            ("assets_mode", "all"),
            ("expires_on", expires.as_str()),
        ];
        self.post("/account/keys", &fields).await
    }

    pub async fn post(&self, path: &str, fields: &[(&str, &str)]) -> Response {
        self.http
            .post(format!("{}{path}", self.base))
            .header(header::COOKIE, &self.cookie)
            .form(fields)
            .send()
            .await
            .unwrap()
    }
}

fn session_cookie(response: &Response) -> Option<String> {
    response
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or_default().to_string())
        .find(|pair| pair.starts_with("keyward_session=") && pair.len() > "keyward_session=".len())
}

pub fn csrf_token(html: &str) -> String {
    hidden(html, "csrf_token")
}

pub fn hidden(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker).unwrap_or_else(|| panic!("a {name} field")) + marker.len();
    html[start..start + html[start..].find('"').unwrap()].to_string()
}

/// Asks the verification API whether `secret` may read positions (the benchmarks' hot path).
pub async fn verify(client: &Client, base: &str, secret: &str) -> Response {
    client
        .post(format!("{base}/api/v1/verify"))
        .bearer_auth(secret)
        .json(&serde_json::json!({ "action": "positions.read" }))
        .send()
        .await
        .unwrap()
}
