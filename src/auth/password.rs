//! Password hashing with argon2id, and the bounded pool the server hashes on.
//!
//! One hash takes tens of milliseconds of CPU and 19 MiB of working memory (argon2's default
//! parameters). The server therefore never hashes on the async executor nor on the shared
//! blocking pool: [`PasswordHashers`] owns a fixed number of threads (by default one per CPU
//! core, `KEYWARD_PASSWORD_HASHERS`), each with its own working memory allocated at start-up
//! and reused for every hash it computes. Requests beyond that wait their turn in a short queue.
//! So a burst of sign-ins — including failed ones for unknown emails, which hash too so that
//! timing reveals nothing — costs at most one working memory per thread, however many come.
//! (Fresh buffers per call on hundreds of blocking threads grew the process by several MB a
//! sign-in: the allocator's per-thread arenas kept them.)
//!
//! Commands and seeding run outside the server, once: they use [`hash_now`] and
//! [`verify_now`], which allocate their working memory per call.

use std::{
    fmt,
    panic::AssertUnwindSafe,
    sync::{Arc, LazyLock, Mutex, PoisonError},
    thread,
};

use argon2::{
    Algorithm, Argon2, Block, Params, Version,
    password_hash::phc::{Output, ParamsString, PasswordHash, Salt},
};
use subtle::ConstantTimeEq;
use tokio::sync::{mpsc, oneshot};

use crate::{domain::NewPassword, error::AppError};

/// Hash compared against when the account does not exist or has no password, so that the
/// response time does not reveal which emails have accounts.
static DUMMY_HASH: LazyLock<String> = LazyLock::new(|| {
    hash_now(&NewPassword::parse(&crate::secrets::random_token(24)).expect("random tokens are long enough"))
});

/// Argon2 working memory, reused by every hash computed with it.
pub struct Memory(Vec<Block>);

impl Memory {
    /// Working memory kept between hashes: what the default parameters need. A stored hash
    /// asking for more (made elsewhere, with other parameters) gets a buffer of its own,
    /// freed afterwards, so one odd hash cannot raise every thread's footprint for good.
    const KEPT_BLOCKS: usize = Params::DEFAULT.block_count();

    pub fn new() -> Self {
        Self(Vec::new())
    }

    /// Memory for the default parameters, allocated and touched now: a hashing thread's
    /// footprint is then paid at start-up, visible from the first moment, and never grows.
    pub fn reserved() -> Self {
        Self(vec![Block::new(); Self::KEPT_BLOCKS])
    }

    /// Runs `f` with `count` blocks of memory.
    fn with_blocks<T>(&mut self, count: usize, f: impl FnOnce(&mut [Block]) -> T) -> T {
        if count > Self::KEPT_BLOCKS {
            return f(&mut vec![Block::new(); count]);
        }
        if self.0.len() < count {
            self.0.resize(count, Block::new());
        }
        f(&mut self.0[..count])
    }
}

impl Default for Memory {
    fn default() -> Self {
        Self::new()
    }
}

/// Hashes `password` with the default parameters and a fresh salt, as a PHC string
/// (`$argon2id$v=19$m=19456,t=2,p=1$…`, what `argon2`'s own `hash_password` writes).
pub fn hash_with(memory: &mut Memory, password: &NewPassword) -> String {
    let argon2 = Argon2::default();
    let mut salt = [0u8; Salt::RECOMMENDED_LENGTH];
    crate::secrets::fill_random(&mut salt);
    let mut output = [0u8; Params::DEFAULT_OUTPUT_LEN];
    memory
        .with_blocks(argon2.params().block_count(), |blocks| {
            argon2.hash_password_into_with_memory(password.expose().as_bytes(), &salt, &mut output, blocks)
        })
        .expect("argon2 hashing with default parameters cannot fail");
    PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(argon2.params()).expect("the default parameters have a PHC form"),
        salt: Some(Salt::new(&salt).expect("16 bytes is a valid salt")),
        hash: Some(Output::new(&output).expect("32 bytes is a valid output")),
    }
    .to_string()
}

/// Whether `candidate` matches `stored`; `None` (no such account, or no password set) burns
/// the same time on the dummy hash and fails.
pub fn verify_with(memory: &mut Memory, stored: Option<&str>, candidate: &str) -> bool {
    let (hash, real) = match stored {
        Some(hash) => (hash, true),
        None => (DUMMY_HASH.as_str(), false),
    };
    let matches = PasswordHash::new(hash).is_ok_and(|parsed| matches(memory, &parsed, candidate.as_bytes()));
    matches && real
}

/// Recomputes the hash of `candidate` with the parameters and salt of `parsed` and compares
/// in constant time.
fn matches(memory: &mut Memory, parsed: &PasswordHash, candidate: &[u8]) -> bool {
    let (Some(salt), Some(expected)) = (&parsed.salt, &parsed.hash) else {
        return false;
    };
    let Ok(algorithm) = Algorithm::try_from(parsed.algorithm.as_str()) else {
        return false;
    };
    let version = match parsed.version.map(Version::try_from).transpose() {
        Ok(version) => version.unwrap_or_default(),
        Err(_) => return false,
    };
    let Ok(params) = Params::try_from(parsed) else {
        return false;
    };
    let argon2 = Argon2::new(algorithm, version, params);
    let mut output = vec![0u8; expected.len()];
    let computed = memory.with_blocks(argon2.params().block_count(), |blocks| {
        argon2.hash_password_into_with_memory(candidate, salt, &mut output, blocks)
    });
    computed.is_ok() && bool::from(output.ct_eq(expected.as_ref()))
}

/// Hashes synchronously with memory of its own (commands and seeding run outside the server).
pub fn hash_now(password: &NewPassword) -> String {
    hash_with(&mut Memory::new(), password)
}

/// [`verify_with`] synchronously with memory of its own.
pub fn verify_now(stored: Option<&str>, candidate: &str) -> bool {
    verify_with(&mut Memory::new(), stored, candidate)
}

/// Warms the dummy hash so the first failed login is not measurably slower.
pub fn warm_up() {
    LazyLock::force(&DUMMY_HASH);
}

/// Work for a hashing thread: it gets the thread's memory and sends its own answer.
type Job = Box<dyn FnOnce(&mut Memory) + Send>;

/// The server's password hashing: a fixed number of threads, each with reused memory.
/// Cloning shares the threads; they end when the last clone is dropped.
#[derive(Clone)]
pub struct PasswordHashers {
    jobs: mpsc::Sender<Job>,
    threads: usize,
}

impl fmt::Debug for PasswordHashers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PasswordHashers").field("threads", &self.threads).finish_non_exhaustive()
    }
}

impl PasswordHashers {
    /// Starts `threads` hashing threads (at least one).
    pub fn start(threads: usize) -> std::io::Result<Self> {
        let threads = threads.max(1);
        // As many waiting jobs as threads: callers beyond that wait (asynchronously, in
        // order) for room rather than piling up work nobody is computing yet.
        let (jobs, receiver) = mpsc::channel::<Job>(threads);
        let receiver = Arc::new(Mutex::new(receiver));
        for i in 0..threads {
            let receiver = Arc::clone(&receiver);
            let mut memory = Memory::reserved();
            thread::Builder::new().name(format!("password-hasher-{i}")).spawn(move || {
                loop {
                    // One idle thread waits on the queue while holding the lock; the others
                    // wait for the lock. The lock is released before the job runs.
                    let job = receiver.lock().unwrap_or_else(PoisonError::into_inner).blocking_recv();
                    let Some(job) = job else { break };
                    // A job that panics drops its answer channel (its caller gets an error);
                    // the thread and its memory stay for the next job.
                    let _ = std::panic::catch_unwind(AssertUnwindSafe(|| job(&mut memory)));
                }
            })?;
        }
        Ok(Self { jobs, threads })
    }

    /// Number of hashing threads: the most hashes computed at once.
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Hashes a new password.
    pub async fn hash(&self, password: NewPassword) -> Result<String, AppError> {
        self.run(move |memory| hash_with(memory, &password)).await
    }

    /// Checks `candidate` against `stored` ([`verify_with`]: `None` fails after the same work).
    pub async fn verify(&self, stored: Option<String>, candidate: String) -> Result<bool, AppError> {
        self.run(move |memory| verify_with(memory, stored.as_deref(), &candidate)).await
    }

    /// Runs `work` on one of the hashing threads once one is free.
    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Memory) -> T + Send + 'static,
    ) -> Result<T, AppError> {
        let (answer, answered) = oneshot::channel();
        let job: Job = Box::new(move |memory| {
            let _ = answer.send(work(memory));
        });
        self.jobs
            .send(job)
            .await
            .map_err(|_| AppError::Internal("the password hashing threads have stopped".into()))?;
        answered.await.map_err(|_| AppError::Internal("password hashing failed".into()))
    }
}

#[cfg(test)]
mod tests {
    use std::{
        sync::atomic::{AtomicUsize, Ordering},
        time::{Duration, Instant},
    };

    use argon2::password_hash::PasswordHasher;

    use super::*;

    #[test]
    fn a_hash_verifies_its_password_only() {
        let hash = hash_now(&NewPassword::parse("correct horse battery").unwrap());
        assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{hash}");
        assert!(verify_now(Some(&hash), "correct horse battery"));
        assert!(!verify_now(Some(&hash), "wrong horse battery"));
    }

    #[test]
    fn missing_accounts_never_verify() {
        assert!(!verify_now(None, "anything at all"));
        assert!(!verify_now(Some("not a phc string"), "anything at all"));
        assert!(!verify_now(Some("$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ"), "no hash part"));
    }

    #[test]
    fn hashes_stored_by_the_previous_implementation_still_verify_and_vice_versa() {
        let theirs = Argon2::default().hash_password(b"correct horse battery").unwrap().to_string();
        let mut memory = Memory::new();
        assert!(verify_with(&mut memory, Some(&theirs), "correct horse battery"));
        assert!(!verify_with(&mut memory, Some(&theirs), "correct horse batterY"));

        let ours = hash_with(&mut memory, &NewPassword::parse("correct horse battery").unwrap());
        let parsed = PasswordHash::new(&ours).unwrap();
        assert!(
            argon2::PasswordVerifier::verify_password(&Argon2::default(), b"correct horse battery", &parsed).is_ok()
        );
    }

    #[test]
    fn hashes_with_other_parameters_verify_without_growing_the_kept_memory() {
        let params = Params::new(Params::DEFAULT_M_COST * 2, 1, 1, None).unwrap();
        let bigger = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
        let hash = bigger.hash_password(b"correct horse battery").unwrap().to_string();
        let mut memory = Memory::new();
        assert!(verify_with(&mut memory, Some(&hash), "correct horse battery"));
        assert_eq!(memory.0.len(), 0, "a one-off buffer was used");

        let smaller = Argon2::new(Algorithm::Argon2id, Version::V0x13, Params::new(1024, 1, 1, None).unwrap());
        let hash = smaller.hash_password(b"correct horse battery").unwrap().to_string();
        assert!(verify_with(&mut memory, Some(&hash), "correct horse battery"));
        assert!(!verify_with(&mut memory, Some(&hash), "wrong"));
    }

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
    }

    /// Every job counts itself in, waits until `limit` jobs are in at once (or a generous
    /// deadline passes), and counts itself out: with more jobs than threads, the high-water
    /// mark is exactly the number of threads if the pool runs that many at once and no more.
    #[test]
    fn the_pool_runs_as_many_jobs_at_once_as_it_has_threads_and_never_more() {
        for threads in [1, 3] {
            let hashers = PasswordHashers::start(threads).unwrap();
            let running = Arc::new(AtomicUsize::new(0));
            let most = Arc::new(AtomicUsize::new(0));
            runtime().block_on(async {
                let jobs = (0..threads * 4).map(|_| {
                    let (running, most) = (Arc::clone(&running), Arc::clone(&most));
                    hashers.run(move |_| {
                        let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                        most.fetch_max(now, Ordering::SeqCst);
                        let deadline = Instant::now() + Duration::from_secs(10);
                        while most.load(Ordering::SeqCst) < threads && Instant::now() < deadline {
                            thread::sleep(Duration::from_millis(1));
                        }
                        running.fetch_sub(1, Ordering::SeqCst);
                    })
                });
                for result in futures_util::future::join_all(jobs).await {
                    result.unwrap();
                }
            });
            assert_eq!(most.load(Ordering::SeqCst), threads, "{threads} thread(s)");
        }
    }

    #[test]
    fn a_thread_reuses_its_memory_and_survives_a_panicking_job() {
        let hashers = PasswordHashers::start(1).unwrap();
        runtime().block_on(async {
            let first = hashers.run(|memory| memory.with_blocks(4, |blocks| blocks.as_ptr() as usize)).await.unwrap();
            let failed = hashers.run(|_| -> usize { panic!("a job that fails") }).await;
            assert!(matches!(failed, Err(AppError::Internal(_))));
            let second = hashers.run(|memory| memory.with_blocks(4, |blocks| blocks.as_ptr() as usize)).await.unwrap();
            assert_eq!(first, second, "the same buffer");

            let hash = hashers.hash(NewPassword::parse("correct horse battery").unwrap()).await.unwrap();
            assert!(hashers.verify(Some(hash.clone()), "correct horse battery".into()).await.unwrap());
            assert!(!hashers.verify(Some(hash), "wrong horse battery".into()).await.unwrap());
            assert!(!hashers.verify(None, "correct horse battery".into()).await.unwrap());
        });
    }
}
