//! `payplane bench console`: the whole platform in this process (auth, payments, admin,
//! profile, gateway, console) against the local PostgreSQL, Redis and RabbitMQ, with fresh
//! databases and a fresh vhost; a customer with 20 payments and an admin sign in through the
//! console, then the payments list (20 rows) and the admin dashboard are fetched through the
//! gateway: first the peak rate with concurrent clients, then latency at half of that rate
//! (open loop, so a slow answer delays nothing else and is counted from when it was due).
//! Also the first load of the payments page: HTML + CSS + JS as compressed on the wire.

use std::{
    collections::BTreeMap,
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use clap::Args;
use payplane_auth::{config::Argon2Params, password::Hasher};
use payplane_bus::sandbox::Sandbox;
use payplane_kit::config::{Env, ServiceConfig as _, local_platform_env};
use payplane_kit::service::Service as _;
use reqwest::{Client, header};
use serde_json::{Value, json};

use super::{
    percentile,
    phase::{Phase, closed_loop},
};

const PASSWORD: &str = "BenchPassword123!";
const SERVICES: [&str; 6] = ["auth", "payments", "admin", "profile", "gateway", "console"];
const PG_ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

#[derive(Args, Clone, Copy)]
pub struct ConsoleBenchArgs {
    /// Concurrent clients in the peak phase.
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    /// Length of each phase (peak, then half of peak).
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// Open a new connection per page instead of reusing connections as a browser does.
    #[arg(long)]
    new_connections: bool,
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

fn database_url(name: &str) -> String {
    format!("postgres://postgres@127.0.0.1:5432/{name}")
}

/// Builds one service and runs it in a task of `tasks`.
macro_rules! start {
    ($krate:ident, $env:expr, $tasks:expr) => {{
        let config = $krate::Config::from_env(&$env)?;
        let app = $krate::Application::build(config).await?;
        $tasks.spawn(async move { app.run_until_stopped().await.map_err(anyhow::Error::from) });
    }};
}

/// The platform's processes as tasks, and what to remove afterwards.
struct Platform {
    tasks: tokio::task::JoinSet<anyhow::Result<()>>,
    databases: Vec<String>,
    gateway: String,
    _sandbox: Sandbox,
}

impl Platform {
    async fn start() -> anyhow::Result<Self> {
        let sandbox = Sandbox::create("bench_console")
            .await
            .context("creating a RabbitMQ vhost (is RabbitMQ running? .ci/setup tests)")?;
        let mut ports = BTreeMap::new();
        for s in SERVICES {
            ports.insert(s, free_port()?);
        }
        let url = |s: &str| format!("http://127.0.0.1:{}", ports[s]);
        // Sign-in cost is what `bench auth` measures; here it only delays the setup. Every
        // request comes from 127.0.0.1, and per-IP limits would measure the limiter.
        let mut common = local_platform_env(&ports, &sandbox.amqp_url, (10_000_000, 1_000_000));
        common.push(("PSP_SIM_PICKUP_DELAY_MS".into(), "50".into()));
        common.push(("PSP_SIM_SETTLE_DELAY_MS".into(), "50".into()));
        let mut tasks = tokio::task::JoinSet::new();
        let mut databases = Vec::new();
        for service in SERVICES {
            let mut pairs = common.clone();
            pairs.push((
                "LISTEN_ADDR".into(),
                format!("127.0.0.1:{}", ports[service]),
            ));
            if !matches!(service, "gateway" | "console") {
                let name = format!("{}_{service}", sandbox.name);
                payplane_db::ensure_database(&database_url(&name))
                    .await
                    .with_context(|| format!("creating {name}"))?;
                pairs.push(("DATABASE_URL".into(), database_url(&name)));
                databases.push(name);
            }
            let env = Env::from_pairs(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())));
            match service {
                "auth" => start!(payplane_auth, env, tasks),
                "payments" => start!(payplane_payments, env, tasks),
                "admin" => start!(payplane_admin, env, tasks),
                "profile" => start!(payplane_profile, env, tasks),
                "gateway" => start!(payplane_gateway, env, tasks),
                _ => start!(payplane_console, env, tasks),
            }
            wait_ready(&url(service)).await?;
        }
        Ok(Self {
            tasks,
            databases,
            gateway: url("gateway"),
            _sandbox: sandbox,
        })
    }

    async fn stop(mut self) {
        self.tasks.abort_all();
        while self.tasks.join_next().await.is_some() {}
        if let Ok(pool) = payplane_db::connect(PG_ADMIN_URL, 1).await {
            for name in &self.databases {
                let sql = format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)");
                let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(sql)).execute(&pool).await;
            }
            pool.close().await;
        }
    }
}

async fn wait_ready(base: &str) -> anyhow::Result<()> {
    let http = Client::new();
    let started = Instant::now();
    loop {
        if let Ok(r) = http.get(format!("{base}/health/ready")).send().await
            && r.status().is_success()
        {
            return Ok(());
        }
        if started.elapsed() > Duration::from_secs(60) {
            bail!("{base} not ready after 60 s");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Cookies set by the console, sent back as one `Cookie` header.
#[derive(Default, Clone)]
struct Jar(BTreeMap<String, String>);

impl Jar {
    fn take(&mut self, resp: &reqwest::Response) {
        for v in resp.headers().get_all(header::SET_COOKIE) {
            let Some((pair, _)) = v
                .to_str()
                .ok()
                .map(|s| s.split_once(';').unwrap_or((s, "")))
            else {
                continue;
            };
            if let Some((k, v)) = pair.split_once('=') {
                self.0.insert(k.trim().to_owned(), v.trim().to_owned());
            }
        }
    }

    fn header(&self) -> String {
        self.0
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// Signs in through the console's form, as a browser does: the CSRF cookie from the sign-in
/// page, then the post.
async fn console_session(http: &Client, base: &str, email: &str) -> anyhow::Result<String> {
    let mut jar = Jar::default();
    let page = http.get(format!("{base}/signin")).send().await?;
    jar.take(&page);
    let csrf = jar
        .0
        .get("pp_csrf")
        .cloned()
        .context("the sign-in page set no pp_csrf cookie")?;
    let resp = http
        .post(format!("{base}/signin"))
        .header(header::COOKIE, jar.header())
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(format!(
            "email={}&password={}&_csrf={}",
            form_encode(email),
            form_encode(PASSWORD),
            form_encode(&csrf)
        ))
        .send()
        .await?;
    jar.take(&resp);
    if !jar.0.contains_key("pp_session") {
        bail!(
            "signing in {email} through the console failed: {}",
            resp.status()
        );
    }
    Ok(jar.header())
}

/// `application/x-www-form-urlencoded` value: everything but unreserved bytes as `%XX`.
fn form_encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

async fn api(
    http: &Client,
    base: &str,
    path: &str,
    token: Option<&str>,
    body: &Value,
) -> anyhow::Result<Value> {
    let mut req = http.post(format!("{base}{path}")).json(body);
    if let Some(t) = token {
        req = req
            .bearer_auth(t)
            .header("Idempotency-Key", uuid::Uuid::new_v4().to_string());
    }
    let resp = req.send().await?;
    let status = resp.status();
    let v: Value = resp.json().await.unwrap_or(Value::Null);
    if !status.is_success() {
        bail!("POST {path}: {status} {v}");
    }
    Ok(v["data"].clone())
}

/// A customer with 20 payments to a vendor, and the admin; returns the console cookies of the
/// customer and the admin.
async fn seed(http: &Client, base: &str, admin_email: &str) -> anyhow::Result<(String, String)> {
    let run = &uuid::Uuid::new_v4().simple().to_string()[..8];
    let customer_email = format!("bench-customer-{run}@example.com");
    let customer = api(
        http,
        base,
        "/api/auth/register",
        None,
        &json!({"email": customer_email, "password": PASSWORD, "name": "Bench Customer", "role": "CUSTOMER"}),
    )
    .await?;
    let vendor = api(
        http,
        base,
        "/api/auth/register",
        None,
        &json!({"email": format!("bench-vendor-{run}@example.com"), "password": PASSWORD, "name": "Bench Vendor", "role": "VENDOR"}),
    )
    .await?;
    let token = customer["accessToken"]
        .as_str()
        .context("accessToken")?
        .to_owned();
    let vendor_id = vendor["user"]["id"].as_str().context("vendor id")?;
    for i in 0..20 {
        api(
            http,
            base,
            "/api/payments",
            Some(&token),
            &json!({"type": "instant", "amount": format!("{}.50", 10 + i), "currency": "USD",
                    "description": format!("Bench payment {i}"), "recipientId": vendor_id}),
        )
        .await?;
    }
    let customer = console_session(http, base, &customer_email).await?;
    let admin = console_session(http, base, admin_email).await?;
    Ok((customer, admin))
}

async fn bootstrap_admin(platform: &Platform, email: &str) -> anyhow::Result<()> {
    let auth_db = platform
        .databases
        .iter()
        .find(|d| d.ends_with("_auth"))
        .context("the auth database")?;
    let pool = payplane_db::connect(&database_url(auth_db), 2).await?;
    let hasher = Hasher::new(Argon2Params {
        memory_kib: 1024,
        iterations: 1,
        parallelism: 1,
    })?;
    payplane_auth::ops::bootstrap_admin(&pool, &hasher, email, "Bench Admin", PASSWORD).await?;
    pool.close().await;
    Ok(())
}

/// One page view: the two pages alternate, each with its own user's cookie.
#[derive(Clone)]
struct Pages {
    http: Client,
    urls: [(String, String); 2],
}

impl Pages {
    async fn get(&self, i: usize) -> bool {
        let (url, cookie) = &self.urls[i % 2];
        match self
            .http
            .get(url)
            .header(header::COOKIE, cookie)
            .header(header::ACCEPT_ENCODING, "br, gzip")
            .send()
            .await
        {
            Ok(r) if r.status().is_success() => r.bytes().await.is_ok(),
            _ => false,
        }
    }
}

/// Closed loop: `concurrency` clients, each fetching the next page as soon as one answers.
async fn peak(pages: &Pages, concurrency: usize, length: Duration) -> Phase {
    // Shared, so that a request costs the load generator no copy of the URLs and cookies.
    let pages = Arc::new(pages.clone());
    let deadline = Instant::now() + length;
    closed_loop(concurrency, None, Some(deadline), move |_, i| {
        let pages = Arc::clone(&pages);
        async move { pages.get(i).await }
    })
    .await
}

/// Open loop at `rate` pages/s: request i is due at start + i/rate, and its latency counts from
/// then, so a stall shows up in every request it delays.
async fn steady(pages: &Pages, rate: f64, length: Duration) -> Phase {
    let started = Instant::now();
    let interval = Duration::from_secs_f64(1.0 / rate.max(1.0));
    let mut handles = Vec::new();
    let mut i = 0usize;
    loop {
        #[expect(clippy::cast_possible_truncation, reason = "a few thousand requests")]
        let due = started + interval * (i as u32);
        if due >= started + length {
            break;
        }
        tokio::time::sleep_until(due.into()).await;
        let pages = pages.clone();
        handles.push(tokio::spawn(async move {
            let ok = pages.get(i).await;
            (
                usize::from(ok),
                usize::from(!ok),
                if ok {
                    vec![due.elapsed().as_secs_f64() * 1000.0]
                } else {
                    Vec::new()
                },
            )
        }));
        i += 1;
    }
    Phase::collect(handles, started).await
}

/// Bytes on the wire of the payments page and every stylesheet and script it links, fetched
/// as a browser with an empty cache would (compressed).
async fn first_load(
    http: &Client,
    url: &str,
    cookie: &str,
) -> anyhow::Result<(usize, Vec<String>)> {
    let base = url.trim_end_matches("/payments");
    let fetch = |u: String| async move {
        let r = http
            .get(&u)
            .header(header::COOKIE, cookie)
            .header(header::ACCEPT_ENCODING, "br, gzip")
            .send()
            .await?;
        if !r.status().is_success() {
            bail!("GET {u}: {}", r.status());
        }
        let encoding = r
            .headers()
            .get(header::CONTENT_ENCODING)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("identity")
            .to_owned();
        Ok::<_, anyhow::Error>((encoding, r.bytes().await?))
    };
    let (enc, html) = fetch(url.to_owned()).await?;
    let text = String::from_utf8_lossy(&html).into_owned();
    let mut parts = vec![format!("html {} B {enc}", html.len())];
    let mut total = html.len();
    // The page itself is compressed, so its links are read from an uncompressed copy.
    let plain = http
        .get(url)
        .header(header::COOKIE, cookie)
        .send()
        .await?
        .text()
        .await?;
    let rows = plain.matches("data-payment-status=").count();
    if rows < 20 {
        bail!("the payments page shows {rows} rows, not 20 (first bytes: {text:.200})");
    }
    for asset in plain.split('"').filter(|s| {
        s.starts_with("/assets/")
            && std::path::Path::new(s)
                .extension()
                .is_some_and(|e| e == "css" || e == "js")
    }) {
        let (enc, body) = fetch(format!("{base}{asset}")).await?;
        parts.push(format!("{asset} {} B {enc}", body.len()));
        total += body.len();
    }
    Ok((total, parts))
}

pub async fn run(args: ConsoleBenchArgs) -> anyhow::Result<()> {
    println!("bench console: starting the platform in this process");
    let platform = Platform::start().await?;
    let result = measure(&platform, args).await;
    platform.stop().await;
    result
}

async fn measure(platform: &Platform, args: ConsoleBenchArgs) -> anyhow::Result<()> {
    let admin_email = format!(
        "bench-admin-{}@example.com",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    bootstrap_admin(platform, &admin_email).await?;
    let base = platform.gateway.clone();
    let http = Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(if args.new_connections {
            0
        } else {
            args.concurrency * 4
        })
        .tcp_nodelay(true)
        .build()?;
    let (customer, admin) = seed(&http, &base, &admin_email).await?;
    let payments_url = format!("{base}/payments");
    let (bytes, parts) = first_load(&http, &payments_url, &customer).await?;
    println!("first load of /payments: {}", parts.join(", "));
    let pages = Pages {
        http: http.clone(),
        urls: [(payments_url, customer), (format!("{base}/admin"), admin)],
    };
    // Warm-up: connections, the console's token caches, the services' statement caches.
    let _ = peak(&pages, args.concurrency, Duration::from_secs(1)).await;
    // One at a time: what a page costs with nothing else running.
    for (n, name) in ["/payments", "/admin"].iter().enumerate() {
        let mut lat = Vec::new();
        for _ in 0..20 {
            let t0 = Instant::now();
            if pages.get(n).await {
                lat.push(t0.elapsed().as_secs_f64() * 1000.0);
            }
        }
        lat.sort_by(f64::total_cmp);
        println!(
            "{name} alone: p50 {:.1} ms max {:.1} ms",
            percentile(&lat, 0.5),
            percentile(&lat, 1.0)
        );
    }
    let length = Duration::from_secs(args.seconds);
    let top = peak(&pages, args.concurrency, length).await;
    println!(
        "{}",
        top.line(
            &format!("peak ({} clients)", args.concurrency),
            " pages/s",
            1
        )
    );
    let half = steady(&pages, top.rate() / 2.0, length).await;
    println!(
        "{}",
        half.line(
            &format!("half of peak ({:.0} pages/s, open loop)", top.rate() / 2.0),
            " pages/s",
            1
        )
    );
    println!(
        "pages alternate /payments (20 rows, customer) and /admin (admin); {}; all six services, PostgreSQL, Redis, RabbitMQ and the load generator share this machine's {} cores",
        if args.new_connections {
            "a new connection per page"
        } else {
            "connections reused"
        },
        std::thread::available_parallelism().map_or(0, std::num::NonZero::get)
    );
    #[expect(clippy::cast_precision_loss, reason = "a few KiB")]
    let kib = bytes as f64 / 1024.0;
    println!(
        "console: {:.0} pages/s p99 {:.1} ms first-load {kib:.1} KiB",
        top.rate(),
        percentile(&half.latencies_ms, 0.99)
    );
    if top.failed + half.failed > 0 {
        bail!("{} page views failed", top.failed + half.failed);
    }
    Ok(())
}
