//! A WebSocket client for the gateway's `/ws` (websocket.md): connect with a token, wait for
//! `connected`, then read `event` messages and the close code.

use std::time::Duration;

use anyhow::{Context, bail};
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::{
    MaybeTlsStream, WebSocketStream, connect_async,
    tungstenite::{Message, protocol::frame::coding::CloseCode},
};

/// One authenticated socket.
pub struct Socket {
    stream: WebSocketStream<MaybeTlsStream<TcpStream>>,
    /// The `connected` payload (userId, role, sessionId, rooms…).
    pub connected: Value,
    /// Events read while waiting for another one, kept in arrival order.
    seen: Vec<Value>,
}

/// How a socket ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Closed {
    /// A close frame with this code.
    Code(u16),
    /// The TCP connection ended without a close frame.
    Abrupt,
}

impl Socket {
    /// Connects to `<gateway>/ws?token=…` (the form existing web clients use).
    pub async fn connect(gateway_url: &str, token: &str) -> anyhow::Result<Self> {
        let ws_url = format!("{}/ws?token={token}", gateway_url.replacen("http", "ws", 1));
        let (stream, _) = connect_async(ws_url).await.context("WebSocket handshake")?;
        let mut socket = Self {
            stream,
            connected: Value::Null,
            seen: Vec::new(),
        };
        let first = socket
            .next_message(Duration::from_secs(5))
            .await?
            .context("no `connected` message")?;
        if first["type"] != "connected" {
            bail!("first message is not `connected`: {first}");
        }
        socket.connected = first["payload"].clone();
        Ok(socket)
    }

    /// Sends one client message (`subscribe`, `ping`…).
    pub async fn send(&mut self, kind: &str, payload: Value, id: &str) -> anyhow::Result<()> {
        let msg = json!({"type": kind, "payload": payload, "id": id});
        self.stream.send(Message::text(msg.to_string())).await?;
        Ok(())
    }

    /// The next JSON text message, `None` if the socket closed; protocol pings are answered
    /// by tungstenite itself.
    async fn next_message(&mut self, limit: Duration) -> anyhow::Result<Option<Value>> {
        loop {
            let next = tokio::time::timeout(limit, self.stream.next())
                .await
                .context("timed out waiting for a WebSocket message")?;
            match next {
                Some(Ok(Message::Text(text))) => {
                    return Ok(Some(
                        serde_json::from_str(&text).context("message is not JSON")?,
                    ));
                }
                Some(Ok(Message::Close(_)) | Err(_)) | None => return Ok(None),
                Some(Ok(_)) => {}
            }
        }
    }

    /// Waits for an `event` of `event_type` whose `data.paymentId` (or `data.userId`) is `id`.
    pub async fn wait_event(
        &mut self,
        event_type: &str,
        id: &str,
        limit: Duration,
    ) -> anyhow::Result<Value> {
        let matches = |m: &Value| {
            m["type"] == "event"
                && m["payload"]["eventType"] == event_type
                && (m["payload"]["data"]["paymentId"] == id || m["payload"]["data"]["userId"] == id)
        };
        if let Some(pos) = self.seen.iter().position(matches) {
            return Ok(self.seen.remove(pos));
        }
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let msg = self
                .next_message(left)
                .await
                .with_context(|| format!("waiting for {event_type} of {id}"))?
                .with_context(|| format!("socket closed while waiting for {event_type}"))?;
            if matches(&msg) {
                return Ok(msg);
            }
            self.seen.push(msg);
        }
    }

    /// Event types received so far for this id (including ones already returned is not
    /// tracked: this reads only what is still buffered).
    pub fn buffered(&self) -> &[Value] {
        &self.seen
    }

    /// Reads until the server closes the socket and returns how it closed.
    pub async fn wait_close(&mut self, limit: Duration) -> anyhow::Result<Closed> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let next = tokio::time::timeout(left, self.stream.next())
                .await
                .context("socket still open")?;
            match next {
                Some(Ok(Message::Close(Some(frame)))) => {
                    return Ok(Closed::Code(u16::from(frame.code)));
                }
                Some(Ok(Message::Close(None))) => {
                    return Ok(Closed::Code(u16::from(CloseCode::Status)));
                }
                Some(Ok(Message::Text(text))) => {
                    if let Ok(v) = serde_json::from_str(&text) {
                        self.seen.push(v);
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(_)) | None => return Ok(Closed::Abrupt),
            }
        }
    }
}
