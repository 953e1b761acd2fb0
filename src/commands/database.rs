//! Opening the database for a command: the embedded cluster (started if needed, stopped
//! again afterwards if this command started it) or the server of `DATABASE_URL`.

use crate::{
    config::{Config, DatabaseSource},
    db,
    devdb::{self, Durability, EmbeddedCluster},
    domain::NewPassword,
    services::demo,
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
