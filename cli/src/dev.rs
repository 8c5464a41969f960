//! `payplane dev`: the platform on this machine, in the foreground, against the local
//! PostgreSQL, Redis and RabbitMQ. Creates and migrates each service database, seeds the demo
//! data, prints the URLs and demo logins, and stops everything cleanly on Ctrl-C.

use std::time::Duration;

use anyhow::{Context, bail};
use clap::Args;
use payplane_auth::{Application, Config};
use payplane_kit::config::Env;
use tokio::net::TcpStream;

#[derive(Args)]
pub struct DevArgs {}

const PG_START: &str = "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start";
const REDIS_START: &str = "redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save \"\" --appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log";
const RABBIT_START: &str = "rabbitmq-server -detached";

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
    if !missing.is_empty() {
        bail!("{}", missing.join("\n"));
    }
    if !reachable("127.0.0.1:5672").await {
        eprintln!(
            "warning: RabbitMQ is not reachable on 127.0.0.1:5672; events stay in the outbox until it runs ({RABBIT_START})"
        );
    }
    Ok(())
}

pub async fn run(_args: DevArgs) -> anyhow::Result<()> {
    payplane_kit::telemetry::init();
    check_dependencies().await?;
    let env = Env::from_process();
    let auth_url = crate::ops::database_url(&env, "auth");
    payplane_db::ensure_database(&auth_url)
        .await
        .context("creating auth_db")?;

    let mut auth = Config::from_env(&env)?;
    auth.database_url = auth_url;
    auth.listen_addr = env.listen_addr("127.0.0.1:3001")?;
    if env.opt("REDIS_URL").is_none() {
        auth.redis_url = "redis://127.0.0.1:6379".into();
    }
    if env.opt("AMQP_URL").is_none() {
        auth.amqp_url = "amqp://guest:guest@127.0.0.1:5672/%2f".into();
    }
    let app = Application::build(auth).await.context("starting auth")?;
    let seeded = payplane_auth::ops::seed_users(&app.state().db, &app.state().hasher).await?;
    let addr = app.local_addr().context("auth has no local address")?;
    println!("payplane dev is running (Ctrl-C stops everything)");
    println!("  auth      http://{addr}/api/auth   (health: http://{addr}/health/ready)");
    println!(
        "demo logins (password {}):",
        payplane_auth::ops::DEMO_PASSWORD
    );
    for (user, _) in &seeded {
        println!("  {:<22} {}", user.email, user.role.as_str());
    }
    app.run_until_stopped().await?;
    println!("payplane dev stopped");
    Ok(())
}
