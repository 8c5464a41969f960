//! Shared by the profile integration tests: the real auth service and the profile service in
//! one process, each on its own fresh database, with a random Redis key prefix and (for bus
//! tests) one sandbox vhost shared by auth's relay and profile's consumer and relay.

#![allow(
    dead_code,
    reason = "shared by several test binaries, each using a subset"
)]

use std::time::{Duration, Instant};

use payplane_bus::sandbox::Sandbox;
pub use payplane_kit::service::testing::http::Res;
use payplane_kit::service::testing::http::ServiceClient;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

pub const PW: &str = "TestPassword123!";

pub struct Stack {
    pub profile: payplane_profile::testing::TestApp,
    pub auth: payplane_auth::testing::TestApp,
    pub http: reqwest::Client,
    /// Requests to profile.
    pub client: ServiceClient,
    /// Dropped last: deleting the vhost closes the services' broker connections.
    pub sandbox: Option<Sandbox>,
}

pub struct User {
    pub id: Uuid,
    pub token: String,
}

impl Stack {
    fn of(
        auth: payplane_auth::testing::TestApp,
        profile: payplane_profile::testing::TestApp,
        sandbox: Option<Sandbox>,
    ) -> Self {
        Self {
            client: ServiceClient::new(&profile.base_url),
            http: reqwest::Client::new(),
            profile,
            auth,
            sandbox,
        }
    }

    /// Auth and profile without a broker: profiles appear lazily.
    pub async fn local() -> Self {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let auth = payplane_auth::testing::TestApp::spawn()
            .await
            .expect("spawn auth");
        let profile = payplane_profile::testing::TestApp::spawn(&auth.base_url)
            .await
            .expect("spawn profile");
        Self::of(auth, profile, None)
    }

    /// Auth's relay, profile's relay and consumer on one fresh vhost.
    pub async fn on_bus() -> Self {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let sandbox = Sandbox::create("profile").await.expect("sandbox");
        let amqp = sandbox.amqp_url.clone();
        let auth = payplane_auth::testing::TestApp::spawn_with(|c| {
            c.amqp_url.clone_from(&amqp);
            c.relay_enabled = true;
        })
        .await
        .expect("spawn auth");
        let profile = payplane_profile::testing::TestApp::spawn_on_bus(&auth.base_url, &amqp)
            .await
            .expect("spawn profile");
        Self::of(auth, profile, Some(sandbox))
    }

    pub async fn send(&self, req: reqwest::RequestBuilder) -> Res {
        Res::of(req).await.expect("request")
    }

    pub async fn get(&self, path: &str, token: &str) -> Res {
        self.client.call(Method::GET, path, Some(token), None).await
    }

    pub async fn put(&self, path: &str, token: &str, body: Value) -> Res {
        self.client
            .call(Method::PUT, path, Some(token), Some(body))
            .await
    }

    /// Registers a new user in auth.
    pub async fn register(&self) -> User {
        let email = format!("u{}@example.com", Uuid::new_v4().simple());
        let res = self
            .send(self.http.post(self.auth.url("/api/auth/register")).json(
                &json!({"email": email, "password": PW, "name": "Profile Tester", "deviceId": "d1"}),
            ))
            .await;
        assert_eq!(res.status, StatusCode::CREATED, "{}", res.body);
        User {
            id: res.data()["user"]["id"].as_str().unwrap().parse().unwrap(),
            token: res.data()["accessToken"].as_str().unwrap().to_owned(),
        }
    }

    /// Deletes a user through auth's internal endpoint, as the admin service does.
    pub async fn delete_in_auth(&self, user: Uuid) {
        let res = self
            .send(
                self.http
                    .delete(self.auth.url(&format!("/internal/users/{user}")))
                    .header("x-service-name", "admin")
                    .header("x-service-token", "dev-service-token")
                    .header("x-actor-id", Uuid::new_v4().to_string()),
            )
            .await;
        assert_eq!(res.status, StatusCode::NO_CONTENT, "{}", res.body);
    }

    /// The stored profile row of `user` as JSON (its columns as keys), if any.
    pub async fn profile_row(&self, user: Uuid) -> Option<Value> {
        sqlx::query_scalar("SELECT to_jsonb(p) FROM user_profiles p WHERE p.user_id = $1")
            .bind(user)
            .fetch_optional(&self.profile.db.pool)
            .await
            .unwrap()
    }

    /// The stored profile row's id, if any.
    pub async fn profile_id(&self, user: Uuid) -> Option<Uuid> {
        let row = self.profile_row(user).await?;
        row["id"].as_str()?.parse().ok()
    }

    /// Every `profile.profile.updated` envelope written to the outbox, in order.
    pub async fn outbox(&self) -> Vec<Value> {
        sqlx::query_scalar("SELECT envelope FROM outbox ORDER BY seq")
            .fetch_all(&self.profile.db.pool)
            .await
            .unwrap()
    }
}

/// Polls `check` every 10 ms until it holds; returns how long that took, or panics after `limit`.
pub async fn within<F, Fut>(what: &str, limit: Duration, mut check: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let started = Instant::now();
    loop {
        if check().await {
            return started.elapsed();
        }
        assert!(started.elapsed() < limit, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
