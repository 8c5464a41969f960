//! The console's client of the public API: every call goes through the gateway like any other
//! client's, with the end user's IP, user agent and request id forwarded, and answers read
//! from the response envelope (api.md §1.3) into data or a typed failure.

use std::{net::IpAddr, time::Duration};

use http::{Method, header};
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use serde_json::Value;

/// One `{field, message}` of a `VALIDATION_ERROR` (api.md §1.5).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

/// Why an API call did not produce data.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// The API answered with its error envelope.
    #[error("the API answered {status} {code}: {message}")]
    Rejected {
        status: u16,
        code: String,
        message: String,
        details: Value,
    },
    #[error("the gateway could not be reached")]
    Unreachable(#[source] reqwest::Error),
    #[error("the API's answer could not be read")]
    Malformed(#[source] serde_json::Error),
    /// The session behind the call has ended and could not be refreshed; `reason` is one of
    /// the sign-in page's messages.
    #[error("the session has ended")]
    SignedOut { reason: &'static str },
}

impl CallError {
    pub fn code(&self) -> &str {
        match self {
            Self::Rejected { code, .. } => code,
            Self::Unreachable(_) | Self::Malformed(_) => "SERVICE_UNAVAILABLE",
            Self::SignedOut { .. } => "SESSION_REVOKED",
        }
    }

    pub fn status(&self) -> u16 {
        match self {
            Self::Rejected { status, .. } => *status,
            Self::Unreachable(_) | Self::Malformed(_) => 503,
            Self::SignedOut { .. } => 401,
        }
    }

    /// The field errors of a `VALIDATION_ERROR`, empty for anything else.
    pub fn fields(&self) -> Vec<FieldError> {
        match self {
            Self::Rejected { details, .. } => {
                serde_json::from_value::<Vec<FieldError>>(details.clone()).unwrap_or_default()
            }
            _ => Vec::new(),
        }
    }

    /// What to tell the person, in a sentence.
    pub fn human(&self) -> String {
        match self {
            Self::Rejected { code, message, .. } => match code.as_str() {
                "LAST_ADMIN" => {
                    "That would leave the platform without an active administrator.".into()
                }
                "SELF_MODIFICATION_FORBIDDEN" => {
                    "You cannot delete, deactivate or change the role of your own account.".into()
                }
                "INVALID_CREDENTIALS" => "The email or password is not right.".into(),
                "ACCOUNT_DISABLED" => {
                    "This account has been disabled. Contact an administrator.".into()
                }
                "ACCOUNT_LOCKED" => "Too many failed attempts. Wait a moment and try again.".into(),
                "RATE_LIMIT_EXCEEDED" => "Too many requests. Wait a moment and try again.".into(),
                "EMAIL_EXISTS" => "An account with this email already exists.".into(),
                "VALIDATION_ERROR" => "Some fields need attention.".into(),
                "INVALID_STATUS" | "INVALID_STATUS_TRANSITION" => {
                    "The payment has moved on and can no longer be changed.".into()
                }
                _ => message.clone(),
            },
            Self::Unreachable(_) | Self::Malformed(_) => {
                "The service is not reachable right now. Try again in a moment.".into()
            }
            Self::SignedOut { .. } => "Your session has ended. Sign in again.".into(),
        }
    }
}

/// Who the call is made for: forwarded so the API records the person, not the console.
#[derive(Debug, Clone, Default)]
pub struct Caller {
    pub ip: Option<IpAddr>,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
}

/// The gateway, as seen by the console.
#[derive(Clone)]
pub struct Gateway {
    http: reqwest::Client,
    base: String,
}

impl Gateway {
    pub fn new(base: &str) -> Self {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(15))
            .build()
            .unwrap_or_default();
        Self {
            http,
            base: base.trim_end_matches('/').to_owned(),
        }
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    /// Sends one request and returns the envelope's `data` (`Value::Null` for a 204).
    pub async fn send(
        &self,
        caller: &Caller,
        token: Option<&str>,
        method: Method,
        path: &str,
        body: Option<&Value>,
        idempotency_key: Option<&str>,
    ) -> Result<Value, CallError> {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .header(header::ACCEPT, "application/json");
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        if let Some(body) = body {
            req = req.json(body);
        }
        if let Some(key) = idempotency_key {
            req = req.header("idempotency-key", key);
        }
        if let Some(ip) = caller.ip {
            // Honoured only where the gateway trusts the console's address (TRUSTED_PROXIES),
            // so lockout, audit and rate limits see the person instead of the console.
            req = req.header("x-forwarded-for", ip.to_string());
        }
        if let Some(ua) = &caller.user_agent {
            req = req.header(header::USER_AGENT, ua);
        }
        if let Some(id) = &caller.request_id {
            req = req.header("x-request-id", id);
        }
        let res = req.send().await.map_err(CallError::Unreachable)?;
        let status = res.status().as_u16();
        let bytes = res.bytes().await.map_err(CallError::Unreachable)?;
        if status == 204 || bytes.is_empty() {
            return Ok(Value::Null);
        }
        let envelope: Value = serde_json::from_slice(&bytes).map_err(CallError::Malformed)?;
        if (200..300).contains(&status) {
            return Ok(envelope.get("data").cloned().unwrap_or(Value::Null));
        }
        let error = envelope.get("error").cloned().unwrap_or(Value::Null);
        let text = |k: &str| {
            error
                .get(k)
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned()
        };
        Err(CallError::Rejected {
            status,
            code: text("code"),
            message: text("message"),
            details: error.get("details").cloned().unwrap_or(Value::Null),
        })
    }
}

/// Reads `data` into a type; a shape mismatch is a malformed answer.
pub fn decode<T: DeserializeOwned>(value: Value) -> Result<T, CallError> {
    serde_json::from_value(value).map_err(CallError::Malformed)
}

/// `{id, email, name}` of a payment's party or a recipient.
#[derive(Debug, Clone, Deserialize, Default)]
pub struct Party {
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub email: String,
    #[serde(default)]
    pub name: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Transaction {
    pub status: String,
    pub previous_status: Option<String>,
    pub status_message: Option<String>,
    pub actor_type: Option<String>,
    pub created_at: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Payment {
    pub id: String,
    pub sender_id: String,
    pub amount: String,
    pub currency: String,
    pub status: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub description: String,
    pub failure_reason: Option<String>,
    pub psp_transaction_id: Option<String>,
    pub scheduled_for: Option<String>,
    pub completed_at: Option<String>,
    pub created_at: String,
    #[serde(default)]
    pub sender: Party,
    #[serde(default)]
    pub recipient: Party,
    #[serde(default)]
    pub transactions: Vec<Transaction>,
}

#[derive(Debug, Clone, Copy, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Pagination {
    pub page: u32,
    pub limit: u32,
    pub total: u64,
    pub total_pages: u32,
}

#[derive(Debug, Clone, Deserialize)]
pub struct PaymentPage {
    pub payments: Vec<Payment>,
    pub pagination: Pagination,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Device {
    pub device_id: String,
    pub device_name: Option<String>,
    pub device_type: Option<String>,
    pub ip_address: Option<String>,
    pub last_active_at: Option<String>,
    #[serde(default)]
    pub current: bool,
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Profile {
    pub phone: Option<String>,
    pub address: Option<String>,
    pub bio: Option<String>,
    #[serde(default)]
    pub preferences: Preferences,
}

#[derive(Debug, Clone, Deserialize, Default)]
pub struct Notifications {
    #[serde(default)]
    pub email: bool,
    #[serde(default)]
    pub push: bool,
    #[serde(default)]
    pub sms: bool,
}

#[derive(Debug, Clone, Deserialize, Default)]
pub struct Preferences {
    #[serde(default)]
    pub theme: String,
    #[serde(default)]
    pub language: String,
    #[serde(default)]
    pub currency: String,
    #[serde(default)]
    pub timezone: String,
    #[serde(default)]
    pub notifications: Notifications,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ManagedUser {
    pub id: String,
    pub email: String,
    pub name: String,
    pub role: String,
    pub is_active: bool,
    pub last_login_at: Option<String>,
    pub created_at: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct UserPage {
    pub users: Vec<ManagedUser>,
    pub pagination: Pagination,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditEntry {
    pub action: String,
    #[serde(default)]
    pub user_email: Option<String>,
    #[serde(default)]
    pub resource_type: String,
    #[serde(default)]
    pub resource_id: String,
    #[serde(default)]
    pub details: Option<Value>,
    #[serde(default)]
    pub ip_address: Option<String>,
    pub timestamp: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct AuditPage {
    pub data: Vec<AuditEntry>,
    pub pagination: Pagination,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConfigEntry {
    pub key: String,
    pub value: Value,
    pub description: Option<String>,
    pub updated_at: String,
}
