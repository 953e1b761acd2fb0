//! Configuration: the options of `keyward` that each also read an environment variable (and
//! a `.env` file, loaded by `main` before parsing), declared once with clap so that
//! `keyward --help` lists every variable with its meaning and default. Clap parses each value
//! on its own (with an error naming the variable); [`Config::from_args`] then checks the
//! values that depend on each other and derives the rest.
//!
//! The values of secrets (`DATABASE_URL`, `KEYWARD_MIGRATE_URL`, `KEYWARD_SECRET`,
//! `KEYWARD_METRICS_TOKEN`) are never printed, not even by `--help` (`hide_env_values`).

use std::{
    io,
    net::SocketAddr,
    path::{Path, PathBuf},
    str::FromStr,
    time::Duration,
};

use base64::{Engine, engine::general_purpose::STANDARD as BASE64};

use crate::{
    domain::client_ip::TrustForwarded, metrics::MetricsToken, secrets::MasterSecret,
    services::notifications::smtp::SmtpSettings,
};

/// The configuration as given: one option per environment variable.
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Configuration (each option also reads the environment variable shown)")]
pub struct ConfigArgs {
    /// PostgreSQL server to use (libpq URL or key=value string); with it, nothing is seeded.
    /// Unset: the embedded private cluster in KEYWARD_DATA_DIR.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true, value_name = "URL")]
    pub database_url: Option<String>,
    /// With DATABASE_URL: the owner of the tables, for migrations, purge-audit and
    /// grant-app-role, so that DATABASE_URL can name a least-privileged role. Unset: DATABASE_URL.
    #[arg(long, env = "KEYWARD_MIGRATE_URL", hide_env_values = true, value_name = "URL")]
    pub migrate_url: Option<String>,
    /// Listen address.
    #[arg(long, env = "KEYWARD_ADDR", value_name = "HOST:PORT", default_value = "127.0.0.1:8080",
          value_parser = parsed::<SocketAddr>("KEYWARD_ADDR", "an address such as 127.0.0.1:8080"))]
    pub addr: SocketAddr,
    /// The address browsers use (https://keys.example.com): forms are accepted only from its
    /// origin, and absolute links are built on it. Unset: the request's host.
    #[arg(long, env = "KEYWARD_PUBLIC_URL", value_name = "URL", value_parser = public_origin)]
    pub public_url: Option<String>,
    /// Embedded cluster and generated secrets.
    #[arg(long, env = "KEYWARD_DATA_DIR", value_name = "DIR", default_value = "./keyward-data")]
    pub data_dir: PathBuf,
    /// Master secret (≥ 32 bytes, base64) from which the key pepper and the cookie key are
    /// derived. Unset: generated into the data dir in embedded mode; required with DATABASE_URL.
    // Decoded in `Config::from_args`, not by clap: clap's error would quote the value.
    #[arg(long, env = "KEYWARD_SECRET", hide_env_values = true, value_name = "BASE64")]
    pub secret: Option<String>,
    /// Send cookies with Secure. Unset: true, except in embedded mode on a loopback address.
    #[arg(long, env = "KEYWARD_COOKIE_SECURE", value_name = "BOOL", action = clap::ArgAction::Set,
          value_parser = boolean("KEYWARD_COOKIE_SECURE"))]
    pub cookie_secure: Option<bool>,
    /// Behind a proxy, the header it sets: x-forwarded-for or forwarded (only that header's
    /// last entry is trusted).
    #[arg(long, env = "KEYWARD_TRUST_FORWARDED", value_name = "HEADER", default_value = "false",
          value_parser = trust_forwarded)]
    pub trust_forwarded: TrustForwarded,
    /// Database connections per instance.
    #[arg(long, env = "KEYWARD_POOL_SIZE", value_name = "N", default_value = "10",
          value_parser = at_least_one::<u32>("KEYWARD_POOL_SIZE"))]
    pub pool_size: u32,
    /// Longest wait for a pooled connection before answering 503.
    #[arg(long, env = "KEYWARD_DB_CHECKOUT_TIMEOUT_MS", value_name = "MS", default_value = "3000",
          value_parser = parsed::<u64>("KEYWARD_DB_CHECKOUT_TIMEOUT_MS", "a number of milliseconds"))]
    pub db_checkout_timeout_ms: u64,
    /// Longest a single SQL statement may run.
    #[arg(long, env = "KEYWARD_STATEMENT_TIMEOUT_MS", value_name = "MS", default_value = "5000",
          value_parser = parsed::<u64>("KEYWARD_STATEMENT_TIMEOUT_MS", "a number of milliseconds"))]
    pub statement_timeout_ms: u64,
    /// Sign out after this long without a request.
    #[arg(long, env = "KEYWARD_SESSION_IDLE_MINUTES", value_name = "MINUTES", default_value = "30",
          value_parser = parsed::<u64>("KEYWARD_SESSION_IDLE_MINUTES", "a number of minutes"))]
    pub session_idle_minutes: u64,
    /// Sign out this long after sign-in, whatever happens.
    #[arg(long, env = "KEYWARD_SESSION_MAX_HOURS", value_name = "HOURS", default_value = "12",
          value_parser = parsed::<u64>("KEYWARD_SESSION_MAX_HOURS", "a number of hours"))]
    pub session_max_hours: u64,
    /// HTTP worker threads. Unset: the number of CPUs.
    #[arg(long, env = "KEYWARD_WORKERS", value_name = "N",
          value_parser = at_least_one::<usize>("KEYWARD_WORKERS"))]
    pub workers: Option<usize>,
    /// Password hashes computed at once; each hashing thread keeps its 19 MiB of argon2
    /// working memory. Unset: the number of CPUs.
    #[arg(long, env = "KEYWARD_PASSWORD_HASHERS", value_name = "N",
          value_parser = at_least_one::<usize>("KEYWARD_PASSWORD_HASHERS"))]
    pub password_hashers: Option<usize>,
    /// Serve known keys from memory (off only for measurements).
    #[arg(long, env = "KEYWARD_VERIFY_CACHE", value_name = "BOOL", default_value = "true",
          action = clap::ArgAction::Set, value_parser = boolean("KEYWARD_VERIFY_CACHE"))]
    pub verify_cache: bool,
    /// Run due background jobs (the stale-key policy, …) in this server every minute; false
    /// leaves them to `keyward run-jobs` from cron. Any number of instances may run them.
    #[arg(long, env = "KEYWARD_RUN_JOBS", value_name = "BOOL", default_value = "true",
          action = clap::ArgAction::Set, value_parser = boolean("KEYWARD_RUN_JOBS"))]
    pub run_jobs: bool,
    /// Invalid verification attempts allowed per client address per minute.
    #[arg(long, env = "KEYWARD_VERIFY_INVALID_PER_MINUTE", value_name = "N", default_value = "60",
          value_parser = parsed::<u32>("KEYWARD_VERIFY_INVALID_PER_MINUTE", "a whole number"))]
    pub verify_invalid_per_minute: u32,
    /// Requests each management token may make per minute, counted across all instances.
    #[arg(long, env = "KEYWARD_MANAGEMENT_RATE_PER_MINUTE", value_name = "N", default_value = "600",
          value_parser = at_least_one::<u32>("KEYWARD_MANAGEMENT_RATE_PER_MINUTE"))]
    pub management_rate_per_minute: u32,
    /// Bearer token for GET /metrics (Prometheus text format). Unset: there is no /metrics
    /// (it answers 404 like any unknown page).
    #[arg(long, env = "KEYWARD_METRICS_TOKEN", hide_env_values = true, value_name = "TOKEN")]
    pub metrics_token: Option<String>,
    /// Count verifications per key and hour (by outcome, action, secret, client address) for
    /// the key pages (off only to measure what counting costs).
    #[arg(long, env = "KEYWARD_USAGE_RECORDING", value_name = "BOOL", default_value = "true",
          action = clap::ArgAction::Set, value_parser = boolean("KEYWARD_USAGE_RECORDING"))]
    pub usage_recording: bool,
    /// Keep hourly usage counts this many days; older ones are rolled up per day.
    #[arg(long, env = "KEYWARD_USAGE_HOURLY_DAYS", value_name = "DAYS", default_value = "90",
          value_parser = at_least_one::<u32>("KEYWARD_USAGE_HOURLY_DAYS"))]
    pub usage_hourly_days: u32,
    /// Keep daily usage counts this many months.
    #[arg(long, env = "KEYWARD_USAGE_DAILY_MONTHS", value_name = "MONTHS", default_value = "13",
          value_parser = at_least_one::<u32>("KEYWARD_USAGE_DAILY_MONTHS"))]
    pub usage_daily_months: u32,
    /// Let webhook endpoints be on loopback, link-local and private addresses (a receiver on
    /// this machine or the internal network); refused by default, checked on every delivery.
    #[arg(long, env = "KEYWARD_WEBHOOK_ALLOW_PRIVATE", value_name = "BOOL", default_value = "false",
          action = clap::ArgAction::Set, value_parser = boolean("KEYWARD_WEBHOOK_ALLOW_PRIVATE"))]
    pub webhook_allow_private: bool,
    /// Directory of the PostgreSQL server binaries for the embedded cluster. Unset:
    /// `pg_config --bindir`, else the newest /usr/lib/postgresql/*/bin.
    #[arg(long, env = "KEYWARD_PG_BIN", value_name = "DIR")]
    pub pg_bin: Option<PathBuf>,
    /// SMTP relay to send mail through, in lettre's URL syntax: smtp://relay:25 (plain),
    /// smtp://user:password@relay:587?tls=required (STARTTLS), smtps://relay:465. Unset: mail
    /// is only shown in the browser (Admin → Notifications, Staff → Notifications).
    #[arg(long, env = "KEYWARD_SMTP_URL", hide_env_values = true, value_name = "URL")]
    pub smtp_url: Option<String>,
    /// The sender of the mail sent over SMTP.
    #[arg(long, env = "KEYWARD_MAIL_FROM", value_name = "MAILBOX", default_value = crate::services::notifications::smtp::DEFAULT_FROM)]
    pub mail_from: String,
}

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
    /// Run due background jobs in the server (see `jobs`).
    pub run_jobs: bool,
    pub invalid_attempts_per_minute: u32,
    /// Requests per management token per minute, across all instances.
    pub management_rate_per_minute: u32,
    /// The token `GET /metrics` asks for; none: no metrics page.
    pub metrics_token: Option<MetricsToken>,
    pub usage_recording: bool,
    /// How long usage counts are kept (applied by `services::usage::prune`).
    pub usage_retention: crate::services::usage::Retention,
    /// Where the embedded cluster's server binaries are, if given.
    pub pg_bin: Option<PathBuf>,
    /// The SMTP relay and sender (`KEYWARD_SMTP_URL`, `KEYWARD_MAIL_FROM`); none: mail stays
    /// in the browser's outbox.
    pub mail: Option<SmtpSettings>,
    /// Webhook endpoints may be on private addresses (`KEYWARD_WEBHOOK_ALLOW_PRIVATE`).
    pub webhook_allow_private: bool,
}

/// A configuration problem, worded for the operator.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(
        "KEYWARD_SECRET is required when DATABASE_URL is set: generate one with \
         `head -c 32 /dev/urandom | base64` and keep it safe (keys cannot be verified without it)."
    )]
    SecretRequired,
    #[error("KEYWARD_MIGRATE_URL goes with DATABASE_URL; the embedded cluster manages its own roles.")]
    MigrateUrlWithoutDatabase,
    /// `KEYWARD_SMTP_URL` or `KEYWARD_MAIL_FROM` is unusable (the message never quotes the URL).
    #[error("{0}")]
    Mail(String),
    /// `KEYWARD_SECRET` is not a usable secret (the message never quotes it).
    #[error("{0}")]
    Secret(String),
    /// The secret stored in the data directory cannot be used.
    #[error("{}: {message}", path.display())]
    StoredSecret { path: PathBuf, message: String },
    #[error("cannot {action} {}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

impl Config {
    /// Checks the values that depend on each other and derives the defaults that depend on
    /// the mode (each value on its own was checked while parsing).
    pub fn from_args(args: ConfigArgs) -> Result<Self, ConfigError> {
        // A variable set but blank (as compose files leave unset ones) counts as unset.
        let present = |value: Option<String>| value.filter(|v| !v.trim().is_empty());
        let database = match present(args.database_url) {
            Some(url) => DatabaseSource::External(url),
            None => DatabaseSource::Embedded,
        };
        let embedded = matches!(database, DatabaseSource::Embedded);
        let secret = present(args.secret).map(|text| MasterSecret::from_base64(&text)).transpose();
        let secret = secret.map_err(ConfigError::Secret)?;
        if secret.is_none() && !embedded {
            return Err(ConfigError::SecretRequired);
        }
        let migrate_url = present(args.migrate_url);
        if migrate_url.is_some() && embedded {
            return Err(ConfigError::MigrateUrlWithoutDatabase);
        }
        let mail = present(args.smtp_url)
            .map(|url| SmtpSettings::parse(&url, &args.mail_from))
            .transpose()
            .map_err(ConfigError::Mail)?;
        let embedded_loopback = embedded && args.addr.ip().is_loopback();
        // One hash keeps one core busy, so more hashers than cores only add memory (19 MiB
        // each) and latency, never throughput.
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
        Ok(Self {
            database,
            migrate_url,
            addr: args.addr,
            public_origin: args.public_url,
            data_dir: args.data_dir,
            secret,
            cookie_secure: args.cookie_secure.unwrap_or(!embedded_loopback),
            trust_forwarded: args.trust_forwarded,
            pool_size: args.pool_size,
            db_checkout_timeout: Duration::from_millis(args.db_checkout_timeout_ms.max(1)),
            statement_timeout: Duration::from_millis(args.statement_timeout_ms.max(1)),
            session_idle: Duration::from_secs(args.session_idle_minutes.max(1) * 60),
            session_max: Duration::from_secs(args.session_max_hours.max(1) * 3600),
            workers: args.workers,
            password_hashers: args.password_hashers.unwrap_or(cores),
            verify_cache: args.verify_cache,
            run_jobs: args.run_jobs,
            invalid_attempts_per_minute: args.verify_invalid_per_minute,
            management_rate_per_minute: args.management_rate_per_minute,
            metrics_token: present(args.metrics_token).map(|token| MetricsToken::new(token.trim())),
            usage_recording: args.usage_recording,
            usage_retention: crate::services::usage::Retention {
                hourly_days: args.usage_hourly_days,
                daily_months: args.usage_daily_months,
            },
            pg_bin: args.pg_bin,
            mail,
            webhook_allow_private: args.webhook_allow_private,
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

/// A value parser for `T` whose error names the variable and what it expects.
fn parsed<T: FromStr + Clone + Send + Sync + 'static>(
    name: &'static str,
    expected: &'static str,
) -> impl Fn(&str) -> Result<T, String> + Clone + Send + Sync + 'static {
    move |value| value.trim().parse().map_err(|_| format!("{name} must be {expected}"))
}

/// A value parser for a count that must be at least 1.
fn at_least_one<T: FromStr + PartialOrd + From<u8> + Clone + Send + Sync + 'static>(
    name: &'static str,
) -> impl Fn(&str) -> Result<T, String> + Clone + Send + Sync + 'static {
    move |value| match value.trim().parse::<T>() {
        Ok(n) if n >= T::from(1) => Ok(n),
        _ => Err(format!("{name} must be a whole number, at least 1")),
    }
}

/// A value parser for the spellings of true and false operators use.
fn boolean(name: &'static str) -> impl Fn(&str) -> Result<bool, String> + Clone + Send + Sync + 'static {
    move |value| match value.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(format!("{name} must be true or false")),
    }
}

fn trust_forwarded(value: &str) -> Result<TrustForwarded, String> {
    TrustForwarded::parse(value).ok_or_else(|| {
        "KEYWARD_TRUST_FORWARDED must be false, x-forwarded-for or forwarded (the header your proxy sets)".into()
    })
}

/// The origin of `KEYWARD_PUBLIC_URL`: its scheme and authority, without path.
fn public_origin(url: &str) -> Result<String, String> {
    let url = url.trim();
    let invalid =
        || "KEYWARD_PUBLIC_URL must be an http:// or https:// address such as https://keys.example.com".to_string();
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
        return MasterSecret::from_base64(text.trim())
            .map_err(|message| ConfigError::StoredSecret { path: path.to_owned(), message });
    }
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|source| ConfigError::Io {
            action: "create",
            path: parent.to_owned(),
            source,
        })?;
    }
    let secret = MasterSecret::generate();
    write_private_file(path, &BASE64.encode(secret.as_bytes())).map_err(|source| ConfigError::Io {
        action: "write",
        path: path.to_owned(),
        source,
    })?;
    Ok(secret)
}

fn write_private_file(path: &Path, contents: &str) -> io::Result<()> {
    use std::{io::Write, os::unix::fs::OpenOptionsExt};
    let mut file = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)?;
    file.write_all(contents.as_bytes())?;
    file.write_all(b"\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The configuration from these options alone: the test process's environment is
    /// ignored, so a developer's `DATABASE_URL` cannot change the outcome.
    fn config(options: &[&str]) -> Result<Config, String> {
        let args = crate::cli::Cli::try_parse_ignoring_env(std::iter::once("keyward").chain(options.iter().copied()))
            .map_err(|e| e.to_string())?;
        Config::from_args(args.config).map_err(|e| e.to_string())
    }

    #[test]
    fn embedded_mode_on_loopback_defaults_to_plain_http_cookies() {
        let config = config(&[]).unwrap();
        assert!(matches!(config.database, DatabaseSource::Embedded));
        assert_eq!(config.addr.to_string(), "127.0.0.1:8080");
        assert_eq!(config.data_dir, PathBuf::from("./keyward-data"));
        assert_eq!((config.pool_size, config.invalid_attempts_per_minute), (10, 60));
        assert_eq!(config.management_rate_per_minute, 600);
        assert_eq!(config.db_checkout_timeout, Duration::from_secs(3));
        assert_eq!(config.session_max, Duration::from_secs(12 * 3600));
        assert!(!config.cookie_secure);
        assert!(config.verify_cache);
    }

    #[test]
    fn an_external_database_requires_a_master_secret() {
        let error = config(&["--database-url", "postgres://db/keyward"]).unwrap_err();
        assert!(error.contains("KEYWARD_SECRET is required"), "{error}");
    }

    #[test]
    fn an_external_database_defaults_to_secure_cookies() {
        let secret = BASE64.encode([7u8; 32]);
        let config = config(&["--database-url", "postgres://db/keyward", "--secret", &secret]).unwrap();
        assert!(config.cookie_secure);
    }

    #[test]
    fn a_blank_database_url_means_the_embedded_cluster() {
        let config = config(&["--database-url", " "]).unwrap();
        assert!(matches!(config.database, DatabaseSource::Embedded));
    }

    #[test]
    fn a_short_secret_is_refused() {
        let secret = BASE64.encode([7u8; 16]);
        let error = config(&["--secret", &secret]).unwrap_err();
        assert!(error.contains("32 bytes"), "{error}");
    }

    #[test]
    fn the_public_url_gives_the_origin_forms_must_come_from() {
        let parsed = config(&["--public-url", "HTTPS://Keys.Example.com/admin/"]).unwrap();
        assert_eq!(parsed.public_origin.as_deref(), Some("https://keys.example.com"));
        for bad in ["keys.example.com", "ftp://keys.example.com", "https://", "https://u@evil.example"] {
            let error = config(&["--public-url", bad]).unwrap_err();
            assert!(error.contains("KEYWARD_PUBLIC_URL"), "{bad}: {error}");
        }
    }

    #[test]
    fn metrics_need_a_token_that_is_kept_out_of_debug_output() {
        assert!(config(&[]).unwrap().metrics_token.is_none());
        assert!(config(&["--metrics-token", "  "]).unwrap().metrics_token.is_none(), "blank is unset");
        let config = config(&["--metrics-token", "scrape-me-please"]).unwrap();
        assert!(config.metrics_token.as_ref().is_some_and(|t| t.matches("scrape-me-please")));
        assert!(!format!("{config:?}").contains("scrape-me-please"));
    }

    #[test]
    fn password_hashers_default_to_the_cores_and_cannot_be_zero() {
        let cores = std::thread::available_parallelism().unwrap().get();
        assert_eq!(config(&[]).unwrap().password_hashers, cores);
        assert_eq!(config(&["--password-hashers", "3"]).unwrap().password_hashers, 3);
        let error = config(&["--password-hashers", "0"]).unwrap_err();
        assert!(error.contains("KEYWARD_PASSWORD_HASHERS"), "{error}");
    }

    #[test]
    fn bad_values_name_the_variable() {
        for (option, value, variable) in [
            ("--pool-size", "many", "KEYWARD_POOL_SIZE"),
            ("--pool-size", "0", "KEYWARD_POOL_SIZE"),
            ("--addr", "localhost", "KEYWARD_ADDR"),
            ("--cookie-secure", "maybe", "KEYWARD_COOKIE_SECURE"),
            ("--trust-forwarded", "true", "KEYWARD_TRUST_FORWARDED"),
            ("--session-idle-minutes", "soon", "KEYWARD_SESSION_IDLE_MINUTES"),
        ] {
            let error = config(&[option, value]).unwrap_err();
            assert!(error.contains(variable), "{option} {value}: {error}");
        }
    }
}
