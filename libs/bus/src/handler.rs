//! What a consuming service implements and sees: the `Handler` trait, the parsed
//! `IncomingEvent` and the transient/permanent `HandlerError` (events.md §6.2). No I/O.

use std::future::Future;

use chrono::{DateTime, Utc};
use lapin::types::FieldTable;
use payplane_events::{VERSION, time, topology::headers as h};
use serde::de::DeserializeOwned;
use serde_json::value::RawValue;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::message;

/// Why a handler failed (events.md §6.2 error classes).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HandlerError {
    /// The database cannot be reached (refused, reset, pool timeout, server shutting down or
    /// starting). Not the event's fault: the consumer keeps the delivery unacknowledged, waits
    /// until the database answers and handles it again, without spending its retries — a
    /// PostgreSQL restart longer than the 1 + 2 + 4 s ladder must not dead-letter events.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// Database unavailable, serialization failure, timeout, a lookup that could not be made…:
    /// retried after 1 s, 2 s, 4 s, then dead-lettered.
    #[error("transient: {0}")]
    Transient(String),
    /// Invalid payload or a broken invariant: dead-lettered at once.
    #[error("permanent: {0}")]
    Permanent(String),
}

impl HandlerError {
    pub fn transient(e: impl std::fmt::Display) -> Self {
        HandlerError::Transient(e.to_string())
    }

    pub fn permanent(e: impl std::fmt::Display) -> Self {
        HandlerError::Permanent(e.to_string())
    }

    /// A failure of the handler's own I/O: [`HandlerError::Unavailable`] when any cause says
    /// the database cannot be reached, [`HandlerError::Transient`] otherwise. The message keeps
    /// the whole cause chain.
    pub fn from_error(e: &(dyn std::error::Error + 'static)) -> Self {
        let chain = payplane_kit::error::error_chain(e);
        if payplane_kit::error::dependency_unreachable(e) {
            HandlerError::Unavailable(chain)
        } else {
            HandlerError::Transient(chain)
        }
    }
}

/// A service store's failed statement: as [`HandlerError::from_error`].
impl<S: payplane_kit::store::Store> From<payplane_kit::store::StoreError<S>> for HandlerError {
    fn from(e: payplane_kit::store::StoreError<S>) -> Self {
        HandlerError::from_error(&e)
    }
}

/// Database errors are transient (or "unavailable") unless the handler decides otherwise.
impl From<sqlx::Error> for HandlerError {
    fn from(e: sqlx::Error) -> Self {
        HandlerError::from_error(&e)
    }
}

/// A parsed event as a handler sees it.
#[derive(Debug, Clone)]
pub struct IncomingEvent {
    pub id: Uuid,
    /// The envelope `type`. The delivery's routing key is not used: after a retry delay the
    /// broker delivers with the queue name as routing key.
    pub routing_key: String,
    pub version: String,
    pub timestamp: DateTime<Utc>,
    pub source: String,
    pub correlation_id: Option<String>,
    pub causation_id: Option<Uuid>,
    /// The `data` object as it arrived, checked to be JSON but not parsed into a tree: the
    /// handler reads it once, typed, with [`IncomingEvent::payload`] (a `Value` tree first cost
    /// the consumer ~11 000 instructions per event in the event bench, and the handler then
    /// walked it again).
    pub data: Box<RawValue>,
    pub traceparent: Option<String>,
    /// `x-retry-count` (0 when absent).
    pub retry_count: u32,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawEnvelope {
    id: String,
    #[serde(rename = "type")]
    event_type: String,
    version: String,
    #[serde(with = "time::millis")]
    timestamp: DateTime<Utc>,
    source: String,
    #[serde(default)]
    correlation_id: Option<String>,
    #[serde(default)]
    causation_id: Option<String>,
    data: Box<RawValue>,
}

impl IncomingEvent {
    /// Parses a message body; anything malformed is a permanent failure (events.md §6.2 step 1).
    pub fn parse(body: &[u8], headers: Option<&FieldTable>) -> Result<Self, HandlerError> {
        let raw: RawEnvelope = serde_json::from_slice(body)
            .map_err(|e| HandlerError::Permanent(format!("malformed envelope: {e}")))?;
        let id = Uuid::parse_str(&raw.id)
            .map_err(|e| HandlerError::Permanent(format!("envelope id: {e}")))?;
        let retry_count = message::header_int(headers, h::RETRY_COUNT)
            .and_then(|n| u32::try_from(n).ok())
            .unwrap_or(0);
        Ok(IncomingEvent {
            id,
            routing_key: raw.event_type,
            version: raw.version,
            timestamp: raw.timestamp,
            source: raw.source,
            correlation_id: raw.correlation_id,
            causation_id: raw.causation_id.and_then(|c| Uuid::parse_str(&c).ok()),
            data: raw.data,
            traceparent: message::header_str(headers, h::TRACEPARENT),
            retry_count,
        })
    }

    /// The typed payload; a mismatch is a permanent failure.
    pub fn payload<T: DeserializeOwned>(&self) -> Result<T, HandlerError> {
        serde_json::from_str(self.data.get())
            .map_err(|e| HandlerError::Permanent(format!("{} payload: {e}", self.routing_key)))
    }
}

/// What a consuming service implements.
pub trait Handler: Send + Sync + 'static {
    /// Routing keys this consumer acts on; others are acked as `ignored`.
    fn handles(&self, routing_key: &str) -> bool {
        let _ = routing_key;
        true
    }

    /// The one major version handled per routing key; others are acked as `unsupported_version`.
    fn supports_version(&self, routing_key: &str, version: &str) -> bool {
        let _ = routing_key;
        version == VERSION
    }

    /// Called after the transaction that applied `event` committed (for post-commit work such
    /// as cache invalidation or metrics). Not called for duplicates or failures.
    fn committed(&self, event: &IncomingEvent) {
        let _ = event;
    }

    /// Applies the effect on `tx`, an open transaction that already recorded the event as
    /// processed; it commits only if this returns `Ok`.
    fn handle<'a>(
        &'a self,
        tx: &'a mut PgConnection,
        event: &'a IncomingEvent,
    ) -> impl Future<Output = Result<(), HandlerError>> + Send + 'a;
}
