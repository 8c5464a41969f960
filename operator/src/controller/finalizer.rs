//! The finalizer of the kinds that clean up outside Kubernetes (`Database`, `Queue`): added
//! before the first apply, removed after cleanup (I/O: Kubernetes API).
//!
//! Unlike `kube::runtime::finalizer`, which adds the finalizer with a JSON patch that first
//! `test`s the finalizer list it last saw, the finalizer is added with server-side apply under
//! a field manager of its own: `metadata.finalizers` is a set, so the apply merges with what
//! others own and is idempotent. A reconcile that runs on a cached object from before its own
//! patch (a watch event of a related object arriving first — routine on a real API server)
//! therefore succeeds instead of failing the `test` with 422 and backing off.

use std::fmt::Debug;
use std::sync::Arc;

use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::{Controller, watcher};
use kube::{Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::json;

use super::{Ctx, Error, Flow, Reconciled, Report, Result, Shutdown, finish, managed, namespace};
use crate::meta::MANAGER;

/// The field manager that owns the operator's finalizers (and nothing else).
const FINALIZER_MANAGER: &str = "payplane-operator-finalizer";

/// What the reconcile of a finalized object is asked to do.
pub enum Event<K> {
    /// The object lives (and carries the finalizer): make the world match it.
    Apply(Arc<K>),
    /// The object is being deleted: clean up outside Kubernetes; the finalizer goes after.
    Cleanup(Arc<K>),
}

/// A kind that cleans up outside Kubernetes: its pipeline runs while it lives, its cleanup
/// when it is deleted, guarded by [`Finalized::FINALIZER`].
pub trait Finalized: Reconciled + Send + Sync + 'static {
    /// The kind, for metrics and logs.
    const KIND: &'static str;
    /// The finalizer guarding what it owns outside Kubernetes.
    const FINALIZER: &'static str;
    /// The server it keeps its credentials on, named in its spec.
    type Server: Reconciled + Send + Sync + 'static;
    /// The name of its server.
    fn server(&self) -> &str;
    /// Whether it refers to the server named `server`.
    fn refers(&self, server: &str) -> bool {
        self.server() == server
    }
    /// The pipeline of the living object in `ns`.
    fn pipeline(&self, ctx: &Ctx, ns: &str) -> impl Future<Output = Flow<Report>> + Send;
    /// Removes (or keeps, as its reclaim policy says) what it owns outside Kubernetes.
    fn cleanup(&self, ctx: &Ctx, ns: &str) -> impl Future<Output = Result<Action>> + Send;
}

/// The reconcile of a [`Finalized`] kind: its pipeline under the finalizer, its cleanup on
/// deletion.
async fn reconcile<K: Finalized>(obj: Arc<K>, ctx: Arc<Ctx>) -> Result<Action> {
    let ns = namespace(obj.as_ref())?;
    let api: Api<K> = Api::namespaced(ctx.client.clone(), &ns);
    finalizer(&api, K::FINALIZER, obj, |event| async {
        match event {
            Event::Apply(obj) => finish(&ctx, obj.as_ref(), obj.pipeline(&ctx, &ns).await).await,
            Event::Cleanup(obj) => obj.cleanup(&ctx, &ns).await,
        }
    })
    .await
}

/// Runs the controller of the [`Finalized`] kind `K` until `shutdown`: it owns its Secrets
/// and reconciles every `K` that refers to a server when that server changes.
pub async fn run<K: Finalized>(ctx: Arc<Ctx>, shutdown: impl Shutdown) {
    let ctrl = Controller::new(ctx.watched::<K>(), watcher::Config::default());
    let by_reference = super::referrers(ctrl.store(), K::refers);
    let ctrl = ctrl
        .owns(ctx.watched::<Secret>(), managed())
        .watches(
            ctx.watched::<K::Server>(),
            watcher::Config::default(),
            by_reference,
        )
        .graceful_shutdown_on(shutdown);
    super::run_controller(K::KIND, ctrl, reconcile, ctx).await;
}

/// Runs `reconcile` with [`Event::Apply`] once `obj` carries `finalizer` (adding it first), or
/// with [`Event::Cleanup`] when `obj` is being deleted, removing `finalizer` after it.
pub async fn finalizer<K, F, Fut>(
    api: &Api<K>,
    finalizer: &str,
    obj: Arc<K>,
    reconcile: F,
) -> Result<Action>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Serialize + Debug,
    F: FnOnce(Event<K>) -> Fut,
    Fut: Future<Output = Result<Action>>,
{
    let name = obj.name_any();
    let has = obj.finalizers().iter().any(|f| f == finalizer);
    let deleting = obj.meta().deletion_timestamp.is_some();
    match (deleting, has) {
        (false, true) => reconcile(Event::Apply(obj)).await,
        (false, false) => {
            apply_finalizers(api, &name, &[finalizer])
                .await
                .map_err(failed::<K>("adding", finalizer, &name))?;
            // The patch is a change of the object: its watch event brings the next reconcile.
            Ok(Action::await_change())
        }
        (true, true) => {
            let action = reconcile(Event::Cleanup(obj)).await?;
            remove(api, &name, finalizer).await?;
            Ok(action)
        }
        // Being deleted without our finalizer: nothing of ours is left to clean up.
        (true, false) => Ok(Action::await_change()),
    }
}

/// The error of `action` (adding, removing) on `finalizer` of the `K` named `name`.
fn failed<K: Resource<DynamicType = ()>>(
    action: &'static str,
    finalizer: &str,
    name: &str,
) -> impl FnOnce(kube::Error) -> Error {
    let what = format!("{action} finalizer {finalizer} of {}/{name}", K::kind(&()));
    move |e| Error::Finalizer(what, e)
}

/// Server-side applies exactly `finalizers` as the finalizer manager's, returning the object.
async fn apply_finalizers<K>(
    api: &Api<K>,
    name: &str,
    finalizers: &[&str],
) -> std::result::Result<K, kube::Error>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Serialize + Debug,
{
    let body = json!({
        "apiVersion": K::api_version(&()),
        "kind": K::kind(&()),
        "metadata": {"name": name, "finalizers": finalizers},
    });
    api.patch(
        name,
        &PatchParams::apply(FINALIZER_MANAGER).force(),
        &Patch::Apply(&body),
    )
    .await
}

async fn remove<K>(api: &Api<K>, name: &str, finalizer: &str) -> Result<()>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Serialize + Debug,
{
    // Giving up ownership removes the entry, unless another manager owns it too.
    let stored = match apply_finalizers(api, name, &[]).await {
        Ok(stored) => stored,
        // Gone already: the finalizer was the last thing keeping it.
        Err(kube::Error::Api(s)) if s.code == 404 => return Ok(()),
        Err(e) => return Err(failed::<K>("removing", finalizer, name)(e)),
    };
    // Added by an operator version that patched finalizers as "payplane-operator" (not with
    // server-side apply): remove that entry by index, tested against the fresh object.
    if let Some(i) = stored.finalizers().iter().position(|f| f == finalizer) {
        use json_patch::{PatchOperation, RemoveOperation, TestOperation, jsonptr::PointerBuf};
        let path =
            PointerBuf::from_tokens(["metadata".to_owned(), "finalizers".into(), i.to_string()]);
        let patch = json_patch::Patch(vec![
            PatchOperation::Test(TestOperation {
                path: path.clone(),
                value: json!(finalizer),
            }),
            PatchOperation::Remove(RemoveOperation { path }),
        ]);
        api.patch(
            name,
            &PatchParams {
                field_manager: Some(MANAGER.into()),
                ..PatchParams::default()
            },
            &Patch::<()>::Json(patch),
        )
        .await
        .map_err(failed::<K>("removing", finalizer, name))?;
    }
    Ok(())
}
