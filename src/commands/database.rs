//! Opening the database for a command: the embedded cluster (started if needed, stopped
//! again afterwards if this command started it) or the server of `DATABASE_URL`.

use anyhow::{Context, anyhow, bail};
use diesel::{OptionalExtension, RunQueryDsl};

use crate::{
    config::{Config, DatabaseSource},
    db::{self, models::Organization, privileges},
    devdb::{self, Durability, EmbeddedCluster},
    domain::NewPassword,
    keys::KeyHasher,
    services::{demo, demo_volume},
};

/// The database a command works on, and the two roles it is reached as.
#[derive(Debug)]
pub struct DatabaseHandle {
    /// What the server and the commands connect as: in embedded mode the least-privileged
    /// [`privileges::APP_ROLE`], otherwise `DATABASE_URL`.
    pub url: String,
    /// The tables' owner, for migrations, statistics and the audit purge: in embedded mode
    /// the cluster's superuser, otherwise `KEYWARD_MIGRATE_URL` or else `DATABASE_URL`.
    pub owner_url: String,
    cluster: Option<EmbeddedCluster>,
}

impl DatabaseHandle {
    pub fn open(config: &Config) -> anyhow::Result<Self> {
        match &config.database {
            DatabaseSource::External(url) => Ok(Self {
                url: url.clone(),
                owner_url: config.migrate_url.clone().unwrap_or_else(|| url.clone()),
                cluster: None,
            }),
            DatabaseSource::Embedded => {
                let cluster =
                    EmbeddedCluster::start_with(&config.data_dir, Durability::Durable, config.pg_bin.as_deref())?;
                Ok(Self {
                    url: cluster.connection_string_as(devdb::DATABASE_NAME, privileges::APP_ROLE),
                    owner_url: cluster.connection_string(devdb::DATABASE_NAME),
                    cluster: Some(cluster),
                })
            }
        }
    }

    pub fn is_embedded(&self) -> bool {
        self.cluster.is_some()
    }

    /// Applies pending migrations as the owner; returns the names of those applied. With
    /// nothing pending it changes nothing, so a server whose `DATABASE_URL` may not change
    /// the schema starts once `keyward migrate` has run as the owner. In embedded mode it
    /// then (re)creates the application's role and its grants.
    pub fn migrate(&self) -> anyhow::Result<Vec<String>> {
        let mut conn = db::connect(&self.owner_url)?;
        let applied =
            if db::pending_migrations(&mut conn)?.is_empty() { Vec::new() } else { db::run_migrations(&mut conn)? };
        if self.is_embedded() {
            privileges::ensure_login_role(&mut conn, privileges::APP_ROLE)
                .and_then(|()| privileges::grant_app_role(&mut conn, privileges::APP_ROLE))
                .context("cannot set up the application's database role")?;
        }
        Ok(applied)
    }

    /// Grants `role` the application's privileges (run as the owner; see `db::privileges`).
    pub fn grant_app_role(&self, role: &str) -> anyhow::Result<()> {
        let mut conn = db::connect(&self.owner_url)?;
        let usable = privileges::is_distinct_from_owner(&mut conn, role).context("cannot look up the role")?;
        if !usable {
            bail!(
                "{role:?} must be an existing role that is no superuser and does not own the tables \
                 (create it with CREATE ROLE {role} LOGIN PASSWORD '…')"
            );
        }
        privileges::grant_app_role(&mut conn, role).with_context(|| format!("cannot grant {role}"))
    }

    /// Seeds the demo data unless present; returns whether it seeded.
    pub fn seed_demo(&self) -> anyhow::Result<bool> {
        let mut conn = db::connect(&self.url)?;
        if demo::is_seeded(&mut conn).context("cannot tell whether the demo data is present")? {
            return Ok(false);
        }
        let password = NewPassword::parse(demo::DEMO_PASSWORD).expect("the demo password satisfies the policy");
        let hash = crate::auth::password::hash_now(&password);
        demo::seed(&mut conn, &hash).context("cannot seed the demo data set")
    }

    /// Adds `volume` users and keys to the organization `slug` (see `demo_volume`).
    pub fn seed_volume(
        &self,
        config: &Config,
        slug: &str,
        volume: demo_volume::Volume,
        demo_password: bool,
    ) -> anyhow::Result<()> {
        let started = std::time::Instant::now();
        let secret = config.resolve_secret()?;
        let hasher = KeyHasher::new(secret.derive().key_pepper);
        let mut conn = db::connect(&self.url)?;
        let organization = Organization::find_by_slug(&mut conn, slug)
            .optional()
            .context("cannot look up the organization")?
            .ok_or_else(|| anyhow!("there is no organization with slug {slug:?}"))?;
        let hash = demo_password.then(|| {
            let password = NewPassword::parse(demo::DEMO_PASSWORD).expect("the demo password satisfies the policy");
            crate::auth::password::hash_now(&password)
        });
        let seed = u64::from(started.elapsed().subsec_nanos()) ^ 0x6b65_7977_6172_6421;
        let added = demo_volume::fill(&mut conn, &hasher, &organization, hash.as_deref(), volume, seed)
            .map_err(super::refused)?;
        // Fresh statistics, so the first queries after a bulk load get good plans (only the
        // owner may gather them).
        diesel::sql_query("ANALYZE").execute(&mut db::connect(&self.owner_url)?).context("cannot gather statistics")?;
        println!(
            "Added {} users, {} keys and {} audit events to {slug} in {:.1} s.",
            added.users,
            added.keys,
            added.audit_events,
            started.elapsed().as_secs_f64()
        );
        Ok(())
    }

    /// Stops the embedded cluster if this process started it.
    pub fn close(&mut self) {
        if let Some(cluster) = self.cluster.as_mut() {
            cluster.stop();
        }
    }
}

impl Drop for DatabaseHandle {
    fn drop(&mut self) {
        self.close();
    }
}
