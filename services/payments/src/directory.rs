//! Resolving users for payments (api.md §5.8 step 3): the local directory first; on a miss,
//! auth's internal endpoint (§8.1) with our service credential, and the answer is stored.

use secrecy::{ExposeSecret, SecretString};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Deserialize;
use sqlx::PgPool;
use uuid::Uuid;

use crate::store::{
    StoreError,
    users::{self, DirUser, UserData},
};

#[derive(Debug, thiserror::Error)]
pub enum DirectoryError {
    #[error("auth service unreachable for a user lookup")]
    AuthUnavailable(#[source] reqwest::Error),
    #[error("auth service answered {0} to a user lookup")]
    AuthStatus(u16),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("storing a user fetched from auth")]
    Upsert(#[source] sqlx::Error),
}

/// How the caller names a user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    Id(Uuid),
    Email(String),
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct InternalUser {
    id: Uuid,
    email: String,
    name: String,
    role: String,
    is_active: bool,
    updated_at: DateTime<Utc>,
}

#[derive(Debug, Deserialize)]
struct Envelope {
    data: InternalUser,
}

/// Client of auth's internal user endpoints.
#[derive(Clone)]
pub struct Directory {
    http: reqwest::Client,
    auth_url: String,
    service_token: SecretString,
}

impl Directory {
    pub fn new(auth_url: &str, service_token: &SecretString) -> Self {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .unwrap_or_default();
        Self {
            http,
            auth_url: auth_url.trim_end_matches('/').to_owned(),
            service_token: service_token.clone(),
        }
    }

    async fn fetch(&self, lookup: &Lookup) -> Result<Option<InternalUser>, DirectoryError> {
        let req = match lookup {
            Lookup::Id(id) => self
                .http
                .get(format!("{}/internal/users/{id}", self.auth_url)),
            Lookup::Email(email) => self.http.get(format!(
                "{}/internal/users/by-email?email={}",
                self.auth_url,
                encode(email)
            )),
        };
        let res = req
            .header("x-service-name", "payments")
            .header("x-service-token", self.service_token.expose_secret())
            .send()
            .await
            .map_err(DirectoryError::AuthUnavailable)?;
        match res.status().as_u16() {
            200 => {
                let env: Envelope = res.json().await.map_err(DirectoryError::AuthUnavailable)?;
                Ok(Some(env.data))
            }
            404 => Ok(None),
            other => Err(DirectoryError::AuthStatus(other)),
        }
    }

    /// The live directory row for `lookup`, fetching it from auth on a miss. `None` when the
    /// user does not exist or is deleted.
    pub async fn resolve(
        &self,
        pool: &PgPool,
        lookup: &Lookup,
    ) -> Result<Option<DirUser>, DirectoryError> {
        let mut conn = pool.acquire().await.map_err(StoreError::at("acquire"))?;
        let local = match lookup {
            Lookup::Id(id) => users::by_id(&mut conn, *id).await?,
            Lookup::Email(email) => users::by_email(&mut conn, email).await?,
        };
        if let Some(u) = local {
            return Ok(u.deleted_at.is_none().then_some(u));
        }
        let Some(remote) = self.fetch(lookup).await? else {
            return Ok(None);
        };
        let data = UserData {
            id: remote.id,
            email: &remote.email.to_lowercase(),
            name: &remote.name,
            role: &remote.role,
            is_active: remote.is_active,
            source_updated_at: remote.updated_at,
        };
        if let Err(e) = users::upsert_if_newer(&mut conn, &data).await {
            // Another user still holds the email locally (their change is in flight): answer
            // from auth's data without storing.
            if !matches!(&e, sqlx::Error::Database(db) if db.code().as_deref() == Some("23505")) {
                return Err(DirectoryError::Upsert(e));
            }
        }
        let stored = users::by_id(&mut conn, remote.id).await?;
        Ok(stored.filter(|u| u.deleted_at.is_none()))
    }
}

/// Percent-encodes a query value (everything but unreserved characters).
fn encode(v: &str) -> String {
    v.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}
