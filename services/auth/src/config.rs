//! The auth service's configuration (api.md §11), read once from the environment.

use std::{path::PathBuf, time::Duration};

use payplane_authn::service::ServiceTokens;
use payplane_kit::config::{Common, ConfigError, Env};

use crate::password::HashLimits;

/// Argon2id cost (api.md §4.13).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Argon2Params {
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
}

impl Default for Argon2Params {
    fn default() -> Self {
        Self {
            memory_kib: 19_456,
            iterations: 2,
            parallelism: 1,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Config {
    /// What every service reads the same way; the config derefs to it.
    pub common: Common,
    /// Ed25519 PKCS#8 PEM files; the first signs. Empty = ephemeral key (development only).
    pub signing_keys: Vec<PathBuf>,
    pub access_ttl: Duration,
    pub refresh_ttl: Duration,
    pub session_max_lifetime: Duration,
    pub argon2: Argon2Params,
    /// Concurrent hashes and the wait for a slot (`ARGON2_MAX_CONCURRENT`, `ARGON2_QUEUE_TIMEOUT`).
    pub hash_limits: HashLimits,
    pub service_tokens: ServiceTokens,
}

payplane_kit::common_config!(Config);

impl Config {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let common = Common::from_env(env, "0.0.0.0:3001", "auth_db")?;
        let environment = common.environment;
        let signing_keys: Vec<PathBuf> = env
            .list("AUTH_SIGNING_KEYS", "")
            .into_iter()
            .map(PathBuf::from)
            .collect();
        if environment.is_production() && signing_keys.is_empty() {
            return Err(ConfigError::new(
                "AUTH_SIGNING_KEYS",
                "is required in production",
            ));
        }
        let service_tokens = ServiceTokens::from_env(env, environment)?;
        let argon2 = Argon2Params {
            memory_kib: env.parse("ARGON2_MEMORY_KIB", 19_456)?,
            iterations: env.parse("ARGON2_ITERATIONS", 2)?,
            parallelism: env.parse("ARGON2_PARALLELISM", 1)?,
        };
        if argon2.memory_kib < 8 * argon2.parallelism
            || argon2.iterations == 0
            || argon2.parallelism == 0
        {
            return Err(ConfigError::new(
                "ARGON2_MEMORY_KIB",
                "argon2 parameters out of range",
            ));
        }
        let defaults = HashLimits::default();
        let hash_limits = HashLimits {
            concurrent: env.parse("ARGON2_MAX_CONCURRENT", defaults.concurrent)?,
            queue_timeout: env.duration("ARGON2_QUEUE_TIMEOUT", defaults.queue_timeout)?,
        };
        if hash_limits.concurrent == 0 {
            return Err(ConfigError::new(
                "ARGON2_MAX_CONCURRENT",
                "must be at least 1",
            ));
        }
        Ok(Self {
            common,
            signing_keys,
            access_ttl: env.duration("ACCESS_TOKEN_TTL", Duration::from_secs(15 * 60))?,
            refresh_ttl: env.duration("REFRESH_TOKEN_TTL", Duration::from_secs(7 * 86_400))?,
            session_max_lifetime: env
                .duration("SESSION_MAX_LIFETIME", Duration::from_secs(30 * 86_400))?,
            argon2,
            hash_limits,
            service_tokens,
        })
    }

    /// A configuration for tests and benches: given database, local Redis, cheap argon2.
    pub fn for_tests(database_url: &str) -> Self {
        Self {
            common: Common::for_tests(database_url),
            signing_keys: Vec::new(),
            access_ttl: Duration::from_secs(15 * 60),
            refresh_ttl: Duration::from_secs(7 * 86_400),
            session_max_lifetime: Duration::from_secs(30 * 86_400),
            argon2: Argon2Params {
                memory_kib: 1024,
                iterations: 1,
                parallelism: 1,
            },
            hash_limits: HashLimits::default(),
            service_tokens: ServiceTokens::development(),
        }
    }
}
