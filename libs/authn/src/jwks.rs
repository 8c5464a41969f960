//! The JWKS document served by auth (api.md §4.12) and the verifier-side key cache that loads
//! it from the auth service (refreshed every 5 minutes and on an unknown `kid`, at most once
//! per 30 seconds).

use std::{
    collections::HashMap,
    sync::{Arc, RwLock},
    time::{Duration, Instant},
};

use jsonwebtoken::DecodingKey;
use serde::{Deserialize, Serialize};

/// One public key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jwk {
    pub kty: String,
    pub crv: String,
    pub x: String,
    pub kid: String,
    #[serde(rename = "use")]
    pub use_: String,
    pub alg: String,
}

impl Jwk {
    pub fn ed25519(kid: &str, x: &str) -> Self {
        Self {
            kty: "OKP".into(),
            crv: "Ed25519".into(),
            x: x.into(),
            kid: kid.into(),
            use_: "sig".into(),
            alg: "EdDSA".into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JwkSet {
    pub keys: Vec<Jwk>,
}

impl JwkSet {
    /// Decoding keys by `kid`, skipping anything that is not an Ed25519 signing key.
    pub fn decoding_keys(&self) -> HashMap<String, DecodingKey> {
        self.keys
            .iter()
            .filter(|k| k.kty == "OKP" && k.crv == "Ed25519" && k.alg == "EdDSA")
            .filter_map(|k| {
                DecodingKey::from_ed_components(&k.x)
                    .ok()
                    .map(|d| (k.kid.clone(), d))
            })
            .collect()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum JwksError {
    #[error("fetching JWKS from {url}")]
    Fetch {
        url: String,
        #[source]
        source: reqwest::Error,
    },
}

const REFRESH_EVERY: Duration = Duration::from_secs(300);
const MIN_REFETCH: Duration = Duration::from_secs(30);

#[derive(Default)]
struct State {
    keys: Option<HashMap<String, DecodingKey>>,
    last_attempt: Option<Instant>,
}

/// Keys fetched from the auth service.
#[derive(Clone)]
pub struct RemoteKeys {
    url: String,
    http: reqwest::Client,
    state: Arc<RwLock<State>>,
}

impl RemoteKeys {
    /// `auth_url` is the auth service's base URL (`AUTH_URL`).
    pub fn new(auth_url: &str) -> Self {
        Self {
            url: format!(
                "{}/api/auth/.well-known/jwks.json",
                auth_url.trim_end_matches('/')
            ),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(3))
                .build()
                .unwrap_or_default(),
            state: Arc::default(),
        }
    }

    /// Starts the background loop: fetch now, retry every 2 s until loaded, then every 5 minutes.
    pub fn spawn_refresh(&self) -> tokio::task::JoinHandle<()> {
        let this = self.clone();
        tokio::spawn(async move {
            loop {
                let ok = this.refresh().await.is_ok();
                tokio::time::sleep(if ok {
                    REFRESH_EVERY
                } else {
                    Duration::from_secs(2)
                })
                .await;
            }
        })
    }

    pub async fn refresh(&self) -> Result<(), JwksError> {
        if let Ok(mut s) = self.state.write() {
            s.last_attempt = Some(Instant::now());
        }
        let set: JwkSet = async {
            self.http
                .get(&self.url)
                .send()
                .await?
                .error_for_status()?
                .json()
                .await
        }
        .await
        .map_err(|source| {
            tracing::warn!(url = %self.url, error = %source, "JWKS fetch failed");
            JwksError::Fetch {
                url: self.url.clone(),
                source,
            }
        })?;
        if let Ok(mut s) = self.state.write() {
            s.keys = Some(set.decoding_keys());
        }
        Ok(())
    }

    pub fn loaded(&self) -> bool {
        self.state.read().is_ok_and(|s| s.keys.is_some())
    }

    /// The key for `kid`; on a miss, refetches unless that happened in the last 30 s.
    pub async fn key(&self, kid: &str) -> Option<DecodingKey> {
        let (found, may_refetch) = match self.state.read() {
            Ok(s) => (
                s.keys.as_ref().and_then(|k| k.get(kid).cloned()),
                s.last_attempt.is_none_or(|t| t.elapsed() >= MIN_REFETCH),
            ),
            Err(_) => (None, false),
        };
        if found.is_some() || !may_refetch {
            return found;
        }
        let _ = self.refresh().await;
        self.state
            .read()
            .ok()
            .and_then(|s| s.keys.as_ref().and_then(|k| k.get(kid).cloned()))
    }
}
