//! `apply` of a `MessageBroker`, the reads it needs besides applying its children: the
//! generated and administrator Secrets (I/O: Kubernetes API).

use super::super::{Ctx, Result, generate_password, secret_value};
use super::{amqp_host_port, build, rabbitmq_operator};
use crate::crd::message_broker::ExternalBroker;

/// The built-in broker's generated secrets: the stored ones, or new ones.
pub async fn resolve(ctx: &Ctx, ns: &str, name: &str) -> Result<build::Resolved> {
    let read = |secret: String, key: &'static str| async move {
        let stored = secret_value(&ctx.client, ns, &secret, key).await?;
        Ok::<_, super::super::Error>(stored.unwrap_or_else(generate_password))
    };
    Ok(build::Resolved {
        admin_password: read(build::admin_secret(name), "password").await?,
        erlang_cookie: read(format!("{name}-erlang-cookie"), "cookie").await?,
    })
}

/// The administrator URI of an external broker, if its Secret has the key.
pub async fn external_uri(ctx: &Ctx, ns: &str, ext: &ExternalBroker) -> Result<Option<String>> {
    let r = &ext.amqp_url_secret_ref;
    secret_value(&ctx.client, ns, &r.name, &r.key).await
}

/// Whether the ready RabbitmqCluster's default-user Secret has a usable connection string
/// (not read while the cluster is not ready).
pub async fn default_user_usable(
    ctx: &Ctx,
    ns: &str,
    observed: &rabbitmq_operator::Observed,
) -> Result<bool> {
    let Some(secret) = observed.secret.as_deref().filter(|_| observed.ready) else {
        return Ok(false);
    };
    let key = rabbitmq_operator::CONNECTION_STRING;
    let uri = secret_value(&ctx.client, ns, secret, key).await?;
    Ok(uri.as_deref().and_then(amqp_host_port).is_some())
}
