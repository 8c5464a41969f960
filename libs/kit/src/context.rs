//! Everything a handler needs to know about the request beyond its body: the request id
//! (correlation id of the events it causes), the trace context, and the client.

use std::convert::Infallible;

use axum::extract::FromRequestParts;
use http::request::Parts;

use crate::{
    client_ip::ClientInfo,
    request_id::{RequestId, TraceContext},
};

#[derive(Debug, Clone, Default)]
pub struct RequestContext {
    pub request_id: String,
    pub trace: TraceContext,
    pub client: ClientInfo,
    /// The `X-Device-ID` header, raw (auth validates it).
    pub device_header: Option<String>,
}

impl<S: Send + Sync> FromRequestParts<S> for RequestContext {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let client = ClientInfo::from_request_parts(parts, state).await?;
        Ok(Self {
            request_id: parts.extensions.get::<RequestId>().map_or_else(
                || uuid::Uuid::new_v4().to_string(),
                |r| r.as_str().to_owned(),
            ),
            trace: parts
                .extensions
                .get::<TraceContext>()
                .cloned()
                .unwrap_or_default(),
            client,
            device_header: parts
                .headers
                .get("x-device-id")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
        })
    }
}
