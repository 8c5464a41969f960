//! `payplane bench …`: load generators that print their figures and end with one summary line.

mod auth;
mod console;
mod graphql;
mod import;
mod phase;

use clap::Subcommand;

#[derive(Subcommand)]
pub enum BenchCommand {
    /// Register and login throughput and latency of the auth service (real argon2 cost).
    Auth(auth::AuthBenchArgs),
    /// Operator convergence time and memory on a real control plane for tests (runs
    /// `payplane-operator bench`, built with `--features testing`).
    Operator,
    /// Outbox → RabbitMQ → consumer throughput and latency against the raw broker ceiling.
    Events {
        /// Messages in the raw and saturation phases.
        #[arg(long)]
        messages: Option<usize>,
    },
    /// Authenticated create-payment throughput and latency against the same transaction in raw SQL
    /// (runs `payplane-payments-bench`).
    Payments {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Proxy throughput: upstream direct, through the gateway and through nginx
    /// (runs `payplane-gateway-bench proxy`).
    Gateway {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// The web console's payments list and admin dashboard through the gateway: peak pages/s,
    /// p99 at half of peak, first-load bytes.
    Console(console::ConsoleBenchArgs),
    /// The same list of 100 payments with both parties through the gateway as REST and as
    /// GraphQL: req/s, p99 and the GraphQL/REST throughput ratio.
    Graphql(graphql::GraphqlBenchArgs),
    /// `payplane import` of a generated source (100k users, 1M payments × 3 transactions):
    /// rows/s, peak memory, total time.
    Import(import::ImportBenchArgs),
    /// WebSocket fan-out to many sockets of one gateway process; `--graphql`: to GraphQL
    /// subscriptions (runs `payplane-gateway-bench ws`).
    Ws {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
}

pub async fn run(cmd: BenchCommand) -> anyhow::Result<()> {
    match cmd {
        BenchCommand::Auth(args) => auth::run(args).await,
        BenchCommand::Import(args) => import::run(args).await,
        BenchCommand::Graphql(args) => graphql::run(args).await,
        BenchCommand::Console(args) => console::run(args).await,
        BenchCommand::Operator => exec_sibling_built_with(
            "payplane-operator",
            &["bench"],
            "cargo build --release -p payplane-operator --features testing",
        ),
        BenchCommand::Events { messages } => {
            let mut opts = payplane_bus::bench::BenchOptions::default();
            if let Some(n) = messages {
                opts.messages = n;
            }
            println!("{}", payplane_bus::bench::run(opts).await?);
            Ok(())
        }
        BenchCommand::Payments { args } => exec_sibling_built_with(
            "payplane-payments-bench",
            &args,
            "cargo build --release -p payplane-payments --features testing --bins",
        ),
        BenchCommand::Gateway { args } => exec_sibling_built_with(
            "payplane-gateway-bench",
            &with_mode("proxy", &args),
            GATEWAY_BENCH_BUILD,
        ),
        BenchCommand::Ws { args } => exec_sibling_built_with(
            "payplane-gateway-bench",
            &with_mode("ws", &args),
            GATEWAY_BENCH_BUILD,
        ),
    }
}

/// The gateway's bench binary is behind its `bench` feature (it links a test auth service).
const GATEWAY_BENCH_BUILD: &str =
    "cargo build --release -p payplane-gateway --features bench --bins";

/// Runs a binary built next to this one (same cargo target directory) by `build`.
fn exec_sibling_built_with<S: AsRef<std::ffi::OsStr>>(
    binary: &str,
    args: &[S],
    build: &str,
) -> anyhow::Result<()> {
    let exe = std::env::current_exe()?;
    let path = exe.with_file_name(binary);
    if !path.exists() {
        anyhow::bail!("{} not found; build it first: {build}", path.display());
    }
    let status = std::process::Command::new(&path).args(args).status()?;
    if !status.success() {
        anyhow::bail!("{binary} exited with {status}");
    }
    Ok(())
}

fn with_mode(mode: &str, args: &[String]) -> Vec<String> {
    std::iter::once(mode.to_owned())
        .chain(args.iter().cloned())
        .collect()
}

/// Latency percentiles in milliseconds over a sorted sample; 0 for an empty one (a phase
/// that completed nothing prints zeros rather than failing).
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    payplane_kit::bench::percentile(sorted, p).unwrap_or(0.0)
}
