//! Reconciles `MessageBroker`: the built-in RabbitMQ StatefulSet with Services, config and
//! generated Secrets, the check of an external broker's Secret, or a `RabbitmqCluster` whose
//! status and default-user Secret it reads; status carries the endpoints (I/O: Kubernetes API).
//!
//! The pipeline: [`validate`] picks the provider, [`build`] (or [`rabbitmq_operator`]) makes
//! the children, [`apply`] reads the Secrets and applies, [`status`] reports.

pub mod apply;
pub mod build;
pub mod rabbitmq_operator;
pub mod status;
pub mod validate;

use std::sync::Arc;

use kube::runtime::controller::Action;
use kube::{Resource, ResourceExt};

use super::{Ctx, Flow, Report, Result, Shutdown, finish, namespace, provider, sync_children};
use crate::crd::MessageBroker;
use validate::Input;
pub use validate::amqp_host_port;

const KIND: &str = "MessageBroker";

/// validate → build → apply → status, per provider.
async fn pipeline(mb: &MessageBroker, ctx: &Ctx) -> Flow<Report> {
    let ns = namespace(mb)?;
    let owner = (ns.as_str(), mb.meta().uid.as_deref().unwrap_or_default());
    match validate::validate(mb)? {
        Input::External(ext) => {
            sync_children(&ctx.client, owner, &[], &apply::kinds()).await?;
            let uri = apply::external_uri(ctx, &ns, ext).await?;
            Ok(status::external(ext, uri.as_deref()))
        }
        Input::Builtin => {
            let resolved = apply::resolve(ctx, &ns, &mb.name_any()).await?;
            let children = build::build(mb, &resolved)?;
            let applied = sync_children(&ctx.client, owner, &children, &apply::kinds()).await?;
            Ok(status::builtin(&mb.name_any(), &ns, &applied))
        }
        // Applies the RabbitmqCluster and mirrors its status; Ready once every node is ready
        // and its default-user Secret has the connection string the Queue controller
        // administers the broker with.
        Input::Operator => {
            let children = rabbitmq_operator::build(mb)?;
            let (provider, resource) =
                (&rabbitmq_operator::PROVIDER, rabbitmq_operator::resource());
            let stored = provider::apply(ctx, owner, provider, resource, &children).await?;
            let observed = rabbitmq_operator::observe(&stored);
            let usable = apply::default_user_usable(ctx, &ns, &observed).await?;
            Ok(status::rabbitmq_operator(&ns, observed, usable))
        }
    }
}

async fn reconcile(mb: Arc<MessageBroker>, ctx: Arc<Ctx>) -> Result<Action> {
    finish(&ctx, mb.as_ref(), pipeline(&mb, &ctx).await).await
}

/// Runs the MessageBroker controller until `shutdown`.
pub async fn controller(ctx: Arc<Ctx>, shutdown: impl Shutdown) {
    provider::run(
        KIND,
        (ctx, shutdown),
        rabbitmq_operator::resource(),
        reconcile,
    )
    .await;
}
