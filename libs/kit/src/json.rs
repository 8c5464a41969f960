//! Strict JSON request bodies (api.md §1.1): content type, size limit, `INVALID_JSON` for
//! syntax, empty body as `{}`, top-level object required. Typed checks follow in `validate`.

use axum::extract::{FromRequest, Request};
use http::header::CONTENT_TYPE;
use serde_json::{Map, Value};

use crate::ApiError;

/// Default body limit for every route but `/api/profile/**` (api.md §3.6).
pub const DEFAULT_BODY_LIMIT: usize = 1_048_576;

/// The route's body limit, set by the HTTP stack as a request extension.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimit(pub usize);

/// A request body that is a JSON object.
#[derive(Debug, Clone, Default)]
pub struct JsonObject(pub Map<String, Value>);

fn is_json(content_type: &str) -> bool {
    let mime = content_type.split(';').next().unwrap_or("").trim();
    mime.eq_ignore_ascii_case("application/json")
}

/// Parses raw body bytes under the contract's rules (shared with handlers that also need the bytes).
pub fn parse_object(
    content_type: Option<&str>,
    bytes: &[u8],
) -> Result<Map<String, Value>, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    if !content_type.is_some_and(is_json) {
        return Err(ApiError::unsupported_media_type());
    }
    match serde_json::from_slice::<Value>(bytes) {
        Err(_) => Err(ApiError::invalid_json()),
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(ApiError::field("body", "must be a JSON object")),
    }
}

/// A JSON object body together with its text, for the few fields whose rules are about how a
/// value is written, not only what it is (money: no exponent form, api.md §1.6).
#[derive(Debug, Clone, Default)]
pub struct JsonObjectText {
    pub body: Map<String, Value>,
    text: bytes::Bytes,
}

impl JsonObjectText {
    /// The text of top-level member `name` as the client wrote it (`1e3`, `"12.50"`), or `None`
    /// when it is absent.
    pub fn member_text(&self, name: &str) -> Option<String> {
        let raw: std::collections::BTreeMap<String, Box<serde_json::value::RawValue>> =
            serde_json::from_slice(&self.text).ok()?;
        raw.get(name).map(|v| v.get().to_owned())
    }
}

/// Reads the body under the route's limit (a [`BodyLimit`] extension, else the default).
async fn read_body(req: Request) -> Result<(Option<String>, bytes::Bytes), ApiError> {
    let limit = req
        .extensions()
        .get::<BodyLimit>()
        .map_or(DEFAULT_BODY_LIMIT, |l| l.0);
    let content_type = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let bytes = axum::body::to_bytes(req.into_body(), limit)
        .await
        .map_err(|_| ApiError::payload_too_large(limit))?;
    Ok((content_type, bytes))
}

impl<S: Send + Sync> FromRequest<S> for JsonObject {
    type Rejection = ApiError;

    async fn from_request(req: Request, _state: &S) -> Result<Self, Self::Rejection> {
        let (content_type, bytes) = read_body(req).await?;
        parse_object(content_type.as_deref(), &bytes).map(JsonObject)
    }
}

impl<S: Send + Sync> FromRequest<S> for JsonObjectText {
    type Rejection = ApiError;

    async fn from_request(req: Request, _state: &S) -> Result<Self, Self::Rejection> {
        let (content_type, text) = read_body(req).await?;
        let body = parse_object(content_type.as_deref(), &text)?;
        Ok(Self { body, text })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn member_text_is_the_text_as_written() {
        let text = bytes::Bytes::from_static(br#"{"amount": 1e3, "b": "12.50", "c": {"d": 1}}"#);
        let body = parse_object(Some("application/json"), &text).unwrap();
        let o = JsonObjectText { body, text };
        assert_eq!(o.member_text("amount").as_deref(), Some("1e3"));
        assert_eq!(o.member_text("b").as_deref(), Some("\"12.50\""));
        assert_eq!(o.member_text("x"), None);
    }

    #[test]
    fn contract_rules() {
        assert!(parse_object(None, b"").unwrap().is_empty());
        assert!(parse_object(Some("text/plain"), b"  ").unwrap().is_empty());
        assert_eq!(
            parse_object(Some("text/plain"), b"{}").unwrap_err().code,
            "UNSUPPORTED_MEDIA_TYPE"
        );
        assert_eq!(
            parse_object(Some("application/json"), b"{\"a\":")
                .unwrap_err()
                .code,
            "INVALID_JSON"
        );
        assert_eq!(
            parse_object(Some("application/json"), b"[1]")
                .unwrap_err()
                .code,
            "VALIDATION_ERROR"
        );
        assert_eq!(
            parse_object(Some("application/json"), b"null")
                .unwrap_err()
                .code,
            "VALIDATION_ERROR"
        );
        assert_eq!(
            parse_object(Some("application/json"), &[0xff, 0xfe])
                .unwrap_err()
                .code,
            "INVALID_JSON"
        );
        assert!(parse_object(Some("Application/JSON; charset=utf-8"), b"{\"a\":1}").is_ok());
    }
}
