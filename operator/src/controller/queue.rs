//! Reconciles `Queue`: waits for its MessageBroker, declares the service's topology and
//! creates its least-privilege user over the management API, writes the Secret with `uri`,
//! and on deletion removes the user and empty queues only with `reclaimPolicy: Delete`
//! (I/O: Kubernetes API, RabbitMQ management API).

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
use super::message_broker::amqp_host_port;
use super::{
    Ctx, Result, apply_children, ids, invalid, namespace, prune, ready, waiting, write_status,
};
use crate::conditions::is_ready;
use crate::crd::message_broker::BrokerProvider;
use crate::crd::{MessageBroker, Queue, ReclaimPolicy};
use crate::external::{BrokerTarget, QueuePlan};

const KIND: &str = "Queue";
/// Finalizer guarding the broker user and queues.
pub const FINALIZER: &str = "payplane.dev/queue";

enum BrokerState {
    Missing,
    NotReady(String),
    Ready {
        target: BrokerTarget,
        host_port: String,
    },
}

async fn broker(q: &Queue, ctx: &Ctx, ns: &str) -> Result<BrokerState> {
    let name = &q.spec.broker_ref.name;
    let Some(mb) = Api::<MessageBroker>::namespaced(ctx.client.clone(), ns)
        .get_opt(name)
        .await?
    else {
        return Ok(BrokerState::Missing);
    };
    if !is_ready(&mb) {
        return Ok(BrokerState::NotReady(format!(
            "MessageBroker {name} is not ready"
        )));
    }
    let status = mb.status.clone().unwrap_or_default();
    let key = match (&mb.spec.provider, &mb.spec.external) {
        (BrokerProvider::External, Some(ext)) => ext.amqp_url_secret_ref.key.clone(),
        // The cluster operator's default-user Secret has the URI under its own key.
        (BrokerProvider::RabbitmqClusterOperator, _) => {
            super::message_broker::rabbitmq_operator::CONNECTION_STRING.to_owned()
        }
        _ => "uri".to_owned(),
    };
    let (Some(secret), Some(management_url)) =
        (status.admin_secret_name, status.management_endpoint)
    else {
        return Ok(BrokerState::NotReady(format!(
            "MessageBroker {name} has no endpoints yet"
        )));
    };
    let Some((admin_user, admin_password, host_port)) =
        super::secret_value(&ctx.client, ns, &secret, &key)
            .await?
            .as_deref()
            .and_then(amqp_host_port)
    else {
        return Ok(BrokerState::NotReady(format!(
            "admin Secret {secret} of MessageBroker {name} not usable"
        )));
    };
    Ok(BrokerState::Ready {
        target: BrokerTarget {
            management_url,
            admin_user,
            admin_password,
        },
        host_port,
    })
}

fn plan(q: &Queue, password: String) -> std::result::Result<QueuePlan, build::PlanError> {
    Ok(QueuePlan {
        vhost: q.spec.vhost.clone(),
        user: q.spec.user.clone(),
        password,
        declarations: build::declarations(q)?,
        permissions: build::permissions(q),
    })
}

async fn apply(q: Arc<Queue>, ctx: &Ctx) -> Result<Action> {
    let ns = namespace(q.as_ref())?;
    let name = q.name_any();
    let secret = build::secret_name(&name);
    let password = super::secret_value(&ctx.client, &ns, &secret, "password")
        .await?
        .unwrap_or_else(super::generate_password);
    let plan = match plan(&q, password.clone()) {
        Ok(p) => p,
        Err(e) => {
            write_status(
                ctx,
                q.as_ref(),
                &invalid("InvalidSpec", e.to_string()),
                json!({}),
            )
            .await?;
            return Ok(Action::await_change());
        }
    };
    let (target, host_port) = match broker(&q, ctx, &ns).await? {
        BrokerState::Missing => {
            let msg = format!("MessageBroker {} not found", q.spec.broker_ref.name);
            write_status(ctx, q.as_ref(), &invalid("BrokerNotFound", msg), json!({})).await?;
            return Ok(Action::await_change());
        }
        BrokerState::NotReady(msg) => {
            write_status(
                ctx,
                q.as_ref(),
                &waiting("WaitingForBroker", msg),
                json!({}),
            )
            .await?;
            return Ok(Action::requeue(super::WAIT));
        }
        BrokerState::Ready { target, host_port } => (target, host_port),
    };
    ctx.externals.ensure_queue(&target, &plan).await?;
    let children = build::build(q.as_ref(), &password, &host_port)?;
    apply_children(&ctx.client, &ns, &children).await?;
    let uid = q.meta().uid.clone().unwrap_or_default();
    prune(
        &ctx.client,
        &ns,
        &uid,
        &[ApiResource::erase::<Secret>(&())],
        &ids(&children),
    )
    .await?;
    let what = q.spec.queue.as_deref().map_or_else(
        || format!("user {}", q.spec.user),
        |queue| format!("queue {queue} for user {}", q.spec.user),
    );
    write_status(
        ctx,
        q.as_ref(),
        &ready(&what),
        json!({"secretName": secret}),
    )
    .await?;
    Ok(Action::requeue(super::RESYNC))
}

async fn cleanup(q: Arc<Queue>, ctx: &Ctx) -> Result<Action> {
    let ns = namespace(q.as_ref())?;
    match q.spec.reclaim_policy {
        ReclaimPolicy::Retain => {
            ctx.event(
                q.as_ref(),
                false,
                "Retained",
                format!(
                    "kept broker user {} and its queues (reclaimPolicy Retain)",
                    q.spec.user
                ),
            )
            .await;
        }
        ReclaimPolicy::Delete => match (broker(&q, ctx, &ns).await?, plan(&q, String::new())) {
            (BrokerState::Ready { target, .. }, Ok(plan)) => {
                ctx.externals.delete_queue(&target, &plan).await?;
                ctx.event(
                    q.as_ref(),
                    false,
                    "Deleted",
                    format!("deleted broker user {} and its empty queues", q.spec.user),
                )
                .await;
            }
            _ => {
                ctx.event(
                    q.as_ref(),
                    true,
                    "CleanupSkipped",
                    format!(
                        "broker {} unavailable; user {} not deleted",
                        q.spec.broker_ref.name, q.spec.user
                    ),
                )
                .await;
            }
        },
    }
    Ok(Action::await_change())
}

async fn reconcile_inner(q: Arc<Queue>, ctx: Arc<Ctx>) -> Result<Action> {
    let ns = namespace(q.as_ref())?;
    let api: Api<Queue> = Api::namespaced(ctx.client.clone(), &ns);
    finalizer(&api, FINALIZER, q, |event| async {
        match event {
            Finalizer::Apply(q) => apply(q, &ctx).await,
            Finalizer::Cleanup(q) => cleanup(q, &ctx).await,
        }
    })
    .await
}

async fn reconcile(q: Arc<Queue>, ctx: Arc<Ctx>) -> Result<Action> {
    super::instrumented(
        KIND,
        q.as_ref(),
        &ctx,
        reconcile_inner(q.clone(), ctx.clone()),
    )
    .await
}

/// Runs the Queue controller until `shutdown`.
pub async fn controller(
    ctx: Arc<Ctx>,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    let ctrl = Controller::new(ctx.watched::<Queue>(), watcher::Config::default());
    let store = ctrl.store();
    let ctrl = ctrl
        .owns(ctx.watched::<Secret>(), super::managed())
        .watches(
            ctx.watched::<MessageBroker>(),
            watcher::Config::default(),
            move |mb| {
                let ns = mb.namespace();
                let name = mb.name_any();
                store
                    .state()
                    .into_iter()
                    .filter(|q| q.namespace() == ns && q.spec.broker_ref.name == name)
                    .map(|q| ObjectRef::from_obj(q.as_ref()))
                    .collect::<Vec<_>>()
            },
        )
        .graceful_shutdown_on(shutdown);
    super::run_controller(ctrl, reconcile, ctx).await;
}
