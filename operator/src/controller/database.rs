//! Reconciles `Database`: waits for its PostgresCluster, checks that the role and database
//! are its own (marked with its uid) or free, creates them over SQL, rotates the password
//! blue/green on request (`credentials.rs`), writes the connection Secret, reports SQL
//! errors as `Degraded`, and on deletion drops what it owns only with `reclaimPolicy:
//! Delete` (I/O: Kubernetes API, PostgreSQL).
//!
//! The pipeline: [`validate`] names the logins and the Secret, [`apply`] reads the cluster,
//! the Secret and the server and makes the server hold the role and database, [`build`]
//! makes the Secret, which [`apply`] writes, and [`status`] reports.

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
use crate::crd::{Database, PostgresCluster};

const KIND: &str = "Database";
/// Finalizer guarding the role and database in PostgreSQL.
pub const FINALIZER: &str = "payplane.dev/database";

/// validate → apply (the server) → build → apply (the Secret) → status.
async fn pipeline(db: &Database, ctx: &Ctx, ns: &str) -> Flow<Report> {
    let input = validate::validate(db);
    let server = apply::cluster(db, ctx, ns).await?;
    let (logins, observed) = apply::observe(db, ctx, (ns, &input), &server).await?;
    let rotation = apply::ensure(db, ctx, (ns, &input), &server, (&logins, &observed)).await?;
    let children = build::build_for(db, &server.connection(&rotation), &rotation.creds.active)?;
    let started = rotation
        .started
        .then(|| status::ready(db, &input, &rotation, ctx.resync));
    let owner = (ns, input.uid.as_str());
    let rotated = status::rotated(&rotation);
    credentials::publish(ctx, db, owner, &children, started, rotated).await?;
    Ok(status::ready(db, &input, &rotation, ctx.resync))
}

async fn reconcile(db: Arc<Database>, ctx: Arc<Ctx>) -> Result<Action> {
    let ns = namespace(db.as_ref())?;
    let api: Api<Database> = Api::namespaced(ctx.client.clone(), &ns);
    finalizer(&api, FINALIZER, db, |event| async {
        match event {
            Finalizer::Apply(db) => finish(&ctx, db.as_ref(), pipeline(&db, &ctx, &ns).await).await,
            Finalizer::Cleanup(db) => apply::cleanup(&db, &ctx, &ns).await,
        }
    })
    .await
}

/// Runs the Database controller until `shutdown`.
pub async fn controller(
    ctx: Arc<Ctx>,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    let ctrl = Controller::new(ctx.watched::<Database>(), watcher::Config::default());
    let by_reference = super::referrers(ctrl.store(), |db: &Database, name| {
        db.spec.cluster_ref.name == name
    });
    let ctrl = ctrl
        .owns(ctx.watched::<Secret>(), super::managed())
        .watches(
            ctx.watched::<PostgresCluster>(),
            watcher::Config::default(),
            by_reference,
        )
        .graceful_shutdown_on(shutdown);
    super::run_controller(KIND, ctrl, reconcile, ctx).await;
}
