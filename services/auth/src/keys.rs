//! Ed25519 signing keys (api.md §4.12): loaded from PKCS#8 PEM files (the first signs, `kid` =
//! file name without extension) or, in development, one ephemeral key. Reads files at start-up.

use std::{collections::HashMap, path::Path, sync::Arc};

use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use jsonwebtoken::{DecodingKey, EncodingKey};
use payplane_authn::jwks::{Jwk, JwkSet};
use rustls_pki_types::{PrivatePkcs8KeyDer, pem::PemObject};

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("AUTH_SIGNING_KEYS: cannot read {path}")]
    Read {
        path: String,
        #[source]
        source: rustls_pki_types::pem::Error,
    },
    #[error("AUTH_SIGNING_KEYS: {path} is not an Ed25519 PKCS#8 key")]
    NotEd25519 { path: String },
    #[error("generating an ephemeral Ed25519 key")]
    Generate,
}

/// The signing key and every published public key.
pub struct SigningKeys {
    pub kid: String,
    pub encoding: EncodingKey,
    pub jwks: JwkSet,
    pub decoding: Arc<HashMap<String, DecodingKey>>,
}

fn public_x(pkcs8: &[u8]) -> Option<String> {
    let pair = Ed25519KeyPair::from_pkcs8(pkcs8)
        .or_else(|_| Ed25519KeyPair::from_pkcs8_maybe_unchecked(pkcs8))
        .ok()?;
    Some(URL_SAFE_NO_PAD.encode(pair.public_key().as_ref()))
}

impl SigningKeys {
    fn from_der(keys: &[(String, Vec<u8>, String)]) -> Option<Self> {
        let (kid, first, _) = keys.first()?.clone();
        let jwks = JwkSet {
            keys: keys
                .iter()
                .map(|(kid, _, x)| Jwk::ed25519(kid, x))
                .collect(),
        };
        Some(Self {
            kid,
            encoding: EncodingKey::from_ed_der(&first),
            decoding: Arc::new(jwks.decoding_keys()),
            jwks,
        })
    }

    pub fn load(paths: &[impl AsRef<Path>]) -> Result<Self, KeyError> {
        let mut keys = Vec::new();
        for path in paths {
            let path = path.as_ref();
            let shown = path.display().to_string();
            let der = PrivatePkcs8KeyDer::from_pem_file(path).map_err(|source| KeyError::Read {
                path: shown.clone(),
                source,
            })?;
            let der = der.secret_pkcs8_der().to_vec();
            let x = public_x(&der).ok_or_else(|| KeyError::NotEd25519 {
                path: shown.clone(),
            })?;
            let kid = path
                .file_stem()
                .map_or_else(|| shown.clone(), |s| s.to_string_lossy().into_owned());
            keys.push((kid, der, x));
        }
        Self::from_der(&keys).ok_or(KeyError::Generate)
    }

    /// One fresh key; tokens do not survive a restart.
    pub fn ephemeral() -> Result<Self, KeyError> {
        let pair = Ed25519KeyPair::generate().map_err(|_| KeyError::Generate)?;
        let der = pair
            .to_pkcs8v1()
            .map_err(|_| KeyError::Generate)?
            .as_ref()
            .to_vec();
        let x = URL_SAFE_NO_PAD.encode(pair.public_key().as_ref());
        let kid = format!(
            "ephemeral-{}",
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        );
        Self::from_der(&[(kid, der, x)]).ok_or(KeyError::Generate)
    }
}
