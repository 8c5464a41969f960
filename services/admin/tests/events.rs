//! The `admin.events` handler for every routing key of events.md §5.1, driven through the
//! consumer's database step (`handle_one`) with the catalogue's example payloads, on a real
//! database: read-model effects, one audit entry per auditable event with its
//! `admin.audit.created` outbox row, duplicates and the ignored keys.

#![allow(
    clippy::too_many_lines,
    reason = "each test reads top to bottom as one scenario"
)]
#![expect(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

mod support;

use payplane_admin::{MIGRATOR, events::AdminEvents};
use payplane_bus::consumer::{Outcome, RawMessage, handle_one};
use payplane_db::testing::TestDatabase;
use serde_json::{Value, json};
use sqlx::PgPool;
use support::{deliver, envelope};
use uuid::Uuid;

fn example(key: &str) -> Value {
    let path = format!(
        "{}/../../libs/events/examples-json/{key}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The read model's row of user `id` as JSON (its columns as keys).
async fn user_row(pool: &PgPool, id: Uuid) -> Value {
    sqlx::query_scalar("SELECT to_jsonb(u) FROM users u WHERE u.id = $1")
        .bind(id)
        .fetch_one(pool)
        .await
        .unwrap()
}

/// `(action, user_id, resource_type, resource_id, details)` of the entries from one event.
async fn entries(
    pool: &PgPool,
    event: Uuid,
) -> Vec<(String, Option<Uuid>, Option<String>, Option<String>, Value)> {
    sqlx::query_as(
        "SELECT action, user_id, resource_type, resource_id, details FROM audit_logs
         WHERE source_event_id = $1 ORDER BY action",
    )
    .bind(event)
    .fetch_all(pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn every_event_type_is_audited_as_specified() {
    let db = TestDatabase::create(&MIGRATOR).await.unwrap();
    let pool = &db.pool;
    let user: Uuid = "7d444840-9dc0-11d1-b245-5ffdce74fad2".parse().unwrap();
    let actor: Uuid = "5f0c2a4e-1b7d-4c3a-9f2e-8d1a6b3c4e5f".parse().unwrap();

    // auth.user.created by origin.
    let mut created = example("auth.user.created");
    let (ev, out) = deliver(pool, "auth.user.created", &created).await;
    assert_eq!(out, Outcome::Processed);
    let e = entries(pool, ev).await;
    assert_eq!(e.len(), 1);
    assert_eq!(e[0].0, "USER_REGISTERED");
    assert_eq!(e[0].1, Some(user));
    assert_eq!(
        e[0].4,
        json!({"email": "ada@example.com", "name": "Ada Lovelace", "role": "CUSTOMER"})
    );
    for (origin, source) in [("seed", "seed"), ("system", "system")] {
        created["origin"] = json!(origin);
        let (ev, _) = deliver(pool, "auth.user.created", &created).await;
        let e = entries(pool, ev).await;
        assert_eq!((e[0].0.as_str(), e[0].1), ("USER_CREATED", None));
        assert_eq!(e[0].4["source"], source);
    }
    created["origin"] = json!("admin");
    let (ev, _) = deliver(pool, "auth.user.created", &created).await;
    assert!(
        entries(pool, ev).await.is_empty(),
        "origin admin is audited by the API"
    );

    // auth.user.updated: origin admin → none; system → one entry per kind of change.
    let mut updated = example("auth.user.updated");
    let (ev, _) = deliver(pool, "auth.user.updated", &updated).await;
    assert!(entries(pool, ev).await.is_empty());
    updated["origin"] = json!("system");
    updated["updatedAt"] = json!("2026-03-02T10:00:00.000Z");
    updated["isActive"] = json!(false);
    updated["name"] = json!("Ada King");
    updated["changedFields"] = json!(["role", "isActive", "name"]);
    updated["previous"] = json!({"role": "VENDOR", "isActive": true, "name": "Ada Lovelace"});
    updated["reason"] = json!("policy");
    let (ev, _) = deliver(pool, "auth.user.updated", &updated).await;
    let e = entries(pool, ev).await;
    let acts: Vec<&str> = e.iter().map(|x| x.0.as_str()).collect();
    assert_eq!(
        acts,
        ["USER_ROLE_CHANGED", "USER_STATUS_CHANGED", "USER_UPDATED"]
    );
    assert_eq!(
        e[0].4,
        json!({"previousRole": "VENDOR", "newRole": "CUSTOMER"})
    );
    assert_eq!(
        e[1].4,
        json!({"isActive": false, "previousIsActive": true, "reason": "policy"})
    );
    assert_eq!(
        e[2].4,
        json!({"updatedFields": ["name"], "previous": {"name": "Ada Lovelace"}})
    );
    assert_eq!(e[0].1, Some(actor));
    let row = user_row(pool, user).await;
    assert_eq!(
        (&row["name"], &row["is_active"]),
        (&json!("Ada King"), &json!(false))
    );
    // An older snapshot is not applied.
    let mut older = updated.clone();
    older["updatedAt"] = json!("2026-03-01T00:00:00.000Z");
    older["name"] = json!("Stale");
    deliver(pool, "auth.user.updated", &older).await;
    assert_eq!(user_row(pool, user).await["name"], "Ada King");

    // Login sets lastLoginAt and records the client.
    let login = example("auth.user.login");
    let (ev, _) = deliver(pool, "auth.user.login", &login).await;
    let e = entries(pool, ev).await;
    assert_eq!(e[0].0, "USER_LOGIN");
    assert_eq!(e[0].4["sessionId"], login["sessionId"]);
    let (last, ip): (Option<chrono::DateTime<chrono::Utc>>, Option<String>) = sqlx::query_as(
        "SELECT u.last_login_at, host(a.ip_address) FROM users u, audit_logs a
         WHERE u.id = $1 AND a.source_event_id = $2",
    )
    .bind(user)
    .bind(ev)
    .fetch_one(pool)
    .await
    .unwrap();
    assert!(last.is_some());
    assert_eq!(ip.as_deref(), login["ipAddress"].as_str());

    let logout = example("auth.user.logout");
    let (ev, _) = deliver(pool, "auth.user.logout", &logout).await;
    let e = entries(pool, ev).await;
    assert_eq!(e[0].0, "USER_LOGOUT");
    assert_eq!(
        e[0].4["revokedSessionCount"],
        json!(logout["revokedSessionIds"].as_array().unwrap().len())
    );

    let pw = example("auth.user.password_changed");
    let (ev, _) = deliver(pool, "auth.user.password_changed", &pw).await;
    let e = entries(pool, ev).await;
    assert_eq!(e[0].0, "USER_PASSWORD_CHANGED");
    assert_eq!(e[0].4["revokedSessionCount"], pw["revokedSessionCount"]);

    let mut revoked = example("auth.session.revoked");
    let (ev, _) = deliver(pool, "auth.session.revoked", &revoked).await;
    let e = entries(pool, ev).await;
    assert_eq!(e[0].0, "SESSION_REVOKED");
    assert_eq!(e[0].2.as_deref(), Some("session"));
    assert_eq!(
        e[0].3.as_ref(),
        revoked["sessionId"].as_str().map(str::to_owned).as_ref()
    );
    assert_eq!(e[0].4["reason"], "password_changed");
    for reason in ["logout", "logout_all"] {
        revoked["reason"] = json!(reason);
        let (ev, _) = deliver(pool, "auth.session.revoked", &revoked).await;
        assert!(
            entries(pool, ev).await.is_empty(),
            "{reason} is covered by USER_LOGOUT"
        );
    }

    // Payments.
    for (key, action) in [
        ("payments.payment.created", "PAYMENT_CREATED"),
        ("payments.payment.updated", "PAYMENT_UPDATED"),
        ("payments.payment.processing", "PAYMENT_PROCESSING"),
        ("payments.payment.completed", "PAYMENT_COMPLETED"),
        ("payments.payment.failed", "PAYMENT_FAILED"),
        ("payments.payment.cancelled", "PAYMENT_CANCELLED"),
    ] {
        let data = example(key);
        let (ev, out) = deliver(pool, key, &data).await;
        assert_eq!(out, Outcome::Processed, "{key}");
        let e = entries(pool, ev).await;
        assert_eq!(e.len(), 1, "{key}");
        assert_eq!(e[0].0, action);
        assert_eq!(e[0].2.as_deref(), Some("payment"));
        assert_eq!(e[0].3.as_deref(), data["paymentId"].as_str());
        assert_eq!(e[0].4["amount"], data["amount"]);
        assert_eq!(e[0].4["senderId"], data["senderId"]);
        if key.ends_with("updated") {
            assert_eq!(e[0].4["changedFields"], data["changedFields"]);
        } else if !key.ends_with("created") {
            assert_eq!(e[0].4["previousStatus"], data["previousStatus"], "{key}");
        }
        if key.ends_with("cancelled") {
            assert_eq!(e[0].4["reason"], "Sender account deleted");
        }
    }

    let profile = example("profile.profile.updated");
    let (ev, _) = deliver(pool, "profile.profile.updated", &profile).await;
    let e = entries(pool, ev).await;
    assert_eq!(e[0].0, "PROFILE_UPDATED");
    assert_eq!(e[0].2.as_deref(), Some("profile"));
    assert_eq!(e[0].4["changedFields"], profile["changedFields"]);

    // Deletion (origin system) is audited and final; a late update does not resurrect.
    let mut deleted = example("auth.user.deleted");
    deleted["origin"] = json!("system");
    let (ev, _) = deliver(pool, "auth.user.deleted", &deleted).await;
    let e = entries(pool, ev).await;
    assert_eq!(e[0].0, "USER_DELETED");
    assert_eq!(
        e[0].4,
        json!({"deletedUserEmail": deleted["email"], "role": deleted["role"]})
    );
    updated["updatedAt"] = json!("2030-01-01T00:00:00.000Z");
    deliver(pool, "auth.user.updated", &updated).await;
    assert!(!user_row(pool, user).await["deleted_at"].is_null());

    // Every entry has exactly one admin.audit.created event; admin's own events are ignored.
    let (audits, events): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM audit_logs),
                (SELECT count(*) FROM outbox WHERE routing_key = 'admin.audit.created')",
    )
    .fetch_one(pool)
    .await
    .unwrap();
    assert_eq!(audits, events);
    assert!(audits >= 17);
    for key in [
        "admin.audit.created",
        "admin.config.updated",
        "something.else",
    ] {
        let (_, out) = deliver(pool, key, &json!({})).await;
        assert_eq!(out, Outcome::Ignored, "{key}");
    }
    let after: i64 = sqlx::query_scalar("SELECT count(*) FROM audit_logs")
        .fetch_one(pool)
        .await
        .unwrap();
    assert_eq!(after, audits);
}

#[tokio::test]
async fn duplicates_and_bad_payloads() {
    let db = TestDatabase::create(&MIGRATOR).await.unwrap();
    let pool = &db.pool;
    let (_, body) = envelope(
        "payments.payment.created",
        &example("payments.payment.created"),
    );
    let msg = RawMessage {
        body: &body,
        headers: None,
    };
    assert_eq!(
        handle_one(pool, "admin.events", &AdminEvents, msg).await,
        Outcome::Processed
    );
    assert_eq!(
        handle_one(pool, "admin.events", &AdminEvents, msg).await,
        Outcome::Duplicate
    );
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM audit_logs")
        .fetch_one(pool)
        .await
        .unwrap();
    assert_eq!(n, 1);
    let (_, out) = deliver(pool, "auth.user.login", &json!({"userId": "nope"})).await;
    assert!(matches!(out, Outcome::DeadLetter { .. }), "{out:?}");
}

#[tokio::test]
async fn seed_upserts_demo_users_and_config() {
    let db = TestDatabase::create(&MIGRATOR).await.unwrap();
    let pool = &db.pool;
    let mut deleted = example("auth.user.deleted");
    deleted["origin"] = json!("system");
    deliver(pool, "auth.user.deleted", &deleted).await;
    let snapshot: payplane_events::auth::UserSnapshot =
        serde_json::from_value(example("auth.user.created")).unwrap();
    payplane_admin::seed::seed(pool, std::slice::from_ref(&snapshot))
        .await
        .unwrap();
    payplane_admin::seed::seed(pool, std::slice::from_ref(&snapshot))
        .await
        .unwrap();
    assert!(
        user_row(pool, snapshot.user_id).await["deleted_at"].is_null(),
        "seeding clears the deletion mark"
    );
    let config: Vec<(String, Value, Option<Uuid>)> =
        sqlx::query_as("SELECT key, value, updated_by FROM system_config ORDER BY key")
            .fetch_all(pool)
            .await
            .unwrap();
    assert_eq!(
        config,
        [
            ("app.version".to_owned(), json!("1.0.0"), None),
            ("payment.min_amount".to_owned(), json!("0.01"), None),
        ]
    );
}
