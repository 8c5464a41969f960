//! Shared by the payments integration tests: the payments service with a real in-process
//! auth service (tokens, the internal user endpoint), users made through auth, and the two
//! ways in that are not the public API: the signed PSP webhook and one delivery of an
//! `auth.user.*` event to the consumer's step function.

#![allow(
    dead_code,
    reason = "shared by several test binaries, each using a subset"
)]

use std::time::Duration;

use payplane_bus::consumer::{Outcome, RawMessage, handle_one};
use payplane_kit::service::testing::http::{Res, ServiceClient, request};
use payplane_payments::{
    config::PspMode, events::UserEvents, routes::webhook::sign, testing::TestApp,
};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

pub const PW: &str = "TestPassword123!";

/// Fresh payments and auth services and the clients the tests call them with.
pub struct Api {
    pub app: TestApp,
    pub http: reqwest::Client,
    pub client: ServiceClient,
}

/// A user registered through auth, with an access token.
#[derive(Clone)]
pub struct User {
    pub id: String,
    pub email: String,
    pub token: String,
}

/// The simulator on, with short delays.
pub fn fast_sim(c: &mut payplane_payments::Config) {
    c.pickup_delay = Duration::from_millis(300);
    c.settle_delay = Duration::from_millis(300);
    c.sim_poll_interval = Duration::from_millis(100);
}

/// No simulator: payments stay where the test puts them.
pub fn no_sim(c: &mut payplane_payments::Config) {
    c.psp_mode = PspMode::External;
}

impl Api {
    pub async fn new(tweak: impl FnOnce(&mut payplane_payments::Config)) -> Self {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let app = TestApp::spawn_with(|_| {}, tweak).await.expect("spawn");
        Self {
            client: ServiceClient::new(&app.base_url),
            http: reqwest::Client::new(),
            app,
        }
    }

    pub async fn raw(
        &self,
        method: Method,
        url: String,
        token: Option<&str>,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> Res {
        let mut req = request(&self.http, method, &url, token, None);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        Res::of(req).await.expect("request")
    }

    pub async fn get(&self, path: &str, u: &User) -> Res {
        self.client
            .call(Method::GET, path, Some(&u.token), None)
            .await
    }

    pub async fn create(&self, u: &User, body: Value) -> Res {
        self.client
            .call(Method::POST, "/api/payments", Some(&u.token), Some(body))
            .await
    }

    pub async fn register(&self, role: &str) -> User {
        let email = format!(
            "u{}@example.com",
            &Uuid::new_v4().simple().to_string()[..12]
        );
        let r = self
            .raw(
                Method::POST,
                self.app.auth.url("/api/auth/register"),
                None,
                Some(json!({"email": email, "password": PW, "name": format!("{role} {email}"), "role": role})),
                &[],
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        User {
            id: r.data()["user"]["id"].as_str().unwrap().to_owned(),
            email,
            token: r.data()["accessToken"].as_str().unwrap().to_owned(),
        }
    }

    pub async fn admin(&self) -> User {
        let email = format!(
            "a{}@example.com",
            &Uuid::new_v4().simple().to_string()[..12]
        );
        let actor = Uuid::new_v4().to_string();
        let r = self
            .raw(
                Method::POST,
                self.app.auth.url("/internal/users"),
                None,
                Some(json!({"email": email, "password": PW, "name": "Admin", "role": "ADMIN"})),
                &[
                    ("x-service-name", "admin"),
                    ("x-service-token", "dev-service-token"),
                    ("x-actor-id", &actor),
                ],
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        let login = self
            .raw(
                Method::POST,
                self.app.auth.url("/api/auth/login"),
                None,
                Some(json!({"email": email, "password": PW})),
                &[],
            )
            .await;
        assert_eq!(login.status, StatusCode::OK, "{}", login.body);
        User {
            id: r.data()["id"].as_str().unwrap().to_owned(),
            email,
            token: login.data()["accessToken"].as_str().unwrap().to_owned(),
        }
    }

    /// One user per role, registered in order (`ADMIN` through auth's internal endpoint).
    pub async fn users<const N: usize>(&self, roles: [&str; N]) -> [User; N] {
        let mut users = Vec::with_capacity(N);
        for role in roles {
            users.push(if role == "ADMIN" {
                self.admin().await
            } else {
                self.register(role).await
            });
        }
        users
            .try_into()
            .unwrap_or_else(|_| unreachable!("one user per role"))
    }

    pub async fn outbox(&self) -> Vec<(String, Value)> {
        payplane_bus::outbox::all_rows(&self.app.db.pool)
            .await
            .unwrap()
    }

    pub async fn webhook(&self, body: &Value, signature: Option<String>) -> Res {
        let bytes = serde_json::to_vec(body).unwrap();
        let mut req = self
            .http
            .post(self.app.url("/api/payments/webhooks/psp"))
            .header("content-type", "application/json")
            .body(bytes);
        if let Some(sig) = signature {
            req = req.header("psp-signature", sig);
        }
        Res::of(req).await.unwrap()
    }

    pub async fn signed_webhook(&self, body: &Value) -> Res {
        let bytes = serde_json::to_vec(body).unwrap();
        let sig = sign("whsec_test", chrono::Utc::now().timestamp(), &bytes);
        self.webhook(body, Some(sig)).await
    }
}

/// The answer is the API's refusal `code` with `status`.
pub fn assert_refused(r: &Res, status: StatusCode, code: &str) {
    assert_eq!((r.status, r.code()), (status, code), "{}", r.body);
}

/// One delivery of `body` to the consumer's step function, as the broker would hand it over.
pub async fn deliver(api: &Api, handler: &UserEvents, body: &[u8]) -> Outcome {
    handle_one(
        &api.app.db.pool,
        "payments.events",
        handler,
        RawMessage {
            body,
            headers: None,
        },
    )
    .await
}

/// The API's timestamp form: RFC 3339, milliseconds, `Z`.
pub fn timestamp(at: chrono::DateTime<chrono::Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}
