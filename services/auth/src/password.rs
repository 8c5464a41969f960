//! Password rules and Argon2id hashing (api.md §4.4, §4.13). Hashing is deliberately slow, so
//! it runs on the hasher's own threads, never on the async runtime, and at most
//! [`HashLimits::concurrent`] hashes run at once: each one takes a core and 19 MiB for tens of
//! milliseconds, so a login flood left unbounded would take every core and a gigabyte of memory
//! from the requests that need neither. Those threads run at the lowest CPU priority (nice 19),
//! so a login flood uses the cores only while the runtime does not need them: `GET /me` and
//! refresh keep their latency (see the README's `auth-flood` figures). Callers over the bound
//! wait in a queue for at most [`HashLimits::queue_timeout`] and then get
//! [`PasswordError::Busy`] (503 `SERVICE_UNAVAILABLE`); callers hash outside any database
//! transaction so a queued login holds no pooled connection. Starts threads; no other I/O.

use std::{
    panic::AssertUnwindSafe,
    sync::{Arc, Mutex, mpsc},
    time::Duration,
};

use argon2::{
    Algorithm, Argon2, Params, Version,
    password_hash::{PasswordHasher, PasswordVerifier},
};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::config::Argon2Params;

#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error("invalid argon2 parameters")]
    Params(#[source] argon2::Error),
    #[error("hashing a password")]
    Hash(#[source] argon2::password_hash::Error),
    #[error("starting a password hashing thread")]
    Spawn(#[source] std::io::Error),
    /// The hashing thread gave no answer (it panicked, or the pool is gone).
    #[error("the password hashing thread gave no answer")]
    Lost,
    /// Every hashing slot stayed taken for the whole queue timeout.
    #[error("no password hashing slot became free within {0:?}")]
    Busy(Duration),
}

/// How many hashes run at once and how long a caller waits for a slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HashLimits {
    pub concurrent: usize,
    pub queue_timeout: Duration,
}

impl Default for HashLimits {
    /// One hash per core: more would only time-slice the same cores and multiply the memory.
    fn default() -> Self {
        Self {
            concurrent: std::thread::available_parallelism().map_or(1, std::num::NonZero::get),
            queue_timeout: Duration::from_secs(5),
        }
    }
}

/// The password rule (api.md §4.4), its bounds and its pattern for the OpenAPI document.
pub use payplane_kit::password::{
    MAX as PASSWORD_MAX, MIN as PASSWORD_MIN, PATTERN as PASSWORD_PATTERN, rule as check_rule,
};

/// What a login's verification found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub valid: bool,
    /// The Argon2id hash to store instead of a verified legacy (bcrypt) hash.
    pub upgrade: Option<String>,
}

/// A bcrypt hash of the earlier system (`$2a$`, `$2b$`, `$2y$`).
pub fn is_bcrypt(hash: &str) -> bool {
    ["$2a$", "$2b$", "$2y$"].iter().any(|p| hash.starts_with(p))
}

/// Work for a hashing thread.
type Job = Box<dyn FnOnce() + Send>;

/// The CPU priority of hashing threads: the lowest (Linux's nice 19), so the runtime's threads
/// preempt a hash whenever they have a request to serve.
const HASH_THREAD_NICE: i32 = 19;

/// Starts `n` hashing threads that take jobs from one queue; they end when every sender (every
/// clone of the [`Hasher`]) is gone.
fn start_threads(n: usize) -> Result<mpsc::Sender<Job>, PasswordError> {
    let (tx, rx) = mpsc::channel::<Job>();
    let rx = Arc::new(Mutex::new(rx));
    for i in 0..n {
        let rx = rx.clone();
        std::thread::Builder::new()
            .name(format!("argon2-{i}"))
            .spawn(move || {
                // On Linux the nice value is per thread; this changes only the hashing thread.
                if let Err(e) = rustix::process::setpriority_process(
                    Some(rustix::thread::gettid()),
                    HASH_THREAD_NICE,
                ) {
                    tracing::warn!(error = %e, "could not lower the hashing thread's priority");
                }
                loop {
                    // The lock is released before the job runs, so the next idle thread waits.
                    let next = rx
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .recv();
                    let Ok(job) = next else { return };
                    // A panicking job loses only its own answer ([`PasswordError::Lost`]), not
                    // the thread.
                    let _ = std::panic::catch_unwind(AssertUnwindSafe(job));
                }
            })
            .map_err(PasswordError::Spawn)?;
    }
    Ok(tx)
}

/// Hashes and verifies with the configured cost, at most [`HashLimits::concurrent`] at a time,
/// on as many low-priority threads of its own.
#[derive(Debug, Clone)]
pub struct Hasher {
    params: Params,
    /// Verified against for unknown emails so that timing does not reveal registration.
    dummy: Arc<str>,
    slots: Arc<Semaphore>,
    queue_timeout: Duration,
    jobs: mpsc::Sender<Job>,
}

impl Hasher {
    /// A hasher with [`HashLimits::default`] (commands and tests that hash a few passwords).
    pub fn new(cfg: Argon2Params) -> Result<Self, PasswordError> {
        Self::with_limits(cfg, HashLimits::default())
    }

    pub fn with_limits(cfg: Argon2Params, limits: HashLimits) -> Result<Self, PasswordError> {
        let params = Params::new(cfg.memory_kib, cfg.iterations, cfg.parallelism, None)
            .map_err(PasswordError::Params)?;
        let dummy = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
            .hash_password(b"payplane-dummy-password")
            .map_err(PasswordError::Hash)?
            .to_string();
        let concurrent = limits.concurrent.max(1);
        Ok(Self {
            params,
            dummy: dummy.into(),
            slots: Arc::new(Semaphore::new(concurrent)),
            queue_timeout: limits.queue_timeout,
            jobs: start_threads(concurrent)?,
        })
    }

    /// Waits for a hashing slot, at most the queue timeout. Public so tests can hold every slot.
    pub async fn slot(&self) -> Result<OwnedSemaphorePermit, PasswordError> {
        let wait = self.slots.clone().acquire_owned();
        // The semaphore is never closed; a closed one is as unavailable as a full one.
        if let Ok(Ok(permit)) = tokio::time::timeout(self.queue_timeout, wait).await {
            Ok(permit)
        } else {
            metrics::counter!("auth_password_hash_rejected_total").increment(1);
            Err(PasswordError::Busy(self.queue_timeout))
        }
    }

    /// Runs `work` on a hashing thread once a slot is free; the slot is held until it is done,
    /// even if the caller stops waiting (a hash cannot be interrupted).
    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, PasswordError> {
        let permit = self.slot().await?;
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            let out = work();
            drop(permit);
            let _ = tx.send(out);
        });
        self.jobs.send(job).map_err(|_| PasswordError::Lost)?;
        rx.await.map_err(|_| PasswordError::Lost)
    }

    pub async fn hash(&self, password: &str) -> Result<String, PasswordError> {
        let params = self.params.clone();
        let password = password.to_owned();
        self.run(move || {
            Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
                .hash_password(password.as_bytes())
                .map(|h| h.to_string())
                .map_err(PasswordError::Hash)
        })
        .await?
    }

    /// Login's verification: like [`Hasher::verify`], and a bcrypt hash brought over by
    /// `payplane import` (import.md §2) is accepted here — only here — and, when the password
    /// matches, answered with the Argon2id hash that replaces it in the login's transaction.
    /// Both steps run in one job under one hashing slot.
    pub async fn verify_login(
        &self,
        hash: Option<&str>,
        password: &str,
    ) -> Result<Verified, PasswordError> {
        match hash {
            Some(h) if is_bcrypt(h) => {
                let (hash, password, params) =
                    (h.to_owned(), password.to_owned(), self.params.clone());
                self.run(move || {
                    if !bcrypt::verify(&password, &hash).unwrap_or(false) {
                        return Ok(Verified {
                            valid: false,
                            upgrade: None,
                        });
                    }
                    let upgraded = Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
                        .hash_password(password.as_bytes())
                        .map_err(PasswordError::Hash)?
                        .to_string();
                    Ok(Verified {
                        valid: true,
                        upgrade: Some(upgraded),
                    })
                })
                .await?
            }
            _ => Ok(Verified {
                valid: self.verify(hash, password).await?,
                upgrade: None,
            }),
        }
    }

    /// Constant-time verification with the parameters stored in `hash` (or the dummy hash).
    /// Argon2id only: a bcrypt hash never verifies here (password change, account deletion).
    pub async fn verify(&self, hash: Option<&str>, password: &str) -> Result<bool, PasswordError> {
        let hash: Arc<str> = hash.map_or_else(|| self.dummy.clone(), Arc::from);
        let password = password.to_owned();
        self.run(move || {
            Argon2::default()
                .verify_password(password.as_bytes(), &*hash)
                .is_ok()
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHEAP: Argon2Params = Argon2Params {
        memory_kib: 1024,
        iterations: 1,
        parallelism: 1,
    };

    #[tokio::test]
    async fn bcrypt_verifies_only_at_login_and_comes_back_as_argon2id() {
        let h = Hasher::new(CHEAP).unwrap();
        let legacy = bcrypt::hash("Old-System-Pass1!", 4).unwrap();
        let ok = h
            .verify_login(Some(&legacy), "Old-System-Pass1!")
            .await
            .unwrap();
        assert!(ok.valid);
        let upgraded = ok.upgrade.unwrap();
        assert!(upgraded.starts_with("$argon2id$"));
        assert!(
            h.verify(Some(&upgraded), "Old-System-Pass1!")
                .await
                .unwrap()
        );
        let wrong = h
            .verify_login(Some(&legacy), "Old-System-Pass2!")
            .await
            .unwrap();
        assert_eq!(
            wrong,
            Verified {
                valid: false,
                upgrade: None
            }
        );
        assert!(
            !h.verify(Some(&legacy), "Old-System-Pass1!").await.unwrap(),
            "no other path"
        );
        let argon = h
            .verify_login(Some(&upgraded), "Old-System-Pass1!")
            .await
            .unwrap();
        assert_eq!(
            argon,
            Verified {
                valid: true,
                upgrade: None
            }
        );
    }

    #[tokio::test]
    async fn hashes_verify_and_use_phc_format() {
        let h = Hasher::new(CHEAP).unwrap();
        let hash = h.hash("TestPassword123!").await.unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=1024,t=1,p=1$"));
        assert!(h.verify(Some(&hash), "TestPassword123!").await.unwrap());
        assert!(!h.verify(Some(&hash), "TestPassword123?").await.unwrap());
        assert!(!h.verify(None, "TestPassword123!").await.unwrap());
    }

    /// Hashes run on the hasher's own threads, which run at nice 19 (so the runtime's threads
    /// win the cores whenever both want them), and a panic there loses only its own answer.
    #[tokio::test]
    async fn hashes_run_on_low_priority_threads_of_their_own() {
        let limits = HashLimits {
            concurrent: 1,
            queue_timeout: Duration::from_secs(5),
        };
        let h = Hasher::with_limits(CHEAP, limits).unwrap();
        let (name, nice) = h
            .run(|| {
                let tid = rustix::thread::gettid();
                let nice = rustix::process::getpriority_process(Some(tid)).unwrap();
                (std::thread::current().name().map(str::to_owned), nice)
            })
            .await
            .unwrap();
        assert_eq!(name.as_deref(), Some("argon2-0"));
        assert_eq!(nice, HASH_THREAD_NICE);

        assert!(matches!(
            h.run(|| -> u8 { panic!("a broken hash") }).await,
            Err(PasswordError::Lost)
        ));
        // The one thread survived the panic and its slot came back.
        assert!(h.hash("TestPassword123!").await.is_ok());
    }

    #[tokio::test]
    async fn callers_over_the_bound_queue_then_get_busy() {
        let limits = HashLimits {
            concurrent: 1,
            queue_timeout: Duration::from_millis(100),
        };
        let h = Hasher::with_limits(CHEAP, limits).unwrap();
        let held = h.slot().await.unwrap();
        // The only slot is taken: both operations wait the timeout and give up.
        assert!(matches!(
            h.hash("TestPassword123!").await,
            Err(PasswordError::Busy(_))
        ));
        assert!(matches!(
            h.verify(None, "x").await,
            Err(PasswordError::Busy(_))
        ));
        // A queued caller proceeds as soon as the slot is released within its wait.
        let queued = tokio::spawn({
            let h = h.clone();
            async move { h.hash("TestPassword123!").await }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        drop(held);
        assert!(queued.await.unwrap().is_ok());
    }
}
