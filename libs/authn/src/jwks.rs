//! The JWKS document served by auth (api.md §4.12) and the verifier-side key cache that loads
//! it from the auth service (refreshed every 5 minutes and on an unknown `kid`, at most once
//! per 30 seconds). Fetches are single-flight: however many requests miss at once, one fetch
//! runs and the others use its result; before the first successful load a fetch happens at
//! most once a second, so a burst of tokens while auth is down is not a burst of fetches.

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
/// While no keys are loaded yet: requests wait for at most one fetch a second.
pub const MIN_REFETCH_UNLOADED: Duration = Duration::from_secs(1);

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
    /// Held while a fetch runs: the single flight.
    fetching: Arc<tokio::sync::Mutex<()>>,
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
            fetching: Arc::default(),
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

    /// Fetches now (after any fetch already running).
    pub async fn refresh(&self) -> Result<(), JwksError> {
        let _flight = self.fetching.lock().await;
        self.fetch().await
    }

    /// Fetches unless a fetch started less than `min_interval` ago; a caller that arrives while
    /// a fetch runs waits for it and then uses its result instead of fetching again.
    pub async fn refresh_if_due(&self, min_interval: Duration) {
        let _flight = self.fetching.lock().await;
        let due = self
            .state
            .read()
            .is_ok_and(|s| s.last_attempt.is_none_or(|t| t.elapsed() >= min_interval));
        if due {
            let _ = self.fetch().await;
        }
    }

    async fn fetch(&self) -> Result<(), JwksError> {
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
        let found = self
            .state
            .read()
            .ok()
            .and_then(|s| s.keys.as_ref().and_then(|k| k.get(kid).cloned()));
        if found.is_some() {
            return found;
        }
        self.refresh_if_due(MIN_REFETCH).await;
        self.state
            .read()
            .ok()
            .and_then(|s| s.keys.as_ref().and_then(|k| k.get(kid).cloned()))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use axum::{Router, http::StatusCode, routing::get};

    use super::*;
    use crate::verifier::{Keys, Verifier};

    /// A JWKS endpoint that is down (503) and counts its calls.
    async fn counting_auth() -> (String, Arc<AtomicUsize>) {
        let hits = Arc::new(AtomicUsize::new(0));
        let h = hits.clone();
        let app = Router::new().route(
            "/api/auth/.well-known/jwks.json",
            get(move || {
                h.fetch_add(1, Ordering::SeqCst);
                async { StatusCode::SERVICE_UNAVAILABLE }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        (url, hits)
    }

    /// A token whose header names a `kid` (the signature is never reached).
    fn token_with_kid() -> String {
        // {"alg":"EdDSA","typ":"JWT","kid":"k1"} . {} . AA
        "eyJhbGciOiJFZERTQSIsInR5cCI6IkpXVCIsImtpZCI6ImsxIn0.e30.AA".to_owned()
    }

    /// While keys are missing, 50 concurrent requests with a `kid` cause one fetch, and the
    /// next burst a second later one more — not one fetch each.
    #[tokio::test]
    async fn fetches_are_single_flight_with_a_minimum_interval_before_the_first_load() {
        let (url, hits) = counting_auth().await;
        let verifier = Verifier::new("payplane", Keys::Remote(RemoteKeys::new(&url)));
        let burst = || {
            let mut set = tokio::task::JoinSet::new();
            for _ in 0..50 {
                let v = verifier.clone();
                set.spawn(async move { v.verify(&token_with_kid()).await.is_err() });
            }
            set
        };
        let refused = burst().join_all().await;
        assert!(refused.iter().all(|r| *r), "no keys: every token refused");
        assert_eq!(hits.load(Ordering::SeqCst), 1);
        burst().join_all().await;
        assert_eq!(hits.load(Ordering::SeqCst), 1, "within the interval");
        tokio::time::sleep(MIN_REFETCH_UNLOADED + Duration::from_millis(100)).await;
        burst().join_all().await;
        assert_eq!(hits.load(Ordering::SeqCst), 2);
    }
}
