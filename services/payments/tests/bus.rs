//! The payments service on the real RabbitMQ: auth's relay publishes `auth.user.created` into
//! a per-test vhost, the payments consumer feeds its directory from `payments.events`, and the
//! payments relay publishes `payments.payment.*` with publisher confirms.

#![allow(
    clippy::too_many_lines,
    reason = "each test reads top to bottom as one scenario"
)]
#![expect(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

use std::time::Duration;

use payplane_bus::sandbox::Sandbox;
use payplane_payments::{config::PspMode, testing::TestApp};
use serde_json::{Value, json};
use uuid::Uuid;

async fn eventually<F, Fut>(what: &str, secs: u64, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    while !check().await {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn sandbox() -> Sandbox {
    Sandbox::create("paybus").await.expect("sandbox vhost")
}

async fn body(res: reqwest::Response) -> Value {
    res.json().await.unwrap()
}

#[tokio::test]
async fn user_events_arrive_through_the_broker_and_payment_events_leave_through_it() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let sandbox = sandbox().await;
    let amqp = sandbox.amqp_url.clone();
    let amqp2 = amqp.clone();
    let app = TestApp::spawn_with(
        move |a| {
            a.relay_enabled = true;
            a.amqp_url = amqp;
        },
        move |c| {
            c.relay_enabled = true;
            c.consumer_enabled = true;
            c.amqp_url = amqp2;
            c.psp_mode = PspMode::External;
        },
    )
    .await
    .unwrap();
    let http = reqwest::Client::new();
    // The consumer has declared and bound its queue once readiness reports the broker up.
    eventually("payments broker connection", 20, || async {
        let r: Value = http
            .get(app.url("/health/ready"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap_or(Value::Null);
        r["data"]["checks"]["broker"] == "up"
    })
    .await;
    let email = format!(
        "bus{}@example.com",
        &Uuid::new_v4().simple().to_string()[..12]
    );
    let r: Value = http
        .post(app.auth.url("/api/auth/register"))
        .json(&json!({"email": email, "password": "TestPassword123!", "name": "Bus User"}))
        .send()
        .await
        .map(body)
        .unwrap()
        .await;
    let id = Uuid::parse_str(r["data"]["user"]["id"].as_str().unwrap()).unwrap();
    let token = r["data"]["accessToken"].as_str().unwrap().to_owned();
    let pool = app.db.pool.clone();
    eventually("directory row from auth.user.created", 20, || {
        let pool = pool.clone();
        async move {
            sqlx::query_scalar::<_, String>("SELECT name FROM users WHERE id = $1")
                .bind(id)
                .fetch_optional(&pool)
                .await
                .unwrap()
                .is_some_and(|n| n == "Bus User")
        }
    })
    .await;
    let processed: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM processed_events WHERE consumer = 'payments.events'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!(processed >= 1);
    // The new user is a recipient without any lookup in auth.
    let other: Value = http
        .post(app.auth.url("/api/auth/register"))
        .json(
            &json!({"email": format!("o{email}"), "password": "TestPassword123!", "name": "Other"}),
        )
        .send()
        .await
        .map(body)
        .unwrap()
        .await;
    let other_token = other["data"]["accessToken"].as_str().unwrap();
    let res = http
        .post(app.url("/api/payments"))
        .bearer_auth(other_token)
        .json(
            &json!({"type": "instant", "amount": "3", "description": "via bus", "recipientId": id}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let list: Value = http
        .get(app.url("/api/payments"))
        .bearer_auth(&token)
        .send()
        .await
        .map(body)
        .unwrap()
        .await;
    assert_eq!(list["data"]["pagination"]["total"], 1);
    eventually(
        "payments.payment.created confirmed by the broker",
        20,
        || {
            let pool = pool.clone();
            async move {
                sqlx::query_scalar::<_, i64>(
                    "SELECT count(*) FROM outbox WHERE routing_key = 'payments.payment.created' \
                 AND published_at IS NOT NULL",
                )
                .fetch_one(&pool)
                .await
                .unwrap()
                    == 1
            }
        },
    )
    .await;
    app.stop().await;
    drop(sandbox);
}
