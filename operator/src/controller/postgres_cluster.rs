//! Reconciles `PostgresCluster`: the built-in StatefulSet with its Services and superuser
//! Secret, the check of an external server's Secret, or a CloudNativePG `Cluster` whose status
//! and superuser Secret it reads; status carries the endpoint (I/O: Kubernetes API).

pub mod build;
pub mod cloudnative_pg;

use std::sync::Arc;

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{Secret, Service};
use kube::api::DynamicObject;
use kube::core::ApiResource;
use kube::runtime::Controller;
use kube::runtime::controller::Action;
use kube::runtime::watcher;
use kube::{Resource, ResourceExt};
use serde_json::json;

use super::provider::{self, NOT_READY};
use super::{
    Ctx, Result, apply_children, ids, invalid, namespace, prune, ready, waiting, write_status,
};
use crate::crd::PostgresCluster;
use crate::crd::postgres_cluster::PostgresProvider;

const KIND: &str = "PostgresCluster";

/// Whether a StatefulSet (as returned by apply) has all replicas of its generation ready.
pub fn statefulset_ready(obj: &DynamicObject) -> bool {
    let generation = obj.metadata.generation.unwrap_or(0);
    let status = obj.data.get("status");
    let observed = status
        .and_then(|s| s.get("observedGeneration"))
        .and_then(serde_json::Value::as_i64);
    let want = obj
        .data
        .pointer("/spec/replicas")
        .and_then(serde_json::Value::as_i64)
        .unwrap_or(1);
    let ready = status
        .and_then(|s| s.get("readyReplicas"))
        .and_then(serde_json::Value::as_i64)
        .unwrap_or(0);
    observed == Some(generation) && ready >= want
}

#[expect(
    clippy::too_many_lines,
    reason = "reconcile steps still inline: the per-kind validate/build/apply/status pipeline (issue #17, open) splits it"
)]
async fn reconcile(pg: Arc<PostgresCluster>, ctx: Arc<Ctx>) -> Result<Action> {
    let ns = namespace(pg.as_ref())?;
    let name = pg.name_any();
    let uid = pg.meta().uid.clone().unwrap_or_default();
    match pg.spec.provider {
        PostgresProvider::CloudNativePg => reconcile_cloudnative_pg(&pg, &ctx, &ns, &uid).await,
        PostgresProvider::External => {
            let Some(ext) = &pg.spec.external else {
                write_status(
                    &ctx,
                    pg.as_ref(),
                    &invalid(
                        "InvalidSpec",
                        "provider external needs spec.external".into(),
                    ),
                    json!({}),
                )
                .await?;
                return Ok(Action::await_change());
            };
            prune(
                &ctx.client,
                &ns,
                &uid,
                &kinds(),
                &std::collections::BTreeSet::default(),
            )
            .await?;
            let secret = &ext.superuser_secret_ref;
            let found = super::secret_value(&ctx.client, &ns, &secret.name, &secret.key).await?;
            let extra = json!({
                "endpoint": {"host": ext.host, "port": ext.port},
                "superuserSecretName": secret.name,
                "superuserSecretKey": secret.key,
                "superuser": ext.user.as_deref().unwrap_or("postgres"),
                "sslMode": ext.ssl_mode,
            });
            if found.is_none() {
                write_status(
                    &ctx,
                    pg.as_ref(),
                    &waiting(
                        "WaitingForSecret",
                        format!("Secret {} with key {} not found", secret.name, secret.key),
                    ),
                    extra,
                )
                .await?;
                return Ok(Action::requeue(super::WAIT));
            }
            write_status(
                &ctx,
                pg.as_ref(),
                &ready(&format!("external server {}:{}", ext.host, ext.port)),
                extra,
            )
            .await?;
            Ok(Action::requeue(super::RESYNC))
        }
        PostgresProvider::Builtin => {
            let password = match super::secret_value(
                &ctx.client,
                &ns,
                &build::superuser_secret(&name),
                "password",
            )
            .await?
            {
                Some(p) => p,
                None => super::generate_password(),
            };
            let children = build::build(pg.as_ref(), &password)?;
            let applied = apply_children(&ctx.client, &ns, &children).await?;
            prune(&ctx.client, &ns, &uid, &kinds(), &ids(&children)).await?;
            let sts_ready = applied.iter().any(|o| {
                o.types.as_ref().is_some_and(|t| t.kind == "StatefulSet") && statefulset_ready(o)
            });
            let extra = json!({
                "endpoint": {"host": format!("{}.{ns}.svc", build::rw_service(&name)), "port": 5432},
                "superuserSecretName": build::superuser_secret(&name),
                "superuserSecretKey": "password",
                "superuser": "postgres",
            });
            if sts_ready {
                write_status(&ctx, pg.as_ref(), &ready("server running"), extra).await?;
                Ok(Action::requeue(super::RESYNC))
            } else {
                write_status(
                    &ctx,
                    pg.as_ref(),
                    &waiting(
                        "StatefulSetNotReady",
                        format!("StatefulSet {name} is not ready"),
                    ),
                    extra,
                )
                .await?;
                Ok(Action::requeue(super::WAIT))
            }
        }
    }
}

/// Provider `cloudnative-pg`: applies the Cluster and mirrors its status; Ready once the
/// Cluster is healthy with every instance and its superuser Secret exists.
async fn reconcile_cloudnative_pg(
    pg: &PostgresCluster,
    ctx: &Ctx,
    ns: &str,
    uid: &str,
) -> Result<Action> {
    let name = pg.name_any();
    let children = cloudnative_pg::build(pg)?;
    let resource = cloudnative_pg::resource();
    let provider = &cloudnative_pg::PROVIDER;
    let Some(stored) = provider::apply(ctx, pg, (ns, uid), provider, resource, &children).await?
    else {
        return Ok(Action::requeue(super::WAIT));
    };
    let observed = cloudnative_pg::observe(&stored, cloudnative_pg::instances(pg));
    let extra = cloudnative_pg::status_fields(&name, ns, &observed);
    if !observed.ready {
        write_status(ctx, pg, &waiting(NOT_READY, observed.message), extra).await?;
        return Ok(Action::requeue(super::WAIT));
    }
    let secret = cloudnative_pg::superuser_secret(&name);
    if super::secret_value(&ctx.client, ns, &secret, "password")
        .await?
        .is_none()
    {
        let msg = format!("CloudNativePG has not created the superuser Secret {secret} yet");
        write_status(ctx, pg, &waiting("WaitingForSecret", msg), extra).await?;
        return Ok(Action::requeue(super::WAIT));
    }
    write_status(ctx, pg, &ready(&observed.message), extra).await?;
    Ok(Action::requeue(super::RESYNC))
}

fn kinds() -> Vec<ApiResource> {
    vec![
        ApiResource::erase::<Secret>(&()),
        ApiResource::erase::<Service>(&()),
        ApiResource::erase::<StatefulSet>(&()),
    ]
}

/// Runs the PostgresCluster controller until `shutdown`.
pub async fn controller(
    ctx: Arc<Ctx>,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    let mut ctrl = Controller::new(ctx.watched::<PostgresCluster>(), watcher::Config::default())
        .owns(ctx.watched::<StatefulSet>(), super::managed());
    let cluster = cloudnative_pg::resource();
    if provider::served(&ctx, &cluster).await {
        ctrl = ctrl.owns_with(provider::watched(&ctx, &cluster), cluster, super::managed());
    }
    let ctrl = ctrl.graceful_shutdown_on(shutdown);
    super::run_controller(KIND, ctrl, reconcile, ctx).await;
}
