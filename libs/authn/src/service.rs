//! Service credentials for `/internal/*` endpoints (api.md §2.6): callers send
//! `X-Service-Name` and `X-Service-Token`; callees compare in constant time.

use std::{collections::HashMap, sync::Arc};

use axum::extract::{FromRef, FromRequestParts};
use http::{StatusCode, request::Parts};
use payplane_kit::{
    ApiError,
    config::{ConfigError, Env, Environment},
};
use secrecy::{ExposeSecret, SecretString};
use subtle::ConstantTimeEq;
use uuid::Uuid;

/// The secrets of the callers a service accepts (`INTERNAL_SERVICE_TOKENS`). `Debug` shows the
/// callers' names only.
#[derive(Clone, Default)]
pub struct ServiceTokens(Arc<HashMap<String, SecretString>>);

impl std::fmt::Debug for ServiceTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("ServiceTokens")
            .field(&self.callers())
            .finish()
    }
}

/// The development default: every known caller with `dev-service-token`.
pub const DEV_SERVICE_TOKEN: &str = "dev-service-token";

/// This service's own outgoing secret (`SERVICE_TOKEN`): required in production, the
/// development token otherwise.
pub fn own_token(env: &Env, environment: Environment) -> Result<SecretString, ConfigError> {
    match env.opt("SERVICE_TOKEN") {
        Some(token) => Ok(token.into()),
        None if environment.is_production() => Err(ConfigError::new(
            "SERVICE_TOKEN",
            "is required in production",
        )),
        None => Ok(DEV_SERVICE_TOKEN.into()),
    }
}

impl ServiceTokens {
    /// `INTERNAL_SERVICE_TOKENS`: required in production, the development tokens otherwise.
    pub fn from_env(env: &Env, environment: Environment) -> Result<Self, ConfigError> {
        const VAR: &str = "INTERNAL_SERVICE_TOKENS";
        match env.opt(VAR) {
            Some(raw) => Self::parse(VAR, &raw),
            None if environment.is_production() => {
                Err(ConfigError::new(VAR, "is required in production"))
            }
            None => Ok(Self::development()),
        }
    }

    /// Parses `name=secret` pairs, comma-separated.
    pub fn parse(var: &str, raw: &str) -> Result<Self, ConfigError> {
        let mut map = HashMap::new();
        for pair in raw.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, secret) = pair
                .split_once('=')
                .filter(|(n, s)| !n.trim().is_empty() && !s.trim().is_empty())
                // Never quotes the entry: it may hold a secret.
                .ok_or_else(|| ConfigError::new(var, "an entry is not name=secret"))?;
            map.insert(name.trim().to_owned(), secret.trim().into());
        }
        Ok(Self(Arc::new(map)))
    }

    pub fn development() -> Self {
        Self(Arc::new(
            ["gateway", "admin", "payments"]
                .iter()
                .map(|n| ((*n).to_owned(), DEV_SERVICE_TOKEN.into()))
                .collect(),
        ))
    }

    /// The callers accepted, sorted.
    pub fn callers(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.0.keys().map(String::as_str).collect();
        names.sort_unstable();
        names
    }

    fn check(&self, name: &str, token: &str) -> bool {
        self.0.get(name).is_some_and(|secret| {
            bool::from(secret.expose_secret().as_bytes().ct_eq(token.as_bytes()))
        })
    }
}

/// An authenticated internal caller.
#[derive(Debug, Clone)]
pub struct ServiceCaller {
    pub name: String,
    /// `X-Actor-Id`, when sent.
    actor: Option<String>,
}

impl ServiceCaller {
    /// 403 unless the caller is one of `allowed`.
    pub fn allow(&self, allowed: &[&str]) -> Result<(), ApiError> {
        if allowed.contains(&self.name.as_str()) {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!(
                "Service {} may not call this endpoint",
                self.name
            )))
        }
    }

    /// The required `X-Actor-Id` (400 `VALIDATION_ERROR` on `x-actor-id` otherwise).
    pub fn actor_id(&self) -> Result<Uuid, ApiError> {
        self.actor
            .as_deref()
            .and_then(|a| Uuid::parse_str(a).ok())
            .ok_or_else(|| {
                ApiError::field("x-actor-id", "must be the acting admin's user id (UUID)")
            })
    }
}

impl<S> FromRequestParts<S> for ServiceCaller
where
    ServiceTokens: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let header = |name: &str| {
            parts
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let (name, token) = (header("x-service-name"), header("x-service-token"));
        let tokens = ServiceTokens::from_ref(state);
        match (name, token) {
            (Some(name), Some(token)) if tokens.check(&name, &token) => Ok(ServiceCaller {
                name,
                actor: header("x-actor-id"),
            }),
            _ => Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "UNAUTHORIZED",
                "Service credentials required",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_pairs_and_compares() {
        let t = ServiceTokens::parse("INTERNAL_SERVICE_TOKENS", "admin=s1, payments=s2").unwrap();
        assert!(t.check("admin", "s1"));
        assert!(!t.check("admin", "s2"));
        assert!(!t.check("gateway", "s1"));
        assert_eq!(ServiceTokens::parse("V", "admin").unwrap_err().var, "V");
    }

    /// Configs are logged with `{:?}` at start-up; the secrets must not be in it, nor in the
    /// error a malformed variable gives.
    #[test]
    fn secrets_never_show_in_debug_or_errors() {
        let t = ServiceTokens::parse("V", "payments=tok-p, admin=tok-a").unwrap();
        assert_eq!(format!("{t:?}"), r#"ServiceTokens(["admin", "payments"])"#);
        let err = ServiceTokens::parse("V", "admin=ok,tok-leak").unwrap_err();
        assert!(!err.to_string().contains("tok-leak"), "{err}");
        let env = Env::from_pairs([("SERVICE_TOKEN", "tok-own")]);
        let own = own_token(&env, Environment::Production).unwrap();
        assert!(!format!("{own:?}").contains("tok-own"));
        let none = Env::from_pairs([]);
        assert_eq!(
            own_token(&none, Environment::Production).unwrap_err().var,
            "SERVICE_TOKEN"
        );
        assert_eq!(
            ServiceTokens::from_env(&none, Environment::Production)
                .unwrap_err()
                .var,
            "INTERNAL_SERVICE_TOKENS"
        );
    }
}
