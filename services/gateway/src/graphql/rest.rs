//! How resolvers reach the services (api.md §9.1, §9.4): one REST call per field, with the
//! caller's bearer token, `X-Request-ID`, `traceparent`, user agent and client IP
//! (`X-Forwarded-For`), so permissions, business rules and error codes are exactly REST's. A
//! REST error becomes a GraphQL error whose `extensions` carry the REST code, status, request
//! id and details (§9.2). Does HTTP I/O.

use std::{fmt::Write as _, net::IpAddr, sync::Arc, time::Duration};

use async_graphql::ErrorExtensions;
use http::Method;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// The service base URLs resolvers call (from the gateway's configuration) and the client.
pub struct Services {
    http: reqwest::Client,
    auth: String,
    payments: String,
    admin: String,
    profile: String,
}

/// A service a resolver calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    Auth,
    Payments,
    Admin,
    Profile,
}

impl Service {
    fn name(self) -> &'static str {
        match self {
            Self::Auth => "auth",
            Self::Payments => "payments",
            Self::Admin => "admin",
            Self::Profile => "profile",
        }
    }
}

impl Services {
    pub fn new(http: reqwest::Client, config: &crate::Config) -> Self {
        let url = |name: &str, default: &str| {
            config
                .upstream_url(name)
                .unwrap_or(default)
                .trim_end_matches('/')
                .to_owned()
        };
        Self {
            http,
            auth: url("auth", "http://localhost:3001"),
            payments: url("payments", "http://localhost:3002"),
            admin: url("admin", "http://localhost:3003"),
            profile: url("profile", "http://localhost:3004"),
        }
    }

    fn base(&self, s: Service) -> &str {
        match s {
            Service::Auth => &self.auth,
            Service::Payments => &self.payments,
            Service::Admin => &self.admin,
            Service::Profile => &self.profile,
        }
    }
}

/// Who is calling: what every upstream call forwards.
#[derive(Debug, Clone, Default)]
pub struct Caller {
    pub token: Option<String>,
    pub request_id: String,
    pub traceparent: Option<String>,
    pub client_ip: Option<IpAddr>,
    pub user_agent: Option<String>,
    pub device_id: Option<String>,
}

/// A REST call that did not succeed, in REST terms.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct RestError {
    pub status: u16,
    pub code: String,
    pub message: String,
    pub details: Option<Value>,
    pub request_id: String,
}

impl RestError {
    /// The gateway's own error about `service` (no details): its status, code and what went wrong.
    fn about(service: Service, request_id: &str, status: u16, code: &str, what: &str) -> Self {
        Self {
            status,
            code: code.into(),
            message: format!("The {} service {what}", service.name()),
            details: None,
            request_id: request_id.to_owned(),
        }
    }

    fn unavailable(service: Service, request_id: &str) -> Self {
        Self::about(
            service,
            request_id,
            503,
            "SERVICE_UNAVAILABLE",
            "is unavailable",
        )
    }

    fn bad_answer(service: Service, request_id: &str) -> Self {
        Self::about(
            service,
            request_id,
            502,
            "BAD_GATEWAY",
            "gave an unexpected answer",
        )
    }
}

impl ErrorExtensions for RestError {
    fn extend(&self) -> async_graphql::Error {
        async_graphql::Error::new(self.message.clone()).extend_with(|_, e| {
            e.set("code", self.code.clone());
            e.set("status", self.status);
            e.set("requestId", self.request_id.clone());
            if let Some(details) = &self.details
                && let Ok(v) = async_graphql::Value::from_json(details.clone())
            {
                e.set("details", v);
            }
        })
    }
}

/// The success envelope `{success, data}`; only `data` is decoded.
#[derive(serde::Deserialize)]
struct Envelope<T> {
    data: T,
}

/// `data` of a success body (`null` for an empty one, as after a 204).
fn decode_data<T: DeserializeOwned>(bytes: &[u8]) -> serde_json::Result<T> {
    if bytes.is_empty() {
        return serde_json::from_value(Value::Null);
    }
    serde_json::from_slice::<Envelope<T>>(bytes).map(|e| e.data)
}

/// One request's way to the services: shared services plus this caller.
#[derive(Clone)]
pub struct Rest {
    pub services: Arc<Services>,
    pub caller: Arc<Caller>,
}

/// Percent-encodes one path segment or query value (ids, keys and filters come from clients).
pub fn segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

impl Rest {
    /// Sends one call and decodes the envelope's `data` straight from the body into `T` (no
    /// intermediate JSON tree; `null` for 204), or returns the REST error.
    pub async fn call<T: DeserializeOwned>(
        &self,
        service: Service,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
        extra: &[(&'static str, String)],
    ) -> Result<T, RestError> {
        metrics::counter!("graphql_upstream_requests_total", "service" => service.name())
            .increment(1);
        let c = &self.caller;
        let mut url = format!("{}{path}", self.services.base(service));
        for (i, (k, v)) in query.iter().enumerate() {
            url.push(if i == 0 { '?' } else { '&' });
            url.push_str(k);
            url.push('=');
            url.push_str(&segment(v));
        }
        let mut req = self
            .services
            .http
            .request(method, url)
            .timeout(Duration::from_secs(30))
            .header("x-request-id", &c.request_id);
        if let Some(token) = &c.token {
            req = req.header(http::header::AUTHORIZATION, format!("Bearer {token}"));
        }
        if let Some(tp) = &c.traceparent {
            req = req.header("traceparent", tp);
        }
        if let Some(ip) = c.client_ip {
            req = req.header("x-forwarded-for", ip.to_string());
        }
        if let Some(ua) = &c.user_agent {
            req = req.header(http::header::USER_AGENT, ua);
        }
        if let Some(d) = &c.device_id {
            req = req.header("x-device-id", d);
        }
        for (k, v) in extra {
            req = req.header(*k, v);
        }
        if let Some(body) = body {
            req = req.json(body);
        }
        let res = req
            .send()
            .await
            .map_err(|_| RestError::unavailable(service, &c.request_id))?;
        let status = res.status();
        let decode = |bytes: &[u8]| {
            decode_data(bytes).map_err(|_| RestError::bad_answer(service, &c.request_id))
        };
        if status == http::StatusCode::NO_CONTENT {
            return decode(&[]);
        }
        let bytes = res
            .bytes()
            .await
            .map_err(|_| RestError::unavailable(service, &c.request_id))?;
        if status.is_success() {
            return decode(&bytes);
        }
        let body: Value = serde_json::from_slice(&bytes)
            .map_err(|_| RestError::bad_answer(service, &c.request_id))?;
        let err = body.get("error");
        let text = |f: &str| err.and_then(|e| e.get(f)).and_then(Value::as_str);
        let Some(code) = text("code") else {
            return Err(RestError::bad_answer(service, &c.request_id));
        };
        Err(RestError {
            status: status.as_u16(),
            code: code.to_owned(),
            message: text("message").unwrap_or_default().to_owned(),
            details: err.and_then(|e| e.get("details")).cloned(),
            request_id: text("requestId").unwrap_or(&c.request_id).to_owned(),
        })
    }
}
