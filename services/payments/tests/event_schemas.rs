//! Every event payments writes into its outbox matches the committed JSON Schema of its routing
//! key (events.md §7.6). The real service (PostgreSQL, Redis, an in-process auth) is driven
//! through each path that produces a `payments.payment.*` event — the API (user and admin), the
//! PSP webhook, the simulator and the handling of a deleted user — and then every outbox row is
//! validated.

#![expect(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

#[path = "support/harness.rs"]
mod harness;

use std::time::Duration;

use harness::{Api, User, deliver, fast_sim, timestamp};
use payplane_bus::consumer::Outcome;
use payplane_events::testing::validate_outbox;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

/// Calls that must succeed, as every step of the scenario below must.
impl Api {
    /// A payments API call that must succeed; returns `data`.
    async fn ok(&self, method: Method, path: &str, u: &User, body: Value) -> Value {
        let r = self
            .raw(method, self.app.url(path), Some(&u.token), Some(body), &[])
            .await;
        assert!(r.status.is_success(), "{path}: {} {}", r.status, r.body);
        r.data().clone()
    }

    /// A payment the simulator leaves alone: scheduled two days ahead.
    async fn scheduled(&self, from: &User, to: &User) -> String {
        let at = timestamp(chrono::Utc::now() + chrono::Duration::days(2));
        let p = self
            .ok(
                Method::POST,
                "/api/payments",
                from,
                json!({"type": "scheduled", "amount": "25", "description": "later",
                       "recipientId": to.id, "scheduledFor": at}),
            )
            .await;
        p["id"].as_str().unwrap().to_owned()
    }

    async fn status(&self, u: &User, id: &str, body: Value) {
        self.ok(
            Method::PATCH,
            &format!("/api/payments/{id}/status"),
            u,
            body,
        )
        .await;
    }

    /// A signed PSP webhook that must be applied.
    async fn applied_webhook(&self, event: &Value) {
        let r = self.signed_webhook(event).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        assert_eq!(r.body["data"]["applied"], true, "{}", r.body);
    }
}

#[tokio::test]
#[expect(
    clippy::too_many_lines,
    reason = "one scenario through every path that writes an event, read top to bottom"
)]
async fn every_payments_event_in_the_outbox_matches_its_schema() {
    // The simulator on, quick, so its own events are part of what is checked.
    let api = Api::new(fast_sim).await;
    let [a, b, c, admin, leaving] = api
        .users(["CUSTOMER", "VENDOR", "CUSTOMER", "ADMIN", "CUSTOMER"])
        .await;

    // The simulator: created → processing → completed, and one declined (→ failed), actor
    // system with the simulated PSP reference.
    let settled = api
        .ok(
            Method::POST,
            "/api/payments",
            &a,
            json!({"type": "instant", "amount": "10", "description": "sim ok", "recipientId": b.id}),
        )
        .await;
    let declined = api
        .ok(
            Method::POST,
            "/api/payments",
            &a,
            json!({"type": "instant", "amount": "0.5", "currency": "usd",
                   "description": "please [FAIL] this", "recipientId": b.id}),
        )
        .await;

    // updated by the sender (amount, currency, description, recipient, metadata, schedule) and
    // by an admin (type).
    let edited = api.scheduled(&a, &b).await;
    let later = timestamp(chrono::Utc::now() + chrono::Duration::days(3));
    api.ok(
        Method::PUT,
        &format!("/api/payments/{edited}"),
        &a,
        json!({"amount": "30.10", "currency": "GBP", "description": "changed", "recipientId": c.id,
               "metadata": {"invoice": "A-1"}, "scheduledFor": later}),
    )
    .await;
    api.ok(
        Method::PUT,
        &format!("/api/payments/{edited}"),
        &admin,
        json!({"type": "recurring"}),
    )
    .await;

    // Status changes by an admin (processing, completed, failed) and a cancellation with a
    // reason by the sender.
    let manual = api.scheduled(&a, &b).await;
    api.status(&admin, &manual, json!({"status": "processing"}))
        .await;
    api.status(&admin, &manual, json!({"status": "completed"}))
        .await;
    let failed = api.scheduled(&a, &b).await;
    api.status(&admin, &failed, json!({"status": "failed"}))
        .await;
    let cancelled = api.scheduled(&a, &b).await;
    api.status(
        &a,
        &cancelled,
        json!({"status": "cancelled", "reason": "changed my mind"}),
    )
    .await;

    // The PSP webhook (actor psp): succeeded from pending (processing then completed), failed,
    // canceled.
    for (n, kind) in ["payment.succeeded", "payment.failed", "payment.canceled"]
        .into_iter()
        .enumerate()
    {
        let id = api.scheduled(&a, &b).await;
        api.applied_webhook(&json!({"id": format!("evt_{n}"), "type": kind,
                            "data": {"paymentId": id, "pspTransactionId": format!("ch_{n}")}}))
            .await;
    }

    // A deleted user: payments' handler of auth.user.deleted cancels their pending payments
    // (actor system, caused by the event).
    let orphan = api.scheduled(&leaving, &a).await;
    let deleted = json!({
        "id": Uuid::new_v4(), "type": "auth.user.deleted", "version": "1",
        "timestamp": timestamp(chrono::Utc::now()), "source": "auth", "correlationId": "schema-test",
        "data": {"userId": leaving.id, "email": leaving.email, "name": format!("CUSTOMER {}", leaving.email), "role": "CUSTOMER",
                 "origin": "admin", "actorId": admin.id, "actorType": "admin",
                 "deletedAt": timestamp(chrono::Utc::now() + chrono::Duration::seconds(5))},
    });
    let body = serde_json::to_vec(&deleted).unwrap();
    let handler = payplane_payments::events::UserEvents::new(api.app.state.cache.clone());
    let outcome = deliver(&api, &handler, &body).await;
    assert!(matches!(outcome, Outcome::Processed), "{outcome:?}");

    // The simulator commits from its own task: wait for both of its payments to settle.
    let ids = [&settled["id"], &declined["id"]];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    let rows = loop {
        let rows = api.outbox().await;
        let done = ids.iter().all(|id| {
            rows.iter().any(|(k, e)| {
                e["data"]["paymentId"] == **id
                    && (k == "payments.payment.completed" || k == "payments.payment.failed")
            })
        });
        if done {
            break rows;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the simulator did not settle {ids:?} within 15 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };

    let seen = validate_outbox("payments", &rows).unwrap_or_else(|e| panic!("{e}"));
    // The variants above really happened, so their shapes were validated too.
    let of = |id: &str| -> Vec<(String, String)> {
        rows.iter()
            .filter(|(_, e)| e["data"]["paymentId"] == id)
            .map(|(k, e)| {
                (
                    k.clone(),
                    e["data"]["actorType"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    };
    let pairs = |list: &[(&str, &str)]| -> Vec<(String, String)> {
        list.iter()
            .map(|(k, t)| (format!("payments.payment.{k}"), (*t).to_owned()))
            .collect()
    };
    assert_eq!(
        of(settled["id"].as_str().unwrap()),
        pairs(&[
            ("created", "user"),
            ("processing", "system"),
            ("completed", "system")
        ])
    );
    assert_eq!(
        of(declined["id"].as_str().unwrap()).last().unwrap().0,
        "payments.payment.failed"
    );
    assert_eq!(
        of(&edited),
        pairs(&[
            ("created", "user"),
            ("updated", "user"),
            ("updated", "admin")
        ])
    );
    assert_eq!(
        of(&orphan),
        pairs(&[("created", "user"), ("cancelled", "system")])
    );
    let psp = rows
        .iter()
        .filter(|(_, e)| e["data"]["actorType"] == "psp")
        .count();
    assert_eq!(psp, 4, "webhook: processing + completed, failed, cancelled");
    assert_eq!(seen["payments.payment.updated"], 2, "{seen:?}");
}
