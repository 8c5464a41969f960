//! The controllers: shared context, server-side apply of children, removal of orphans by
//! label, status writing with conditions and Events, error classification and backoff, and
//! [`run`] that starts one `kube_runtime::Controller` per kind (I/O: Kubernetes API).
//!
//! Each kind is one pipeline in its own folder: `validate` (pure: the spec, or why it cannot
//! work), `build` (pure: the children), `apply` (the only part that talks to the API server,
//! PostgreSQL or RabbitMQ) and `status` (pure: a [`Report`] from what was observed). A step
//! may end the pipeline early with a report ([`Stop`]); [`finish`] writes whichever report
//! the pipeline ended with.

pub mod app_service;
pub mod credentials;
pub mod database;
pub mod finalizer;
pub mod ingress_cert;
pub mod message_broker;
pub mod platform;
pub mod postgres_cluster;
#[cfg(test)]
mod props;
pub mod provider;
pub mod queue;

use std::collections::{BTreeSet, HashMap};
use std::fmt::Debug;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams};
use kube::core::ApiResource;
use kube::runtime::controller::Action;
use kube::runtime::events::{Event as KubeEvent, EventType, Recorder, Reporter};
use kube::{Client, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::conditions::{self, Cond};
use crate::crd::HasConditions;
use crate::external::Externals;
use crate::meta::{Child, MANAGER, MetaError, OWNER_UID_LABEL};
use crate::metrics::Metrics;

/// Reconcile failures, named after what failed; each carries which object or name it was
/// about and its cause, maps to a metrics reason ([`Error::reason`]) and is retried with
/// backoff.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading an object (a referenced resource, a Secret, a Deployment) failed.
    #[error("reading {0}: {1}")]
    Read(String, #[source] kube::Error),
    /// Server-side applying a child (`Kind/name`) failed.
    #[error("applying {0}: {1}")]
    Apply(String, #[source] kube::Error),
    /// Listing or deleting the children an object no longer builds failed.
    #[error("pruning {0}: {1}")]
    Prune(String, #[source] kube::Error),
    /// Writing an object's status failed.
    #[error("writing the status of {0}: {1}")]
    WriteStatus(String, #[source] kube::Error),
    /// Adding or removing a finalizer failed.
    #[error("{0}: {1}")]
    Finalizer(String, #[source] kube::Error),
    /// A child could not be built.
    #[error(transparent)]
    Build(#[from] MetaError),
    /// Dropping a Database's database and roles on its server failed.
    #[error("dropping {0}: {1}")]
    DropDatabase(String, #[source] Box<crate::external::SqlError>),
    /// Deleting a Queue's users and queues on its broker failed.
    #[error("deleting {0}: {1}")]
    DeleteQueue(String, #[source] Box<crate::external::BrokerError>),
    /// Generating a key or issuing a certificate failed.
    #[error("{0}: {1}")]
    Issue(String, #[source] crate::tls::TlsError),
    /// The object (`Kind/name`) has no namespace (all payplane kinds are namespaced).
    #[error("{0} has no namespace")]
    NoNamespace(String),
}

impl Error {
    /// The HTTP status of the API server's answer behind this failure, if it is one.
    pub fn api_code(&self) -> Option<u16> {
        match self {
            Self::Read(_, e)
            | Self::Apply(_, e)
            | Self::Prune(_, e)
            | Self::WriteStatus(_, e)
            | Self::Finalizer(_, e) => api_code(e),
            _ => None,
        }
    }

    /// Short label for metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            // Forbidden is its own reason: it means the chart's RBAC lacks a verb, which no
            // retry fixes (the scenario tests assert there is none).
            _ if self.api_code() == Some(403) => "Forbidden",
            Self::Read(..) | Self::Apply(..) | Self::Prune(..) | Self::WriteStatus(..) => "KubeApi",
            Self::Build(_) => "Build",
            Self::DropDatabase(..) => "Postgres",
            Self::DeleteQueue(..) => "RabbitMQ",
            Self::Issue(..) => "Tls",
            Self::Finalizer(..) => "Finalizer",
            Self::NoNamespace(_) => "NoNamespace",
        }
    }
}

/// A reader's error: reading `what` failed.
pub fn reading(what: impl Into<String>) -> impl FnOnce(kube::Error) -> Error {
    move |e| Error::Read(what.into(), e)
}

/// The HTTP status of an API server's error answer.
fn api_code(e: &kube::Error) -> Option<u16> {
    match e {
        kube::Error::Api(status) => Some(status.code),
        _ => None,
    }
}

/// The metrics reason of a failed API call outside a reconcile.
fn code_reason(code: Option<u16>) -> &'static str {
    match code {
        Some(403) => "Forbidden",
        Some(410) => "Expired",
        _ => "KubeApi",
    }
}

/// Result of a reconcile step.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything a reconcile needs.
pub struct Ctx {
    /// The API client.
    pub client: Client,
    /// Publishes Kubernetes Events.
    pub recorder: Recorder,
    /// Reconcile counters and durations.
    pub metrics: Arc<Metrics>,
    /// PostgreSQL and RabbitMQ, real or simulated.
    pub externals: Externals,
    /// Whether the ServiceMonitor CRD exists.
    pub service_monitor: bool,
    /// The one namespace the controllers watch, or every namespace when `None`.
    pub watch_namespace: Option<String>,
    /// How often a Database or Queue re-checks its server without a trigger ([`RESYNC`]).
    pub resync: Duration,
    /// Consecutive failures per object, for exponential backoff.
    failures: Mutex<HashMap<String, u32>>,
}

impl Ctx {
    /// A context for `client`.
    pub fn new(
        client: Client,
        externals: Externals,
        metrics: Arc<Metrics>,
        service_monitor: bool,
    ) -> Self {
        let reporter = Reporter {
            controller: MANAGER.into(),
            instance: std::env::var("POD_NAME").ok(),
        };
        Self {
            recorder: Recorder::new(client.clone(), reporter),
            client,
            metrics,
            externals,
            service_monitor,
            watch_namespace: None,
            resync: RESYNC,
            failures: Mutex::new(HashMap::new()),
        }
    }

    /// Restricts the controllers to `namespace` (`--watch-namespace`): a team that may not
    /// grant cluster-wide reads, or one operator per test namespace on a shared API server.
    #[must_use]
    pub fn watching(mut self, namespace: Option<String>) -> Self {
        self.watch_namespace = namespace;
        self
    }

    /// Re-checks Databases and Queues every `resync` (the tests shorten it).
    #[must_use]
    pub fn with_resync(mut self, resync: Duration) -> Self {
        self.resync = resync;
        self
    }

    /// The API of `K` over the watched namespaces: what every controller lists and watches.
    pub fn watched<K>(&self) -> Api<K>
    where
        K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>,
    {
        match &self.watch_namespace {
            Some(ns) => Api::namespaced(self.client.clone(), ns),
            None => Api::all(self.client.clone()),
        }
    }

    fn failures(&self) -> std::sync::MutexGuard<'_, HashMap<String, u32>> {
        self.failures.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Publishes an Event about `obj`; a failure to publish is logged, never fatal.
    pub async fn event<K: Resource<DynamicType = ()>>(
        &self,
        obj: &K,
        warning: bool,
        reason: &str,
        note: String,
    ) {
        let ev = KubeEvent {
            type_: if warning {
                EventType::Warning
            } else {
                EventType::Normal
            },
            reason: reason.into(),
            note: Some(note),
            action: "Reconcile".into(),
            secondary: None,
        };
        if let Err(e) = self.recorder.publish(&ev, &obj.object_ref(&())).await {
            self.metrics.api_error("event", code_reason(api_code(&e)));
            tracing::warn!(error = %e, reason, "publishing an event failed");
        }
    }
}

/// A payplane kind as the controllers see it: namespaced, with conditions in its status.
pub trait Reconciled:
    Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
    + HasConditions
    + Clone
    + DeserializeOwned
    + Serialize
    + Debug
{
}

impl<K> Reconciled for K where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + HasConditions
        + Clone
        + DeserializeOwned
        + Serialize
        + Debug
{
}

/// The signal a controller runs until.
pub trait Shutdown: Future<Output = ()> + Send + Sync + 'static {}

impl<F: Future<Output = ()> + Send + Sync + 'static> Shutdown for F {}

/// Namespace of a namespaced object.
pub fn namespace<K: Resource<DynamicType = ()>>(obj: &K) -> Result<String> {
    obj.meta()
        .namespace
        .clone()
        .ok_or_else(|| Error::NoNamespace(format!("{}/{}", K::kind(&()), obj.name_any())))
}

/// Reads `name` of kind `K` in `ns`; `None` when it does not exist.
pub async fn get<K>(client: &Client, ns: &str, name: &str) -> Result<Option<K>>
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + Debug,
{
    Api::<K>::namespaced(client.clone(), ns)
        .get_opt(name)
        .await
        .map_err(reading(format!("{} {ns}/{name}", K::kind(&()))))
}

/// Server-side applies every child under the operator's field manager and returns the
/// objects as stored (including their status): the Roles first, then the others.
///
/// Roles go first, in a wave of their own: without the `bind` verb (which the chart does not
/// grant) the API server admits a RoleBinding only when the Role it names exists and grants
/// nothing the operator lacks, so applying both at once fails with "not found" until backoff.
pub async fn apply_children(
    client: &Client,
    ns: &str,
    children: &[Child],
) -> Result<Vec<DynamicObject>> {
    let params = PatchParams::apply(MANAGER).force();
    let api = |child: &Child| Api::namespaced_with(client.clone(), ns, &child.resource);
    let is_role = |child: &&Child| child.resource.kind == "Role";
    let mut applied = futures::future::try_join_all(
        children
            .iter()
            .filter(is_role)
            .map(|child| apply_one(api(child), &params, child)),
    )
    .await?;
    applied.extend(
        futures::future::try_join_all(
            children
                .iter()
                .filter(|c| !is_role(c))
                .map(|child| apply_one(api(child), &params, child)),
        )
        .await?,
    );
    Ok(applied)
}

async fn apply_one(
    api: Api<DynamicObject>,
    params: &PatchParams,
    child: &Child,
) -> Result<DynamicObject> {
    api.patch(&child.name, params, &Patch::Apply(&child.object))
        .await
        .map_err(|e| Error::Apply(child.id(), e))
}

/// Applies `children` and prunes what `owner_uid` owns of `kinds` that they no longer hold.
pub async fn sync_children(
    client: &Client,
    (ns, owner_uid): (&str, &str),
    children: &[Child],
    kinds: &[ApiResource],
) -> Result<Vec<DynamicObject>> {
    let applied = apply_children(client, ns, children).await?;
    prune(client, ns, owner_uid, kinds, &ids(children)).await?;
    Ok(applied)
}

/// Deletes children of `owner_uid` of the given types that are not in `keep` (`Kind/name`).
/// A type whose API does not exist (no cert-manager, no prometheus-operator) is skipped.
pub async fn prune(
    client: &Client,
    ns: &str,
    owner_uid: &str,
    kinds: &[ApiResource],
    keep: &BTreeSet<String>,
) -> Result<Vec<String>> {
    // One list per type, concurrently: most reconciles delete nothing.
    let per_kind = kinds.iter().map(|ar| async move {
        let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, ar);
        let names = owned(client, ns, owner_uid, ar)
            .await
            .map_err(|e| Error::Prune(format!("{} children", ar.kind), e))?;
        let mut deleted = Vec::new();
        for name in names {
            let id = format!("{}/{name}", ar.kind);
            if keep.contains(&id) {
                continue;
            }
            match api.delete(&name, &DeleteParams::background()).await {
                Ok(_) => deleted.push(id),
                Err(kube::Error::Api(e)) if e.code == 404 => {}
                Err(e) => return Err(Error::Prune(id, e)),
            }
        }
        Ok(deleted)
    });
    Ok(futures::future::try_join_all(per_kind)
        .await?
        .into_iter()
        .flatten()
        .collect())
}

/// The names of the objects of type `ar` in `ns` that `owner_uid` owns and that are not being
/// deleted; none when the API server does not serve the type.
pub async fn owned(
    client: &Client,
    ns: &str,
    owner_uid: &str,
    ar: &ApiResource,
) -> std::result::Result<Vec<String>, kube::Error> {
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, ar);
    let lp = ListParams::default().labels(&format!("{OWNER_UID_LABEL}={owner_uid}"));
    match api.list_metadata(&lp).await {
        Ok(list) => Ok(list
            .items
            .into_iter()
            .filter(|o| o.metadata.deletion_timestamp.is_none())
            .filter_map(|o| o.metadata.name)
            .collect()),
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}

/// `Kind/name` of each child, for [`prune`].
pub fn ids(children: &[Child]) -> BTreeSet<String> {
    children.iter().map(Child::id).collect()
}

/// Writes `.status` with `observedGeneration`, merged conditions and `extra` fields, and
/// publishes an Event when the `Ready` condition changes.
pub async fn write_status<K: Reconciled>(
    ctx: &Ctx,
    obj: &K,
    conds: &[Cond],
    extra: Value,
) -> Result<()> {
    let ns = namespace(obj)?;
    let generation = obj.meta().generation.unwrap_or(0);
    let merged = conditions::merge(
        obj.conditions(),
        conds,
        generation,
        &conditions::now_rfc3339(),
    );
    let mut status = json!({"observedGeneration": generation, "conditions": merged});
    if let (Some(s), Value::Object(extra)) = (status.as_object_mut(), extra) {
        s.extend(extra);
    }
    let api: Api<K> = Api::namespaced(ctx.client.clone(), &ns);
    let body = json!({"apiVersion": K::api_version(&()), "kind": K::kind(&()), "status": status});
    let name = obj.name_any();
    api.patch_status(
        &name,
        &PatchParams::apply(MANAGER).force(),
        &Patch::Apply(&body),
    )
    .await
    .map_err(|e| Error::WriteStatus(format!("{} {ns}/{name}", K::kind(&())), e))?;
    let before = obj
        .conditions()
        .iter()
        .find(|c| c.type_ == "Ready")
        .map(|c| (c.status.clone(), c.reason.clone()));
    if let Some(ready) = conds.iter().find(|c| c.type_ == "Ready") {
        let now = (
            if ready.status { "True" } else { "False" }.to_owned(),
            ready.reason.clone(),
        );
        if before.as_ref() != Some(&now) {
            let note = if ready.message.is_empty() {
                ready.reason.clone()
            } else {
                ready.message.clone()
            };
            ctx.event(
                obj,
                !ready.status && ready.reason != "Progressing",
                &ready.reason,
                note,
            )
            .await;
        }
    }
    Ok(())
}

/// What a reconcile tells about an object: its conditions, the status fields beside them and
/// when to look again. The `status` step of every kind computes one from what was observed
/// (pure); [`finish`] writes it.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// The conditions.
    pub conds: Vec<Cond>,
    /// Status fields beside the conditions.
    pub extra: Value,
    /// When to reconcile again without a trigger.
    pub action: Action,
}

impl Report {
    /// `Ready=True` with `message`, looked at again after `resync`.
    pub fn ready(message: &str, extra: Value, resync: Duration) -> Self {
        let conds = vec![
            Cond::yes("Ready", "Ready", message),
            Cond::no("Progressing", "Ready", message),
        ];
        Self::new(conds, extra, Action::requeue(resync))
    }

    /// `Ready=False` and `Progressing=True`: waiting on something, re-checked after [`WAIT`].
    pub fn waiting(reason: &str, message: String, extra: Value) -> Self {
        let conds = vec![
            Cond::no("Ready", reason, message.clone()),
            Cond::yes("Progressing", reason, message),
        ];
        Self::new(conds, extra, Action::requeue(WAIT))
    }

    /// `Ready=False` for a spec that cannot work; no progress until it changes.
    pub fn invalid(reason: &str, message: String) -> Self {
        let conds = vec![
            Cond::no("Ready", reason, message.clone()),
            Cond::no("Progressing", reason, message),
        ];
        Self::new(conds, json!({}), Action::await_change())
    }

    /// A built-in server run by a StatefulSet `name` among the `applied` objects: `Ready` with
    /// `running` once every replica is ready, else waiting on it.
    pub fn statefulset(applied: &[DynamicObject], name: &str, running: &str, extra: Value) -> Self {
        let is_sts = |o: &&DynamicObject| o.types.as_ref().is_some_and(|t| t.kind == "StatefulSet");
        if applied
            .iter()
            .filter(is_sts)
            .any(conditions::statefulset_ready)
        {
            Self::ready(running, extra, RESYNC)
        } else {
            let why = format!("StatefulSet {name} is not ready");
            Self::waiting("StatefulSetNotReady", why, extra)
        }
    }

    /// A report of `conds` and `extra`, reconciled again as `action` says.
    pub fn new(conds: Vec<Cond>, extra: Value, action: Action) -> Self {
        Self {
            conds,
            extra,
            action,
        }
    }

    /// The condition `type_` (tests).
    #[cfg(test)]
    pub fn cond(&self, type_: &str) -> &Cond {
        let found = self.conds.iter().find(|c| c.type_ == type_);
        found.unwrap_or_else(|| panic!("no condition {type_}"))
    }

    /// Status, reason and message of `Ready` (tests).
    #[cfg(test)]
    pub fn readiness(&self) -> (bool, &str, &str) {
        let c = self.cond("Ready");
        (c.status, c.reason.as_str(), c.message.as_str())
    }

    /// The same report with the status fields `extra`.
    #[must_use]
    pub fn with_extra(mut self, extra: Value) -> Self {
        self.extra = extra;
        self
    }
}

/// A spec the `validate` step refuses: reported as `Ready=False`, reason `InvalidSpec`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidSpec(pub String);

/// Why a pipeline ends before its `status` step: a report to write now (an invalid spec, a
/// dependency not ready yet) or a failure, retried with backoff.
#[derive(Debug)]
pub enum Stop {
    /// Write this status and stop.
    Report(Report),
    /// Fail the reconcile.
    Failed(Error),
}

#[cfg(test)]
impl Stop {
    /// The report this stop writes (tests).
    pub fn into_report(self) -> Report {
        match self {
            Self::Report(r) => r,
            Self::Failed(e) => panic!("failed: {e}"),
        }
    }
}

impl From<Report> for Stop {
    fn from(r: Report) -> Self {
        Self::Report(r)
    }
}

impl From<InvalidSpec> for Stop {
    fn from(e: InvalidSpec) -> Self {
        Self::Report(Report::invalid("InvalidSpec", e.0))
    }
}

impl From<Error> for Stop {
    fn from(e: Error) -> Self {
        Self::Failed(e)
    }
}

impl From<MetaError> for Stop {
    fn from(e: MetaError) -> Self {
        Self::Failed(e.into())
    }
}

/// The result of a pipeline step: its output, or why the pipeline stops.
pub type Flow<T> = std::result::Result<T, Stop>;

/// The end of every pipeline: writes the report (the last step's, or the one a step stopped
/// with) as the status of `obj` and says when to look again; a failure goes to backoff.
pub async fn finish<K: Reconciled>(ctx: &Ctx, obj: &K, flow: Flow<Report>) -> Result<Action> {
    match flow {
        Ok(report) | Err(Stop::Report(report)) => {
            write_status(ctx, obj, &report.conds, report.extra).await?;
            Ok(report.action)
        }
        Err(Stop::Failed(e)) => Err(e),
    }
}

/// Reads one key of a Secret, if the Secret and key exist.
pub async fn secret_value(
    client: &Client,
    ns: &str,
    name: &str,
    key: &str,
) -> Result<Option<String>> {
    Ok(get::<Secret>(client, ns, name).await?.and_then(|s| {
        s.data
            .and_then(|d| {
                d.get(key)
                    .map(|v| String::from_utf8_lossy(&v.0).into_owned())
            })
            .or_else(|| s.string_data.and_then(|d| d.get(key).cloned()))
    }))
}

/// A random alphanumeric secret of 32 characters.
pub fn generate_password() -> String {
    let a = uuid::Uuid::new_v4().simple().to_string();
    let b = uuid::Uuid::new_v4().simple().to_string();
    format!("{}{}", &a[..16], &b[..16])
}

/// How long a successful reconcile waits before looking again without a trigger.
pub const RESYNC: Duration = Duration::from_secs(300);
/// Safety-net re-check while waiting on a dependency (watches usually trigger earlier).
pub const WAIT: Duration = Duration::from_secs(30);

/// Runs one reconcile with metrics, logging and backoff bookkeeping.
pub async fn instrumented<K, F>(kind: &'static str, obj: &K, ctx: &Ctx, fut: F) -> Result<Action>
where
    K: Resource,
    F: std::future::Future<Output = Result<Action>>,
{
    let key = format!(
        "{kind}/{}/{}",
        obj.meta().namespace.as_deref().unwrap_or(""),
        obj.meta().name.as_deref().unwrap_or("")
    );
    let started = Instant::now();
    let result = fut.await;
    ctx.metrics.observe(
        kind,
        started.elapsed(),
        result.as_ref().err().map(Error::reason),
    );
    match &result {
        Ok(_) => {
            ctx.failures().remove(&key);
            tracing::debug!(object = %key, "reconciled");
        }
        Err(e) => {
            tracing::warn!(object = %key, error = %e, reason = e.reason(), "reconcile failed");
        }
    }
    result
}

/// The error policy of every controller: per-object exponential backoff, keyed by kind.
#[expect(
    clippy::needless_pass_by_value,
    reason = "the signature kube_runtime::Controller::run requires"
)]
pub fn error_policy<K: Resource<DynamicType = ()>>(
    obj: Arc<K>,
    _e: &Error,
    ctx: Arc<Ctx>,
) -> Action {
    let kind = K::kind(&());
    backoff(&kind, obj.as_ref(), &ctx)
}

/// Exponential backoff per object: 1 s doubling to 5 min.
fn backoff<K: Resource>(kind: &str, obj: &K, ctx: &Ctx) -> Action {
    let key = format!(
        "{kind}/{}/{}",
        obj.meta().namespace.as_deref().unwrap_or(""),
        obj.meta().name.as_deref().unwrap_or("")
    );
    let mut failures = ctx.failures();
    let n = failures.entry(key).or_insert(0);
    *n = n.saturating_add(1);
    let secs = 1u64
        .checked_shl(n.saturating_sub(1).min(9))
        .unwrap_or(300)
        .min(300);
    Action::requeue(Duration::from_secs(secs))
}

/// Runs every controller until `shutdown` resolves.
pub async fn run(ctx: Arc<Ctx>, shutdown: impl Shutdown) {
    let (tx, rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        let _ = tx.send(true);
    });
    let signal = move || {
        let mut rx = rx.clone();
        async move {
            let _ = rx.wait_for(|stop| *stop).await;
        }
    };
    futures::join!(
        platform::controller(ctx.clone(), signal()),
        app_service::controller(ctx.clone(), signal()),
        provider::run::<crate::crd::PostgresCluster>(ctx.clone(), signal()),
        finalizer::run::<crate::crd::Database>(ctx.clone(), signal()),
        provider::run::<crate::crd::MessageBroker>(ctx.clone(), signal()),
        finalizer::run::<crate::crd::Queue>(ctx.clone(), signal()),
        ingress_cert::controller(ctx.clone(), signal()),
    );
}

/// The one controller runner: runs `controller` with `reconcile` wrapped in [`instrumented`]
/// (metrics, logs, backoff bookkeeping under `kind`) and the common error policy until its
/// shutdown signal, counting list/watch failures in the context's metrics.
pub async fn run_controller<K, R, Fut>(
    kind: &'static str,
    controller: kube::runtime::Controller<K>,
    reconcile: R,
    ctx: Arc<Ctx>,
) where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    R: Fn(Arc<K>, Arc<Ctx>) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<Action>> + Send + 'static,
{
    let reconcile = Arc::new(reconcile);
    let instrumented_reconcile = move |obj: Arc<K>, ctx: Arc<Ctx>| {
        let reconcile = reconcile.clone();
        async move {
            let fut = reconcile(obj.clone(), ctx.clone());
            instrumented(kind, obj.as_ref(), &ctx, fut).await
        }
    };
    drain(
        ctx.metrics.clone(),
        controller.run(instrumented_reconcile, error_policy, ctx),
    )
    .await;
}

/// The mapper of a `watches` on a referenced kind `P`: every `K` of the same namespace that
/// `refers` to the changed object by name, so a change there reconciles its users.
pub fn referrers<K, P>(
    store: kube::runtime::reflector::Store<K>,
    refers: fn(&K, &str) -> bool,
) -> impl Fn(P) -> Vec<kube::runtime::reflector::ObjectRef<K>> + Send + Sync + 'static
where
    K: Resource<DynamicType = ()> + Clone + Send + Sync + 'static,
    P: Resource,
{
    move |referenced: P| {
        let (ns, name) = (referenced.namespace(), referenced.name_any());
        store
            .state()
            .into_iter()
            .filter(|k| k.namespace() == ns && refers(k, &name))
            .map(|k| kube::runtime::reflector::ObjectRef::from_obj(k.as_ref()))
            .collect()
    }
}

/// Drains a controller stream, counting what failed in `metrics`: failed reconciles are
/// counted by [`instrumented`]; list and watch failures (a missing `list`/`watch` verb shows up
/// only here) are counted as watch errors by reason.
async fn drain<S, T>(metrics: Arc<Metrics>, stream: S)
where
    S: futures::Stream<
            Item = std::result::Result<
                T,
                kube::runtime::controller::Error<Error, kube::runtime::watcher::Error>,
            >,
        >,
{
    use kube::runtime::controller::Error as ControllerError;
    use kube::runtime::watcher::Error as WatchError;
    stream
        .for_each(|r| {
            let metrics = metrics.clone();
            async move {
                match r {
                    Ok(_) | Err(ControllerError::ReconcilerFailed(..)) => {}
                    Err(ControllerError::QueueError(e)) => {
                        let code = match &e {
                            WatchError::InitialListFailed(e)
                            | WatchError::WatchStartFailed(e)
                            | WatchError::WatchFailed(e) => api_code(e),
                            WatchError::WatchError(status) => Some(status.code),
                            WatchError::NoResourceVersion => None,
                        };
                        let reason = code_reason(code);
                        metrics.api_error("watch", reason);
                        tracing::warn!(error = %e, reason, "list/watch failed");
                    }
                    Err(e) => tracing::debug!(error = %e, "controller event"),
                }
            }
        })
        .await;
}

/// The watcher configuration for children: only objects this operator manages.
pub fn managed() -> kube::runtime::watcher::Config {
    kube::runtime::watcher::Config::default()
        .labels("app.kubernetes.io/managed-by=payplane-operator")
}
