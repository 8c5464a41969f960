//! Reconciles `MessageBroker`: the built-in RabbitMQ StatefulSet with Services, config and
//! generated Secrets, the check of an external broker's Secret, or a `RabbitmqCluster` whose
//! status and default-user Secret it reads; status carries the endpoints (I/O: Kubernetes API).

pub mod build;
pub mod rabbitmq_operator;

use std::sync::Arc;

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{ConfigMap, Secret, Service, ServiceAccount};
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::core::ApiResource;
use kube::runtime::Controller;
use kube::runtime::controller::Action;
use kube::runtime::watcher;
use kube::{Resource, ResourceExt};
use serde_json::json;

use super::postgres_cluster::statefulset_ready;
use super::provider::{self, NOT_READY};
use super::{
    Ctx, Result, apply_children, ids, invalid, namespace, prune, ready, waiting, write_status,
};
use crate::crd::MessageBroker;
use crate::crd::message_broker::BrokerProvider;

const KIND: &str = "MessageBroker";

/// Host and port of an `amqp://user:pass@host:port/vhost` URI.
pub fn amqp_host_port(uri: &str) -> Option<(String, String, String)> {
    let rest = uri
        .strip_prefix("amqps://")
        .or_else(|| uri.strip_prefix("amqp://"))?;
    let (auth, host) = rest.split_once('@')?;
    let (user, pass) = auth.split_once(':')?;
    let host_port = host.split('/').next()?.to_owned();
    let host_port = if host_port.contains(':') {
        host_port
    } else {
        format!("{host_port}:5672")
    };
    Some((user.to_owned(), pass.to_owned(), host_port))
}

#[expect(
    clippy::too_many_lines,
    reason = "reconcile steps still inline: the per-kind validate/build/apply/status pipeline (issue #17, open) splits it"
)]
async fn reconcile(mb: Arc<MessageBroker>, ctx: Arc<Ctx>) -> Result<Action> {
    let ns = namespace(mb.as_ref())?;
    let name = mb.name_any();
    let uid = mb.meta().uid.clone().unwrap_or_default();
    match mb.spec.provider {
        BrokerProvider::RabbitmqClusterOperator => {
            reconcile_rabbitmq_operator(&mb, &ctx, &ns, &uid).await
        }
        BrokerProvider::External => {
            let Some(ext) = &mb.spec.external else {
                write_status(
                    &ctx,
                    mb.as_ref(),
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
            let r = &ext.amqp_url_secret_ref;
            let uri = super::secret_value(&ctx.client, &ns, &r.name, &r.key).await?;
            let Some(uri) = uri else {
                write_status(
                    &ctx,
                    mb.as_ref(),
                    &waiting(
                        "WaitingForSecret",
                        format!("Secret {} with key {} not found", r.name, r.key),
                    ),
                    json!({}),
                )
                .await?;
                return Ok(Action::requeue(super::WAIT));
            };
            let Some((_, _, host_port)) = amqp_host_port(&uri) else {
                write_status(
                    &ctx,
                    mb.as_ref(),
                    &invalid(
                        "InvalidSecret",
                        format!(
                            "Secret {} key {} is not an amqp://user:password@host URI",
                            r.name, r.key
                        ),
                    ),
                    json!({}),
                )
                .await?;
                return Ok(Action::await_change());
            };
            let extra = json!({
                "amqpEndpoint": format!("amqp://{host_port}"),
                "managementEndpoint": ext.management_url,
                "adminSecretName": r.name,
            });
            write_status(
                &ctx,
                mb.as_ref(),
                &ready(&format!("external broker {host_port}")),
                extra,
            )
            .await?;
            Ok(Action::requeue(super::RESYNC))
        }
        BrokerProvider::Builtin => {
            let admin = build::admin_secret(&name);
            let resolved = build::Resolved {
                admin_password: super::secret_value(&ctx.client, &ns, &admin, "password")
                    .await?
                    .unwrap_or_else(super::generate_password),
                erlang_cookie: super::secret_value(
                    &ctx.client,
                    &ns,
                    &format!("{name}-erlang-cookie"),
                    "cookie",
                )
                .await?
                .unwrap_or_else(super::generate_password),
            };
            let children = build::build(mb.as_ref(), &resolved)?;
            let applied = apply_children(&ctx.client, &ns, &children).await?;
            prune(&ctx.client, &ns, &uid, &kinds(), &ids(&children)).await?;
            let sts_ready = applied.iter().any(|o| {
                o.types.as_ref().is_some_and(|t| t.kind == "StatefulSet") && statefulset_ready(o)
            });
            let extra = json!({
                "amqpEndpoint": format!("amqp://{name}.{ns}.svc:5672"),
                "managementEndpoint": format!("http://{name}.{ns}.svc:15672"),
                "adminSecretName": admin,
            });
            if sts_ready {
                write_status(&ctx, mb.as_ref(), &ready("broker running"), extra).await?;
                Ok(Action::requeue(super::RESYNC))
            } else {
                write_status(
                    &ctx,
                    mb.as_ref(),
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

/// Provider `rabbitmq-cluster-operator`: applies the RabbitmqCluster and mirrors its status;
/// Ready once every node is ready and its default-user Secret has the connection string the
/// Queue controller administers the broker with.
async fn reconcile_rabbitmq_operator(
    mb: &MessageBroker,
    ctx: &Ctx,
    ns: &str,
    uid: &str,
) -> Result<Action> {
    let children = rabbitmq_operator::build(mb)?;
    let resource = rabbitmq_operator::resource();
    let provider = &rabbitmq_operator::PROVIDER;
    let Some(stored) = provider::apply(ctx, mb, (ns, uid), provider, resource, &children).await?
    else {
        return Ok(Action::requeue(super::WAIT));
    };
    let observed = rabbitmq_operator::observe(&stored);
    let extra = rabbitmq_operator::status_fields(ns, &observed);
    let Some(secret) = observed.secret.clone().filter(|_| observed.ready) else {
        write_status(ctx, mb, &waiting(NOT_READY, observed.message), extra).await?;
        return Ok(Action::requeue(super::WAIT));
    };
    let uri = super::secret_value(
        &ctx.client,
        ns,
        &secret,
        rabbitmq_operator::CONNECTION_STRING,
    )
    .await?;
    if uri.as_deref().and_then(amqp_host_port).is_none() {
        let msg = format!(
            "default-user Secret {secret} has no usable {} yet",
            rabbitmq_operator::CONNECTION_STRING
        );
        write_status(ctx, mb, &waiting("WaitingForSecret", msg), extra).await?;
        return Ok(Action::requeue(super::WAIT));
    }
    write_status(ctx, mb, &ready(&observed.message), extra).await?;
    Ok(Action::requeue(super::RESYNC))
}

fn kinds() -> Vec<ApiResource> {
    vec![
        ApiResource::erase::<Secret>(&()),
        ApiResource::erase::<ConfigMap>(&()),
        ApiResource::erase::<Service>(&()),
        ApiResource::erase::<StatefulSet>(&()),
        ApiResource::erase::<ServiceAccount>(&()),
        ApiResource::erase::<Role>(&()),
        ApiResource::erase::<RoleBinding>(&()),
    ]
}

/// Runs the MessageBroker controller until `shutdown`.
pub async fn controller(
    ctx: Arc<Ctx>,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    let mut ctrl = Controller::new(ctx.watched::<MessageBroker>(), watcher::Config::default())
        .owns(ctx.watched::<StatefulSet>(), super::managed());
    let cluster = rabbitmq_operator::resource();
    if provider::served(&ctx, &cluster).await {
        ctrl = ctrl.owns_with(provider::watched(&ctx, &cluster), cluster, super::managed());
    }
    let ctrl = ctrl.graceful_shutdown_on(shutdown);
    super::run_controller(KIND, ctrl, reconcile, ctx).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amqp_uri_parts() {
        assert_eq!(
            amqp_host_port("amqp://guest:guest@127.0.0.1:5672/%2f"),
            Some(("guest".into(), "guest".into(), "127.0.0.1:5672".into()))
        );
        assert_eq!(
            amqp_host_port("amqp://a:b@rmq/").map(|p| p.2),
            Some("rmq:5672".into())
        );
        assert_eq!(amqp_host_port("http://x"), None);
    }
}
