//! The payments service's configuration (api.md §11), read once from the environment.

use std::time::Duration;

use payplane_authn::service::{DEV_SERVICE_TOKEN, ServiceTokens};
use payplane_kit::config::{Common, ConfigError, Env};
use secrecy::SecretString;

/// Who drives payment status (api.md §5.11).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PspMode {
    Simulator,
    External,
}

#[derive(Debug, Clone)]
pub struct Config {
    /// What every service reads the same way; the config derefs to it.
    pub common: Common,
    /// Auth service base URL: JWKS and the internal user lookups.
    pub auth_url: String,
    /// Our own secret for calls to auth (`SERVICE_TOKEN`).
    pub service_token: SecretString,
    /// Secrets of callers of our `/internal/*` endpoints (`INTERNAL_SERVICE_TOKENS`).
    pub service_tokens: ServiceTokens,
    pub psp_mode: PspMode,
    pub pickup_delay: Duration,
    pub settle_delay: Duration,
    /// How often the simulator polls (500 ms by the contract).
    pub sim_poll_interval: Duration,
    /// `PSP_WEBHOOK_SECRETS`: up to two; empty = every webhook is refused.
    pub webhook_secrets: Vec<SecretString>,
    /// Prefix of every Redis cache key (tests use one per test).
    pub cache_prefix: String,
    /// Whether to consume `auth.user.*` from `payments.events` in this process.
    pub consumer_enabled: bool,
    pub db_pool_size: u32,
}

payplane_kit::common_config!(Config);

impl Config {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let common = Common::from_env(env, "0.0.0.0:3002", "payments_db")?;
        let environment = common.environment;
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
            common,
            auth_url: env.string("AUTH_URL", "http://localhost:3001"),
            service_token,
            service_tokens,
            psp_mode,
            pickup_delay: Duration::from_millis(env.parse("PSP_SIM_PICKUP_DELAY_MS", 1000)?),
            settle_delay: Duration::from_millis(env.parse("PSP_SIM_SETTLE_DELAY_MS", 2000)?),
            sim_poll_interval: Duration::from_millis(500),
            webhook_secrets,
            cache_prefix: "pay".into(),
            consumer_enabled: env.parse("EVENT_CONSUMER", true)?,
            db_pool_size: env.parse("DATABASE_POOL_SIZE", 20)?,
        })
    }

    /// A configuration for tests and benches: given database and auth, local Redis with a
    /// random key prefix, fast simulator, no relay or consumer (tests turn them on).
    pub fn for_tests(database_url: &str, auth_url: &str) -> Self {
        Self {
            common: Common::for_tests(database_url),
            auth_url: auth_url.to_owned(),
            service_token: DEV_SERVICE_TOKEN.into(),
            service_tokens: ServiceTokens::development(),
            psp_mode: PspMode::Simulator,
            pickup_delay: Duration::from_millis(1000),
            settle_delay: Duration::from_millis(2000),
            sim_poll_interval: Duration::from_millis(100),
            webhook_secrets: vec![SecretString::from("whsec_test")],
            cache_prefix: format!(
                "paytest{}",
                &uuid::Uuid::new_v4().simple().to_string()[..12]
            ),
            consumer_enabled: false,
            db_pool_size: 20,
        }
    }
}
