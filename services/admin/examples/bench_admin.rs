//! Admin service bench against the real auth service, PostgreSQL, RabbitMQ and Redis in one
//! process: (1) event latency, registration committed in auth → user row in the admin read
//! model (relay → broker → consumer → commit); (2) HTTP latency of the directory and audit
//! queries with that data loaded.
//!
//! `cargo run --release -p payplane-admin --example bench_admin [users] [requests]`
#![expect(clippy::unwrap_used, clippy::expect_used, reason = "bench harness")]

use std::time::{Duration, Instant};

use payplane_admin::testing::TestApp as AdminApp;
use payplane_auth::testing::TestApp as AuthApp;
use payplane_bus::sandbox::Sandbox;
use payplane_events::topology::ADMIN_EVENTS;
use payplane_kit::service::testing::http::Res;
use serde_json::json;
use uuid::Uuid;

/// The `p` quantile of an ascending sample, in milliseconds.
fn pct(sorted: &[f64], p: f64) -> f64 {
    payplane_kit::bench::percentile(sorted, p).unwrap_or(f64::NAN)
}

fn summary(name: &str, v: &[Duration]) {
    let mut v: Vec<f64> = v.iter().map(|d| d.as_secs_f64() * 1000.0).collect();
    v.sort_by(f64::total_cmp);
    println!(
        "{name}: n={} p50 {:.1} ms p95 {:.1} ms p99 {:.1} ms max {:.1} ms",
        v.len(),
        pct(&v, 0.5),
        pct(&v, 0.95),
        pct(&v, 0.99),
        pct(&v, 1.0)
    );
}

#[tokio::main]
async fn main() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let mut args = std::env::args().skip(1);
    let users: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(200);
    let requests: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(500);
    let sandbox = Sandbox::create("admin_bench").await.expect("sandbox");
    let conn = payplane_bus::conn::connect(&sandbox.amqp_url, "bench-setup")
        .await
        .unwrap();
    let ch = conn.create_channel().await.unwrap();
    payplane_bus::topology::declare_consumer(&ch, &ADMIN_EVENTS)
        .await
        .unwrap();
    let amqp = sandbox.amqp_url.clone();
    let auth = AuthApp::spawn_with(|c| {
        c.amqp_url = amqp;
        c.relay_enabled = true;
    })
    .await
    .unwrap();
    let admin = AdminApp::spawn(&auth.base_url, &sandbox.amqp_url)
        .await
        .unwrap();
    let http = reqwest::Client::new();
    let root_email = format!("root-{}@example.com", Uuid::new_v4().simple());
    payplane_auth::ops::bootstrap_admin(
        &auth.db.pool,
        &auth.state.hasher,
        &root_email,
        "Root",
        "TestPassword123!",
    )
    .await
    .unwrap();
    let creds = json!({"email": root_email, "password": "TestPassword123!", "deviceId": "bench"});
    let login = Res::of(http.post(auth.url("/api/auth/login")).json(&creds))
        .await
        .unwrap()
        .body;
    let token = login["data"]["accessToken"].as_str().unwrap().to_owned();

    // (1) Registration committed in auth → visible in the admin read model.
    let mut lat = Vec::with_capacity(users);
    for i in 0..users {
        let email = format!("bench-{i}-{}@example.com", Uuid::new_v4().simple());
        let name = format!("Bench User {i}");
        let signup = json!({"email": email, "password": "TestPassword123!", "name": name});
        let r = Res::of(http.post(auth.url("/api/auth/register")).json(&signup))
            .await
            .unwrap()
            .body;
        let committed = Instant::now();
        let id: Uuid = r["data"]["user"]["id"].as_str().unwrap().parse().unwrap();
        loop {
            let seen: bool =
                sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM users WHERE id = $1)")
                    .bind(id)
                    .fetch_one(&admin.db.pool)
                    .await
                    .unwrap();
            if seen {
                lat.push(committed.elapsed());
                break;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
    summary("auth register → admin read model", &lat);

    // (2) Query latency with the data loaded (sequential, one client).
    for (name, path) in [
        (
            "GET /api/admin/users?search=bench&sort=name",
            "/api/admin/users?search=bench&sort=name&limit=20",
        ),
        (
            "GET /api/admin/audit-logs?action=USER_REGISTERED",
            "/api/admin/audit-logs?action=USER_REGISTERED&limit=20",
        ),
        ("GET /api/admin/dashboard", "/api/admin/dashboard"),
    ] {
        let mut v = Vec::with_capacity(requests);
        for _ in 0..requests {
            let t = Instant::now();
            let res = http
                .get(admin.url(path))
                .bearer_auth(&token)
                .send()
                .await
                .unwrap();
            assert!(res.status().is_success(), "{path}: {}", res.status());
            let _ = res.bytes().await.unwrap();
            v.push(t.elapsed());
        }
        summary(name, &v);
    }
    admin.stop().await;
    auth.stop().await;
}
