//! Profile service load: the real auth service (cheap test argon2) and the profile service in
//! this process on throwaway databases, driven over HTTP by concurrent clients on the same
//! machine. Phases: cached reads (`GET /api/profile`, served from Redis), uncached reads (a
//! fresh cache prefix per request is not possible over HTTP, so each read follows a version bump
//! made directly in Redis), and writes (`PUT /api/profile`, one transaction with its
//! outbox row, then the bump).
//!
//! `cargo run --release -p payplane-profile --example bench_profile [-- <seconds> <concurrency>]`
#![expect(clippy::unwrap_used, clippy::expect_used, reason = "bench binary")]

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use payplane_kit::service::testing::http::Res;
use serde_json::json;
use uuid::Uuid;

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    CachedRead,
    UncachedRead,
    Write,
}

struct Phase {
    ok: usize,
    failed: usize,
    elapsed: Duration,
    latencies_ms: Vec<f64>,
}

#[expect(
    clippy::cast_precision_loss,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    reason = "report arithmetic on small counts"
)]
impl Phase {
    fn line(&self, name: &str) -> String {
        let mut l = self.latencies_ms.clone();
        l.sort_by(f64::total_cmp);
        let pct = |p: f64| {
            if l.is_empty() {
                0.0
            } else {
                l[(((l.len() - 1) as f64) * p).round() as usize]
            }
        };
        format!(
            "{name}: {} ok, {} failed in {:.1} s = {:.0}/s p50 {:.2} ms p99 {:.2} ms",
            self.ok,
            self.failed,
            self.elapsed.as_secs_f64(),
            self.ok as f64 / self.elapsed.as_secs_f64(),
            pct(0.50),
            pct(0.99),
        )
    }
}

async fn phase(
    kind: Kind,
    seconds: u64,
    users: &Arc<Vec<(Uuid, String)>>,
    profile: &Arc<payplane_profile::testing::TestApp>,
    concurrency: usize,
) -> Phase {
    let http = reqwest::Client::new();
    let started = Instant::now();
    let deadline = started + Duration::from_secs(seconds);
    let tasks = (0..concurrency).map(|worker| {
        let (http, users, profile) = (http.clone(), Arc::clone(users), Arc::clone(profile));
        tokio::spawn(async move {
            let (mut ok, mut failed, mut lat) = (0, 0, Vec::new());
            let mut i = worker;
            while Instant::now() < deadline {
                let (uid, token) = &users[i % users.len()];
                i += concurrency;
                if kind == Kind::UncachedRead {
                    profile.state.cache.bump(*uid).await;
                }
                let t0 = Instant::now();
                let req = if kind == Kind::Write {
                    // A new value every time, so every request writes and emits.
                    http.put(profile.url("/api/profile"))
                        .json(&json!({"bio": format!("bench {i}")}))
                } else {
                    http.get(profile.url("/api/profile"))
                };
                let res = req.bearer_auth(token).send().await;
                let good = matches!(&res, Ok(r) if r.status().is_success());
                if let Ok(r) = res {
                    let _ = r.bytes().await;
                }
                lat.push(t0.elapsed().as_secs_f64() * 1000.0);
                if good { ok += 1 } else { failed += 1 }
            }
            (ok, failed, lat)
        })
    });
    let mut out = Phase {
        ok: 0,
        failed: 0,
        elapsed: Duration::ZERO,
        latencies_ms: Vec::new(),
    };
    for t in futures::future::join_all(tasks).await {
        let (ok, failed, lat) = t.unwrap();
        out.ok += ok;
        out.failed += failed;
        out.latencies_ms.extend(lat);
    }
    out.elapsed = started.elapsed();
    out
}

#[tokio::main]
async fn main() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let args: Vec<String> = std::env::args().collect();
    let seconds: u64 = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(5);
    let concurrency: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(16);
    let auth = payplane_auth::testing::TestApp::spawn()
        .await
        .expect("auth");
    let profile = Arc::new(
        payplane_profile::testing::TestApp::spawn(&auth.base_url)
            .await
            .expect("profile"),
    );
    let http = reqwest::Client::new();
    let mut users = Vec::new();
    for _ in 0..50 {
        let email = format!("b{}@example.com", Uuid::new_v4().simple());
        let signup = json!({"email": email, "password": "BenchPassword123!", "name": "Bench"});
        let body = Res::of(http.post(auth.url("/api/auth/register")).json(&signup))
            .await
            .unwrap()
            .body;
        let id = body["data"]["user"]["id"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        let token = body["data"]["accessToken"].as_str().unwrap().to_owned();
        // Create and cache every profile before measuring.
        http.get(profile.url("/api/profile"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        users.push((id, token));
    }
    let users = Arc::new(users);
    println!("profile bench: {concurrency} clients, {seconds} s per phase, 50 users");
    let cached = phase(Kind::CachedRead, seconds, &users, &profile, concurrency).await;
    println!("{}", cached.line("GET /api/profile (cache hit)"));
    let uncached = phase(Kind::UncachedRead, seconds, &users, &profile, concurrency).await;
    println!(
        "{}",
        uncached.line("GET /api/profile (cache miss: database + store)")
    );
    let writes = phase(Kind::Write, seconds, &users, &profile, concurrency).await;
    println!(
        "{}",
        writes.line("PUT /api/profile (transaction + outbox row + bump)")
    );
    let outbox: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox")
        .fetch_one(&profile.db.pool)
        .await
        .unwrap();
    println!("outbox rows written: {outbox}");
}
