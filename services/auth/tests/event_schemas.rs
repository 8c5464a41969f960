//! Every event auth writes into its outbox matches the committed JSON Schema of its routing key
//! (events.md §7.6). The real service (PostgreSQL, Redis) is driven through each operation that
//! produces an `auth.*` event, with the variants that change the payload's shape (origins,
//! actors, revocation reasons, device details); then every outbox row is validated.

#![allow(
    clippy::too_many_lines,
    reason = "each test reads top to bottom as one scenario"
)]
#![expect(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

use payplane_auth::testing::TestApp;
use payplane_events::testing::validate_outbox;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

const PW: &str = "TestPassword123!";
/// The password after the change.
const PW2: &str = "NewPassword123!";

struct Api {
    app: TestApp,
    http: reqwest::Client,
}

impl Api {
    async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
        headers: &[(&str, String)],
    ) -> (StatusCode, Value) {
        let mut req = self.http.request(method, self.app.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        for (name, value) in headers {
            req = req.header(*name, value);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.expect("request");
        let status = res.status();
        (status, res.json().await.unwrap_or(Value::Null))
    }

    /// A public call that must succeed; returns `data`.
    async fn ok(&self, method: Method, path: &str, token: Option<&str>, body: Value) -> Value {
        let (status, body) = self
            .call(
                method,
                path,
                token,
                Some(body),
                &[("user-agent", "schema-tests/1.0".into())],
            )
            .await;
        assert!(status.is_success(), "{path}: {status} {body}");
        body["data"].clone()
    }

    /// An internal call as the admin service, on behalf of `actor`; returns `data`.
    async fn internal(
        &self,
        method: Method,
        path: &str,
        actor: Uuid,
        body: Option<Value>,
    ) -> Value {
        let (status, body) = self
            .call(
                method,
                path,
                None,
                body,
                &[
                    ("x-service-name", "admin".into()),
                    ("x-service-token", "dev-service-token".into()),
                    ("x-actor-id", actor.to_string()),
                ],
            )
            .await;
        assert!(status.is_success(), "{path}: {status} {body}");
        body["data"].clone()
    }

    async fn login(&self, email: &str, password: &str, device: &str) -> Value {
        self.ok(
            Method::POST,
            "/api/auth/login",
            None,
            json!({"email": email, "password": password, "deviceId": device}),
        )
        .await
    }
}

fn new_email() -> String {
    format!("schema-{}@example.com", Uuid::new_v4().simple())
}

fn token(data: &Value) -> String {
    data["accessToken"].as_str().unwrap().to_owned()
}

fn refresh(data: &Value) -> String {
    data["refreshToken"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn every_auth_event_in_the_outbox_matches_its_schema() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let api = Api {
        app: TestApp::spawn().await.expect("spawn auth"),
        http: reqwest::Client::new(),
    };

    // created (origin system, no actor): the bootstrap admin.
    let admin = payplane_auth::ops::bootstrap_admin(
        &api.app.db.pool,
        &api.app.state.hasher,
        &new_email(),
        "Root",
        PW,
    )
    .await
    .unwrap();

    // created (self_service), a login with device details, and a login on the registration's
    // device, which ends the registration session (`replaced`).
    let email = new_email();
    let reg = api
        .ok(
            Method::POST,
            "/api/auth/register",
            None,
            json!({"email": email, "password": PW, "name": "Schema User", "deviceId": "tablet"}),
        )
        .await;
    let uid: Uuid = reg["user"]["id"].as_str().unwrap().parse().unwrap();
    api.ok(
        Method::POST,
        "/api/auth/login",
        None,
        json!({"email": email, "password": PW, "deviceId": "laptop",
               "deviceName": "Work laptop", "deviceType": "DESKTOP"}),
    )
    .await;
    let tablet = token(&api.login(&email, PW, "tablet").await);

    // Removing a device (`device_logout`).
    api.login(&email, PW, "desk").await;
    let (status, body) = api
        .call(
            Method::DELETE,
            "/api/auth/devices/desk",
            Some(&tablet),
            None,
            &[],
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");

    // Refresh-token reuse after the 10 s grace (`token_reuse`, actor system).
    let spare = api.login(&email, PW, "spare").await;
    api.ok(
        Method::POST,
        "/api/auth/refresh",
        None,
        json!({"refreshToken": refresh(&spare)}),
    )
    .await;
    sqlx::query(
        "UPDATE refresh_tokens SET rotated_at = rotated_at - interval '11 seconds' \
         WHERE rotated_at IS NOT NULL",
    )
    .execute(&api.app.db.pool)
    .await
    .unwrap();
    let (status, body) = api
        .call(
            Method::POST,
            "/api/auth/refresh",
            None,
            Some(json!({"refreshToken": refresh(&spare)})),
            &[],
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");

    // password_changed (the other sessions end: `password_changed`).
    api.ok(
        Method::POST,
        "/api/auth/password",
        Some(&tablet),
        json!({"currentPassword": PW, "newPassword": PW2}),
    )
    .await;

    // logout-others (`logout_others`), a single logout (`logout`), and a logout of every device
    // (`logout_all`, with a non-empty revokedSessionIds).
    api.login(&email, PW2, "d1").await;
    api.login(&email, PW2, "d2").await;
    api.ok(
        Method::POST,
        "/api/auth/devices/logout-others",
        Some(&tablet),
        json!({"currentDeviceId": "tablet"}),
    )
    .await;
    let d3 = token(&api.login(&email, PW2, "d3").await);
    api.ok(Method::POST, "/api/auth/logout", Some(&d3), json!({}))
        .await;
    api.login(&email, PW2, "d4").await;
    let all = api
        .ok(
            Method::POST,
            "/api/auth/logout",
            Some(&tablet),
            json!({"allDevices": true}),
        )
        .await;
    assert_eq!(all["revokedSessions"], 2, "{all}");

    // Through the internal API for the admin: created (origin admin), updated (role; name and
    // email; deactivation with a reason, ending a session: `user_deactivated`; reactivation),
    // and deleted (its session ends first: `user_deleted`).
    let other = api
        .internal(
            Method::POST,
            "/internal/users",
            admin.id,
            Some(json!({"email": new_email(), "password": PW, "name": "Made", "role": "VENDOR"})),
        )
        .await;
    let other_email = other["email"].as_str().unwrap().to_owned();
    let other: Uuid = other["id"].as_str().unwrap().parse().unwrap();
    api.internal(
        Method::PUT,
        &format!("/internal/users/{uid}/role"),
        admin.id,
        Some(json!({"role": "VENDOR"})),
    )
    .await;
    let renamed = new_email();
    api.internal(
        Method::PATCH,
        &format!("/internal/users/{uid}"),
        admin.id,
        Some(json!({"name": "Renamed", "email": renamed})),
    )
    .await;
    api.login(&renamed, PW2, "d5").await;
    api.internal(
        Method::PATCH,
        &format!("/internal/users/{uid}/status"),
        admin.id,
        Some(json!({"isActive": false, "reason": "fraud review"})),
    )
    .await;
    api.internal(
        Method::PATCH,
        &format!("/internal/users/{uid}/status"),
        admin.id,
        Some(json!({"isActive": true})),
    )
    .await;
    api.login(&other_email, PW, "d6").await;
    api.internal(
        Method::DELETE,
        &format!("/internal/users/{other}"),
        admin.id,
        None,
    )
    .await;

    // Every change was committed before its response: validate every row.
    let rows = payplane_bus::outbox::all_rows(&api.app.db.pool)
        .await
        .unwrap();
    let seen = validate_outbox("auth", &rows).unwrap_or_else(|e| panic!("{e}"));

    // The variants above really happened, so their shapes were validated too.
    let values = |key: &str, field: &str| -> Vec<String> {
        rows.iter()
            .filter(|(k, _)| k == key)
            .filter_map(|(_, e)| e["data"][field].as_str().map(str::to_owned))
            .collect()
    };
    let reasons = values("auth.session.revoked", "reason");
    for reason in [
        "replaced",
        "device_logout",
        "token_reuse",
        "password_changed",
        "logout_others",
        "logout",
        "logout_all",
        "user_deactivated",
        "user_deleted",
    ] {
        assert!(
            reasons.iter().any(|r| r == reason),
            "{reason} not in {reasons:?}"
        );
    }
    assert_eq!(
        values("auth.user.created", "origin"),
        ["system", "self_service", "admin"]
    );
    assert!(values("auth.user.login", "deviceName").contains(&"Work laptop".to_owned()));
    assert!(values("auth.user.login", "userAgent").contains(&"schema-tests/1.0".to_owned()));
    assert_eq!(seen["auth.user.updated"], 4, "{seen:?}");
}
