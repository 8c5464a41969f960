//! Reconciles `AppService`: waits for its Database, Queues and Secrets (naming the blocker),
//! runs the migration Job with the new image before rolling the Deployment, keeps the old
//! pods when the migration fails, and rolls pods when a wired Secret changes (I/O:
//! Kubernetes API).
//!
//! The pipeline: [`validate`] checks the spec, [`apply`] resolves what it is wired to and
//! reads the running Deployment and migration Job, [`build`] makes the children, [`apply`]
//! applies them, [`status`] reports the rollout and the migration.

pub mod apply;
pub mod build;
pub mod status;
pub mod validate;

use std::sync::Arc;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Secret;
use kube::runtime::controller::Action;
use kube::runtime::{Controller, watcher};

use super::{Ctx, Flow, Report, Result, Shutdown, finish, namespace};
use crate::crd::{AppService, Database, Queue};
use crate::meta::Owner;
pub use apply::{kinds, resolve};
pub use status::Blocked;

const KIND: &str = "AppService";
/// Label selector of the Secrets whose changes the controller watches.
pub const WATCHED_SECRETS: &str = "app.kubernetes.io/part-of=payplane";

/// validate → build → apply → status.
async fn pipeline(app: &AppService, ctx: &Ctx) -> Flow<Report> {
    let ns = namespace(app)?;
    let owner = Owner::of(app)?;
    validate::validate(app)?;
    let mut resolved = resolve(app, ctx, &ns).await?.map_err(Blocked::report)?;
    let job = build::migration_job_name(app, &owner, &resolved);
    let (serving, phase) = apply::running(app, ctx, &ns, job.as_deref()).await?;
    build::roll(app, &mut resolved, serving.as_deref(), phase);
    let children = build::build(app, &resolved)?;
    let applied = apply::apply(ctx, (&ns, owner.uid()), &children, job.as_deref()).await?;
    let migration = status::Migration {
        phase,
        serving,
        job,
    };
    Ok(status::status(app, &applied, &migration))
}

async fn reconcile(app: Arc<AppService>, ctx: Arc<Ctx>) -> Result<Action> {
    finish(&ctx, app.as_ref(), pipeline(&app, &ctx).await).await
}

/// Runs the AppService controller until `shutdown`.
pub async fn controller(ctx: Arc<Ctx>, shutdown: impl Shutdown) {
    let ctrl = Controller::new(ctx.watched::<AppService>(), watcher::Config::default());
    let by_database = super::referrers(ctrl.store(), |a: &AppService, name| {
        a.spec.database.as_ref().is_some_and(|d| d.ref_ == name)
    });
    let by_queue = super::referrers(ctrl.store(), |a: &AppService, name| {
        a.spec.queues.iter().any(|r| r.ref_ == name)
    });
    let by_secret = super::referrers(ctrl.store(), |a: &AppService, name| {
        validate::referenced_secrets(a).iter().any(|s| s == name)
            || a.status.is_some() && (name.ends_with("-credentials") || name.ends_with("-amqp"))
    });
    let any = watcher::Config::default;
    let ctrl = ctrl
        .owns(ctx.watched::<Deployment>(), super::managed())
        .owns(ctx.watched::<Job>(), super::managed())
        .watches(ctx.watched::<Database>(), any(), by_database)
        .watches(ctx.watched::<Queue>(), any(), by_queue)
        // Any Secret an app reads (its own or the user's) can change its rollout checksum.
        // Only Secrets labelled `app.kubernetes.io/part-of=payplane` are watched (every one
        // the operator makes, and the user's that should roll pods at once); a change to
        // another one is picked up by the periodic resync.
        .watches(
            ctx.watched::<Secret>(),
            any().labels(WATCHED_SECRETS),
            by_secret,
        )
        .graceful_shutdown_on(shutdown);
    super::run_controller(KIND, ctrl, reconcile, ctx).await;
}
