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
}
