//! PSP webhook events (api.md §5.12), pure: the `Psp-Signature` header (HMAC-SHA256 over
//! `<t>.<raw body>`, 5 minutes of clock skew), the event body's validation and the status
//! change an event asks for.

use payplane_kit::{ApiError, query::parse_date, validate::Fields};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::{
    domain::status::PaymentStatus,
    domain::{PSP_FAILURE_REASON, PSP_ID, PSP_STATUS},
    lifecycle::Change,
};

/// Allowed clock skew between the PSP and us.
pub const MAX_SKEW_SECS: u64 = 300;

/// Checks `Psp-Signature: t=<unix>,v1=<hex>[,v1=<hex>…]` against every secret.
pub fn verify_signature(
    header: Option<&str>,
    body: &[u8],
    secrets: &[SecretString],
    now: i64,
) -> bool {
    let Some(header) = header else { return false };
    let mut t: Option<&str> = None;
    let mut sigs: Vec<Vec<u8>> = Vec::new();
    for part in header.split(',') {
        let Some((k, v)) = part.trim().split_once('=') else {
            return false;
        };
        match k {
            "t" => t = Some(v),
            "v1" => {
                if let Some(bytes) = from_hex(v) {
                    sigs.push(bytes);
                }
            }
            _ => {}
        }
    }
    let Some(t) = t else { return false };
    let Ok(ts) = t.parse::<i64>() else {
        return false;
    };
    // abs_diff: `now - ts` overflows for an extreme `t` (i64::MIN) and would panic.
    if now.abs_diff(ts) > MAX_SKEW_SECS || sigs.is_empty() {
        return false;
    }
    let mut signed = Vec::with_capacity(t.len() + 1 + body.len());
    signed.extend_from_slice(t.as_bytes());
    signed.push(b'.');
    signed.extend_from_slice(body);
    secrets.iter().any(|secret| {
        let key = aws_lc_rs::hmac::Key::new(
            aws_lc_rs::hmac::HMAC_SHA256,
            secret.expose_secret().as_bytes(),
        );
        sigs.iter()
            .any(|sig| aws_lc_rs::hmac::verify(&key, &signed, sig).is_ok())
    })
}

/// The header value a PSP would send (tests, tools).
pub fn sign(secret: &str, t: i64, body: &[u8]) -> String {
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, secret.as_bytes());
    let mut signed = t.to_string().into_bytes();
    signed.push(b'.');
    signed.extend_from_slice(body);
    let tag = aws_lc_rs::hmac::sign(&key, &signed);
    format!("t={t},v1={}", crate::digest::hex(tag.as_ref()))
}

fn from_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// The event types a PSP may send (api.md §5.12).
pub const EVENT_TYPES: [&str; 5] = [
    "payment.processing",
    "payment.succeeded",
    "payment.failed",
    "payment.canceled",
    "payment.cancelled",
];

/// The status an event type asks for.
pub fn target_of(event_type: &str) -> PaymentStatus {
    match event_type {
        "payment.processing" => PaymentStatus::Processing,
        "payment.succeeded" => PaymentStatus::Completed,
        "payment.failed" => PaymentStatus::Failed,
        _ => PaymentStatus::Cancelled,
    }
}

/// A validated PSP event (api.md §5.12).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookEvent {
    pub id: String,
    pub event_type: &'static str,
    pub payment_id: Uuid,
    pub psp_transaction_id: String,
    pub psp_status: String,
    pub failure_reason: Option<String>,
}

/// Validates an event body; errors of `data` members are reported as `data.<member>`.
pub fn validate(body: &Map<String, Value>) -> Result<WebhookEvent, ApiError> {
    let mut f = Fields::new(body);
    let id = f.text("id", true, PSP_ID);
    let event_type = f.one_of("type", true, &EVENT_TYPES);
    if let Some(v) = f.get("createdAt")
        && v.as_str().and_then(|s| parse_date(s, false)).is_none()
    {
        f.push("createdAt", "must be an RFC 3339 timestamp");
    }
    let empty = Map::new();
    let data = match f.get("data") {
        Some(Value::Object(d)) => d,
        Some(_) => {
            f.push("data", "must be an object");
            &empty
        }
        None => {
            f.push("data", "is required");
            &empty
        }
    };
    let mut d = Fields::new(data);
    let payment_id = match d.get("paymentId") {
        Some(Value::String(s)) => Uuid::parse_str(s).ok(),
        _ => None,
    };
    if payment_id.is_none() {
        f.push("data.paymentId", "must be a UUID");
    }
    let psp_tx = d.text("pspTransactionId", true, PSP_ID);
    let psp_status = d.text("pspStatus", false, PSP_STATUS);
    let reason = d.text("failureReason", false, PSP_FAILURE_REASON);
    if let Err(e) = d.finish()
        && let Some(Value::Array(items)) = e.details
    {
        for item in items {
            let field = item["field"].as_str().unwrap_or_default();
            f.push(
                &format!("data.{field}"),
                item["message"].as_str().unwrap_or_default(),
            );
        }
    }
    f.finish()?;
    let event_type = event_type.unwrap_or("payment.processing");
    Ok(WebhookEvent {
        id: id.unwrap_or_default(),
        event_type,
        payment_id: payment_id.unwrap_or_default(),
        psp_transaction_id: psp_tx.unwrap_or_default(),
        psp_status: psp_status.unwrap_or_else(|| {
            event_type
                .split_once('.')
                .map_or(event_type, |(_, s)| s)
                .to_owned()
        }),
        failure_reason: reason.filter(|r| !r.is_empty()),
    })
}

/// The status change an event makes (failure reasons default per target).
pub fn change_for(ev: &WebhookEvent, target: PaymentStatus) -> Change {
    let failure_reason = match target {
        PaymentStatus::Failed => Some(
            ev.failure_reason
                .clone()
                .unwrap_or_else(|| "Payment failed".into()),
        ),
        PaymentStatus::Cancelled => Some(
            ev.failure_reason
                .clone()
                .unwrap_or_else(|| "Cancelled by payment processor".into()),
        ),
        _ => None,
    };
    Change {
        message: None,
        failure_reason,
        psp_transaction_id: Some(ev.psp_transaction_id.clone()),
        psp_status: Some(ev.psp_status.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_rules() {
        let secrets = vec![SecretString::from("old"), SecretString::from("new")];
        let body = br#"{"id":"evt_1"}"#;
        let header = sign("new", 1_000, body);
        assert!(verify_signature(Some(&header), body, &secrets, 1_000));
        assert!(verify_signature(Some(&header), body, &secrets, 1_300));
        assert!(!verify_signature(Some(&header), body, &secrets, 1_301));
        assert!(!verify_signature(Some(&header), b"{}", &secrets, 1_000));
        assert!(!verify_signature(
            Some(&header),
            body,
            &["other".into()],
            1_000
        ));
        assert!(!verify_signature(Some(&header), body, &[], 1_000));
        assert!(!verify_signature(None, body, &secrets, 1_000));
        assert!(!verify_signature(Some("t=1000"), body, &secrets, 1_000));
        let two = format!("{},v1=00ff", sign("old", 1_000, body));
        assert!(verify_signature(Some(&two), body, &secrets, 1_000));
    }

    /// An extreme timestamp is refused, not an overflow panic (`(now - t).abs()` before).
    #[test]
    fn extreme_timestamps_are_refused_without_overflow() {
        let secrets = vec![SecretString::from("s")];
        let body = b"{}";
        for (t, now) in [
            (i64::MIN, 1_000),
            (i64::MAX, 1_000),
            (i64::MIN, i64::MAX),
            (i64::MAX, i64::MIN),
        ] {
            let header = sign("s", t, body);
            assert!(!verify_signature(Some(&header), body, &secrets, now));
        }
    }

    fn body(v: &Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn a_valid_event_reads_with_defaults() {
        let pid = Uuid::new_v4();
        let ev = validate(&body(&serde_json::json!({
            "id": "evt_1", "type": "payment.succeeded", "createdAt": "2026-01-01T00:00:00Z",
            "data": {"paymentId": pid.to_string(), "pspTransactionId": "tx_1", "failureReason": ""}
        })));
        assert_eq!(
            ev.ok(),
            Some(WebhookEvent {
                id: "evt_1".into(),
                event_type: "payment.succeeded",
                payment_id: pid,
                psp_transaction_id: "tx_1".into(),
                psp_status: "succeeded".into(),
                failure_reason: None,
            })
        );
    }

    #[test]
    fn data_errors_are_named_with_their_path() {
        let err = validate(&body(&serde_json::json!({
            "id": "evt_1", "type": "payment.refunded", "data": {"paymentId": "nope"}
        })));
        let fields: Vec<String> = err
            .err()
            .and_then(|e| e.details)
            .and_then(|d| d.as_array().cloned())
            .unwrap_or_default()
            .iter()
            .map(|i| i["field"].as_str().unwrap_or_default().to_owned())
            .collect();
        for f in ["type", "data.paymentId", "data.pspTransactionId"] {
            assert!(fields.iter().any(|x| x == f), "{f}: {fields:?}");
        }
        assert!(
            validate(&body(
                &serde_json::json!({"id": "e", "type": "payment.failed"})
            ))
            .is_err()
        );
    }

    #[test]
    fn targets_and_changes() {
        assert_eq!(target_of("payment.processing"), PaymentStatus::Processing);
        assert_eq!(target_of("payment.succeeded"), PaymentStatus::Completed);
        assert_eq!(target_of("payment.failed"), PaymentStatus::Failed);
        assert_eq!(target_of("payment.canceled"), PaymentStatus::Cancelled);
        assert_eq!(target_of("payment.cancelled"), PaymentStatus::Cancelled);
        let ev = WebhookEvent {
            id: "e".into(),
            event_type: "payment.failed",
            payment_id: Uuid::nil(),
            psp_transaction_id: "tx".into(),
            psp_status: "declined".into(),
            failure_reason: None,
        };
        let c = change_for(&ev, PaymentStatus::Failed);
        assert_eq!(c.failure_reason.as_deref(), Some("Payment failed"));
        assert_eq!(c.psp_transaction_id.as_deref(), Some("tx"));
        assert_eq!(c.psp_status.as_deref(), Some("declined"));
        let c = change_for(&ev, PaymentStatus::Cancelled);
        assert_eq!(
            c.failure_reason.as_deref(),
            Some("Cancelled by payment processor")
        );
        assert_eq!(
            change_for(&ev, PaymentStatus::Completed).failure_reason,
            None
        );
    }
}
