//! Cross-service flows on the real PostgreSQL, RabbitMQ and Redis: the real auth service and the
//! profile service in one process, sharing one sandbox vhost, so auth's relay publishes the
//! `auth.user.*` events that profile's consumer applies, and profile's relay publishes
//! `profile.profile.updated`, which a test queue consumes.

#![allow(
    clippy::too_many_lines,
    reason = "each test reads top to bottom as one scenario"
)]
#![expect(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

mod support;

use std::time::Duration;

use futures::StreamExt;
use lapin::{
    options::{BasicConsumeOptions, QueueBindOptions, QueueDeclareOptions},
    types::{FieldTable, ShortString},
};
use payplane_events::topology::EVENTS_EXCHANGE;
use reqwest::StatusCode;
use serde_json::{Value, json};
use support::{Stack, within};
use uuid::Uuid;

/// A test queue bound to `profile.#` on the stack's vhost.
struct Tap {
    consumer: lapin::Consumer,
    _conn: lapin::Connection,
}

impl Tap {
    async fn start(s: &Stack) -> Tap {
        let amqp = &s.sandbox.as_ref().unwrap().amqp_url;
        let conn = payplane_bus::conn::connect(amqp, "profile-test-tap")
            .await
            .unwrap();
        let ch = conn.create_channel().await.unwrap();
        payplane_bus::topology::declare_producer(&ch).await.unwrap();
        let queue = format!("tap-{}", Uuid::new_v4().simple());
        ch.queue_declare(
            queue.as_str().into(),
            QueueDeclareOptions {
                exclusive: true,
                auto_delete: true,
                ..QueueDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap();
        ch.queue_bind(
            queue.as_str().into(),
            EVENTS_EXCHANGE.into(),
            "profile.#".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
        let consumer = ch
            .basic_consume(
                queue.as_str().into(),
                ShortString::from(""),
                BasicConsumeOptions {
                    no_ack: true,
                    ..BasicConsumeOptions::default()
                },
                FieldTable::default(),
            )
            .await
            .unwrap();
        Tap {
            consumer,
            _conn: conn,
        }
    }

    /// The next message's routing key and body.
    async fn next(&mut self) -> (String, Value) {
        let d = tokio::time::timeout(Duration::from_secs(5), self.consumer.next())
            .await
            .expect("an event within 5 s")
            .unwrap()
            .unwrap();
        (
            d.routing_key.as_str().to_owned(),
            serde_json::from_slice(&d.data).unwrap(),
        )
    }
}

/// Waits up to 2 s (`what` names the wait) until the profile row of `user` exists
/// (`present`) or is gone; how long that took.
async fn wait_profile_row(s: &Stack, user: Uuid, present: bool, what: &str) -> Duration {
    within(what, Duration::from_secs(2), || async move {
        s.profile_id(user).await.is_some() == present
    })
    .await
}

#[tokio::test]
async fn registration_creates_the_profile_updates_are_published_and_deletion_removes_it() {
    let s = Stack::on_bus().await;
    let mut tap = Tap::start(&s).await;

    // Register in auth → the profile exists within 2 s, created by the event (no request yet).
    let user = s.register().await;
    let took = wait_profile_row(&s, user.id, true, "profile created from auth.user.created").await;
    println!("registration → profile row: {took:?}");
    let id = s.profile_id(user.id).await.unwrap();
    let r = s.get("/api/profile", &user.token).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        r.data()["id"],
        id.to_string(),
        "the event's profile, not a lazy one"
    );
    assert_eq!(r.data()["phone"], Value::Null);

    // An edit is published as profile.profile.updated, correlated with the request.
    let res = s
        .send(
            s.http
                .put(s.profile.url("/api/profile"))
                .bearer_auth(&user.token)
                .header("x-request-id", "req-profile-edit-1")
                .json(&json!({"phoneNumber": "+1 555 010 0000", "bio": "Hi"})),
        )
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.body);
    let (key, body) = tap.next().await;
    assert_eq!(key, "profile.profile.updated");
    assert_eq!(body["type"], "profile.profile.updated");
    assert_eq!(body["source"], "profile");
    assert_eq!(body["version"], "1");
    assert_eq!(body["correlationId"], "req-profile-edit-1");
    assert_eq!(body["data"]["userId"], user.id.to_string());
    assert_eq!(body["data"]["profileId"], id.to_string());
    assert_eq!(body["data"]["changedFields"], json!(["phone", "bio"]));
    assert_eq!(body["data"]["changedPreferences"], json!([]));
    // Values are never published: only these keys, and the edited values appear nowhere.
    let mut keys: Vec<&str> = body["data"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "actorId",
            "actorType",
            "changedFields",
            "changedPreferences",
            "profileId",
            "updatedAt",
            "userId"
        ]
    );
    assert!(!body.to_string().contains("+1 555 010 0000"));
    let r = s
        .put(
            "/api/profile/preferences",
            &user.token,
            json!({"notifications": {"sms": true}, "theme": "dark"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let (_, body) = tap.next().await;
    assert_eq!(body["data"]["changedFields"], json!(["preferences"]));
    assert_eq!(
        body["data"]["changedPreferences"],
        json!(["theme", "notifications"])
    );

    // Warm the cache, then delete the user through auth's internal endpoint (service
    // credentials, as the admin service calls it) → the profile is gone within 2 s.
    assert_eq!(s.get("/api/profile", &user.token).await.data()["bio"], "Hi");
    s.delete_in_auth(user.id).await;
    let took = wait_profile_row(&s, user.id, false, "profile deleted from auth.user.deleted").await;
    println!("auth deletion → profile row gone: {took:?}");
    let r = s.get("/api/profile", &user.token).await;
    assert_eq!(
        r.status,
        StatusCode::UNAUTHORIZED,
        "the deleted user's session ended"
    );
    assert_eq!(r.code(), "SESSION_REVOKED");
    let tombstone: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM deleted_users WHERE user_id = $1)")
            .bind(user.id)
            .fetch_one(&s.profile.db.pool)
            .await
            .unwrap();
    assert!(tombstone);
    let keys: Vec<String> = sqlx::query_scalar(
        "SELECT routing_key FROM processed_events WHERE consumer = 'profile.events' ORDER BY processed_at, routing_key",
    )
    .fetch_all(&s.profile.db.pool)
    .await
    .unwrap();
    assert_eq!(keys, ["auth.user.created", "auth.user.deleted"]);
}

#[tokio::test]
async fn admin_created_users_get_a_profile_and_account_updates_leave_it_alone() {
    let s = Stack::on_bus().await;
    let admin = Uuid::new_v4();
    let internal = |req: reqwest::RequestBuilder| {
        req.header("x-service-name", "admin")
            .header("x-service-token", "dev-service-token")
            .header("x-actor-id", admin.to_string())
    };
    let email = format!("a{}@example.com", Uuid::new_v4().simple());
    let r = s
        .send(internal(s.http.post(s.auth.url("/internal/users"))).json(
            &json!({"email": email, "password": support::PW, "name": "Made By Admin", "role": "VENDOR"}),
        ))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let uid: Uuid = r.data()["id"].as_str().unwrap().parse().unwrap();
    wait_profile_row(&s, uid, true, "profile of an admin-created user").await;
    let id = s.profile_id(uid).await;

    // auth.user.updated has no effect in this version, but is consumed (recorded as processed).
    let r = s
        .send(
            internal(s.http.patch(s.auth.url(&format!("/internal/users/{uid}"))))
                .json(&json!({"name": "Renamed"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    within(
        "auth.user.updated consumed",
        Duration::from_secs(2),
        || async {
            let n: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM processed_events WHERE routing_key = 'auth.user.updated'",
            )
            .fetch_one(&s.profile.db.pool)
            .await
            .unwrap();
            n == 1
        },
    )
    .await;
    assert_eq!(s.profile_id(uid).await, id);
    let outbox: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox")
        .fetch_one(&s.profile.db.pool)
        .await
        .unwrap();
    assert_eq!(outbox, 0, "consuming account events emits nothing");
}
