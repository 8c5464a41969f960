//! A real Kubernetes control plane for tests: upstream etcd, kube-apiserver,
//! kube-controller-manager, kube-scheduler and kwok (simulated nodes), on loopback ports, one per
//! test binary.
//!
//! ```no_run
//! # async fn example() -> anyhow::Result<()> {
//! use payplane_control_plane::ControlPlane;
//!
//! let cp = ControlPlane::shared().await?; // started on first use, reused by every test
//! let ns = cp.namespace("orders").await?; // fresh namespace, deleted when `ns` drops
//! let admin = cp.admin_client()?; // system:masters
//! let limited = cp.client_as_service_account(ns.name(), "operator").await?; // that SA's RBAC only
//! # Ok(()) }
//! ```
//!
//! The binaries come from `tests/control-plane/build.sh` (see the README next to it). Every
//! component runs under a launcher that SIGKILLs it when the test process ends, however it ends,
//! and the temp directory is removed after them.

mod binaries;
mod go_modules;
mod launch;
mod pki;

use std::fmt::Write as _;
use std::future::Future;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, anyhow, bail};
use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{Namespace, Node, ServiceAccount};
use kube::api::{Api, DeleteParams, PostParams};
use serde_json::json;
use tokio::sync::OnceCell;

pub use binaries::{BIN_DIR_ENV, BUILD_SCRIPT, Binaries};
pub use go_modules::{CLOUDNATIVE_PG, GATEWAY_API, GoModuleFiles, RABBITMQ_CLUSTER_OPERATOR};

use launch::Component;
use pki::Pki;

/// Set to `1` to keep the control plane's temp directory (logs, etcd data, kubeconfigs) after
/// the test process ends; its path is printed at startup.
pub const KEEP_DIR_ENV: &str = "PAYPLANE_CONTROL_PLANE_KEEP";

/// The annotation and value kwok is told to manage nodes by.
const KWOK_NODE_ANNOTATION: (&str, &str) = ("kwok.x-k8s.io/node", "fake");

/// A pod with a container whose image ends in this fails (phase `Failed`, exit code 1) once
/// kwok has made it Running, instead of running on or completing: how a test makes a Job fail
/// (`kwok/stages.yaml`).
pub const FAILING_IMAGE_SUFFIX: &str = "-kwok-fails";

/// kwok's pod stages: its defaults plus the failing one of [`FAILING_IMAGE_SUFFIX`].
const KWOK_STAGES: &str = include_str!("../kwok/stages.yaml");

/// The simulated nodes every control plane gets.
const NODE_NAMES: [&str; 2] = ["kwok-node-0", "kwok-node-1"];

/// Issuer of service-account tokens, as on a default kubeadm cluster.
const SA_ISSUER: &str = "https://kubernetes.default.svc.cluster.local";

static SHARED: OnceCell<ControlPlane> = OnceCell::const_new();

/// A running control plane. Components stop when the test process exits.
pub struct ControlPlane {
    server: String,
    ca_der: Vec<u8>,
    ca_pem: String,
    admin_token: String,
    kubeconfig: PathBuf,
    dir: PathBuf,
    components: Vec<Component>,
    /// Removes `dir` after the process exits; `None` when [`KEEP_DIR_ENV`] asks to keep it.
    _janitor: Option<Component>,
    ready_in: Duration,
    namespaces: AtomicU64,
}

impl std::fmt::Debug for ControlPlane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ControlPlane")
            .field("server", &self.server)
            .field("dir", &self.dir)
            .field("ready_in", &self.ready_in)
            .finish_non_exhaustive()
    }
}

impl ControlPlane {
    /// The control plane of this test binary, started by the first caller (a few seconds) and
    /// shared by every test after it. A failed start is not cached: the next caller tries again.
    pub async fn shared() -> Result<&'static Self> {
        SHARED.get_or_try_init(Self::start).await
    }

    /// A client authenticated as a member of `system:masters` (every permission).
    ///
    /// Each call builds a new client on the current tokio runtime: a `kube::Client` lives on the
    /// runtime that built it, and every `#[tokio::test]` has its own.
    pub fn admin_client(&self) -> Result<kube::Client> {
        client_from(self.config_with_token(&self.admin_token)?)
    }

    /// The `kube::Config` behind [`Self::admin_client`], e.g. to build a client with other
    /// timeouts or a default namespace.
    pub fn admin_config(&self) -> Result<kube::Config> {
        self.config_with_token(&self.admin_token)
    }

    /// A client that authenticates as ServiceAccount `namespace/name` with a token from the
    /// TokenRequest API, so that it has exactly the permissions RBAC grants that account. The
    /// account is created when it does not exist.
    pub async fn client_as_service_account(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<kube::Client> {
        let admin = self.admin_client()?;
        let accounts: Api<ServiceAccount> = Api::namespaced(admin, namespace);
        if accounts.get_opt(name).await?.is_none() {
            let account: ServiceAccount = serde_json::from_value(json!({
                "metadata": { "name": name, "namespace": namespace }
            }))?;
            match accounts.create(&PostParams::default(), &account).await {
                // Another test may have created it in between: that is the same account.
                Ok(_) => {}
                Err(kube::Error::Api(status)) if status.code == 409 => {}
                Err(e) => {
                    return Err(e)
                        .with_context(|| format!("creating ServiceAccount {namespace}/{name}"));
                }
            }
        }
        let request = TokenRequest {
            spec: TokenRequestSpec {
                expiration_seconds: Some(3600),
                ..TokenRequestSpec::default()
            },
            ..TokenRequest::default()
        };
        let token = accounts
            .create_token_request(name, &PostParams::default(), &request)
            .await
            .with_context(|| format!("TokenRequest for ServiceAccount {namespace}/{name}"))?
            .status
            .context("TokenRequest answered without a status")?
            .token;
        let mut config = self.config_with_token(&token)?;
        namespace.clone_into(&mut config.default_namespace);
        client_from(config)
    }

    /// A fresh namespace named `<prefix>-<n>-<random>`, deleted (best effort, without waiting)
    /// when the returned value drops.
    pub async fn namespace(&self, prefix: &str) -> Result<TestNamespace> {
        let n = self.namespaces.fetch_add(1, Ordering::Relaxed);
        let mut suffix = [0_u8; 3];
        aws_lc_rs::rand::fill(&mut suffix).map_err(|_| anyhow!("no randomness"))?;
        let name = format!("{}-{n}-{}", dns_label_prefix(prefix), pki::hex(&suffix));
        let namespace: Namespace = serde_json::from_value(json!({
            "metadata": { "name": name, "labels": { "payplane.dev/test-namespace": "true" } }
        }))?;
        Api::<Namespace>::all(self.admin_client()?)
            .create(&PostParams::default(), &namespace)
            .await
            .with_context(|| format!("creating namespace {name}"))?;
        Ok(TestNamespace {
            name,
            config: self.admin_config()?,
            armed: true,
        })
    }

    /// A kubeconfig file for the admin identity (for `kubectl --kubeconfig` in tests or by hand;
    /// it lives in the temp directory, which goes away with the test process unless
    /// [`KEEP_DIR_ENV`] is set).
    pub fn kubeconfig_path(&self) -> &Path {
        &self.kubeconfig
    }

    /// `https://127.0.0.1:<port>`.
    pub fn server_url(&self) -> &str {
        &self.server
    }

    /// The CA that signed the API server's certificate, PEM.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// Names of the kwok nodes (Ready, schedulable, no taints).
    pub fn node_names(&self) -> &'static [&'static str] {
        &NODE_NAMES
    }

    /// The temp directory: kubeconfigs, certificates, etcd data and `logs/<component>.log`.
    pub fn work_dir(&self) -> &Path {
        &self.dir
    }

    /// Adds kwok nodes until there are `count` in all (each takes 110 pods, as a kubelet does
    /// by default), and waits until the scheduler can use them: for tests with many pods.
    pub async fn ensure_nodes(&self, count: usize) -> Result<()> {
        let admin = self.admin_client()?;
        let nodes: Api<Node> = Api::all(admin.clone());
        let mut names = Vec::new();
        for i in 0..count {
            let name = format!("kwok-node-{i}");
            if nodes.get_opt(&name).await?.is_none() {
                create_node(&admin, &name).await?;
            }
            names.push(name);
        }
        eventually(
            Duration::from_secs(90),
            "added nodes Ready and untainted",
            || {
                let (nodes, names) = (nodes.clone(), names.clone());
                async move {
                    for name in names {
                        let node = nodes.get(&name).await?;
                        let tainted = node
                            .spec
                            .as_ref()
                            .and_then(|s| s.taints.as_ref())
                            .is_some_and(|t| !t.is_empty());
                        if !node_ready(&node) || tainted {
                            return Ok(Err(format!("{name} not usable yet")));
                        }
                    }
                    Ok(Ok(()))
                }
            },
        )
        .await
    }

    /// How long the start took, from locating the binaries to Ready nodes.
    pub fn ready_in(&self) -> Duration {
        self.ready_in
    }

    /// Components that are no longer running, each with the tail of its log; empty when all are
    /// up. [`eventually`] adds this to its timeout error.
    pub fn dead_components(&self) -> String {
        self.components
            .iter()
            .filter(|c| c.exited().is_some())
            .map(Component::report)
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn config_with_token(&self, token: &str) -> Result<kube::Config> {
        let mut config = kube::Config::new(self.server.parse().context("server URL")?);
        config.root_cert = Some(vec![self.ca_der.clone()]);
        config.auth_info.token = Some(token.to_owned().into());
        Ok(config)
    }

    async fn start() -> Result<Self> {
        let started = Instant::now();
        let bins = Binaries::locate()?;
        let dir = make_work_dir()?;
        let keep = std::env::var(KEEP_DIR_ENV).is_ok_and(|v| v == "1");
        // Started first so that the directory goes away even if the start fails half way.
        let janitor = if keep {
            None
        } else {
            Some(Component::janitor(&dir)?)
        };
        let mut starting = Starting {
            components: Vec::new(),
        };
        match starting.run(&bins, &dir).await {
            Ok(ready) => {
                let ready_in = started.elapsed();
                eprintln!(
                    "[control-plane] ready in {:.1}s at {} (dir {}{})",
                    ready_in.as_secs_f64(),
                    ready.server,
                    dir.display(),
                    if keep { ", kept" } else { "" }
                );
                Ok(Self {
                    server: ready.server,
                    ca_der: ready.pki.ca_der,
                    ca_pem: ready.pki.ca_pem,
                    admin_token: ready.admin_token,
                    kubeconfig: ready.kubeconfig,
                    dir,
                    components: starting.components,
                    _janitor: janitor,
                    ready_in,
                    namespaces: AtomicU64::new(0),
                })
            }
            Err(e) => {
                let mut reports = String::new();
                for c in &starting.components {
                    let _ = writeln!(reports, "{}", c.report());
                }
                // Dropping `starting` and `janitor` stops what did start and removes the dir.
                Err(e.context(format!(
                    "starting the control plane (dir {}; set {KEEP_DIR_ENV}=1 to keep it)\n{reports}",
                    dir.display()
                )))
            }
        }
    }
}

/// What a successful start hands over.
struct Ready {
    server: String,
    pki: Pki,
    admin_token: String,
    kubeconfig: PathBuf,
}

/// The components started so far; dropping it stops them.
struct Starting {
    components: Vec<Component>,
}

impl Starting {
    #[expect(
        clippy::too_many_lines,
        reason = "the control plane's start-up order (certificates, etcd, apiserver, controllers, kwok) reads as one sequence"
    )]
    async fn run(&mut self, bins: &Binaries, dir: &Path) -> Result<Ready> {
        let logs = dir.join("logs");
        let home = dir.join("home");
        let tmp = dir.join("tmp");
        for d in [&logs, &home, &tmp] {
            std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
        }
        // HOME and TMPDIR inside the temp dir: kwok reads ~/.kwok/kwok.yaml and client-go caches
        // discovery under ~/.kube, neither of which may leak in from (or into) the user's home.
        let env: [(&str, &Path); 2] = [("HOME", &home), ("TMPDIR", &tmp)];
        let spawn =
            |name, bin: &Path, args: Vec<String>| Component::spawn(name, bin, &args, &env, &logs);

        let pki = Pki::generate(dir)?;
        let [etcd_port, peer_port, api_port] = free_ports::<3>()?;
        let server = format!("https://127.0.0.1:{api_port}");

        let tokens = Tokens::generate()?;
        let token_file = dir.join("tokens.csv");
        // Static tokens: user, uid, groups. The controller manager and scheduler use the
        // identities the bootstrap RBAC policy binds their roles to, as on a kubeadm cluster.
        std::fs::write(
            &token_file,
            format!(
                "{},payplane-admin,payplane-admin,\"system:masters\"\n\
                 {},system:kube-controller-manager,system:kube-controller-manager\n\
                 {},system:kube-scheduler,system:kube-scheduler\n\
                 {},kwok,kwok,\"system:masters\"\n",
                tokens.admin, tokens.controller_manager, tokens.scheduler, tokens.kwok
            ),
        )
        .context("writing the token file")?;
        let kubeconfig = |name: &str, token: &str| {
            write_kubeconfig(
                &dir.join(format!("{name}.kubeconfig")),
                &server,
                &pki.ca_cert,
                name,
                token,
            )
        };
        let admin_kubeconfig = kubeconfig("admin", &tokens.admin)?;
        let kcm_kubeconfig = kubeconfig("kube-controller-manager", &tokens.controller_manager)?;
        let scheduler_kubeconfig = kubeconfig("kube-scheduler", &tokens.scheduler)?;
        let kwok_kubeconfig = kubeconfig("kwok", &tokens.kwok)?;
        let kwok_stages = dir.join("kwok-stages.yaml");
        std::fs::write(&kwok_stages, KWOK_STAGES)
            .with_context(|| format!("writing {}", kwok_stages.display()))?;

        let etcd_url = format!("http://127.0.0.1:{etcd_port}");
        let peer_url = format!("http://127.0.0.1:{peer_port}");
        self.components.push(spawn(
            "etcd",
            &bins.etcd,
            vec![
                "--name=default".into(),
                format!("--data-dir={}", dir.join("etcd").display()),
                format!("--listen-client-urls={etcd_url}"),
                format!("--advertise-client-urls={etcd_url}"),
                format!("--listen-peer-urls={peer_url}"),
                format!("--initial-advertise-peer-urls={peer_url}"),
                format!("--initial-cluster=default={peer_url}"),
                // Throw-away data: skipping fsync keeps writes fast on a disk shared with builds.
                "--unsafe-no-fsync".into(),
                "--log-level=warn".into(),
            ],
        )?);
        // The API server gives up when etcd is not there yet, so it starts once etcd listens.
        self.wait_for_tcp(etcd_port, Duration::from_secs(30))
            .await?;

        self.components.push(spawn(
            "kube-apiserver",
            &bins.kube_apiserver,
            vec![
                format!("--etcd-servers={etcd_url}"),
                "--bind-address=127.0.0.1".into(),
                "--advertise-address=127.0.0.1".into(),
                format!("--secure-port={api_port}"),
                // The `kubernetes` Service's endpoints would be 127.0.0.1, which endpoint
                // validation rejects; nothing in the tests dials that Service.
                "--endpoint-reconciler-type=none".into(),
                format!("--cert-dir={}", dir.join("apiserver-certs").display()),
                format!("--tls-cert-file={}", pki.serving_cert.display()),
                format!("--tls-private-key-file={}", pki.serving_key.display()),
                format!("--token-auth-file={}", token_file.display()),
                "--authorization-mode=Node,RBAC".into(),
                format!("--service-account-issuer={SA_ISSUER}"),
                format!(
                    "--service-account-key-file={}",
                    pki.service_account_pub.display()
                ),
                format!(
                    "--service-account-signing-key-file={}",
                    pki.service_account_key.display()
                ),
                "--service-cluster-ip-range=10.96.0.0/16".into(),
                // As kubeadm and kind set it: a chart that asks for a privileged container must
                // not fail here when it would install on a real cluster.
                "--allow-privileged=true".into(),
                "--profiling=false".into(),
            ],
        )?);
        let admin = {
            let mut config = kube::Config::new(server.parse().context("server URL")?);
            config.root_cert = Some(vec![pki.ca_der.clone()]);
            config.auth_info.token = Some(tokens.admin.clone().into());
            client_from(config)?
        };
        self.wait_for_readyz(&admin, Duration::from_secs(120))
            .await?;

        self.components.push(spawn(
            "kube-controller-manager",
            &bins.kube_controller_manager,
            vec![
                format!("--kubeconfig={}", kcm_kubeconfig.display()),
                // Every default-on controller: ReplicaSet, Deployment, Job, garbage collector,
                // namespace, service account, node lifecycle...
                "--controllers=*".into(),
                // Each controller acts as its own ServiceAccount, so RBAC is exercised as on a
                // real cluster.
                "--use-service-account-credentials=true".into(),
                format!(
                    "--service-account-private-key-file={}",
                    pki.service_account_key.display()
                ),
                format!("--root-ca-file={}", pki.ca_cert.display()),
                "--leader-elect=false".into(),
                // No HTTPS endpoint: nothing scrapes it, and it would be one more port to pick.
                "--secure-port=0".into(),
                "--cluster-name=payplane-test".into(),
                // The default 20 QPS throttles startup: with per-controller credentials it makes
                // a ServiceAccount and a token for each of some 40 controllers (~5 s of waiting).
                "--kube-api-qps=200".into(),
                "--kube-api-burst=400".into(),
            ],
        )?);
        self.components.push(spawn(
            "kube-scheduler",
            &bins.kube_scheduler,
            vec![
                format!("--kubeconfig={}", scheduler_kubeconfig.display()),
                "--leader-elect=false".into(),
                "--secure-port=0".into(),
            ],
        )?);
        self.components.push(spawn(
            "kwok",
            &bins.kwok,
            vec![
                format!("--kubeconfig={}", kwok_kubeconfig.display()),
                "--manage-all-nodes=false".into(),
                format!(
                    "--manage-nodes-with-annotation-selector={}={}",
                    KWOK_NODE_ANNOTATION.0, KWOK_NODE_ANNOTATION.1
                ),
                format!("--config={}", kwok_stages.display()),
                // Renew a Lease per node, as a kubelet does. Without it kwok v0.7.0 picks its
                // heartbeat-with-lease stage (a node status update every 10 minutes) yet renews
                // no lease, so the node lifecycle controller marks both nodes NotReady after its
                // 50 s grace period, and every pod Ready=False with them — for good, since
                // kwok's pod stages do not make a Running pod Ready again.
                "--node-lease-duration-seconds=40".into(),
                // The address the fake nodes report; nothing listens there (no --node-port),
                // so `kubectl logs` fails fast instead of dialling anywhere off the machine.
                "--node-ip=127.0.0.1".into(),
            ],
        )?);

        create_nodes(&admin).await?;
        self.wait_until_usable(&admin, Duration::from_secs(90))
            .await?;

        Ok(Ready {
            server,
            pki,
            admin_token: tokens.admin,
            kubeconfig: admin_kubeconfig,
        })
    }

    /// Fails at once when a started component has exited, naming it.
    fn check_alive(&self) -> Result<()> {
        match self.components.iter().find(|c| c.exited().is_some()) {
            Some(c) => bail!("{} exited during startup", c.name()),
            None => Ok(()),
        }
    }

    async fn wait_for_tcp(&self, port: u16, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            self.check_alive()?;
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("nothing listened on 127.0.0.1:{port} within {timeout:?}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn wait_for_readyz(&self, admin: &kube::Client, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            self.check_alive()?;
            let request = http::Request::get("/readyz")
                .body(Vec::new())
                .context("building GET /readyz")?;
            let Err(last) = admin.request_text(request).await else {
                return Ok(());
            };
            if Instant::now() > deadline {
                bail!("kube-apiserver not ready within {timeout:?}: {last}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Usable = kwok has made the nodes Ready, the node lifecycle controller has lifted the
    /// not-ready taint the API server put on them (so the scheduler will place pods there), and
    /// the service-account controller has made `default` in `default` (pods need it).
    async fn wait_until_usable(&self, admin: &kube::Client, timeout: Duration) -> Result<()> {
        let nodes: Api<Node> = Api::all(admin.clone());
        let accounts: Api<ServiceAccount> = Api::namespaced(admin.clone(), "default");
        let deadline = Instant::now() + timeout;
        loop {
            self.check_alive()?;
            let mut pending = Vec::new();
            for name in NODE_NAMES {
                let node = nodes.get(name).await?;
                if !node_ready(&node) {
                    pending.push(format!("node {name} not Ready (kwok)"));
                } else if node
                    .spec
                    .as_ref()
                    .and_then(|s| s.taints.as_ref())
                    .is_some_and(|t| !t.is_empty())
                {
                    pending.push(format!(
                        "node {name} still tainted (node lifecycle controller)"
                    ));
                }
            }
            if accounts.get_opt("default").await?.is_none() {
                pending
                    .push("no ServiceAccount default/default (service-account controller)".into());
            }
            if pending.is_empty() {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "control plane not usable within {timeout:?}: {}",
                    pending.join("; ")
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

struct Tokens {
    admin: String,
    controller_manager: String,
    scheduler: String,
    kwok: String,
}

impl Tokens {
    fn generate() -> Result<Self> {
        Ok(Self {
            admin: pki::random_token()?,
            controller_manager: pki::random_token()?,
            scheduler: pki::random_token()?,
            kwok: pki::random_token()?,
        })
    }
}

/// A namespace for one test. Dropping it asks the API server to delete it and does not wait;
/// [`TestNamespace::delete`] waits until it is gone.
#[derive(Debug)]
pub struct TestNamespace {
    name: String,
    config: kube::Config,
    armed: bool,
}

impl TestNamespace {
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Deletes the namespace and waits until the namespace controller has emptied and removed
    /// it (404).
    pub async fn delete(mut self, timeout: Duration) -> Result<()> {
        self.armed = false;
        let namespaces: Api<Namespace> = Api::all(client_from(self.config.clone())?);
        namespaces
            .delete(&self.name, &DeleteParams::background())
            .await
            .with_context(|| format!("deleting namespace {}", self.name))?;
        let name = self.name.clone();
        eventually(timeout, &format!("namespace {name} to be gone"), || {
            let namespaces = namespaces.clone();
            let name = name.clone();
            async move {
                Ok(match namespaces.get_opt(&name).await? {
                    None => Ok(()),
                    Some(ns) => Err(format!(
                        "phase {:?}, conditions {:?}",
                        ns.status.as_ref().and_then(|s| s.phase.clone()),
                        ns.status
                            .as_ref()
                            .and_then(|s| s.conditions.as_ref())
                            .map(|c| c
                                .iter()
                                .filter(|c| c.status == "True")
                                .map(|c| format!(
                                    "{}: {}",
                                    c.type_,
                                    c.message.clone().unwrap_or_default()
                                ))
                                .collect::<Vec<_>>())
                    )),
                })
            }
        })
        .await
    }
}

impl Drop for TestNamespace {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        // Drop cannot await, and the test's runtime may be shutting down (tasks spawned on it
        // now would be cancelled): one request on a runtime of its own, on its own thread, with
        // a bound so that a dead API server cannot hang the test.
        let config = self.config.clone();
        let name = std::mem::take(&mut self.name);
        let deleter = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            runtime.block_on(async move {
                let Ok(client) = client_from(config) else {
                    return;
                };
                let namespaces: Api<Namespace> = Api::all(client);
                let _ = tokio::time::timeout(
                    Duration::from_secs(5),
                    namespaces.delete(&name, &DeleteParams::background()),
                )
                .await;
            });
        });
        let _ = deleter.join();
    }
}

/// Polls `probe` until it returns `Ok(Ok(value))`, or fails after `timeout`.
///
/// `probe` returns `Ok(Err(state))` while the condition does not hold yet, `state` describing
/// what it saw (it ends up in the timeout error), and `Err(_)` for a failure that waiting will
/// not fix, which is returned at once. The timeout error also reports any control-plane
/// component that has died, with its log tail.
pub async fn eventually<T, F, Fut>(timeout: Duration, what: &str, mut probe: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Result<T, String>>>,
{
    let deadline = Instant::now() + timeout;
    let mut interval = Duration::from_millis(50);
    loop {
        let state = match probe().await? {
            Ok(value) => return Ok(value),
            Err(state) => state,
        };
        if Instant::now() >= deadline {
            let dead = SHARED
                .get()
                .map(ControlPlane::dead_components)
                .unwrap_or_default();
            if dead.is_empty() {
                bail!("timed out after {timeout:?} waiting for {what}; last seen: {state}");
            }
            bail!(
                "timed out after {timeout:?} waiting for {what}; last seen: {state}\n\
                 dead control-plane components:\n{dead}"
            );
        }
        tokio::time::sleep(interval).await;
        interval = (interval * 2).min(Duration::from_millis(500));
    }
}

fn client_from(config: kube::Config) -> Result<kube::Client> {
    // kube's rustls needs a process-wide crypto provider once both aws-lc-rs and ring are in
    // the dependency tree; an error only means one is installed already.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    kube::Client::try_from(config).context("building a kube client")
}

fn node_ready(node: &Node) -> bool {
    node.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

async fn create_nodes(admin: &kube::Client) -> Result<()> {
    for name in NODE_NAMES {
        create_node(admin, name).await?;
    }
    Ok(())
}

/// Creates one kwok node (110 pods, like a kubelet's default).
async fn create_node(admin: &kube::Client, name: &str) -> Result<()> {
    let node: Node = serde_json::from_value(json!({
        "metadata": {
            "name": name,
            "annotations": { KWOK_NODE_ANNOTATION.0: KWOK_NODE_ANNOTATION.1 },
            "labels": {
                "type": "kwok",
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
            },
        },
        // What the scheduler fits pods against; kwok keeps a status that is already set.
        "status": {
            "allocatable": { "cpu": "32", "memory": "256Gi", "pods": "110" },
            "capacity": { "cpu": "32", "memory": "256Gi", "pods": "110" },
        },
    }))?;
    Api::<Node>::all(admin.clone())
        .create(&PostParams::default(), &node)
        .await
        .with_context(|| format!("creating node {name}"))?;
    Ok(())
}

fn write_kubeconfig(
    path: &Path,
    server: &str,
    ca: &Path,
    user: &str,
    token: &str,
) -> Result<PathBuf> {
    // JSON is YAML: client-go, kubectl and kube-rs all read it.
    let config = json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{ "name": "payplane-test", "cluster": {
            "server": server,
            "certificate-authority": ca,
        }}],
        "users": [{ "name": user, "user": { "token": token } }],
        "contexts": [{ "name": "payplane-test", "context": {
            "cluster": "payplane-test",
            "user": user,
        }}],
        "current-context": "payplane-test",
    });
    std::fs::write(path, serde_json::to_vec_pretty(&config)?)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(path.to_owned())
}

/// A fresh, private temp directory for one control plane.
fn make_work_dir() -> Result<PathBuf> {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let dir = std::env::temp_dir().join(format!(
        "payplane-control-plane-{}-{nanos:08x}",
        std::process::id()
    ));
    // Keys and tokens live here: owner only.
    std::os::unix::fs::DirBuilderExt::mode(&mut std::fs::DirBuilder::new(), 0o700)
        .create(&dir)
        .with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir)
}

/// `N` distinct free loopback ports. All listeners are held until every port is picked so that
/// the kernel cannot hand out the same one twice; a process elsewhere could still take one
/// before our component binds it, which startup then reports as that component exiting.
fn free_ports<const N: usize>() -> Result<[u16; N]> {
    let mut listeners = Vec::with_capacity(N);
    let mut ports = [0_u16; N];
    for port in &mut ports {
        let listener = TcpListener::bind("127.0.0.1:0").context("picking a free port")?;
        *port = listener.local_addr()?.port();
        listeners.push(listener);
    }
    Ok(ports)
}

/// A DNS-label-safe version of `prefix`, short enough to leave room for the suffix.
fn dns_label_prefix(prefix: &str) -> String {
    let mut out: String = prefix
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .take(40)
        .collect();
    out = out.trim_matches('-').to_owned();
    if out.is_empty() {
        out.push_str("test");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::dns_label_prefix;

    #[test]
    fn namespace_prefixes_become_dns_labels() {
        assert_eq!(dns_label_prefix("Orders_API"), "orders-api");
        assert_eq!(dns_label_prefix("--"), "test");
        assert_eq!(dns_label_prefix(&"x".repeat(80)).len(), 40);
    }
}
