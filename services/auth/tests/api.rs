//! Auth service integration tests against the real PostgreSQL and Redis: each test gets its own
//! database (dropped afterwards) and its own users (random emails), so they run in parallel.

#![allow(
    clippy::too_many_lines,
    reason = "each test reads top to bottom as one scenario"
)]
#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers fail loudly on broken fixtures"
)]

use std::time::Duration;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use payplane_auth::testing::TestApp;
use payplane_kit::service::testing::http::{Res, ServiceClient};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

const PW: &str = "TestPassword123!";

struct Api {
    app: TestApp,
    http: reqwest::Client,
    client: ServiceClient,
}

impl Api {
    async fn new() -> Self {
        Self::with(|_| {}).await
    }

    async fn with(tweak: impl FnOnce(&mut payplane_auth::Config)) -> Self {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let app = TestApp::spawn_with(tweak).await.expect("spawn auth");
        Self {
            client: ServiceClient::new(&app.base_url),
            http: reqwest::Client::new(),
            app,
        }
    }

    async fn post(&self, path: &str, token: Option<&str>, body: Value) -> Res {
        self.client
            .call(Method::POST, path, token, Some(body))
            .await
    }

    async fn get(&self, path: &str, token: Option<&str>) -> Res {
        self.client.call(Method::GET, path, token, None).await
    }

    async fn register(&self, email: &str, device: &str) -> Res {
        let r = self
            .post(
                "/api/auth/register",
                None,
                json!({"email": email, "password": PW, "name": "Test User", "deviceId": device}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        r
    }

    async fn login(&self, email: &str, device: &str) -> Res {
        self.post(
            "/api/auth/login",
            None,
            json!({"email": email, "password": PW, "deviceId": device}),
        )
        .await
    }

    async fn outbox(&self) -> Vec<(String, Value)> {
        payplane_bus::outbox::all_rows(&self.app.db.pool)
            .await
            .unwrap()
    }

    async fn internal(
        &self,
        method: Method,
        path: &str,
        actor: Option<Uuid>,
        body: Option<Value>,
    ) -> Res {
        let mut req = self
            .http
            .request(method, self.app.url(path))
            .header("x-service-name", "admin")
            .header("x-service-token", "dev-service-token");
        if let Some(a) = actor {
            req = req.header("x-actor-id", a.to_string());
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        Res::of(req).await.unwrap()
    }
}

fn new_email() -> String {
    format!("user-{}@example.com", Uuid::new_v4().simple())
}

fn token(r: &Res) -> String {
    r.data()["accessToken"].as_str().unwrap().to_owned()
}

fn refresh(r: &Res) -> String {
    r.data()["refreshToken"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn register_login_me_refresh_reuse_logout_journey() {
    let api = Api::new().await;
    let email = new_email();
    let reg = api.register(&email.to_uppercase(), "laptop").await;
    let user = &reg.data()["user"];
    assert_eq!(
        user.as_object().unwrap().len(),
        6,
        "PublicUser has exactly six fields: {user}"
    );
    assert_eq!(user["email"], email.as_str());
    assert_eq!(user["role"], "CUSTOMER");
    assert_eq!(reg.data()["expiresIn"], "15m");
    assert_eq!(reg.data()["deviceId"], "laptop");
    assert_eq!(refresh(&reg).len(), 43);
    assert!(user["createdAt"].as_str().unwrap().ends_with('Z'));
    assert_eq!(
        user["createdAt"].as_str().unwrap().len(),
        24,
        "three fraction digits"
    );

    // A second device: its own session; the first stays valid.
    let laptop = api.login(&email, "laptop").await;
    assert_eq!(laptop.status, StatusCode::OK, "{}", laptop.body);
    let phone = api.login(&email, "phone").await;
    assert_eq!(phone.status, StatusCode::OK);
    assert_ne!(laptop.data()["sessionId"], phone.data()["sessionId"]);
    // The registration session on "laptop" was replaced by the laptop login.
    let r = api.get("/api/auth/me", Some(&token(&reg))).await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::UNAUTHORIZED, "SESSION_REVOKED")
    );
    let me = api.get("/api/auth/me", Some(&token(&laptop))).await;
    assert_eq!(me.status, StatusCode::OK);
    assert_eq!(me.data()["email"], email.as_str());
    assert_eq!(me.headers["cache-control"], "no-store");

    // Rotation.
    let r1 = api
        .post(
            "/api/auth/refresh",
            None,
            json!({"refreshToken": refresh(&laptop)}),
        )
        .await;
    assert_eq!(r1.status, StatusCode::OK, "{}", r1.body);
    assert_ne!(refresh(&r1), refresh(&laptop));
    assert_eq!(r1.data()["sessionId"], laptop.data()["sessionId"]);
    assert!(r1.data().get("deviceId").is_none());
    // Within 10 s: a racing tab, refused without harm.
    let race = api
        .post(
            "/api/auth/refresh",
            None,
            json!({"refreshToken": refresh(&laptop)}),
        )
        .await;
    assert_eq!(
        (race.status, race.code()),
        (StatusCode::UNAUTHORIZED, "TOKEN_INVALID")
    );
    assert_eq!(
        api.get("/api/auth/me", Some(&token(&r1))).await.status,
        StatusCode::OK
    );
    // 10 s later the same old token is reuse: the laptop session (only) is revoked.
    sqlx::query("UPDATE refresh_tokens SET rotated_at = rotated_at - interval '11 seconds' WHERE rotated_at IS NOT NULL")
        .execute(&api.app.db.pool)
        .await
        .unwrap();
    let reuse = api
        .post(
            "/api/auth/refresh",
            None,
            json!({"refreshToken": refresh(&laptop)}),
        )
        .await;
    assert_eq!(
        (reuse.status, reuse.code()),
        (StatusCode::UNAUTHORIZED, "TOKEN_REUSE_DETECTED")
    );
    let r = api.get("/api/auth/me", Some(&token(&r1))).await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::UNAUTHORIZED, "SESSION_REVOKED")
    );
    let r = api
        .post(
            "/api/auth/refresh",
            None,
            json!({"refreshToken": refresh(&r1)}),
        )
        .await;
    assert_eq!(r.code(), "SESSION_REVOKED");
    // The phone is untouched.
    assert_eq!(
        api.get("/api/auth/me", Some(&token(&phone))).await.status,
        StatusCode::OK
    );

    // Logout the phone; its refresh token is refused afterwards.
    let out = api
        .post("/api/auth/logout", Some(&token(&phone)), json!({}))
        .await;
    assert_eq!(out.status, StatusCode::OK, "{}", out.body);
    assert_eq!(out.data()["revokedSessions"], 1);
    assert_eq!(out.data()["message"], "Logged out successfully");
    let r = api
        .post(
            "/api/auth/refresh",
            None,
            json!({"refreshToken": refresh(&phone)}),
        )
        .await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::UNAUTHORIZED, "SESSION_REVOKED")
    );
    // Logging out again with the now-revoked token still succeeds, with nothing ended.
    let again = api
        .post("/api/auth/logout", Some(&token(&phone)), json!({}))
        .await;
    assert_eq!(
        (again.status, again.data()["revokedSessions"].clone()),
        (StatusCode::OK, json!(0))
    );

    let keys: Vec<String> = api.outbox().await.into_iter().map(|(k, _)| k).collect();
    assert_eq!(keys.iter().filter(|k| *k == "auth.user.created").count(), 1);
    assert_eq!(
        keys.iter().filter(|k| *k == "auth.user.login").count(),
        2,
        "registration emits no login"
    );
    assert_eq!(keys.iter().filter(|k| *k == "auth.user.logout").count(), 2);
    // replaced (registration session), token_reuse, logout.
    assert_eq!(
        keys.iter().filter(|k| *k == "auth.session.revoked").count(),
        3,
        "{keys:?}"
    );
}

#[tokio::test]
async fn logout_all_devices_and_logout_others() {
    let api = Api::new().await;
    let email = new_email();
    api.register(&email, "d0").await;
    let a = api.login(&email, "d1").await;
    let b = api.login(&email, "d2").await;
    let c = api.login(&email, "d3").await;
    let others = api
        .post(
            "/api/auth/devices/logout-others",
            Some(&token(&a)),
            json!({"currentDeviceId": "d1"}),
        )
        .await;
    assert_eq!(others.status, StatusCode::OK, "{}", others.body);
    assert_eq!(others.data()["loggedOutCount"], 3, "d0, d2 and d3");
    assert_eq!(
        api.get("/api/auth/me", Some(&token(&a))).await.status,
        StatusCode::OK
    );
    for t in [token(&b), token(&c)] {
        assert_eq!(
            api.get("/api/auth/me", Some(&t)).await.code(),
            "SESSION_REVOKED"
        );
    }
    let devices = api.get("/api/auth/devices", Some(&token(&a))).await;
    let list = devices.data().as_array().unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["deviceId"], "d1");
    assert_eq!(list[0]["current"], true);
    assert_eq!(list[0]["activeSessions"], 1);

    let d4 = api.login(&email, "d4").await;
    let all = api
        .post(
            "/api/auth/logout",
            None,
            json!({"allDevices": true, "refreshToken": refresh(&d4)}),
        )
        .await;
    assert_eq!(all.status, StatusCode::OK, "{}", all.body);
    assert_eq!(all.data()["revokedSessions"], 2);
    assert_eq!(
        api.get("/api/auth/me", Some(&token(&a))).await.code(),
        "SESSION_REVOKED"
    );
    let none = api.post("/api/auth/logout", None, json!({})).await;
    assert_eq!(
        (none.status, none.code()),
        (StatusCode::UNAUTHORIZED, "UNAUTHORIZED")
    );
}

#[tokio::test]
async fn device_register_and_delete() {
    let api = Api::new().await;
    let email = new_email();
    let a = api.register(&email, "tablet").await;
    let b = api.login(&email, "phone").await;
    let r = api
        .post(
            "/api/auth/devices/register",
            Some(&token(&a)),
            json!({"deviceId": "phone", "deviceName": "My Phone", "deviceType": "MOBILE"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.data()["deviceName"], "My Phone");
    assert_eq!(r.data()["deviceType"], "mobile");
    assert_eq!(r.data()["current"], true);
    assert_eq!(
        api.get("/api/auth/me", Some(&token(&b))).await.code(),
        "SESSION_REVOKED",
        "the other session on that device is replaced"
    );
    let c = api.login(&email, "desk").await;
    let del = api
        .client
        .call(
            Method::DELETE,
            "/api/auth/devices/desk",
            Some(&token(&a)),
            None,
        )
        .await;
    assert_eq!(del.status, StatusCode::NO_CONTENT);
    assert_eq!(
        api.get("/api/auth/me", Some(&token(&c))).await.code(),
        "SESSION_REVOKED"
    );
    let missing = api
        .client
        .call(
            Method::DELETE,
            "/api/auth/devices/desk",
            Some(&token(&a)),
            None,
        )
        .await;
    assert_eq!(
        (missing.status, missing.code()),
        (StatusCode::NOT_FOUND, "DEVICE_NOT_FOUND")
    );
    let bad = api
        .client
        .call(
            Method::DELETE,
            "/api/auth/devices/bad%20id",
            Some(&token(&a)),
            None,
        )
        .await;
    assert_eq!(bad.code(), "DEVICE_NOT_FOUND");
    let missing_id = api
        .post("/api/auth/devices/register", Some(&token(&a)), json!({}))
        .await;
    assert_eq!(missing_id.fields(), ["deviceId"]);
}

#[tokio::test]
async fn lockout_after_five_failures_with_backoff() {
    let api = Api::new().await;
    let email = new_email();
    api.register(&email, "d").await;
    let wrong = json!({"email": email, "password": "WrongPassword123!"});
    let shift = || async {
        sqlx::query(
            "UPDATE login_throttle SET last_failed_at = last_failed_at - interval '5 seconds'",
        )
        .execute(&api.app.db.pool)
        .await
        .unwrap();
    };
    let r1 = api.post("/api/auth/login", None, wrong.clone()).await;
    assert_eq!(
        (r1.status, r1.code()),
        (StatusCode::UNAUTHORIZED, "INVALID_CREDENTIALS")
    );
    assert!(r1.body["error"].get("details").is_none());
    let r2 = api.post("/api/auth/login", None, wrong.clone()).await;
    assert_eq!(r2.code(), "INVALID_CREDENTIALS");
    // Backoff: 1 s after the second failure, even with the right password, not counted.
    let early = api.login(&email, "d").await;
    assert_eq!(
        (early.status, early.code()),
        (StatusCode::TOO_MANY_REQUESTS, "ACCOUNT_LOCKED")
    );
    assert_eq!(early.body["error"]["details"]["waitSeconds"], 1);
    assert!(early.body["error"]["details"].get("lockedUntil").is_none());
    assert_eq!(early.headers["retry-after"], "1");
    shift().await;
    let r3 = api.post("/api/auth/login", None, wrong.clone()).await;
    assert_eq!(r3.body["error"]["details"]["remainingAttempts"], 2);
    shift().await;
    let r4 = api.post("/api/auth/login", None, wrong.clone()).await;
    assert_eq!(r4.body["error"]["details"]["remainingAttempts"], 1);
    shift().await;
    let r5 = api.post("/api/auth/login", None, wrong.clone()).await;
    assert_eq!(
        (r5.status, r5.code()),
        (StatusCode::TOO_MANY_REQUESTS, "ACCOUNT_LOCKED")
    );
    assert_eq!(r5.body["error"]["details"]["waitSeconds"], 900);
    assert!(r5.body["error"]["details"]["lockedUntil"].is_string());
    let locked = api.login(&email, "d").await;
    assert_eq!(locked.code(), "ACCOUNT_LOCKED");
    assert!(
        locked.body["error"]["details"]["waitSeconds"]
            .as_i64()
            .unwrap()
            > 890
    );

    // Admin tools see and clear it.
    let admin = api.login("admin@example.com", "x").await;
    assert_eq!(admin.code(), "INVALID_CREDENTIALS", "no admin yet");
    let admin_token = make_admin(&api).await;
    let state = api
        .get(
            &format!("/api/auth/admin/lockout/{}", email.to_uppercase()),
            Some(&admin_token),
        )
        .await;
    assert_eq!(state.status, StatusCode::OK, "{}", state.body);
    assert_eq!(state.data()["isLocked"], true);
    assert_eq!(state.data()["failedAttempts"], 5);
    assert_eq!(
        state.data()["lockout"]["reason"],
        "too_many_failed_attempts"
    );
    let cust = api.login(&email, "d2").await;
    assert_eq!(cust.code(), "ACCOUNT_LOCKED");
    let unlock = api
        .post(
            &format!("/api/auth/admin/unlock/{email}"),
            Some(&admin_token),
            json!({}),
        )
        .await;
    assert_eq!(unlock.data()["wasLocked"], true);
    assert_eq!(api.login(&email, "d").await.status, StatusCode::OK);
    let fresh = api
        .get(
            &format!("/api/auth/admin/lockout/{}", new_email()),
            Some(&admin_token),
        )
        .await;
    assert_eq!(
        (
            fresh.data()["isLocked"].clone(),
            fresh.data()["failedAttempts"].clone()
        ),
        (json!(false), json!(0))
    );
    let bad = api
        .get("/api/auth/admin/lockout/not-an-email", Some(&admin_token))
        .await;
    assert_eq!(
        (bad.status, bad.fields()),
        (StatusCode::BAD_REQUEST, vec!["email".to_owned()])
    );
    // Non-admins are refused.
    let r = api
        .get(
            &format!("/api/auth/admin/lockout/{email}"),
            Some(&token(&api.login(&email, "d").await)),
        )
        .await;
    assert_eq!((r.status, r.code()), (StatusCode::FORBIDDEN, "FORBIDDEN"));
    // Unknown emails are throttled the same way (no account enumeration).
    let ghost = json!({"email": new_email(), "password": "WrongPassword123!"});
    assert_eq!(
        api.post("/api/auth/login", None, ghost.clone())
            .await
            .code(),
        "INVALID_CREDENTIALS"
    );
}

/// Creates an ADMIN through the bootstrap command and logs in.
async fn make_admin(api: &Api) -> String {
    let email = new_email();
    let hasher = api.app.state.hasher.clone();
    payplane_auth::ops::bootstrap_admin(&api.app.db.pool, &hasher, &email, "Root", PW)
        .await
        .unwrap();
    let r = api.login(&email, "admin-device").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    token(&r)
}

#[tokio::test]
async fn registration_rules() {
    let api = Api::new().await;
    let email = new_email();
    let admin = api
        .post(
            "/api/auth/register",
            None,
            json!({"email": email, "password": PW, "name": "X", "role": "ADMIN"}),
        )
        .await;
    assert_eq!(
        (admin.status, admin.fields()),
        (StatusCode::BAD_REQUEST, vec!["role".to_owned()])
    );
    let vendor = api
        .post(
            "/api/auth/register",
            None,
            json!({"email": email, "password": PW, "name": " Vee ", "role": "vendor"}),
        )
        .await;
    assert_eq!(vendor.status, StatusCode::CREATED);
    assert_eq!(vendor.data()["user"]["role"], "VENDOR");
    assert_eq!(vendor.data()["user"]["name"], "Vee");
    let dup = api
        .post(
            "/api/auth/register",
            None,
            json!({"email": email.to_uppercase(), "password": PW, "name": "X"}),
        )
        .await;
    assert_eq!(
        (dup.status, dup.code()),
        (StatusCode::CONFLICT, "EMAIL_EXISTS")
    );
    assert!(dup.body["error"]["requestId"].is_string());

    let cases: Vec<(Value, &str)> = vec![
        (json!({"password": PW, "name": "N"}), "email"),
        (
            json!({"email": "nope", "password": PW, "name": "N"}),
            "email",
        ),
        (
            json!({"email": "a@b", "password": PW, "name": "N"}),
            "email",
        ),
        (json!({"email": 42, "password": PW, "name": "N"}), "email"),
        (json!({"email": "x@example.com", "name": "N"}), "password"),
        (
            json!({"email": "x@example.com", "password": "Sh0rt!", "name": "N"}),
            "password",
        ),
        (
            json!({"email": "x@example.com", "password": "alllowercase123!", "name": "N"}),
            "password",
        ),
        (
            json!({"email": "x@example.com", "password": "ALLUPPERCASE123!", "name": "N"}),
            "password",
        ),
        (
            json!({"email": "x@example.com", "password": "NoDigitsHere!!!", "name": "N"}),
            "password",
        ),
        (
            json!({"email": "x@example.com", "password": "NoSymbols12345", "name": "N"}),
            "password",
        ),
        (
            json!({"email": "x@example.com", "password": format!("Aa1!{}", "x".repeat(252)), "name": "N"}),
            "password",
        ),
        (json!({"email": "x@example.com", "password": PW}), "name"),
        (
            json!({"email": "x@example.com", "password": PW, "name": "   "}),
            "name",
        ),
        (
            json!({"email": "x@example.com", "password": PW, "name": "x".repeat(256)}),
            "name",
        ),
        (
            json!({"email": "x@example.com", "password": PW, "name": "a\u{0}b"}),
            "name",
        ),
        (
            json!({"email": "x@example.com", "password": PW, "name": "N", "role": "OWNER"}),
            "role",
        ),
        (
            json!({"email": "x@example.com", "password": PW, "name": "N", "deviceId": "has space"}),
            "deviceId",
        ),
        (
            json!({"email": "x@example.com", "password": PW, "name": "N", "deviceId": "x".repeat(129)}),
            "deviceId",
        ),
        (
            json!({"email": "x@example.com", "password": PW, "name": "N", "deviceName": "x".repeat(101)}),
            "deviceName",
        ),
        (
            json!({"email": "x@example.com", "password": PW, "name": "N", "deviceType": "toaster"}),
            "deviceType",
        ),
    ];
    for (body, field) in cases {
        let r = api.post("/api/auth/register", None, body.clone()).await;
        assert_eq!(
            (r.status, r.code()),
            (StatusCode::BAD_REQUEST, "VALIDATION_ERROR"),
            "{body}"
        );
        assert_eq!(r.fields(), [field], "{body}");
    }
    // All violations at once.
    let r = api.post("/api/auth/register", None, json!({})).await;
    assert_eq!(r.fields(), ["email", "password", "name"]);
    // X-Device-ID header as the fallback device id.
    let res = api
        .http
        .post(api.app.url("/api/auth/register"))
        .header("x-device-id", "hdr-device")
        .json(&json!({"email": new_email(), "password": PW, "name": "H"}))
        .send()
        .await
        .unwrap();
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["data"]["deviceId"], "hdr-device");
    // Failed requests leave nothing in the outbox.
    let created = api
        .outbox()
        .await
        .into_iter()
        .filter(|(k, _)| k == "auth.user.created")
        .count();
    assert_eq!(created, 2);
}

#[tokio::test]
async fn other_endpoint_rules_and_body_handling() {
    let api = Api::new().await;
    let email = new_email();
    let reg = api.register(&email, "d").await;
    let t = token(&reg);
    let cases: Vec<(&str, Value, &str)> = vec![
        ("/api/auth/login", json!({"password": PW}), "email"),
        (
            "/api/auth/login",
            json!({"email": email, "password": ""}),
            "password",
        ),
        (
            "/api/auth/login",
            json!({"email": email, "password": "x".repeat(256)}),
            "password",
        ),
        (
            "/api/auth/login",
            json!({"email": email, "password": 5}),
            "password",
        ),
        ("/api/auth/refresh", json!({}), "refreshToken"),
        (
            "/api/auth/refresh",
            json!({"refreshToken": "x".repeat(513)}),
            "refreshToken",
        ),
        (
            "/api/auth/logout",
            json!({"allDevices": "yes"}),
            "allDevices",
        ),
        (
            "/api/auth/devices/logout-others",
            json!({"currentDeviceId": "bad id"}),
            "currentDeviceId",
        ),
        (
            "/api/auth/password",
            json!({"newPassword": "NewPassword123!"}),
            "currentPassword",
        ),
        (
            "/api/auth/password",
            json!({"currentPassword": PW, "newPassword": "weak"}),
            "newPassword",
        ),
        (
            "/api/auth/password",
            json!({"currentPassword": PW, "newPassword": PW}),
            "newPassword",
        ),
    ];
    for (path, body, field) in cases {
        let r = api.post(path, Some(&t), body.clone()).await;
        assert_eq!(
            (r.status, r.code()),
            (StatusCode::BAD_REQUEST, "VALIDATION_ERROR"),
            "{path} {body}"
        );
        assert_eq!(r.fields(), [field], "{path} {body}");
    }
    let raw = |ct: &'static str, body: &'static [u8]| {
        api.http
            .post(api.app.url("/api/auth/login"))
            .header("content-type", ct)
            .body(body.to_vec())
            .send()
    };
    let r = raw("application/json", b"{\"email\":").await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"]["code"],
        "INVALID_JSON"
    );
    let r = raw("text/plain", b"{}").await.unwrap();
    assert_eq!(r.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let r = raw("application/json", b"[1,2]").await.unwrap();
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"]["details"][0]["field"],
        "body"
    );
    let r = raw("text/plain", b"").await.unwrap();
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"]["code"],
        "VALIDATION_ERROR",
        "empty body is {{}}"
    );
    let big = vec![b' '; 1_048_577];
    let r = api
        .http
        .post(api.app.url("/api/auth/login"))
        .header("content-type", "application/json")
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"]["code"],
        "PAYLOAD_TOO_LARGE"
    );

    // Routing errors.
    let r = api.get("/api/auth/nope", None).await;
    assert_eq!((r.status, r.code()), (StatusCode::NOT_FOUND, "NOT_FOUND"));
    assert_eq!(
        r.body["error"]["message"],
        "Route GET /api/auth/nope not found"
    );
    let r = api.get("/api/auth/login", None).await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::METHOD_NOT_ALLOWED, "METHOD_NOT_ALLOWED")
    );
    assert!(r.headers["allow"].to_str().unwrap().contains("POST"));
    // Trailing slash ignored; request id echoed on both headers.
    let res = api
        .http
        .get(api.app.url("/api/auth/me/"))
        .bearer_auth(&t)
        .header("x-request-id", "req-42")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["x-request-id"], "req-42");
    assert_eq!(res.headers()["x-correlation-id"], "req-42");
    let err = api
        .http
        .get(api.app.url("/api/auth/me"))
        .header("x-correlation-id", "corr-7")
        .send()
        .await
        .unwrap();
    assert_eq!(
        err.json::<Value>().await.unwrap()["error"]["requestId"],
        "corr-7"
    );

    // Password change: wrong current → 400 INVALID_PASSWORD; right → other sessions end.
    let other = api.login(&email, "other").await;
    let wrong = api
        .post(
            "/api/auth/password",
            Some(&t),
            json!({"currentPassword": "Nope12345678!", "newPassword": "NewPassword123!"}),
        )
        .await;
    assert_eq!(
        (wrong.status, wrong.code()),
        (StatusCode::BAD_REQUEST, "INVALID_PASSWORD")
    );
    let ok = api
        .post(
            "/api/auth/password",
            Some(&t),
            json!({"currentPassword": PW, "newPassword": "NewPassword123!"}),
        )
        .await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.body);
    assert_eq!(ok.data()["revokedSessions"], 1);
    assert_eq!(
        api.get("/api/auth/me", Some(&token(&other))).await.code(),
        "SESSION_REVOKED"
    );
    assert_eq!(
        api.get("/api/auth/me", Some(&t)).await.status,
        StatusCode::OK
    );
    let relog = api
        .post(
            "/api/auth/login",
            None,
            json!({"email": email, "password": "NewPassword123!"}),
        )
        .await;
    assert_eq!(relog.status, StatusCode::OK);
    assert!(
        uuid::Uuid::parse_str(relog.data()["deviceId"].as_str().unwrap()).is_ok(),
        "generated device id"
    );
    let keys: Vec<String> = api.outbox().await.into_iter().map(|(k, _)| k).collect();
    assert_eq!(
        keys.iter()
            .filter(|k| *k == "auth.user.password_changed")
            .count(),
        1
    );
}

fn b64(v: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap())
}

#[tokio::test]
async fn token_verification_failures() {
    let api = Api::new().await;
    let reg = api.register(&new_email(), "d").await;
    let good = token(&reg);
    let parts: Vec<&str> = good.split('.').collect();
    let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    for key in [
        "sub", "userId", "email", "name", "role", "sid", "ver", "jti", "iat", "exp", "iss", "aud",
    ] {
        assert!(claims.get(key).is_some(), "claim {key}");
    }
    assert_eq!(claims["aud"], "payplane-api");
    assert_eq!(header["alg"], "EdDSA");
    let keys = &api.app.state.keys;
    let sign = |claims: &Value| {
        let mut h = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
        h.kid = Some(keys.kid.clone());
        jsonwebtoken::encode(&h, claims, &keys.encoding).unwrap()
    };
    let mut expired = claims.clone();
    expired["exp"] = json!(chrono::Utc::now().timestamp() - 120);
    let mut wrong_aud = claims.clone();
    wrong_aud["aud"] = json!("someone-else");
    let mut wrong_iss = claims.clone();
    wrong_iss["iss"] = json!("evil");
    let mut no_sid = claims.clone();
    no_sid.as_object_mut().unwrap().remove("sid");
    let none = format!(
        "{}.{}.",
        b64(&json!({"alg": "none", "typ": "JWT", "kid": header["kid"]})),
        parts[1]
    );
    let hs = jsonwebtoken::encode(
        &jsonwebtoken::Header {
            kid: header["kid"].as_str().map(str::to_owned),
            ..jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256)
        },
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(b"secret"),
    )
    .unwrap();
    let forged = {
        let other = payplane_auth::keys::SigningKeys::ephemeral().unwrap();
        let mut h = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
        h.kid = Some(keys.kid.clone());
        jsonwebtoken::encode(&h, &claims, &other.encoding).unwrap()
    };
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        b64(&json!({"role": "ADMIN"})),
        parts[2]
    );
    let cases = [
        (sign(&expired), "TOKEN_EXPIRED"),
        (sign(&wrong_aud), "TOKEN_INVALID"),
        (sign(&wrong_iss), "TOKEN_INVALID"),
        (sign(&no_sid), "TOKEN_INVALID"),
        (none, "TOKEN_INVALID"),
        (hs, "TOKEN_INVALID"),
        (forged, "TOKEN_INVALID"),
        (tampered, "TOKEN_INVALID"),
        ("not-a-jwt".to_owned(), "TOKEN_INVALID"),
    ];
    for (t, code) in cases {
        let r = api.get("/api/auth/me", Some(&t)).await;
        assert_eq!(
            (r.status, r.code()),
            (StatusCode::UNAUTHORIZED, code),
            "{t}"
        );
        assert_eq!(
            r.headers["www-authenticate"],
            "Bearer error=\"invalid_token\""
        );
    }
    let r = api.get("/api/auth/me", None).await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::UNAUTHORIZED, "UNAUTHORIZED")
    );
    assert_eq!(r.headers["www-authenticate"], "Bearer");
    let r = api
        .http
        .get(api.app.url("/api/auth/me"))
        .header("authorization", format!("Basic {good}"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"]["code"],
        "UNAUTHORIZED"
    );
    let r = api
        .http
        .get(api.app.url("/api/auth/me"))
        .header("authorization", format!("bEaReR {good}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK, "scheme is case-insensitive");
    // Revoked.
    api.post("/api/auth/logout", Some(&good), json!({})).await;
    let r = api.get("/api/auth/me", Some(&good)).await;
    assert_eq!(r.code(), "SESSION_REVOKED");

    // JWKS publishes the verifying key, raw and cacheable.
    let jwks = api.get("/api/auth/.well-known/jwks.json", None).await;
    assert_eq!(jwks.headers["cache-control"], "public, max-age=300");
    assert_eq!(jwks.body["keys"][0]["kid"], header["kid"]);
    assert_eq!(jwks.body["keys"][0]["crv"], "Ed25519");
    assert!(jwks.body.get("success").is_none());
}

#[tokio::test]
async fn concurrent_refreshes_with_one_token_only_one_wins() {
    let api = Api::new().await;
    let reg = api.register(&new_email(), "d").await;
    let rt = refresh(&reg);
    let calls = (0..8).map(|_| api.post("/api/auth/refresh", None, json!({"refreshToken": rt})));
    let results = futures::future::join_all(calls).await;
    let ok = results
        .iter()
        .filter(|r| r.status == StatusCode::OK)
        .count();
    assert_eq!(
        ok,
        1,
        "{:?}",
        results
            .iter()
            .map(|r| r.code().to_owned())
            .collect::<Vec<_>>()
    );
    assert!(
        results
            .iter()
            .filter(|r| r.status != StatusCode::OK)
            .all(|r| r.code() == "TOKEN_INVALID")
    );
}

#[tokio::test]
async fn session_limit_evicts_the_least_recently_used() {
    let api = Api::new().await;
    let email = new_email();
    let first = api.register(&email, "dev-0").await;
    for i in 1..20 {
        assert_eq!(
            api.login(&email, &format!("dev-{i}")).await.status,
            StatusCode::OK
        );
    }
    assert_eq!(
        api.get("/api/auth/me", Some(&token(&first))).await.status,
        StatusCode::OK
    );
    api.login(&email, "dev-20").await;
    assert_eq!(
        api.get("/api/auth/me", Some(&token(&first))).await.code(),
        "SESSION_REVOKED"
    );
    let reasons: Vec<Value> = api
        .outbox()
        .await
        .into_iter()
        .filter(|(k, _)| k == "auth.session.revoked")
        .map(|(_, e)| e["data"]["reason"].clone())
        .collect();
    assert_eq!(reasons, [json!("session_limit")]);
}

#[tokio::test]
async fn internal_user_management() {
    let api = Api::new().await;
    let admin_email = new_email();
    let admin = payplane_auth::ops::bootstrap_admin(
        &api.app.db.pool,
        &api.app.state.hasher,
        &admin_email,
        "Root",
        PW,
    )
    .await
    .unwrap();
    let again = payplane_auth::ops::bootstrap_admin(
        &api.app.db.pool,
        &api.app.state.hasher,
        &new_email(),
        "Second",
        PW,
    )
    .await;
    assert!(matches!(
        again,
        Err(payplane_auth::ops::OpsError::AdminExists)
    ));
    let user_email = new_email();
    let reg = api.register(&user_email, "d").await;
    let uid: Uuid = reg.data()["user"]["id"].as_str().unwrap().parse().unwrap();

    // Credentials.
    let r = api
        .http
        .get(api.app.url(&format!("/internal/users/{uid}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = api
        .http
        .get(api.app.url(&format!("/internal/users/{uid}")))
        .header("x-service-name", "admin")
        .header("x-service-token", "wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = api
        .internal(Method::GET, &format!("/internal/users/{uid}"), None, None)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.data()["tokenVersion"], 1);
    assert!(r.data().get("passwordHash").is_none() && !r.body.to_string().contains("argon2"));
    let r = api
        .internal(
            Method::GET,
            &format!(
                "/internal/users/by-email?email={}",
                user_email.to_uppercase()
            ),
            None,
            None,
        )
        .await;
    assert_eq!(r.data()["id"], uid.to_string());
    assert_eq!(
        api.internal(Method::GET, "/internal/users/not-a-uuid", None, None)
            .await
            .code(),
        "USER_NOT_FOUND"
    );
    assert_eq!(
        api.internal(
            Method::GET,
            "/internal/users/by-email?email=bad",
            None,
            None
        )
        .await
        .status,
        StatusCode::BAD_REQUEST
    );
    let no_actor = api
        .internal(
            Method::PUT,
            &format!("/internal/users/{uid}/role"),
            None,
            Some(json!({"role": "VENDOR"})),
        )
        .await;
    assert_eq!(no_actor.fields(), ["x-actor-id"]);

    // Role change: the old token is superseded; a refresh carries the new role.
    let r = api
        .internal(
            Method::PUT,
            &format!("/internal/users/{uid}/role"),
            Some(admin.id),
            Some(json!({"role": "vendor"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(
        (r.data()["role"].clone(), r.data()["tokenVersion"].clone()),
        (json!("VENDOR"), json!(2))
    );
    let noop = api
        .internal(
            Method::PUT,
            &format!("/internal/users/{uid}/role"),
            Some(admin.id),
            Some(json!({"role": "VENDOR"})),
        )
        .await;
    assert_eq!(noop.data()["tokenVersion"], 2);
    let old = api.get("/api/auth/me", Some(&token(&reg))).await;
    assert_eq!(
        (old.status, old.code()),
        (StatusCode::UNAUTHORIZED, "TOKEN_EXPIRED")
    );
    let refreshed = api
        .post(
            "/api/auth/refresh",
            None,
            json!({"refreshToken": refresh(&reg)}),
        )
        .await;
    let claims: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(token(&refreshed).split('.').nth(1).unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        (claims["role"].clone(), claims["ver"].clone()),
        (json!("VENDOR"), json!(2))
    );
    assert_eq!(
        api.get("/api/auth/me", Some(&token(&refreshed)))
            .await
            .status,
        StatusCode::OK
    );

    // Guards: self-modification, last admin.
    let own = api
        .internal(
            Method::PUT,
            &format!("/internal/users/{}/role", admin.id),
            Some(admin.id),
            Some(json!({"role": "CUSTOMER"})),
        )
        .await;
    assert_eq!(own.code(), "SELF_MODIFICATION_FORBIDDEN");
    let last = api
        .internal(
            Method::DELETE,
            &format!("/internal/users/{}", admin.id),
            Some(uid),
            None,
        )
        .await;
    assert_eq!(last.code(), "LAST_ADMIN");
    let last = api
        .internal(
            Method::PATCH,
            &format!("/internal/users/{}/status", admin.id),
            Some(uid),
            Some(json!({"isActive": false})),
        )
        .await;
    assert_eq!(last.code(), "LAST_ADMIN");

    // Deactivation: login refused, sessions revoked.
    let d = api
        .internal(
            Method::PATCH,
            &format!("/internal/users/{uid}/status"),
            Some(admin.id),
            Some(json!({"isActive": false, "reason": "fraud"})),
        )
        .await;
    assert_eq!(
        (d.status, d.data()["isActive"].clone()),
        (StatusCode::OK, json!(false))
    );
    let login = api.login(&user_email, "d").await;
    assert_eq!(
        (login.status, login.code()),
        (StatusCode::FORBIDDEN, "ACCOUNT_DISABLED")
    );
    assert_eq!(
        api.get("/api/auth/me", Some(&token(&refreshed)))
            .await
            .code(),
        "SESSION_REVOKED"
    );
    api.internal(
        Method::PATCH,
        &format!("/internal/users/{uid}/status"),
        Some(admin.id),
        Some(json!({"isActive": true})),
    )
    .await;
    assert_eq!(api.login(&user_email, "d").await.status, StatusCode::OK);

    // Create, rename, delete.
    let created = api
        .internal(
            Method::POST,
            "/internal/users",
            Some(admin.id),
            Some(json!({"email": new_email(), "password": PW, "name": "Made", "role": "ADMIN"})),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let cid = created.data()["id"].as_str().unwrap().to_owned();
    let dup = api
        .internal(
            Method::POST,
            "/internal/users",
            Some(admin.id),
            Some(json!({"email": user_email, "password": PW, "name": "Dup"})),
        )
        .await;
    assert_eq!(dup.code(), "EMAIL_EXISTS");
    let renamed = api
        .internal(
            Method::PATCH,
            &format!("/internal/users/{cid}"),
            Some(admin.id),
            Some(json!({"name": "Renamed"})),
        )
        .await;
    assert_eq!(renamed.data()["name"], "Renamed");
    let empty = api
        .internal(
            Method::PATCH,
            &format!("/internal/users/{cid}"),
            Some(admin.id),
            Some(json!({})),
        )
        .await;
    assert_eq!(empty.fields(), ["body"]);
    let del = api
        .internal(
            Method::DELETE,
            &format!("/internal/users/{uid}"),
            Some(admin.id),
            None,
        )
        .await;
    assert_eq!(del.status, StatusCode::NO_CONTENT);
    assert_eq!(
        api.login(&user_email, "d").await.code(),
        "INVALID_CREDENTIALS"
    );

    let events = api.outbox().await;
    let deleted = events
        .iter()
        .position(|(k, _)| k == "auth.user.deleted")
        .unwrap();
    let last_revoked = events
        .iter()
        .rposition(|(k, e)| k == "auth.session.revoked" && e["data"]["reason"] == "user_deleted")
        .unwrap();
    assert!(
        last_revoked < deleted,
        "session revocations precede the deletion event"
    );
    let updated: Vec<&Value> = events
        .iter()
        .filter(|(k, _)| k == "auth.user.updated")
        .map(|(_, e)| e)
        .collect();
    assert_eq!(updated[0]["data"]["changedFields"], json!(["role"]));
    assert_eq!(updated[0]["data"]["previous"], json!({"role": "CUSTOMER"}));
    assert_eq!(updated[0]["data"]["actorType"], "admin");
    assert_eq!(updated[1]["data"]["reason"], "fraud");
}

#[tokio::test]
async fn health_metrics_and_envelope_of_events() {
    let api = Api::new().await;
    let h = api.get("/health", None).await;
    assert_eq!(
        (h.data()["status"].clone(), h.data()["service"].clone()),
        (json!("healthy"), json!("auth"))
    );
    assert_eq!(api.get("/health/live", None).await.data()["alive"], true);
    let ready = api.get("/health/ready", None).await;
    assert_eq!(ready.status, StatusCode::OK, "{}", ready.body);
    assert_eq!(ready.data()["checks"]["database"], "up");
    let reg = api.register(&new_email(), "d").await;
    api.get("/api/auth/me", Some(&token(&reg))).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    let metrics = api
        .client
        .call(Method::GET, "/metrics", None, None)
        .await
        .text;
    assert!(
        metrics.contains(
            "http_requests_total{method=\"POST\",route=\"/api/auth/register\",status=\"201\"}"
        ),
        "{metrics}"
    );
    assert!(metrics.contains("http_request_duration_seconds_bucket"));
    let res = api
        .http
        .post(api.app.url("/api/auth/login"))
        .header("x-request-id", "login-req-1")
        .header("user-agent", "tests/1.0")
        .json(&json!({"email": reg.data()["user"]["email"], "password": PW}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let (_, env) = api
        .outbox()
        .await
        .into_iter()
        .find(|(k, _)| k == "auth.user.login")
        .unwrap();
    assert_eq!(env["correlationId"], "login-req-1");
    assert_eq!(env["source"], "auth");
    assert_eq!(env["version"], "1");
    assert_eq!(env["type"], "auth.user.login");
    assert!(env.get("causationId").is_none());
    assert_eq!(env["data"]["userAgent"], "tests/1.0");
    assert_eq!(env["data"]["ipAddress"], "127.0.0.1");
    assert!(env["data"]["deviceName"].is_null());
}

#[tokio::test]
async fn other_components_verify_through_the_jwks() {
    use payplane_authn::{
        Verifier,
        jwks::RemoteKeys,
        verifier::{Keys, TokenError},
    };
    let api = Api::new().await;
    let reg = api.register(&new_email(), "d").await;
    let remote = Verifier::new("payplane", Keys::Remote(RemoteKeys::new(&api.app.base_url)));
    let claims = remote.verify(&token(&reg)).await.unwrap();
    assert_eq!(
        claims.sid.to_string(),
        reg.data()["sessionId"].as_str().unwrap()
    );
    // The same document read from a file works too.
    let path = std::env::temp_dir().join(format!("jwks-{}.json", Uuid::new_v4()));
    let jwks = api.get("/api/auth/.well-known/jwks.json", None).await.body;
    std::fs::write(&path, jwks.to_string()).unwrap();
    let local = Verifier::new("payplane", Keys::from_jwks_file(&path).unwrap());
    assert!(local.verify(&token(&reg)).await.is_ok());
    std::fs::remove_file(&path).unwrap();
    // A verifier whose auth service is unreachable answers "unavailable", not "invalid".
    let down = Verifier::new(
        "payplane",
        Keys::Remote(RemoteKeys::new("http://127.0.0.1:9")),
    );
    assert_eq!(
        down.verify(&token(&reg)).await.unwrap_err(),
        TokenError::KeysUnavailable
    );
    let wrong_issuer = Verifier::new("other", Keys::Remote(RemoteKeys::new(&api.app.base_url)));
    assert_eq!(
        wrong_issuer.verify(&token(&reg)).await.unwrap_err(),
        TokenError::Invalid
    );
}

#[tokio::test]
async fn housekeeping_removes_only_what_has_aged_out() {
    let api = Api::new().await;
    let email = new_email();
    api.register(&email, "old").await;
    let live = api.login(&email, "new").await;
    let pool = &api.app.db.pool;
    // The service runs a pass of its own at start-up; holding the pass lock while the rows are
    // staged keeps that pass (if it has not run yet) from removing them before ours counts.
    let mut holder = pool.acquire().await.unwrap();
    sqlx::query("SELECT pg_advisory_lock($1)")
        .bind(payplane_auth::housekeeping::LOCK_KEY)
        .execute(&mut *holder)
        .await
        .unwrap();
    // Age the first session's end past 30 days and the outbox past 7 days.
    sqlx::query("UPDATE sessions SET revoked_at = now() - interval '31 days', revoke_reason = 'logout' WHERE device_id = 'old'").execute(pool).await.unwrap();
    sqlx::query("UPDATE outbox SET published_at = now() - interval '8 days' WHERE routing_key = 'auth.user.created'").execute(pool).await.unwrap();
    sqlx::query("INSERT INTO login_throttle (email_hash, failed_count, last_failed_at) VALUES (sha256('x'::bytea), 1, now() - interval '2 days')")
        .execute(pool)
        .await
        .unwrap();
    assert!(
        payplane_auth::housekeeping::run_once(pool)
            .await
            .unwrap()
            .is_none(),
        "a pass waits while another holds the lock"
    );
    sqlx::query("SELECT pg_advisory_unlock($1)")
        .bind(payplane_auth::housekeeping::LOCK_KEY)
        .execute(&mut *holder)
        .await
        .unwrap();
    drop(holder);
    let removed = payplane_auth::housekeeping::run_once(pool)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (removed.sessions, removed.outbox, removed.throttle),
        (1, 1, 1)
    );
    assert_eq!(
        api.get("/api/auth/me", Some(&token(&live))).await.status,
        StatusCode::OK
    );
    let again = payplane_auth::housekeeping::run_once(pool)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(again, payplane_auth::housekeeping::Removed::default());
}

/// Password hashing is bounded: with every slot taken, a login waits the queue timeout and gets
/// 503 `SERVICE_UNAVAILABLE`; registering a taken email is refused without hashing at all; and
/// queued work proceeds once a slot frees.
#[tokio::test]
async fn hashing_slots_bound_logins_and_taken_emails_skip_the_hash() {
    let api = Api::with(|c| {
        c.hash_limits = payplane_auth::password::HashLimits {
            concurrent: 1,
            queue_timeout: Duration::from_millis(300),
        };
    })
    .await;
    let email = new_email();
    api.register(&email, "d").await;

    let held = api.app.state.hasher.slot().await.expect("the only slot");
    let busy = api.login(&email, "d").await;
    assert_eq!(
        (busy.status, busy.code()),
        (StatusCode::SERVICE_UNAVAILABLE, "SERVICE_UNAVAILABLE"),
        "{}",
        busy.body
    );
    assert_eq!(busy.headers["retry-after"], "1");
    // Not a failed attempt: the throttle did not count it.
    let row: Option<i32> = sqlx::query_scalar("SELECT failed_count FROM login_throttle")
        .fetch_optional(&api.app.db.pool)
        .await
        .unwrap();
    assert_eq!(row.unwrap_or(0), 0);
    // A taken email is answered 409 while no hash could run: the check came first.
    let dup = api
        .post(
            "/api/auth/register",
            None,
            json!({"email": email, "password": PW, "name": "Test User"}),
        )
        .await;
    assert_eq!(
        (dup.status, dup.code()),
        (StatusCode::CONFLICT, "EMAIL_EXISTS")
    );
    // A new email does need the hash, so it is refused the same way.
    let fresh = api
        .post(
            "/api/auth/register",
            None,
            json!({"email": new_email(), "password": PW, "name": "Test User"}),
        )
        .await;
    assert_eq!(fresh.status, StatusCode::SERVICE_UNAVAILABLE);

    // Queued: a login started while the slot is held completes once it is released.
    let queued = {
        let (http, url) = (api.http.clone(), api.app.url("/api/auth/login"));
        let body = json!({"email": email, "password": PW, "deviceId": "d"});
        tokio::spawn(async move { http.post(url).json(&body).send().await.unwrap().status() })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    drop(held);
    assert_eq!(queued.await.unwrap(), StatusCode::OK);
}

/// Logins waiting for a hashing slot hold no database connection: with more of them queued than
/// the pool has connections (20), `GET /me` and refresh still answer at once. Were the hash
/// inside the login's transaction, the queue would hold the pool and they would wait out the
/// pool's 1 s acquire timeout and fail.
#[tokio::test]
async fn logins_queued_for_a_hash_leave_the_database_pool_to_others() {
    let api = Api::with(|c| {
        c.hash_limits = payplane_auth::password::HashLimits {
            concurrent: 1,
            queue_timeout: Duration::from_secs(10),
        };
    })
    .await;
    let email = new_email();
    let reg = api.register(&email, "d").await;
    let access = reg.data()["accessToken"].as_str().unwrap().to_owned();
    let refresh = reg.data()["refreshToken"].as_str().unwrap().to_owned();

    let held = api.app.state.hasher.slot().await.expect("the only slot");
    let queued: Vec<_> = (0..30)
        .map(|i| {
            let (http, url) = (api.http.clone(), api.app.url("/api/auth/login"));
            let body = json!({"email": email, "password": PW, "deviceId": format!("q{i}")});
            tokio::spawn(async move { http.post(url).json(&body).send().await.unwrap().status() })
        })
        .collect();
    // Every queued login has read its user and is waiting for the slot.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let me = api.get("/api/auth/me", Some(&access)).await;
    assert_eq!(me.status, StatusCode::OK, "{}", me.body);
    let rotated = api
        .post(
            "/api/auth/refresh",
            None,
            json!({ "refreshToken": refresh }),
        )
        .await;
    assert_eq!(rotated.status, StatusCode::OK, "{}", rotated.body);
    drop(held);
    for q in queued {
        assert_eq!(q.await.unwrap(), StatusCode::OK);
    }
}
