//! What each command-line command does. Every command opens the database the same way
//! (embedded cluster or `DATABASE_URL`), applies pending migrations, and reports problems as
//! one clear sentence with a non-zero exit.

mod accounts;
mod audit;
mod database;
mod jobs;
mod keys;
mod serve;

use anyhow::anyhow;

use crate::{
    cli::{Cli, Command},
    config::Config,
    error::AppError,
};

pub use database::DatabaseHandle;

/// Runs the parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    let config = Config::from_args(cli.config)?;
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve::serve(config),
        Command::Migrate => {
            let db = DatabaseHandle::open(&config)?;
            let applied = db.migrate()?;
            if applied.is_empty() {
                println!("The database is up to date.");
            } else {
                for name in applied {
                    println!("applied {name}");
                }
            }
            Ok(())
        }
        Command::SeedDemo { users, keys, org, demo_password } => {
            let db = DatabaseHandle::open(&config)?;
            db.migrate()?;
            let volume = users > 0 || keys > 0;
            // Filling another organization does not need (or get) the demo data set.
            if !volume || org == crate::services::demo::DEMO_ORG_SLUG {
                if db.seed_demo()? {
                    println!("Seeded the demo data set.");
                } else {
                    println!("The demo data set is already present.");
                }
            }
            if volume {
                db.seed_volume(&config, &org, crate::services::demo_volume::Volume { users, keys }, demo_password)?;
            }
            print!("{}", crate::services::demo::credentials_text(&format!("http://{}", config.addr)));
            Ok(())
        }
        Command::CreateStaff { email, name, password } => {
            accounts::create_staff(&config, &email, name, password.password)
        }
        Command::ResetSecondFactor { email } => accounts::reset_second_factor(&config, &email),
        Command::CreateUser { org, email, name, admin, api_key_access, password } => {
            accounts::create_user(&config, &org, &email, name, admin, api_key_access, password.password)
        }
        Command::PurgeAudit { before } => audit::purge_audit(&config, &before),
        Command::GrantAppRole { role } => {
            let db = DatabaseHandle::open(&config)?;
            db.migrate()?;
            db.grant_app_role(&role)?;
            println!("Granted {role} what the application needs; serve with DATABASE_URL naming {role}.");
            Ok(())
        }
        Command::RunJobs => jobs::run_jobs(&config),
        Command::CreateOrg { name, slug, provider } => accounts::create_org(&config, name, slug, provider),
        Command::CreateManagementToken { org, provider, name, scopes, expires_in_days, creator } => {
            let holder = match (org, provider) {
                (_, Some(provider)) => keys::TokenFor::Provider(provider),
                (Some(org), None) => keys::TokenFor::Organization(org),
                (None, None) => return Err(anyhow!("give --org SLUG or --provider ID")),
            };
            keys::create_management_token(
                &config,
                keys::CreateTokenArgs { holder, name, scopes, expires_in_days, creator },
            )
        }
        Command::CreateKey { org, owner, name, actions, expires_in_days, test } => {
            keys::create_key(&config, keys::CreateKeyArgs { org, owner, name, actions, expires_in_days, test })
        }
    }
}

/// A service's refusal as the one sentence an operator needs: the validation messages or the
/// conflict itself, without the category a log line would start with.
fn refused(error: AppError) -> anyhow::Error {
    match error {
        AppError::Invalid(errors) => anyhow!(errors.iter().map(|(_, m)| m).collect::<Vec<_>>().join(" ")),
        AppError::Conflict(message) | AppError::BadRequest(message) => anyhow!(message),
        AppError::Forbidden => anyhow!("not allowed"),
        other => other.into(),
    }
}
