//! The `LISTEN keyward_keys` connection that keeps the key cache coherent across instances.
//!
//! It runs on its own thread with its own connection (libpq, so the same TLS settings as the
//! pool). Diesel reads notifications without blocking, so the thread polls every
//! [`POLL_INTERVAL`]: an invalidation reaches this instance within a few tens of
//! milliseconds of the change's commit. On every (re)connection the whole cache is dropped,
//! because notifications sent while disconnected were missed; while disconnected, known keys
//! stay trusted for a bounded time (see `cache::DISCONNECTED_TRUST`).

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    thread::JoinHandle,
    time::{Duration, Instant},
};

use diesel::{Connection, PgConnection, RunQueryDsl};

use super::KeyCache;
use crate::keys::tokens::TokenCache;
use crate::readiness::Readiness;

/// Channel the triggers notify on.
pub const CHANNEL: &str = "keyward_keys";
const POLL_INTERVAL: Duration = Duration::from_millis(20);
/// Each heartbeat renews the cache's trust (see `cache::COHERENCE_WINDOW`, three of these).
const HEARTBEAT: Duration = Duration::from_secs(2);
/// libpq settings that make a dead TCP connection fail within seconds rather than the
/// minutes of default retransmission (ignored on Unix sockets, where that cannot happen).
const LIVENESS: &[(&str, &str)] = &[
    ("keepalives", "1"),
    ("keepalives_idle", "5"),
    ("keepalives_interval", "2"),
    ("keepalives_count", "2"),
    ("tcp_user_timeout", "5000"),
    // Named, so an operator (and the fault tests) can tell it from the pool's connections.
    ("application_name", "keyward-listener"),
];
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// The running listener; stops when [`ListenerHandle::stop`] is called or it is dropped.
#[derive(Debug)]
pub struct ListenerHandle {
    stop: Arc<AtomicBool>,
    connected: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl ListenerHandle {
    /// Whether the listener is connected (and so the cache is coherent).
    pub fn is_connected(&self) -> bool {
        self.connected.load(Ordering::Acquire)
    }

    pub fn connected_flag(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.connected)
    }

    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for ListenerHandle {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Starts listening on `url` for invalidations of the verifier's cache, once `readiness`
/// says the database is usable (before that, connecting would only log failures).
pub fn spawn(url: String, verifier: Arc<super::Verifier>, readiness: Arc<Readiness>) -> ListenerHandle {
    let stop = Arc::new(AtomicBool::new(false));
    let connected = Arc::new(AtomicBool::new(false));
    let (thread_stop, thread_connected) = (Arc::clone(&stop), Arc::clone(&connected));
    let thread = std::thread::Builder::new()
        .name("keyward-listener".into())
        .spawn(move || {
            while !readiness.is_ready() {
                if thread_stop.load(Ordering::Acquire) {
                    return;
                }
                std::thread::sleep(POLL_INTERVAL);
            }
            run(&url, &verifier.cache, &verifier.tokens, &thread_stop, &thread_connected)
        })
        .expect("spawn the listener thread");
    ListenerHandle { stop, connected, thread: Some(thread) }
}

fn run(url: &str, cache: &KeyCache, tokens: &TokenCache, stop: &AtomicBool, connected: &AtomicBool) {
    let mut backoff = Duration::from_millis(100);
    let mut reported = false;
    while !stop.load(Ordering::Acquire) {
        match listen(url) {
            Ok(mut conn) => {
                cache.resynchronize();
                tokens.clear();
                connected.store(true, Ordering::Release);
                if reported {
                    log::info!("key cache listener reconnected; cache resynchronized");
                }
                reported = false;
                backoff = Duration::from_millis(100);
                let error = pump(&mut conn, cache, tokens, stop);
                connected.store(false, Ordering::Release);
                cache.disconnected();
                if let Some(error) = error {
                    log::warn!("key cache listener lost its connection: {error}");
                    reported = true;
                }
            }
            Err(error) => {
                cache.disconnected();
                if !reported {
                    log::warn!("key cache listener cannot connect: {error}");
                    reported = true;
                }
                sleep_unless_stopped(backoff, stop);
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}

fn listen(url: &str) -> Result<PgConnection, String> {
    let mut conn = PgConnection::establish(&with_liveness(url)).map_err(|e| e.to_string())?;
    diesel::sql_query("SET statement_timeout = 3000").execute(&mut conn).map_err(|e| e.to_string())?;
    diesel::sql_query(format!("LISTEN {CHANNEL}")).execute(&mut conn).map_err(|e| e.to_string())?;
    Ok(conn)
}

/// `url` (a URI or a `key=value` string) with [`LIVENESS`] settings added.
fn with_liveness(url: &str) -> String {
    if url.contains("://") {
        let params: Vec<String> = LIVENESS.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let separator = if url.contains('?') { '&' } else { '?' };
        format!("{url}{separator}{}", params.join("&"))
    } else {
        let params: Vec<String> = LIVENESS.iter().map(|(k, v)| format!("{k}={v}")).collect();
        format!("{url} {}", params.join(" "))
    }
}

/// Applies notifications until the connection fails (returns the error) or stop is asked.
fn pump(conn: &mut PgConnection, cache: &KeyCache, tokens: &TokenCache, stop: &AtomicBool) -> Option<String> {
    let mut last_heartbeat = Instant::now();
    while !stop.load(Ordering::Acquire) {
        for notification in conn.notifications_iter() {
            match notification {
                Ok(notification) => {
                    cache.invalidate(&notification.payload);
                    tokens.invalidate(&notification.payload);
                }
                Err(e) => return Some(e.to_string()),
            }
        }
        if last_heartbeat.elapsed() >= HEARTBEAT {
            if let Err(e) = diesel::sql_query("SELECT 1").execute(conn) {
                return Some(e.to_string());
            }
            cache.confirm_coherent();
            last_heartbeat = Instant::now();
        }
        std::thread::sleep(POLL_INTERVAL);
    }
    None
}

fn sleep_unless_stopped(total: Duration, stop: &AtomicBool) {
    let until = Instant::now() + total;
    while Instant::now() < until && !stop.load(Ordering::Acquire) {
        std::thread::sleep(POLL_INTERVAL);
    }
}

#[cfg(test)]
mod tests {
    use super::with_liveness;

    #[test]
    fn liveness_settings_fit_both_connection_string_forms() {
        assert!(with_liveness("postgres://db/keyward").starts_with("postgres://db/keyward?keepalives=1&"));
        assert!(with_liveness("postgres://db/keyward?sslmode=require").contains("sslmode=require&keepalives=1"));
        assert!(with_liveness("host='/run' dbname='keyward'").contains(" tcp_user_timeout=5000"));
    }
}
