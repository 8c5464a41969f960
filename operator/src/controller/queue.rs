//! Reconciles `Queue`: waits for its MessageBroker, checks that its user is its own (tagged
//! with its uid) or free, declares the service's topology (reporting queues whose arguments
//! changed instead of looping on PRECONDITION_FAILED, removing undeclared bindings), creates
//! its least-privilege user over the management API, rotates it blue/green on request
//! (`credentials.rs`), writes the Secret with `uri`, reports broker errors as `Degraded`, and
//! on deletion removes what it owns only with `reclaimPolicy: Delete` (I/O: Kubernetes API,
//! RabbitMQ management API).
//!
//! The pipeline: [`validate`] turns the spec into the broker plan, [`apply`] reads the
//! broker, the Secret and the broker's users and makes the broker hold the topology and
//! users, [`build`] makes the Secret, which [`apply`] writes, and [`status`] reports.

pub mod apply;
pub mod build;
pub mod status;
pub mod validate;

use std::sync::Arc;

use k8s_openapi::api::core::v1::Secret;
use kube::api::Api;
use kube::runtime::controller::Action;
use kube::runtime::{Controller, watcher};

use super::finalizer::{Event as Finalizer, finalizer};
use super::{Ctx, Flow, Report, Result, credentials, finish, namespace};
use crate::crd::{MessageBroker, Queue};

const KIND: &str = "Queue";
/// Finalizer guarding the broker user and queues.
pub const FINALIZER: &str = "payplane.dev/queue";

/// validate → apply (the broker) → build → apply (the Secret) → status.
async fn pipeline(q: &Queue, ctx: &Ctx, ns: &str) -> Flow<Report> {
    let input = validate::validate(q).map_err(|e| status::invalid_spec(q, &e))?;
    let broker = apply::broker(q, ctx, ns).await?;
    let (logins, observed) = apply::observe(q, ctx, (ns, &input), &broker).await?;
    let (rotation, changed) =
        apply::ensure(q, ctx, (ns, &input), &broker, (&logins, &observed)).await?;
    let active = &rotation.creds.active;
    let children = build::build_for(q, active, &rotation.password, &broker.host_port)?;
    let started = (rotation.started).then(|| status::ready(q, &input, &rotation, ctx.resync));
    let owner = (ns, input.uid.as_str());
    let rotated = status::rotated(&rotation);
    credentials::publish(ctx, q, owner, &children, started, rotated).await?;
    Ok(status::settled(q, &input, &rotation, &changed, ctx.resync))
}

async fn reconcile(q: Arc<Queue>, ctx: Arc<Ctx>) -> Result<Action> {
    let ns = namespace(q.as_ref())?;
    let api: Api<Queue> = Api::namespaced(ctx.client.clone(), &ns);
    finalizer(&api, FINALIZER, q, |event| async {
        match event {
            Finalizer::Apply(q) => finish(&ctx, q.as_ref(), pipeline(&q, &ctx, &ns).await).await,
            Finalizer::Cleanup(q) => apply::cleanup(&q, &ctx, &ns).await,
        }
    })
    .await
}

/// Runs the Queue controller until `shutdown`.
pub async fn controller(
    ctx: Arc<Ctx>,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    let ctrl = Controller::new(ctx.watched::<Queue>(), watcher::Config::default());
    let by_reference = super::referrers(ctrl.store(), |q: &Queue, name| {
        q.spec.broker_ref.name == name
    });
    let ctrl = ctrl
        .owns(ctx.watched::<Secret>(), super::managed())
        .watches(
            ctx.watched::<MessageBroker>(),
            watcher::Config::default(),
            by_reference,
        )
        .graceful_shutdown_on(shutdown);
    super::run_controller(KIND, ctrl, reconcile, ctx).await;
}
