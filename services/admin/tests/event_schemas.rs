//! Every event admin writes into its outbox matches the committed JSON Schema of its routing key
//! (events.md §7.6). The real admin service (PostgreSQL, RabbitMQ in a sandbox vhost, Redis,
//! the real auth service with its relay) is driven through what produces `admin.config.updated`
//! (the config API) and `admin.audit.created` (the admin API's own entries, and entries derived
//! from consumed events: auth's through the broker, payments' and profile's catalog examples
//! through the consumer's handler); then every outbox row is validated.
#![expect(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

use std::time::Duration;

use payplane_admin::{events::AdminEvents, testing::TestApp as AdminApp};
use payplane_auth::testing::TestApp as AuthApp;
use payplane_bus::{
    consumer::{Outcome, RawMessage, handle_one},
    sandbox::Sandbox,
};
use payplane_events::{testing::validate_outbox, topology::ADMIN_EVENTS};
use reqwest::Method;
use serde_json::{Value, json};
use uuid::Uuid;

const PW: &str = "TestPassword123!";

struct World {
    auth: AuthApp,
    admin: AdminApp,
    http: reqwest::Client,
    root: String,
    /// Dropped last: deleting the vhost closes the services' broker connections.
    _sandbox: Sandbox,
}

impl World {
    async fn send(&self, req: reqwest::RequestBuilder, body: Option<Value>) -> Value {
        let req = match body {
            Some(b) => req.json(&b),
            None => req,
        };
        let res = req.send().await.expect("request");
        let status = res.status();
        let body: Value = res.json().await.unwrap_or(Value::Null);
        assert!(status.is_success(), "{status} {body}");
        body["data"].clone()
    }

    /// An admin API call as the root admin that must succeed; returns `data`.
    async fn admin(&self, method: Method, path: &str, body: Option<Value>) -> Value {
        let req = self
            .http
            .request(method, self.admin.url(path))
            .bearer_auth(&self.root);
        self.send(req, body).await
    }

    /// An auth API call that must succeed; returns `data`.
    async fn auth(&self, path: &str, token: Option<&str>, body: Value) -> Value {
        let mut req = self.http.post(self.auth.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        self.send(req, Some(body)).await
    }
}

fn new_email() -> String {
    format!("schema-{}@example.com", Uuid::new_v4().simple())
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
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let sandbox = Sandbox::create("admin_schema").await.expect("sandbox");
    // admin.events and its `#` binding exist before auth publishes, so the broker routes every
    // event of this test to the admin consumer.
    let conn = payplane_bus::conn::connect(&sandbox.amqp_url, "admin-schema-setup")
        .await
        .expect("broker");
    let channel = conn.create_channel().await.expect("channel");
    payplane_bus::topology::declare_consumer(&channel, &ADMIN_EVENTS)
        .await
        .expect("declare admin.events");
    let _ = conn.close(200, "declared".into()).await;
    let amqp = sandbox.amqp_url.clone();
    let auth = AuthApp::spawn_with(|c| {
        c.amqp_url = amqp;
        c.relay_enabled = true;
    })
    .await
    .expect("spawn auth");
    let admin = AdminApp::spawn(&auth.base_url, &sandbox.amqp_url)
        .await
        .expect("spawn admin");
    let root_email = new_email();
    payplane_auth::ops::bootstrap_admin(
        &auth.db.pool,
        &auth.state.hasher,
        &root_email,
        "Root Admin",
        PW,
    )
    .await
    .expect("bootstrap admin");
    let mut w = World {
        auth,
        admin,
        http: reqwest::Client::new(),
        root: String::new(),
        _sandbox: sandbox,
    };
    let login = w
        .auth(
            "/api/auth/login",
            None,
            json!({"email": root_email, "password": PW, "deviceId": "root"}),
        )
        .await;
    w.root = login["accessToken"].as_str().unwrap().to_owned();

    // admin.config.updated: created (object and null values), updated, deleted.
    w.admin(
        Method::POST,
        "/api/admin/config",
        Some(
            json!({"key": "payment.max_amount", "value": {"USD": "5000.00"}, "description": "Cap"}),
        ),
    )
    .await;
    w.admin(
        Method::POST,
        "/api/admin/config",
        Some(json!({"key": "a.null", "value": null})),
    )
    .await;
    w.admin(
        Method::PUT,
        "/api/admin/config/payment.max_amount",
        Some(json!({"value": [1, 2], "description": null})),
    )
    .await;
    w.admin(Method::DELETE, "/api/admin/config/a.null", None)
        .await;

    // Audit entries written by the admin API: a user created, changed and deleted.
    let created = w
        .admin(
            Method::POST,
            "/api/admin/users",
            Some(json!({"email": new_email(), "password": PW, "name": "Made", "role": "VENDOR"})),
        )
        .await;
    let id = created["id"].as_str().unwrap().to_owned();
    w.admin(
        Method::PUT,
        &format!("/api/admin/users/{id}/role"),
        Some(json!({"role": "CUSTOMER"})),
    )
    .await;
    w.admin(
        Method::PUT,
        &format!("/api/admin/users/{id}"),
        Some(json!({"name": "Renamed"})),
    )
    .await;
    w.admin(
        Method::PATCH,
        &format!("/api/admin/users/{id}/status"),
        Some(json!({"isActive": false, "reason": "fraud review"})),
    )
    .await;
    w.admin(Method::DELETE, &format!("/api/admin/users/{id}"), None)
        .await;

    // Audit entries derived from auth's events, which reach admin through the broker:
    // registration, login, password change (with a session it ends), logout.
    let email = new_email();
    w.auth(
        "/api/auth/register",
        None,
        json!({"email": email, "password": PW, "name": "Schema User", "deviceId": "d1"}),
    )
    .await;
    let second = w
        .auth(
            "/api/auth/login",
            None,
            json!({"email": email, "password": PW, "deviceId": "d2"}),
        )
        .await;
    let token = second["accessToken"].as_str().unwrap().to_owned();
    w.auth(
        "/api/auth/password",
        Some(&token),
        json!({"currentPassword": PW, "newPassword": "NewPassword123!"}),
    )
    .await;
    w.auth("/api/auth/logout", Some(&token), json!({})).await;

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
        let body = serde_json::to_vec(&json!({
            "id": Uuid::new_v4(), "type": key, "version": "1",
            "timestamp": "2026-03-01T10:00:03.512Z", "source": key.split('.').next().unwrap(),
            "correlationId": "schema-test", "data": example(key),
        }))
        .unwrap();
        let outcome = handle_one(
            &w.admin.db.pool,
            "admin.events",
            &AdminEvents,
            RawMessage {
                body: &body,
                headers: None,
            },
        )
        .await;
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

    let rows: Vec<(String, Value)> =
        sqlx::query_as("SELECT routing_key, envelope FROM outbox ORDER BY seq")
            .fetch_all(&w.admin.db.pool)
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
