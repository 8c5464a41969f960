//! The payments service's configuration (api.md §11), read once from the environment.

use std::{net::SocketAddr, time::Duration};

use ipnet::IpNet;
use payplane_authn::service::{DEV_SERVICE_TOKEN, ServiceTokens};
use payplane_kit::config::{ConfigError, Env, Environment, ServiceConfig};
use secrecy::SecretString;

/// Who drives payment status (api.md §5.11).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PspMode {
    Simulator,
    External,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub environment: Environment,
    pub listen_addr: SocketAddr,
    pub database_url: String,
    pub redis_url: String,
    pub amqp_url: String,
    /// Auth service base URL: JWKS and the internal user lookups.
    pub auth_url: String,
    pub issuer: String,
    /// Our own secret for calls to auth (`SERVICE_TOKEN`).
    pub service_token: SecretString,
    /// Secrets of callers of our `/internal/*` endpoints (`INTERNAL_SERVICE_TOKENS`).
    pub service_tokens: ServiceTokens,
    pub trusted_proxies: Vec<IpNet>,
    pub psp_mode: PspMode,
    pub pickup_delay: Duration,
    pub settle_delay: Duration,
    /// How often the simulator polls (500 ms by the contract).
    pub sim_poll_interval: Duration,
    /// `PSP_WEBHOOK_SECRETS`: up to two; empty = every webhook is refused.
    pub webhook_secrets: Vec<SecretString>,
    /// Prefix of every Redis cache key (tests use one per test).
    pub cache_prefix: String,
    /// Whether to run the outbox relay in this process.
    pub relay_enabled: bool,
    /// Whether to consume `auth.user.*` from `payments.events` in this process.
    pub consumer_enabled: bool,
    pub db_pool_size: u32,
}

impl ServiceConfig for Config {
    fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let environment = env.environment()?;
        let prod = environment.is_production();
        let service_token = payplane_authn::service::own_token(env, environment)?;
        let service_tokens = ServiceTokens::from_env(env, environment)?;
        let psp_mode = match env
            .string("PSP_MODE", "simulator")
            .to_ascii_lowercase()
            .as_str()
        {
            "simulator" => PspMode::Simulator,
            "external" => PspMode::External,
            _ => {
                return Err(ConfigError::new(
                    "PSP_MODE",
                    "must be `simulator` or `external`",
                ));
            }
        };
        let webhook_secrets: Vec<SecretString> = env
            .list("PSP_WEBHOOK_SECRETS", "")
            .into_iter()
            .map(SecretString::from)
            .collect();
        if webhook_secrets.len() > 2 {
            return Err(ConfigError::new(
                "PSP_WEBHOOK_SECRETS",
                "at most two secrets",
            ));
        }
        if prod && psp_mode == PspMode::External && webhook_secrets.is_empty() {
            return Err(ConfigError::new(
                "PSP_WEBHOOK_SECRETS",
                "is required in production with PSP_MODE=external",
            ));
        }
        Ok(Self {
            environment,
            listen_addr: env.listen_addr("0.0.0.0:3002")?,
            database_url: env.string(
                "DATABASE_URL",
                "postgres://payplane:payplane@localhost:5432/payments_db",
            ),
            redis_url: env.string("REDIS_URL", "redis://localhost:6379"),
            amqp_url: env.string("AMQP_URL", "amqp://guest:guest@localhost:5672/%2f"),
            auth_url: env.string("AUTH_URL", "http://localhost:3001"),
            issuer: env.string("JWT_ISSUER", "payplane"),
            service_token,
            service_tokens,
            trusted_proxies: env.cidrs("TRUSTED_PROXIES", "127.0.0.0/8,::1/128")?,
            psp_mode,
            pickup_delay: Duration::from_millis(env.parse("PSP_SIM_PICKUP_DELAY_MS", 1000)?),
            settle_delay: Duration::from_millis(env.parse("PSP_SIM_SETTLE_DELAY_MS", 2000)?),
            sim_poll_interval: Duration::from_millis(500),
            webhook_secrets,
            cache_prefix: "pay".into(),
            relay_enabled: env.parse("OUTBOX_RELAY", true)?,
            consumer_enabled: env.parse("EVENT_CONSUMER", true)?,
            db_pool_size: env.parse("DATABASE_POOL_SIZE", 20)?,
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
    /// A configuration for tests and benches: given database and auth, local Redis with a
    /// random key prefix, fast simulator, no relay or consumer (tests turn them on).
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
            service_token: DEV_SERVICE_TOKEN.into(),
            service_tokens: ServiceTokens::development(),
            trusted_proxies: "127.0.0.0/8".parse().into_iter().collect(),
            psp_mode: PspMode::Simulator,
            pickup_delay: Duration::from_millis(1000),
            settle_delay: Duration::from_millis(2000),
            sim_poll_interval: Duration::from_millis(100),
            webhook_secrets: vec![SecretString::from("whsec_test")],
            cache_prefix: format!(
                "paytest{}",
                &uuid::Uuid::new_v4().simple().to_string()[..12]
            ),
            relay_enabled: false,
            consumer_enabled: false,
            db_pool_size: 20,
        }
    }
}
