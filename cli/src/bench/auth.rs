//! `payplane bench auth`: the auth service in-process against a throwaway database with the
//! production argon2 cost, driven over HTTP by concurrent clients on the same machine.

use std::time::{Duration, Instant};

use clap::Args;
use payplane_auth::{config::Argon2Params, testing::TestApp};
use serde_json::json;

use super::{percentile, phase::closed_loop as phase};

const PW: &str = "BenchPassword123!";

#[derive(Args, Clone, Copy)]
pub struct AuthBenchArgs {
    /// Accounts registered in the register phase (the login phase uses them).
    #[arg(long, default_value_t = 100)]
    users: usize,
    /// Concurrent clients.
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    /// Length of the login phase (and of the flood).
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Instead of the throughput phases: 64 concurrent logins while 16 signed-in clients call
    /// `GET /api/auth/me` and refresh, to show that a login flood does not starve them.
    #[arg(long)]
    flood: bool,
    /// Concurrent argon2 hashes in the server (default: one per core, as in production).
    #[arg(long)]
    hash_slots: Option<usize>,
}

/// One sign-in of `email` on `device`; whether it succeeded.
async fn login_ok(http: &reqwest::Client, base: &str, email: &str, device: &str) -> bool {
    let body = json!({"email": email, "password": PW, "deviceId": device});
    http.post(format!("{base}/api/auth/login"))
        .json(&body)
        .send()
        .await
        .is_ok_and(|r| r.status().is_success())
}

pub async fn run(args: AuthBenchArgs) -> anyhow::Result<()> {
    let argon2 = Argon2Params::default();
    let app = TestApp::spawn_with(|c| {
        c.argon2 = argon2;
        if let Some(n) = args.hash_slots {
            c.hash_limits.concurrent = n;
        }
    })
    .await?;
    if args.flood {
        let res = flood(&app, &args).await;
        app.stop().await;
        return res;
    }
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
    println!("{}", register.line("register", "/s", 1));

    let users = args.users.max(1);
    let deadline = Instant::now() + Duration::from_secs(args.seconds);
    let (h, b) = (http.clone(), base.clone());
    let login = phase(args.concurrency, None, Some(deadline), move |w, i| {
        let (h, b, email) = (h.clone(), b.clone(), email(i % users));
        async move { login_ok(&h, &b, &email, &format!("bench-worker-{w}")).await }
    })
    .await;
    println!("{}", login.line("login", "/s", 1));
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

/// Flooding logins and the signed-in clients beside them.
const FLOOD_LOGINS: usize = 64;
const FLOOD_CLIENTS: usize = 16;

/// Registers `n` accounts (`prefix-i`), 8 at a time; fails if any is refused.
async fn register_all(
    http: &reqwest::Client,
    base: &str,
    prefix: &str,
    n: usize,
) -> anyhow::Result<Vec<String>> {
    let emails: Vec<String> = (0..n)
        .map(|i| format!("{prefix}-{i}@example.com"))
        .collect();
    for chunk in emails.chunks(8) {
        let calls = chunk.iter().map(|email| {
            let body = json!({"email": email, "password": PW, "name": "Bench User"});
            http.post(format!("{base}/api/auth/register"))
                .json(&body)
                .send()
        });
        for res in futures::future::join_all(calls).await {
            let status = res?.status();
            anyhow::ensure!(status.as_u16() == 201, "registration answered {status}");
        }
    }
    Ok(emails)
}

/// Signs `email` in: its access and refresh tokens.
async fn sign_in(
    http: &reqwest::Client,
    base: &str,
    email: &str,
) -> anyhow::Result<(String, String)> {
    let body = json!({"email": email, "password": PW, "deviceId": "bench-client"});
    let res: serde_json::Value = http
        .post(format!("{base}/api/auth/login"))
        .json(&body)
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let token = |k: &str| res["data"][k].as_str().unwrap_or("").to_owned();
    Ok((token("accessToken"), token("refreshToken")))
}

/// A signed-in client's loop: `GET /me`, then a refresh, until `deadline`; returns the
/// latencies of each (successful calls only) and the failures.
async fn signed_in_client(
    http: reqwest::Client,
    base: String,
    (mut access, mut refresh): (String, String),
    deadline: Instant,
) -> anyhow::Result<(Vec<f64>, Vec<f64>, usize)> {
    let token = |v: &serde_json::Value, k: &str| v["data"][k].as_str().unwrap_or("").to_owned();
    let (mut me, mut rotated, mut failed) = (Vec::new(), Vec::new(), 0);
    while Instant::now() < deadline {
        let t0 = Instant::now();
        let ok = http
            .get(format!("{base}/api/auth/me"))
            .bearer_auth(&access)
            .send()
            .await
            .is_ok_and(|r| r.status().is_success());
        if ok {
            me.push(t0.elapsed().as_secs_f64() * 1000.0);
        } else {
            failed += 1;
        }
        let t0 = Instant::now();
        let res = http
            .post(format!("{base}/api/auth/refresh"))
            .json(&json!({ "refreshToken": refresh }))
            .send()
            .await;
        match res {
            Ok(r) if r.status().is_success() => {
                let v: serde_json::Value = r.json().await?;
                rotated.push(t0.elapsed().as_secs_f64() * 1000.0);
                (access, refresh) = (token(&v, "accessToken"), token(&v, "refreshToken"));
            }
            _ => failed += 1,
        }
    }
    Ok((me, rotated, failed))
}

async fn flood(app: &TestApp, args: &AuthBenchArgs) -> anyhow::Result<()> {
    let base = app.base_url.clone();
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(2 * (FLOOD_LOGINS + FLOOD_CLIENTS))
        .build()?;
    let run_id = uuid::Uuid::new_v4().simple().to_string();
    let flooders = register_all(&http, &base, &format!("flood-{}", &run_id[..8]), 8).await?;
    let clients = register_all(
        &http,
        &base,
        &format!("client-{}", &run_id[..8]),
        FLOOD_CLIENTS,
    )
    .await?;

    // Signed in before the flood starts: their own logins would otherwise queue behind the
    // flood's for a hash slot, and one that waits past the queue's timeout gets the 503.
    let sessions =
        futures::future::join_all(clients.iter().map(|email| sign_in(&http, &base, email)))
            .await
            .into_iter()
            .collect::<anyhow::Result<Vec<_>>>()?;

    let deadline = Instant::now() + Duration::from_secs(args.seconds);
    let client_tasks: Vec<_> = sessions
        .into_iter()
        .map(|tokens| {
            tokio::spawn(signed_in_client(
                http.clone(),
                base.clone(),
                tokens,
                deadline,
            ))
        })
        .collect();
    let (h, b) = (http.clone(), base.clone());
    let logins = phase(FLOOD_LOGINS, None, Some(deadline), move |w, i| {
        let (h, b) = (h.clone(), b.clone());
        let email = flooders[i % flooders.len()].clone();
        async move { login_ok(&h, &b, &email, &format!("flood-{w}")).await }
    })
    .await;
    let (mut me, mut rotated, mut failed) = (Vec::new(), Vec::new(), 0);
    for task in client_tasks {
        let (client_me, client_rotated, client_failed) = task.await??;
        me.extend(client_me);
        rotated.extend(client_rotated);
        failed += client_failed;
    }
    me.sort_by(f64::total_cmp);
    rotated.sort_by(f64::total_cmp);
    println!("{}", logins.line("flood logins", "/s", 1));
    println!(
        "signed-in clients: {} me p50 {:.1} ms, {} refresh p50 {:.1} ms, {failed} failed",
        me.len(),
        percentile(&me, 0.50),
        rotated.len(),
        percentile(&rotated, 0.50)
    );
    println!(
        "argon2id m={} KiB t={} p={}; {} hash slots; {FLOOD_LOGINS} flooding logins, \
         {FLOOD_CLIENTS} signed-in clients; server and load generator share this machine's {} cores",
        Argon2Params::default().memory_kib,
        Argon2Params::default().iterations,
        Argon2Params::default().parallelism,
        app.state.config.hash_limits.concurrent,
        std::thread::available_parallelism().map_or(0, std::num::NonZero::get)
    );
    println!(
        "auth-flood: me p99 {:.1} ms refresh p99 {:.1} ms logins {:.1}/s",
        percentile(&me, 0.99),
        percentile(&rotated, 0.99),
        logins.rate()
    );
    Ok(())
}
