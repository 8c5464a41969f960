//! An in-process fake Kubernetes API server for tests and the operator bench.
//!
//! It speaks enough of the REST API for the real `kube_runtime::Controller` to run against
//! it: list and watch (streamed from a resourceVersion, 410 when the history no longer reaches
//! back), create/replace/delete, server-side apply and merge/JSON patches, the status
//! subresource, `generation` bumped only on spec changes, no new resourceVersion and no watch
//! event for a no-op write, finalizers with `deletionTimestamp`, owner-reference garbage
//! collection, label and field selectors and `Status` error bodies. The helpers play the
//! controllers a real cluster has and this one lacks (Deployment, StatefulSet, Job).
//! Serves HTTP on 127.0.0.1 (network I/O).

mod merge;
mod selector;
mod server;
mod store;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use serde_json::{Value, json};

pub use selector::{FieldSelector, LabelSelector, SelectorError};
pub use store::{ApiError, PatchKind, ResourceType, Store};

/// Errors of starting the server or building a client for it.
#[derive(Debug, thiserror::Error)]
pub enum FakeError {
    /// Binding the loopback listener failed.
    #[error("binding the fake API server: {0}")]
    Bind(#[source] std::io::Error),
    /// The kube client could not be built for the server's address.
    #[error("building a kube client for the fake API server: {0}")]
    Client(#[source] kube::Error),
    /// The server URL did not parse.
    #[error("fake API server URL: {0}")]
    Url(String),
    /// An operation on a stored object failed.
    #[error(transparent)]
    Api(#[from] ApiError),
}

pub(crate) struct Shared {
    pub(crate) store: Mutex<Store>,
    pub(crate) requests: AtomicU64,
}

/// How many watch events are kept for watches that resume from a resourceVersion.
const HISTORY: usize = 4096;

/// A running fake API server; stops when dropped.
pub struct FakeApiServer {
    shared: Arc<Shared>,
    addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeApiServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeApiServer {
    /// Starts a server on 127.0.0.1 with an OS-assigned port.
    pub async fn start() -> Result<Self, FakeError> {
        let shared = Arc::new(Shared {
            store: Mutex::new(Store::new(HISTORY)),
            requests: AtomicU64::new(0),
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(FakeError::Bind)?;
        let addr = listener.local_addr().map_err(FakeError::Bind)?;
        // Without TCP_NODELAY small responses wait for delayed ACKs (tens of ms each).
        let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
            let _ = tcp.set_nodelay(true);
        });
        let app = server::router(shared.clone());
        let task = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::error!(error = %e, "fake API server stopped");
            }
        });
        Ok(Self { shared, addr, task })
    }

    /// The base URL (`http://127.0.0.1:<port>`).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A kube client talking to this server, with `default` as its default namespace.
    pub fn client(&self) -> Result<kube::Client, FakeError> {
        let uri: http::Uri = self
            .url()
            .parse()
            .map_err(|e: http::uri::InvalidUri| FakeError::Url(e.to_string()))?;
        let mut config = kube::Config::new(uri);
        config.default_namespace = "default".into();
        kube::Client::try_from(config).map_err(FakeError::Client)
    }

    fn with_store<T>(&self, f: impl FnOnce(&mut Store) -> T) -> T {
        let mut store = self
            .shared
            .store
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        f(&mut store)
    }

    /// Number of HTTP requests served so far.
    pub fn requests(&self) -> u64 {
        self.shared.requests.load(Ordering::Relaxed)
    }

    /// The latest resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.with_store(|s| s.resource_version())
    }

    /// Drops the watch history: every watch resuming from an older version gets 410 Gone.
    pub fn compact(&self) {
        self.with_store(Store::compact);
    }

    /// One object, if it exists (`api_version` like `apps/v1`, `plural` like `deployments`).
    pub fn get(&self, api_version: &str, plural: &str, ns: &str, name: &str) -> Option<Value> {
        self.with_store(|s| {
            s.get(&ResourceType::new(api_version, plural), ns, name)
                .ok()
        })
    }

    /// Every object of a type, in one namespace or all.
    pub fn list(&self, api_version: &str, plural: &str, ns: Option<&str>) -> Vec<Value> {
        let rt = ResourceType::new(api_version, plural);
        self.with_store(|s| {
            s.all(&rt)
                .into_iter()
                .filter(|o| {
                    ns.is_none_or(|ns| {
                        o.pointer("/metadata/namespace").and_then(Value::as_str) == Some(ns)
                    })
                })
                .collect()
        })
    }

    /// Creates an object directly in the store (as another client would).
    pub fn create(
        &self,
        api_version: &str,
        plural: &str,
        ns: &str,
        obj: Value,
    ) -> Result<Value, ApiError> {
        self.with_store(|s| s.create(&ResourceType::new(api_version, plural), ns, obj))
    }

    /// Deletes an object directly in the store (as `kubectl delete` would).
    pub fn delete(
        &self,
        api_version: &str,
        plural: &str,
        ns: &str,
        name: &str,
    ) -> Result<Value, ApiError> {
        self.with_store(|s| s.delete(&ResourceType::new(api_version, plural), ns, name))
    }

    /// Merge-patches an object's spec/metadata directly (as `kubectl edit` would).
    pub fn merge_patch(
        &self,
        api_version: &str,
        plural: &str,
        ns: &str,
        name: &str,
        patch: &Value,
    ) -> Result<Value, ApiError> {
        self.with_store(|s| {
            s.patch(
                &ResourceType::new(api_version, plural),
                ns,
                name,
                &PatchKind::Merge,
                patch,
                false,
            )
        })
    }

    /// Replaces an object's status through the status subresource.
    pub fn set_status(
        &self,
        api_version: &str,
        plural: &str,
        ns: &str,
        name: &str,
        status: &Value,
    ) -> Result<Value, ApiError> {
        self.with_store(|s| {
            let rt = ResourceType::new(api_version, plural);
            s.patch(
                &rt,
                ns,
                name,
                &PatchKind::Merge,
                &json!({"status": Value::Null}),
                true,
            )?;
            s.patch(
                &rt,
                ns,
                name,
                &PatchKind::Merge,
                &json!({ "status": status }),
                true,
            )
        })
    }

    /// Plays the Deployment controller: all replicas of the current generation available.
    pub fn mark_deployment_available(&self, ns: &str, name: &str) -> Result<Value, ApiError> {
        let d = self
            .get("apps/v1", "deployments", ns, name)
            .ok_or_else(|| {
                ApiError::new(404, "NotFound", format!("deployment {ns}/{name} not found"))
            })?;
        self.set_status(
            "apps/v1",
            "deployments",
            ns,
            name,
            &deployment_available_status(&d),
        )
    }

    /// Plays the StatefulSet controller: all replicas of the current generation ready.
    pub fn mark_statefulset_ready(&self, ns: &str, name: &str) -> Result<Value, ApiError> {
        let s = self
            .get("apps/v1", "statefulsets", ns, name)
            .ok_or_else(|| {
                ApiError::new(
                    404,
                    "NotFound",
                    format!("statefulset {ns}/{name} not found"),
                )
            })?;
        self.set_status(
            "apps/v1",
            "statefulsets",
            ns,
            name,
            &statefulset_ready_status(&s),
        )
    }

    /// Plays the Job controller: the Job succeeded.
    pub fn complete_job(&self, ns: &str, name: &str) -> Result<Value, ApiError> {
        self.set_status(
            "batch/v1",
            "jobs",
            ns,
            name,
            &json!({"succeeded": 1, "active": 0, "conditions": [
                {"type": "SuccessCriteriaMet", "status": "True"},
                {"type": "Complete", "status": "True"}]}),
        )
    }

    /// Plays the Job controller: the Job failed after its retries.
    pub fn fail_job(&self, ns: &str, name: &str) -> Result<Value, ApiError> {
        self.set_status(
            "batch/v1",
            "jobs",
            ns,
            name,
            &json!({"failed": 1, "active": 0, "conditions": [
                {"type": "FailureTarget", "status": "True", "reason": "BackoffLimitExceeded"},
                {"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded",
                 "message": "Job has reached the specified backoff limit"}]}),
        )
    }

    /// Plays every workload controller at once: each Deployment and StatefulSet whose status
    /// lags its generation becomes available, each unfinished Job completes. Returns how many
    /// objects it changed.
    pub fn settle_workloads(&self) -> usize {
        let deployments = ResourceType::new("apps/v1", "deployments");
        let statefulsets = ResourceType::new("apps/v1", "statefulsets");
        let jobs = ResourceType::new("batch/v1", "jobs");
        let lagging = |o: &Value| !deployment_current(o);
        let (d, s, j) = self.with_store(|st| {
            (
                st.select(&deployments, lagging),
                st.select(&statefulsets, lagging),
                st.select(&jobs, |o| o.pointer("/status/conditions").is_none()),
            )
        });
        let mut changed = 0;
        for obj in d {
            let (ns, name) = ns_name(&obj);
            changed += usize::from(self.mark_deployment_available(&ns, &name).is_ok());
        }
        for obj in s {
            let (ns, name) = ns_name(&obj);
            changed += usize::from(self.mark_statefulset_ready(&ns, &name).is_ok());
        }
        for obj in j {
            let (ns, name) = ns_name(&obj);
            changed += usize::from(self.complete_job(&ns, &name).is_ok());
        }
        changed
    }

    /// Serves until the process ends, playing the workload controllers every `every`
    /// (for running the fake API server as its own process).
    pub async fn serve_settling(&self, every: std::time::Duration) {
        loop {
            self.settle_workloads();
            tokio::time::sleep(every).await;
        }
    }
}

fn ns_name(obj: &Value) -> (String, String) {
    let s = |p: &str| {
        obj.pointer(p)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    (s("/metadata/namespace"), s("/metadata/name"))
}

fn generation(obj: &Value) -> i64 {
    obj.pointer("/metadata/generation")
        .and_then(Value::as_i64)
        .unwrap_or(1)
}

fn replicas(obj: &Value) -> i64 {
    obj.pointer("/spec/replicas")
        .and_then(Value::as_i64)
        .unwrap_or(1)
}

/// Whether a Deployment's / StatefulSet's status already describes its current generation.
fn deployment_current(obj: &Value) -> bool {
    obj.pointer("/status/observedGeneration")
        .and_then(Value::as_i64)
        == Some(generation(obj))
}

fn deployment_available_status(d: &Value) -> Value {
    let n = replicas(d);
    json!({
        "observedGeneration": generation(d),
        "replicas": n, "updatedReplicas": n, "readyReplicas": n, "availableReplicas": n,
        "conditions": [
            {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"},
            {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"}
        ]
    })
}

fn statefulset_ready_status(s: &Value) -> Value {
    let n = replicas(s);
    json!({
        "observedGeneration": generation(s),
        "replicas": n, "readyReplicas": n, "currentReplicas": n, "updatedReplicas": n, "availableReplicas": n
    })
}
