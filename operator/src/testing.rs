//! The operator on a real control plane (`payplane-control-plane`), for the integration tests
//! and `payplane bench operator` (feature `testing`; I/O: Kubernetes API, child processes).
//!
//! Once per test binary: the CRDs of `crds/` and the chart's ServiceAccount and RBAC (rendered
//! from `charts/payplane/templates`) are installed with admin credentials. Each test then gets
//! its own namespace and its own in-process operator that watches only that namespace and
//! authenticates as the chart's ServiceAccount, so a verb the chart lacks fails the test: every
//! 403 is counted in the operator's metrics, and [`Operator::stop`] fails when there was one.
//! Objects are created as a user would: server-side apply with strict field validation.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::controller::{self, Ctx};
use crate::crd::{Condition, HasConditions};
use crate::external::Externals;
use crate::metrics::Metrics;
use anyhow::{Context as _, Result, anyhow, bail, ensure};
use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DynamicObject, ListParams, Patch, PatchParams};
use kube::core::GroupVersionKind;
use kube::discovery::Scope;
use kube::{Client, Resource, ResourceExt};
use payplane_control_plane::{ControlPlane, GoModuleFiles, TestNamespace, eventually};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use tokio::sync::OnceCell;

/// Namespace the chart is "installed" into (its ServiceAccount and leader-election Role).
pub const OPERATOR_NAMESPACE: &str = "payplane-system";
/// The chart's ServiceAccount, which the operator authenticates as.
pub const OPERATOR_ACCOUNT: &str = "payplane-operator";
/// Field manager of what the tests apply, as `kubectl apply --server-side` would.
const TEST_MANAGER: &str = "payplane-tests";
/// Generous for 2 shared cores: convergence of the example Platform takes a few seconds.
pub const TIMEOUT: Duration = Duration::from_secs(90);

static INSTALLED: OnceCell<()> = OnceCell::const_new();

const CHART_YAML: &str = include_str!("../../charts/payplane/Chart.yaml");
const HELPERS_TPL: &str = include_str!("../../charts/payplane/templates/_helpers.tpl");
/// The chart templates with the operator's identity and permissions.
const RBAC_TEMPLATES: [(&str, &str); 2] = [
    (
        "templates/serviceaccount.yaml",
        include_str!("../../charts/payplane/templates/serviceaccount.yaml"),
    ),
    (
        "templates/rbac.yaml",
        include_str!("../../charts/payplane/templates/rbac.yaml"),
    ),
];

/// The repository root (for tests that read its files).
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The shared control plane with the CRDs and the chart's RBAC installed.
pub async fn control_plane() -> Result<&'static ControlPlane> {
    let cp = ControlPlane::shared().await?;
    INSTALLED
        .get_or_try_init(|| async {
            let admin = cp.admin_client()?;
            install_crds(&admin).await?;
            install_chart_rbac(&admin).await
        })
        .await?;
    Ok(cp)
}

/// Applies every CRD (as `crds/` has them: the drift test keeps the two equal) and waits
/// until the API server serves them.
async fn install_crds(admin: &Client) -> Result<()> {
    let crds: Api<CustomResourceDefinition> = Api::all(admin.clone());
    let mut names = Vec::new();
    for crd in crate::crd::all() {
        let name = crd.name_any();
        crds.patch(&name, &ssa(), &Patch::Apply(&crd))
            .await
            .with_context(|| format!("installing CRD {name}"))?;
        names.push(name);
    }
    wait_established(&crds, names).await
}

/// Installs other projects' real CRDs (from their Go modules, see
/// [`payplane_control_plane::GoModuleFiles`]) on the shared control plane and waits until they
/// are Established. Idempotent: tests of one binary may call it concurrently. A test binary
/// that never calls it runs without them (how "provider CRDs missing" is tested).
pub async fn install_third_party_crds(modules: &[GoModuleFiles]) -> Result<()> {
    let admin = control_plane().await?.admin_client()?;
    let crds: Api<CustomResourceDefinition> = Api::all(admin.clone());
    let mut names = Vec::new();
    for module in modules {
        let files = tokio::task::spawn_blocking({
            let module = *module;
            move || module.read()
        })
        .await??;
        for (path, text) in files {
            let crd: CustomResourceDefinition =
                serde_saphyr::from_str(&text).map_err(|e| anyhow!("{}: {e}", path.display()))?;
            let name = crd.name_any();
            crds.patch(&name, &ssa(), &Patch::Apply(&crd))
                .await
                .with_context(|| format!("installing CRD {name} from {}", module.module))?;
            names.push(name);
        }
    }
    wait_established(&crds, names).await
}

async fn wait_established(crds: &Api<CustomResourceDefinition>, names: Vec<String>) -> Result<()> {
    eventually(TIMEOUT, "CRDs Established", || {
        let (crds, names) = (crds.clone(), names.clone());
        async move {
            for name in names {
                let crd = crds.get(&name).await?;
                let established = crd.status.and_then(|s| s.conditions).is_some_and(|c| {
                    c.iter()
                        .any(|c| c.type_ == "Established" && c.status == "True")
                });
                if !established {
                    return Ok(Err(format!("{name} not Established")));
                }
            }
            Ok(Ok(()))
        }
    })
    .await
}

/// Creates the chart's namespace and applies its ServiceAccount and RBAC.
async fn install_chart_rbac(admin: &Client) -> Result<()> {
    apply_object(
        admin,
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": OPERATOR_NAMESPACE}}),
    )
    .await?;
    for object in chart_rbac(OPERATOR_NAMESPACE)? {
        apply_object(admin, object).await?;
    }
    Ok(())
}

/// The chart's ServiceAccount and RBAC objects as `helm template --namespace <namespace>` would
/// render them (release name `payplane`).
///
/// `helm` is not on these machines, so this renders the few template constructs those files
/// use — `include` of the `_helpers.tpl` defines (with `nindent`), and `.Release.*` /
/// `.Chart.*` values — and fails on any other, so a chart change cannot slip past the tests.
pub fn chart_rbac(namespace: &str) -> Result<Vec<Value>> {
    let chart_yaml: Value = serde_saphyr::from_str(CHART_YAML)?;
    let field = |key: &str| {
        chart_yaml[key]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| anyhow!("Chart.yaml has no {key}"))
    };
    let values = [
        (".Release.Namespace", namespace.to_owned()),
        (".Release.Name", "payplane".to_owned()),
        (".Release.Service", "Helm".to_owned()),
        (".Chart.Name", field("name")?),
        (".Chart.Version", field("version")?),
    ];
    let helpers = helper_defines(HELPERS_TPL)?;
    let mut objects = Vec::new();
    for (file, template) in RBAC_TEMPLATES {
        let rendered = render(template, &helpers, &values).context(file)?;
        let docs: Vec<Value> = serde_saphyr::from_multiple(&rendered)
            .map_err(|e| anyhow!("{file} renders to invalid YAML: {e}\n{rendered}"))?;
        objects.extend(docs.into_iter().filter(|d| !d.is_null()));
    }
    Ok(objects)
}

/// The bodies of `{{- define "name" -}} ... {{- end -}}` blocks.
fn helper_defines(tpl: &str) -> Result<BTreeMap<String, String>> {
    let mut defines = BTreeMap::new();
    let mut rest = tpl;
    while let Some(start) = rest.find("{{- define \"") {
        let after = &rest[start + "{{- define \"".len()..];
        let name_end = after.find('"').context("unterminated define name")?;
        let name = &after[..name_end];
        let body_start = after.find("-}}").context("unterminated define")? + "-}}".len();
        let body_end = after.find("{{- end -}}").context("define without end")?;
        defines.insert(
            name.to_owned(),
            after[body_start..body_end].trim().to_owned(),
        );
        rest = &after[body_end..];
    }
    Ok(defines)
}

fn render(
    template: &str,
    helpers: &BTreeMap<String, String>,
    values: &[(&str, String)],
) -> Result<String> {
    let mut out = template.to_owned();
    for (name, body) in helpers {
        let nindent = format!("include \"{name}\" . | nindent ");
        while let Some(pos) = out.find(&nindent) {
            let open = out[..pos].rfind("{{").context("include outside {{ }}")?;
            let close = pos + out[pos..].find("}}").context("unterminated include")? + 2;
            let width: usize = out[pos + nindent.len()..close - 2].trim().parse()?;
            // `{{-` trims the whitespace before the action; nindent starts a new line.
            let from = if out[open..].starts_with("{{-") {
                out[..open].trim_end_matches([' ', '\t']).len()
            } else {
                open
            };
            let indented: Vec<String> = body
                .lines()
                .map(|l| format!("{}{l}", " ".repeat(width)))
                .collect();
            out.replace_range(from..close, &format!("\n{}", indented.join("\n")));
        }
        out = out.replace(&format!("{{{{ include \"{name}\" . }}}}"), body);
    }
    for (key, value) in values {
        out = out.replace(&format!("{{{{ {key} }}}}"), value);
    }
    if let Some(pos) = out.find("{{") {
        let line = out[pos..].lines().next().unwrap_or_default();
        bail!("template construct the test renderer does not know: {line}");
    }
    Ok(out)
}

/// Server-side apply as the tests' field manager, rejecting unknown or duplicate fields
/// (`kubectl apply --server-side --validate=strict`).
pub fn ssa() -> PatchParams {
    PatchParams::apply(TEST_MANAGER).force().validation_strict()
}

/// Server-side applies `object` (any kind the API server serves) and returns it as stored.
pub async fn apply_object(client: &Client, object: Value) -> Result<Value> {
    let api = dynamic_api(client, &object).await?;
    let name = object["metadata"]["name"]
        .as_str()
        .context("object without metadata.name")?
        .to_owned();
    let stored = api
        .patch(&name, &ssa(), &Patch::Apply(&object))
        .await
        .with_context(|| format!("applying {} {name}", object["kind"]))?;
    Ok(serde_json::to_value(stored)?)
}

/// The API of `object`'s kind, in its namespace when the kind is namespaced.
async fn dynamic_api(client: &Client, object: &Value) -> Result<Api<DynamicObject>> {
    let api_version = object["apiVersion"].as_str().context("no apiVersion")?;
    let kind = object["kind"].as_str().context("no kind")?;
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    let gvk = GroupVersionKind::gvk(group, version, kind);
    let (resource, caps) = kube::discovery::pinned_kind(client, &gvk)
        .await
        .with_context(|| format!("discovering {api_version} {kind}"))?;
    Ok(
        match (caps.scope, object["metadata"]["namespace"].as_str()) {
            (Scope::Cluster, _) => Api::all_with(client.clone(), &resource),
            (Scope::Namespaced, Some(ns)) => Api::namespaced_with(client.clone(), ns, &resource),
            (Scope::Namespaced, None) => Api::default_namespaced_with(client.clone(), &resource),
        },
    )
}

/// A namespaced kind the harness reads and writes with the admin client.
pub trait Namespaced:
    Resource<Scope = NamespaceResourceScope, DynamicType = ()> + Clone + DeserializeOwned + Debug
{
}

impl<K> Namespaced for K where
    K: Resource<Scope = NamespaceResourceScope, DynamicType = ()>
        + Clone
        + DeserializeOwned
        + Debug
{
}

/// One operator, in-process, for one test namespace.
pub struct Operator {
    ns: TestNamespace,
    /// Admin client (`system:masters`), for what the test does as the user.
    pub admin: Client,
    /// The controllers' context: metrics, externals.
    pub ctx: Arc<Ctx>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
    provisioner: tokio::task::JoinHandle<()>,
}

impl Operator {
    /// A fresh namespace named after `prefix` and every controller watching it, as the
    /// chart's ServiceAccount, with `externals` for PostgreSQL and RabbitMQ.
    pub async fn start(prefix: &str, externals: Externals) -> Result<Self> {
        Self::start_with_resync(prefix, externals, controller::RESYNC).await
    }

    /// [`Operator::start`] with Databases and Queues re-checking their servers every
    /// `resync`.
    pub async fn start_with_resync(
        prefix: &str,
        externals: Externals,
        resync: Duration,
    ) -> Result<Self> {
        let cp = control_plane().await?;
        let ns = cp.namespace(prefix).await?;
        let client = cp
            .client_as_service_account(OPERATOR_NAMESPACE, OPERATOR_ACCOUNT)
            .await?;
        let ctx = Arc::new(
            Ctx::new(client, externals, Arc::new(Metrics::default()), false)
                .watching(Some(ns.name().to_owned()))
                .with_resync(resync),
        );
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(controller::run(ctx.clone(), async move {
            let _ = rx.await;
        }));
        let admin = cp.admin_client()?;
        let provisioner = tokio::spawn(provision_volumes(admin.clone(), ns.name().to_owned()));
        Ok(Self {
            admin,
            ns,
            ctx,
            stop: Some(tx),
            task: Some(task),
            provisioner,
        })
    }

    /// The test's namespace.
    pub fn ns(&self) -> &str {
        self.ns.name()
    }

    /// Applies every document of a YAML file into the test's namespace, as a user would.
    pub async fn apply_yaml(&self, yaml: &str) -> Result<Vec<Value>> {
        let docs: Vec<Value> =
            serde_saphyr::from_multiple(yaml).map_err(|e| anyhow!("yaml: {e}"))?;
        let mut stored = Vec::new();
        for doc in docs.into_iter().filter(|d| !d.is_null()) {
            stored.push(self.apply(doc).await?);
        }
        Ok(stored)
    }

    /// Applies one object into the test's namespace, as a user would.
    pub async fn apply(&self, mut object: Value) -> Result<Value> {
        object["metadata"]["namespace"] = json!(self.ns());
        apply_object(&self.admin, object).await
    }

    /// Applies the payplane object `kind`/`name` with `spec` in the test's namespace.
    pub async fn create(&self, kind: &str, name: &str, spec: Value) -> Result<Value> {
        self.apply(json!({
            "apiVersion": "payplane.dev/v1alpha1", "kind": kind,
            "metadata": {"name": name}, "spec": spec,
        }))
        .await
    }

    /// The admin API of `K` in the test's namespace.
    pub fn api<K>(&self) -> Api<K>
    where
        K: Resource<Scope = NamespaceResourceScope, DynamicType = ()>,
    {
        Api::namespaced(self.admin.clone(), self.ns())
    }

    /// One object of `K`, if it exists.
    pub async fn get<K>(&self, name: &str) -> Result<Option<K>>
    where
        K: Namespaced,
    {
        Ok(self.api::<K>().get_opt(name).await?)
    }

    /// The object `name` of `K`, which must exist.
    pub async fn existing<K>(&self, name: &str) -> Result<K>
    where
        K: Namespaced,
    {
        let kind = K::kind(&());
        self.get::<K>(name)
            .await?
            .with_context(|| format!("no {kind} {name}"))
    }

    /// Whether an Event with `reason` (and, when given, of `type_`) was recorded in the
    /// test's namespace.
    pub async fn has_event(&self, type_: Option<&str>, reason: &str) -> Result<bool> {
        let events = self.list::<k8s_openapi::api::events::v1::Event>().await?;
        Ok(events.iter().any(|e| {
            e.reason.as_deref() == Some(reason)
                && type_.is_none_or(|t| e.type_.as_deref() == Some(t))
        }))
    }

    /// Every object of `K` in the test's namespace.
    pub async fn list<K>(&self) -> Result<Vec<K>>
    where
        K: Namespaced,
    {
        Ok(self.api::<K>().list(&ListParams::default()).await?.items)
    }

    /// Merge-patches the spec (or anything else) of one object, as `kubectl patch` would.
    pub async fn patch<K>(&self, name: &str, patch: Value) -> Result<K>
    where
        K: Namespaced,
    {
        Ok(self
            .api::<K>()
            .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await?)
    }

    /// The text of `key` in the Secret `name` of the test's namespace.
    pub async fn secret_text(&self, name: &str, key: &str) -> Result<String> {
        let secret = self
            .get::<k8s_openapi::api::core::v1::Secret>(name)
            .await?
            .with_context(|| format!("no Secret {name}"))?;
        let value = secret
            .data
            .and_then(|d| d.get(key).cloned())
            .with_context(|| format!("no key {key} in Secret {name}"))?;
        Ok(String::from_utf8(value.0)?)
    }

    /// Waits until `probe` holds for the object `K/name`; `probe` gets `None` while it does
    /// not exist and says what it saw when not satisfied.
    pub async fn wait_for<K>(
        &self,
        what: &str,
        name: &str,
        probe: impl Fn(Option<&K>) -> Result<(), String>,
    ) -> Result<K>
    where
        K: Namespaced,
    {
        let api = self.api::<K>();
        let probe = &probe;
        eventually(TIMEOUT, what, || {
            let api = api.clone();
            async move {
                let obj = api.get_opt(name).await?;
                Ok(match probe(obj.as_ref()) {
                    Ok(()) => obj.ok_or_else(|| "absent".to_owned()),
                    Err(state) => Err(state),
                })
            }
        })
        .await
    }

    /// One line per pod of the namespace: name, phase, node, conditions — for failure messages.
    pub async fn describe_pods(&self) -> Result<String> {
        let pods = self.list::<k8s_openapi::api::core::v1::Pod>().await?;
        Ok(pods
            .iter()
            .map(|p| {
                let status = p.status.clone().unwrap_or_default();
                format!(
                    "{} phase={:?} node={:?} deleting={} conditions={:?}",
                    p.name_any(),
                    status.phase,
                    p.spec.as_ref().and_then(|s| s.node_name.clone()),
                    p.metadata.deletion_timestamp.is_some(),
                    status
                        .conditions
                        .unwrap_or_default()
                        .iter()
                        .map(|c| format!(
                            "{}={} {}",
                            c.type_,
                            c.status,
                            c.message.clone().unwrap_or_default()
                        ))
                        .collect::<Vec<_>>()
                )
            })
            .collect::<Vec<_>>()
            .join("\n"))
    }

    /// Deletes `K/name` and waits until it no longer exists (its finalizers ran).
    pub async fn delete<K>(&self, name: &str) -> Result<()>
    where
        K: Namespaced,
    {
        let params = kube::api::DeleteParams::default();
        self.api::<K>().delete(name, &params).await?;
        self.wait_gone::<K>(name).await
    }

    /// Waits until `K/name` no longer exists.
    pub async fn wait_gone<K>(&self, name: &str) -> Result<()>
    where
        K: Namespaced,
    {
        let api = self.api::<K>();
        eventually(TIMEOUT, &format!("{} {name} gone", K::kind(&())), || {
            let api = api.clone();
            async move {
                Ok(match api.get_opt(name).await? {
                    None => Ok(()),
                    Some(o) => Err(format!("still there, finalizers {:?}", o.meta().finalizers)),
                })
            }
        })
        .await
    }

    /// Stops the controllers and fails if any API call of the operator was forbidden (the
    /// chart's RBAC lacks a verb) — with the metrics that say which kind.
    pub async fn stop(mut self) -> Result<()> {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
        }
        let forbidden = self.ctx.metrics.errors_with_reason("Forbidden");
        ensure!(
            forbidden == 0,
            "the operator got {forbidden} forbidden (403) answers under the chart's RBAC:\n{}",
            self.ctx.metrics.render()
        );
        Ok(())
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
        self.provisioner.abort();
    }
}

/// Plays the storage provisioner of a cluster (kind ships local-path-provisioner): every
/// pending PersistentVolumeClaim in `ns` gets a PersistentVolume bound to it ahead of time, so
/// that the real scheduler places the StatefulSets' pods. The PV controller does the binding.
async fn provision_volumes(admin: Client, ns: String) {
    use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim};
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(admin.clone(), &ns);
    let volumes: Api<PersistentVolume> = Api::all(admin);
    loop {
        if let Ok(list) = claims.list(&ListParams::default()).await {
            for claim in list.items {
                if claim
                    .spec
                    .as_ref()
                    .and_then(|s| s.volume_name.as_ref())
                    .is_some()
                {
                    continue;
                }
                let name = format!("{ns}-{}", claim.name_any());
                let size = claim
                    .spec
                    .as_ref()
                    .and_then(|s| s.resources.as_ref())
                    .and_then(|r| r.requests.as_ref())
                    .and_then(|r| r.get("storage"))
                    .map_or_else(|| "1Gi".to_owned(), |q| q.0.clone());
                let volume = json!({
                    "apiVersion": "v1", "kind": "PersistentVolume",
                    "metadata": {"name": name, "labels": {"payplane.dev/test-namespace": ns}},
                    "spec": {
                        "capacity": {"storage": size},
                        "accessModes": ["ReadWriteOnce"],
                        "persistentVolumeReclaimPolicy": "Retain",
                        "storageClassName": claim.spec.as_ref().and_then(|s| s.storage_class_name.clone()),
                        "hostPath": {"path": format!("/nonexistent/{name}")},
                        "claimRef": {"namespace": ns, "name": claim.name_any(), "uid": claim.uid()},
                    },
                });
                if let Ok(volume) = serde_json::from_value::<PersistentVolume>(volume) {
                    let _ = volumes
                        .create(&kube::api::PostParams::default(), &volume)
                        .await;
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The condition `type_` of a payplane object.
pub fn condition<'a, K: HasConditions>(obj: &'a K, type_: &str) -> Option<&'a Condition> {
    obj.conditions().iter().find(|c| c.type_ == type_)
}

/// `Ready=True` at the object's generation, or what its Ready condition says instead.
pub fn ready<K: HasConditions + Resource>(obj: Option<&K>) -> Result<(), String> {
    match obj {
        None => Err("absent".into()),
        Some(o) if crate::conditions::is_ready(o) => Ok(()),
        Some(o) => Err(format!(
            "generation {:?}, observed {:?}, Ready {:?}",
            o.meta().generation,
            o.observed_generation(),
            condition(o, "Ready").map(|c| (&c.status, &c.reason, &c.message))
        )),
    }
}

/// The value of the environment variable `name` an AppService sets (not one from a Secret).
pub fn env_value(app: &crate::crd::AppService, name: &str) -> Option<String> {
    let var = app.spec.env.iter().find(|e| e.name == name);
    var.and_then(|e| e.value.clone())
}

/// The message of the object's `Ready` condition (empty without one).
pub fn ready_message<K: HasConditions>(obj: &K) -> String {
    condition(obj, "Ready")
        .map(|c| c.message.clone())
        .unwrap_or_default()
}

/// A test on the machine's RabbitMQ: the operator (`prefix`, with the real servers,
/// re-checking them every `resync`) with it applied as the MessageBroker `local-rmq`, and an
/// id and a vhost (`test-<id>`) of the test's own.
pub async fn on_local_broker(prefix: &str, resync: Duration) -> Result<(Operator, String, String)> {
    let op = Operator::start_with_resync(prefix, Externals::real(), resync).await?;
    apply_local_broker(&op, "local-rmq").await?;
    let id = uuid::Uuid::new_v4().simple().to_string()[..10].to_owned();
    let vhost = format!("test-{id}");
    Ok((op, id, vhost))
}

/// A probe for [`Operator::wait_for`]: `Ready=False` with the reason `reason` (any when
/// empty) and a message containing each of `texts`.
pub fn not_ready_because<K: HasConditions>(
    reason: &'static str,
    texts: &'static [&'static str],
) -> impl Fn(Option<&K>) -> Result<(), String> {
    move |obj| {
        let c = obj.and_then(|o| condition(o, "Ready")).ok_or("no Ready")?;
        let matches = c.status == "False"
            && (reason.is_empty() || c.reason == reason)
            && texts.iter().all(|text| c.message.contains(text));
        matches.then_some(()).ok_or_else(|| format!("{c:?}"))
    }
}

/// Applies an `external` MessageBroker named `name` pointing at the RabbitMQ of this machine
/// (127.0.0.1:5672, management on 15672, guest/guest), with its admin Secret.
pub async fn apply_local_broker(op: &Operator, name: &str) -> Result<()> {
    let secret = format!("{name}-admin");
    op.apply(
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": secret},
        "stringData": {"uri": "amqp://guest:guest@127.0.0.1:5672/"}}),
    )
    .await?;
    op.apply(
        json!({"apiVersion": "payplane.dev/v1alpha1", "kind": "MessageBroker",
        "metadata": {"name": name},
        "spec": {"provider": "external", "external": {
            "amqpUrlSecretRef": {"name": secret, "key": "uri"},
            "managementUrl": "http://127.0.0.1:15672"}}}),
    )
    .await?;
    Ok(())
}

/// What is not `Ready` among the objects of `K` (or that there is none).
async fn not_ready_of<K>(op: &Operator) -> Result<Vec<String>>
where
    K: Namespaced + HasConditions,
{
    let list = op.list::<K>().await?;
    if list.is_empty() {
        return Ok(vec![format!("no {}", K::kind(&()))]);
    }
    Ok(list
        .iter()
        .filter_map(|o| {
            ready(Some(o))
                .err()
                .map(|e| format!("{} {}: {e}", K::kind(&()), o.name_any()))
        })
        .collect())
}

/// What is not `Ready` among the payplane resources of the namespace: empty once every kind
/// has objects and all of them are Ready at their generation.
pub async fn not_ready(op: &Operator) -> Result<Vec<String>> {
    use crate::crd::{
        AppService, Database, IngressCert, MessageBroker, Platform, PostgresCluster, Queue,
    };
    let mut pending = not_ready_of::<Platform>(op).await?;
    pending.extend(not_ready_of::<AppService>(op).await?);
    pending.extend(not_ready_of::<PostgresCluster>(op).await?);
    pending.extend(not_ready_of::<Database>(op).await?);
    pending.extend(not_ready_of::<MessageBroker>(op).await?);
    pending.extend(not_ready_of::<Queue>(op).await?);
    pending.extend(not_ready_of::<IngressCert>(op).await?);
    Ok(pending)
}

/// The example Platform (`examples/platform.yaml`).
pub const EXAMPLE_PLATFORM: &str = include_str!("../../examples/platform.yaml");

/// Waits (with [`TIMEOUT`]) until every payplane resource of the namespace is `Ready`.
pub async fn all_ready(op: &Operator) -> Result<()> {
    eventually(TIMEOUT, "every payplane resource Ready", || async {
        let pending = not_ready(op).await?;
        Ok(if pending.is_empty() {
            Ok(())
        } else {
            Err(pending.join("; "))
        })
    })
    .await
}

/// An operator in a fresh namespace (`prefix`) with the example Platform applied and every
/// resource `Ready`; PostgreSQL and RabbitMQ simulated.
pub async fn converged_example(prefix: &str) -> Result<Operator> {
    let op = Operator::start(prefix, Externals::simulated()).await?;
    op.apply_yaml(EXAMPLE_PLATFORM).await?;
    all_ready(&op).await?;
    Ok(op)
}

/// What `payplane bench operator` measured.
#[derive(Debug, Clone, Copy)]
pub struct BenchReport {
    /// From applying the example Platform to every payplane resource `Ready`.
    pub converged: Duration,
    /// Reconciles until then.
    pub converge_reconciles: u64,
    /// AppServices added after the Platform.
    pub apps: usize,
    /// From applying them to all of them `Ready` (their Deployments available, pods Running).
    pub apps_ready: Duration,
    /// Reconciles in all.
    pub reconciles: u64,
    /// Resident memory of this process with everything converged, MiB.
    pub rss_mib: f64,
}

impl std::fmt::Display for BenchReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "platform: converged in {} ms after {} reconciles",
            self.converged.as_millis(),
            self.converge_reconciles
        )?;
        writeln!(
            f,
            "{} apps: ready in {} ms, {} reconciles in total",
            self.apps,
            self.apps_ready.as_millis(),
            self.reconciles
        )?;
        write!(
            f,
            "operator: platform converged in {} ms, {:.0} MiB with {} apps",
            self.converged.as_millis(),
            self.rss_mib,
            self.apps
        )
    }
}

/// Converges the example Platform, then `apps` more AppServices, with the operator as the
/// chart's ServiceAccount on a real control plane (its components are processes of their own,
/// so the memory figure is this process's: the controllers plus the bench's client).
pub async fn bench(apps: usize) -> Result<BenchReport> {
    use futures::{StreamExt as _, TryStreamExt as _};
    use std::time::Instant;

    const DEADLINE: Duration = Duration::from_secs(600);
    let cp = control_plane().await?;
    // 110 pods a node: room for the apps' pods, the Platform's and migration Jobs'.
    cp.ensure_nodes((apps + 60).div_ceil(110).max(2)).await?;
    let op = Operator::start("bench", Externals::simulated()).await?;
    let metrics = op.ctx.metrics.clone();

    let trace = std::env::var_os("PAYPLANE_BENCH_TRACE").is_some();
    let started = Instant::now();
    op.apply_yaml(EXAMPLE_PLATFORM).await?;
    let mut last = Vec::new();
    loop {
        let pending = not_ready(&op).await?;
        if trace && pending != last {
            eprintln!(
                "{} ms: {}",
                started.elapsed().as_millis(),
                pending.join("; ")
            );
            last.clone_from(&pending);
        }
        if pending.is_empty() {
            break;
        }
        ensure!(
            started.elapsed() < DEADLINE,
            "the Platform did not converge within {DEADLINE:?}: {}",
            pending.join("; ")
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let converged = started.elapsed();
    let converge_reconciles = metrics.total_reconciles();

    let started = Instant::now();
    futures::stream::iter(0..apps)
        .map(|i| {
            op.apply(json!({
                "apiVersion": "payplane.dev/v1alpha1", "kind": "AppService",
                "metadata": {"name": format!("bench-{i}")},
                "spec": {"image": format!("bench/app:{i}"), "port": 8080, "replicas": 1}
            }))
        })
        .buffer_unordered(16)
        .try_collect::<Vec<_>>()
        .await?;
    loop {
        let list = op.list::<crate::crd::AppService>().await?;
        let ready = list
            .iter()
            .filter(|a| a.name_any().starts_with("bench-") && crate::conditions::is_ready(*a))
            .count();
        if ready == apps {
            break;
        }
        ensure!(
            started.elapsed() < DEADLINE,
            "{ready}/{apps} AppServices Ready after {DEADLINE:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let apps_ready = started.elapsed();
    let reconciles = metrics.total_reconciles();
    let rss_mib = rss_mib();
    op.stop().await?;
    Ok(BenchReport {
        converged,
        converge_reconciles,
        apps,
        apps_ready,
        reconciles,
        rss_mib,
    })
}

/// This process's resident memory (`VmRSS`), MiB; 0 where `/proc` has no such line.
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
