//! Payments service integration tests on the real PostgreSQL and Redis, with a real auth
//! service in-process for tokens and the internal user endpoint. Each test gets its own
//! databases and Redis key prefix, so they run in parallel.

#![allow(
    clippy::too_many_lines,
    reason = "each test reads top to bottom as one scenario"
)]
#![expect(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

#[path = "support/harness.rs"]
mod harness;

use std::time::Duration;

use harness::{Api, User, assert_refused, deliver, fast_sim, no_sim, timestamp};
use payplane_kit::service::testing::http::{Res, ServiceClient};
use payplane_payments::{config::PspMode, routes::webhook::sign};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

/// Calls only these tests make.
impl Api {
    async fn create_with_key(&self, u: &User, key: &str, body: Value) -> Res {
        self.raw(
            Method::POST,
            self.app.url("/api/payments"),
            Some(&u.token),
            Some(body),
            &[("idempotency-key", key)],
        )
        .await
    }

    /// The smallest valid request paying `recipient_id`: for tests about who may be paid.
    async fn pay_one(&self, from: &User, recipient_id: &str) -> Res {
        self.create(
            from,
            json!({"type": "instant", "amount": "1", "description": "x", "recipientId": recipient_id}),
        )
        .await
    }

    async fn pay(&self, from: &User, to: &User, amount: &str) -> Value {
        let r = self
            .create(
                from,
                json!({"type": "instant", "amount": amount, "description": "test payment", "recipientId": to.id}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        r.data().clone()
    }

    async fn status(&self, u: &User, id: &str, status: &str) -> Res {
        self.status_body(u, id, json!({ "status": status })).await
    }

    /// A status change with a body of the test's own (a reason, another spelling).
    async fn status_body(&self, u: &User, id: &str, body: Value) -> Res {
        self.client
            .call(
                Method::PATCH,
                &format!("/api/payments/{id}/status"),
                Some(&u.token),
                Some(body),
            )
            .await
    }

    async fn events_for(&self, id: &str) -> Vec<String> {
        self.outbox()
            .await
            .into_iter()
            .filter(|(_, e)| e["data"]["paymentId"] == id)
            .map(|(k, _)| k)
            .collect()
    }

    async fn count(&self, sql: &str) -> i64 {
        sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(sql.to_owned()))
            .fetch_one(&self.app.db.pool)
            .await
            .unwrap()
    }
}

fn id_of(v: &Value) -> String {
    v["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn create_and_visibility_by_role() {
    let api = Api::new(no_sim).await;
    let [alice, bob, carol, admin] = api.users(["CUSTOMER", "VENDOR", "CUSTOMER", "ADMIN"]).await;
    let r = api
        .create(
            &alice,
            json!({"type": "INSTANT", "amount": 1000, "currency": "eur", "description": "  rent  ",
                   "recipientEmail": bob.email.to_uppercase(), "metadata": {"order": 7}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let p = r.data().clone();
    assert_eq!(p["amount"], "1000.00");
    assert_eq!(p["currency"], "EUR");
    assert_eq!(p["type"], "instant");
    assert_eq!(p["status"], "pending");
    assert_eq!(p["description"], "rent");
    assert_eq!(p["senderId"], alice.id.as_str());
    assert_eq!(p["recipientId"], bob.id.as_str());
    assert_eq!(p["sender"]["email"], alice.email.as_str());
    assert_eq!(p["recipient"]["id"], bob.id.as_str());
    assert_eq!(p["metadata"], json!({"order": 7}));
    let txs = p["transactions"].as_array().unwrap();
    assert_eq!(txs.len(), 1);
    assert_eq!(txs[0]["statusMessage"], "Payment created");
    assert_eq!(txs[0]["previousStatus"], Value::Null);
    assert_eq!(txs[0]["actorType"], "user");
    assert!(p["createdAt"].as_str().unwrap().ends_with('Z'));
    let id = id_of(&p);
    let path = format!("/api/payments/{id}");
    for u in [&alice, &bob, &admin] {
        let r = api.get(&path, u).await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.data()["transactions"].as_array().unwrap().len(), 1);
    }
    let r = api.get(&path, &carol).await;
    assert_refused(&r, StatusCode::NOT_FOUND, "PAYMENT_NOT_FOUND");
    let r = api.get("/api/payments/not-a-uuid", &alice).await;
    assert_eq!(r.code(), "PAYMENT_NOT_FOUND");
    let r = api
        .get(
            &path
                .to_uppercase()
                .replace("/API/PAYMENTS", "/api/payments"),
            &alice,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    // Lists: parties see it, others do not, admin sees everything.
    let _other = api.pay(&carol, &bob, "5").await;
    let count = |r: &Res| r.data()["payments"].as_array().unwrap().len();
    assert_eq!(count(&api.get("/api/payments", &alice).await), 1);
    assert_eq!(count(&api.get("/api/payments", &bob).await), 2);
    assert_eq!(count(&api.get("/api/payments", &carol).await), 1);
    let all = api.get("/api/payments", &admin).await;
    assert_eq!(count(&all), 2);
    assert!(all.data()["payments"][0].get("transactions").is_none());
    assert_eq!(
        all.data()["pagination"],
        json!({"page": 1, "limit": 10, "total": 2, "totalPages": 1})
    );
    let r = api
        .client
        .call(Method::GET, "/api/payments", None, None)
        .await;
    assert_refused(&r, StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
    // Recipients: everyone in the directory but the caller.
    let r = api.get("/api/payments/recipients", &bob).await;
    let ids: Vec<&str> = r
        .data()
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["id"].as_str().unwrap())
        .collect();
    assert!(ids.contains(&alice.id.as_str()) && ids.contains(&carol.id.as_str()));
    assert!(!ids.contains(&bob.id.as_str()));
    let r = api
        .get(
            &format!(
                "/api/payments/recipients?search={}",
                &carol.email[..8].to_uppercase()
            ),
            &bob,
        )
        .await;
    assert_eq!(r.data().as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn list_filters_sorting_and_aliases() {
    let api = Api::new(no_sim).await;
    let [a, b] = api.users(["CUSTOMER", "VENDOR"]).await;
    for amount in ["10", "20.5", "30"] {
        api.pay(&a, &b, amount).await;
    }
    let amounts = |r: &Res| -> Vec<String> {
        r.data()["payments"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["amount"].as_str().unwrap().to_owned())
            .collect()
    };
    let r = api.get("/api/payments?sort=amount&order=asc", &a).await;
    assert_eq!(amounts(&r), ["10.00", "20.50", "30.00"]);
    let r = api
        .get(
            "/api/payments?minAmount=15&maxAmount=30&sort=amount&order=DESC",
            &a,
        )
        .await;
    assert_eq!(amounts(&r), ["30.00", "20.50"]);
    let r = api
        .get(
            "/api/payments?limit=2&page=2&sort=amount&order=asc&status=",
            &a,
        )
        .await;
    assert_eq!(amounts(&r), ["30.00"]);
    assert_eq!(r.data()["pagination"]["totalPages"], 2);
    let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
    let r = api
        .get(
            &format!("/api/payments?fromDate={today}&toDate={today}"),
            &a,
        )
        .await;
    assert_eq!(amounts(&r).len(), 3);
    let r = api.get("/api/payments?endDate=2020-01-01", &a).await;
    assert_eq!(amounts(&r).len(), 0);
    let r = api.get("/api/payments?status=completed", &a).await;
    assert_eq!(amounts(&r).len(), 0);
    let r = api
        .get(
            "/api/payments?limit=101&page=0&sort=name&minAmount=1.234&status=x&status=y",
            &a,
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let mut f = r.fields();
    f.sort();
    assert_eq!(f, ["limit", "minAmount", "page", "sort", "status"]);
    let r = api
        .get("/api/payments?startDate=2026-02-01&endDate=2026-01-01", &a)
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn validation_amounts_currencies_and_recipients() {
    let api = Api::new(no_sim).await;
    let [a, b] = api.users(["CUSTOMER", "CUSTOMER"]).await;
    let base = |amount: Value| json!({"type": "instant", "amount": amount, "description": "x", "recipientId": b.id});
    for ok in [
        json!("0.01"),
        json!(0.5),
        json!("10000000.00"),
        json!(12),
        json!("12.5"),
    ] {
        let r = api.create(&a, base(ok.clone())).await;
        assert_eq!(r.status, StatusCode::CREATED, "{ok}: {}", r.body);
    }
    let r = api.create(&a, base(json!("12.5"))).await;
    assert_eq!(r.data()["amount"], "12.50");
    for bad in [
        json!("0"),
        json!(0),
        json!("0.001"),
        json!(1.234),
        json!("10000000.01"),
        json!("-1"),
        json!("1e3"),
        json!(true),
        json!("01.5"),
        json!(" 1"),
    ] {
        let r = api.create(&a, base(bad.clone())).await;
        assert_eq!(
            (r.status, r.fields()),
            (StatusCode::BAD_REQUEST, vec!["amount".to_owned()]),
            "{bad}"
        );
    }
    let r = api
        .create(&a, json!({"type": "instant", "amount": "1", "currency": "XXX", "description": "x", "recipientId": b.id}))
        .await;
    assert_eq!(r.fields(), ["currency"]);
    let r = api.create(&a, json!({})).await;
    let mut f = r.fields();
    f.sort();
    assert_eq!(f, ["amount", "description", "recipientId", "type"]);
    let r = api.pay_one(&a, &a.id).await;
    assert_refused(&r, StatusCode::BAD_REQUEST, "INVALID_RECIPIENT");
    let r = api
        .create(&a, json!({"type": "instant", "amount": "1", "description": "x", "recipientId": b.id, "recipientEmail": b.email}))
        .await;
    assert_eq!(r.code(), "INVALID_RECIPIENT");
    let r = api
        .create(&a, json!({"type": "instant", "amount": "1", "description": "x", "recipientId": Uuid::new_v4()}))
        .await;
    assert_refused(&r, StatusCode::NOT_FOUND, "RECIPIENT_NOT_FOUND");
    let r = api
        .create(&a, json!({"type": "instant", "amount": "1", "description": "x", "recipientEmail": "nobody@example.com"}))
        .await;
    assert_eq!(r.code(), "RECIPIENT_NOT_FOUND");
    let r = api
        .create(
            &a,
            json!({"type": "scheduled", "amount": "1", "description": "x", "recipientId": b.id}),
        )
        .await;
    assert_eq!(r.fields(), ["scheduledFor"]);
    let later = (chrono::Utc::now() + chrono::Duration::days(1)).to_rfc3339();
    let r = api
        .create(&a, json!({"type": "instant", "amount": "1", "description": "x", "recipientId": b.id, "scheduledFor": later}))
        .await;
    assert_eq!(r.fields(), ["scheduledFor"]);
    let r = api
        .create(&a, json!({"type": "scheduled", "amount": "1", "description": "x", "recipientId": b.id, "scheduledFor": "2020-01-01T00:00:00Z"}))
        .await;
    assert_eq!(r.fields(), ["scheduledFor"]);
    let r = api
        .create(&a, json!({"type": "instant", "amount": "1", "description": "x", "recipientId": b.id, "metadata": [1]}))
        .await;
    assert_eq!(r.fields(), ["metadata"]);
    let r = api
        .raw(
            Method::POST,
            api.app.url("/api/payments"),
            Some(&a.token),
            None,
            &[("content-type", "application/json")],
        )
        .await;
    assert_eq!(r.code(), "VALIDATION_ERROR");
    assert_eq!(api.count("SELECT count(*) FROM payments").await, 6);
}

/// Drives a fresh payment to `from` as admin (with the webhook-free manual path).
async fn payment_in(
    api: &Api,
    sender: &User,
    recipient: &User,
    admin: &User,
    from: &str,
) -> String {
    let id = id_of(&api.pay(sender, recipient, "1").await);
    let path: &[&str] = match from {
        "pending" => &[],
        "processing" => &["processing"],
        "completed" => &["processing", "completed"],
        "failed" => &["failed"],
        _ => &["cancelled"],
    };
    for step in path {
        let r = api.status(admin, &id, step).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    }
    id
}

#[tokio::test]
async fn every_allowed_and_refused_transition() {
    let api = Api::new(no_sim).await;
    let [a, b, admin] = api.users(["CUSTOMER", "VENDOR", "ADMIN"]).await;
    let statuses = ["pending", "processing", "completed", "failed", "cancelled"];
    let allowed = [
        ("pending", "processing"),
        ("pending", "cancelled"),
        ("pending", "failed"),
        ("processing", "completed"),
        ("processing", "failed"),
    ];
    for from in statuses {
        for to in statuses {
            let id = payment_in(&api, &a, &b, &admin, from).await;
            let r = api.status(&admin, &id, to).await;
            if allowed.contains(&(from, to)) {
                assert_eq!(r.status, StatusCode::OK, "{from}->{to}: {}", r.body);
                assert_eq!(r.data()["status"], to);
                let last = r.data()["transactions"]
                    .as_array()
                    .unwrap()
                    .last()
                    .unwrap()
                    .clone();
                assert_eq!(last["previousStatus"], from);
                assert_eq!(last["actorType"], "admin");
                assert_eq!(last["actorId"], admin.id.as_str());
                assert_eq!(last["statusMessage"], format!("Payment {to}"));
                let events = api.events_for(&id).await;
                assert_eq!(events.last().unwrap(), &format!("payments.payment.{to}"));
                match to {
                    "completed" => assert!(r.data()["completedAt"].is_string()),
                    "failed" => assert_eq!(r.data()["failureReason"], "Payment failed"),
                    "cancelled" => {
                        assert_eq!(r.data()["failureReason"], "Cancelled by administrator");
                    }
                    _ => assert!(r.data()["completedAt"].is_null()),
                }
            } else {
                assert_eq!(
                    (r.status, r.code()),
                    (StatusCode::CONFLICT, "INVALID_STATUS_TRANSITION"),
                    "{from}->{to}"
                );
            }
        }
    }
}

#[tokio::test]
async fn status_change_permissions() {
    let api = Api::new(no_sim).await;
    let [a, b, c, admin] = api.users(["CUSTOMER", "VENDOR", "CUSTOMER", "ADMIN"]).await;
    let id = id_of(&api.pay(&a, &b, "3").await);
    assert_eq!(
        api.status(&a, &id, "processing").await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        api.status(&b, &id, "cancelled").await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        api.status(&c, &id, "cancelled").await.code(),
        "PAYMENT_NOT_FOUND"
    );
    let r = api.status(&a, &id, "nope").await;
    assert_eq!(r.fields(), ["status"]);
    let r = api
        .status_body(
            &a,
            &id,
            json!({"status": "CANCELLED", "reason": "changed my mind"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.data()["failureReason"], "changed my mind");
    let last = r.data()["transactions"][1].clone();
    assert_eq!(
        (last["actorType"].as_str(), last["statusMessage"].as_str()),
        (Some("user"), Some("changed my mind"))
    );
    let id2 = payment_in(&api, &a, &b, &admin, "processing").await;
    let r = api.status(&a, &id2, "cancelled").await;
    assert_refused(&r, StatusCode::CONFLICT, "INVALID_STATUS_TRANSITION");
    let id3 = id_of(&api.pay(&a, &b, "3").await);
    // An empty reason is absent (api.md §5.10: existing clients always send the reason box).
    let r = api
        .status_body(&a, &id3, json!({"status": "cancelled", "reason": ""}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.data()["failureReason"], "Cancelled by sender");
    // Concurrent changes on one payment: exactly one wins.
    let id4 = payment_in(&api, &a, &b, &admin, "processing").await;
    let tries = (0..10).map(|i| {
        let target = if i % 2 == 0 { "completed" } else { "failed" };
        api.status(&admin, &id4, target)
    });
    let results = futures::future::join_all(tries).await;
    let ok = results
        .iter()
        .filter(|r| r.status == StatusCode::OK)
        .count();
    assert_eq!(ok, 1);
    assert!(
        results
            .iter()
            .all(|r| r.status == StatusCode::OK || r.code() == "INVALID_STATUS_TRANSITION")
    );
    assert_eq!(api.events_for(&id4).await.len(), 3);
}

#[tokio::test]
async fn edit_while_pending() {
    let api = Api::new(no_sim).await;
    let [a, b, c, admin] = api.users(["CUSTOMER", "VENDOR", "CUSTOMER", "ADMIN"]).await;
    let id = id_of(&api.pay(&a, &b, "3").await);
    let path = format!("/api/payments/{id}");
    let put = |u: &User, body: Value| {
        let (api, token, path) = (&api, u.token.clone(), path.clone());
        async move {
            api.client
                .call(Method::PUT, &path, Some(&token), Some(body))
                .await
        }
    };
    let before = api.get(&path, &a).await; // warms the cache
    assert_eq!(before.data()["amount"], "3.00");
    let r = put(
        &a,
        json!({"amount": "4.25", "recipientId": c.id, "description": "new"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.data()["amount"], "4.25");
    assert_eq!(r.data()["recipient"]["id"], c.id.as_str());
    let last = r.data()["transactions"][1].clone();
    assert_eq!(last["statusMessage"], "Payment details updated");
    assert_eq!(
        last["metadata"]["changedFields"],
        json!(["amount", "description", "recipientId"])
    );
    let (_, ev) = api.outbox().await.into_iter().last().unwrap();
    assert_eq!(ev["type"], "payments.payment.updated");
    assert_eq!(ev["data"]["previous"]["amount"], "3.00");
    // Fresh after the write (the cached copy had 3.00).
    assert_eq!(api.get(&path, &a).await.data()["amount"], "4.25");
    // No change: no transaction, no event.
    let events = api.outbox().await.len();
    let r = put(&a, json!({"amount": 4.25})).await;
    assert_eq!(r.data()["transactions"].as_array().unwrap().len(), 2);
    assert_eq!(api.outbox().await.len(), events);
    assert_eq!(put(&a, json!({})).await.fields(), ["body"]);
    assert_eq!(
        put(&c, json!({"amount": "5"})).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        put(&b, json!({"amount": "5"})).await.code(),
        "PAYMENT_NOT_FOUND"
    );
    assert_eq!(
        put(&a, json!({"recipientId": a.id})).await.code(),
        "INVALID_RECIPIENT"
    );
    let later = (chrono::Utc::now() + chrono::Duration::days(2)).to_rfc3339();
    let r = put(&admin, json!({"type": "scheduled", "scheduledFor": later})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.data()["transactions"][2]["actorType"], "admin");
    let r = put(&a, json!({"type": "instant"})).await;
    assert_eq!(r.data()["scheduledFor"], Value::Null);
    api.status(&admin, &id, "processing").await;
    let r = put(&a, json!({"amount": "6"})).await;
    assert_refused(&r, StatusCode::CONFLICT, "INVALID_STATUS");
}

#[tokio::test]
async fn idempotency_replay_reuse_and_concurrency() {
    let api = Api::new(no_sim).await;
    let [a, b, c] = api.users(["CUSTOMER", "VENDOR", "CUSTOMER"]).await;
    let body =
        json!({"type": "instant", "amount": "12.50", "description": "once", "recipientId": b.id});
    let first = api.create_with_key(&a, "key-1", body.clone()).await;
    assert_eq!(first.status, StatusCode::CREATED);
    assert!(first.headers.get("idempotent-replayed").is_none());
    // Same request with keys reordered: the stored answer, byte for byte.
    let reordered =
        json!({"recipientId": b.id, "description": "once", "amount": "12.50", "type": "instant"});
    let again = api.create_with_key(&a, "key-1", reordered).await;
    assert_eq!(again.status, StatusCode::CREATED);
    assert_eq!(again.headers["idempotent-replayed"], "true");
    assert_eq!(again.text, first.text);
    let r = api
        .create_with_key(
            &a,
            "key-1",
            json!({"type": "instant", "amount": 12.5, "description": "once", "recipientId": b.id}),
        )
        .await;
    assert_refused(
        &r,
        StatusCode::UNPROCESSABLE_ENTITY,
        "IDEMPOTENCY_KEY_REUSED",
    );
    // Another user's same key does not collide.
    assert_eq!(
        api.create_with_key(&c, "key-1", body.clone()).await.status,
        StatusCode::CREATED
    );
    let r = api.create_with_key(&a, "bad key", body.clone()).await;
    assert_eq!(r.fields(), ["idempotency-key"]);
    // Business errors are stored too.
    let unknown = json!({"type": "instant", "amount": "1", "description": "x", "recipientId": Uuid::new_v4()});
    let r1 = api.create_with_key(&a, "key-404", unknown.clone()).await;
    let r2 = api.create_with_key(&a, "key-404", unknown).await;
    assert_eq!(
        (r1.status, r2.status),
        (StatusCode::NOT_FOUND, StatusCode::NOT_FOUND)
    );
    assert_eq!(r2.headers["idempotent-replayed"], "true");
    assert_eq!(r1.text, r2.text);
    // A record still in progress answers 409; one abandoned for over 60 s is taken over.
    let body2 =
        json!({"type": "instant", "amount": "2", "description": "stuck", "recipientId": b.id});
    assert_eq!(
        api.create_with_key(&a, "stuck", body2.clone()).await.status,
        StatusCode::CREATED
    );
    let set = |age: &str| {
        format!(
            "UPDATE idempotency_keys SET state = 'in_progress', locked_at = now() - interval '{age}' WHERE key = 'stuck'"
        )
    };
    sqlx::query(sqlx::AssertSqlSafe(set("5 seconds")))
        .execute(&api.app.db.pool)
        .await
        .unwrap();
    let r = api.create_with_key(&a, "stuck", body2.clone()).await;
    assert_refused(&r, StatusCode::CONFLICT, "IDEMPOTENCY_IN_PROGRESS");
    sqlx::query(sqlx::AssertSqlSafe(set("61 seconds")))
        .execute(&api.app.db.pool)
        .await
        .unwrap();
    // The taken-over claim's generation already has its payment (the first request did
    // commit): the answer is that payment again, never a second one (unique index).
    let r = api.create_with_key(&a, "stuck", body2.clone()).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.headers["idempotent-replayed"], "true");
    assert_eq!(
        api.count("SELECT count(*) FROM payments WHERE description = 'stuck'")
            .await,
        1
    );
    // 50 concurrent requests with one key: exactly one payment.
    let body =
        json!({"type": "instant", "amount": "7", "description": "race", "recipientId": b.id});
    let results = futures::future::join_all(
        (0..50).map(|_| api.create_with_key(&a, "race-key", body.clone())),
    )
    .await;
    let created: Vec<&Res> = results
        .iter()
        .filter(|r| r.status == StatusCode::CREATED)
        .collect();
    assert!(!created.is_empty());
    assert!(results.iter().all(|r| r.status == StatusCode::CREATED
        || (r.code() == "IDEMPOTENCY_IN_PROGRESS" && r.headers["retry-after"] == "1")));
    let ids: std::collections::HashSet<String> = created.iter().map(|r| id_of(r.data())).collect();
    assert_eq!(ids.len(), 1);
    assert_eq!(
        api.count("SELECT count(*) FROM payments WHERE description = 'race'")
            .await,
        1
    );
    assert_eq!(
        api.count("SELECT count(*) FROM outbox WHERE routing_key = 'payments.payment.created'")
            .await,
        4
    );
}

#[tokio::test]
async fn fifty_concurrent_creates_give_fifty_payments_and_events() {
    let api = Api::new(no_sim).await;
    let [a, b] = api.users(["CUSTOMER", "VENDOR"]).await;
    let body =
        json!({"type": "instant", "amount": "1.01", "description": "bulk", "recipientId": b.id});
    let keys: Vec<String> = (0..50).map(|i| format!("bulk-{i}")).collect();
    let results = futures::future::join_all(
        keys.iter()
            .map(|k| api.create_with_key(&a, k, body.clone())),
    )
    .await;
    assert!(results.iter().all(|r| r.status == StatusCode::CREATED));
    let ids: std::collections::HashSet<String> = results.iter().map(|r| id_of(r.data())).collect();
    assert_eq!(ids.len(), 50);
    assert_eq!(api.count("SELECT count(*) FROM payments").await, 50);
    let events: Vec<String> = api
        .outbox()
        .await
        .into_iter()
        .filter(|(k, _)| k == "payments.payment.created")
        .map(|(_, e)| e["data"]["paymentId"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(events.len(), 50);
    assert_eq!(
        events
            .iter()
            .collect::<std::collections::HashSet<_>>()
            .len(),
        50
    );
    let list = api.get("/api/payments?limit=100", &b).await;
    assert_eq!(list.data()["pagination"]["total"], 50);
}

#[tokio::test]
async fn webhook_signature_replay_and_outcomes() {
    let api = Api::new(no_sim).await;
    let [a, b, admin] = api.users(["CUSTOMER", "VENDOR", "ADMIN"]).await;
    let id = id_of(&api.pay(&a, &b, "9").await);
    let path = format!("/api/payments/{id}");
    assert_eq!(api.get(&path, &a).await.data()["status"], "pending"); // cached
    let event = json!({"id": "evt_1", "type": "payment.succeeded",
        "data": {"paymentId": id, "pspTransactionId": "ch_1"}});
    let bytes = serde_json::to_vec(&event).unwrap();
    let now = chrono::Utc::now().timestamp();
    for sig in [
        None,
        Some("garbage".to_owned()),
        Some(sign("wrong", now, &bytes)),
        Some(sign("whsec_test", now - 301, &bytes)),
        Some(sign("whsec_test", now + 400, &bytes)),
    ] {
        let r = api.webhook(&event, sig).await;
        assert_refused(&r, StatusCode::UNAUTHORIZED, "INVALID_SIGNATURE");
    }
    assert_eq!(api.events_for(&id).await.len(), 1);
    let r = api.signed_webhook(&event).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.data()["applied"], true);
    assert_eq!(r.data()["duplicate"], false);
    assert_eq!(r.data()["status"], "completed");
    assert_eq!(
        api.events_for(&id).await,
        [
            "payments.payment.created",
            "payments.payment.processing",
            "payments.payment.completed"
        ]
    );
    let detail = api.get(&path, &a).await;
    assert_eq!(detail.data()["status"], "completed");
    assert_eq!(detail.data()["pspTransactionId"], "ch_1");
    assert_eq!(detail.data()["pspStatus"], "succeeded");
    let txs = detail.data()["transactions"].as_array().unwrap();
    assert_eq!(txs.len(), 3);
    assert_eq!(txs[2]["actorType"], "psp");
    // Replay: same answer, no second effect.
    let r = api.signed_webhook(&event).await;
    assert_eq!(r.data()["duplicate"], true);
    assert_eq!(r.data()["applied"], true);
    assert_eq!(api.events_for(&id).await.len(), 3);
    assert_eq!(
        api.count("SELECT count(*) FROM payment_transactions").await,
        3
    );
    // Unknown payment, already in status, invalid transition.
    let r = api
        .signed_webhook(&json!({"id": "evt_2", "type": "payment.failed", "data": {"paymentId": Uuid::new_v4(), "pspTransactionId": "ch_2"}}))
        .await;
    assert_eq!(
        (r.data()["applied"].as_bool(), r.data()["reason"].as_str()),
        (Some(false), Some("payment_not_found"))
    );
    let r = api
        .signed_webhook(&json!({"id": "evt_3", "type": "payment.succeeded", "data": {"paymentId": id, "pspTransactionId": "ch_1"}}))
        .await;
    assert_eq!(r.data()["reason"], "already_in_status");
    let cancelled = payment_in(&api, &a, &b, &admin, "cancelled").await;
    let r = api
        .signed_webhook(&json!({"id": "evt_4", "type": "payment.succeeded", "data": {"paymentId": cancelled, "pspTransactionId": "ch_4"}}))
        .await;
    assert_eq!(
        (r.data()["reason"].as_str(), r.data()["status"].as_str()),
        (Some("invalid_transition"), Some("cancelled"))
    );
    let pending = id_of(&api.pay(&a, &b, "2").await);
    let r = api
        .signed_webhook(&json!({"id": "evt_5", "type": "payment.canceled", "data": {"paymentId": pending, "pspTransactionId": "ch_5"}}))
        .await;
    assert_eq!(r.data()["status"], "cancelled");
    assert_eq!(
        api.get(&format!("/api/payments/{pending}"), &a)
            .await
            .data()["failureReason"],
        "Cancelled by payment processor"
    );
    // A PSP reference another payment already holds: recorded, not applied, never a 500.
    let other = id_of(&api.pay(&a, &b, "3").await);
    let r = api
        .signed_webhook(&json!({"id": "evt_7", "type": "payment.processing", "data": {"paymentId": other, "pspTransactionId": "ch_1"}}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(
        (r.data()["applied"].as_bool(), r.data()["reason"].as_str()),
        (Some(false), Some("psp_transaction_conflict"))
    );
    assert_eq!(
        api.get(&format!("/api/payments/{other}"), &a).await.data()["status"],
        "pending"
    );
    let r = api
        .signed_webhook(&json!({"id": "evt_6", "type": "payment.exploded", "data": {}}))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let mut f = r.fields();
    f.sort();
    assert_eq!(f, ["data.paymentId", "data.pspTransactionId", "type"]);
    assert_eq!(
        api.count("SELECT count(*) FROM psp_webhook_events").await,
        6
    );
}

async fn wait_for_status(api: &Api, u: &User, id: &str, status: &str, secs: u64) -> Value {
    wait_for_detail(api, u, id, secs, |d| d["status"] == status).await
}

/// The payment's detail once `check` holds for it, read every 100 ms for up to `secs`.
async fn wait_for_detail(
    api: &Api,
    u: &User,
    id: &str,
    secs: u64,
    check: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        let r = api.get(&format!("/api/payments/{id}"), u).await;
        if check(r.data()) {
            return r.data().clone();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "after {secs}s still {}",
            r.data()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn simulator_completes_fails_and_schedules() {
    let api = Api::new(fast_sim).await;
    let [a, b] = api.users(["CUSTOMER", "VENDOR"]).await;
    let ok = id_of(&api.pay(&a, &b, "10").await);
    let r = api
        .create(&a, json!({"type": "instant", "amount": "5", "description": "please [FAIL] this", "recipientId": b.id}))
        .await;
    let bad = id_of(r.data());
    let at = chrono::Utc::now() + chrono::Duration::milliseconds(2500);
    let r = api
        .create(
            &a,
            json!({"type": "scheduled", "amount": "5", "description": "later", "recipientId": b.id,
                           "scheduledFor": timestamp(at)}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let later = id_of(r.data());
    // The scheduled one waits for its time (read right away: the waits below can outlast it).
    assert_eq!(
        api.get(&format!("/api/payments/{later}"), &a).await.data()["status"],
        "pending"
    );
    assert!(chrono::Utc::now() < at);
    let done = wait_for_status(&api, &a, &ok, "completed", 10).await;
    assert!(
        done["pspTransactionId"]
            .as_str()
            .unwrap()
            .starts_with("sim_")
    );
    assert_eq!(done["pspTransactionId"].as_str().unwrap().len(), 36);
    assert_eq!(done["pspStatus"], "succeeded");
    let msgs: Vec<&str> = done["transactions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["statusMessage"].as_str().unwrap())
        .collect();
    assert_eq!(
        msgs,
        [
            "Payment created",
            "Submitted to payment processor",
            "Payment completed"
        ]
    );
    assert_eq!(done["transactions"][1]["actorType"], "system");
    assert_eq!(
        api.events_for(&ok).await,
        [
            "payments.payment.created",
            "payments.payment.processing",
            "payments.payment.completed"
        ]
    );
    let failed = wait_for_status(&api, &a, &bad, "failed", 10).await;
    assert_eq!(failed["pspStatus"], "declined");
    assert_eq!(
        failed["failureReason"],
        "Declined by payment processor (simulated)"
    );
    assert_eq!(
        api.events_for(&bad).await.last().unwrap(),
        "payments.payment.failed"
    );
    let done = wait_for_status(&api, &a, &later, "completed", 10).await;
    let submitted = chrono::DateTime::parse_from_rfc3339(
        done["transactions"][1]["createdAt"].as_str().unwrap(),
    )
    .unwrap();
    assert!(submitted >= at);
}

#[tokio::test]
async fn simulator_work_survives_a_restart() {
    let api = Api::new(no_sim).await;
    let [a, b] = api.users(["CUSTOMER", "VENDOR"]).await;
    let id = id_of(&api.pay(&a, &b, "10").await);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        api.get(&format!("/api/payments/{id}"), &a).await.data()["status"],
        "pending"
    );
    let Api { app, http, .. } = api;
    let app = app
        .restart(|c| {
            c.psp_mode = PspMode::Simulator;
            fast_sim(c);
        })
        .await
        .unwrap();
    let api = Api {
        client: ServiceClient::new(&app.base_url),
        app,
        http,
    };
    wait_for_status(&api, &a, &id, "completed", 10).await;
}

#[tokio::test]
async fn reads_are_fresh_after_every_write_and_cache_is_used() {
    let api = Api::new(no_sim).await;
    let [a, b, admin] = api.users(["CUSTOMER", "VENDOR", "ADMIN"]).await;
    let id = id_of(&api.pay(&a, &b, "10").await);
    let path = format!("/api/payments/{id}");
    let report = |u: &User| {
        let (api, u) = (&api, u.clone());
        async move {
            api.get(
                "/api/payments/reports?startDate=2020-01-01&endDate=2100-01-01",
                &u,
            )
            .await
        }
    };
    // Warm every cache, twice (second read is a hit).
    for _ in 0..2 {
        assert_eq!(api.get(&path, &a).await.data()["status"], "pending");
        assert_eq!(
            api.get("/api/payments", &b).await.data()["payments"][0]["status"],
            "pending"
        );
        assert_eq!(report(&b).await.data()["byStatus"]["pending"], 1);
    }
    let key_count: usize = {
        let mut redis = api.app.state.authn.redis.clone();
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{}:*", api.app.state.config.cache_prefix))
            .query_async(&mut redis)
            .await
            .unwrap();
        keys.len()
    };
    assert!(key_count >= 3, "cache entries written");
    let metrics = api
        .raw(Method::GET, api.app.url("/metrics"), None, None, &[])
        .await
        .text;
    assert!(
        metrics.contains("cache_requests_total{cache=\"payment_detail\",result=\"hit\"}"),
        "{metrics}"
    );
    // Status change → every view fresh.
    api.status(&admin, &id, "processing").await;
    assert_eq!(api.get(&path, &a).await.data()["status"], "processing");
    assert_eq!(
        api.get("/api/payments", &b).await.data()["payments"][0]["status"],
        "processing"
    );
    assert_eq!(report(&b).await.data()["byStatus"]["processing"], 1);
    // Webhook → fresh.
    api.signed_webhook(&json!({"id": "evt_f", "type": "payment.succeeded", "data": {"paymentId": id, "pspTransactionId": "ch_f"}}))
        .await;
    assert_eq!(api.get(&path, &a).await.data()["status"], "completed");
    assert_eq!(
        api.get("/api/payments", &a).await.data()["payments"][0]["status"],
        "completed"
    );
    let rep = report(&b).await;
    assert_eq!(rep.data()["byStatus"]["completed"], 1);
    assert_eq!(rep.data()["totalAmount"], json!(10));
    assert_eq!(
        rep.data()["byCurrency"]["USD"],
        json!({"count": 1, "amount": "10.00"})
    );
    // Create → fresh list and report.
    api.pay(&a, &b, "2.5").await;
    assert_eq!(
        api.get("/api/payments", &b).await.data()["pagination"]["total"],
        2
    );
    let rep = report(&b).await;
    assert_eq!(rep.data()["totalPayments"], 2);
    assert_eq!(rep.data()["totalAmount"], json!(12.5));
    assert_eq!(
        rep.data()["byType"],
        json!({"instant": 2, "scheduled": 0, "recurring": 0})
    );
    // Reports: roles.
    assert_eq!(report(&a).await.status, StatusCode::FORBIDDEN);
    assert_eq!(report(&admin).await.data()["totalPayments"], 2);
}

#[tokio::test]
async fn user_events_feed_the_directory_and_deletion_cancels() {
    use payplane_bus::consumer::Outcome;
    let api = Api::new(no_sim).await;
    let [a, b] = api.users(["CUSTOMER", "VENDOR"]).await;
    let id = id_of(&api.pay(&a, &b, "10").await);
    let path = format!("/api/payments/{id}");
    api.get(&path, &a).await;
    let handler = payplane_payments::events::UserEvents::new(api.app.state.cache.clone());
    let future = timestamp(chrono::Utc::now() + chrono::Duration::seconds(5));
    let snapshot = |name: &str, at: &str| {
        json!({
        "userId": b.id, "email": b.email, "name": name, "role": "VENDOR", "isActive": true,
        "emailVerified": false, "tokenVersion": 2, "createdAt": at, "updatedAt": at,
        "changedFields": ["name"], "previous": {"name": "old"}, "reason": null, "origin": "admin",
        "actorId": null, "actorType": "admin"})
    };
    let envelope = |key: &str, data: Value| {
        json!({"id": Uuid::new_v4(), "type": key, "version": "1",
        "timestamp": "2026-03-01T10:00:00.000Z", "source": "auth", "correlationId": "c", "data": data})
    };
    let msg = envelope("auth.user.updated", snapshot("Renamed Vendor", &future));
    let body = serde_json::to_vec(&msg).unwrap();
    let out = deliver(&api, &handler, &body).await;
    assert!(matches!(out, Outcome::Processed), "{out:?}");
    let again = deliver(&api, &handler, &body).await;
    assert!(matches!(again, Outcome::Duplicate), "{again:?}");
    // Older data is ignored.
    let old = serde_json::to_vec(&envelope(
        "auth.user.updated",
        snapshot("Stale", "2020-01-01T00:00:00.000Z"),
    ))
    .unwrap();
    deliver(&api, &handler, &old).await;
    let stored: String = sqlx::query_scalar("SELECT name FROM users WHERE id = $1")
        .bind(b.id.parse::<Uuid>().unwrap())
        .fetch_one(&api.app.db.pool)
        .await
        .unwrap();
    assert_eq!(stored, "Renamed Vendor");
    // The cached detail is invalidated by a task the handler spawns after its commit.
    wait_for_detail(&api, &a, &id, 5, |d| {
        d["recipient"]["name"] == "Renamed Vendor"
    })
    .await;
    // Deactivated (newer snapshot): no longer payable.
    let later = timestamp(chrono::Utc::now() + chrono::Duration::seconds(6));
    let mut inactive = snapshot("Renamed Vendor", &later);
    inactive["isActive"] = json!(false);
    let body = serde_json::to_vec(&envelope("auth.user.updated", inactive)).unwrap();
    assert!(matches!(
        deliver(&api, &handler, &body).await,
        Outcome::Processed
    ));
    let r = api.pay_one(&a, &b.id).await;
    assert_refused(&r, StatusCode::BAD_REQUEST, "INVALID_RECIPIENT");
    let ignored = serde_json::to_vec(&envelope("auth.user.login", json!({}))).unwrap();
    assert!(matches!(
        deliver(&api, &handler, &ignored).await,
        Outcome::Ignored
    ));
    // Deletion: the row stays (names in history), pending payments are cancelled.
    let del = envelope(
        "auth.user.deleted",
        json!({"userId": b.id, "email": b.email, "name": "Renamed Vendor",
        "role": "VENDOR", "origin": "admin", "actorId": null, "actorType": "admin", "deletedAt": future}),
    );
    let del_id = del["id"].as_str().unwrap().to_owned();
    let body = serde_json::to_vec(&del).unwrap();
    assert!(matches!(
        deliver(&api, &handler, &body).await,
        Outcome::Processed
    ));
    let p = wait_for_status(&api, &a, &id, "cancelled", 5).await;
    assert_eq!(p["failureReason"], "Recipient account deleted");
    assert_eq!(p["recipient"]["name"], "Renamed Vendor");
    let (_, ev) = api.outbox().await.into_iter().last().unwrap();
    assert_eq!(ev["type"], "payments.payment.cancelled");
    assert_eq!(ev["causationId"], del_id.as_str());
    assert_eq!(ev["data"]["actorType"], "system");
    // A deleted user can no longer be paid.
    let r = api.pay_one(&a, &b.id).await;
    assert_eq!(r.code(), "RECIPIENT_NOT_FOUND");
}

#[tokio::test]
async fn internal_endpoints_and_seed() {
    let api = Api::new(no_sim).await;
    let [a, b] = api.users(["CUSTOMER", "VENDOR"]).await;
    let id = id_of(&api.pay(&a, &b, "10").await);
    let url = api.app.url(&format!("/internal/payments/{id}/parties"));
    let r = api.raw(Method::GET, url.clone(), None, None, &[]).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let creds = [
        ("x-service-name", "gateway"),
        ("x-service-token", "dev-service-token"),
    ];
    let r = api.raw(Method::GET, url, None, None, &creds).await;
    assert_eq!(
        r.data(),
        &json!({"id": id, "senderId": a.id, "recipientId": b.id, "status": "pending"})
    );
    let r = api
        .raw(
            Method::GET,
            api.app.url("/internal/payments/stats"),
            None,
            None,
            &[
                ("x-service-name", "admin"),
                ("x-service-token", "dev-service-token"),
            ],
        )
        .await;
    assert_eq!(r.data()["total"], 1);
    assert_eq!(r.data()["last24h"]["created"], 1);
    let users: Vec<payplane_payments::ops::SeedUser<'_>> =
        payplane_payments::ops::DEMO_USERS.to_vec();
    let pool = &api.app.db.pool;
    assert_eq!(
        payplane_payments::ops::seed_demo(pool, &users)
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        payplane_payments::ops::seed_demo(pool, &users)
            .await
            .unwrap(),
        0
    );
    assert_eq!(api.count("SELECT count(*) FROM payments").await, 3);
    assert_eq!(api.count("SELECT count(*) FROM outbox").await, 1);
    assert_eq!(
        api.count("SELECT count(*) FROM payment_transactions WHERE payment_id = '5eed0000-0000-4000-8000-000000000101'").await,
        3
    );
}

/// The review's most severe finding: `metadata` with a number PostgreSQL stores but serde cannot
/// read back (or a NUL, which `jsonb` refuses) must be a 400 naming `metadata`; and a row stored
/// before that check (written here with SQL) must stop no list, read or simulator work.
#[tokio::test]
async fn unstorable_metadata_is_refused_and_an_old_bad_row_stops_nothing() {
    let api = Api::new(fast_sim).await;
    let [a, b, admin] = api.users(["CUSTOMER", "VENDOR", "ADMIN"]).await;
    let bad_values = [
        json!({"x": f64::MAX}),
        json!({"k": "a\u{0}b"}),
        json!({"k\u{0}": 1}),
        json!({"n": [1, {"deep": 1e40}]}),
    ];
    for metadata in &bad_values {
        let r = api
            .create(
                &a,
                json!({"type": "instant", "amount": "5", "description": "x",
                               "recipientId": b.id, "metadata": metadata}),
            )
            .await;
        assert_eq!(
            (r.status, r.code()),
            (StatusCode::BAD_REQUEST, "VALIDATION_ERROR"),
            "{metadata}: {}",
            r.body
        );
        assert_eq!(r.fields(), ["metadata"]);
    }
    let at = chrono::Utc::now() + chrono::Duration::hours(1);
    let r = api
        .create(
            &a,
            json!({"type": "scheduled", "amount": "5", "description": "later", "recipientId": b.id,
                           "scheduledFor": timestamp(at),
                           "metadata": {"order": 7, "ratio": 0.125}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let later = id_of(r.data());
    for metadata in &bad_values {
        let r = api
            .client
            .call(
                Method::PUT,
                &format!("/api/payments/{later}"),
                Some(&a.token),
                Some(json!({ "metadata": metadata })),
            )
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{metadata}: {}", r.body);
        assert_eq!(r.fields(), ["metadata"]);
    }

    // A row from before the check, never read yet (so not in the cache).
    sqlx::query(
        "UPDATE payments SET metadata = '{\"x\": 1.7976931348623157e308}' WHERE id = $1::uuid",
    )
    .bind(&later)
    .execute(&api.app.db.pool)
    .await
    .unwrap();
    for u in [&a, &b, &admin] {
        let r = api.get("/api/payments", u).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        let row = r.data()["payments"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["id"] == later.as_str())
            .cloned()
            .unwrap();
        assert_eq!(row["metadata"], Value::Null);
    }
    let r = api.get(&format!("/api/payments/{later}"), &a).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    // Payments keep being processed.
    let next = id_of(&api.pay(&a, &b, "3").await);
    wait_for_status(&api, &a, &next, "completed", 15).await;

    // The repair migration keeps the stored value as text under one key.
    sqlx::raw_sql(include_str!(
        "../migrations/0003_repair_unreadable_metadata.sql"
    ))
    .execute(&api.app.db.pool)
    .await
    .unwrap();
    let kept: Value = sqlx::query_scalar("SELECT metadata FROM payments WHERE id = $1::uuid")
        .bind(&later)
        .fetch_one(&api.app.db.pool)
        .await
        .unwrap();
    assert!(
        kept["unreadableMetadata"]
            .as_str()
            .unwrap()
            .starts_with("{\"x\": 17976931348623157"),
        "{kept}"
    );
}

/// api.md §1.6: money never in exponent form, though serde reads `1e3` as 1000.
#[tokio::test]
async fn money_in_exponent_form_is_refused() {
    let api = Api::new(no_sim).await;
    let [a, b] = api.users(["CUSTOMER", "VENDOR"]).await;
    let send = |amount: &'static str| {
        let body = format!(
            r#"{{"type":"instant","amount":{amount},"description":"x","recipientId":"{}"}}"#,
            b.id
        );
        api.http
            .post(api.app.url("/api/payments"))
            .bearer_auth(&a.token)
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    for amount in ["1e3", "1E3", "1.5e2", "10e-1"] {
        let r = send(amount).await.unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{amount}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"]["details"][0]["field"], "amount", "{amount}");
    }
    for (amount, stored) in [("1000", "1000.00"), ("12.50", "12.50"), ("\"7.5\"", "7.50")] {
        let r = send(amount).await.unwrap();
        assert_eq!(r.status(), StatusCode::CREATED, "{amount}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["data"]["amount"], stored, "{amount}");
    }
}

/// A database that cannot be reached is 503 `SERVICE_UNAVAILABLE` with `Retry-After`, within
/// about the pool's acquire timeout — not a 500 after a long wait (the pool is closed here, as
/// when PostgreSQL is gone; a stopped server is the fault tests' subject).
#[tokio::test]
async fn unreachable_database_is_503_with_retry_after() {
    let api = Api::new(no_sim).await;
    let [a, b] = api.users(["CUSTOMER", "VENDOR"]).await;
    api.app.state.db.close().await;
    let started = std::time::Instant::now();
    let r = api
        .get(&format!("/api/payments/{}", Uuid::new_v4()), &a)
        .await;
    assert_refused(&r, StatusCode::SERVICE_UNAVAILABLE, "SERVICE_UNAVAILABLE");
    assert_eq!(r.headers["retry-after"], "2");
    assert!(started.elapsed() < Duration::from_secs(3));
    let r = api
        .create(
            &a,
            json!({"type": "instant", "amount": "5", "description": "x", "recipientId": b.id}),
        )
        .await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.body);
}

/// A claim stuck for 60 s is taken over; the original request can then no longer finish (its
/// payment would roll back), and the unique index refuses a second payment for one claim.
#[tokio::test]
async fn a_taken_over_idempotency_claim_cannot_finish_and_one_key_is_one_payment() {
    use payplane_payments::store::idempotency::{self, Claim};
    let api = Api::new(no_sim).await;
    let [a, b] = api.users(["CUSTOMER", "VENDOR"]).await;
    let pool = &api.app.db.pool;
    let user: Uuid = a.id.parse().unwrap();
    let claim = || idempotency::claim(pool, user, "k-1", "POST", "/api/payments", b"fp");
    let Claim::Owned(first) = claim().await.unwrap() else {
        panic!("first use must be owned")
    };
    assert_eq!(claim().await.unwrap(), Claim::InProgress);
    sqlx::query("UPDATE idempotency_keys SET locked_at = now() - interval '61 seconds'")
        .execute(pool)
        .await
        .unwrap();
    let Claim::Owned(second) = claim().await.unwrap() else {
        panic!("an abandoned claim is taken over")
    };
    assert_ne!(first.token, second.token);
    assert_eq!(first.since, second.since, "same generation of the key");
    let mut conn = pool.acquire().await.unwrap();
    assert!(
        !idempotency::finish(&mut conn, user, "k-1", &first, 201, b"{}", None)
            .await
            .unwrap(),
        "the stuck request lost its claim"
    );
    assert!(
        idempotency::finish(&mut conn, user, "k-1", &second, 201, b"{}", None)
            .await
            .unwrap()
    );

    // The backstop: one payment per sender, key and generation.
    let p1 = id_of(&api.pay(&a, &b, "1").await);
    let p2 = id_of(&api.pay(&a, &b, "2").await);
    let mark = |id: String| {
        sqlx::query(
            "UPDATE payments SET idempotency_key = 'k-1', idempotency_since = $2 WHERE id = $1::uuid",
        )
        .bind(id)
        .bind(second.since)
        .execute(pool)
    };
    mark(p1).await.unwrap();
    let err = mark(p2).await.unwrap_err();
    assert_eq!(
        err.as_database_error().and_then(|d| d.constraint()),
        Some("payments_idempotency_once")
    );
}
