//! The gateway's configuration (api.md §11), read once from the environment; tests build it
//! with [`Config::for_tests`] and adjust fields directly.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use ipnet::IpNet;
use payplane_kit::config::{ConfigError, Env, Environment, ServiceConfig};
use secrecy::SecretString;

/// The four upstream services by name, in the order of the routing table (api.md §3.1).
pub const UPSTREAMS: [&str; 4] = ["auth", "payments", "admin", "profile"];

/// One token bucket (api.md §3.3): sustained rate per minute and burst size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bucket {
    pub per_minute: u32,
    pub burst: u32,
}

/// Rate limiting (api.md §3.3).
#[derive(Debug, Clone)]
pub struct RateLimits {
    pub enabled: bool,
    pub api: Bucket,
    pub auth: Bucket,
    /// Prepended to the Redis keys `rl:<bucket>:<ip>` so tests do not share buckets.
    pub key_prefix: String,
}

/// Timeouts and circuit breaker of api.md §3.7.
#[derive(Debug, Clone, Copy)]
pub struct UpstreamPolicy {
    pub connect_timeout: Duration,
    pub response_timeout: Duration,
    /// Consecutive connection failures or timeouts that open the circuit.
    pub failure_threshold: u32,
    pub open_for: Duration,
    /// How often `/health/ready` of every upstream is polled (0 = never; upstreams then count as ready).
    pub ready_poll: Duration,
}

/// WebSocket hub limits (websocket.md §8, §9).
#[derive(Debug, Clone, Copy)]
pub struct WsLimits {
    pub max_per_user: usize,
    pub heartbeat: Duration,
    pub pong_timeout: Duration,
    pub max_backlog_messages: usize,
    pub max_backlog_bytes: usize,
}

impl Default for WsLimits {
    fn default() -> Self {
        Self {
            max_per_user: 10,
            heartbeat: Duration::from_secs(30),
            pong_timeout: Duration::from_secs(10),
            max_backlog_messages: 1000,
            max_backlog_bytes: 4 * 1024 * 1024,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Config {
    pub environment: Environment,
    pub listen_addr: SocketAddr,
    /// Base URLs by name (`auth`, `payments`, `admin`, `profile`).
    pub upstreams: Vec<(&'static str, String)>,
    /// The web console (`CONSOLE_URL`): every path that is not the API's or the gateway's own.
    pub console_url: String,
    pub public_base_url: String,
    pub cors_origins: Vec<String>,
    pub trusted_proxies: Vec<IpNet>,
    pub metrics_allowed: Vec<IpNet>,
    pub redis_url: String,
    pub amqp_url: String,
    /// Whether to run the WebSocket bridge's broker consumer.
    pub events_enabled: bool,
    /// Names this replica's exclusive queue `gateway.ws.<instance_id>`.
    pub instance_id: String,
    pub issuer: String,
    /// Own secret for `/internal/payments/{id}/parties` (api.md §2.6).
    pub service_token: SecretString,
    pub rate_limits: RateLimits,
    pub upstream: UpstreamPolicy,
    /// Body limits of api.md §3.6 (`/api/profile/**` has its own).
    pub body_limit: usize,
    pub profile_body_limit: usize,
    /// Verify tokens with the keys of this JWKS file instead of fetching auth's (benches, offline use).
    pub jwks_file: Option<PathBuf>,
    pub ws: WsLimits,
    /// PEM certificate chain and key; both set → HTTPS, reloaded when they change.
    pub tls: Option<(PathBuf, PathBuf)>,
    pub tls_poll: Duration,
    /// How often the upstreams' OpenAPI documents are fetched again.
    pub docs_refresh: Duration,
    /// `GATEWAY_WORKERS` (default 1): with more than one, plain-HTTP traffic is accepted by
    /// that many single-threaded runtimes, each on its own `SO_REUSEPORT` listener with its
    /// own upstream pool (nginx's worker model). TLS always uses one listener.
    pub workers: usize,
}

impl ServiceConfig for Config {
    fn listen_addr(&self) -> SocketAddr {
        self.listen_addr
    }

    fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let environment = env.environment()?;
        let upstreams = [
            ("auth", "AUTH_URL", "http://localhost:3001"),
            ("payments", "PAYMENTS_URL", "http://localhost:3002"),
            ("admin", "ADMIN_URL", "http://localhost:3003"),
            ("profile", "PROFILE_URL", "http://localhost:3004"),
        ]
        .into_iter()
        .map(|(name, var, default)| {
            (
                name,
                env.string(var, default).trim_end_matches('/').to_owned(),
            )
        })
        .collect();
        let tls = match (env.opt("TLS_CERT_FILE"), env.opt("TLS_KEY_FILE")) {
            (Some(cert), Some(key)) => Some((PathBuf::from(cert), PathBuf::from(key))),
            (None, None) => None,
            (Some(_), None) => {
                return Err(ConfigError::new(
                    "TLS_KEY_FILE",
                    "is required when TLS_CERT_FILE is set",
                ));
            }
            (None, Some(_)) => {
                return Err(ConfigError::new(
                    "TLS_CERT_FILE",
                    "is required when TLS_KEY_FILE is set",
                ));
            }
        };
        let service_token = payplane_authn::service::own_token(env, environment)?;
        Ok(Self {
            environment,
            listen_addr: env.listen_addr("0.0.0.0:3000")?,
            upstreams,
            console_url: env
                .string("CONSOLE_URL", "http://localhost:3005")
                .trim_end_matches('/')
                .to_owned(),
            public_base_url: env
                .string("PUBLIC_BASE_URL", "http://localhost:3000")
                .trim_end_matches('/')
                .to_owned(),
            cors_origins: env.list(
                "CORS_ALLOWED_ORIGINS",
                "http://localhost:4200,http://localhost:4201,http://localhost:4202,http://localhost:4203,http://localhost:4204,https://localhost",
            ),
            trusted_proxies: env.cidrs("TRUSTED_PROXIES", "")?,
            metrics_allowed: env.cidrs("METRICS_ALLOWED_CIDRS", "")?,
            redis_url: env.string("REDIS_URL", "redis://localhost:6379"),
            amqp_url: env.string("AMQP_URL", "amqp://guest:guest@localhost:5672/%2f"),
            events_enabled: env.parse("GATEWAY_EVENTS", true)?,
            instance_id: env.opt("GATEWAY_INSTANCE_ID").unwrap_or_else(|| {
                uuid::Uuid::new_v4().simple().to_string()[..12].to_owned()
            }),
            issuer: env.string("JWT_ISSUER", "payplane"),
            service_token,
            rate_limits: RateLimits {
                enabled: env.parse("RATE_LIMIT_ENABLED", true)?,
                api: Bucket {
                    per_minute: positive(env, "RATE_LIMIT_API_PER_MINUTE", 100)?,
                    burst: positive(env, "RATE_LIMIT_API_BURST", 20)?,
                },
                auth: Bucket {
                    per_minute: positive(env, "RATE_LIMIT_AUTH_PER_MINUTE", 10)?,
                    burst: positive(env, "RATE_LIMIT_AUTH_BURST", 5)?,
                },
                key_prefix: String::new(),
            },
            upstream: UpstreamPolicy {
                connect_timeout: Duration::from_secs(5),
                response_timeout: Duration::from_secs(30),
                failure_threshold: 5,
                open_for: Duration::from_secs(30),
                ready_poll: Duration::from_secs(5),
            },
            body_limit: 1_048_576,
            profile_body_limit: 3_145_728,
            jwks_file: env.opt("JWKS_FILE").map(PathBuf::from),
            ws: WsLimits::default(),
            tls,
            tls_poll: Duration::from_secs(5),
            docs_refresh: Duration::from_secs(60),
            workers: env.parse("GATEWAY_WORKERS", 1_usize)?.max(1),
        })
    }
}

impl Config {
    /// Loopback, no TLS, no broker consumer, upstreams all pointing at an unused port; tests
    /// replace what they need.
    pub fn for_tests() -> Self {
        let dead = "http://127.0.0.1:9".to_owned();
        Self {
            environment: Environment::Development,
            listen_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            upstreams: UPSTREAMS.iter().map(|n| (*n, dead.clone())).collect(),
            console_url: dead.clone(),
            public_base_url: "http://localhost:3000".into(),
            cors_origins: vec!["http://localhost:4200".into()],
            trusted_proxies: Vec::new(),
            metrics_allowed: Vec::new(),
            redis_url: std::env::var("TEST_REDIS_URL")
                .unwrap_or_else(|_| "redis://127.0.0.1:6379".into()),
            amqp_url: "amqp://guest:guest@127.0.0.1:5672/%2f".into(),
            events_enabled: false,
            instance_id: uuid::Uuid::new_v4().simple().to_string()[..12].to_owned(),
            issuer: "payplane".into(),
            service_token: payplane_authn::service::DEV_SERVICE_TOKEN.into(),
            rate_limits: RateLimits {
                enabled: false,
                api: Bucket {
                    per_minute: 100,
                    burst: 20,
                },
                auth: Bucket {
                    per_minute: 10,
                    burst: 5,
                },
                key_prefix: format!("test:{}:", uuid::Uuid::new_v4().simple()),
            },
            upstream: UpstreamPolicy {
                connect_timeout: Duration::from_secs(5),
                response_timeout: Duration::from_secs(30),
                failure_threshold: 5,
                open_for: Duration::from_secs(30),
                ready_poll: Duration::ZERO,
            },
            body_limit: 1_048_576,
            profile_body_limit: 3_145_728,
            jwks_file: None,
            ws: WsLimits::default(),
            tls: None,
            tls_poll: Duration::from_millis(200),
            docs_refresh: Duration::from_secs(60),
            workers: 1,
        }
    }

    /// Points the upstream called `name` at `url`.
    #[must_use]
    pub fn with_upstream(mut self, name: &str, url: &str) -> Self {
        for (n, u) in &mut self.upstreams {
            if *n == name {
                url.trim_end_matches('/').clone_into(u);
            }
        }
        self
    }

    pub fn upstream_url(&self, name: &str) -> Option<&str> {
        self.upstreams
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, u)| u.as_str())
    }
}

fn positive(env: &Env, var: &str, default: u32) -> Result<u32, ConfigError> {
    let v: u32 = env.parse(var, default)?;
    if v == 0 {
        return Err(ConfigError::new(var, "must be at least 1"));
    }
    Ok(v)
}
