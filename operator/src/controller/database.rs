//! Reconciles `Database`: waits for its PostgresCluster, creates the role and database over
//! SQL, writes the connection Secret, and on deletion drops them only with
//! `reclaimPolicy: Delete` (I/O: Kubernetes API, PostgreSQL).

pub mod build;

use std::sync::Arc;

use k8s_openapi::api::core::v1::Secret;
use kube::api::Api;
use kube::core::ApiResource;
use kube::runtime::controller::Action;
use kube::runtime::reflector::ObjectRef;
use kube::runtime::{Controller, watcher};
use kube::{Resource, ResourceExt};
use serde_json::json;

use super::finalizer::{Event as Finalizer, finalizer};
use super::{Ctx, Result, apply_children, ids, namespace, prune, ready, waiting, write_status};
use crate::conditions::is_ready;
use crate::crd::{Database, PostgresCluster, ReclaimPolicy};
use crate::external::{DbPlan, PgTarget};

const KIND: &str = "Database";
/// Finalizer guarding the role and database in PostgreSQL.
pub const FINALIZER: &str = "payplane.dev/database";

/// The cluster's superuser connection and the client-facing host, once the cluster is ready.
enum ClusterState {
    Missing,
    NotReady(String),
    Ready {
        target: PgTarget,
        host: String,
        port: i32,
    },
}

async fn cluster(db: &Database, ctx: &Ctx, ns: &str) -> Result<ClusterState> {
    let name = &db.spec.cluster_ref.name;
    let Some(pg) = Api::<PostgresCluster>::namespaced(ctx.client.clone(), ns)
        .get_opt(name)
        .await?
    else {
        return Ok(ClusterState::Missing);
    };
    if !is_ready(&pg) {
        return Ok(ClusterState::NotReady(format!(
            "PostgresCluster {name} is not ready"
        )));
    }
    let status = pg.status.clone().unwrap_or_default();
    let (Some(endpoint), Some(secret), Some(key)) = (
        status.endpoint,
        status.superuser_secret_name,
        status.superuser_secret_key,
    ) else {
        return Ok(ClusterState::NotReady(format!(
            "PostgresCluster {name} has no endpoint yet"
        )));
    };
    let Some(password) = super::secret_value(&ctx.client, ns, &secret, &key).await? else {
        return Ok(ClusterState::NotReady(format!(
            "Secret {secret} of PostgresCluster {name} not found"
        )));
    };
    let port = u16::try_from(endpoint.port).unwrap_or(5432);
    Ok(ClusterState::Ready {
        target: PgTarget {
            host: endpoint.host.clone(),
            port,
            user: status.superuser.unwrap_or_else(|| "postgres".into()),
            password,
            ssl_mode: status.ssl_mode.clone(),
        },
        host: endpoint.host,
        port: endpoint.port,
    })
}

fn plan(db: &Database, password: String) -> DbPlan {
    DbPlan {
        database: db.spec.database_name.clone(),
        owner: db.spec.owner.clone(),
        password,
        extensions: db.spec.extensions.iter().map(|e| e.0.clone()).collect(),
    }
}

async fn apply(db: Arc<Database>, ctx: &Ctx) -> Result<Action> {
    let ns = namespace(db.as_ref())?;
    let name = db.name_any();
    let (target, host, port) = match cluster(&db, ctx, &ns).await? {
        ClusterState::Missing => {
            let msg = format!("PostgresCluster {} not found", db.spec.cluster_ref.name);
            write_status(
                ctx,
                db.as_ref(),
                &super::invalid("ClusterNotFound", msg),
                json!({}),
            )
            .await?;
            return Ok(Action::await_change());
        }
        ClusterState::NotReady(msg) => {
            write_status(
                ctx,
                db.as_ref(),
                &waiting("WaitingForCluster", msg),
                json!({}),
            )
            .await?;
            return Ok(Action::requeue(super::WAIT));
        }
        ClusterState::Ready { target, host, port } => (target, host, port),
    };
    let secret = build::secret_name(&name);
    let password = super::secret_value(&ctx.client, &ns, &secret, "password")
        .await?
        .unwrap_or_else(super::generate_password);
    ctx.externals
        .ensure_database(&target, &plan(&db, password.clone()))
        .await?;
    let children = build::build(
        db.as_ref(),
        &build::Connection {
            host,
            port,
            password,
            ssl_mode: target.ssl_mode.clone(),
        },
    )?;
    apply_children(&ctx.client, &ns, &children).await?;
    let uid = db.meta().uid.clone().unwrap_or_default();
    prune(
        &ctx.client,
        &ns,
        &uid,
        &[ApiResource::erase::<Secret>(&())],
        &ids(&children),
    )
    .await?;
    write_status(
        ctx,
        db.as_ref(),
        &ready(&format!(
            "database {} owned by {}",
            db.spec.database_name, db.spec.owner
        )),
        json!({"secretName": secret}),
    )
    .await?;
    Ok(Action::requeue(super::RESYNC))
}

async fn cleanup(db: Arc<Database>, ctx: &Ctx) -> Result<Action> {
    let ns = namespace(db.as_ref())?;
    match db.spec.reclaim_policy {
        ReclaimPolicy::Retain => {
            let note = format!(
                "kept database {} and role {} (reclaimPolicy Retain)",
                db.spec.database_name, db.spec.owner
            );
            ctx.event(db.as_ref(), false, "Retained", note).await;
        }
        ReclaimPolicy::Delete => match cluster(&db, ctx, &ns).await? {
            ClusterState::Ready { target, .. } => {
                ctx.externals
                    .drop_database(&target, &plan(&db, String::new()))
                    .await?;
                let note = format!(
                    "dropped database {} and role {}",
                    db.spec.database_name, db.spec.owner
                );
                ctx.event(db.as_ref(), false, "Deleted", note).await;
            }
            // Without a cluster there is nothing to drop from; do not block deletion forever.
            ClusterState::Missing | ClusterState::NotReady(_) => {
                let note = format!(
                    "cluster {} unavailable; database {} not dropped",
                    db.spec.cluster_ref.name, db.spec.database_name
                );
                ctx.event(db.as_ref(), true, "CleanupSkipped", note).await;
            }
        },
    }
    Ok(Action::await_change())
}

async fn reconcile_inner(db: Arc<Database>, ctx: Arc<Ctx>) -> Result<Action> {
    let ns = namespace(db.as_ref())?;
    let api: Api<Database> = Api::namespaced(ctx.client.clone(), &ns);
    finalizer(&api, FINALIZER, db, |event| async {
        match event {
            Finalizer::Apply(db) => apply(db, &ctx).await,
            Finalizer::Cleanup(db) => cleanup(db, &ctx).await,
        }
    })
    .await
}

async fn reconcile(db: Arc<Database>, ctx: Arc<Ctx>) -> Result<Action> {
    super::instrumented(
        KIND,
        db.as_ref(),
        &ctx,
        reconcile_inner(db.clone(), ctx.clone()),
    )
    .await
}

/// Runs the Database controller until `shutdown`.
pub async fn controller(
    ctx: Arc<Ctx>,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    let ctrl = Controller::new(ctx.watched::<Database>(), watcher::Config::default());
    let store = ctrl.store();
    let ctrl = ctrl
        .owns(ctx.watched::<Secret>(), super::managed())
        .watches(
            ctx.watched::<PostgresCluster>(),
            watcher::Config::default(),
            move |pg| {
                let ns = pg.namespace();
                let name = pg.name_any();
                store
                    .state()
                    .into_iter()
                    .filter(|db| db.namespace() == ns && db.spec.cluster_ref.name == name)
                    .map(|db| ObjectRef::from_obj(db.as_ref()))
                    .collect::<Vec<_>>()
            },
        )
        .graceful_shutdown_on(shutdown);
    super::run_controller(ctrl, reconcile, ctx).await;
}
