//! The AMQP side of the envelope (events.md §2.2): properties and headers of a published event,
//! and header helpers for the retry/dead-letter copies. Pure functions, no I/O.

use lapin::{
    BasicProperties,
    types::{AMQPValue, FieldTable, LongString, ShortString},
};
use serde_json::Value;

/// Persistent delivery mode.
pub const PERSISTENT: u8 = 2;
pub const CONTENT_TYPE: &str = "application/json";

/// What the relay needs to know about one event to set its properties.
#[derive(Debug, Clone)]
pub struct EventMeta<'a> {
    pub id: &'a str,
    pub routing_key: &'a str,
    pub source: &'a str,
    pub correlation_id: &'a str,
    /// Envelope `timestamp`, whole seconds since the epoch.
    pub timestamp_secs: u64,
    /// Extra headers from the outbox row (`traceparent`, `tracestate`).
    pub headers: FieldTable,
}

/// The properties of events.md §2.2.
pub fn properties(meta: EventMeta<'_>) -> BasicProperties {
    BasicProperties::default()
        .with_content_type(CONTENT_TYPE.into())
        .with_delivery_mode(PERSISTENT)
        .with_message_id(meta.id.into())
        .with_type(meta.routing_key.into())
        .with_app_id(meta.source.into())
        .with_correlation_id(meta.correlation_id.into())
        .with_timestamp(meta.timestamp_secs)
        .with_headers(meta.headers)
}

/// Converts the outbox `headers` JSON object into an AMQP table (strings as long strings,
/// other scalars as their JSON text).
pub fn headers_from_json(headers: &Value) -> FieldTable {
    let mut table = FieldTable::default();
    if let Value::Object(map) = headers {
        for (k, v) in map {
            let text = match v {
                Value::String(s) => s.clone(),
                Value::Null => continue,
                other => other.to_string(),
            };
            table.insert(k.as_str().into(), AMQPValue::LongString(text.into()));
        }
    }
    table
}

/// A header as text, whichever string type the sender used.
pub fn header_str(headers: Option<&FieldTable>, key: &str) -> Option<String> {
    match headers?.inner().get(key)? {
        AMQPValue::LongString(s) => Some(String::from_utf8_lossy(s.as_bytes()).into_owned()),
        AMQPValue::ShortString(s) => Some(s.as_str().to_owned()),
        _ => None,
    }
}

/// A header as an integer, whichever integer type the sender used (absent means `None`).
pub fn header_int(headers: Option<&FieldTable>, key: &str) -> Option<i64> {
    match headers?.inner().get(key)? {
        AMQPValue::ShortShortInt(v) => Some(i64::from(*v)),
        AMQPValue::ShortShortUInt(v) => Some(i64::from(*v)),
        AMQPValue::ShortInt(v) => Some(i64::from(*v)),
        AMQPValue::ShortUInt(v) => Some(i64::from(*v)),
        AMQPValue::LongInt(v) => Some(i64::from(*v)),
        AMQPValue::LongUInt(v) => Some(i64::from(*v)),
        AMQPValue::LongLongInt(v) => Some(*v),
        AMQPValue::LongString(s) => String::from_utf8_lossy(s.as_bytes()).parse().ok(),
        _ => None,
    }
}

/// Copy of `props` whose headers are edited by `edit` (the body and every other property stay).
pub fn with_edited_headers(
    props: &BasicProperties,
    edit: impl FnOnce(&mut std::collections::BTreeMap<ShortString, AMQPValue>),
) -> BasicProperties {
    let mut map = props
        .headers()
        .as_ref()
        .map(|h| h.inner().clone())
        .unwrap_or_default();
    edit(&mut map);
    props.clone().with_headers(FieldTable::from(map))
}

/// A long-string header value.
pub fn text(value: impl Into<String>) -> AMQPValue {
    AMQPValue::LongString(LongString::from(value.into()))
}

/// Truncates to at most `max` characters on a char boundary (`x-failure-reason` is ≤ 1024).
pub fn truncate_chars(text: &str, max: usize) -> String {
    text.chars().take(max).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn properties_match_contract() {
        let props = properties(EventMeta {
            id: "0b6f1c1e-8a3e-4f7a-9d61-3c0f7d2a9e10",
            routing_key: "payments.payment.completed",
            source: "payments",
            correlation_id: "c1",
            timestamp_secs: 1_772_359_203,
            headers: headers_from_json(&serde_json::json!({"traceparent": "00-ab-cd-01"})),
        });
        assert_eq!(props.delivery_mode(), &Some(2));
        assert_eq!(
            props.content_type().as_ref().map(ShortString::as_str),
            Some(CONTENT_TYPE)
        );
        assert_eq!(
            props.kind().as_ref().map(ShortString::as_str),
            Some("payments.payment.completed")
        );
        assert_eq!(
            header_str(props.headers().as_ref(), "traceparent").as_deref(),
            Some("00-ab-cd-01")
        );
        let edited = with_edited_headers(&props, |h| {
            h.insert("x-retry-count".into(), AMQPValue::LongLongInt(2));
        });
        assert_eq!(
            header_int(edited.headers().as_ref(), "x-retry-count"),
            Some(2)
        );
        assert_eq!(edited.message_id(), props.message_id());
        assert_eq!(truncate_chars("ééé", 2), "éé");
    }
}
