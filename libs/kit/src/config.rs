//! Typed configuration from environment variables (api.md §11): read once at start-up; a bad
//! or missing value stops the process with an error naming the variable. No I/O beyond the
//! process environment.

use std::{collections::HashMap, fmt::Display, net::SocketAddr, str::FromStr, time::Duration};

use ipnet::IpNet;

/// A configuration problem, always naming the variable.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("configuration variable {var}: {message}")]
pub struct ConfigError {
    pub var: String,
    pub message: String,
}

impl ConfigError {
    pub fn new(var: &str, message: impl Into<String>) -> Self {
        Self {
            var: var.to_owned(),
            message: message.into(),
        }
    }
}

/// What the service skeleton ([`crate::service`]) needs of a service's typed configuration:
/// how to read it, where to listen, and which database `<binary> migrate` applies to.
pub trait ServiceConfig: Sized + Send {
    /// Reads every variable once; the error names the first bad or missing one.
    fn from_env(env: &Env) -> Result<Self, ConfigError>;

    /// `LISTEN_ADDR`.
    fn listen_addr(&self) -> SocketAddr;

    /// `DATABASE_URL` of the service's own PostgreSQL database; `None`: it has none.
    fn database_url(&self) -> Option<&str> {
        None
    }
}

/// The settings every service with its own database reads the same way (api.md §11): held
/// as `common` by its `Config`, which derefs to it through [`common_config!`]. Its `Debug`
/// masks the passwords in the connection URLs, so a logged config leaks none.
#[derive(Clone)]
pub struct Common {
    pub environment: Environment,
    pub listen_addr: SocketAddr,
    pub database_url: String,
    pub redis_url: String,
    pub amqp_url: String,
    pub issuer: String,
    pub trusted_proxies: Vec<IpNet>,
    /// Whether to run the outbox relay to RabbitMQ in this process (`OUTBOX_RELAY`).
    pub relay_enabled: bool,
}

impl Common {
    /// `ENVIRONMENT`, `LISTEN_ADDR` (default `default_listen`), `DATABASE_URL` (default: the
    /// local `database`), `REDIS_URL`, `AMQP_URL`, `JWT_ISSUER`, `TRUSTED_PROXIES` and
    /// `OUTBOX_RELAY`.
    pub fn from_env(env: &Env, default_listen: &str, database: &str) -> Result<Self, ConfigError> {
        Ok(Self {
            environment: env.environment()?,
            listen_addr: env.listen_addr(default_listen)?,
            database_url: env.string(
                "DATABASE_URL",
                &format!("postgres://payplane:payplane@localhost:5432/{database}"),
            ),
            redis_url: env.string("REDIS_URL", "redis://localhost:6379"),
            amqp_url: env.string("AMQP_URL", "amqp://guest:guest@localhost:5672/%2f"),
            issuer: env.string("JWT_ISSUER", "payplane"),
            trusted_proxies: env.cidrs("TRUSTED_PROXIES", "127.0.0.0/8,::1/128")?,
            relay_enabled: env.parse("OUTBOX_RELAY", true)?,
        })
    }

    /// For tests and benches: the given database, an ephemeral local port, local Redis
    /// (`TEST_REDIS_URL` if set) and RabbitMQ, no relay unless a test turns it on.
    pub fn for_tests(database_url: &str) -> Self {
        Self {
            environment: Environment::Development,
            listen_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            database_url: database_url.to_owned(),
            redis_url: std::env::var("TEST_REDIS_URL")
                .unwrap_or_else(|_| "redis://127.0.0.1:6379".into()),
            amqp_url: "amqp://guest:guest@127.0.0.1:5672/%2f".into(),
            issuer: "payplane".into(),
            trusted_proxies: "127.0.0.0/8".parse().into_iter().collect(),
            relay_enabled: false,
        }
    }
}

impl std::fmt::Debug for Common {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Common")
            .field("environment", &self.environment)
            .field("listen_addr", &self.listen_addr)
            .field("database_url", &redact_url(&self.database_url))
            .field("redis_url", &redact_url(&self.redis_url))
            .field("amqp_url", &redact_url(&self.amqp_url))
            .field("issuer", &self.issuer)
            .field("trusted_proxies", &self.trusted_proxies)
            .field("relay_enabled", &self.relay_enabled)
            .finish()
    }
}

/// The `<SERVICE>_URL` variables by which services started side by side on this machine find
/// one another, one per `(service, port)`, on the loopback address (so that `localhost`
/// resolving to ::1 cannot send a call astray). For the dev runner, the benches and the
/// end-to-end harness.
pub fn loopback_peer_urls<'a>(
    ports: impl IntoIterator<Item = (&'a str, u16)>,
) -> Vec<(String, String)> {
    ports
        .into_iter()
        .map(|(service, port)| {
            (
                format!("{}_URL", service.to_ascii_uppercase()),
                format!("http://127.0.0.1:{port}"),
            )
        })
        .collect()
}

/// The environment every service of a whole platform started on this machine for a test or a
/// bench shares: development mode, the local Redis, the broker at `amqp_url`, the peers of
/// `ports` on loopback with the gateway as the public base URL, a cheap argon2 (sign-in cost
/// is not what these measure) and per-IP rate limits of `(per_minute, burst)` for both buckets
/// (every client is 127.0.0.1, so the per-IP buckets would otherwise be shared).
pub fn local_platform_env(
    ports: &std::collections::BTreeMap<&str, u16>,
    amqp_url: &str,
    (per_minute, burst): (u64, u64),
) -> Vec<(String, String)> {
    let gateway = ports.get("gateway").copied().unwrap_or_default();
    let fixed = [
        ("ENVIRONMENT", "development".to_owned()),
        ("REDIS_URL", "redis://127.0.0.1:6379".to_owned()),
        ("AMQP_URL", amqp_url.to_owned()),
        ("PUBLIC_BASE_URL", format!("http://127.0.0.1:{gateway}")),
        ("ARGON2_MEMORY_KIB", "1024".to_owned()),
        ("ARGON2_ITERATIONS", "1".to_owned()),
        ("RATE_LIMIT_API_PER_MINUTE", per_minute.to_string()),
        ("RATE_LIMIT_API_BURST", burst.to_string()),
        ("RATE_LIMIT_AUTH_PER_MINUTE", per_minute.to_string()),
        ("RATE_LIMIT_AUTH_BURST", burst.to_string()),
    ];
    let mut env: Vec<(String, String)> = fixed.map(|(k, v)| (k.to_owned(), v)).into();
    env.extend(loopback_peer_urls(ports.iter().map(|(s, p)| (*s, *p))));
    env
}

/// `scheme://user:password@host/…` with the password replaced by `***`; other URLs as they are.
pub fn redact_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://").map(|i| i + 3) else {
        return url.to_owned();
    };
    let authority_end = url[scheme_end..]
        .find(['/', '?', '#'])
        .map_or(url.len(), |i| scheme_end + i);
    // The last `@` of the authority ends the user information (a password may contain `@`).
    let Some(at) = url[scheme_end..authority_end]
        .rfind('@')
        .map(|i| scheme_end + i)
    else {
        return url.to_owned();
    };
    match url[scheme_end..at].find(':') {
        Some(colon) => format!("{}***{}", &url[..=scheme_end + colon], &url[at..]),
        None => url.to_owned(),
    }
}

/// For a service's `Config` holding [`Common`] as `common`: derefs to it (callers read
/// `config.amqp_url` as before) and implements [`ServiceConfig`] with the service's own
/// inherent `Config::from_env`.
#[macro_export]
macro_rules! common_config {
    ($config:ty) => {
        impl ::std::ops::Deref for $config {
            type Target = $crate::config::Common;

            fn deref(&self) -> &$crate::config::Common {
                &self.common
            }
        }

        impl ::std::ops::DerefMut for $config {
            fn deref_mut(&mut self) -> &mut $crate::config::Common {
                &mut self.common
            }
        }

        impl $crate::config::ServiceConfig for $config {
            fn from_env(
                env: &$crate::config::Env,
            ) -> ::std::result::Result<Self, $crate::config::ConfigError> {
                <$config>::from_env(env)
            }

            fn listen_addr(&self) -> ::std::net::SocketAddr {
                self.common.listen_addr
            }

            fn database_url(&self) -> ::std::option::Option<&str> {
                ::std::option::Option::Some(&self.common.database_url)
            }
        }
    };
}

/// `ENVIRONMENT`: development relaxes required settings; production enforces them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Environment {
    Development,
    Production,
}

impl Environment {
    pub fn is_production(self) -> bool {
        self == Environment::Production
    }
}

/// A snapshot of variables to read from; tests build one from pairs instead of mutating the
/// process environment.
#[derive(Debug, Clone, Default)]
pub struct Env {
    vars: HashMap<String, String>,
}

impl Env {
    pub fn from_process() -> Self {
        Self {
            vars: std::env::vars().collect(),
        }
    }

    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        Self {
            vars: pairs
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
        }
    }

    /// The value if set and not blank.
    pub fn opt(&self, name: &str) -> Option<String> {
        self.vars
            .get(name)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    }

    pub fn string(&self, name: &str, default: &str) -> String {
        self.opt(name).unwrap_or_else(|| default.to_owned())
    }

    pub fn required(&self, name: &str) -> Result<String, ConfigError> {
        self.opt(name)
            .ok_or_else(|| ConfigError::new(name, "is required but not set"))
    }

    pub fn parse<T>(&self, name: &str, default: T) -> Result<T, ConfigError>
    where
        T: FromStr,
        T::Err: Display,
    {
        match self.opt(name) {
            None => Ok(default),
            Some(v) => v
                .parse()
                .map_err(|e| ConfigError::new(name, format!("{v:?}: {e}"))),
        }
    }

    pub fn duration(&self, name: &str, default: Duration) -> Result<Duration, ConfigError> {
        match self.opt(name) {
            None => Ok(default),
            Some(v) => {
                crate::duration::parse(&v).map_err(|e| ConfigError::new(name, e.to_string()))
            }
        }
    }

    /// Comma-separated list; blank entries dropped.
    pub fn list(&self, name: &str, default: &str) -> Vec<String> {
        self.string(name, default)
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    }

    pub fn cidrs(&self, name: &str, default: &str) -> Result<Vec<IpNet>, ConfigError> {
        self.list(name, default)
            .iter()
            .map(|item| {
                item.parse::<IpNet>()
                    .or_else(|_| item.parse::<std::net::IpAddr>().map(IpNet::from))
                    .map_err(|_| ConfigError::new(name, format!("{item:?} is not a CIDR")))
            })
            .collect()
    }

    /// `LISTEN_ADDR`; accepts `:3001` as shorthand for `0.0.0.0:3001`.
    pub fn listen_addr(&self, default: &str) -> Result<SocketAddr, ConfigError> {
        let raw = self.string("LISTEN_ADDR", default);
        let full = if raw.starts_with(':') {
            format!("0.0.0.0{raw}")
        } else {
            raw.clone()
        };
        full.parse()
            .map_err(|_| ConfigError::new("LISTEN_ADDR", format!("{raw:?} is not host:port")))
    }

    pub fn environment(&self) -> Result<Environment, ConfigError> {
        match self
            .string("ENVIRONMENT", "development")
            .to_ascii_lowercase()
            .as_str()
        {
            "development" => Ok(Environment::Development),
            "production" => Ok(Environment::Production),
            other => Err(ConfigError::new(
                "ENVIRONMENT",
                format!("{other:?} is not one of development, production"),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_the_variable() {
        let env = Env::from_pairs([("ARGON2_ITERATIONS", "two"), ("ENVIRONMENT", "staging")]);
        let err = env.parse::<u32>("ARGON2_ITERATIONS", 2).unwrap_err();
        assert_eq!(err.var, "ARGON2_ITERATIONS");
        assert!(err.to_string().contains("ARGON2_ITERATIONS"));
        assert_eq!(env.environment().unwrap_err().var, "ENVIRONMENT");
        assert_eq!(
            env.required("AUTH_SIGNING_KEYS").unwrap_err().var,
            "AUTH_SIGNING_KEYS"
        );
    }

    #[test]
    fn defaults_and_shapes() {
        let env = Env::from_pairs([
            ("LISTEN_ADDR", ":3009"),
            ("TRUSTED_PROXIES", "10.0.0.0/8, ::1"),
        ]);
        assert_eq!(env.listen_addr("0.0.0.0:3001").unwrap().port(), 3009);
        assert_eq!(env.cidrs("TRUSTED_PROXIES", "").unwrap().len(), 2);
        assert_eq!(
            env.duration("ACCESS_TOKEN_TTL", Duration::from_secs(900))
                .unwrap()
                .as_secs(),
            900
        );
        assert!(Env::from_pairs([("X", "nope/99")]).cidrs("X", "").is_err());
    }

    #[test]
    fn common_settings_defaults_and_errors() {
        let c = Common::from_env(&Env::from_pairs([]), "0.0.0.0:3004", "profile_db").unwrap();
        assert_eq!(c.listen_addr.port(), 3004);
        assert_eq!(
            c.database_url,
            "postgres://payplane:payplane@localhost:5432/profile_db"
        );
        assert_eq!(c.amqp_url, "amqp://guest:guest@localhost:5672/%2f");
        assert!(c.relay_enabled && c.environment == Environment::Development);
        let err =
            Common::from_env(&Env::from_pairs([("OUTBOX_RELAY", "maybe")]), ":1", "x").unwrap_err();
        assert_eq!(err.var, "OUTBOX_RELAY");
    }

    #[test]
    fn debug_masks_connection_passwords() {
        for (url, shown) in [
            (
                "postgres://payplane:s3cr3t@db:5432/admin_db",
                "postgres://payplane:***@db:5432/admin_db",
            ),
            ("amqp://u:p@ss@mq:5672/%2f", "amqp://u:***@mq:5672/%2f"),
            ("redis://:hunter2@cache:6379", "redis://:***@cache:6379"),
            ("redis://cache:6379", "redis://cache:6379"),
            ("postgres://user@db/x?a=b@c", "postgres://user@db/x?a=b@c"),
        ] {
            assert_eq!(redact_url(url), shown, "{url}");
        }
        let mut c = Common::for_tests("postgres://payplane:s3cr3t@db:5432/admin_db");
        c.amqp_url = "amqp://guest:topsecret@mq:5672/%2f".into();
        let shown = format!("{c:?}");
        assert!(
            !shown.contains("s3cr3t") && !shown.contains("topsecret"),
            "{shown}"
        );
        assert!(shown.contains("payplane:***@db"), "{shown}");
    }
}
