//! `run-jobs`: runs every background job that is due once, then sends the webhooks that are
//! due, and exits (for cron, tests and the demo), on the system clock.

use anyhow::bail;

use crate::{
    clock::Clock,
    config::Config,
    db, jobs,
    services::notifications::{smtp::Mailer, webhooks::WebhookSender},
};

use super::DatabaseHandle;

pub fn run_jobs(config: &Config) -> anyhow::Result<()> {
    crate::services::usage::configure_retention(config.usage_retention);
    // Webhook secrets are sealed under a key derived from the master secret.
    let sender = WebhookSender::new(&config.resolve_secret()?.derive(), config.webhook_allow_private);
    let handle = DatabaseHandle::open(config)?;
    handle.migrate()?;
    // As the application's role, like the server's runners: jobs change rows, never the schema.
    let mut conn = db::connect(&handle.url)?;
    // Links in mail are built on the public URL; without one, on the configured address.
    let base = config.public_origin.clone().unwrap_or_else(|| format!("http://{}", config.addr));
    let mailer = config.mail.as_ref().map(|smtp| Mailer::new(smtp, &base)).transpose().map_err(anyhow::Error::msg)?;
    let runs = jobs::run_due_and_send(&mut conn, Clock::system().now(), mailer.as_ref())?;
    for run in &runs {
        println!("{run}");
    }
    // The webhooks the jobs made due (and earlier ones due for a retry), each in its own
    // transaction: after the jobs, so that one run delivers what it wrote.
    let sent = sender.send_due(&mut conn, Clock::system().now(), None)?;
    println!("send-webhooks: {sent}");
    let failed = runs.iter().filter(|run| matches!(run.outcome, jobs::Outcome::Failed(_))).count();
    if failed > 0 {
        bail!("{failed} job(s) failed; they stay due and run again next time");
    }
    Ok(())
}
