//! Service credentials for `/internal/*` endpoints (api.md §2.6): callers send
//! `X-Service-Name` and `X-Service-Token`; callees compare in constant time.

use std::{collections::HashMap, sync::Arc};

use axum::extract::{FromRef, FromRequestParts};
use http::{StatusCode, request::Parts};
use payplane_kit::{ApiError, config::ConfigError};
use subtle::ConstantTimeEq;
use uuid::Uuid;

/// The secrets of the callers a service accepts (`INTERNAL_SERVICE_TOKENS`).
#[derive(Debug, Clone, Default)]
pub struct ServiceTokens(pub Arc<HashMap<String, String>>);

/// The development default: every known caller with `dev-service-token`.
pub const DEV_SERVICE_TOKEN: &str = "dev-service-token";

impl ServiceTokens {
    /// Parses `name=secret` pairs, comma-separated.
    pub fn parse(var: &str, raw: &str) -> Result<Self, ConfigError> {
        let mut map = HashMap::new();
        for pair in raw.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, secret) = pair
                .split_once('=')
                .filter(|(n, s)| !n.trim().is_empty() && !s.trim().is_empty())
                .ok_or_else(|| ConfigError::new(var, format!("{pair:?} is not name=secret")))?;
            map.insert(name.trim().to_owned(), secret.trim().to_owned());
        }
        Ok(Self(Arc::new(map)))
    }

    pub fn development() -> Self {
        Self(Arc::new(
            ["gateway", "admin", "payments"]
                .iter()
                .map(|n| ((*n).to_owned(), DEV_SERVICE_TOKEN.to_owned()))
                .collect(),
        ))
    }

    fn check(&self, name: &str, token: &str) -> bool {
        self.0
            .get(name)
            .is_some_and(|secret| bool::from(secret.as_bytes().ct_eq(token.as_bytes())))
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
}
