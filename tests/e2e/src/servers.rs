//! Restarting the real servers under a running platform, for the fault tests: a Redis of the
//! test's own (killed and started again empty, as a restart of the built-in Redis is), and the
//! machine's PostgreSQL and RabbitMQ (restarted with their own tools; the fault test binary
//! runs alone, so no other test shares them while it does).

use std::{
    net::TcpStream,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context, bail};

/// A redis-server on a loopback port of its own, without persistence.
pub struct PrivateRedis {
    child: Child,
    pub port: u16,
}

impl PrivateRedis {
    pub fn start() -> anyhow::Result<Self> {
        // Below the ephemeral range, as the platform's own ports (see `platform::free_port`).
        let port = crate::platform::free_port()?;
        let child = Self::spawn(port)?;
        Ok(Self { child, port })
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn spawn(port: u16) -> anyhow::Result<Child> {
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .spawn()
            .context("starting redis-server (installed by .ci/setup)")?;
        wait_port(port, Duration::from_secs(10))?;
        Ok(child)
    }

    /// SIGKILL, then the same port again with no data: what a restart of a Redis that keeps
    /// nothing on disk does to the platform.
    pub fn restart(&mut self) -> anyhow::Result<()> {
        self.child.kill()?;
        self.child.wait()?;
        self.child = Self::spawn(self.port)?;
        Ok(())
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn wait_port(port: u16, within: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + within;
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline {
            bail!("nothing listens on {port} after {within:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

fn run(program: &str, args: &[&str]) -> anyhow::Result<()> {
    let status = Command::new(program)
        .args(args)
        .stdout(Stdio::null())
        .status()
        .with_context(|| format!("running {program}"))?;
    if !status.success() {
        bail!("{program} {args:?} failed: {status}");
    }
    Ok(())
}

/// Restarts the machine's PostgreSQL cluster (fast shutdown: every connection is cut).
pub fn restart_postgres() -> anyhow::Result<()> {
    let version = std::fs::read_dir("/etc/postgresql")
        .context("PostgreSQL from Debian's packages (.ci/setup)")?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .max_by_key(|v| v.parse::<u32>().unwrap_or(0))
        .context("no PostgreSQL cluster")?;
    run(
        "pg_ctlcluster",
        &[
            "--skip-systemctl-redirect",
            &version,
            "main",
            "restart",
            "-m",
            "fast",
        ],
    )
}

/// Restarts the RabbitMQ application on the machine's node: every connection is closed and
/// the broker comes back with its durable (quorum) queues.
pub fn restart_rabbitmq() -> anyhow::Result<()> {
    run("rabbitmqctl", &["-q", "stop_app"])?;
    run("rabbitmqctl", &["-q", "start_app"])?;
    run("rabbitmqctl", &["-q", "await_startup"])
}
