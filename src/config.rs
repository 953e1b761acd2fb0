//! Configuration from environment variables (and a `.env` file, loaded by `main`).
//!
//! | Variable | Meaning | Default |
//! |---|---|---|
//! | `DATABASE_URL` | PostgreSQL server to use | unset: the embedded private cluster in `KEYWARD_DATA_DIR` |
//! | `KEYWARD_MIGRATE_URL` | with `DATABASE_URL`: the tables' owner, for migrations and `purge-audit` | unset: `DATABASE_URL` |
//! | `KEYWARD_ADDR` | listen address | `127.0.0.1:8080` |
//! | `KEYWARD_PUBLIC_URL` | the address browsers use (`https://keys.example.com`); forms must come from its origin | unset: the request's `Host` |
//! | `KEYWARD_DATA_DIR` | embedded cluster and generated secrets | `./keyward-data` |
//! | `KEYWARD_SECRET` | master secret, ≥ 32 bytes, base64 | generated into the data dir in embedded mode; required with `DATABASE_URL` |
//! | `KEYWARD_COOKIE_SECURE` | send cookies with `Secure` | `true`, except in embedded mode on a loopback address |
//! | `KEYWARD_TRUST_FORWARDED` | the header a trusted proxy sets: `x-forwarded-for` or `forwarded` | `false` |
//! | `KEYWARD_POOL_SIZE` | database connections per instance | `10` |
//! | `KEYWARD_DB_CHECKOUT_TIMEOUT_MS` | longest wait for a pooled connection | `3000` |
//! | `KEYWARD_STATEMENT_TIMEOUT_MS` | longest a single SQL statement may run | `5000` |
//! | `KEYWARD_SESSION_IDLE_MINUTES` | sign out after this long without a request | `30` |
//! | `KEYWARD_SESSION_MAX_HOURS` | sign out this long after sign-in, whatever happens | `12` |
//! | `KEYWARD_WORKERS` | HTTP worker threads | number of CPUs |
//! | `KEYWARD_PASSWORD_HASHERS` | password hashes computed at once (each holds 19 MiB while the server runs) | number of CPUs |
//! | `KEYWARD_VERIFY_CACHE` | serve known keys from memory (off only for measurements) | `true` |
//! | `KEYWARD_VERIFY_INVALID_PER_MINUTE` | invalid verification attempts allowed per client address per minute | `60` |
//! | `RUST_LOG` | log filter | `info` |

use crate::domain::client_ip::TrustForwarded;
use std::{
    env,
    net::SocketAddr,
    path::{Path, PathBuf},
    time::Duration,
};

use base64::{Engine, engine::general_purpose::STANDARD as BASE64};

use crate::secrets::MasterSecret;

/// Where the database comes from.
#[derive(Debug, Clone)]
pub enum DatabaseSource {
    /// A server the operator runs (`DATABASE_URL`); nothing is seeded.
    External(String),
    /// The private cluster in the data directory, started and stopped by Keyward.
    Embedded,
}

/// Everything the application reads from its environment, parsed and checked.
#[derive(Debug, Clone)]
pub struct Config {
    pub database: DatabaseSource,
    /// The owner's connection string for migrations and the audit purge, when the
    /// application's own `DATABASE_URL` names a least-privileged role.
    pub migrate_url: Option<String>,
    pub addr: SocketAddr,
    /// The origin (`scheme://host[:port]`) of the public URL, if configured.
    pub public_origin: Option<String>,
    pub data_dir: PathBuf,
    /// Given explicitly; in embedded mode [`Config::resolve_secret`] generates one if absent.
    pub secret: Option<MasterSecret>,
    pub cookie_secure: bool,
    pub trust_forwarded: TrustForwarded,
    pub pool_size: u32,
    pub db_checkout_timeout: Duration,
    pub statement_timeout: Duration,
    pub session_idle: Duration,
    pub session_max: Duration,
    pub workers: Option<usize>,
    /// Threads hashing passwords: the most hashes computed at once (and kept working memories).
    pub password_hashers: usize,
    pub verify_cache: bool,
    pub invalid_attempts_per_minute: u32,
}

/// A configuration problem, worded for the operator.
#[derive(Debug)]
pub struct ConfigError(pub String);

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| env::var(name).ok().filter(|v| !v.trim().is_empty()))
    }

    /// Reads configuration through `lookup`, so tests can supply their own variables.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let database = match lookup("DATABASE_URL") {
            Some(url) => DatabaseSource::External(url),
            None => DatabaseSource::Embedded,
        };
        let addr: SocketAddr = parse_or("KEYWARD_ADDR", &lookup, "127.0.0.1:8080".parse().ok())?;
        let data_dir = PathBuf::from(lookup("KEYWARD_DATA_DIR").unwrap_or_else(|| "./keyward-data".into()));
        let secret = match lookup("KEYWARD_SECRET") {
            Some(value) => Some(MasterSecret::from_base64(&value).map_err(ConfigError)?),
            None => None,
        };
        if secret.is_none() && matches!(database, DatabaseSource::External(_)) {
            return Err(ConfigError(
                "KEYWARD_SECRET is required when DATABASE_URL is set: generate one with \
                 `head -c 32 /dev/urandom | base64` and keep it safe (keys cannot be verified without it)."
                    .into(),
            ));
        }
        let embedded_loopback = matches!(database, DatabaseSource::Embedded) && addr.ip().is_loopback();
        let cookie_secure = parse_bool("KEYWARD_COOKIE_SECURE", &lookup)?.unwrap_or(!embedded_loopback);
        let trust_forwarded = match lookup("KEYWARD_TRUST_FORWARDED") {
            None => TrustForwarded::No,
            Some(value) => TrustForwarded::parse(&value).ok_or_else(|| {
                ConfigError(format!(
                    "KEYWARD_TRUST_FORWARDED must be false, x-forwarded-for or forwarded (the header your proxy sets), not {value:?}"
                ))
            })?,
        };
        let pool_size: u32 = parse_or("KEYWARD_POOL_SIZE", &lookup, Some(10))?;
        if pool_size == 0 {
            return Err(ConfigError("KEYWARD_POOL_SIZE must be at least 1.".into()));
        }
        let checkout_ms: u64 = parse_or("KEYWARD_DB_CHECKOUT_TIMEOUT_MS", &lookup, Some(3000))?;
        let statement_ms: u64 = parse_or("KEYWARD_STATEMENT_TIMEOUT_MS", &lookup, Some(5000))?;
        let idle_minutes: u64 = parse_or("KEYWARD_SESSION_IDLE_MINUTES", &lookup, Some(30))?;
        let max_hours: u64 = parse_or("KEYWARD_SESSION_MAX_HOURS", &lookup, Some(12))?;
        let workers = match lookup("KEYWARD_WORKERS") {
            Some(value) => Some(parse_value::<usize>("KEYWARD_WORKERS", &value)?),
            None => None,
        };
        // One hash keeps one core busy, so more hashers than cores only add memory (19 MiB
        // each) and latency, never throughput.
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
        let password_hashers: usize = parse_or("KEYWARD_PASSWORD_HASHERS", &lookup, Some(cores))?;
        if password_hashers == 0 {
            return Err(ConfigError("KEYWARD_PASSWORD_HASHERS must be at least 1.".into()));
        }
        let verify_cache = parse_bool("KEYWARD_VERIFY_CACHE", &lookup)?.unwrap_or(true);
        let invalid_attempts_per_minute: u32 = parse_or("KEYWARD_VERIFY_INVALID_PER_MINUTE", &lookup, Some(60))?;
        let public_origin = lookup("KEYWARD_PUBLIC_URL").map(|url| public_origin(&url)).transpose()?;
        let migrate_url = lookup("KEYWARD_MIGRATE_URL");
        if migrate_url.is_some() && matches!(database, DatabaseSource::Embedded) {
            return Err(ConfigError(
                "KEYWARD_MIGRATE_URL goes with DATABASE_URL; the embedded cluster manages its own roles.".into(),
            ));
        }
        Ok(Self {
            public_origin,
            migrate_url,
            verify_cache,
            invalid_attempts_per_minute,
            database,
            addr,
            data_dir,
            secret,
            cookie_secure,
            trust_forwarded,
            pool_size,
            db_checkout_timeout: Duration::from_millis(checkout_ms.max(1)),
            statement_timeout: Duration::from_millis(statement_ms.max(1)),
            session_idle: Duration::from_secs(idle_minutes.max(1) * 60),
            session_max: Duration::from_secs(max_hours.max(1) * 3600),
            workers,
            password_hashers,
        })
    }

    /// The master secret: the configured one, or in embedded mode the one stored in the data
    /// directory (created on first use, readable only by its owner).
    pub fn resolve_secret(&self) -> Result<MasterSecret, ConfigError> {
        if let Some(secret) = &self.secret {
            return Ok(secret.clone());
        }
        load_or_create_secret(&self.data_dir.join("secret"))
    }
}

/// The origin of `KEYWARD_PUBLIC_URL`: its scheme and authority, without path.
fn public_origin(url: &str) -> Result<String, ConfigError> {
    let url = url.trim();
    let invalid = || {
        ConfigError(format!(
            "KEYWARD_PUBLIC_URL must be an http:// or https:// address such as https://keys.example.com, not {url:?}"
        ))
    };
    let (scheme, rest) = url.split_once("://").ok_or_else(invalid)?;
    let scheme = scheme.to_ascii_lowercase();
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if !matches!(scheme.as_str(), "http" | "https") || authority.is_empty() || authority.contains('@') {
        return Err(invalid());
    }
    Ok(format!("{scheme}://{}", authority.to_ascii_lowercase()))
}

fn load_or_create_secret(path: &Path) -> Result<MasterSecret, ConfigError> {
    if let Ok(text) = std::fs::read_to_string(path) {
        return MasterSecret::from_base64(text.trim()).map_err(|e| ConfigError(format!("{}: {e}", path.display())));
    }
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| ConfigError(format!("cannot create {}: {e}", parent.display())))?;
    }
    let secret = MasterSecret::generate();
    write_private_file(path, &BASE64.encode(secret.as_bytes()))
        .map_err(|e| ConfigError(format!("cannot write {}: {e}", path.display())))?;
    Ok(secret)
}

fn write_private_file(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::{io::Write, os::unix::fs::OpenOptionsExt};
    let mut file = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)?;
    file.write_all(contents.as_bytes())?;
    file.write_all(b"\n")
}

fn parse_value<T: std::str::FromStr>(name: &str, value: &str) -> Result<T, ConfigError> {
    value.trim().parse().map_err(|_| ConfigError(format!("{name} has an invalid value: {value:?}")))
}

fn parse_or<T: std::str::FromStr>(
    name: &str,
    lookup: &impl Fn(&str) -> Option<String>,
    default: Option<T>,
) -> Result<T, ConfigError> {
    match lookup(name) {
        Some(value) => parse_value(name, &value),
        None => default.ok_or_else(|| ConfigError(format!("{name} is required"))),
    }
}

fn parse_bool(name: &str, lookup: &impl Fn(&str) -> Option<String>) -> Result<Option<bool>, ConfigError> {
    match lookup(name).map(|v| v.trim().to_ascii_lowercase()) {
        None => Ok(None),
        Some(v) if ["1", "true", "yes", "on"].contains(&v.as_str()) => Ok(Some(true)),
        Some(v) if ["0", "false", "no", "off"].contains(&v.as_str()) => Ok(Some(false)),
        Some(v) => Err(ConfigError(format!("{name} must be true or false, not {v:?}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let vars: Vec<(String, String)> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Config::from_lookup(move |name| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()))
    }

    #[test]
    fn embedded_mode_on_loopback_defaults_to_plain_http_cookies() {
        let config = config(&[]).unwrap();
        assert!(matches!(config.database, DatabaseSource::Embedded));
        assert_eq!(config.addr.to_string(), "127.0.0.1:8080");
        assert!(!config.cookie_secure);
    }

    #[test]
    fn an_external_database_requires_a_master_secret() {
        let error = config(&[("DATABASE_URL", "postgres://db/keyward")]).unwrap_err();
        assert!(error.0.contains("KEYWARD_SECRET is required"), "{error}");
    }

    #[test]
    fn an_external_database_defaults_to_secure_cookies() {
        let secret = BASE64.encode([7u8; 32]);
        let config = config(&[("DATABASE_URL", "postgres://db/keyward"), ("KEYWARD_SECRET", &secret)]).unwrap();
        assert!(config.cookie_secure);
    }

    #[test]
    fn a_short_secret_is_refused() {
        let secret = BASE64.encode([7u8; 16]);
        let error = config(&[("KEYWARD_SECRET", &secret)]).unwrap_err();
        assert!(error.0.contains("32 bytes"), "{error}");
    }

    #[test]
    fn the_public_url_gives_the_origin_forms_must_come_from() {
        let parsed = config(&[("KEYWARD_PUBLIC_URL", "HTTPS://Keys.Example.com/admin/")]).unwrap();
        assert_eq!(parsed.public_origin.as_deref(), Some("https://keys.example.com"));
        for bad in ["keys.example.com", "ftp://keys.example.com", "https://", "https://u@evil.example"] {
            let error = config(&[("KEYWARD_PUBLIC_URL", bad)]).unwrap_err();
            assert!(error.0.contains("KEYWARD_PUBLIC_URL"), "{bad}: {error}");
        }
    }

    #[test]
    fn password_hashers_default_to_the_cores_and_cannot_be_zero() {
        let cores = std::thread::available_parallelism().unwrap().get();
        assert_eq!(config(&[]).unwrap().password_hashers, cores);
        assert_eq!(config(&[("KEYWARD_PASSWORD_HASHERS", "3")]).unwrap().password_hashers, 3);
        let error = config(&[("KEYWARD_PASSWORD_HASHERS", "0")]).unwrap_err();
        assert!(error.0.contains("KEYWARD_PASSWORD_HASHERS"), "{error}");
    }

    #[test]
    fn bad_numbers_name_the_variable() {
        let error = config(&[("KEYWARD_POOL_SIZE", "many")]).unwrap_err();
        assert!(error.0.contains("KEYWARD_POOL_SIZE"), "{error}");
    }
}
