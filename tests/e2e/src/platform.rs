//! Starts auth, payments, admin, profile and the gateway as separate processes (the
//! `payplane-e2e-node` binary) against the real PostgreSQL, Redis and RabbitMQ: one fresh
//! database per service and one RabbitMQ vhost per platform, all removed on drop. Processes can
//! be killed with SIGKILL and restarted to exercise crash recovery.

use std::{
    collections::BTreeMap,
    net::TcpListener,
    path::{Path, PathBuf},
    process::Stdio,
    sync::atomic::{AtomicU32, Ordering},
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use payplane_auth::{config::Argon2Params, password::Hasher};
use payplane_bus::sandbox::Sandbox;
use payplane_kit::config::local_platform_env;
use tokio::process::{Child, Command};

use crate::Api;

/// Start order: every verifier loads the JWKS from auth, and the gateway's readiness waits
/// for its upstreams. The console (no database) comes last: it only calls the gateway.
pub const SERVICES: [&str; 6] = ["auth", "payments", "admin", "profile", "gateway", "console"];

const PG_ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// Knobs a journey may turn.
#[derive(Debug, Clone)]
pub struct PlatformOptions {
    /// `PSP_SIM_PICKUP_DELAY_MS` / `PSP_SIM_SETTLE_DELAY_MS`: short so journeys finish quickly.
    pub psp_pickup_ms: u64,
    pub psp_settle_ms: u64,
    /// Extra environment for every process.
    pub extra_env: Vec<(String, String)>,
}

impl Default for PlatformOptions {
    fn default() -> Self {
        Self {
            psp_pickup_ms: 300,
            psp_settle_ms: 300,
            extra_env: Vec::new(),
        }
    }
}

/// A running platform; everything it created goes away on drop.
pub struct Platform {
    pub run_id: String,
    pub gateway_url: String,
    pub sandbox: Sandbox,
    pub admin_email: String,
    ports: BTreeMap<&'static str, u16>,
    databases: BTreeMap<&'static str, String>,
    env: Vec<(String, String)>,
    children: BTreeMap<&'static str, Child>,
    node: PathBuf,
    log_dir: PathBuf,
}

/// The ports handed to services lie below the kernel's ephemeral range (32768–60999 on
/// Debian): a port that `bind(:0)` hands out can be taken, by any other listener or client
/// socket on the machine, between our probe and the service's own bind, and the platform then
/// talked to whatever took it (CI once got another platform's service answering `404 Route
/// POST /graphql not found` in place of the gateway). Below that range only explicit binds
/// compete, and within this process the counter never hands out a port twice.
const PORT_FIRST: u32 = 20_000;
const PORT_SPAN: u32 = 12_000;

pub(crate) fn free_port() -> anyhow::Result<u16> {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    // Each process starts at its own offset, so two test binaries rarely probe the same ports.
    let _ = NEXT.compare_exchange(
        0,
        std::process::id().wrapping_mul(97) % PORT_SPAN + 1,
        Ordering::Relaxed,
        Ordering::Relaxed,
    );
    for _ in 0..PORT_SPAN {
        let port = PORT_FIRST + NEXT.fetch_add(1, Ordering::Relaxed) % PORT_SPAN;
        let port = u16::try_from(port)?;
        // Free now (the listener closes at once; listeners reuse addresses, so a service can
        // bind it right after).
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return Ok(port);
        }
    }
    bail!(
        "no free loopback port in {PORT_FIRST}..{}",
        PORT_FIRST + PORT_SPAN
    )
}

fn database_url(name: &str) -> String {
    format!("postgres://postgres@127.0.0.1:5432/{name}")
}

impl Platform {
    /// How most journeys begin: the TLS crypto provider installed, the platform started with
    /// default options, and a client of its gateway.
    pub async fn start_default(node: &Path) -> anyhow::Result<(Self, Api)> {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let platform = Self::start(node, PlatformOptions::default()).await?;
        let api = Api::new(&platform.gateway_url);
        Ok((platform, api))
    }

    /// Starts every service, waits until each answers `/health/ready`, and bootstraps an ADMIN.
    pub async fn start(node: &Path, options: PlatformOptions) -> anyhow::Result<Self> {
        let sandbox = Sandbox::create("e2e").await.context("creating the vhost")?;
        let run_id = sandbox.name.clone();
        let log_dir = std::env::temp_dir().join(format!("payplane-{run_id}"));
        std::fs::create_dir_all(&log_dir)?;

        let mut ports = BTreeMap::new();
        for service in SERVICES {
            ports.insert(service, free_port()?);
        }
        let url = |s: &str| format!("http://127.0.0.1:{}", ports[s]);
        let mut databases = BTreeMap::new();
        for service in SERVICES
            .into_iter()
            .filter(|s| !matches!(*s, "gateway" | "console"))
        {
            let name = format!("{run_id}_{service}");
            payplane_db::ensure_database(&database_url(&name))
                .await
                .with_context(|| format!("creating {name}"))?;
            databases.insert(service, name);
        }

        // Cheap argon2 keeps logins fast; the cost is not what these journeys test.
        let mut env = local_platform_env(&ports, &sandbox.amqp_url, (100_000, 10_000));
        env.extend([
            ("RUST_LOG".into(), "warn,payplane=info".into()),
            (
                "PSP_SIM_PICKUP_DELAY_MS".into(),
                options.psp_pickup_ms.to_string(),
            ),
            (
                "PSP_SIM_SETTLE_DELAY_MS".into(),
                options.psp_settle_ms.to_string(),
            ),
        ]);
        env.extend(options.extra_env);

        let mut platform = Self {
            gateway_url: url("gateway"),
            admin_email: format!("admin-{run_id}@example.com"),
            run_id,
            sandbox,
            ports,
            databases,
            env,
            children: BTreeMap::new(),
            node: node.to_path_buf(),
            log_dir,
        };
        for service in SERVICES {
            platform.spawn(service)?;
            platform
                .wait_ready(service, Duration::from_secs(60))
                .await?;
            if service == "auth" {
                platform.bootstrap_admin().await?;
            }
        }
        Ok(platform)
    }

    /// The service's own base URL (not through the gateway).
    pub fn service_url(&self, service: &str) -> String {
        format!("http://127.0.0.1:{}", self.ports[service])
    }

    /// The URL of a service's database (for assertions on stored state).
    pub fn database(&self, service: &str) -> Option<String> {
        self.databases.get(service).map(|n| database_url(n))
    }

    fn spawn(&mut self, service: &'static str) -> anyhow::Result<()> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path(service))?;
        let mut cmd = Command::new(&self.node);
        cmd.arg(service)
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env("LISTEN_ADDR", format!("127.0.0.1:{}", self.ports[service]))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true);
        if let Some(db) = self.databases.get(service) {
            cmd.env("DATABASE_URL", database_url(db));
        }
        let child = cmd
            .spawn()
            .with_context(|| format!("spawning {}", self.node.display()))?;
        self.children.insert(service, child);
        Ok(())
    }

    fn log_path(&self, service: &str) -> PathBuf {
        self.log_dir.join(format!("{service}.log"))
    }

    /// The last lines a service wrote, for failure messages.
    pub fn log_tail(&self, service: &str) -> String {
        let text = std::fs::read_to_string(self.log_path(service)).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    /// Polls the service's own `/health/ready` until it answers 200.
    pub async fn wait_ready(
        &mut self,
        service: &'static str,
        limit: Duration,
    ) -> anyhow::Result<()> {
        let http = reqwest::Client::new();
        let url = format!("{}/health/ready", self.service_url(service));
        let started = Instant::now();
        loop {
            if let Some(child) = self.children.get_mut(service)
                && let Some(status) = child.try_wait()?
            {
                bail!(
                    "{service} exited with {status} while starting:\n{}",
                    self.log_tail(service)
                );
            }
            if let Ok(resp) = http.get(&url).send().await
                && resp.status().is_success()
            {
                // Ready, but is it ours? Another process on this port would answer too.
                let health = format!("{}/health", self.service_url(service));
                let body: serde_json::Value = http.get(&health).send().await?.json().await?;
                let answered = body["data"]["service"].as_str().unwrap_or_default();
                if answered != service {
                    bail!(
                        "port of {service} answered as {answered:?}: another process holds it\n{}",
                        self.log_tail(service)
                    );
                }
                return Ok(());
            }
            if started.elapsed() > limit {
                bail!(
                    "{service} not ready after {limit:?}:\n{}",
                    self.log_tail(service)
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// SIGKILL: no shutdown hooks, no graceful drain — a crash.
    pub async fn kill(&mut self, service: &'static str) -> anyhow::Result<()> {
        if let Some(mut child) = self.children.remove(service) {
            child.start_kill()?;
            child.wait().await?;
        }
        Ok(())
    }

    /// Starts a killed service again on the same port and database and waits for readiness.
    pub async fn restart(&mut self, service: &'static str) -> anyhow::Result<()> {
        self.kill(service).await?;
        self.spawn(service)?;
        self.wait_ready(service, Duration::from_secs(60)).await
    }

    async fn bootstrap_admin(&self) -> anyhow::Result<()> {
        let url = self.database("auth").context("auth has a database")?;
        let pool = payplane_db::connect(&url, 2).await?;
        let hasher = Hasher::new(Argon2Params {
            memory_kib: 1024,
            iterations: 1,
            parallelism: 1,
        })?;
        payplane_auth::ops::bootstrap_admin(
            &pool,
            &hasher,
            &self.admin_email,
            "Journey Admin",
            crate::PASSWORD,
        )
        .await?;
        pool.close().await;
        Ok(())
    }
}

impl Drop for Platform {
    fn drop(&mut self) {
        for child in self.children.values_mut() {
            let _ = child.start_kill();
        }
        let names: Vec<String> = self.databases.values().cloned().collect();
        // Give the killed processes a moment to release their connections.
        payplane_db::testing::drop_databases_blocking(
            PG_ADMIN_URL.to_owned(),
            names,
            Duration::from_millis(200),
        );
        let _ = std::fs::remove_dir_all(&self.log_dir);
    }
}
