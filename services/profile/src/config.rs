//! The profile service's configuration (api.md §11), read once from the environment.

use std::net::SocketAddr;

use ipnet::IpNet;
use payplane_kit::config::{ConfigError, Env, Environment, ServiceConfig};

#[derive(Debug, Clone)]
pub struct Config {
    pub environment: Environment,
    pub listen_addr: SocketAddr,
    pub database_url: String,
    pub redis_url: String,
    pub amqp_url: String,
    /// Where the JWKS is loaded from (`AUTH_URL`).
    pub auth_url: String,
    pub issuer: String,
    pub trusted_proxies: Vec<IpNet>,
    /// Prepended to every Redis cache key (`CACHE_KEY_PREFIX`, empty by default); tests use a
    /// random one so parallel runs never share entries.
    pub cache_prefix: String,
    /// Whether to run the outbox relay to RabbitMQ in this process (`OUTBOX_RELAY`).
    pub relay_enabled: bool,
    /// Whether to consume `profile.events` in this process (`EVENT_CONSUMER`).
    pub consumer_enabled: bool,
}

impl ServiceConfig for Config {
    fn from_env(env: &Env) -> Result<Self, ConfigError> {
        Ok(Self {
            environment: env.environment()?,
            listen_addr: env.listen_addr("0.0.0.0:3004")?,
            database_url: env.string(
                "DATABASE_URL",
                "postgres://payplane:payplane@localhost:5432/profile_db",
            ),
            redis_url: env.string("REDIS_URL", "redis://localhost:6379"),
            amqp_url: env.string("AMQP_URL", "amqp://guest:guest@localhost:5672/%2f"),
            auth_url: env.string("AUTH_URL", "http://localhost:3001"),
            issuer: env.string("JWT_ISSUER", "payplane"),
            trusted_proxies: env.cidrs("TRUSTED_PROXIES", "127.0.0.0/8,::1/128")?,
            cache_prefix: env.string("CACHE_KEY_PREFIX", ""),
            relay_enabled: env.parse("OUTBOX_RELAY", true)?,
            consumer_enabled: env.parse("EVENT_CONSUMER", true)?,
        })
    }

    fn listen_addr(&self) -> SocketAddr {
        self.listen_addr
    }

    fn database_url(&self) -> Option<&str> {
        Some(&self.database_url)
    }
}

impl Config {
    /// A configuration for tests and benches: given database and auth service, local Redis
    /// with a random key prefix, no relay or consumer unless a test turns them on.
    pub fn for_tests(database_url: &str, auth_url: &str) -> Self {
        Self {
            environment: Environment::Development,
            listen_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            database_url: database_url.to_owned(),
            redis_url: std::env::var("TEST_REDIS_URL")
                .unwrap_or_else(|_| "redis://127.0.0.1:6379".into()),
            amqp_url: "amqp://guest:guest@127.0.0.1:5672/%2f".into(),
            auth_url: auth_url.to_owned(),
            issuer: "payplane".into(),
            trusted_proxies: "127.0.0.0/8".parse().into_iter().collect(),
            cache_prefix: format!("t{}:", uuid::Uuid::new_v4().simple()),
            relay_enabled: false,
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
