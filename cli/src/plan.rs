//! `payplane plan -f platform.yaml`: what applying a Platform would make the operator create,
//! change or delete in the current cluster, like `kubectl diff` (I/O: Kubernetes API, read and
//! server-side dry-run only).
//!
//! How deep it looks: the Platform itself (as the file's `kubectl apply --server-side` would
//! store it), every child the operator's own pure builder makes of it (AppServices,
//! PostgresCluster, Databases, MessageBroker, Queues, Redis, IngressCert, generated Secrets), and
//! the children of each AppService that exists already (ServiceAccount, ConfigMap, Deployment,
//! Service, migration Job, PodDisruptionBudget, HorizontalPodAutoscaler, NetworkPolicy,
//! ServiceMonitor), whose inputs — Database and Queue Secrets, the wired Secrets' checksum —
//! the operator's own resolver reads from the cluster. The AppServices' children are shown as
//! the operator converges to them, i.e. assuming a migration Job for a new image succeeds. The
//! children of the PostgresCluster, MessageBroker, Databases, Queues and IngressCert
//! (StatefulSets, generated passwords, certificates, what is declared in PostgreSQL and
//! RabbitMQ) are not expanded: a change there shows as a change of their spec.
//!
//! Each object goes through a server-side apply with `dryRun=All` under the field manager
//! that will really apply it (the operator's for children), and is compared with the object as
//! stored, leaving out `status` and the metadata every write rewrites; defaults the server adds
//! are then the same on both sides. Owned children the new build no longer produces are listed
//! as deletions, as the operator's pruning would find them.

pub mod diff;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;

use futures::future::try_join_all;
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::core::ApiResource;
use kube::{Client, Config};
use payplane_operator::controller::{self, Ctx, app_service, ids, platform};
use payplane_operator::crd::{AppService, Platform};
use payplane_operator::external::Externals;
use payplane_operator::meta::{Child, MANAGER, MetaError, Owner};
use payplane_operator::metrics::Metrics;
use serde_json::{Value, json};

pub use diff::{Change, FieldChange};

/// The field manager of `kubectl apply --server-side`, used for the Platform when the stored
/// one names no other applier.
pub const KUBECTL_MANAGER: &str = "kubectl";

/// Arguments of `payplane plan`.
#[derive(Debug, clap::Args)]
pub struct PlanArgs {
    /// YAML file with the Platform (other documents in it are ignored).
    #[arg(short = 'f', long = "filename", value_name = "FILE")]
    pub file: PathBuf,
    /// Namespace of the Platform; overrides the file's metadata.namespace, which overrides the
    /// kubeconfig context's namespace.
    #[arg(short = 'n', long)]
    pub namespace: Option<String>,
    /// Kubeconfig file (default: $KUBECONFIG, ~/.kube/config, or in-cluster).
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// Kubeconfig context (default: its current context).
    #[arg(long)]
    pub context: Option<String>,
    /// Field manager the Platform is applied with (default: whoever last applied its spec,
    /// else `kubectl`), so that fields removed from the file show as removed.
    #[arg(long)]
    pub field_manager: Option<String>,
}

/// The long help of `payplane plan --help`: what it covers, how it compares, what it prints.
pub const LONG_ABOUT: &str = "\
Prints what the operator would create, change or delete if FILE's Platform were applied now,
and changes nothing. Exit status: 0 nothing would change, 2 something would, 1 error.

Covered: the Platform; every object the operator builds from it (AppServices, PostgresCluster,
Databases, MessageBroker, Queues, Redis, IngressCert, generated Secrets); and the children of
each AppService that exists already (Deployment, Service, ConfigMap, ServiceAccount, migration
Job, PodDisruptionBudget, HorizontalPodAutoscaler, NetworkPolicy, ServiceMonitor), shown as
the operator converges to them (a new image's migration Job assumed to succeed). The children
of the PostgresCluster, MessageBroker, Databases, Queues and IngressCert are not expanded.

Every object is server-side applied with dryRun=All and compared with the stored one, leaving
out status and server bookkeeping. Output: `+ create Kind/name`, `~ change Kind/name` with one
`path: old → new` line per field (Secret values hidden), `- delete Kind/name` for owned
children no longer built. Needs read access to those kinds (Secrets included) and patch.";

/// Why the plan could not be made.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// The file could not be read.
    #[error("reading {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Cause.
        source: std::io::Error,
    },
    /// The file is not YAML.
    #[error("{path} is not valid YAML: {message}")]
    Yaml {
        /// The file.
        path: String,
        /// The parser's message.
        message: String,
    },
    /// The file holds no Platform, or more than one.
    #[error("{path} holds {count} Platform documents; expected exactly one")]
    PlatformCount {
        /// The file.
        path: String,
        /// How many it holds.
        count: usize,
    },
    /// The Platform has no `metadata.name`.
    #[error("the Platform has no metadata.name")]
    NoName,
    /// The kubeconfig could not be loaded.
    #[error("kubeconfig: {0}")]
    Kubeconfig(String),
    /// An API call failed.
    #[error("{what}: {message}")]
    Kube {
        /// The call.
        what: String,
        /// The server's or client's message.
        message: String,
    },
    /// An object the server returned did not parse as its payplane type.
    #[error("{id} as the server would store it: {source}")]
    Parse {
        /// `Kind/name`.
        id: String,
        /// Cause.
        source: serde_json::Error,
    },
    /// The operator's builder failed.
    #[error("building the children: {0}")]
    Build(#[from] MetaError),
    /// The operator's resolver (reading generated Secrets, Databases, Queues) failed.
    #[error("resolving inputs: {0}")]
    Resolve(#[from] controller::Error),
}

fn kube_error(what: impl Into<String>, e: &kube::Error) -> PlanError {
    let message = match e {
        kube::Error::Api(s) => format!("{} ({})", s.message, s.code),
        other => other.to_string(),
    };
    PlanError::Kube {
        what: what.into(),
        message: message.replace('\n', " "),
    }
}

/// The result: the changes in the order they were found (the Platform, its children, its
/// orphans, then each AppService's children and orphans) and notes on what was not planned.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// What would change.
    pub changes: Vec<Change>,
    /// What could not be planned and why (an AppService still waiting on its Database, …).
    pub notes: Vec<String>,
}

impl Plan {
    /// The diff text; empty when nothing would change.
    pub fn text(&self) -> String {
        diff::render(&self.changes)
    }

    /// `kubectl diff`'s convention: 0 nothing would change, 2 something would.
    pub fn exit_code(&self) -> i32 {
        if self.changes.is_empty() { 0 } else { 2 }
    }
}

/// The one Platform document of a (multi-document) YAML file.
pub fn platform_document(path: &str, yaml: &str) -> Result<Value, PlanError> {
    let docs: Vec<Value> = serde_saphyr::from_multiple(yaml).map_err(|e| PlanError::Yaml {
        path: path.to_owned(),
        message: e.to_string().replace('\n', " "),
    })?;
    let mut platforms: Vec<Value> = docs
        .into_iter()
        .filter(|d| d["kind"] == "Platform")
        .collect();
    if platforms.len() != 1 {
        return Err(PlanError::PlatformCount {
            path: path.to_owned(),
            count: platforms.len(),
        });
    }
    Ok(platforms.remove(0))
}

/// The last field manager that applied the Platform's spec (other than the operator, which
/// only writes its status), from the stored `managedFields`.
pub fn spec_applier(stored: &Value) -> Option<String> {
    stored["metadata"]["managedFields"]
        .as_array()?
        .iter()
        .filter(|m| {
            m["operation"] == "Apply"
                && m["manager"] != MANAGER
                && m["fieldsV1"].get("f:spec").is_some()
        })
        .filter_map(|m| m["manager"].as_str())
        .next_back()
        .map(str::to_owned)
}

/// A client from `--kubeconfig`/`--context`, or the usual inference, and its default namespace.
pub async fn client(
    kubeconfig: Option<&PathBuf>,
    context: Option<&str>,
) -> Result<(Client, String), PlanError> {
    let options = KubeConfigOptions {
        context: context.map(str::to_owned),
        ..KubeConfigOptions::default()
    };
    let bad = |e: &dyn std::fmt::Display| PlanError::Kubeconfig(e.to_string().replace('\n', " "));
    let config = match (kubeconfig, context) {
        (Some(path), _) => {
            let file = Kubeconfig::read_from(path).map_err(|e| bad(&e))?;
            Config::from_custom_kubeconfig(file, &options)
                .await
                .map_err(|e| bad(&e))?
        }
        (None, Some(_)) => Config::from_kubeconfig(&options)
            .await
            .map_err(|e| bad(&e))?,
        (None, None) => Config::infer().await.map_err(|e| bad(&e))?,
    };
    let namespace = config.default_namespace.clone();
    let client = Client::try_from(config).map_err(|e| bad(&e))?;
    Ok((client, namespace))
}

/// `payplane plan`: prints the plan and returns the exit status (0, 2, or 1 with a one-line
/// message on standard error).
pub async fn run(args: PlanArgs) -> i32 {
    match run_inner(&args).await {
        Ok(plan) => {
            for note in &plan.notes {
                eprintln!("note: {note}");
            }
            print!("{}", plan.text());
            plan.exit_code()
        }
        Err(e) => {
            eprintln!("payplane plan: {e}");
            1
        }
    }
}

async fn run_inner(args: &PlanArgs) -> Result<Plan, PlanError> {
    let path = args.file.display().to_string();
    let yaml = std::fs::read_to_string(&args.file).map_err(|source| PlanError::Read {
        path: path.clone(),
        source,
    })?;
    let doc = platform_document(&path, &yaml)?;
    let (client, default_ns) = client(args.kubeconfig.as_ref(), args.context.as_deref()).await?;
    let ns = args
        .namespace
        .clone()
        .or_else(|| doc["metadata"]["namespace"].as_str().map(str::to_owned))
        .unwrap_or(default_ns);
    plan(&client, doc, &ns, args.field_manager.as_deref()).await
}

/// `Kind/name` of a stored or planned object.
fn id_of(resource: &ApiResource, name: &str) -> String {
    format!("{}/{name}", resource.kind)
}

/// One object's stored state (absent: `None`) and what a dry-run apply returned.
struct Planned {
    live: Option<Value>,
    planned: Value,
}

async fn dry_run(
    client: &Client,
    ns: &str,
    resource: &ApiResource,
    name: &str,
    object: &Value,
    params: &PatchParams,
) -> Result<Planned, PlanError> {
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, resource);
    let id = id_of(resource, name);
    let live = api
        .get_opt(name)
        .await
        .map_err(|e| kube_error(format!("reading {id}"), &e))?;
    let planned = api
        .patch(name, params, &Patch::Apply(object))
        .await
        .map_err(|e| kube_error(format!("dry-run apply of {id}"), &e))?;
    let to_value = |o: &DynamicObject| serde_json::to_value(o).unwrap_or(Value::Null);
    Ok(Planned {
        live: live.as_ref().map(to_value),
        planned: to_value(&planned),
    })
}

/// Dry-runs every child under the operator's field manager, concurrently, in `children`'s order.
async fn dry_run_children(
    client: &Client,
    ns: &str,
    children: &[Child],
) -> Result<Vec<Planned>, PlanError> {
    let params = PatchParams::apply(MANAGER).force().dry_run();
    try_join_all(
        children
            .iter()
            .map(|c| dry_run(client, ns, &c.resource, &c.name, &c.object, &params)),
    )
    .await
}

/// Owned children of `owner_uid` among `kinds` that are not in `keep` (`Kind/name`) and not
/// already being deleted: what the operator's pruning would delete. A kind the server does not
/// serve has none.
async fn orphans(
    client: &Client,
    ns: &str,
    owner_uid: &str,
    kinds: &[ApiResource],
    keep: &BTreeSet<String>,
) -> Result<Vec<Change>, PlanError> {
    let per_kind = kinds.iter().map(|ar| async move {
        let names = controller::owned(client, ns, owner_uid, ar)
            .await
            .map_err(|e| kube_error(format!("listing {}s", ar.kind), &e))?;
        let mut ids: Vec<String> = (names.iter().map(|n| id_of(ar, n)))
            .filter(|id| !keep.contains(id))
            .collect();
        ids.sort();
        Ok::<_, PlanError>(ids)
    });
    Ok(try_join_all(per_kind)
        .await?
        .into_iter()
        .flatten()
        .map(|id| Change::Delete { id })
        .collect())
}

fn parse<T: serde::de::DeserializeOwned>(id: &str, v: &Value) -> Result<T, PlanError> {
    serde_json::from_value(v.clone()).map_err(|source| PlanError::Parse {
        id: id.to_owned(),
        source,
    })
}

/// The plan for the Platform document `doc` in namespace `ns`. `field_manager` is the one the
/// Platform is applied with; `None` takes the stored Platform's last spec applier, else
/// [`KUBECTL_MANAGER`].
pub async fn plan(
    client: &Client,
    mut doc: Value,
    ns: &str,
    field_manager: Option<&str>,
) -> Result<Plan, PlanError> {
    doc["metadata"]["namespace"] = json!(ns);
    let name = doc["metadata"]["name"]
        .as_str()
        .ok_or(PlanError::NoName)?
        .to_owned();
    let platform_resource = ApiResource::erase::<Platform>(&());
    let stored = Api::<DynamicObject>::namespaced_with(client.clone(), ns, &platform_resource)
        .get_opt(&name)
        .await
        .map_err(|e| kube_error(format!("reading Platform/{name}"), &e))?
        .map(|o| serde_json::to_value(o).unwrap_or(Value::Null));
    let manager = field_manager
        .map(str::to_owned)
        .or_else(|| stored.as_ref().and_then(spec_applier))
        .unwrap_or_else(|| KUBECTL_MANAGER.to_owned());
    // Strict, like `kubectl apply --server-side`: a misspelt field is an error, not a no-op.
    let params = PatchParams::apply(&manager)
        .force()
        .validation_strict()
        .dry_run();
    let p = dry_run(client, ns, &platform_resource, &name, &doc, &params).await?;
    let id = format!("Platform/{name}");
    let mut out = Plan::default();
    out.changes
        .extend(diff::compare(&id, p.live.as_ref(), &p.planned));
    let mut platform: Platform = parse(&id, &p.planned)?;
    if platform.metadata.uid.is_none() {
        // A Platform yet to be created: its children are all creations, under some owner uid.
        platform.metadata.uid = Some("00000000-0000-0000-0000-000000000000".into());
    }

    let service_monitor = client
        .list_api_group_resources("monitoring.coreos.com/v1")
        .await
        .is_ok_and(|r| r.resources.iter().any(|x| x.name == "servicemonitors"));
    // The operator's own resolvers read through a controller context; nothing here writes.
    let ctx = Ctx::new(
        client.clone(),
        Externals::simulated(),
        Arc::new(Metrics::default()),
        service_monitor,
    );
    let resolved = platform::resolve(&platform, &ctx, ns).await?;
    let children = platform::build::build(&platform, &resolved)?;
    let planned = dry_run_children(client, ns, &children).await?;
    for (child, p) in children.iter().zip(&planned) {
        out.changes
            .extend(diff::compare(&child.id(), p.live.as_ref(), &p.planned));
    }
    if let Some(uid) = stored.as_ref().and_then(|s| s["metadata"]["uid"].as_str()) {
        out.changes
            .extend(orphans(client, ns, uid, &platform::kinds(), &ids(&children)).await?);
    }

    for (child, p) in children.iter().zip(&planned) {
        if child.resource.kind != "AppService" || p.live.is_none() {
            continue;
        }
        let app: AppService = parse(&child.id(), &p.planned)?;
        plan_app_service(client, &ctx, ns, &app, &mut out).await?;
    }
    Ok(out)
}

/// The AppService `app` (as it would be stored) as its controller converges it: its children
/// and orphans, into `out`; a note instead when it waits on a dependency.
async fn plan_app_service(
    client: &Client,
    ctx: &Ctx,
    ns: &str,
    app: &AppService,
    out: &mut Plan,
) -> Result<(), PlanError> {
    let owner = Owner::of(app)?;
    let id = format!("AppService/{}", owner.name());
    let mut resolved = match app_service::resolve(app, ctx, ns).await? {
        Ok(r) => r,
        Err(blocked) => {
            let why = if blocked.message.starts_with(blocked.reason) {
                blocked.message
            } else {
                format!("{}: {}", blocked.reason, blocked.message)
            };
            out.notes.push(format!(
                "{id}: its children are not planned, it waits: {why}"
            ));
            return Ok(());
        }
    };
    let deployment = ApiResource::erase::<k8s_openapi::api::apps::v1::Deployment>(&());
    let serving = Api::<DynamicObject>::namespaced_with(client.clone(), ns, &deployment)
        .get_opt(owner.name())
        .await
        .map_err(|e| kube_error(format!("reading Deployment/{}", owner.name()), &e))?
        .and_then(|d| {
            d.data
                .pointer("/spec/template/spec/containers/0/image")
                .and_then(Value::as_str)
                .map(str::to_owned)
        });
    // As the controller does: a new image first runs its migration Job; the plan shows the
    // state after it succeeded (the Job kept, the Deployment on the new image).
    resolved.run_migration =
        app.spec.migration.is_some() && serving.as_deref() != Some(app.spec.image.as_str());
    resolved.deploy_image = Some(app.spec.image.clone());
    let job = app_service::build::migration_job_name(app, &owner, &resolved);
    let children = app_service::build::build(app, &resolved)?;
    let planned = dry_run_children(client, ns, &children).await?;
    for (child, p) in children.iter().zip(&planned) {
        out.changes
            .extend(diff::compare(&child.id(), p.live.as_ref(), &p.planned));
    }
    let mut keep = ids(&children);
    if let Some(j) = job {
        keep.insert(format!("Job/{j}"));
    }
    out.changes
        .extend(orphans(client, ns, owner.uid(), &app_service::kinds(), &keep).await?);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_one_platform_document_is_picked() {
        let yaml = "apiVersion: v1\nkind: Namespace\nmetadata: {name: payments}\n---\n\
                    apiVersion: payplane.dev/v1alpha1\nkind: Platform\nmetadata: {name: p}\n";
        let doc = platform_document("f.yaml", yaml).expect("one Platform");
        assert_eq!(doc["metadata"]["name"], "p");
        let none = platform_document("f.yaml", "kind: Namespace\n");
        assert!(matches!(
            none,
            Err(PlanError::PlatformCount { count: 0, .. })
        ));
        assert!(matches!(
            platform_document("f.yaml", "kind: [\n"),
            Err(PlanError::Yaml { .. })
        ));
    }

    #[test]
    fn the_spec_applier_is_the_last_apply_manager_of_the_spec() {
        let stored = json!({"metadata": {"managedFields": [
            {"manager": "kubectl", "operation": "Apply", "fieldsV1": {"f:spec": {}}},
            {"manager": "payplane-tests", "operation": "Apply", "fieldsV1": {"f:spec": {}}},
            {"manager": "payplane-operator", "operation": "Apply", "subresource": "status",
             "fieldsV1": {"f:status": {}}},
            {"manager": "kubectl-edit", "operation": "Update", "fieldsV1": {"f:spec": {}}},
        ]}});
        assert_eq!(spec_applier(&stored).as_deref(), Some("payplane-tests"));
        assert_eq!(spec_applier(&json!({"metadata": {}})), None);
    }

    #[test]
    fn exit_codes_follow_kubectl_diff() {
        assert_eq!(Plan::default().exit_code(), 0);
        let plan = Plan {
            changes: vec![Change::Create {
                id: "Service/x".into(),
            }],
            notes: vec![],
        };
        assert_eq!(plan.exit_code(), 2);
    }
}
