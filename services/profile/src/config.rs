//! The profile service's configuration (api.md §11), read once from the environment.

use payplane_kit::config::{Common, ConfigError, Env};

#[derive(Debug, Clone)]
pub struct Config {
    /// What every service reads the same way; the config derefs to it.
    pub common: Common,
    /// Where the JWKS is loaded from (`AUTH_URL`).
    pub auth_url: String,
    /// Prepended to every Redis cache key (`CACHE_KEY_PREFIX`, empty by default); tests use a
    /// random one so parallel runs never share entries.
    pub cache_prefix: String,
    /// Whether to consume `profile.events` in this process (`EVENT_CONSUMER`).
    pub consumer_enabled: bool,
}

payplane_kit::common_config!(Config);

impl Config {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        Ok(Self {
            common: Common::from_env(env, "0.0.0.0:3004", "profile_db")?,
            auth_url: env.string("AUTH_URL", "http://localhost:3001"),
            cache_prefix: env.string("CACHE_KEY_PREFIX", ""),
            consumer_enabled: env.parse("EVENT_CONSUMER", true)?,
        })
    }

    /// A configuration for tests and benches: given database and auth service, local Redis
    /// with a random key prefix, no relay or consumer unless a test turns them on.
    pub fn for_tests(database_url: &str, auth_url: &str) -> Self {
        Self {
            common: Common::for_tests(database_url),
            auth_url: auth_url.to_owned(),
            cache_prefix: format!("t{}:", uuid::Uuid::new_v4().simple()),
            consumer_enabled: false,
        }
    }
}

#[cfg(test)]
mod tests {

    use super::*;

    #[test]
    fn defaults_and_errors_name_the_variable() {
        let c = Config::from_env(&Env::from_pairs([])).unwrap();
        assert_eq!(c.listen_addr.port(), 3004);
        assert!(c.database_url.ends_with("/profile_db"));
        assert!(c.relay_enabled && c.consumer_enabled);
        let err = Config::from_env(&Env::from_pairs([("OUTBOX_RELAY", "maybe")])).unwrap_err();
        assert!(err.to_string().contains("OUTBOX_RELAY"), "{err}");
        let err = Config::from_env(&Env::from_pairs([("LISTEN_ADDR", "nope")])).unwrap_err();
        assert!(err.to_string().contains("LISTEN_ADDR"), "{err}");
    }
}
