//! Idempotent creation (api.md §5.8): the `Idempotency-Key` header, the request fingerprint
//! (method, path and the body in canonical form), claiming a key and settling it with the
//! answer. The records themselves live in [`crate::store::idempotency`].

use axum::{
    body::Body,
    response::{IntoResponse, Response},
};
use http::{HeaderMap, HeaderValue, StatusCode, header::CONTENT_TYPE};
use payplane_kit::{ApiError, validate::Fields};
use serde_json::{Map, Value, json};
use sqlx::PgPool;
use uuid::Uuid;

use crate::{
    app::AppState,
    detail, digest,
    domain::IDEMPOTENCY_KEY_MAX,
    error,
    store::{
        StoreError,
        idempotency::{self, Claim, Owner},
        payments,
    },
};

/// A key this request holds: the key and the proof of the claim.
#[derive(Debug, Clone)]
pub struct Held {
    pub user: Uuid,
    pub key: String,
    pub owner: Owner,
}

/// Whether `key` is 1..255 printable ASCII characters (0x21–0x7E).
pub fn valid_key(key: &str) -> bool {
    (1..=IDEMPOTENCY_KEY_MAX).contains(&key.len())
        && key.bytes().all(|b| (0x21..=0x7e).contains(&b))
}

/// The `Idempotency-Key` header, if sent; a malformed one is a field error.
pub fn key_from(headers: &HeaderMap, f: &mut Fields<'_>) -> Option<String> {
    let raw = headers.get("idempotency-key")?;
    let ok = raw.to_str().ok().filter(|k| valid_key(k));
    if ok.is_none() {
        f.push(
            "idempotency-key",
            "must be 1 to 255 printable ASCII characters",
        );
    }
    ok.map(str::to_owned)
}

/// The canonical text of a JSON value: keys sorted at every level, no whitespace.
pub fn canonical(v: &Value, out: &mut String) {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                canonical(&m[k], out);
            }
            out.push('}');
        }
        Value::Array(a) => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonical(x, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// SHA-256 of `<method>\n<path>\n<canonical body>`.
pub fn fingerprint(method: &str, path: &str, body: &Map<String, Value>) -> Vec<u8> {
    let mut text = format!("{method}\n{path}\n");
    canonical(&Value::Object(body.clone()), &mut text);
    digest::sha256(text.as_bytes())
}

/// Claims `key` for this request: `Ok(held)` to go on, `Err(answer)` when the key already has
/// an answer (a replay) or cannot be used (reused, in progress).
pub async fn claim(
    db: &PgPool,
    user: Uuid,
    key: String,
    path: &str,
    body: &Map<String, Value>,
) -> Result<Result<Held, Response>, ApiError> {
    let fp = fingerprint("POST", path, body);
    match idempotency::claim(db, user, &key, "POST", path, &fp).await? {
        Claim::Owned(owner) => Ok(Ok(Held { user, key, owner })),
        Claim::Replay { status, body } => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
            Ok(Err(json_response(status, body, true)))
        }
        Claim::Reused => Err(error::idempotency_key_reused()),
        Claim::InProgress => Err(error::idempotency_in_progress()),
    }
}

/// Records the outcome of a request that held `held`: a client error after validation is the
/// key's answer (§5.8), a server error releases the key so the client may retry. (A success
/// was recorded in the request's own transaction.)
pub async fn settle(
    db: &PgPool,
    held: &Held,
    result: Result<Response, ApiError>,
) -> Result<Response, ApiError> {
    match result {
        Ok(res) => Ok(res),
        Err(e) if e.status.is_client_error() => {
            // Unless the claim was taken over meanwhile: then the new owner's answer is the
            // record.
            let (status, bytes) = error_bytes(e).await;
            let mut conn = db.acquire().await.map_err(StoreError::at("acquire"))?;
            if !finish(&mut conn, held, status.as_u16(), &bytes, None).await? {
                return Err(error::idempotency_in_progress());
            }
            Ok(json_response(status, bytes, false))
        }
        Err(e) => {
            if let Ok(mut conn) = db.acquire().await {
                let _ = idempotency::release(&mut conn, held.user, &held.key, &held.owner).await;
            }
            Err(e)
        }
    }
}

/// Stores the answer for `held` if the claim is still its own.
pub async fn finish(
    conn: &mut sqlx::PgConnection,
    held: &Held,
    status: u16,
    body: &[u8],
    payment_id: Option<Uuid>,
) -> Result<bool, ApiError> {
    Ok(idempotency::finish(
        conn,
        held.user,
        &held.key,
        &held.owner,
        status,
        body,
        payment_id,
    )
    .await?)
}

/// Answers with the payment already created under `held`'s generation of the key, and records
/// that answer for the key.
pub async fn replay_existing(s: &AppState, held: &Held) -> Result<Response, ApiError> {
    let mut conn = s.db.acquire().await.map_err(StoreError::at("acquire"))?;
    let id = payments::id_for_claim(&mut conn, held.user, &held.key, held.owner.since)
        .await?
        .ok_or_else(error::idempotency_in_progress)?;
    let detail = detail::load(s, id)
        .await?
        .ok_or_else(error::idempotency_in_progress)?;
    let bytes = serde_json::to_vec(&json!({ "success": true, "data": detail })).unwrap_or_default();
    if !finish(&mut conn, held, 201, &bytes, Some(id)).await? {
        return Err(error::idempotency_in_progress());
    }
    Ok(json_response(StatusCode::CREATED, bytes, true))
}

/// A JSON answer from stored bytes; `replayed` adds `Idempotent-Replayed: true`.
pub fn json_response(status: StatusCode, body: Vec<u8>, replayed: bool) -> Response {
    let mut res = Response::new(Body::from(body));
    *res.status_mut() = status;
    res.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if replayed {
        res.headers_mut()
            .insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    res
}

async fn error_bytes(e: ApiError) -> (StatusCode, Vec<u8>) {
    let res = e.into_response();
    let status = res.status();
    let bytes = axum::body::to_bytes(res.into_body(), usize::MAX)
        .await
        .map(|b| b.to_vec())
        .unwrap_or_default();
    (status, bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canon(v: &Value) -> String {
        let mut out = String::new();
        canonical(v, &mut out);
        out
    }

    #[test]
    fn canonical_sorts_keys_at_every_level_without_whitespace() {
        let v = json!({"b": [ {"z": 1, "a": null} ], "a": {"d": "x", "c": true}});
        assert_eq!(
            canon(&v),
            r#"{"a":{"c":true,"d":"x"},"b":[{"a":null,"z":1}]}"#
        );
    }

    #[test]
    fn canonical_escapes_keys_and_strings() {
        let v = json!({"k\"ey": "line\nbreak", "é": 1.5});
        assert_eq!(canon(&v), r#"{"k\"ey":"line\nbreak","é":1.5}"#);
    }

    #[test]
    fn fingerprint_ignores_member_order_but_not_method_path_or_values() {
        let a = json!({"amount": "10.00", "currency": "USD"});
        let b = json!({"currency": "USD", "amount": "10.00"});
        let c = json!({"currency": "USD", "amount": "10.01"});
        let (a, b, c) = (
            a.as_object().cloned().unwrap_or_default(),
            b.as_object().cloned().unwrap_or_default(),
            c.as_object().cloned().unwrap_or_default(),
        );
        let fp = fingerprint("POST", "/api/payments", &a);
        assert_eq!(fp.len(), 32);
        assert_eq!(fp, fingerprint("POST", "/api/payments", &b));
        assert_ne!(fp, fingerprint("POST", "/api/payments", &c));
        assert_ne!(fp, fingerprint("PUT", "/api/payments", &a));
        assert_ne!(fp, fingerprint("POST", "/api/payment", &a));
    }

    #[test]
    fn key_rules() {
        assert!(valid_key("a"));
        assert!(valid_key("!~"));
        assert!(valid_key(&"k".repeat(255)));
        assert!(!valid_key(""));
        assert!(!valid_key(&"k".repeat(256)));
        assert!(!valid_key("has space"));
        assert!(!valid_key("tab\t"));
        assert!(!valid_key("é"));
    }

    #[test]
    fn key_header_is_optional_and_checked() {
        let body = Map::new();
        let mut f = Fields::new(&body);
        assert_eq!(key_from(&HeaderMap::new(), &mut f), None);
        assert!(f.finish().is_ok());
        let mut headers = HeaderMap::new();
        headers.insert("idempotency-key", HeaderValue::from_static("k-1"));
        let mut f = Fields::new(&body);
        assert_eq!(key_from(&headers, &mut f).as_deref(), Some("k-1"));
        headers.insert("idempotency-key", HeaderValue::from_static("bad key"));
        let mut f = Fields::new(&body);
        assert_eq!(key_from(&headers, &mut f), None);
        assert!(f.finish().is_err());
    }
}
