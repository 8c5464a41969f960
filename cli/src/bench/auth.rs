//! `payplane bench auth`: the auth service in-process against a throwaway database with the
//! production argon2 cost, driven over HTTP by concurrent clients on the same machine.

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use clap::Args;
use payplane_auth::{config::Argon2Params, testing::TestApp};
use serde_json::json;

use super::percentile;

const PW: &str = "BenchPassword123!";

#[derive(Args, Clone, Copy)]
pub struct AuthBenchArgs {
    /// Accounts registered in the register phase (the login phase uses them).
    #[arg(long, default_value_t = 100)]
    users: usize,
    /// Concurrent clients.
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    /// Length of the login phase.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
}

struct Phase {
    ok: usize,
    failed: usize,
    elapsed: Duration,
    latencies_ms: Vec<f64>,
}

impl Phase {
    fn rate(&self) -> f64 {
        #[expect(clippy::cast_precision_loss, reason = "request counts are small")]
        let ok = self.ok as f64;
        ok / self.elapsed.as_secs_f64()
    }

    fn line(&self, name: &str) -> String {
        format!(
            "{name}: {} ok, {} failed in {:.1} s = {:.1}/s p50 {:.1} ms p99 {:.1} ms",
            self.ok,
            self.failed,
            self.elapsed.as_secs_f64(),
            self.rate(),
            percentile(&self.latencies_ms, 0.50),
            percentile(&self.latencies_ms, 0.99)
        )
    }
}

/// Runs `make(i)` for i = 0.. until `total` requests or `deadline`, with `concurrency` workers.
async fn phase<F, Fut>(
    concurrency: usize,
    total: Option<usize>,
    deadline: Option<Instant>,
    make: F,
) -> Phase
where
    F: Fn(usize, usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    let make = Arc::new(make);
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let workers: Vec<_> = (0..concurrency)
        .map(|w| {
            let (make, next) = (make.clone(), next.clone());
            tokio::spawn(async move {
                let (mut ok, mut failed, mut lat) = (0, 0, Vec::new());
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if total.is_some_and(|t| i >= t)
                        || deadline.is_some_and(|d| Instant::now() >= d)
                    {
                        break;
                    }
                    let t0 = Instant::now();
                    if make(w, i).await {
                        ok += 1;
                        lat.push(t0.elapsed().as_secs_f64() * 1000.0);
                    } else {
                        failed += 1;
                    }
                }
                (ok, failed, lat)
            })
        })
        .collect();
    let mut out = Phase {
        ok: 0,
        failed: 0,
        elapsed: Duration::ZERO,
        latencies_ms: Vec::new(),
    };
    for w in workers {
        if let Ok((ok, failed, lat)) = w.await {
            out.ok += ok;
            out.failed += failed;
            out.latencies_ms.extend(lat);
        }
    }
    out.elapsed = started.elapsed();
    out.latencies_ms.sort_by(f64::total_cmp);
    out
}

pub async fn run(args: AuthBenchArgs) -> anyhow::Result<()> {
    let argon2 = Argon2Params::default();
    let app = TestApp::spawn_with(|c| c.argon2 = argon2).await?;
    let base = app.base_url.clone();
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(args.concurrency * 2)
        .build()?;
    let run_id = uuid::Uuid::new_v4().simple().to_string();
    let email = move |i: usize| format!("bench-{}-{i}@example.com", &run_id[..8]);

    let (h, b, e) = (http.clone(), base.clone(), email.clone());
    let register = phase(args.concurrency, Some(args.users), None, move |_, i| {
        let (h, url, email) = (h.clone(), format!("{b}/api/auth/register"), e(i));
        async move {
            let body = json!({"email": email, "password": PW, "name": "Bench User"});
            h.post(url)
                .json(&body)
                .send()
                .await
                .is_ok_and(|r| r.status().as_u16() == 201)
        }
    })
    .await;
    println!("{}", register.line("register"));

    let users = args.users.max(1);
    let deadline = Instant::now() + Duration::from_secs(args.seconds);
    let (h, b) = (http.clone(), base.clone());
    let login = phase(args.concurrency, None, Some(deadline), move |w, i| {
        let (h, url, email) = (h.clone(), format!("{b}/api/auth/login"), email(i % users));
        async move {
            let body =
                json!({"email": email, "password": PW, "deviceId": format!("bench-worker-{w}")});
            h.post(url)
                .json(&body)
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
        }
    })
    .await;
    println!("{}", login.line("login"));
    println!(
        "argon2id m={} KiB t={} p={}; {} concurrent clients; server and load generator share this machine's {} cores",
        argon2.memory_kib,
        argon2.iterations,
        argon2.parallelism,
        args.concurrency,
        std::thread::available_parallelism().map_or(0, std::num::NonZero::get)
    );
    println!(
        "auth: {:.1} logins/s p50 {:.1} ms p99 {:.1} ms",
        login.rate(),
        percentile(&login.latencies_ms, 0.50),
        percentile(&login.latencies_ms, 0.99)
    );
    app.stop().await;
    Ok(())
}
