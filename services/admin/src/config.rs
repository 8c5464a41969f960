//! The admin service's configuration (api.md §11), read once from the environment.

use std::net::SocketAddr;

use ipnet::IpNet;
use payplane_authn::service::DEV_SERVICE_TOKEN;
use payplane_kit::config::{ConfigError, Env, Environment, ServiceConfig};
use secrecy::SecretString;

#[derive(Debug, Clone)]
pub struct Config {
    pub environment: Environment,
    pub listen_addr: SocketAddr,
    pub database_url: String,
    pub redis_url: String,
    pub amqp_url: String,
    pub issuer: String,
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
    pub trusted_proxies: Vec<IpNet>,
    /// Whether to run the outbox relay to RabbitMQ in this process.
    pub relay_enabled: bool,
    /// Whether to consume `admin.events` in this process.
    pub consumer_enabled: bool,
}

impl ServiceConfig for Config {
    fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let environment = env.environment()?;
        let service_token = payplane_authn::service::own_token(env, environment)?;
        Ok(Self {
            environment,
            listen_addr: env.listen_addr("0.0.0.0:3003")?,
            database_url: env.string(
                "DATABASE_URL",
                "postgres://payplane:payplane@localhost:5432/admin_db",
            ),
            redis_url: env.string("REDIS_URL", "redis://localhost:6379"),
            amqp_url: env.string("AMQP_URL", "amqp://guest:guest@localhost:5672/%2f"),
            issuer: env.string("JWT_ISSUER", "payplane"),
            auth_url: env.string("AUTH_URL", "http://localhost:3001"),
            payments_url: env.string("PAYMENTS_URL", "http://localhost:3002"),
            profile_url: env.string("PROFILE_URL", "http://localhost:3004"),
            gateway_url: env.string("GATEWAY_URL", "http://localhost:3000"),
            service_token,
            trusted_proxies: env.cidrs("TRUSTED_PROXIES", "127.0.0.0/8,::1/128")?,
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
    /// A configuration for tests and benches: given database and auth, local Redis and
    /// RabbitMQ, relay and consumer on. Set the other service URLs as the test needs.
    pub fn for_tests(database_url: &str, auth_url: &str, amqp_url: &str) -> Self {
        Self {
            environment: Environment::Development,
            listen_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            database_url: database_url.to_owned(),
            redis_url: std::env::var("TEST_REDIS_URL")
                .unwrap_or_else(|_| "redis://127.0.0.1:6379".into()),
            amqp_url: amqp_url.to_owned(),
            issuer: "payplane".into(),
            auth_url: auth_url.to_owned(),
            payments_url: "http://127.0.0.1:9".into(),
            profile_url: "http://127.0.0.1:9".into(),
            gateway_url: "http://127.0.0.1:9".into(),
            service_token: DEV_SERVICE_TOKEN.into(),
            trusted_proxies: "127.0.0.0/8".parse().into_iter().collect(),
            relay_enabled: true,
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
