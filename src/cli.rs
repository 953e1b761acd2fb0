//! The command line: `keyward [serve]`, `migrate`, `seed-demo`, and the operator commands,
//! with the configuration options (each also an environment variable, see `config`).

use std::ffi::OsString;

use clap::{ArgMatches, CommandFactory, FromArgMatches, Parser, Subcommand};

use crate::config::ConfigArgs;

/// Keyward: self-hosted, multi-tenant API key management.
///
/// With no DATABASE_URL, every command uses the embedded PostgreSQL cluster in
/// KEYWARD_DATA_DIR (./keyward-data), starting it if needed. Every option below also reads
/// the environment variable shown with it, and a .env file in the working directory.
#[derive(Debug, Parser)]
#[command(name = "keyward", version, about, long_about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub config: ConfigArgs,
    /// Log filter (env_logger syntax, e.g. info,keyward=debug).
    #[arg(long = "log", env = "RUST_LOG", value_name = "FILTER", default_value = "info")]
    pub log_filter: String,
}

impl Cli {
    /// The command line and the environment (load `.env` first); on a bad value, prints
    /// clap's message naming the option and its variable, and exits.
    pub fn parse_with_env() -> Self {
        let mut command = without_blank_variables(Self::command());
        let matches = command.get_matches_mut();
        Self::from_matches(&mut command, &matches).unwrap_or_else(|error| error.exit())
    }

    /// The command line alone, the environment ignored: for tests of the parsing.
    pub fn try_parse_ignoring_env<I, T>(args: I) -> Result<Self, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString> + Clone,
    {
        let mut command = Self::command().mut_args(|arg| arg.env(None));
        let matches = command.try_get_matches_from_mut(args)?;
        Self::from_matches(&mut command, &matches)
    }

    fn from_matches(command: &mut clap::Command, matches: &ArgMatches) -> Result<Self, clap::Error> {
        Self::from_arg_matches(matches).map_err(|error| error.format(command))
    }
}

/// A configuration variable that is set but blank counts as unset, as it did before clap read
/// them: deployment files often pass a variable through empty (`KEYWARD_PUBLIC_URL=${URL}`),
/// and that should mean the default, not an invalid value.
fn without_blank_variables(command: clap::Command) -> clap::Command {
    command.mut_args(|arg| {
        let blank = arg
            .get_env()
            .and_then(std::env::var_os)
            .is_some_and(|value| value.to_str().is_some_and(|v| v.trim().is_empty()));
        if blank { arg.env(None) } else { arg }
    })
}

/// The password of an account a command creates.
#[derive(Debug, clap::Args)]
pub struct PasswordArg {
    /// The new account's password; prefer the variable, since a command line is visible to
    /// other users of the machine. Unset: asked twice at the terminal.
    #[arg(long, env = "KEYWARD_PASSWORD", hide_env_values = true, value_name = "PASSWORD")]
    pub password: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the web application and the API (the default).
    Serve,
    /// Apply pending database migrations, then exit.
    Migrate,
    /// Seed the demo data set (a service provider, two organizations, users, assets, a staff
    /// account); with --users/--keys, also fill an organization with that many more.
    SeedDemo {
        /// Add this many users (demo password) to the organization.
        #[arg(long, default_value_t = 0)]
        users: usize,
        /// Add this many keys (personal keys of users with API key access, and organization keys).
        #[arg(long, default_value_t = 0)]
        keys: usize,
        /// The organization to fill (its slug).
        #[arg(long, default_value = crate::services::demo::DEMO_ORG_SLUG)]
        org: String,
        /// Give the added users the demo password (otherwise they cannot sign in until
        /// someone sets their password): never on an organization with real people.
        #[arg(long)]
        demo_password: bool,
    },
    /// Create a support staff account. Password from KEYWARD_PASSWORD or a prompt.
    CreateStaff {
        #[arg(long)]
        email: String,
        /// Display name (defaults to the part of the email before @).
        #[arg(long)]
        name: Option<String>,
        #[command(flatten)]
        password: PasswordArg,
    },
    /// Remove the second factors (authenticator app, recovery codes) of the staff account or
    /// web user with this email and end its sessions: for someone who lost every factor.
    ResetSecondFactor {
        #[arg(long)]
        email: String,
    },
    /// Create a web user in an organization. Password from KEYWARD_PASSWORD or a prompt.
    CreateUser {
        /// The organization's slug.
        #[arg(long)]
        org: String,
        #[arg(long)]
        email: String,
        /// Display name (defaults to the part of the email before @).
        #[arg(long)]
        name: Option<String>,
        /// Make the user an organization administrator.
        #[arg(long)]
        admin: bool,
        /// Grant API key access.
        #[arg(long)]
        api_key_access: bool,
        #[command(flatten)]
        password: PasswordArg,
    },
    /// Create a personal API key for a user and print it (the key alone) on stdout.
    CreateKey {
        /// The organization's slug.
        #[arg(long)]
        org: String,
        /// Email of the user who owns the key (they need API key access).
        #[arg(long)]
        owner: String,
        /// Descriptive name of the key.
        #[arg(long)]
        name: String,
        /// Comma-separated API actions (default: all actions the owner may grant).
        #[arg(long, value_delimiter = ',')]
        actions: Option<Vec<String>>,
        /// Lifetime in days (default: the organization's default lifetime).
        #[arg(long)]
        expires_in_days: Option<u32>,
        /// Create a `test` key instead of a `live` one.
        #[arg(long)]
        test: bool,
    },
    /// Create a management token (for the management API) and print it (the token alone) on
    /// stdout. It acts with the rights of --creator (default: the organization's first
    /// administrator; for --provider, the first active staff account), within its scopes.
    CreateManagementToken {
        /// The organization's slug.
        #[arg(long, required_unless_present = "provider", conflicts_with = "provider")]
        org: Option<String>,
        /// A service provider's id instead: a token for the provider's keys (scopes keys:read,
        /// keys:write), acting as the staff account --creator.
        #[arg(long)]
        provider: Option<i64>,
        /// Descriptive name of the token.
        #[arg(long)]
        name: String,
        /// Comma-separated scopes: keys:read, keys:write, users:read, users:access, audit:read.
        #[arg(long, value_delimiter = ',', required = true)]
        scopes: Vec<String>,
        /// Lifetime in days (default 90, at most 365).
        #[arg(long)]
        expires_in_days: Option<u32>,
        /// Email of the administrator (or, with --provider, the staff account) whose rights
        /// the token uses.
        #[arg(long)]
        creator: Option<String>,
    },
    /// Remove the audit events that occurred before a date, and record the purge in the log.
    /// Runs as the owner of the tables (KEYWARD_MIGRATE_URL, else DATABASE_URL).
    PurgeAudit {
        /// The cutoff: a date (YYYY-MM-DD, midnight UTC) or an RFC 3339 timestamp.
        #[arg(long)]
        before: String,
    },
    /// Grant an existing database role what the application needs to run as it (rows of
    /// every table; the audit log read and append only), as the owner of the tables.
    GrantAppRole {
        /// The role the server will connect as (it must not own the tables).
        #[arg(long)]
        role: String,
    },
    /// Run every background job that is due (the stale-key policy, …) once, then exit: for
    /// cron, tests and the demo. Servers run due jobs themselves every minute; any number of
    /// runners never run one job twice for the same period.
    RunJobs,
    /// Create a client organization.
    CreateOrg {
        #[arg(long)]
        name: String,
        /// URL-friendly identifier (derived from the name when omitted).
        #[arg(long)]
        slug: Option<String>,
        /// Id of the service provider the organization belongs to.
        #[arg(long)]
        provider: Option<i64>,
    },
}
