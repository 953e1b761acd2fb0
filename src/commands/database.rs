//! Opening the database for a command: the embedded cluster (started if needed, stopped
//! again afterwards if this command started it) or the server of `DATABASE_URL`.

use diesel::{OptionalExtension, RunQueryDsl};

use crate::{
    config::{Config, DatabaseSource},
    db::{self, models::Organization},
    devdb::{self, Durability, EmbeddedCluster},
    domain::NewPassword,
    keys::KeyHasher,
    services::{demo, demo_volume},
};

/// The database a command works on.
#[derive(Debug)]
pub struct DatabaseHandle {
    pub url: String,
    cluster: Option<EmbeddedCluster>,
}

impl DatabaseHandle {
    pub fn open(config: &Config) -> Result<Self, String> {
        match &config.database {
            DatabaseSource::External(url) => Ok(Self { url: url.clone(), cluster: None }),
            DatabaseSource::Embedded => {
                let cluster =
                    EmbeddedCluster::start(&config.data_dir, Durability::Durable).map_err(|e| e.to_string())?;
                Ok(Self { url: cluster.connection_string(devdb::DATABASE_NAME), cluster: Some(cluster) })
            }
        }
    }

    pub fn is_embedded(&self) -> bool {
        self.cluster.is_some()
    }

    /// Applies pending migrations; returns the names of those applied.
    pub fn migrate(&self) -> Result<Vec<String>, String> {
        let mut conn = db::connect(&self.url)?;
        db::run_migrations(&mut conn)
    }

    /// Seeds the demo data unless present; returns whether it seeded.
    pub fn seed_demo(&self) -> Result<bool, String> {
        let mut conn = db::connect(&self.url)?;
        if demo::is_seeded(&mut conn).map_err(|e| e.to_string())? {
            return Ok(false);
        }
        let password = NewPassword::parse(demo::DEMO_PASSWORD).expect("the demo password satisfies the policy");
        let hash = crate::auth::password::hash_now(&password);
        demo::seed(&mut conn, &hash).map_err(|e| e.to_string())
    }

    /// Adds `volume` users and keys to the organization `slug` (see `demo_volume`).
    pub fn seed_volume(
        &self,
        config: &Config,
        slug: &str,
        volume: demo_volume::Volume,
        demo_password: bool,
    ) -> Result<(), String> {
        let started = std::time::Instant::now();
        let secret = config.resolve_secret().map_err(|e| e.to_string())?;
        let hasher = KeyHasher::new(secret.derive().key_pepper);
        let mut conn = db::connect(&self.url)?;
        let organization = Organization::find_by_slug(&mut conn, slug)
            .optional()
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("there is no organization with slug {slug:?}"))?;
        let hash = demo_password.then(|| {
            let password = NewPassword::parse(demo::DEMO_PASSWORD).expect("the demo password satisfies the policy");
            crate::auth::password::hash_now(&password)
        });
        let seed = u64::from(started.elapsed().subsec_nanos()) ^ 0x6b65_7977_6172_6421;
        let added = demo_volume::fill(&mut conn, &hasher, &organization, hash.as_deref(), volume, seed).map_err(
            |e| match e {
                crate::error::AppError::BadRequest(message) => message,
                other => other.to_string(),
            },
        )?;
        // Fresh statistics, so the first queries after a bulk load get good plans.
        diesel::sql_query("ANALYZE").execute(&mut conn).map_err(|e| e.to_string())?;
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
