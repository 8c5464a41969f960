//! The console's configuration, read once from the environment; errors name the variable.

use std::net::SocketAddr;

use base64::Engine;
use ipnet::IpNet;
use payplane_kit::config::{ConfigError, Env, Environment, ServiceConfig};
use secrecy::{CloneableSecret, SecretBox, zeroize::Zeroize};

/// The 32 bytes that seal session cookies: zeroed when dropped, never printed.
#[derive(Clone)]
pub struct SessionKey(pub [u8; 32]);

impl Zeroize for SessionKey {
    fn zeroize(&mut self) {
        self.0.zeroize();
    }
}

impl CloneableSecret for SessionKey {}

#[derive(Debug, Clone)]
pub struct Config {
    pub environment: Environment,
    pub listen_addr: SocketAddr,
    /// Where the console calls the public API (`GATEWAY_URL`), like any other client.
    pub gateway_url: String,
    /// The origin browsers see (`PUBLIC_BASE_URL`): form posts must come from it, and cookies
    /// are `Secure` when it is https.
    pub public_base_url: String,
    /// 32 bytes that seal the session cookie (`CONSOLE_SESSION_KEY`, base64). Every replica
    /// needs the same key; without one, development makes a random key per process (sessions
    /// then end when the console restarts) and production refuses to start.
    pub session_key: SecretBox<SessionKey>,
    pub trusted_proxies: Vec<IpNet>,
}

impl ServiceConfig for Config {
    fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let environment = env.environment()?;
        let public_base_url = env
            .string("PUBLIC_BASE_URL", "http://localhost:3000")
            .trim_end_matches('/')
            .to_owned();
        if !(public_base_url.starts_with("http://") || public_base_url.starts_with("https://")) {
            return Err(ConfigError::new(
                "PUBLIC_BASE_URL",
                format!("{public_base_url:?} is not an http(s) URL"),
            ));
        }
        let session_key = match env.opt("CONSOLE_SESSION_KEY") {
            Some(raw) => decode_key(&raw)?,
            None if environment.is_production() => {
                return Err(ConfigError::new(
                    "CONSOLE_SESSION_KEY",
                    "is required in production (32 random bytes, base64)",
                ));
            }
            None => random_key(),
        };
        Ok(Self {
            environment,
            listen_addr: env.listen_addr("0.0.0.0:3005")?,
            gateway_url: env
                .string("GATEWAY_URL", "http://localhost:3000")
                .trim_end_matches('/')
                .to_owned(),
            public_base_url,
            session_key: SecretBox::new(Box::new(SessionKey(session_key))),
            trusted_proxies: env.cidrs("TRUSTED_PROXIES", "127.0.0.0/8,::1/128")?,
        })
    }

    fn listen_addr(&self) -> SocketAddr {
        self.listen_addr
    }
}

impl Config {
    /// Whether cookies carry `Secure` (the browser reaches us over TLS).
    pub fn secure_cookies(&self) -> bool {
        self.public_base_url.starts_with("https://")
    }

    /// The public origin (`scheme://host[:port]`) that form posts must come from.
    pub fn public_origin(&self) -> &str {
        let after_scheme = self.public_base_url.find("://").map_or(0, |i| i + 3);
        match self.public_base_url[after_scheme..].find('/') {
            Some(i) => &self.public_base_url[..after_scheme + i],
            None => &self.public_base_url,
        }
    }
}

fn decode_key(raw: &str) -> Result<[u8; 32], ConfigError> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(raw)
        .or_else(|_| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(raw))
        .map_err(|_| ConfigError::new("CONSOLE_SESSION_KEY", "is not base64"))?;
    bytes.try_into().map_err(|b: Vec<u8>| {
        ConfigError::new(
            "CONSOLE_SESSION_KEY",
            format!("must decode to 32 bytes, not {}", b.len()),
        )
    })
}

fn random_key() -> [u8; 32] {
    let mut key = [0_u8; 32];
    // The system RNG does not fail on the platforms we run on; a zero key would still only
    // protect one process's sessions, never a production one (a key is required there).
    let _ = aws_lc_rs::rand::fill(&mut key);
    key
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_errors_name_the_variable() {
        let c = Config::from_env(&Env::from_pairs([])).unwrap();
        assert_eq!(c.listen_addr.port(), 3005);
        assert_eq!(c.gateway_url, "http://localhost:3000");
        assert!(!c.secure_cookies());
        let c = Config::from_env(&Env::from_pairs([(
            "PUBLIC_BASE_URL",
            "https://pay.example.com/",
        )]))
        .unwrap();
        assert!(c.secure_cookies());
        assert_eq!(c.public_origin(), "https://pay.example.com");
        let err = Config::from_env(&Env::from_pairs([("LISTEN_ADDR", "nope")])).unwrap_err();
        assert_eq!(err.var, "LISTEN_ADDR");
        let err =
            Config::from_env(&Env::from_pairs([("CONSOLE_SESSION_KEY", "c2hvcnQ=")])).unwrap_err();
        assert_eq!(err.var, "CONSOLE_SESSION_KEY");
        let err = Config::from_env(&Env::from_pairs([("ENVIRONMENT", "production")])).unwrap_err();
        assert_eq!(err.var, "CONSOLE_SESSION_KEY");
        let err = Config::from_env(&Env::from_pairs([("PUBLIC_BASE_URL", "ftp://x")])).unwrap_err();
        assert_eq!(err.var, "PUBLIC_BASE_URL");
    }
}
