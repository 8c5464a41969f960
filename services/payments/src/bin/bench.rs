//! `payplane-payments-bench [--seconds N] [--concurrency N]`: throughput and latency of
//! authenticated `POST /api/payments` (durable commit + outbox row + idempotency key) against
//! the same work as raw SQL through the same pool without HTTP, then p50/p99 at half of the
//! peak rate. Spawns auth and payments in-process on throwaway databases. Last line:
//! `payments: <n> creates/s p50 <x> ms p99 <y> ms ratio <r> of raw`.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use payplane_bus::outbox::EventContext;
use payplane_events::ActorType;
use payplane_payments::{
    config::PspMode,
    domain::money::{Amount, Currency},
    lifecycle::{self, Actor, ClaimRef, Draft},
    store::users::DirUser,
    testing::TestApp,
};
use serde_json::{Value, json};
use sqlx::PgPool;
use tokio::sync::Mutex;
use uuid::Uuid;

struct Opts {
    seconds: u64,
    concurrency: usize,
}

fn opts() -> anyhow::Result<Opts> {
    let mut o = Opts {
        seconds: 8,
        concurrency: 16,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let v = it.next().context("missing value")?;
        match a.as_str() {
            "--seconds" => o.seconds = v.parse()?,
            "--concurrency" => o.concurrency = v.parse()?,
            other => bail!("unknown argument {other} (use --seconds N --concurrency N)"),
        }
    }
    Ok(o)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    payplane_kit::bench::percentile(sorted, p).unwrap_or(0.0)
}

struct Run {
    count: usize,
    elapsed: Duration,
    lat_ms: Vec<f64>,
}

impl Run {
    #[expect(clippy::cast_precision_loss, reason = "rates")]
    fn rate(&self) -> f64 {
        self.count as f64 / self.elapsed.as_secs_f64()
    }
    fn p(&self, q: f64) -> f64 {
        percentile(&self.lat_ms, q)
    }
}

async fn register(
    http: &reqwest::Client,
    auth: &str,
    role: &str,
) -> anyhow::Result<(String, String)> {
    let email = format!(
        "bench{}@example.com",
        &Uuid::new_v4().simple().to_string()[..12]
    );
    let r: Value = http
        .post(format!("{auth}/api/auth/register"))
        .json(
            &json!({"email": email, "password": "TestPassword123!", "name": "Bench", "role": role}),
        )
        .send()
        .await?
        .json()
        .await?;
    let token = r["data"]["accessToken"]
        .as_str()
        .context("no token")?
        .to_owned();
    let id = r["data"]["user"]["id"]
        .as_str()
        .context("no id")?
        .to_owned();
    Ok((token, id))
}

/// One authenticated create with a fresh idempotency key; returns latency in ms.
async fn create(
    http: &reqwest::Client,
    url: &str,
    token: &str,
    recipient: &str,
) -> anyhow::Result<f64> {
    let start = Instant::now();
    let res = http
        .post(url)
        .bearer_auth(token)
        .header("idempotency-key", Uuid::new_v4().to_string())
        .json(&json!({"type": "instant", "amount": "12.34", "description": "bench", "recipientId": recipient}))
        .send()
        .await?;
    let status = res.status();
    let _ = res.bytes().await?;
    if status.as_u16() != 201 {
        bail!("create answered {status}");
    }
    Ok(start.elapsed().as_secs_f64() * 1000.0)
}

/// The same database work as one create, without HTTP, auth or validation.
/// A directory row for the benchmark's parties (only the id is stored).
fn bench_user(id: Uuid) -> DirUser {
    DirUser {
        id,
        email: format!("{id}@bench.invalid"),
        name: "bench".into(),
        role: "CUSTOMER".into(),
        is_active: true,
        deleted_at: None,
    }
}

async fn raw_create(pool: &PgPool, sender: Uuid, recipient: Uuid) -> anyhow::Result<f64> {
    let start = Instant::now();
    let key = Uuid::new_v4().to_string();
    let token = Uuid::new_v4();
    let since: chrono::DateTime<chrono::Utc> = sqlx::query_scalar(
        "INSERT INTO idempotency_keys (user_id, key, request_method, request_path, \
           request_fingerprint, claim_token, expires_at) VALUES ($1, $2, 'POST', '/api/payments', \
           $3, $4, now() + interval '24 hours') RETURNING created_at",
    )
    .bind(sender)
    .bind(&key)
    .bind(vec![0u8; 32])
    .bind(token)
    .fetch_one(pool)
    .await?;
    let owner = payplane_payments::store::idempotency::Owner { token, since };
    let mut tx = pool.begin().await?;
    let draft = Draft {
        sender: bench_user(sender),
        recipient: bench_user(recipient),
        amount: Amount::parse("12.34")?,
        currency: Currency::USD,
        payment_type: "instant",
        description: "bench".into(),
        metadata: None,
        scheduled_for: None,
    };
    let ctx = EventContext {
        source: "payments",
        correlation_id: key.clone(),
        causation_id: None,
        traceparent: None,
        tracestate: None,
    };
    let actor = Actor {
        id: Some(sender),
        kind: ActorType::User,
    };
    let claim = ClaimRef { key: &key, since };
    let (row, _) = lifecycle::create(&mut tx, &ctx, draft, Some(claim), actor).await?;
    let id = row.id;
    payplane_payments::store::idempotency::finish(
        &mut tx,
        sender,
        &key,
        &owner,
        201,
        b"{}",
        Some(id),
    )
    .await?;
    tx.commit().await?;
    Ok(start.elapsed().as_secs_f64() * 1000.0)
}

/// Closed loop: `concurrency` workers for `seconds`.
async fn saturate<F, Fut>(concurrency: usize, seconds: u64, op: F) -> anyhow::Result<Run>
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = anyhow::Result<f64>> + Send,
{
    let op = Arc::new(op);
    let lat = Arc::new(Mutex::new(Vec::new()));
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (op, lat) = (Arc::clone(&op), Arc::clone(&lat));
        tasks.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            while Instant::now() < deadline {
                mine.push(op().await?);
            }
            lat.lock().await.extend(mine);
            anyhow::Ok(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    let elapsed = start.elapsed();
    let mut lat_ms = Arc::try_unwrap(lat)
        .map_err(|_| anyhow::anyhow!("latency buffer still shared"))?
        .into_inner();
    lat_ms.sort_by(f64::total_cmp);
    Ok(Run {
        count: lat_ms.len(),
        elapsed,
        lat_ms,
    })
}

/// Open loop at `rate` per second for `seconds` (latency measured from the scheduled start).
async fn offered<F, Fut>(rate: f64, seconds: u64, op: F) -> anyhow::Result<Run>
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = anyhow::Result<f64>> + Send + 'static,
{
    let interval = Duration::from_secs_f64(1.0 / rate.max(1.0));
    let start = Instant::now();
    let end = start + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    let mut next = start;
    while next < end {
        tokio::time::sleep_until(next.into()).await;
        let scheduled = next;
        let fut = op();
        tasks.push(tokio::spawn(async move {
            fut.await?;
            anyhow::Ok(scheduled.elapsed().as_secs_f64() * 1000.0)
        }));
        next += interval;
    }
    let mut lat_ms = Vec::with_capacity(tasks.len());
    for t in tasks {
        lat_ms.push(t.await??);
    }
    let elapsed = start.elapsed();
    lat_ms.sort_by(f64::total_cmp);
    Ok(Run {
        count: lat_ms.len(),
        elapsed,
        lat_ms,
    })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let o = opts()?;
    let app = TestApp::spawn_with(
        |_| {},
        |c| {
            c.psp_mode = PspMode::External;
            c.db_pool_size = 32;
        },
    )
    .await
    .context("spawning auth and payments (PostgreSQL and Redis must be running)")?;
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .tcp_nodelay(true)
        .build()?;
    let (token, sender) = register(&http, &app.auth.base_url, "CUSTOMER").await?;
    let (_, recipient) = register(&http, &app.auth.base_url, "VENDOR").await?;
    let url = app.url("/api/payments");
    let client = (http.clone(), url.clone(), token.clone(), recipient.clone());
    let http_op = move || {
        let (http, url, token, recipient) = client.clone();
        async move { create(&http, &url, &token, &recipient).await }
    };
    // Warm-up (JWKS fetch, directory rows, connection pools).
    for _ in 0..50 {
        http_op().await?;
    }
    println!(
        "payments bench: {} s per phase, {} concurrent clients, PostgreSQL synchronous_commit on",
        o.seconds, o.concurrency
    );
    let peak = saturate(o.concurrency, o.seconds, http_op.clone()).await?;
    println!(
        "http POST /api/payments at saturation: {:.0} creates/s, p50 {:.2} ms p99 {:.2} ms ({} requests)",
        peak.rate(),
        peak.p(0.5),
        peak.p(0.99),
        peak.count
    );
    let pool = app.state.db.clone();
    let (s, r) = (Uuid::parse_str(&sender)?, Uuid::parse_str(&recipient)?);
    let raw = saturate(o.concurrency, o.seconds, move || {
        let pool = pool.clone();
        async move { raw_create(&pool, s, r).await }
    })
    .await?;
    println!(
        "raw SQL (same claim insert + transaction, same pool, no HTTP): {:.0} creates/s, p50 {:.2} ms p99 {:.2} ms",
        raw.rate(),
        raw.p(0.5),
        raw.p(0.99)
    );
    let half = peak.rate() / 2.0;
    let run = offered(half, o.seconds, http_op).await?;
    println!(
        "http at half of peak ({half:.0}/s offered, {:.0}/s achieved): p50 {:.2} ms p95 {:.2} ms p99 {:.2} ms",
        run.rate(),
        run.p(0.5),
        run.p(0.95),
        run.p(0.99)
    );
    let ratio = peak.rate() / raw.rate();
    println!(
        "payments: {:.0} creates/s p50 {:.2} ms p99 {:.2} ms ratio {ratio:.2} of raw",
        peak.rate(),
        run.p(0.5),
        run.p(0.99)
    );
    app.stop().await;
    Ok(())
}
