//! Verifying access tokens (api.md §2.2, §2.5): EdDSA only, key by `kid`, `iss`/`aud`, expiry
//! with 30 s leeway, required claims. Revocation is checked separately (`revocation`).

use std::{collections::HashMap, sync::Arc};

use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header, errors::ErrorKind};

use crate::{AUDIENCE, AccessClaims, jwks::RemoteKeys};

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("token expired")]
    Expired,
    #[error("token invalid")]
    Invalid,
    #[error("signing keys not loaded yet")]
    KeysUnavailable,
}

/// Where verification keys come from.
#[derive(Clone)]
pub enum Keys {
    /// The auth service verifies with its own keys.
    Local(Arc<HashMap<String, DecodingKey>>),
    /// Every other component loads auth's JWKS.
    Remote(RemoteKeys),
}

impl Keys {
    /// Keys from a JWKS document on disk (for components that cannot reach auth's endpoint).
    pub fn from_jwks_file(path: &std::path::Path) -> Result<Self, std::io::Error> {
        let text = std::fs::read_to_string(path)?;
        let set: crate::jwks::JwkSet = serde_json::from_str(&text)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
        Ok(Keys::Local(Arc::new(set.decoding_keys())))
    }
}

#[derive(Clone)]
pub struct Verifier {
    issuer: String,
    keys: Keys,
}

impl Verifier {
    pub fn new(issuer: impl Into<String>, keys: Keys) -> Self {
        Self {
            issuer: issuer.into(),
            keys,
        }
    }

    pub fn keys(&self) -> &Keys {
        &self.keys
    }

    fn validation(&self, check_exp: bool) -> Validation {
        let mut v = Validation::new(Algorithm::EdDSA);
        v.set_issuer(&[&self.issuer]);
        v.set_audience(&[AUDIENCE]);
        v.leeway = 30;
        v.validate_exp = check_exp;
        v.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        v
    }

    async fn key_for(&self, kid: &str) -> Result<DecodingKey, TokenError> {
        match &self.keys {
            Keys::Local(map) => map.get(kid).cloned().ok_or(TokenError::Invalid),
            Keys::Remote(remote) => {
                if !remote.loaded() {
                    // Give the first fetch a chance (auth may have just started), at most one
                    // fetch a second however many requests arrive.
                    remote
                        .refresh_if_due(crate::jwks::MIN_REFETCH_UNLOADED)
                        .await;
                    if !remote.loaded() {
                        return Err(TokenError::KeysUnavailable);
                    }
                }
                remote.key(kid).await.ok_or(TokenError::Invalid)
            }
        }
    }

    /// Full verification.
    pub async fn verify(&self, token: &str) -> Result<AccessClaims, TokenError> {
        self.verify_inner(token, true).await
    }

    /// Signature, `iss` and `aud` only — for logout, which accepts expired tokens (api.md §4.7).
    pub async fn verify_ignoring_expiry(&self, token: &str) -> Result<AccessClaims, TokenError> {
        self.verify_inner(token, false).await
    }

    async fn verify_inner(&self, token: &str, check_exp: bool) -> Result<AccessClaims, TokenError> {
        let header = decode_header(token).map_err(|_| TokenError::Invalid)?;
        if header.alg != Algorithm::EdDSA {
            return Err(TokenError::Invalid);
        }
        let kid = header.kid.ok_or(TokenError::Invalid)?;
        let key = self.key_for(&kid).await?;
        decode::<AccessClaims>(token, &key, &self.validation(check_exp))
            .map(|d| d.claims)
            .map_err(|e| match e.kind() {
                ErrorKind::ExpiredSignature => TokenError::Expired,
                _ => TokenError::Invalid,
            })
    }
}
