//! GraphQL subscriptions (api.md §9.5) over `graphql-transport-ws` on `GET /graphql`. Each
//! socket authenticates in `connection_init` with the rules of `/ws`, then registers in the
//! WebSocket hub like a `/ws` connection (automatic rooms, per-user cap, forced closes), so the
//! events come from the same bridge and queue: no second consumer. Its payment events fan out
//! to the socket's subscriptions; a forced close of websocket.md §7 ends it with 4403 (4008
//! for the cap). Network I/O (socket, payments permission check).

use std::{
    sync::{
        Arc,
        atomic::{AtomicU16, Ordering},
    },
    time::Duration,
};

use async_graphql::{
    Context, Data, ErrorExtensions, ID, Result, Subscription,
    http::{WebSocket as GqlSocket, WebSocketProtocols, WsMessage},
};
use axum::extract::ws::{Message, WebSocket};
use futures::{SinkExt, Stream, StreamExt};
use payplane_events::auth::Role;
use serde_json::Value;
use tokio::sync::{broadcast, mpsc, oneshot};
use uuid::Uuid;

use super::{
    Schema,
    rest::RestError,
    types::{DateTime, Decimal, PaymentEvent, PaymentStatus, PaymentType},
};
use crate::ws::{
    PaymentAccess, WsState,
    hub::{Conn, Outbound},
};

/// No `connection_init` within this → 4408 (the protocol's rule).
const INIT_TIMEOUT: Duration = Duration::from_secs(10);
/// Events buffered per socket for its subscriptions; a subscription that falls further
/// behind skips ahead (the hub's own backlog limit closes sockets that stop reading).
const FEED_CAPACITY: usize = 256;

/// One socket's feed: who it is, its events, and the permission check for `paymentId`.
#[derive(Clone)]
pub struct Feed {
    pub user_id: Uuid,
    pub role: Role,
    pub events: broadcast::Sender<Arc<PaymentEvent>>,
    pub access: PaymentAccess,
}

pub struct Subscription;

fn not_found(request_id: &str) -> async_graphql::Error {
    RestError {
        status: 404,
        code: "PAYMENT_NOT_FOUND".into(),
        message: "Payment not found".into(),
        details: None,
        request_id: request_id.to_owned(),
    }
    .extend()
}

#[Subscription]
impl Subscription {
    /// The caller's payment events (ADMIN: every payment's); with `paymentId`, only that
    /// payment's, which the caller must be allowed to see.
    async fn payment_updated(
        &self,
        ctx: &Context<'_>,
        payment_id: Option<ID>,
    ) -> Result<impl Stream<Item = Arc<PaymentEvent>> + use<>> {
        let feed = ctx.data::<Feed>()?.clone();
        let only = match payment_id {
            None => None,
            Some(id) => {
                let rid = Uuid::new_v4().to_string();
                let Ok(pid) = Uuid::parse_str(&id) else {
                    return Err(not_found(&rid));
                };
                let parties = feed.access.parties(pid).await.map_err(|_| {
                    RestError {
                        status: 503,
                        code: "SERVICE_UNAVAILABLE".into(),
                        message: "Payment permission check is unavailable".into(),
                        details: None,
                        request_id: rid.clone(),
                    }
                    .extend()
                })?;
                let visible = parties.is_some_and(|(s, r)| {
                    feed.role == Role::Admin || s == feed.user_id || r == feed.user_id
                });
                if !visible {
                    return Err(not_found(&rid));
                }
                Some(pid.to_string())
            }
        };
        let rx = feed.events.subscribe();
        Ok(futures::stream::unfold(rx, move |mut rx| {
            let only = only.clone();
            async move {
                loop {
                    match rx.recv().await {
                        Ok(ev) => {
                            if only.as_deref().is_none_or(|p| ev.payment_id.as_str() == p) {
                                return Some((ev, rx));
                            }
                        }
                        Err(broadcast::error::RecvError::Lagged(_)) => {}
                        Err(broadcast::error::RecvError::Closed) => return None,
                    }
                }
            }
        }))
    }
}

/// Maps the hub's serialized `event` message (websocket.md §2) to a `PaymentEvent`; other
/// events give `None`.
pub fn payment_event(text: &str) -> Option<PaymentEvent> {
    let msg: Value = serde_json::from_str(text).ok()?;
    let event_type = msg.pointer("/payload/eventType")?.as_str()?;
    if !event_type.starts_with("payment:") {
        return None;
    }
    let data = msg.pointer("/payload/data")?;
    let field = |f: &str| {
        data.get(f)
            .filter(|v| !v.is_null())
            .or_else(|| data.get("payment").and_then(|p| p.get(f)))
            .cloned()
    };
    let text = |f: &str| field(f).and_then(|v| v.as_str().map(str::to_owned));
    let status: PaymentStatus = decode(field("status"))?;
    let kind: PaymentType = decode(field("type"))?;
    Some(PaymentEvent {
        event_id: ID(msg.get("id")?.as_str()?.to_owned()),
        event_type: event_type.to_owned(),
        payment_id: ID(text("paymentId")?),
        status,
        previous_status: decode(field("previousStatus")),
        amount: Decimal(field("amount")?),
        currency: text("currency")?,
        kind,
        sender_id: ID(text("senderId")?),
        recipient_id: ID(text("recipientId")?),
        occurred_at: DateTime(msg.get("timestamp")?.as_str()?.to_owned()),
    })
}

fn decode<T: serde::de::DeserializeOwned>(v: Option<Value>) -> Option<T> {
    v.and_then(|v| serde_json::from_value(v).ok())
}

/// The access token of a `connection_init` payload (§9.5).
fn token_of(payload: &Value) -> Option<String> {
    let auth = payload
        .get("Authorization")
        .or_else(|| payload.get("authorization"))
        .and_then(Value::as_str)
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t.trim().to_owned());
    auth.or_else(|| {
        payload
            .get("token")
            .and_then(Value::as_str)
            .map(str::to_owned)
    })
    .filter(|t| !t.is_empty())
}

/// A registered hub connection and what feeds this socket's subscriptions.
struct Registered {
    conn: Arc<Conn>,
    rx: mpsc::Receiver<Outbound>,
    events: broadcast::Sender<Arc<PaymentEvent>>,
}

/// The close code a hub close becomes on a subscription socket (§9.5).
fn mapped(code: u16) -> u16 {
    match code {
        4001 | 4002 => 4403,
        0 => 1011,
        c => c,
    }
}

fn reason(code: u16) -> &'static str {
    match code {
        4401 => "Unauthorized",
        4403 => "Forbidden",
        4408 => "Connection initialisation timeout",
        c => crate::ws::hub::close_reason(c),
    }
}

/// Waits for the hub to close this connection, passing its payment events on meanwhile.
async fn pump(r: &mut Registered) -> u16 {
    loop {
        tokio::select! {
            biased;
            () = r.conn.close_now.notified() => {
                return r.conn.close_code.load(Ordering::Acquire);
            }
            out = r.rx.recv() => match out {
                Some(Outbound::Text(t)) => {
                    r.conn.sent(t.len());
                    if let Some(ev) = t.payment_event() {
                        let _ = r.events.send(ev);
                    }
                }
                Some(Outbound::Close(code, _)) => return code,
                None => std::future::pending::<()>().await,
            }
        }
    }
}

/// Serves one upgraded socket until either side closes it.
#[expect(
    clippy::too_many_lines,
    reason = "the graphql-transport-ws protocol as one loop over the socket; each message arm is short"
)]
pub async fn serve(schema: Schema, ws: WsState, socket: WebSocket) {
    let (mut sink, stream) = socket.split();
    let (reg_tx, mut reg_rx) = oneshot::channel::<Registered>();
    let refused = Arc::new(AtomicU16::new(0));
    let on_init = {
        let (ws, refused) = (ws.clone(), refused.clone());
        move |payload: Value| async move {
            let forbidden = || {
                refused.store(4403, Ordering::Release);
                async_graphql::Error::new("Forbidden")
            };
            let token = token_of(&payload).ok_or_else(forbidden)?;
            let claims = ws
                .authn
                .authenticate(&token)
                .await
                .map_err(|_| forbidden())?;
            let (conn, rx) = ws.hub.register(claims.sub, claims.sid, claims.role);
            // Only payment events are queued for this socket (session:revoked always is).
            if let Ok(mut f) = conn.filter.lock() {
                *f = vec!["payment:*".to_owned()];
            }
            let (events, _) = broadcast::channel(FEED_CAPACITY);
            let feed = Feed {
                user_id: claims.sub,
                role: claims.role,
                events: events.clone(),
                access: ws.access.clone(),
            };
            let _ = reg_tx.send(Registered { conn, rx, events });
            let mut data = Data::default();
            data.insert(feed);
            Ok(data)
        }
    };
    let input = stream
        .take_while(|m| futures::future::ready(m.is_ok()))
        .filter_map(|m| {
            futures::future::ready(match m {
                Ok(Message::Text(t)) => Some(bytes::Bytes::from(t)),
                Ok(Message::Binary(b)) => Some(b),
                _ => None,
            })
        });
    let mut gql =
        GqlSocket::new(schema, input, WebSocketProtocols::GraphQLWS).on_connection_init(on_init);
    let deadline = tokio::time::sleep(INIT_TIMEOUT);
    tokio::pin!(deadline);
    let mut registered: Option<Registered> = None;
    let mut init_done = false;
    // Phase 1: until the hub registration (successful `connection_init`).
    let close = loop {
        tokio::select! {
            r = &mut reg_rx, if !init_done => {
                init_done = true;
                if let Ok(r) = r {
                    registered = Some(r);
                    break None;
                }
            }
            msg = gql.next() => match msg {
                Some(WsMessage::Text(t)) => {
                    if sink.send(Message::Text(t.into())).await.is_err() {
                        break Some(None);
                    }
                }
                Some(WsMessage::Close(code, _)) => {
                    let code = match (refused.load(Ordering::Acquire), code) {
                        // `subscribe` before an acknowledged `connection_init`: the
                        // protocol's 4401 Unauthorized.
                        (0, 1011) => 4401,
                        (0, c) => c,
                        (r, _) => r,
                    };
                    break Some(Some(code));
                }
                None => break Some(None),
            },
            () = &mut deadline => break Some(Some(4408)),
        }
    };
    let close = match (close, registered.as_mut()) {
        (Some(c), _) => c,
        (None, None) => None,
        (None, Some(r)) => loop {
            // Phase 2: subscriptions run; the hub may close the socket.
            tokio::select! {
                msg = gql.next() => match msg {
                    Some(WsMessage::Text(t)) => {
                        if sink.send(Message::Text(t.into())).await.is_err() {
                            break None;
                        }
                    }
                    Some(WsMessage::Close(code, _)) => break Some(code),
                    None => break None,
                },
                code = pump(r) => break Some(mapped(code)),
            }
        },
    };
    if let Some(code) = close {
        crate::ws::send_close(&mut sink, code, reason(code)).await;
    }
    let _ = sink.close().await;
    if let Some(r) = registered {
        ws.hub.unregister(&r.conn);
    }
}

/// A hub `event` message for payment `p1` (`payment:processing`), as the hub serialises it.
#[cfg(test)]
pub(crate) fn sample_payment_message() -> String {
    serde_json::json!({
        "type": "event", "id": "e1", "timestamp": "2026-03-01T10:00:00.000Z",
        "payload": { "eventType": "payment:processing", "data": {
            "paymentId": "p1", "status": "processing", "previousStatus": "pending",
            "amount": "25.00", "currency": "USD", "type": "instant",
            "senderId": "s1", "recipientId": "r1", "reason": null } }
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hub_messages_become_payment_events() {
        let ev = payment_event(&sample_payment_message()).unwrap();
        assert_eq!(ev.event_type, "payment:processing");
        assert_eq!(ev.previous_status, Some(PaymentStatus::Pending));
        assert_eq!(ev.amount.0, "25.00");
        assert_eq!(ev.occurred_at.0, "2026-03-01T10:00:00.000Z");
        let login = r#"{"type":"event","id":"e2","timestamp":"t","payload":{"eventType":"session:login","data":{}}}"#;
        assert!(payment_event(login).is_none());
    }

    #[test]
    fn tokens_from_connection_init() {
        let p = serde_json::json!({"Authorization": "Bearer abc"});
        assert_eq!(token_of(&p).as_deref(), Some("abc"));
        assert_eq!(
            token_of(&serde_json::json!({"token": "xyz"})).as_deref(),
            Some("xyz")
        );
        assert!(token_of(&serde_json::json!({})).is_none());
        assert_eq!(mapped(4001), 4403);
        assert_eq!(mapped(4008), 4008);
    }
}
