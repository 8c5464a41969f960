//! A whole operator on the in-process fake API server: used by the scenario tests and the
//! `bench` subcommand. Starts the real controllers against `payplane-kube-fake`, applies
//! YAML, and plays the workload controllers (I/O: loopback HTTP).

use std::sync::Arc;
use std::time::{Duration, Instant};

use kube::Resource;
use kube::core::ApiResource;
use payplane_kube_fake::FakeApiServer;
use serde_json::Value;

use crate::controller::{self, Ctx};
use crate::crd::{
    AppService, Database, IngressCert, MessageBroker, Platform, PostgresCluster, Queue,
};
use crate::external::Externals;
use crate::metrics::Metrics;

/// Failures of the simulation harness.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// The fake API server failed.
    #[error(transparent)]
    Fake(#[from] payplane_kube_fake::FakeError),
    /// The fake API server refused an object.
    #[error(transparent)]
    Api(#[from] payplane_kube_fake::ApiError),
    /// YAML did not parse.
    #[error("yaml: {0}")]
    Yaml(String),
    /// A kind the harness cannot create.
    #[error("unknown kind {0}")]
    UnknownKind(String),
}

/// The type of a kind the harness can create from YAML.
pub fn resource_of(kind: &str) -> Option<ApiResource> {
    Some(match kind {
        "Platform" => ApiResource::erase::<Platform>(&()),
        "AppService" => ApiResource::erase::<AppService>(&()),
        "PostgresCluster" => ApiResource::erase::<PostgresCluster>(&()),
        "Database" => ApiResource::erase::<Database>(&()),
        "MessageBroker" => ApiResource::erase::<MessageBroker>(&()),
        "Queue" => ApiResource::erase::<Queue>(&()),
        "IngressCert" => ApiResource::erase::<IngressCert>(&()),
        "Secret" => ApiResource::erase::<k8s_openapi::api::core::v1::Secret>(&()),
        _ => return None,
    })
}

/// The `(apiVersion, plural)` of a payplane kind, for the fake server's helpers.
pub fn path_of<K: Resource<DynamicType = ()>>() -> (String, String) {
    (
        K::api_version(&()).into_owned(),
        K::plural(&()).into_owned(),
    )
}

/// A running operator on a fake API server.
pub struct Sim {
    /// The fake API server.
    pub fake: FakeApiServer,
    /// The controllers' context (metrics, externals).
    pub ctx: Arc<Ctx>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Sim {
    /// Starts the fake API server and every controller with `externals`.
    pub async fn start(externals: Externals) -> Result<Self, SimError> {
        let fake = FakeApiServer::start().await?;
        let client = fake.client()?;
        let ctx = Arc::new(Ctx::new(
            client,
            externals,
            Arc::new(Metrics::default()),
            false,
        ));
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let run_ctx = ctx.clone();
        let task = tokio::spawn(async move {
            controller::run(run_ctx, async move {
                let _ = rx.await;
            })
            .await;
        });
        Ok(Self {
            fake,
            ctx,
            stop: Some(tx),
            task: Some(task),
        })
    }

    /// Creates every document of a (multi-document) YAML file as a user would with kubectl.
    pub fn apply_yaml(&self, yaml: &str) -> Result<Vec<Value>, SimError> {
        let docs: Vec<Value> =
            serde_saphyr::from_multiple(yaml).map_err(|e| SimError::Yaml(e.to_string()))?;
        docs.into_iter()
            .filter(|d| !d.is_null())
            .map(|d| self.create(d))
            .collect()
    }

    /// Creates one object.
    pub fn create(&self, obj: Value) -> Result<Value, SimError> {
        let kind = obj
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let ar = resource_of(&kind).ok_or(SimError::UnknownKind(kind))?;
        let ns = obj
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .unwrap_or("default")
            .to_owned();
        Ok(self.fake.create(&ar.api_version, &ar.plural, &ns, obj)?)
    }

    /// Polls `check` every 20 ms until it holds or `timeout` passes, playing the workload
    /// controllers when `settle` is set.
    pub async fn wait_until(
        &self,
        timeout: Duration,
        settle: bool,
        mut check: impl FnMut(&Self) -> bool,
    ) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if settle {
                self.fake.settle_workloads();
            }
            if check(self) {
                return true;
            }
            if Instant::now() > deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Every object of the payplane kind `K` in `ns`.
    pub fn list<K: Resource<DynamicType = ()>>(&self, ns: &str) -> Vec<Value> {
        let (av, plural) = path_of::<K>();
        self.fake.list(&av, &plural, Some(ns))
    }

    /// One object of kind `K`.
    pub fn get<K: Resource<DynamicType = ()>>(&self, ns: &str, name: &str) -> Option<Value> {
        let (av, plural) = path_of::<K>();
        self.fake.get(&av, &plural, ns, name)
    }

    /// Stops the controllers.
    pub async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
        }
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// `Ready=True` with `observedGeneration == generation` on a stored object.
pub fn is_ready(obj: &Value) -> bool {
    let generation = obj.pointer("/metadata/generation").and_then(Value::as_i64);
    generation.is_some()
        && obj
            .pointer("/status/observedGeneration")
            .and_then(Value::as_i64)
            == generation
        && condition(obj, "Ready").is_some_and(|c| {
            c["status"] == "True" && c["observedGeneration"].as_i64() == generation
        })
}

/// One condition of a stored object.
pub fn condition(obj: &Value, type_: &str) -> Option<Value> {
    obj.pointer("/status/conditions")
        .and_then(Value::as_array)
        .and_then(|cs| cs.iter().find(|c| c["type"] == type_).cloned())
}
