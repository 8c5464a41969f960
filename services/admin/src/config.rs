//! The admin service's configuration (api.md §11), read once from the environment.

use payplane_authn::service::DEV_SERVICE_TOKEN;
use payplane_kit::config::{Common, ConfigError, Env};
use secrecy::SecretString;

#[derive(Debug, Clone)]
pub struct Config {
    /// What every service reads the same way; the config derefs to it.
    pub common: Common,
    /// Auth: JWKS, internal user API, readiness probe.
    pub auth_url: String,
    /// Payments: statistics for the dashboard, readiness probe.
    pub payments_url: String,
    /// Profile: readiness probe.
    pub profile_url: String,
    /// Gateway: liveness probe.
    pub gateway_url: String,
    /// This service's own secret for `/internal/*` calls (`SERVICE_TOKEN`).
    pub service_token: SecretString,
    /// Whether to consume `admin.events` in this process.
    pub consumer_enabled: bool,
}

payplane_kit::common_config!(Config);

impl Config {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let common = Common::from_env(env, "0.0.0.0:3003", "admin_db")?;
        let service_token = payplane_authn::service::own_token(env, common.environment)?;
        Ok(Self {
            common,
            auth_url: env.string("AUTH_URL", "http://localhost:3001"),
            payments_url: env.string("PAYMENTS_URL", "http://localhost:3002"),
            profile_url: env.string("PROFILE_URL", "http://localhost:3004"),
            gateway_url: env.string("GATEWAY_URL", "http://localhost:3000"),
            service_token,
            consumer_enabled: env.parse("EVENT_CONSUMER", true)?,
        })
    }

    /// A configuration for tests and benches: given database and auth, local Redis and
    /// RabbitMQ, relay and consumer on. Set the other service URLs as the test needs.
    pub fn for_tests(database_url: &str, auth_url: &str, amqp_url: &str) -> Self {
        Self {
            common: Common {
                amqp_url: amqp_url.to_owned(),
                relay_enabled: true,
                ..Common::for_tests(database_url)
            },
            auth_url: auth_url.to_owned(),
            payments_url: "http://127.0.0.1:9".into(),
            profile_url: "http://127.0.0.1:9".into(),
            gateway_url: "http://127.0.0.1:9".into(),
            service_token: DEV_SERVICE_TOKEN.into(),
            consumer_enabled: true,
        }
    }
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;

    use super::*;

    #[test]
    fn defaults_and_production_requirements() {
        let c = Config::from_env(&Env::from_pairs([])).unwrap();
        assert_eq!(c.listen_addr.port(), 3003);
        assert_eq!(c.auth_url, "http://localhost:3001");
        assert_eq!(c.service_token.expose_secret(), DEV_SERVICE_TOKEN);
        let c = Config::from_env(&Env::from_pairs([("SERVICE_TOKEN", "s3cret-admin")])).unwrap();
        assert!(
            !format!("{c:?}").contains("s3cret-admin"),
            "Debug shows the token"
        );
        let err = Config::from_env(&Env::from_pairs([("ENVIRONMENT", "production")])).unwrap_err();
        assert_eq!(err.var, "SERVICE_TOKEN");
        let err = Config::from_env(&Env::from_pairs([("OUTBOX_RELAY", "maybe")])).unwrap_err();
        assert_eq!(err.var, "OUTBOX_RELAY");
    }
}
