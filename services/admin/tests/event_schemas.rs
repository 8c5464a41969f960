//! Every event admin writes into its outbox matches the committed JSON Schema of its routing key
//! (events.md §7.6). The real admin service (PostgreSQL, RabbitMQ in a sandbox vhost, Redis,
//! the real auth service with its relay) is driven through what produces `admin.config.updated`
//! (the config API) and `admin.audit.created` (the admin API's own entries, and entries derived
//! from consumed events: auth's through the broker, payments' and profile's catalog examples
//! through the consumer's handler); then every outbox row is validated.

#![allow(
    clippy::too_many_lines,
    reason = "each test reads top to bottom as one scenario"
)]
#![expect(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

mod support;

use std::time::Duration;

use payplane_bus::consumer::Outcome;
use payplane_events::testing::validate_outbox;
use reqwest::Method;
use serde_json::{Value, json};
use support::{PW, World, deliver, new_email};

/// The shared fixture's calls, for steps that must succeed: asserts a 2xx, returns `data`.
fn ok(res: &support::Res) -> Value {
    assert!(res.status.is_success(), "{} {}", res.status, res.body);
    res.data().clone()
}

fn example(key: &str) -> Value {
    let path = format!(
        "{}/../../libs/events/examples-json/{key}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[tokio::test]
async fn every_admin_event_in_the_outbox_matches_its_schema() {
    let w = World::new().await;

    // admin.config.updated: created (object and null values), updated, deleted.
    let cap =
        json!({"key": "payment.max_amount", "value": {"USD": "5000.00"}, "description": "Cap"});
    let config_changes = [
        (Method::POST, "/api/admin/config", Some(cap)),
        (
            Method::POST,
            "/api/admin/config",
            Some(json!({"key": "a.null", "value": null})),
        ),
        (
            Method::PUT,
            "/api/admin/config/payment.max_amount",
            Some(json!({"value": [1, 2], "description": null})),
        ),
        (Method::DELETE, "/api/admin/config/a.null", None),
    ];
    for (method, path, body) in config_changes {
        ok(&w.admin(method, path, body).await);
    }

    // Audit entries written by the admin API: a user created, changed and deleted.
    let made = json!({"email": new_email(), "password": PW, "name": "Made", "role": "VENDOR"});
    let created = ok(&w.admin(Method::POST, "/api/admin/users", Some(made)).await);
    let id = created["id"].as_str().unwrap().to_owned();
    let user = format!("/api/admin/users/{id}");
    let user_changes = [
        (
            Method::PUT,
            format!("{user}/role"),
            Some(json!({"role": "CUSTOMER"})),
        ),
        (Method::PUT, user.clone(), Some(json!({"name": "Renamed"}))),
        (
            Method::PATCH,
            format!("{user}/status"),
            Some(json!({"isActive": false, "reason": "fraud review"})),
        ),
        (Method::DELETE, user, None),
    ];
    for (method, path, body) in user_changes {
        ok(&w.admin(method, &path, body).await);
    }

    // Audit entries derived from auth's events, which reach admin through the broker:
    // registration, login, password change (with a session it ends), logout.
    let email = new_email();
    ok(&w
        .auth_post(
            "/api/auth/register",
            None,
            json!({"email": email, "password": PW, "name": "Schema User", "deviceId": "d1"}),
        )
        .await);
    let second = ok(&w
        .auth_post(
            "/api/auth/login",
            None,
            json!({"email": email, "password": PW, "deviceId": "d2"}),
        )
        .await);
    let token = second["accessToken"].as_str().unwrap().to_owned();
    ok(&w
        .auth_post(
            "/api/auth/password",
            Some(&token),
            json!({"currentPassword": PW, "newPassword": "NewPassword123!"}),
        )
        .await);
    ok(&w
        .auth_post("/api/auth/logout", Some(&token), json!({}))
        .await);

    // Entries derived from payments' and profile's events, through the consumer's own handler
    // (those services are not running here) with the catalog's example payloads.
    for key in [
        "payments.payment.created",
        "payments.payment.updated",
        "payments.payment.processing",
        "payments.payment.completed",
        "payments.payment.failed",
        "payments.payment.cancelled",
        "profile.profile.updated",
    ] {
        let (_, outcome) = deliver(&w.admin.db.pool, key, &example(key)).await;
        assert_eq!(outcome, Outcome::Processed, "{key}");
    }

    // The consumer commits from its own task: wait until it has audited auth's events.
    let wanted = [
        "USER_CREATED",
        "USER_REGISTERED",
        "USER_LOGIN",
        "USER_PASSWORD_CHANGED",
        "SESSION_REVOKED",
        "USER_LOGOUT",
    ];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let actions: Vec<String> = sqlx::query_scalar(
            "SELECT DISTINCT action FROM audit_logs WHERE source_event_id IS NOT NULL",
        )
        .fetch_all(&w.admin.db.pool)
        .await
        .unwrap();
        if wanted.iter().all(|a| actions.iter().any(|x| x == a)) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "admin did not audit {wanted:?} from auth's events within 15 s: {actions:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let rows = payplane_bus::outbox::all_rows(&w.admin.db.pool)
        .await
        .unwrap();
    let seen = validate_outbox("admin", &rows).unwrap_or_else(|e| panic!("{e}"));
    // The variants above really happened, so their shapes were validated too.
    assert_eq!(seen["admin.config.updated"], 4, "{seen:?}");
    let audited = |pred: &dyn Fn(&Value) -> bool| {
        rows.iter()
            .filter(|(k, e)| k == "admin.audit.created" && pred(&e["data"]))
            .count()
    };
    assert!(
        audited(&|d| d["sourceEventId"].is_null()) >= 8,
        "API entries"
    );
    assert!(
        audited(&|d| d["action"] == "PAYMENT_CANCELLED" && d["resourceType"] == "payment") == 1
    );
    assert!(audited(&|d| d["action"] == "PROFILE_UPDATED") == 1);
    assert!(audited(&|d| d["action"] == "USER_REGISTERED" && d["sourceEventId"].is_string()) == 1);
}
