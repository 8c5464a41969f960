//! A thin JSON client for the public API (through the gateway), and the sign-in flows the
//! journeys repeat: register, login, refresh.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use http::{HeaderMap, Method, StatusCode};
use serde_json::{Value, json};

/// One HTTP answer: status, headers and the parsed body (`Null` when empty or not JSON).
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Reply {
    /// `body.data`, the success envelope's payload.
    pub fn data(&self) -> &Value {
        &self.body["data"]
    }

    /// `body.error.code`, the stable error code.
    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or_default()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Fails with the whole reply in the message unless the status is the expected one.
    pub fn expect_status(self, expected: u16) -> anyhow::Result<Self> {
        if self.status.as_u16() != expected {
            bail!("expected {expected}, got {}: {}", self.status, self.body);
        }
        Ok(self)
    }
}

/// The statuses of a payment's `transactions`, in the order the API lists them.
pub fn transaction_statuses(payment: &Value) -> Vec<&str> {
    payment["transactions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| t["status"].as_str())
        .collect()
}

/// The gateway's public API.
#[derive(Clone)]
pub struct Api {
    pub base: String,
    http: reqwest::Client,
}

impl Api {
    pub fn new(base: &str) -> Self {
        Self {
            base: base.trim_end_matches('/').to_owned(),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap_or_default(),
        }
    }

    /// Sends one request; `token` becomes `Authorization: Bearer`, `body` a JSON body.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> anyhow::Result<Reply> {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        if let Some(body) = body {
            req = req.json(body);
        }
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        let resp = req.send().await.with_context(|| path.to_owned())?;
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = resp.bytes().await?;
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Ok(Reply {
            status,
            headers,
            body,
        })
    }

    pub async fn get(&self, path: &str, token: &str) -> anyhow::Result<Reply> {
        self.send(Method::GET, path, Some(token), None, &[]).await
    }

    pub async fn post(
        &self,
        path: &str,
        token: Option<&str>,
        body: &Value,
    ) -> anyhow::Result<Reply> {
        self.send(Method::POST, path, token, Some(body), &[]).await
    }

    pub async fn patch(&self, path: &str, token: &str, body: &Value) -> anyhow::Result<Reply> {
        self.send(Method::PATCH, path, Some(token), Some(body), &[])
            .await
    }

    /// Registers a CUSTOMER or VENDOR on a device and returns its signed-in session.
    pub async fn register(
        &self,
        email: &str,
        name: &str,
        role: &str,
        device: &str,
    ) -> anyhow::Result<Session> {
        let reply = self
            .post(
                "/api/auth/register",
                None,
                &json!({"email": email, "password": crate::PASSWORD, "name": name,
                        "role": role, "deviceId": device, "deviceType": "browser"}),
            )
            .await?
            .expect_status(201)?;
        Session::from_auth_result(reply.data())
    }

    /// `POST /api/payments` with an `Idempotency-Key`, as a client that may send it again does.
    pub async fn create_payment(
        &self,
        token: &str,
        body: &Value,
        key: &str,
    ) -> anyhow::Result<Reply> {
        let headers = [("Idempotency-Key", key)];
        self.send(
            Method::POST,
            "/api/payments",
            Some(token),
            Some(body),
            &headers,
        )
        .await
    }

    /// Signs `session` out (`POST /api/auth/logout`, answered 200).
    pub async fn logout(&self, session: &Session) -> anyhow::Result<()> {
        self.post("/api/auth/logout", Some(&session.access_token), &json!({}))
            .await?
            .expect_status(200)?;
        Ok(())
    }

    pub async fn login(&self, email: &str, device: &str) -> anyhow::Result<Session> {
        let reply = self
            .post(
                "/api/auth/login",
                None,
                &json!({"email": email, "password": crate::PASSWORD, "deviceId": device}),
            )
            .await?
            .expect_status(200)?;
        Session::from_auth_result(reply.data())
    }

    /// Rotates the refresh token; the new access token is built from the user's current row.
    pub async fn refresh(&self, session: &Session) -> anyhow::Result<Session> {
        let reply = self
            .post(
                "/api/auth/refresh",
                None,
                &json!({"refreshToken": session.refresh_token}),
            )
            .await?
            .expect_status(200)?;
        let mut next = Session::from_auth_result(reply.data())?;
        next.device_id.clone_from(&session.device_id);
        Ok(next)
    }

    /// Repeats `probe` until it returns `Some`, or fails after `limit` with `what`.
    pub async fn eventually<T, F, Fut>(
        &self,
        limit: Duration,
        what: &str,
        mut probe: F,
    ) -> anyhow::Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = anyhow::Result<Option<T>>>,
    {
        let started = Instant::now();
        loop {
            if let Some(found) = probe().await? {
                return Ok(found);
            }
            if started.elapsed() > limit {
                bail!("{what}: not seen within {limit:?}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// A signed-in device.
#[derive(Debug, Clone)]
pub struct Session {
    pub user_id: String,
    pub role: String,
    pub access_token: String,
    pub refresh_token: String,
    pub session_id: String,
    pub device_id: String,
}

impl Session {
    /// The session of an auth result (`user`, `accessToken`, `refreshToken`, `sessionId`,
    /// `deviceId`), from REST's `data` or a GraphQL auth mutation's payload alike.
    pub fn from_auth_result(data: &Value) -> anyhow::Result<Self> {
        let text = |v: &Value| v.as_str().map(str::to_owned);
        Ok(Self {
            user_id: text(&data["user"]["id"]).context("user.id")?,
            role: text(&data["user"]["role"]).context("user.role")?,
            access_token: text(&data["accessToken"]).context("accessToken")?,
            refresh_token: text(&data["refreshToken"]).context("refreshToken")?,
            session_id: text(&data["sessionId"]).context("sessionId")?,
            device_id: text(&data["deviceId"]).unwrap_or_default(),
        })
    }
}
