//! `payplane-operator`: runs the controllers (default), writes the CRDs (`crd`) or measures
//! convergence and memory on the built-in fake API server (`bench`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context as _;
use axum::Router;
use axum::http::StatusCode;
use axum::routing::get;
use clap::{Parser, Subcommand};
use payplane_operator::controller::{self, Ctx};
use payplane_operator::external::Externals;
use payplane_operator::metrics::Metrics;

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
    /// Time a Platform's convergence and measure memory with 500 AppServices, on the
    /// in-process fake API server.
    Bench {
        /// Number of AppServices for the memory figure.
        #[arg(long, default_value_t = 500)]
        apps: usize,
    },
    /// The bench's fake API server, run as a separate process (internal).
    #[command(hide = true)]
    BenchServer,
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
}

fn main() -> anyhow::Result<()> {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Crd { out }) => write_crds(&out),
        Some(Command::Bench { apps }) => runtime()?.block_on(bench(apps)),
        Some(Command::BenchServer) => runtime()?.block_on(bench_server()),
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

fn init_logs() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,kube_runtime=warn"));
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_current_span(false)
        .try_init();
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        if let Ok(mut term) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            tokio::select! {
                _ = ctrl_c => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = ctrl_c.await;
}

async fn serve_http(
    addr: SocketAddr,
    metrics: Arc<Metrics>,
    ready: Arc<AtomicBool>,
) -> anyhow::Result<()> {
    let app = Router::new()
        .route("/metrics", get(move || async move { metrics.render() }))
        .route("/livez", get(|| async { "ok" }))
        .route(
            "/readyz",
            get(move || async move {
                if ready.load(Ordering::Relaxed) {
                    (StatusCode::OK, "ok")
                } else {
                    (StatusCode::SERVICE_UNAVAILABLE, "starting")
                }
            }),
        );
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding {addr}"))?;
    axum::serve(listener, app).await?;
    Ok(())
}

async fn run(args: RunArgs) -> anyhow::Result<()> {
    init_logs();
    let client = kube::Client::try_default()
        .await
        .context("building the Kubernetes client")?;
    let metrics = Arc::new(Metrics::default());
    let ready = Arc::new(AtomicBool::new(false));
    let addr: SocketAddr = args.http_addr.parse().context("--http-addr")?;
    let http = tokio::spawn(serve_http(addr, metrics.clone(), ready.clone()));
    let service_monitor = client
        .list_api_group_resources("monitoring.coreos.com/v1")
        .await
        .is_ok_and(|r| r.resources.iter().any(|x| x.name == "servicemonitors"));
    let ctx = Arc::new(Ctx::new(
        client.clone(),
        Externals::real(),
        metrics,
        service_monitor,
    ));
    ready.store(true, Ordering::Relaxed);

    if args.no_leader_election {
        tracing::info!("starting controllers without leader election");
        controller::run(ctx, shutdown_signal()).await;
        http.abort();
        return Ok(());
    }
    // Two replicas are safe: only the holder of the Lease runs controllers; a replica that
    // loses the Lease exits so Kubernetes restarts it as a standby.
    let manager = kube_lease_manager::LeaseManagerBuilder::new(client, "payplane-operator")
        .with_namespace(&args.lease_namespace)
        .with_identity(&args.identity)
        .with_duration(15)
        .with_grace(5)
        .build()
        .await
        .context("creating the leader-election lease manager")?;
    let (mut leader, lease_task) = manager.watch().await;
    tracing::info!(identity = %args.identity, "waiting for leadership");
    tokio::select! {
        r = leader.wait_for(|l| *l) => { r.context("lease watch ended")?; }
        () = shutdown_signal() => { return Ok(()); }
    }
    tracing::info!(identity = %args.identity, "became leader; starting controllers");
    let mut lost = leader.clone();
    let lost_leadership = Arc::new(AtomicBool::new(false));
    let flag = lost_leadership.clone();
    controller::run(ctx, async move {
        tokio::select! {
            _ = lost.wait_for(|l| !*l) => { flag.store(true, Ordering::Relaxed); }
            () = shutdown_signal() => {}
        }
    })
    .await;
    drop(leader);
    if let Ok(Ok(manager)) = lease_task.await {
        let _ = manager.release().await;
    }
    http.abort();
    if lost_leadership.load(Ordering::Relaxed) {
        anyhow::bail!("lost leadership");
    }
    Ok(())
}

fn rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(0.0);
    kib / 1024.0
}

/// The fake API server as its own process, so the bench measures the operator's memory
/// alone. Prints its URL, plays the workload controllers, and exits when stdin closes.
async fn bench_server() -> anyhow::Result<()> {
    use tokio::io::AsyncReadExt as _;
    let fake = payplane_kube_fake::FakeApiServer::start().await?;
    println!("{}", fake.url());
    let mut stdin = tokio::io::stdin();
    let mut buf = [0u8; 64];
    tokio::select! {
        () = fake.serve_settling(std::time::Duration::from_millis(20)) => {}
        _ = stdin.read(&mut buf) => {}
    }
    Ok(())
}

async fn create_all(client: &kube::Client, docs: Vec<serde_json::Value>) -> anyhow::Result<()> {
    use kube::api::{Api, DynamicObject, PostParams};
    for doc in docs {
        let kind = doc["kind"].as_str().unwrap_or_default();
        let ar = payplane_operator::sim::resource_of(kind)
            .ok_or_else(|| anyhow::anyhow!("unknown kind {kind}"))?;
        let ns = doc["metadata"]["namespace"]
            .as_str()
            .unwrap_or("default")
            .to_owned();
        let obj: DynamicObject = serde_json::from_value(doc)?;
        Api::<DynamicObject>::namespaced_with(client.clone(), &ns, &ar)
            .create(&PostParams::default(), &obj)
            .await?;
    }
    Ok(())
}

async fn count_ready<K>(client: &kube::Client, ns: &str) -> anyhow::Result<(usize, usize)>
where
    K: kube::Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + payplane_operator::crd::HasConditions
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    let list = kube::Api::<K>::namespaced(client.clone(), ns)
        .list(&kube::api::ListParams::default())
        .await?;
    let ready = list
        .items
        .iter()
        .filter(|o| payplane_operator::conditions::is_ready(*o))
        .count();
    Ok((ready, list.items.len()))
}

async fn platform_ready(client: &kube::Client, ns: &str) -> anyhow::Result<bool> {
    use payplane_operator::crd::{
        AppService, Database, IngressCert, MessageBroker, Platform, PostgresCluster, Queue,
    };
    for (ready, total) in [
        count_ready::<Platform>(client, ns).await?,
        count_ready::<AppService>(client, ns).await?,
        count_ready::<PostgresCluster>(client, ns).await?,
        count_ready::<Database>(client, ns).await?,
        count_ready::<MessageBroker>(client, ns).await?,
        count_ready::<Queue>(client, ns).await?,
        count_ready::<IngressCert>(client, ns).await?,
    ] {
        if total == 0 || ready < total {
            if std::env::var("PAYPLANE_BENCH_TRACE").is_ok() {
                eprintln!("{ready}/{total}");
            }
            return Ok(false);
        }
    }
    Ok(true)
}

async fn bench(apps: usize) -> anyhow::Result<()> {
    use std::time::{Duration, Instant};

    use tokio::io::AsyncBufReadExt as _;
    let timeout = Duration::from_secs(300);
    let mut server = tokio::process::Command::new(std::env::current_exe()?)
        .arg("bench-server")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let stdout = server
        .stdout
        .take()
        .ok_or_else(|| anyhow::anyhow!("no stdout from bench-server"))?;
    let url = tokio::io::BufReader::new(stdout)
        .lines()
        .next_line()
        .await?
        .ok_or_else(|| anyhow::anyhow!("bench-server printed no URL"))?;
    let mut config = kube::Config::new(url.parse()?);
    config.default_namespace = "default".into();
    let client = kube::Client::try_from(config)?;
    let metrics = Arc::new(Metrics::default());
    let ctx = Arc::new(Ctx::new(
        client.clone(),
        Externals::simulated(),
        metrics.clone(),
        false,
    ));
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let controllers = tokio::spawn(controller::run(ctx, async move {
        let _ = stop_rx.await;
    }));

    let started = Instant::now();
    let docs: Vec<serde_json::Value> =
        serde_saphyr::from_multiple(include_str!("../../examples/platform.yaml"))
            .map_err(|e| anyhow::anyhow!("examples/platform.yaml: {e}"))?;
    create_all(&client, docs).await?;
    while !platform_ready(&client, "payments").await? {
        if std::env::var("PAYPLANE_BENCH_TRACE").is_ok() {
            eprintln!(
                "t={} ms reconciles={}",
                started.elapsed().as_millis(),
                metrics.total_reconciles()
            );
        }
        anyhow::ensure!(
            started.elapsed() < timeout,
            "the Platform did not converge within {timeout:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let converge_ms = started.elapsed().as_millis();
    println!(
        "platform: converged in {converge_ms} ms after {} reconciles",
        metrics.total_reconciles()
    );

    let started = Instant::now();
    let docs = (0..apps)
        .map(|i| {
            serde_json::json!({
                "apiVersion": "payplane.dev/v1alpha1", "kind": "AppService",
                "metadata": {"name": format!("bench-{i}"), "namespace": "bench"},
                "spec": {"image": format!("bench/app:{i}"), "port": 8080, "replicas": 1}
            })
        })
        .collect();
    create_all(&client, docs).await?;
    loop {
        let (ready, total) =
            count_ready::<payplane_operator::crd::AppService>(&client, "bench").await?;
        if total == apps && ready == apps {
            break;
        }
        anyhow::ensure!(
            started.elapsed() < timeout,
            "{ready}/{apps} AppServices ready after {timeout:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    println!(
        "{apps} apps: ready in {} ms, {} reconciles in total",
        started.elapsed().as_millis(),
        metrics.total_reconciles()
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss = rss_mib();
    let _ = stop_tx.send(());
    let _ = tokio::time::timeout(Duration::from_secs(5), controllers).await;
    drop(server.stdin.take());
    let _ = server.kill().await;
    println!("operator: platform converged in {converge_ms} ms, {rss:.0} MiB with {apps} apps");
    Ok(())
}
