//! The OpenAPI document at `/api/v1/openapi.json`: generated from the code, complete, and true
//! to what the API answers (schemathesis, a property-based run against a live instance with
//! data); and its reference page `/api/docs/`, rendered in a browser under the strict CSP.

use std::{path::PathBuf, process::Command};

use serde_json::{Value, json};

use crate::{
    browser::Browser,
    helpers::{TestApp, fixtures, http_client, keys, spawn_app},
};

#[actix_web::test]
async fn the_document_lists_every_endpoint_with_its_errors_and_is_not_cached() {
    let app = spawn_app().await;
    let response = http_client().get(app.url("/api/v1/openapi.json")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let header =
        |name: &str| response.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    assert_eq!(header("content-type"), "application/json");
    assert_eq!(header("cache-control"), "no-store", "like every API answer");
    let doc: Value = response.json().await.unwrap();

    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1."), "{}", doc["openapi"]);
    assert_eq!(doc["servers"][0]["url"], "/api/v1", "relative to wherever Keyward runs");
    let operations = [("/verify", "post"), ("/me", "get"), ("/leaks", "post"), ("/openapi.json", "get")];
    for (path, method) in operations {
        let operation = &doc["paths"][path][method];
        assert!(operation["operationId"].is_string(), "{method} {path} is documented: {operation}");
        assert!(operation["tags"][0].is_string(), "{method} {path} has a tag");
    }
    let verify = &doc["paths"]["/verify"]["post"];
    assert_eq!(verify["security"], json!([{ "apiKey": [] }]));
    assert_eq!(doc["components"]["securitySchemes"]["apiKey"]["scheme"], "bearer");
    // Every status the handler can answer, with the shape it has.
    let verdict = json!({ "$ref": "#/components/schemas/Verdict" });
    let error = json!({ "$ref": "#/components/schemas/Error" });
    for (status, schema) in [
        ("200", &verdict),
        ("400", &error),
        ("401", &verdict),
        ("403", &verdict),
        ("413", &error),
        ("429", &verdict),
        ("503", &error),
    ] {
        assert_eq!(verify["responses"][status]["content"]["application/json"]["schema"], *schema, "verify {status}");
    }
    assert_ne!(verify["requestBody"]["required"], true, "a verification may send no body");
    let body = verify["requestBody"]["content"]["application/json"]["schema"].to_string();
    assert!(body.contains("#/components/schemas/VerifyRequest"), "{body}");
    assert_eq!(doc["components"]["schemas"]["VerifyRequest"]["additionalProperties"], false);
    let codes = &doc["components"]["schemas"]["Code"]["enum"];
    for code in [
        "VALID",
        "NOT_FOUND",
        "EXPIRED",
        "DISABLED",
        "FORBIDDEN_ACTION",
        "FORBIDDEN_ASSET",
        "FORBIDDEN_IP",
        "RATE_LIMITED",
    ] {
        assert!(codes.as_array().unwrap().contains(&json!(code)), "{code} in {codes}");
    }
    assert_eq!(doc["components"]["schemas"]["Error"]["required"], json!(["error", "message"]));
    assert_eq!(doc["paths"]["/leaks"]["post"]["responses"]["429"]["content"]["application/json"]["schema"], error);
}

/// Where `.ci/setup` installs schemathesis.
fn schemathesis() -> PathBuf {
    let program = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/schemathesis/bin/schemathesis");
    assert!(
        program.is_file(),
        "schemathesis is not installed at {}: run `bash .ci/setup` (it installs the pinned version into \
         target/schemathesis)",
        program.display()
    );
    program
}

/// Bounded examples per operation: enough to try every documented status and malformed
/// bodies, few enough for the run to take well under two minutes on a busy machine.
const MAX_EXAMPLES: &str = "20";

#[actix_web::test]
async fn schemathesis_finds_no_server_error_and_no_answer_off_the_document() {
    let program = schemathesis();
    let app = spawn_app().await;
    let (secret, admin) = {
        let mut conn = app.conn();
        let (org, admin) = fixtures::organization_with_admin(&mut conn, "acme");
        let bob = fixtures::reader(&mut conn, &org, "bob@acme.test");
        (keys::personal(&mut conn, &app.hasher, &bob, "Dispatch").1, admin)
    };
    // A token with every scope, so the management API's operations are tried beyond 401.
    let token = crate::management_api::token(&app, &admin, crate::management_api::ALL);
    let (passed, output) = run_schemathesis(&app, &program, &[("apiKey", &secret), ("managementToken", &token)]).await;
    assert!(passed, "schemathesis found problems with the OpenAPI document or the API:\n{output}");
    // Shown with `--nocapture`: what was tried.
    eprintln!("{output}");
}

/// Runs schemathesis against `app`'s document with `credentials` (security scheme, bearer
/// token) and returns whether it passed and its output.
async fn run_schemathesis(app: &TestApp, program: &PathBuf, credentials: &[(&str, &str)]) -> (bool, String) {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("schemathesis-{}", app.database));
    std::fs::create_dir_all(&dir).unwrap();
    // Credentials per security scheme (a config file, not the command line, so that the key
    // is not in the process list).
    let mut config = String::new();
    for (scheme, token) in credentials {
        config.push_str(&format!("[auth.openapi.{scheme}]\nbearer = \"{token}\"\n\n"));
    }
    let config_file = dir.join("schemathesis.toml");
    std::fs::write(&config_file, config).unwrap();
    let mut command = Command::new(program);
    command
        .current_dir(&dir)
        .arg("--no-color")
        .arg("--config-file")
        .arg(&config_file)
        .arg("run")
        .arg(app.url("/api/v1/openapi.json"))
        .args([
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance",
        ])
        .args(["--phases", "examples,coverage,fuzzing"])
        .args(["--max-examples", MAX_EXAMPLES])
        .args(["--workers", "2", "--request-timeout", "20"]);
    // The application runs on this test's runtime: wait for the run without blocking it.
    let output =
        actix_web::rt::task::spawn_blocking(move || command.output()).await.unwrap().expect("run schemathesis");
    let _ = std::fs::remove_dir_all(&dir);
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    (output.status.success(), text)
}

/// Chromium DevTools' `Page.addScriptToEvaluateOnNewDocument`, through chromedriver: the
/// listener must be in place before the page's first script, which WebDriver cannot do.
#[derive(Debug)]
struct BeforeEveryDocument(&'static str);

impl fantoccini::wd::WebDriverCompatibleCommand for BeforeEveryDocument {
    fn endpoint(&self, base_url: &url::Url, session_id: Option<&str>) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!("session/{}/goog/cdp/execute", session_id.unwrap_or_default()))
    }

    fn method_and_body(&self, _: &url::Url) -> (http::Method, Option<String>) {
        let body = json!({ "cmd": "Page.addScriptToEvaluateOnNewDocument", "params": { "source": self.0 } });
        (http::Method::POST, Some(body.to_string()))
    }
}

#[actix_web::test]
async fn the_reference_page_renders_every_operation_under_the_strict_csp() {
    let app = spawn_app().await;
    let browser = Browser::open(&app, true).await;
    browser
        .client
        .issue_cmd(BeforeEveryDocument(
            "window.cspViolations = [];
             document.addEventListener('securitypolicyviolation',
               e => window.cspViolations.push(`${e.violatedDirective} ${e.blockedURI} at ${e.sourceFile}:${e.lineNumber}:${e.columnNumber}`));",
        ))
        .await
        .expect("a script before every document");
    browser.goto("/api/docs").await;
    let url = browser.client.current_url().await.unwrap();
    assert_eq!(url.path(), "/api/docs/", "the page's files are relative to the directory");
    browser.wait_until("the operations", "return document.querySelectorAll('.opblock').length >= 4").await;
    let rendered = browser.find("#swagger-ui").await.text().await.unwrap();
    for text in ["Keyward API", "/verify", "/me", "/leaks", "/openapi.json", "verification"] {
        assert!(rendered.contains(text), "{text:?} on the page:\n{rendered}");
    }
    // The schemas are drawn last, with their icons: by then everything was tried.
    browser.wait_for_text("#swagger-ui .models", "Verdict").await;
    let violations = browser.js("return window.cspViolations").await;
    assert_eq!(violations, json!([]), "no Content-Security-Policy violation");
    let csp = http_client().get(app.url("/api/docs/")).send().await.unwrap();
    let policy = csp.headers()["content-security-policy"].to_str().unwrap().to_string();
    assert!(
        policy.contains("script-src 'self';") && policy.contains("style-src 'self';"),
        "the strict policy: {policy}"
    );
}
