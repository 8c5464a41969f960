//! Shared fixture: a broker sandbox vhost, the real auth service (relay on) and the admin
//! service (relay and consumer on) in this process, plus a bootstrapped root ADMIN.

#![allow(
    dead_code,
    reason = "each test binary uses a different part of the fixture"
)]

use std::{future::Future, time::Duration};

use payplane_admin::{Config, events::AdminEvents, testing::TestApp as AdminApp};
use payplane_auth::testing::TestApp as AuthApp;
use payplane_bus::{
    consumer::{Outcome, RawMessage, handle_one},
    sandbox::Sandbox,
};
use payplane_events::topology::ADMIN_EVENTS;
pub use payplane_kit::service::testing::http::Res;
use payplane_kit::service::testing::http::request;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;

pub const PW: &str = "TestPassword123!";

pub struct World {
    pub sandbox: Sandbox,
    pub auth: AuthApp,
    pub admin: AdminApp,
    pub http: reqwest::Client,
    pub root_id: Uuid,
    pub root_email: String,
    pub root: String,
}

pub fn new_email() -> String {
    format!("user-{}@example.com", Uuid::new_v4().simple())
}

/// Polls `check` every 25 ms until it returns `Some`, failing after `within`.
pub async fn eventually<T, F, Fut>(what: &str, within: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {within:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

impl World {
    pub async fn new() -> Self {
        Self::with(|_| {}).await
    }

    pub async fn with(tweak: impl FnOnce(&mut Config)) -> Self {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let sandbox = Sandbox::create("admin_it").await.expect("sandbox");
        // The admin.events queue and its `#` binding exist before anything publishes, so no
        // event of the test is dropped by the broker for lack of a route.
        let conn = payplane_bus::conn::connect(&sandbox.amqp_url, "admin-test-setup")
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
        let admin = AdminApp::spawn_with(&auth.base_url, &sandbox.amqp_url, tweak)
            .await
            .expect("spawn admin");
        let root_email = new_email();
        let user = payplane_auth::ops::bootstrap_admin(
            &auth.db.pool,
            &auth.state.hasher,
            &root_email,
            "Root Admin",
            PW,
        )
        .await
        .expect("bootstrap admin");
        let mut world = World {
            sandbox,
            auth,
            admin,
            http: reqwest::Client::new(),
            root_id: user.id,
            root_email: root_email.clone(),
            root: String::new(),
        };
        let login = world.login(&root_email).await;
        assert_eq!(login.status, StatusCode::OK, "{}", login.body);
        world.root = token(&login);
        // The root admin reaches the read model through its auth.user.created event.
        world.wait_listed(world.root_id).await;
        world
    }

    pub async fn call(
        &self,
        method: Method,
        url: String,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Res {
        let req = request(&self.http, method, &url, token, body.as_ref());
        Res::of(req).await.expect("request")
    }

    /// A call to the admin service as the root admin.
    pub async fn admin(&self, method: Method, path: &str, body: Option<Value>) -> Res {
        self.call(method, self.admin.url(path), Some(&self.root), body)
            .await
    }

    /// Deactivates user `id` as the root admin.
    pub async fn deactivate(&self, id: impl std::fmt::Display) -> Res {
        let path = format!("/api/admin/users/{id}/status");
        let body = json!({"isActive": false});
        self.admin(Method::PATCH, &path, Some(body)).await
    }

    /// A call to the admin service as the root admin that must succeed with 200.
    pub async fn admin_ok(&self, method: Method, path: &str, body: Option<Value>) -> Res {
        let r = self.admin(method.clone(), path, body).await;
        assert_eq!(r.status, StatusCode::OK, "{method} {path}: {}", r.body);
        r
    }

    /// A call to the admin service as the root admin that must be refused with `status` and
    /// the error `code`.
    pub async fn admin_refused(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        (status, code): (StatusCode, &str),
    ) {
        let r = self.admin(method.clone(), path, body).await;
        assert_eq!((r.status, r.code()), (status, code), "{method} {path}");
    }

    pub async fn admin_as(
        &self,
        token: &str,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Res {
        self.call(method, self.admin.url(path), Some(token), body)
            .await
    }

    pub async fn get(&self, path: &str) -> Res {
        self.admin(Method::GET, path, None).await
    }

    pub async fn auth_post(&self, path: &str, token: Option<&str>, body: Value) -> Res {
        self.call(Method::POST, self.auth.url(path), token, Some(body))
            .await
    }

    pub async fn me(&self, token: &str) -> Res {
        self.call(
            Method::GET,
            self.auth.url("/api/auth/me"),
            Some(token),
            None,
        )
        .await
    }

    pub async fn register(&self, email: &str) -> Res {
        let r = self
            .auth_post(
                "/api/auth/register",
                None,
                json!({"email": email, "password": PW, "name": "Test User", "deviceId": "dev-1"}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        r
    }

    pub async fn login(&self, email: &str) -> Res {
        self.auth_post(
            "/api/auth/login",
            None,
            json!({"email": email, "password": PW, "deviceId": "dev-1"}),
        )
        .await
    }

    /// Creates a user through the admin API.
    pub async fn create_user(&self, email: &str, name: &str, role: &str) -> Uuid {
        let r = self
            .admin(
                Method::POST,
                "/api/admin/users",
                Some(json!({"email": email, "password": PW, "name": name, "role": role})),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        r.data()["id"].as_str().unwrap().parse().unwrap()
    }

    /// Audit entries matching `query` (first page of up to 100).
    pub async fn audit(&self, query: &str) -> Vec<Value> {
        let r = self
            .get(&format!("/api/admin/audit-logs?limit=100&{query}"))
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        r.data()["data"].as_array().unwrap().clone()
    }

    /// Waits until the read model lists `id` (from the events).
    pub async fn wait_listed(&self, id: Uuid) {
        eventually(
            "the user in the directory",
            Duration::from_secs(5),
            || async {
                let r = self.get(&format!("/api/admin/users/{id}")).await;
                (r.status == StatusCode::OK).then_some(())
            },
        )
        .await;
    }

    /// Waits until the admin consumer has processed `n` events with `routing_key`.
    pub async fn wait_processed(&self, routing_key: &str, n: i64) {
        eventually(routing_key, Duration::from_secs(10), || async {
            let count: i64 =
                sqlx::query_scalar("SELECT count(*) FROM processed_events WHERE routing_key = $1")
                    .bind(routing_key)
                    .fetch_one(&self.admin.db.pool)
                    .await
                    .unwrap();
            (count >= n).then_some(())
        })
        .await;
    }
}

/// The string `key` of each of `items`, in order.
pub fn strings<'a>(items: impl IntoIterator<Item = &'a Value>, key: &str) -> Vec<String> {
    items
        .into_iter()
        .map(|item| item[key].as_str().unwrap().to_owned())
        .collect()
}

pub fn token(r: &Res) -> String {
    r.data()["accessToken"].as_str().unwrap().to_owned()
}

pub fn refresh_token(r: &Res) -> String {
    r.data()["refreshToken"].as_str().unwrap().to_owned()
}

/// An `admin.events` delivery of `key` with `data`: its id and its body.
pub fn envelope(key: &str, data: &Value) -> (Uuid, Vec<u8>) {
    let id = Uuid::new_v4();
    let body = json!({
        "id": id, "type": key, "version": "1", "timestamp": "2026-03-01T10:00:03.512Z",
        "source": key.split('.').next().unwrap(), "correlationId": "corr-1", "data": data,
    });
    (id, serde_json::to_vec(&body).unwrap())
}

/// Hands `key` with `data` to the `admin.events` handler's database step, as the consumer
/// does; the event's id and the outcome.
pub async fn deliver(pool: &PgPool, key: &str, data: &Value) -> (Uuid, Outcome) {
    let (id, body) = envelope(key, data);
    let outcome = handle_one(
        pool,
        "admin.events",
        &AdminEvents,
        RawMessage {
            body: &body,
            headers: None,
        },
    )
    .await;
    (id, outcome)
}
