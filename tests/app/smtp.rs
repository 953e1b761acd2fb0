//! A real SMTP server for the mail tests: aiosmtpd (Debian's `python3-aiosmtpd`, installed by
//! `.ci/setup`) on a free local port, with a small handler that parses each message it
//! receives with Python's `email` package (headers, the plain and HTML parts of the
//! multipart) and writes it as one JSON file. Killed when dropped.

use std::{
    io::{BufRead, BufReader},
    net::TcpListener,
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::Duration,
};

use serde_json::Value;

use crate::helpers::within;

/// The handler: `server.py OUT_DIR PORT`. It answers 250 only once the file is written, so a
/// message the application counts as sent is on disk.
const SERVER: &str = r#"
import email, email.policy, itertools, json, os, sys, time
from aiosmtpd.controller import Controller

out, port = sys.argv[1], int(sys.argv[2])
counter = itertools.count()

class Handler:
    async def handle_DATA(self, server, session, envelope):
        msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
        plain = msg.get_body(("plain",))
        html = msg.get_body(("html",))
        doc = {
            "rcpt": envelope.rcpt_tos,
            "headers": {k.lower(): str(v) for k, v in msg.items()},
            "content_type": msg.get_content_type(),
            "text": plain.get_content() if plain is not None else None,
            "html": html.get_content() if html is not None else None,
        }
        n = next(counter)
        tmp = os.path.join(out, f".{n:06}.tmp")
        with open(tmp, "w") as f:
            json.dump(doc, f)
        os.rename(tmp, os.path.join(out, f"{n:06}.json"))
        return "250 OK"

controller = Controller(Handler(), hostname="127.0.0.1", port=port)
controller.start()
print("ready", flush=True)
while True:
    time.sleep(3600)
"#;

/// A received message.
#[derive(Debug, Clone)]
pub struct Received {
    pub to: Vec<String>,
    pub headers: Value,
    pub content_type: String,
    pub text: String,
    pub html: String,
}

impl Received {
    pub fn header(&self, name: &str) -> String {
        self.headers[name.to_lowercase()].as_str().unwrap_or_default().to_string()
    }

    pub fn subject(&self) -> String {
        self.header("subject")
    }
}

pub struct SmtpServer {
    pub port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

/// A Python that has aiosmtpd (pyenv's `python3` may not; Debian's does).
fn python() -> &'static str {
    ["python3", "/usr/bin/python3"]
        .into_iter()
        .find(|python| {
            Command::new(python)
                .args(["-c", "import aiosmtpd"])
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        })
        .expect("a python3 with aiosmtpd (run .ci/setup)")
}

/// A local port nothing listens on (for a relay that is down, or to start one on later).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl SmtpServer {
    /// A server on a free port.
    pub fn start() -> Self {
        Self::start_on(free_port())
    }

    /// A server on `port`, ready to receive when this returns.
    pub fn start_on(port: u16) -> Self {
        let dir = std::env::temp_dir().join(format!("keyward-smtp-{}-{port}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let script = dir.join("server.py");
        std::fs::write(&script, SERVER).unwrap();
        let inbox = dir.join("inbox");
        std::fs::create_dir_all(&inbox).unwrap();
        let mut child = Command::new(python())
            .arg(&script)
            .arg(&inbox)
            .arg(port.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start aiosmtpd");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        assert_eq!(line.trim(), "ready", "the SMTP server did not start");
        Self { port, dir, child: Some(child) }
    }

    /// `KEYWARD_SMTP_URL` for it.
    pub fn url(&self) -> String {
        url_of(self.port)
    }

    /// What it received so far, in order.
    pub fn received(&self) -> Vec<Received> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(self.dir.join("inbox"))
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .collect();
        files.sort();
        files
            .iter()
            .map(|path| {
                let doc: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
                Received {
                    to: doc["rcpt"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_string()).collect(),
                    headers: doc["headers"].clone(),
                    content_type: doc["content_type"].as_str().unwrap_or_default().to_string(),
                    text: doc["text"].as_str().unwrap_or_default().to_string(),
                    html: doc["html"].as_str().unwrap_or_default().to_string(),
                }
            })
            .collect()
    }

    /// Waits (generously) until at least `count` messages arrived; returns them all.
    pub async fn wait_for(&self, count: usize) -> Vec<Received> {
        let arrived = within(Duration::from_secs(20), async || self.received().len() >= count).await;
        let received = self.received();
        assert!(arrived, "expected {count} message(s), got {}: {received:#?}", received.len());
        received
    }
}

/// `KEYWARD_SMTP_URL` of a plain relay on a local port.
pub fn url_of(port: u16) -> String {
    format!("smtp://127.0.0.1:{port}")
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
