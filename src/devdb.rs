//! The embedded default: a private PostgreSQL cluster run from the installed server
//! binaries when no `DATABASE_URL` is given.
//!
//! The cluster lives in `<data dir>/pg`, listens only on a Unix socket in a directory only
//! its owner can enter (no TCP at all), trusts that socket, and is reused on the next start.
//! PostgreSQL refuses to run as root, so when Keyward runs as root the server runs as the
//! `postgres` system user. The test suite uses the same mechanism for its own cluster.
//!
//! The cluster's superuser owns the tables and runs the migrations; the application itself
//! connects as the unprivileged `db::privileges::APP_ROLE` (see `commands::DatabaseHandle`).

use std::{
    ffi::OsStr,
    fs::{self, File},
    io,
    os::unix::{fs::PermissionsExt, process::CommandExt},
    path::{Path, PathBuf},
    process::{Command, Output, Stdio},
};

/// Name of the database the application uses inside the embedded cluster.
pub const DATABASE_NAME: &str = "keyward";
/// The cluster's superuser (created by `initdb`); the socket is trusted, so no password.
const SUPERUSER: &str = "keyward";
/// Longest socket directory that still fits `/.s.PGSQL.5432` in `sun_path` (108 bytes).
const MAX_SOCKET_DIR_LEN: usize = 90;

/// How the cluster trades durability for speed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// Normal PostgreSQL durability, for the application's own data.
    Durable,
    /// `fsync` off: for throwaway test clusters, where speed matters and a crash loses nothing of value.
    Throwaway,
}

/// A problem starting or using the embedded cluster, worded for the operator.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct DevDbError(pub String);

fn err(context: impl std::fmt::Display, error: impl std::fmt::Display) -> DevDbError {
    DevDbError(format!("{context}: {error}"))
}

/// A running private cluster. [`EmbeddedCluster::stop`] stops it if this process started it.
#[derive(Debug)]
pub struct EmbeddedCluster {
    bin_dir: PathBuf,
    pgdata: PathBuf,
    socket_dir: PathBuf,
    log_file: PathBuf,
    run_as: Option<SystemUser>,
    started_here: bool,
}

#[derive(Debug, Clone, Copy)]
struct SystemUser {
    uid: u32,
    gid: u32,
}

impl EmbeddedCluster {
    /// Starts (initializing on first use) the cluster kept under `root`, or attaches to it if
    /// it is already running; the server binaries are those of `KEYWARD_PG_BIN` if set (for
    /// the tests and benchmarks, which have no command line of their own).
    pub fn start(root: &Path, durability: Durability) -> Result<Self, DevDbError> {
        let pg_bin = std::env::var_os("KEYWARD_PG_BIN").filter(|dir| !dir.is_empty()).map(PathBuf::from);
        Self::start_with(root, durability, pg_bin.as_deref())
    }

    /// [`EmbeddedCluster::start`] with the server binaries in `pg_bin` (the configured
    /// `KEYWARD_PG_BIN`), else found as [`find_server_binaries`] says.
    pub fn start_with(root: &Path, durability: Durability, pg_bin: Option<&Path>) -> Result<Self, DevDbError> {
        let bin_dir = find_server_binaries(pg_bin)?;
        let run_as = postgres_user_if_root()?;
        fs::create_dir_all(root).map_err(|e| err(format!("cannot create {}", root.display()), e))?;
        let root = root.canonicalize().map_err(|e| err(format!("cannot resolve {}", root.display()), e))?;
        let home = cluster_home(&root, run_as)?;
        let cluster = Self {
            bin_dir,
            pgdata: home.join("pg"),
            socket_dir: socket_dir_for(&home),
            log_file: home.join("postgresql.log"),
            run_as,
            started_here: false,
        };
        // Several processes (an app and a command, or test binaries) may start the same
        // cluster at once; one at a time does the work.
        let lock = File::create(home.join("cluster.lock")).map_err(|e| err("cannot create the cluster lock", e))?;
        lock.lock().map_err(|e| err("cannot lock the cluster", e))?;
        let result = cluster.start_locked(durability);
        let _ = lock.unlock();
        result
    }

    fn start_locked(mut self, durability: Durability) -> Result<Self, DevDbError> {
        self.prepare_dir(&self.socket_dir.clone(), 0o700)?;
        if !self.pgdata.join("PG_VERSION").exists() {
            self.init()?;
        }
        self.write_settings(durability)?;
        if !self.is_running() {
            self.pg_ctl_start("starting the embedded PostgreSQL cluster")?;
            self.started_here = true;
        }
        self.ensure_database(DATABASE_NAME)?;
        Ok(self)
    }

    fn init(&self) -> Result<(), DevDbError> {
        self.prepare_dir(&self.pgdata, 0o700)?;
        let output = self
            .pg_command("initdb")
            .arg("-D")
            .arg(&self.pgdata)
            .args(["-U", SUPERUSER, "-A", "trust", "-E", "UTF8", "--locale=C", "--no-instructions"])
            .output()
            .map_err(|e| err("cannot run initdb", e))?;
        check(&output, "initializing the embedded PostgreSQL cluster", None)?;
        let conf = self.pgdata.join("postgresql.conf");
        let mut text = fs::read_to_string(&conf).map_err(|e| err("cannot read postgresql.conf", e))?;
        text.push_str("\n# Keyward rewrites this file at every start.\ninclude_if_exists = 'keyward.conf'\n");
        fs::write(&conf, text).map_err(|e| err("cannot write postgresql.conf", e))
    }

    /// Settings that depend on where the cluster is (the socket directory) are rewritten at
    /// every start, so a moved data directory keeps working.
    fn write_settings(&self, durability: Durability) -> Result<(), DevDbError> {
        let mut settings = format!(
            "listen_addresses = ''\nunix_socket_directories = '{}'\nunix_socket_permissions = 0700\n\
             max_connections = 200\nshared_buffers = 128MB\n",
            self.socket_dir.display().to_string().replace('\'', "''")
        );
        if durability == Durability::Throwaway {
            settings.push_str("fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n");
        }
        let path = self.pgdata.join("keyward.conf");
        fs::write(&path, settings).map_err(|e| err("cannot write keyward.conf", e))?;
        self.chown(&path)
    }

    /// Whether this process started the server (and so should stop it).
    pub fn started_here(&self) -> bool {
        self.started_here
    }

    /// Whether a server is running on this cluster's data directory.
    pub fn is_running(&self) -> bool {
        self.pg_command("pg_ctl").arg("status").arg("-D").arg(&self.pgdata).output().is_ok_and(|o| o.status.success())
    }

    /// A libpq connection string for `database` over the cluster's Unix socket, as the
    /// cluster's superuser (which owns the tables: migrations, the audit purge).
    pub fn connection_string(&self, database: &str) -> String {
        self.connection_string_as(database, SUPERUSER)
    }

    /// A libpq connection string for `database` over the cluster's Unix socket, as `user`.
    pub fn connection_string_as(&self, database: &str, user: &str) -> String {
        format!(
            "host='{}' dbname='{}' user='{}'",
            escape_conninfo(&self.socket_dir.display().to_string()),
            escape_conninfo(database),
            escape_conninfo(user)
        )
    }

    /// Creates `database` if it does not exist.
    pub fn ensure_database(&self, database: &str) -> Result<(), DevDbError> {
        let exists = self.psql("postgres", &format!("SELECT 1 FROM pg_database WHERE datname = '{database}'"))?;
        if exists.trim() != "1" {
            self.psql("postgres", &format!("CREATE DATABASE \"{database}\""))?;
        }
        Ok(())
    }

    /// Runs one SQL statement through `psql` and returns its unaligned output.
    pub fn psql(&self, database: &str, sql: &str) -> Result<String, DevDbError> {
        let output = Command::new(self.bin_dir.join("psql"))
            .arg(self.connection_string(database))
            .args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", sql])
            .stdin(Stdio::null())
            .output()
            .map_err(|e| err("cannot run psql", e))?;
        check(&output, "running SQL on the embedded cluster", None)?;
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }

    /// Stops the server if this process started it; a cluster someone else started is left running.
    pub fn stop(&mut self) {
        if self.started_here {
            self.stop_now();
            self.started_here = false;
        }
    }

    /// Stops the server whoever started it (fast shutdown: open sessions are ended).
    pub fn stop_now(&self) {
        let result =
            self.pg_command("pg_ctl").arg("stop").arg("-D").arg(&self.pgdata).args(["-m", "fast", "-w", "-s"]).output();
        match result {
            Ok(output) if output.status.success() => log::info!("embedded PostgreSQL cluster stopped"),
            Ok(output) => log::warn!(
                "stopping the embedded PostgreSQL cluster failed: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            ),
            Err(e) => log::warn!("cannot run pg_ctl to stop the embedded cluster: {e}"),
        }
    }

    /// Starts the server again after [`EmbeddedCluster::stop_now`] (used by fault tests).
    pub fn restart(&self) -> Result<(), DevDbError> {
        self.pg_ctl_start("restarting the embedded PostgreSQL cluster")
    }

    /// Starts the server and waits (up to a minute) until it accepts connections; `doing`
    /// names the step in an error.
    fn pg_ctl_start(&self, doing: &str) -> Result<(), DevDbError> {
        let output = self
            .pg_command("pg_ctl")
            .arg("start")
            .arg("-D")
            .arg(&self.pgdata)
            .arg("-l")
            .arg(&self.log_file)
            .args(["-w", "-t", "60", "-s"])
            .output()
            .map_err(|e| err("cannot run pg_ctl", e))?;
        check(&output, doing, Some(&self.log_file))
    }

    /// A command for one of the server binaries, run as the `postgres` user when we are root.
    fn pg_command(&self, program: impl AsRef<OsStr>) -> Command {
        let mut command = Command::new(self.bin_dir.join(program.as_ref()));
        command.stdin(Stdio::null()).env("LC_ALL", "C").env_remove("PGDATA");
        if let Some(user) = self.run_as {
            command.uid(user.uid).gid(user.gid).current_dir("/");
        }
        command
    }

    fn prepare_dir(&self, dir: &Path, mode: u32) -> Result<(), DevDbError> {
        fs::create_dir_all(dir).map_err(|e| err(format!("cannot create {}", dir.display()), e))?;
        fs::set_permissions(dir, fs::Permissions::from_mode(mode))
            .map_err(|e| err(format!("cannot set permissions of {}", dir.display()), e))?;
        self.chown(dir)
    }

    fn chown(&self, path: &Path) -> Result<(), DevDbError> {
        if let Some(user) = self.run_as {
            std::os::unix::fs::chown(path, Some(user.uid), Some(user.gid))
                .map_err(|e| err(format!("cannot hand {} to the postgres user", path.display()), e))?;
        }
        Ok(())
    }
}

/// Where the server binaries are: `configured` (`KEYWARD_PG_BIN`), then `pg_config
/// --bindir`, then the newest `/usr/lib/postgresql/<version>/bin`, then `PATH`.
fn find_server_binaries(configured: Option<&Path>) -> Result<PathBuf, DevDbError> {
    let has_server = |dir: &Path| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file();
    if let Some(dir) = configured {
        return if has_server(dir) {
            Ok(dir.to_owned())
        } else {
            Err(DevDbError(format!("KEYWARD_PG_BIN={} does not contain initdb and pg_ctl", dir.display())))
        };
    }
    if let Ok(output) = Command::new("pg_config").arg("--bindir").output() {
        let dir = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim());
        if output.status.success() && has_server(&dir) {
            return Ok(dir);
        }
    }
    let mut versions: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse::<u32>().ok()?;
            Some((version, entry.path().join("bin")))
        })
        .filter(|(_, dir)| has_server(dir))
        .collect();
    versions.sort();
    if let Some((_, dir)) = versions.pop() {
        return Ok(dir);
    }
    if let Some(path) = std::env::var_os("PATH")
        && let Some(dir) = std::env::split_paths(&path).find(|dir| has_server(dir))
    {
        return Ok(dir);
    }
    Err(DevDbError(
        "PostgreSQL server binaries (initdb, pg_ctl) were not found: install the PostgreSQL server \
         package (`sudo apt-get install postgresql`), or set DATABASE_URL to use an existing server."
            .into(),
    ))
}

fn postgres_user_if_root() -> Result<Option<SystemUser>, DevDbError> {
    if !nix::unistd::geteuid().is_root() {
        return Ok(None);
    }
    match nix::unistd::User::from_name("postgres") {
        Ok(Some(user)) => Ok(Some(SystemUser { uid: user.uid.as_raw(), gid: user.gid.as_raw() })),
        _ => Err(DevDbError(
            "PostgreSQL refuses to run as root and there is no `postgres` system user to run it as: \
             install the PostgreSQL server package (it creates that user) or run Keyward as an ordinary user."
                .into(),
        )),
    }
}

/// The directory holding the cluster. Normally `root` itself; when we run as root and the
/// `postgres` user cannot reach `root` (say it is under `/root`), a directory under
/// `/var/tmp` named after `root`, so the cluster is still found again on the next start.
fn cluster_home(root: &Path, run_as: Option<SystemUser>) -> Result<PathBuf, DevDbError> {
    let home = match run_as {
        Some(user) if !reachable_by(root, user) => {
            let fallback = PathBuf::from(format!("/var/tmp/keyward-{:016x}", fingerprint(root)));
            log::info!(
                "the postgres user cannot reach {}; keeping the embedded cluster in {}",
                root.display(),
                fallback.display()
            );
            fallback
        }
        _ => root.to_path_buf(),
    };
    fs::create_dir_all(&home).map_err(|e| err(format!("cannot create {}", home.display()), e))?;
    if let Some(user) = run_as {
        std::os::unix::fs::chown(&home, Some(user.uid), Some(user.gid))
            .map_err(|e| err(format!("cannot hand {} to the postgres user", home.display()), e))?;
    }
    Ok(home)
}

/// Whether `user` may traverse every directory from `/` down to `dir` (by owner or other bits;
/// group membership is not consulted, which errs on the side of the fallback directory).
fn reachable_by(dir: &Path, user: SystemUser) -> bool {
    use std::os::unix::fs::MetadataExt;
    dir.ancestors().all(|ancestor| match fs::metadata(ancestor) {
        Ok(meta) => {
            let mode = meta.mode();
            (meta.uid() == user.uid && mode & 0o100 != 0)
                || (meta.gid() == user.gid && mode & 0o010 != 0)
                || mode & 0o001 != 0
        }
        Err(_) => false,
    })
}

/// The socket directory, shortened into `/tmp` when the natural one is too long for a socket path.
fn socket_dir_for(home: &Path) -> PathBuf {
    let natural = home.join("run");
    if natural.as_os_str().len() <= MAX_SOCKET_DIR_LEN {
        natural
    } else {
        PathBuf::from(format!("/tmp/keyward-sock-{:016x}", fingerprint(home)))
    }
}

fn fingerprint(path: &Path) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    path.hash(&mut hasher);
    hasher.finish()
}

fn escape_conninfo(value: &str) -> String {
    value.replace('\\', "\\\\").replace('\'', "\\'")
}

fn check(output: &Output, what: &str, log_file: Option<&Path>) -> Result<(), DevDbError> {
    if output.status.success() {
        return Ok(());
    }
    let mut message = format!(
        "{what} failed: {}{}",
        String::from_utf8_lossy(&output.stderr).trim(),
        String::from_utf8_lossy(&output.stdout).trim()
    );
    if let Some(log) = log_file {
        let tail: String = fs::read_to_string(log)
            .unwrap_or_default()
            .lines()
            .rev()
            .take(5)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect::<Vec<_>>()
            .join("\n");
        message.push_str(&format!("\n(see {}):\n{tail}", log.display()));
    }
    Err(DevDbError(message))
}

impl From<io::Error> for DevDbError {
    fn from(e: io::Error) -> Self {
        DevDbError(e.to_string())
    }
}
