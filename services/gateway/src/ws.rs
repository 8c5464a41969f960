//! The WebSocket endpoint `GET /ws` (websocket.md): authentication before the upgrade, then
//! one task per connection that writes queued events, answers client messages, enforces the
//! limits of §8 and the heartbeat of §9. Network I/O (socket, payments permission check).

pub mod bridge;
pub mod hub;
pub mod mapping;

use secrecy::{ExposeSecret, SecretString};
use std::{
    collections::HashMap,
    sync::Arc,
    time::{Duration, Instant},
};

use axum::{
    extract::{
        Query, State,
        ws::{
            CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade,
            rejection::WebSocketUpgradeRejection,
        },
    },
    response::{IntoResponse, Response},
};
use http::{HeaderMap, StatusCode};
use payplane_authn::{AccessClaims, Authn, extract::unauthorized};
use payplane_events::auth::Role;
use payplane_kit::ApiError;
use serde_json::{Value, json};
use uuid::Uuid;

use self::{
    hub::{Conn, Hub, Outbound, PartiesCache, automatic_rooms, close_reason},
    mapping::{ClientMessage, Refusal, Room, Target, parse_client, parse_room, server_message},
};

/// Inbound message limit (websocket.md §8).
const MAX_INBOUND: usize = 16 * 1024;
const RATE_WINDOW: Duration = Duration::from_secs(10);
const RATE_ALLOWED: u32 = 20;
const RATE_CLOSE: u32 = 100;
const MAX_SUBSCRIPTIONS: usize = 50;
const PARTIES_TTL: Duration = Duration::from_secs(60);

/// Who may see a payment, cached per payment id for 60 s (found or not) in the hub's cache,
/// which every payment event also refreshes.
#[derive(Clone)]
pub struct PaymentAccess {
    http: reqwest::Client,
    payments_url: String,
    service_token: SecretString,
    cache: PartiesCache,
}

#[derive(Debug, thiserror::Error)]
#[error("the payments service could not answer the permission check")]
pub struct AccessUnavailable;

impl PaymentAccess {
    pub fn new(
        http: reqwest::Client,
        payments_url: &str,
        service_token: &SecretString,
        cache: PartiesCache,
    ) -> Self {
        Self {
            http,
            payments_url: payments_url.trim_end_matches('/').to_owned(),
            service_token: service_token.clone(),
            cache,
        }
    }

    /// The sender and recipient of a payment, or `None` when it does not exist.
    pub async fn parties(&self, id: Uuid) -> Result<Option<(Uuid, Uuid)>, AccessUnavailable> {
        if let Ok(cache) = self.cache.lock()
            && let Some((at, v)) = cache.get(&id)
            && at.elapsed() < PARTIES_TTL
        {
            return Ok(*v);
        }
        let res = self
            .http
            .get(format!(
                "{}/internal/payments/{id}/parties",
                self.payments_url
            ))
            .header("x-service-name", "gateway")
            .header("x-service-token", self.service_token.expose_secret())
            .timeout(Duration::from_secs(3))
            .send()
            .await
            .map_err(|_| AccessUnavailable)?;
        let answer = match res.status() {
            StatusCode::NOT_FOUND => None,
            s if s.is_success() => {
                let body: Value = res.json().await.map_err(|_| AccessUnavailable)?;
                let get = |f: &str| {
                    body.pointer(&format!("/data/{f}"))
                        .and_then(Value::as_str)
                        .and_then(|s| Uuid::parse_str(s).ok())
                };
                Some((
                    get("senderId").ok_or(AccessUnavailable)?,
                    get("recipientId").ok_or(AccessUnavailable)?,
                ))
            }
            _ => return Err(AccessUnavailable),
        };
        if let Ok(mut cache) = self.cache.lock() {
            if cache.len() > 100_000 {
                cache.clear();
            }
            cache.insert(id, (Instant::now(), answer));
        }
        Ok(answer)
    }
}

/// What the WebSocket endpoint needs.
#[derive(Clone)]
pub struct WsState {
    pub hub: Hub,
    pub authn: Authn,
    pub access: PaymentAccess,
}

fn token_from<S: std::hash::BuildHasher>(
    query: &HashMap<String, String, S>,
    headers: &HeaderMap,
) -> Option<String> {
    if let Some(t) = query.get("token").filter(|t| !t.is_empty()) {
        return Some(t.clone());
    }
    if let Some(t) = payplane_authn::extract::bearer_from_headers(headers) {
        return Some(t.to_owned());
    }
    let offered: Vec<&str> = headers
        .get_all(http::header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    if !offered.contains(&"payplane.v1") {
        return None;
    }
    offered
        .iter()
        .find_map(|p| p.strip_prefix("bearer."))
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
}

/// `GET /ws`: the refusals of websocket.md §1.2 as ordinary HTTP, then the upgrade.
#[expect(clippy::implicit_hasher, reason = "axum extracts the default hasher")]
pub async fn handler(
    State(state): State<Arc<WsState>>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let Ok(upgrade) = upgrade else {
        return ApiError::new(
            StatusCode::UPGRADE_REQUIRED,
            "UPGRADE_REQUIRED",
            "This endpoint requires a WebSocket upgrade",
        )
        .into_response();
    };
    if state.hub.is_shutting_down() {
        return ApiError::unavailable("Gateway is shutting down").into_response();
    }
    let Some(token) = token_from(&query, &headers) else {
        return unauthorized().into_response();
    };
    let claims = match state.authn.authenticate(&token).await {
        Ok(c) => c,
        Err(e) => return e.into_response(),
    };
    small_buffers(upgrade)
        .protocols(["payplane.v1"])
        .max_message_size(MAX_INBOUND)
        .max_frame_size(MAX_INBOUND)
        .on_upgrade(move |socket| run(&state, &claims, socket))
}

/// The buffers of a socket that mostly waits and then writes one shared event (`/ws` and
/// GraphQL subscriptions). tungstenite's defaults allocate a 128 KiB read buffer per socket up
/// front and zero-fill its free capacity before every read — every wake-up of a socket's task
/// polls its read side — so they dominated both memory per socket and the CPU of a fan-out.
/// Messages are written at once (no write buffering), with at most 1 MiB pending.
pub fn small_buffers(upgrade: WebSocketUpgrade) -> WebSocketUpgrade {
    upgrade
        .read_buffer_size(1024)
        .write_buffer_size(0)
        .max_write_buffer_size(1024 * 1024)
}

/// One connection's task: registered now, served by the returned future, unregistered when
/// that future ends or is dropped (`Session`'s `Drop`). A plain function returning the serve
/// future, so nothing is held twice in the task (see `Session::serve`).
fn run(
    state: &WsState,
    claims: &AccessClaims,
    socket: WebSocket,
) -> impl std::future::Future<Output = ()> + Send + use<> {
    let (conn, rx) = state.hub.register(claims.sub, claims.sid, claims.role);
    let session = Session {
        hub: state.hub.clone(),
        access: state.access.clone(),
        conn,
        window_start: Instant::now(),
        window_count: 0,
    };
    session.serve(socket, rx)
}

struct Session {
    hub: Hub,
    access: PaymentAccess,
    conn: Arc<Conn>,
    window_start: Instant,
    window_count: u32,
}

impl Drop for Session {
    fn drop(&mut self) {
        self.hub.unregister(&self.conn);
    }
}

enum Step {
    Continue,
    Close(u16),
    Drop,
}

/// Sends a close frame with `code` and `reason`, giving up after 5 s (a client that stopped
/// reading must not hold the connection's task); shared with the GraphQL subscription socket.
pub(crate) async fn send_close<S>(sink: &mut S, code: u16, reason: &'static str)
where
    S: futures::Sink<Message> + Unpin,
{
    let frame = CloseFrame {
        code,
        reason: reason.into(),
    };
    let _ = tokio::time::timeout(
        Duration::from_secs(5),
        futures::SinkExt::send(sink, Message::Close(Some(frame))),
    )
    .await;
}

/// How long one outbound message may wait for room in the socket before the client is taken
/// for gone.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);

/// Sends one message, giving up after `SEND_TIMEOUT`. A send that completes at once (there is
/// room in the socket's buffer: nearly always) needs no timer; only one that has to wait gets
/// its timer, boxed, so a timer is not part of every socket's task for its whole life (and
/// none is registered per message during a fan-out).
async fn send_within(socket: &mut WebSocket, msg: Message) -> bool {
    let mut send = std::pin::pin!(socket.send(msg));
    if let std::task::Poll::Ready(r) = futures::poll!(send.as_mut()) {
        return r.is_ok();
    }
    Box::pin(tokio::time::timeout(SEND_TIMEOUT, send))
        .await
        .is_ok_and(|r| r.is_ok())
}

async fn close(socket: &mut WebSocket, code: u16) {
    send_close(socket, code, close_reason(code)).await;
    // Wait briefly for the client's close reply so the close handshake completes.
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(Ok(m)) = socket.recv().await {
            if matches!(m, Message::Close(_)) {
                break;
            }
        }
    })
    .await;
}

impl Session {
    async fn send_text(socket: &mut WebSocket, text: String) -> bool {
        send_within(socket, Message::Text(text.into())).await
    }

    // Not an `async fn`: those move their arguments into locals at the start, and a moved-from
    // argument keeps its space in the future, so the socket and the session were stored twice
    // in every connection's task. The block below uses them where they were captured.
    #[expect(
        clippy::manual_async_fn,
        reason = "an async fn would store its arguments twice (see above)"
    )]
    fn serve(
        mut self,
        mut socket: WebSocket,
        mut rx: tokio::sync::mpsc::Receiver<Outbound>,
    ) -> impl std::future::Future<Output = ()> + Send {
        async move {
            let c = &self.conn;
            let rooms = automatic_rooms(c.user_id, c.role);
            let hello = server_message(
                "connected",
                Some(json!({
                    "userId": c.user_id, "role": c.role.as_str(), "sessionId": c.session_id,
                    "connectionId": c.connection_id, "rooms": rooms,
                    "heartbeatIntervalSeconds": self.hub.limits().heartbeat.as_secs(),
                })),
                None,
            );
            if !Self::send_text(&mut socket, hello).await {
                return;
            }
            let limits = *self.hub.limits();
            let mut awaiting_pong = false;
            // The close signal and the heartbeat timer live across iterations: made anew in every
            // turn of the loop they would register a waiter and a timer-wheel entry (and remove
            // them again) for every message sent, which is most of the turns during a fan-out.
            let conn = self.conn.clone();
            let close_now = conn.close_now.notified();
            tokio::pin!(close_now);
            let heartbeat = tokio::time::sleep(limits.heartbeat);
            tokio::pin!(heartbeat);
            loop {
                let step = tokio::select! {
                    biased;
                    () = &mut close_now => {
                        let code = conn.close_code.load(std::sync::atomic::Ordering::Acquire);
                        Step::Close(if code == 0 { 1011 } else { code })
                    }
                    out = rx.recv() => match out {
                        Some(Outbound::Text(t)) => {
                            let len = t.len();
                            let t = Utf8Bytes::clone(&t);
                            let ok = send_within(&mut socket, Message::Text(t)).await;
                            conn.sent(len);
                            if ok { Step::Continue } else { Step::Drop }
                        }
                        Some(Outbound::Close(code, _)) => Step::Close(code),
                        None => Step::Drop,
                    },
                    incoming = socket.recv() => match incoming {
                        // Boxed: the handling of a client message (room authorisation over HTTP
                        // included) would otherwise be stored inline in every socket's task for
                        // its whole life, though it runs only while a message is handled.
                        Some(Ok(Message::Text(t))) => Box::pin(self.on_text(&mut socket, t.as_str())).await,
                        Some(Ok(Message::Binary(_))) => Step::Close(1003),
                        Some(Ok(Message::Pong(_))) => {
                            if awaiting_pong {
                                awaiting_pong = false;
                                heartbeat.as_mut().reset(tokio::time::Instant::now() + limits.heartbeat.saturating_sub(limits.pong_timeout));
                            }
                            Step::Continue
                        }
                        Some(Ok(Message::Ping(_))) => Step::Continue,
                        Some(Ok(Message::Close(_))) | None => Step::Drop,
                        Some(Err(e)) => {
                            if too_large(e) { Step::Close(1009) } else { Step::Drop }
                        }
                    },
                    () = &mut heartbeat => {
                        if awaiting_pong {
                            // Missed heartbeat: dropped without a close frame (websocket.md §7).
                            Step::Drop
                        } else {
                            awaiting_pong = true;
                            heartbeat.as_mut().reset(tokio::time::Instant::now() + limits.pong_timeout);
                            if send_within(&mut socket, Message::Ping(bytes::Bytes::new())).await { Step::Continue } else { Step::Drop }
                        }
                    }
                };
                match step {
                    Step::Continue => {}
                    Step::Close(code) => {
                        // Boxed for the same reason as `on_text`: it runs once, at the end.
                        Box::pin(close(&mut socket, code)).await;
                        return;
                    }
                    Step::Drop => return,
                }
            }
        }
    }

    async fn on_text(&mut self, socket: &mut WebSocket, text: &str) -> Step {
        if self.window_start.elapsed() >= RATE_WINDOW {
            self.window_start = Instant::now();
            self.window_count = 0;
        }
        self.window_count += 1;
        let (id, parsed) = parse_client(text);
        if self.window_count > RATE_CLOSE {
            return Step::Close(1008);
        }
        if self.window_count > RATE_ALLOWED {
            let msg = error_message(
                &Refusal {
                    code: "RATE_LIMIT_EXCEEDED",
                    message: "Too many messages".into(),
                },
                id.as_deref(),
            );
            return if Self::send_text(socket, msg).await {
                Step::Continue
            } else {
                Step::Drop
            };
        }
        let reply = match parsed {
            Err(refusal) => error_message(&refusal, id.as_deref()),
            Ok(ClientMessage::Ping) => server_message("pong", None, id.as_deref()),
            Ok(ClientMessage::Subscribe(target)) => match self.subscribe(&target).await {
                Ok(()) => server_message("subscribed", Some(target_json(&target)), id.as_deref()),
                Err(r) => error_message(&r, id.as_deref()),
            },
            Ok(ClientMessage::Unsubscribe(target)) => {
                self.unsubscribe(&target);
                server_message("unsubscribed", Some(target_json(&target)), id.as_deref())
            }
        };
        if Self::send_text(socket, reply).await {
            Step::Continue
        } else {
            Step::Drop
        }
    }

    async fn subscribe(&self, target: &Target) -> Result<(), Refusal> {
        let c = &self.conn;
        match target {
            Target::EventType(t) => {
                let mut filter = c
                    .filter
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                if filter.contains(t) {
                    return Ok(());
                }
                if filter.len() >= MAX_SUBSCRIPTIONS {
                    return Err(limit());
                }
                filter.push(t.clone());
                Ok(())
            }
            Target::Room(name) => {
                let room = parse_room(name).ok_or_else(|| Refusal {
                    code: "INVALID_ROOM",
                    message: format!("Unknown room {name}"),
                })?;
                let forbidden = || Refusal {
                    code: "FORBIDDEN",
                    message: format!("Not allowed to join {name}"),
                };
                match room {
                    Room::User(u) if u != c.user_id => return Err(forbidden()),
                    Room::Role(r) if r != c.role.as_str().to_ascii_lowercase() => {
                        return Err(forbidden());
                    }
                    Room::Payment(p) => {
                        let parties = self.access.parties(p).await.map_err(|_| Refusal {
                            code: "SERVICE_UNAVAILABLE",
                            message: "Payment permission check is unavailable".into(),
                        })?;
                        let visible = parties.is_some_and(|(s, r)| {
                            c.role == Role::Admin || s == c.user_id || r == c.user_id
                        });
                        if !visible {
                            return Err(Refusal {
                                code: "PAYMENT_NOT_FOUND",
                                message: "Payment not found".into(),
                            });
                        }
                    }
                    _ => {}
                }
                if self.hub.in_room(c, name) {
                    return Ok(());
                }
                let auto = automatic_rooms(c.user_id, c.role);
                if !auto.contains(name) && self.hub.extra_rooms(c) >= MAX_SUBSCRIPTIONS {
                    return Err(limit());
                }
                self.hub.join(c, name);
                Ok(())
            }
        }
    }

    fn unsubscribe(&self, target: &Target) {
        match target {
            Target::EventType(t) => self
                .conn
                .filter
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .retain(|e| e != t),
            Target::Room(name) => self.hub.leave(&self.conn, name),
        }
    }
}

fn limit() -> Refusal {
    Refusal {
        code: "SUBSCRIPTION_LIMIT",
        message: "Subscription limit reached (50)".into(),
    }
}

fn too_large(e: axum::Error) -> bool {
    let inner = e.into_inner();
    inner
        .downcast_ref::<tokio_tungstenite::tungstenite::Error>()
        .is_some_and(|e| matches!(e, tokio_tungstenite::tungstenite::Error::Capacity(_)))
}

fn target_json(t: &Target) -> Value {
    match t {
        Target::Room(r) => json!({ "room": r }),
        Target::EventType(e) => json!({ "eventType": e }),
    }
}

fn error_message(r: &Refusal, id: Option<&str>) -> String {
    server_message(
        "error",
        Some(json!({ "code": r.code, "message": r.message })),
        id,
    )
}
