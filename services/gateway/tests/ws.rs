#![expect(clippy::unwrap_used, clippy::expect_used, reason = "tests")]
//! The WebSocket hub end to end: the real auth service (tokens, logout, its outbox relay), a
//! per-test RabbitMQ vhost, the gateway's own exclusive queue, real sockets.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use futures::{SinkExt, StreamExt};
use http::StatusCode;
use jsonwebtoken::{Algorithm, Header, encode};
use lapin::{BasicProperties, options::BasicPublishOptions};
use payplane_auth::testing::TestApp;
use payplane_authn::{AUDIENCE, AccessClaims};
use payplane_bus::sandbox::Sandbox;
use payplane_events::{Envelope, auth::Role};
use payplane_gateway::{Config, testing::TestGateway};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::{
    MaybeTlsStream, WebSocketStream, connect_async,
    tungstenite::{Message, client::IntoClientRequest, protocol::frame::coding::CloseCode},
};
use uuid::Uuid;

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

struct World {
    auth: TestApp,
    gw: TestGateway,
    sandbox: Sandbox,
    http: reqwest::Client,
}

impl World {
    async fn start() -> World {
        Self::start_with(|_| {}).await
    }

    async fn start_with(tweak: impl FnOnce(&mut Config)) -> World {
        let sandbox = Sandbox::create("gw_ws").await.unwrap();
        let amqp = sandbox.amqp_url.clone();
        let auth = TestApp::spawn_with(|c| {
            c.relay_enabled = true;
            c.amqp_url = amqp;
        })
        .await
        .unwrap();
        let mut config = Config::for_tests().with_upstream("auth", &auth.base_url);
        config.events_enabled = true;
        config.amqp_url = sandbox.amqp_url.clone();
        tweak(&mut config);
        let gw = TestGateway::spawn(config).await.unwrap();
        let deadline = Instant::now() + Duration::from_secs(15);
        while !gw.state.bridge.connected() {
            assert!(Instant::now() < deadline, "bridge never connected");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        World {
            auth,
            gw,
            sandbox,
            http: reqwest::Client::new(),
        }
    }

    /// Registers through the gateway; returns (user id, access token).
    async fn register(&self) -> (Uuid, String) {
        let email = format!("u{}@example.com", Uuid::new_v4().simple());
        let res = self
            .http
            .post(self.gw.url("/api/auth/register"))
            .json(&json!({ "email": email, "password": "Correct-Horse-9", "name": "Test User", "deviceId": "dev-1" }))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::CREATED);
        let body: Value = res.json().await.unwrap();
        let id = Uuid::parse_str(body["data"]["user"]["id"].as_str().unwrap()).unwrap();
        (id, body["data"]["accessToken"].as_str().unwrap().to_owned())
    }

    /// An ADMIN token signed with auth's key (admins are not self-registered).
    fn admin_token(&self) -> (Uuid, String) {
        let keys = &self.auth.state.keys;
        let id = Uuid::new_v4();
        let now = chrono::Utc::now().timestamp();
        let claims = AccessClaims {
            iss: "payplane".into(),
            aud: AUDIENCE.into(),
            sub: id,
            user_id: id,
            email: "admin@example.com".into(),
            name: "Admin".into(),
            role: Role::Admin,
            sid: Uuid::new_v4(),
            ver: 1,
            jti: Uuid::new_v4(),
            iat: now,
            exp: now + 900,
        };
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(keys.kid.clone());
        (id, encode(&header, &claims, &keys.encoding).unwrap())
    }

    async fn connect(&self, token: &str) -> Socket {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            // The JWKS may still be loading right after start (503); retry briefly.
            match connect_async(format!("{}?token={token}", self.gw.ws_url())).await {
                Ok((mut socket, _)) => {
                    let hello = next_json(&mut socket).await;
                    assert_eq!(hello["type"], "connected");
                    return socket;
                }
                Err(e) => {
                    assert!(Instant::now() < deadline, "connect failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }

    async fn publish(&self, routing_key: &str, data: Value) -> Uuid {
        let conn = payplane_bus::conn::connect(&self.sandbox.amqp_url, "test-publisher")
            .await
            .unwrap();
        let ch = conn.create_channel().await.unwrap();
        let id = Uuid::new_v4();
        let envelope = Envelope {
            id,
            event_type: routing_key.to_owned(),
            version: "1".into(),
            timestamp: chrono::Utc::now(),
            source: "payments".into(),
            correlation_id: "test".into(),
            causation_id: None,
            data,
        };
        let body = serde_json::to_vec(&envelope).unwrap();
        ch.basic_publish(
            "events".into(),
            routing_key.into(),
            BasicPublishOptions::default(),
            &body,
            BasicProperties::default(),
        )
        .await
        .unwrap()
        .await
        .unwrap();
        let _ = conn.close(200, "done".into()).await;
        id
    }
}

async fn next_json(socket: &mut Socket) -> Value {
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(10), socket.next())
            .await
            .expect("no message within 10 s")
            .expect("socket ended")
            .expect("socket error");
        match msg {
            Message::Text(t) => return serde_json::from_str(t.as_str()).unwrap(),
            Message::Ping(_) | Message::Pong(_) => {}
            other => panic!("unexpected frame {other:?}"),
        }
    }
}

/// Asserts nothing but pings arrives within `wait`.
async fn silent(socket: &mut Socket, wait: Duration) {
    if let Ok(Some(Ok(Message::Text(t)))) = tokio::time::timeout(wait, socket.next()).await {
        panic!("unexpected message {t}");
    }
}

async fn send(socket: &mut Socket, msg: Value) -> Value {
    socket
        .send(Message::Text(msg.to_string().into()))
        .await
        .unwrap();
    next_json(socket).await
}

/// The close code the server sends, skipping any messages before it.
async fn close_code(socket: &mut Socket) -> (u16, Vec<Value>) {
    let mut before = Vec::new();
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(15), socket.next())
            .await
            .expect("no close within 15 s");
        match msg {
            Some(Ok(Message::Close(Some(frame)))) => return (u16::from(frame.code), before),
            Some(Ok(Message::Text(t))) => before.push(serde_json::from_str(t.as_str()).unwrap()),
            Some(Ok(_)) => {}
            other => panic!("socket ended without a close frame: {other:?}"),
        }
    }
}

/// Connecting to `url` is refused with 401 before the upgrade; returns the refusal's body.
async fn refused_before_upgrade(url: &str) -> Option<Vec<u8>> {
    let err = connect_async(url).await.unwrap_err();
    let tokio_tungstenite::tungstenite::Error::Http(res) = err else {
        panic!("expected an HTTP refusal, got {err:?}")
    };
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    res.into_body()
}

#[tokio::test]
async fn no_token_or_bad_token_is_refused_before_the_upgrade() {
    let w = World::start().await;
    let body = refused_before_upgrade(&w.gw.ws_url()).await;
    let body: Value = serde_json::from_slice(&body.unwrap()).unwrap();
    assert_eq!(body["error"]["code"], "UNAUTHORIZED");

    refused_before_upgrade(&format!("{}?token=not.a.jwt", w.gw.ws_url())).await;

    // The subprotocol form: payplane.v1 is selected, the token entry never echoed.
    let (_, token) = w.register().await;
    let mut req = w.gw.ws_url().into_client_request().unwrap();
    req.headers_mut().insert(
        "sec-websocket-protocol",
        format!("payplane.v1, bearer.{token}").parse().unwrap(),
    );
    let (mut socket, res) = connect_async(req).await.unwrap();
    assert_eq!(res.headers()["sec-websocket-protocol"], "payplane.v1");
    assert_eq!(next_json(&mut socket).await["type"], "connected");
}

#[tokio::test]
async fn payment_event_reaches_both_parties_and_admins_only() {
    let w = World::start().await;
    let (sender, sender_token) = w.register().await;
    let (recipient, recipient_token) = w.register().await;
    let (other, other_token) = w.register().await;
    let (_, admin_token) = w.admin_token();
    let mut sender_ws = w.connect(&sender_token).await;
    let mut recipient_ws = w.connect(&recipient_token).await;
    let mut other_ws = w.connect(&other_token).await;
    let mut admin_ws = w.connect(&admin_token).await;

    // Subscription rules.
    let reply = send(&mut other_ws, json!({ "type": "subscribe", "payload": { "room": format!("user:{sender}") }, "id": "c-1" })).await;
    assert_eq!(reply["type"], "error");
    assert_eq!(reply["payload"]["code"], "FORBIDDEN");
    assert_eq!(reply["id"], "c-1");
    let reply = send(
        &mut other_ws,
        json!({ "type": "subscribe", "payload": { "room": "role:admin" } }),
    )
    .await;
    assert_eq!(reply["payload"]["code"], "FORBIDDEN");
    let reply = send(
        &mut other_ws,
        json!({ "type": "subscribe", "payload": { "room": format!("user:{other}") } }),
    )
    .await;
    assert_eq!(reply["type"], "subscribed");
    let reply = send(
        &mut other_ws,
        json!({ "type": "subscribe", "payload": { "room": "kitchen" } }),
    )
    .await;
    assert_eq!(reply["payload"]["code"], "INVALID_ROOM");
    let reply = send(&mut other_ws, json!({ "type": "ping", "id": "p" })).await;
    assert_eq!(
        (reply["type"].as_str(), reply["id"].as_str()),
        (Some("pong"), Some("p"))
    );

    let payment = Uuid::new_v4();
    let event_id = w
        .publish(
            "payments.payment.completed",
            json!({ "paymentId": payment, "senderId": sender, "recipientId": recipient,
                    "amount": "25.00", "currency": "USD", "status": "completed", "previousStatus": "processing" }),
        )
        .await;
    for socket in [&mut sender_ws, &mut recipient_ws, &mut admin_ws] {
        let msg = next_json(socket).await;
        assert_eq!(msg["type"], "event");
        assert_eq!(msg["id"], event_id.to_string());
        assert_eq!(msg["payload"]["eventType"], "payment:completed");
        assert_eq!(msg["payload"]["data"]["amount"], "25.00");
        // Once only, although the admin… and the parties are in one target room each.
        silent(socket, Duration::from_millis(200)).await;
    }
    silent(&mut other_ws, Duration::from_millis(500)).await;

    // Event-type filter: the recipient now only wants failures.
    let reply = send(
        &mut recipient_ws,
        json!({ "type": "subscribe", "payload": { "eventType": "payment:failed" } }),
    )
    .await;
    assert_eq!(reply["type"], "subscribed");
    w.publish(
        "payments.payment.completed",
        json!({ "paymentId": payment, "senderId": sender, "recipientId": recipient, "amount": "1.00" }),
    )
    .await;
    assert_eq!(
        next_json(&mut sender_ws).await["payload"]["eventType"],
        "payment:completed"
    );
    silent(&mut recipient_ws, Duration::from_millis(300)).await;

    // Graceful shutdown closes sockets with 1001.
    let gw = w.gw;
    let stopping = tokio::spawn(gw.stop());
    let (code, _) = close_code(&mut admin_ws).await;
    assert_eq!(code, 1001);
    stopping.await.unwrap();
}

#[tokio::test]
async fn a_revoked_session_socket_closes_with_4001() {
    let w = World::start().await;
    let (_, token) = w.register().await;
    let (_, other_token) = w.register().await;
    let mut socket = w.connect(&token).await;
    let mut bystander = w.connect(&other_token).await;

    // Logging out through the gateway ends the session; auth's relay publishes
    // auth.session.revoked, the gateway's queue receives it and closes the socket.
    let res = w
        .http
        .post(w.gw.url("/api/auth/logout"))
        .bearer_auth(&token)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success(), "{}", res.status());
    let (code, before) = close_code(&mut socket).await;
    assert_eq!(code, u16::from(CloseCode::Library(4001)));
    assert!(
        before
            .iter()
            .any(|m| m["payload"]["eventType"] == "session:revoked"),
        "{before:?}"
    );
    // Reconnecting with the revoked token is refused before the upgrade.
    refused_before_upgrade(&format!("{}?token={token}", w.gw.ws_url())).await;
    // Another user's socket stays open.
    let reply = send(&mut bystander, json!({ "type": "ping" })).await;
    assert_eq!(reply["type"], "pong");
}

#[tokio::test]
async fn the_oldest_connection_over_the_cap_is_closed_with_4008() {
    let w = World::start().await;
    let (_, token) = w.register().await;
    let mut first = w.connect(&token).await;
    let mut others = Vec::new();
    for _ in 0..10 {
        others.push(w.connect(&token).await);
    }
    let (code, _) = close_code(&mut first).await;
    assert_eq!(code, 4008);
}

/// A stand-in for payments' `/internal/payments/{id}/parties`: one known payment.
async fn fake_payments(payment: Uuid, sender: Uuid, recipient: Uuid) -> String {
    use axum::{extract::Path, http::HeaderMap, routing::get};
    let app = axum::Router::new().route(
        "/internal/payments/{id}/parties",
        get(move |Path(id): Path<Uuid>, headers: HeaderMap| async move {
            assert_eq!(headers["x-service-name"], "gateway");
            assert_eq!(headers["x-service-token"], "dev-service-token");
            if id == payment {
                (StatusCode::OK, axum::Json(json!({ "success": true, "data": { "id": id, "senderId": sender, "recipientId": recipient, "status": "pending" } })))
            } else {
                (StatusCode::NOT_FOUND, axum::Json(json!({ "success": false, "error": { "code": "PAYMENT_NOT_FOUND" } })))
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

#[tokio::test]
async fn payment_rooms_are_authorised_by_the_payments_service() {
    let (payment, sender, recipient) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    let payments = fake_payments(payment, sender, recipient).await;
    let w = World::start_with(|c| *c = c.clone().with_upstream("payments", &payments)).await;
    let (_, stranger_token) = w.register().await;
    let (_, admin_token) = w.admin_token();
    let mut stranger = w.connect(&stranger_token).await;
    let mut admin = w.connect(&admin_token).await;
    let room = format!("payment:{payment}");
    let reply = send(
        &mut stranger,
        json!({ "type": "subscribe", "payload": { "room": room } }),
    )
    .await;
    assert_eq!(reply["payload"]["code"], "PAYMENT_NOT_FOUND");
    let unknown = format!("payment:{}", Uuid::new_v4());
    let reply = send(
        &mut admin,
        json!({ "type": "subscribe", "payload": { "room": unknown } }),
    )
    .await;
    assert_eq!(reply["payload"]["code"], "PAYMENT_NOT_FOUND");
    let reply = send(
        &mut admin,
        json!({ "type": "subscribe", "payload": { "room": room } }),
    )
    .await;
    assert_eq!(reply["type"], "subscribed");
    assert_eq!(reply["payload"]["room"], room);
}

/// When a payment's recipient changes, the former recipient loses the payment's room at once:
/// the change itself and every later event of that payment no longer reach it, and joining
/// again is refused (the parties cache is refreshed from the event, not after 60 s).
#[tokio::test]
async fn a_former_recipient_loses_the_payment_room_when_the_recipient_changes() {
    use axum::{extract::Path, routing::get};
    let payment = Uuid::new_v4();
    let parties: Arc<std::sync::Mutex<(Uuid, Uuid)>> = Arc::default();
    let shared = parties.clone();
    let app = axum::Router::new().route(
        "/internal/payments/{id}/parties",
        get(move |Path(id): Path<Uuid>| {
            let (s, r) = *shared.lock().unwrap();
            async move {
                if id == payment {
                    (StatusCode::OK, axum::Json(json!({ "success": true, "data": { "id": id, "senderId": s, "recipientId": r } })))
                } else {
                    (StatusCode::NOT_FOUND, axum::Json(json!({ "success": false })))
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let w = World::start_with(|c| *c = c.clone().with_upstream("payments", &url)).await;
    let (sender, _) = w.register().await;
    let (old_recipient, old_token) = w.register().await;
    let (new_recipient, new_token) = w.register().await;
    *parties.lock().unwrap() = (sender, old_recipient);

    let room = format!("payment:{payment}");
    let mut old = w.connect(&old_token).await;
    let reply = send(
        &mut old,
        json!({ "type": "subscribe", "payload": { "room": room } }),
    )
    .await;
    assert_eq!(reply["type"], "subscribed", "{reply}");
    let mut new = w.connect(&new_token).await;

    // The sender edits the recipient (payments then answers the new parties too).
    *parties.lock().unwrap() = (sender, new_recipient);
    w.publish(
        "payments.payment.updated",
        json!({ "paymentId": payment, "senderId": sender, "recipientId": new_recipient,
                "amount": "25.00", "description": "secret", "changedFields": ["recipientId"] }),
    )
    .await;
    let msg = next_json(&mut new).await;
    assert_eq!(msg["payload"]["eventType"], "payment:updated");
    silent(&mut old, Duration::from_millis(500)).await;
    w.publish(
        "payments.payment.completed",
        json!({ "paymentId": payment, "senderId": sender, "recipientId": new_recipient,
                "amount": "25.00" }),
    )
    .await;
    let msg = next_json(&mut new).await;
    assert_eq!(msg["payload"]["eventType"], "payment:completed");
    silent(&mut old, Duration::from_millis(500)).await;
    // Joining again is refused, from the refreshed parties.
    *parties.lock().unwrap() = (sender, old_recipient);
    let reply = send(
        &mut old,
        json!({ "type": "subscribe", "payload": { "room": room } }),
    )
    .await;
    assert_eq!(reply["payload"]["code"], "PAYMENT_NOT_FOUND", "{reply}");
}
