//! Password rules and Argon2id hashing (api.md §4.4, §4.13). Hashing runs on the blocking pool
//! because it is deliberately slow, and at most [`HashLimits::concurrent`] hashes run at once:
//! each one takes a core and 19 MiB for tens of milliseconds, so a login flood left unbounded
//! would take every core and a gigabyte of memory from the requests that need neither. Callers
//! over the bound wait in a queue for at most [`HashLimits::queue_timeout`] and then get
//! [`PasswordError::Busy`] (503 `SERVICE_UNAVAILABLE`); callers hash outside any database
//! transaction so a queued login holds no pooled connection.

use std::{sync::Arc, time::Duration};

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
    #[error("the hashing task failed")]
    Join(#[source] tokio::task::JoinError),
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

/// The shortest new password (api.md §4.4).
pub const PASSWORD_MIN: usize = 12;
/// The longest password, new or presented (api.md §4.4, §4.5, §4.9).
pub const PASSWORD_MAX: usize = 255;
/// [`check_rule`]'s composition as a pattern, for the OpenAPI document: an ASCII upper-case
/// letter, a lower-case letter, a digit and a character that is not an ASCII letter or digit.
pub const PASSWORD_PATTERN: &str =
    r"^(?=[\s\S]*[A-Z])(?=[\s\S]*[a-z])(?=[\s\S]*[0-9])(?=[\s\S]*[^A-Za-z0-9])[\s\S]*$";

/// 12..255 characters with an ASCII upper, an ASCII lower, a digit and a non-alphanumeric.
pub fn check_rule(password: &str) -> Result<(), &'static str> {
    let n = password.chars().count();
    if n < PASSWORD_MIN {
        return Err("must be at least 12 characters");
    }
    if n > PASSWORD_MAX {
        return Err("must be at most 255 characters");
    }
    let has = |f: fn(&char) -> bool| password.chars().any(|c| f(&c));
    if !(has(char::is_ascii_uppercase)
        && has(char::is_ascii_lowercase)
        && has(char::is_ascii_digit)
        && has(|c| !c.is_ascii_alphanumeric()))
    {
        return Err("must contain an upper-case letter, a lower-case letter, a digit and a symbol");
    }
    Ok(())
}

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

/// Hashes and verifies with the configured cost, at most [`HashLimits::concurrent`] at a time.
#[derive(Debug, Clone)]
pub struct Hasher {
    params: Params,
    /// Verified against for unknown emails so that timing does not reveal registration.
    dummy: Arc<str>,
    slots: Arc<Semaphore>,
    queue_timeout: Duration,
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
        Ok(Self {
            params,
            dummy: dummy.into(),
            slots: Arc::new(Semaphore::new(limits.concurrent.max(1))),
            queue_timeout: limits.queue_timeout,
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

    pub async fn hash(&self, password: &str) -> Result<String, PasswordError> {
        let permit = self.slot().await?;
        let params = self.params.clone();
        let password = password.to_owned();
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
                .hash_password(password.as_bytes())
                .map(|h| h.to_string())
                .map_err(PasswordError::Hash)
        })
        .await
        .map_err(PasswordError::Join)?
    }

    /// Login's verification: like [`Hasher::verify`], and a bcrypt hash brought over by
    /// `payplane import` (import.md §2) is accepted here — only here — and, when the password
    /// matches, answered with the Argon2id hash that replaces it in the login's transaction.
    /// Both steps run in one blocking task under one hashing slot.
    pub async fn verify_login(
        &self,
        hash: Option<&str>,
        password: &str,
    ) -> Result<Verified, PasswordError> {
        match hash {
            Some(h) if is_bcrypt(h) => {
                let permit = self.slot().await?;
                let (hash, password, params) =
                    (h.to_owned(), password.to_owned(), self.params.clone());
                tokio::task::spawn_blocking(move || {
                    let _permit = permit;
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
                .await
                .map_err(PasswordError::Join)?
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
        let permit = self.slot().await?;
        let hash: Arc<str> = hash.map_or_else(|| self.dummy.clone(), Arc::from);
        let password = password.to_owned();
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            Argon2::default()
                .verify_password(password.as_bytes(), &*hash)
                .is_ok()
        })
        .await
        .map_err(PasswordError::Join)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule() {
        assert!(check_rule("TestPassword123!").is_ok());
        for bad in [
            "Short1!",
            "testpassword123!",
            "TESTPASSWORD123!",
            "TestPassword!!!",
            "TestPassword123",
        ] {
            assert!(check_rule(bad).is_err(), "{bad}");
        }
    }

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
