//! Reconciles `Platform`: applies the AppServices, PostgresCluster, Databases,
//! MessageBroker, Queues, Redis, IngressCert and generated Secrets, and aggregates their
//! readiness into one status (I/O: Kubernetes API).
//!
//! The pipeline: [`validate`] checks the spec, [`apply`] reads (or makes) the generated
//! Secrets, [`build`] (with [`security`]) makes the children, [`apply`] applies them,
//! [`status`] aggregates their readiness.

pub mod apply;
pub mod build;
pub mod security;
pub mod status;
pub mod validate;

use std::sync::Arc;

use k8s_openapi::api::apps::v1::StatefulSet;
use kube::Resource;
use kube::runtime::controller::Action;
use kube::runtime::{Controller, watcher};

use super::{Ctx, Flow, Report, Result, Shutdown, finish, namespace, sync_children};
use crate::crd::{
    AppService, Database, IngressCert, MessageBroker, Platform, PostgresCluster, Queue,
};
pub use apply::{kinds, resolve};

const KIND: &str = "Platform";

/// validate → build → apply → status.
async fn pipeline(p: &Platform, ctx: &Ctx) -> Flow<Report> {
    let ns = namespace(p)?;
    validate::validate(p).map_err(validate::InvalidSpec::from)?;
    let resolved = resolve(p, ctx, &ns).await?;
    let children = build::build(p, &resolved)?;
    let owner = (ns.as_str(), p.meta().uid.as_deref().unwrap_or_default());
    let applied = sync_children(&ctx.client, owner, &children, &kinds()).await?;
    Ok(status::status(p, &applied))
}

async fn reconcile(p: Arc<Platform>, ctx: Arc<Ctx>) -> Result<Action> {
    finish(&ctx, p.as_ref(), pipeline(&p, &ctx).await).await
}

/// Runs the Platform controller until `shutdown`.
pub async fn controller(ctx: Arc<Ctx>, shutdown: impl Shutdown) {
    let cfg = super::managed();
    let ctrl = Controller::new(ctx.watched::<Platform>(), watcher::Config::default())
        .owns(ctx.watched::<AppService>(), cfg.clone())
        .owns(ctx.watched::<PostgresCluster>(), cfg.clone())
        .owns(ctx.watched::<Database>(), cfg.clone())
        .owns(ctx.watched::<MessageBroker>(), cfg.clone())
        .owns(ctx.watched::<Queue>(), cfg.clone())
        .owns(ctx.watched::<IngressCert>(), cfg.clone())
        .owns(ctx.watched::<StatefulSet>(), cfg)
        .graceful_shutdown_on(shutdown);
    super::run_controller(KIND, ctrl, reconcile, ctx).await;
}
