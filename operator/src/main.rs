//! `payplane-operator`: runs the controllers (default), writes the CRDs (`crd`) or measures
//! convergence and memory on a real control plane for tests (`bench`, with the `testing`
//! feature).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use payplane_kit::server::shutdown_signal;
use payplane_operator::controller::{self, Ctx};
use payplane_operator::external::Externals;
use payplane_operator::metrics::Metrics;
use payplane_operator::process;

#[derive(Parser)]
#[command(
    name = "payplane-operator",
    version,
    about = "The payplane Kubernetes operator"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the controllers (the default).
    Run(RunArgs),
    /// Write the CustomResourceDefinitions as YAML files.
    Crd {
        /// Output directory.
        #[arg(long, default_value = "crds")]
        out: PathBuf,
    },
    /// Time a Platform's convergence and measure memory with 500 AppServices, on a real
    /// kube-apiserver with its controllers and kwok nodes started for the purpose (build with
    /// `--features testing`; see tests/control-plane).
    Bench {
        /// Number of AppServices for the memory figure.
        #[arg(long, default_value_t = 500)]
        apps: usize,
    },
}

#[derive(clap::Args, Default)]
struct RunArgs {
    /// Address of /metrics, /livez and /readyz.
    #[arg(
        long,
        env = "PAYPLANE_OPERATOR_HTTP_ADDR",
        default_value = "0.0.0.0:8080"
    )]
    http_addr: String,
    /// Namespace of the leader-election Lease.
    #[arg(long, env = "POD_NAMESPACE", default_value = "payplane-system")]
    lease_namespace: String,
    /// Identity in the leader election (the pod name).
    #[arg(long, env = "POD_NAME", default_value = "payplane-operator")]
    identity: String,
    /// Run without leader election (a single replica, or local development).
    #[arg(long, env = "PAYPLANE_OPERATOR_NO_LEADER_ELECTION")]
    no_leader_election: bool,
    /// Watch only this namespace (every namespace when absent).
    #[arg(long, env = "PAYPLANE_OPERATOR_WATCH_NAMESPACE")]
    watch_namespace: Option<String>,
}

fn main() -> anyhow::Result<()> {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Crd { out }) => write_crds(&out),
        Some(Command::Bench { apps }) => bench(apps),
        Some(Command::Run(args)) => runtime()?.block_on(run(args)),
        None => runtime()?.block_on(run(RunArgs::parse_from(["run"]))),
    }
}

impl RunArgs {
    fn parse_from<const N: usize>(args: [&str; N]) -> Self {
        #[derive(Parser)]
        struct Wrapper {
            #[command(flatten)]
            args: RunArgs,
        }
        Wrapper::parse_from(args).args
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

/// Writes the CRDs to `out` and, when run from the repository root, into the chart.
fn write_crds(out: &std::path::Path) -> anyhow::Result<()> {
    let chart = std::path::Path::new("charts/payplane/crds");
    let mut dirs = vec![out.to_path_buf()];
    if chart.is_dir() {
        dirs.push(chart.to_path_buf());
    }
    std::fs::create_dir_all(out)?;
    for (file, yaml) in payplane_operator::crd::render_all()? {
        for dir in &dirs {
            std::fs::write(dir.join(&file), &yaml)?;
            println!("wrote {}", dir.join(&file).display());
        }
    }
    Ok(())
}

async fn run(args: RunArgs) -> anyhow::Result<()> {
    // Kept until exit: dropping it flushes the last exported spans.
    let _telemetry = payplane_kit::telemetry::init_service("operator")?;
    let client = kube::Client::try_default()
        .await
        .context("building the Kubernetes client")?;
    let metrics = Arc::new(Metrics::default());
    let ready = Arc::new(AtomicBool::new(false));
    let addr: SocketAddr = args.http_addr.parse().context("--http-addr")?;
    let ops = tokio::spawn(process::serve_ops(addr, metrics.clone(), ready.clone()));
    let service_monitor = client
        .list_api_group_resources("monitoring.coreos.com/v1")
        .await
        .is_ok_and(|r| r.resources.iter().any(|x| x.name == "servicemonitors"));
    let ctx = Arc::new(
        Ctx::new(client.clone(), Externals::real(), metrics, service_monitor)
            .watching(args.watch_namespace.clone()),
    );
    ready.store(true, Ordering::Relaxed);
    let stopped = if args.no_leader_election {
        tracing::info!("starting controllers without leader election");
        // Boxed: seven controllers' state is too large a future for the stack frame.
        Box::pin(controller::run(ctx, shutdown_signal())).await;
        Ok(())
    } else {
        let election = process::Election {
            namespace: args.lease_namespace,
            identity: args.identity,
        };
        process::run_as_leader(client, &election, ctx, shutdown_signal()).await
    };
    ops.abort();
    Ok(stopped?)
}

#[cfg(feature = "testing")]
fn bench(apps: usize) -> anyhow::Result<()> {
    runtime()?.block_on(async {
        let report = payplane_operator::testing::bench(apps).await?;
        println!("{report}");
        Ok(())
    })
}

#[cfg(not(feature = "testing"))]
fn bench(_apps: usize) -> anyhow::Result<()> {
    anyhow::bail!(
        "the bench starts a Kubernetes control plane for tests, which this build leaves out: \
         cargo run --release -p payplane-operator --features testing -- bench"
    )
}
