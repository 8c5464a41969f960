#![expect(clippy::unwrap_used, clippy::expect_used, reason = "tests")]
//! Revocation survives Redis losing its data (api.md §2.4): with a Redis of this test's own
//! (so flushing it disturbs no other test), a logged-out session's token and a deleted user's
//! token are never accepted — not right after `FLUSHALL`, not while the markers are rebuilt —
//! and are refused as revoked again once the auth database has been replayed into Redis.

use std::{
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use payplane_auth::testing::TestApp;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

const PW: &str = "TestPassword123!";

/// A redis-server on a free loopback port, without persistence, stopped on drop.
struct PrivateRedis {
    child: Child,
    url: String,
}

impl PrivateRedis {
    fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server (installed by .ci/setup)");
        let url = format!("redis://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "private redis did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Self { child, url }
    }

    async fn flushall(&self) {
        let client = redis::Client::open(self.url.as_str()).unwrap();
        let mut conn = client.get_multiplexed_async_connection().await.unwrap();
        let () = redis::cmd("FLUSHALL").query_async(&mut conn).await.unwrap();
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn call(
    http: &reqwest::Client,
    app: &TestApp,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
    internal: bool,
) -> (StatusCode, Value) {
    let mut req = http.request(method, app.url(path));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if internal {
        req = req
            .header("x-service-name", "admin")
            .header("x-service-token", "dev-service-token")
            .header("x-actor-id", Uuid::new_v4().to_string());
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let res = req.send().await.unwrap();
    let status = res.status();
    (status, res.json().await.unwrap_or(Value::Null))
}

/// Calls `/api/auth/me` with `token` until it is refused as revoked (401), failing at once if
/// it is ever accepted; returns how long the refusal was a 503 (markers being rebuilt).
async fn never_accepted(http: &reqwest::Client, app: &TestApp, token: &str) -> Duration {
    let started = Instant::now();
    let mut unavailable = Duration::ZERO;
    loop {
        let t = Instant::now();
        let (status, body) = call(
            http,
            app,
            Method::GET,
            "/api/auth/me",
            Some(token),
            None,
            false,
        )
        .await;
        match status {
            StatusCode::UNAUTHORIZED => return unavailable,
            StatusCode::SERVICE_UNAVAILABLE => unavailable += t.elapsed(),
            other => panic!("a revoked token got {other}: {body}"),
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "markers were not rebuilt within 10 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn revoked_and_deleted_users_tokens_stay_refused_across_a_redis_flush() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let redis = PrivateRedis::start();
    let url = redis.url.clone();
    let app = TestApp::spawn_with(move |c| c.redis_url = url)
        .await
        .unwrap();
    let http = reqwest::Client::new();

    // A session that logged out, and a user that was deleted (cascading its sessions).
    let mut tokens = Vec::new();
    for _ in 0..2 {
        let email = format!("u-{}@example.com", Uuid::new_v4().simple());
        let (status, body) = call(
            &http,
            &app,
            Method::POST,
            "/api/auth/register",
            None,
            Some(json!({"email": email, "password": PW, "name": "R"})),
            false,
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        tokens.push((
            body["data"]["accessToken"].as_str().unwrap().to_owned(),
            body["data"]["user"]["id"].as_str().unwrap().to_owned(),
        ));
    }
    let (logged_out, _) = &tokens[0];
    let (deleted, deleted_id) = &tokens[1];
    let (status, _) = call(
        &http,
        &app,
        Method::POST,
        "/api/auth/logout",
        Some(logged_out),
        Some(json!({})),
        false,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = call(
        &http,
        &app,
        Method::DELETE,
        &format!("/internal/users/{deleted_id}"),
        None,
        None,
        true,
    )
    .await;
    assert!(status.is_success(), "{status} {body}");
    for t in [logged_out, deleted] {
        let (status, body) = call(
            &http,
            &app,
            Method::GET,
            "/api/auth/me",
            Some(t),
            None,
            false,
        )
        .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    }

    // Redis loses everything (a restart of a Redis that keeps nothing on disk).
    redis.flushall().await;
    let a = never_accepted(&http, &app, logged_out).await;
    let b = never_accepted(&http, &app, deleted).await;
    println!(
        "revocation after FLUSHALL: refused throughout, 503 for {a:?} then 401; deleted user: 503 for {b:?}"
    );
    // A second flush some time later: still never accepted.
    tokio::time::sleep(Duration::from_millis(700)).await;
    redis.flushall().await;
    never_accepted(&http, &app, deleted).await;
    app.stop().await;
}
