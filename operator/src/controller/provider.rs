//! What the provider-backed kinds share: the conditions of a provider whose CRD is not
//! installed, telling that case apart from other API errors, and whether the API server
//! serves a provider's kind (so its objects are watched only when they can exist)
//! (I/O: Kubernetes API in [`served`] and [`apply`]).

use kube::api::{Api, DynamicObject, ListParams};
use kube::core::ApiResource;
use kube::runtime::controller::Action;
use serde_json::{Value, json};

use std::sync::Arc;

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::ResourceRequirements;
use kube::runtime::{Controller, watcher};

use super::{
    Ctx, Error, Flow, InvalidSpec, Reconciled, Report, Result, Shutdown, WAIT, apply_children, ids,
    managed, namespace, prune, sync_children,
};
use crate::conditions::Cond;
use crate::crd::StorageSpec;
use crate::meta::{Child, MetaError, Owner, api_resource};

/// Reason of `Ready=False` and `Degraded=True` when the provider's CRD is not installed.
pub const MISSING: &str = "ProviderMissing";
/// Reason of `Ready=False` while the provider's object is not ready yet.
pub const NOT_READY: &str = "ProviderNotReady";

/// A provider that another project implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Provider {
    /// Its value of `spec.provider`.
    pub name: &'static str,
    /// Name of the CRD it needs (`<plural>.<group>`).
    pub crd: &'static str,
    /// The project that ships that CRD and runs its controller.
    pub project: &'static str,
    /// Group, version, kind and plural of the object it runs a server with.
    pub kind: (&'static str, &'static str, &'static str, &'static str),
}

impl Provider {
    /// The kind of the object it runs a server with.
    pub fn resource(&self) -> ApiResource {
        let (group, version, kind, plural) = self.kind;
        api_resource(group, version, kind, plural)
    }

    /// `Ready=False`, `Progressing=False`, `Degraded=True`, all naming the CRD to install.
    ///
    /// Nothing progresses until someone installs the project; the reconcile still re-checks
    /// now and then, so installing it heals the resource without an edit.
    pub fn missing(&self) -> Vec<Cond> {
        let message = format!(
            "provider {} needs the CRD {} (install {}); it is not served by this cluster",
            self.name, self.crd, self.project
        );
        vec![
            Cond::no("Ready", MISSING, message.clone()),
            Cond::no("Progressing", MISSING, message.clone()),
            Cond::yes("Degraded", MISSING, message),
        ]
    }
}

/// Applies an owner's provider objects (`children`, all of kind `resource`) and prunes those
/// it no longer builds. Returns the first stored object as JSON for reading its status, or
/// stops with [`Provider::missing`] when the provider's CRD is not served, re-checked after
/// [`WAIT`].
pub async fn apply(
    ctx: &Ctx,
    (ns, uid): (&str, &str),
    provider: &Provider,
    resource: ApiResource,
    children: &[Child],
) -> Flow<Value> {
    let applied = match apply_children(&ctx.client, ns, children).await {
        Ok(applied) => applied,
        Err(e) if is_not_served(&e) => {
            let missing = Report::new(provider.missing(), json!({}), Action::requeue(WAIT));
            return Err(missing.into());
        }
        Err(e) => return Err(e.into()),
    };
    prune(&ctx.client, ns, uid, &[resource], &ids(children)).await?;
    Ok(applied
        .first()
        .and_then(|o| serde_json::to_value(o).ok())
        .unwrap_or_default())
}

/// The API of a provider's kind over the watched namespaces.
pub fn watched(ctx: &Ctx, resource: &ApiResource) -> Api<DynamicObject> {
    match &ctx.watch_namespace {
        Some(ns) => Api::namespaced_with(ctx.client.clone(), ns, resource),
        None => Api::all_with(ctx.client.clone(), resource),
    }
}

/// Whether `e` is the API server's 404 for a resource type it does not serve.
pub fn is_not_served(e: &Error) -> bool {
    matches!(e, Error::Apply(_, kube::Error::Api(status)) if status.code == 404)
}

/// Whether the API server serves `resource` where the controllers watch: decides, once at
/// start, whether the provider's objects are watched (a watch on a type that does not exist
/// only fails and retries). Without the watch the reconcile's periodic re-check still sees
/// their status.
pub async fn served(ctx: &Ctx, resource: &ApiResource) -> bool {
    match watched(ctx, resource)
        .list_metadata(&ListParams::default().limit(1))
        .await
    {
        Ok(_) => true,
        Err(kube::Error::Api(status)) if status.code == 404 => false,
        Err(e) => {
            tracing::warn!(error = %e, kind = %resource.kind, "checking whether the provider's kind is served failed");
            false
        }
    }
}

/// The provider of a valid spec of a server kind (`PostgresCluster`, `MessageBroker`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Input<'a, E> {
    /// The operator's own StatefulSet.
    Builtin,
    /// An existing server.
    External(&'a E),
    /// The object of the provider's operator (a CloudNativePG `Cluster`, a `RabbitmqCluster`).
    Operator,
}

/// What the spec of a server kind asks for: `external` (with its settings, when given) or
/// `operator` (run by the provider's operator), else built in; or why it cannot work.
pub fn input<E>(
    (external, operator): (bool, bool),
    settings: Option<&E>,
) -> Result<Input<'_, E>, InvalidSpec> {
    match (external, operator, settings) {
        (true, _, Some(settings)) => Ok(Input::External(settings)),
        (true, _, None) => Err(InvalidSpec("provider external needs spec.external".into())),
        (false, true, _) => Ok(Input::Operator),
        (false, false, _) => Ok(Input::Builtin),
    }
}

/// [`input`] as text, for the validate tables: `builtin`, `operator` or `external <what>`
/// (tests).
#[cfg(test)]
pub fn described<E>(
    input: Result<Input<'_, E>, InvalidSpec>,
    what: impl Fn(&E) -> &str,
) -> Result<String, InvalidSpec> {
    input.map(|input| match input {
        Input::Builtin => "builtin".to_owned(),
        Input::Operator => "operator".to_owned(),
        Input::External(e) => format!("external {}", what(e)),
    })
}

/// A provider's volume: `storage` as asked for, else 1Gi of the default StorageClass.
pub fn storage(storage: Option<StorageSpec>) -> StorageSpec {
    storage.unwrap_or_else(|| StorageSpec {
        size: "1Gi".into(),
        storage_class_name: None,
    })
}

/// The one object of `provider`'s kind it runs `owner` with: `spec`, plus the image under
/// `image_key` and the resources when they are set.
pub fn child(
    owner: &Owner,
    (provider, component): (&Provider, &str),
    mut spec: Value,
    (image_key, image, resources): (&str, Option<String>, Option<ResourceRequirements>),
) -> Vec<Child> {
    if let Some(image) = image {
        spec[image_key] = json!(image);
    }
    if let Some(r) = resources {
        spec["resources"] = serde_json::to_value(r).unwrap_or_default();
    }
    let resource = provider.resource();
    vec![owner.child_of(resource, owner.name(), component, json!({"spec": spec}))]
}

/// The non-empty string at `pointer` of a provider's object.
pub fn text(v: &Value, pointer: &str) -> Option<String> {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// The spec of the one object a provider's build made, checked for its id, `apiVersion` and
/// owner `uid` (tests).
#[cfg(test)]
pub fn only_child<'a>(children: &'a [Child], id: &str, api_version: &str, uid: &str) -> &'a Value {
    assert_eq!(children.len(), 1);
    let c = &children[0];
    assert_eq!(c.id(), id);
    assert_eq!(c.object["apiVersion"], api_version);
    assert_eq!(c.object["metadata"]["ownerReferences"][0]["uid"], uid);
    &c.object["spec"]
}

/// A server kind (`PostgresCluster`, `MessageBroker`): run built in (a StatefulSet), found
/// outside the cluster, or run by a provider's operator. Its steps per provider, which
/// [`pipeline`] runs in the order every server kind shares.
pub trait ServerKind: Reconciled + Send + Sync + 'static {
    /// The kind, for metrics and logs.
    const KIND: &'static str;
    /// The provider's operator, for conditions and the kind of its object.
    const PROVIDER: Provider;
    /// The settings of an external server.
    type External: Sync;
    /// The kinds of the built-in server's children, which `prune` looks through.
    fn kinds() -> Vec<ApiResource>;
    /// The provider of a valid spec, or why the spec cannot work.
    fn input(&self) -> Result<Input<'_, Self::External>, InvalidSpec>;
    /// An external server: reads its Secret and reports.
    fn external(
        &self,
        ctx: &Ctx,
        ns: &str,
        ext: &Self::External,
    ) -> impl Future<Output = Result<Report>> + Send;
    /// The built-in server's children, with the generated Secrets it already has.
    fn builtin(&self, ctx: &Ctx, ns: &str) -> impl Future<Output = Flow<Vec<Child>>> + Send;
    /// The built-in server's report from its `applied` children.
    fn builtin_status(&self, ns: &str, applied: &[DynamicObject]) -> Report;
    /// The provider's object.
    fn operator(&self) -> Result<Vec<Child>, MetaError>;
    /// The report from the provider's `stored` object (and the Secrets it makes).
    fn operator_status(
        &self,
        ctx: &Ctx,
        ns: &str,
        stored: &Value,
    ) -> impl Future<Output = Result<Report>> + Send;
}

/// validate → build → apply → status, per provider. An external server has no children, so
/// what a former provider left is pruned.
pub async fn pipeline<K: ServerKind>(obj: &K, ctx: &Ctx) -> Flow<Report> {
    let ns = namespace(obj)?;
    let owner = (ns.as_str(), obj.meta().uid.as_deref().unwrap_or_default());
    match obj.input()? {
        Input::External(ext) => {
            sync_children(&ctx.client, owner, &[], &K::kinds()).await?;
            Ok(obj.external(ctx, &ns, ext).await?)
        }
        Input::Builtin => {
            let children = obj.builtin(ctx, &ns).await?;
            let applied = sync_children(&ctx.client, owner, &children, &K::kinds()).await?;
            Ok(obj.builtin_status(&ns, &applied))
        }
        // Applies the provider's object and mirrors its status.
        Input::Operator => {
            let children = obj.operator()?;
            let resource = K::PROVIDER.resource();
            let stored = apply(ctx, owner, &K::PROVIDER, resource, &children).await?;
            Ok(obj.operator_status(ctx, &ns, &stored).await?)
        }
    }
}

async fn reconcile<K: ServerKind>(obj: Arc<K>, ctx: Arc<Ctx>) -> Result<Action> {
    super::finish(&ctx, obj.as_ref(), pipeline(obj.as_ref(), &ctx).await).await
}

/// Runs the controller of the server kind `K` until `shutdown`; it watches the provider's
/// objects when they are [`served`].
pub async fn run<K: ServerKind>(ctx: Arc<Ctx>, shutdown: impl Shutdown) {
    let resource = K::PROVIDER.resource();
    let mut ctrl = Controller::new(ctx.watched::<K>(), watcher::Config::default())
        .owns(ctx.watched::<StatefulSet>(), managed());
    if served(&ctx, &resource).await {
        ctrl = ctrl.owns_with(watched(&ctx, &resource), resource, managed());
    }
    let ctrl = ctrl.graceful_shutdown_on(shutdown);
    super::run_controller(K::KIND, ctrl, reconcile::<K>, ctx).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_provider_names_the_crd_and_is_degraded() {
        let conds = super::super::postgres_cluster::cloudnative_pg::PROVIDER.missing();
        let ready = conds.iter().find(|c| c.type_ == "Ready");
        assert!(ready.is_some_and(|c| !c.status && c.reason == MISSING));
        assert!(
            ready.is_some_and(|c| c.message.contains("clusters.postgresql.cnpg.io")
                && c.message.contains("CloudNativePG"))
        );
        assert!(
            conds
                .iter()
                .any(|c| c.type_ == "Degraded" && c.status && c.reason == MISSING)
        );
    }

    /// The spec of the one child of `kind` a Platform with both providers builds.
    fn provider_child(profile: crate::crd::platform::Profile, kind: &str) -> serde_json::Value {
        use crate::crd::Platform;
        use crate::crd::message_broker::BrokerProvider;
        use crate::crd::platform::{PlatformBroker, PlatformPostgres};
        use crate::crd::postgres_cluster::PostgresProvider;
        let mut p = Platform::example();
        p.spec.profile = profile;
        p.spec.postgres = Some(PlatformPostgres {
            provider: PostgresProvider::CloudNativePg,
            ..PlatformPostgres::default()
        });
        p.spec.broker = Some(PlatformBroker {
            provider: BrokerProvider::RabbitmqClusterOperator,
            ..PlatformBroker::default()
        });
        let resolved = super::super::platform::build::Resolved::default();
        let children = super::super::platform::build::build(&p, &resolved).unwrap();
        let mut of_kind = children.iter().filter(|c| c.resource.kind == kind);
        let child = of_kind.next().unwrap();
        assert!(of_kind.next().is_none());
        child.object["spec"].clone()
    }

    #[test]
    fn platform_sizes_the_providers_from_its_profile() {
        use crate::crd::platform::Profile;
        let dev = provider_child(Profile::Dev, "PostgresCluster");
        assert_eq!(dev["provider"], "cloudnative-pg");
        assert!(dev.get("builtin").is_none());
        assert_eq!(dev["cloudnativePg"]["instances"], 1);
        assert_eq!(dev["cloudnativePg"]["storage"]["size"], "1Gi");
        let prod = provider_child(Profile::Prod, "PostgresCluster");
        assert_eq!(prod["cloudnativePg"]["instances"], 3);
        assert_eq!(prod["cloudnativePg"]["storage"]["size"], "10Gi");
        assert_eq!(
            prod["cloudnativePg"]["resources"]["limits"]["memory"],
            prod["cloudnativePg"]["resources"]["requests"]["memory"]
        );
        let dev = provider_child(Profile::Dev, "MessageBroker");
        assert_eq!(dev["provider"], "rabbitmq-cluster-operator");
        assert!(dev.get("builtin").is_none());
        assert_eq!(dev["rabbitmqClusterOperator"]["replicas"], 1);
        let prod = provider_child(Profile::Prod, "MessageBroker");
        assert_eq!(prod["rabbitmqClusterOperator"]["replicas"], 3);
        assert_eq!(prod["rabbitmqClusterOperator"]["storage"]["size"], "10Gi");
    }

    #[test]
    fn only_a_404_means_not_served() {
        let api = |code| {
            kube::Error::Api(Box::new(
                kube::core::Status::failure("x", "NotFound").with_code(code),
            ))
        };
        let status = |code| Error::Apply("Cluster/pg".into(), api(code));
        assert!(is_not_served(&status(404)));
        assert!(!is_not_served(&status(403)));
        assert_eq!(status(403).reason(), "Forbidden");
        assert_eq!(status(500).reason(), "KubeApi");
        let read = super::super::reading("Secret payments/x")(api(404));
        assert!(!is_not_served(&read));
        assert!(read.to_string().starts_with("reading Secret payments/x: "));
        let no_ns = Error::NoNamespace("Queue/q".into());
        assert!(!is_not_served(&no_ns));
        assert_eq!(no_ns.to_string(), "Queue/q has no namespace");
    }
}
