//! `payplane dev`: the whole platform on this machine, in the foreground, against the local
//! PostgreSQL, Redis and RabbitMQ — gateway :3000, auth :3001, payments :3002, admin :3003,
//! profile :3004, each with its own database created and migrated, the demo data seeded, and
//! the web console :3005 (served through the gateway at http://localhost:3000/).
//! Prints the URLs and demo logins; Ctrl-C stops everything cleanly. `--tls` serves the
//! gateway over HTTPS with a generated self-signed certificate.

use std::{path::PathBuf, time::Duration};

use anyhow::{Context, bail};
use clap::Args;
use payplane_kit::config::{Env, ServiceConfig as _};
use payplane_kit::service::Service as _;
use tokio::net::TcpStream;

#[derive(Args)]
pub struct DevArgs {
    /// Serve the gateway over HTTPS (and wss://) with a self-signed certificate for localhost.
    #[arg(long)]
    tls: bool,
}

const PG_START: &str = "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start";
const REDIS_START: &str = "redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save \"\" --appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log";
const RABBIT_START: &str = "rabbitmq-server -detached";

/// Service, port. Start order matters: every verifier loads the JWKS from auth, and the
/// gateway comes after its API upstreams so it is ready when they are; the console (which only
/// calls the gateway) last.
const SERVICES: [(&str, u16); 6] = [
    ("auth", 3001),
    ("payments", 3002),
    ("admin", 3003),
    ("profile", 3004),
    ("gateway", 3000),
    ("console", 3005),
];

async fn reachable(addr: &str) -> bool {
    matches!(
        tokio::time::timeout(Duration::from_secs(2), TcpStream::connect(addr)).await,
        Ok(Ok(_))
    )
}

fn installed(binary: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|p| p.join(binary).exists()))
}

/// Says exactly what is down and the command that starts it.
async fn check_dependencies() -> anyhow::Result<()> {
    let mut missing = Vec::new();
    for (name, addr, binary, start) in [
        ("PostgreSQL", "127.0.0.1:5432", "pg_ctlcluster", PG_START),
        ("Redis", "127.0.0.1:6379", "redis-server", REDIS_START),
        (
            "RabbitMQ",
            "127.0.0.1:5672",
            "rabbitmq-server",
            RABBIT_START,
        ),
    ] {
        if !reachable(addr).await {
            if installed(binary) {
                missing.push(format!(
                    "{name} is installed but not running on {addr}; start it with:\n    {start}"
                ));
            } else {
                missing.push(format!(
                    "{name} is not installed (expected on {addr}); install it with apt-get"
                ));
            }
        }
    }
    if missing.is_empty() {
        Ok(())
    } else {
        bail!("{}", missing.join("\n"))
    }
}

/// The environment one service sees: dev defaults (loopback addresses, so `localhost`
/// resolving to ::1 cannot send a call astray), then the real environment, then the service's
/// own port and database.
fn service_env(service: &str, port: u16, tls: Option<&(PathBuf, PathBuf)>) -> Env {
    let scheme = if tls.is_some() { "https" } else { "http" };
    let mut pairs: Vec<(String, String)> = vec![
        ("REDIS_URL".into(), "redis://127.0.0.1:6379".into()),
        (
            "AMQP_URL".into(),
            "amqp://guest:guest@127.0.0.1:5672/%2f".into(),
        ),
        (
            "PUBLIC_BASE_URL".into(),
            format!("{scheme}://localhost:3000"),
        ),
    ];
    pairs.extend(payplane_kit::config::loopback_peer_urls(SERVICES));
    pairs.extend(std::env::vars());
    let process = Env::from_process();
    pairs.push(("LISTEN_ADDR".into(), format!("127.0.0.1:{port}")));
    if !matches!(service, "gateway" | "console") {
        pairs.push((
            "DATABASE_URL".into(),
            crate::ops::database_url(&process, service),
        ));
    }
    if let Some((cert, key)) = tls.filter(|_| service == "gateway") {
        pairs.push(("TLS_CERT_FILE".into(), cert.display().to_string()));
        pairs.push(("TLS_KEY_FILE".into(), key.display().to_string()));
    }
    Env::from_pairs(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
}

/// A self-signed certificate for localhost / 127.0.0.1 / ::1, written next to the temp dir.
fn self_signed() -> anyhow::Result<(PathBuf, PathBuf)> {
    let dir = std::env::temp_dir().join("payplane-dev-tls");
    std::fs::create_dir_all(&dir)?;
    let cert = rcgen::generate_simple_self_signed(vec![
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
    ])?;
    let (cert_path, key_path) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert_path, cert.cert.pem())?;
    std::fs::write(&key_path, cert.signing_key.serialize_pem())?;
    Ok((cert_path, key_path))
}

/// Builds one service (binding its port and migrating its database) and runs it in a task.
macro_rules! start {
    ($krate:ident, $name:expr, $port:expr, $tls:expr, $tasks:expr) => {{
        let env = service_env($name, $port, $tls);
        if !matches!($name, "gateway" | "console") {
            let url = crate::ops::database_url(&Env::from_process(), $name);
            payplane_db::ensure_database(&url)
                .await
                .with_context(|| format!("creating the {} database", $name))?;
        }
        let config = $krate::Config::from_env(&env)?;
        let app = $krate::Application::build(config)
            .await
            .with_context(|| format!("starting {}", $name))?;
        let addr = app.local_addr();
        $tasks.spawn(async move {
            app.run_until_stopped()
                .await
                .with_context(|| format!("{} stopped with an error", $name))
        });
        addr
    }};
}

pub async fn run(args: DevArgs) -> anyhow::Result<()> {
    payplane_kit::telemetry::init();
    check_dependencies().await?;
    let tls = if args.tls { Some(self_signed()?) } else { None };
    let tls = tls.as_ref();
    let mut tasks = tokio::task::JoinSet::new();
    let mut lines = Vec::new();
    println!("payplane dev: starting the platform");
    for (name, port) in SERVICES {
        let addr = match name {
            "auth" => start!(payplane_auth, name, port, tls, tasks),
            "payments" => start!(payplane_payments, name, port, tls, tasks),
            "admin" => start!(payplane_admin, name, port, tls, tasks),
            "profile" => start!(payplane_profile, name, port, tls, tasks),
            "console" => start!(payplane_console, name, port, tls, tasks),
            _ => {
                // Seed before the gateway opens the door, so the demo logins work at once.
                let seeded = crate::ops::seed_all(&Env::from_process()).await?;
                lines.push(
                    String::from("demo logins (password ")
                        + payplane_auth::ops::DEMO_PASSWORD
                        + "):",
                );
                for (user, _) in &seeded {
                    lines.push(format!("  {:<22} {}", user.email, user.role.as_str()));
                }
                start!(payplane_gateway, name, port, tls, tasks)
            }
        };
        let addr = addr.with_context(|| format!("{name} has no local address"))?;
        let scheme = if name == "gateway" && tls.is_some() {
            "https"
        } else {
            "http"
        };
        println!("  {name:<9} {scheme}://{addr}");
    }
    let gateway = if tls.is_some() {
        "https://localhost:3000"
    } else {
        "http://localhost:3000"
    };
    println!("payplane dev is running (Ctrl-C stops everything)");
    println!("  Console    {gateway}/");
    println!(
        "  API        {gateway}/api/…   WebSocket {}/ws",
        gateway.replacen("http", "ws", 1)
    );
    println!("  API docs   {gateway}/api-docs   readiness {gateway}/health/ready");
    for line in lines {
        println!("{line}");
    }
    // Each service listens for Ctrl-C itself and drains; the first failure stops the rest.
    let mut result = Ok(());
    while let Some(done) = tasks.join_next().await {
        match done {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                result = Err(e);
                tasks.abort_all();
            }
            Err(e) if e.is_cancelled() => {}
            Err(e) => {
                result = Err(e.into());
                tasks.abort_all();
            }
        }
    }
    println!("payplane dev stopped");
    result
}
