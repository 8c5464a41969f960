//! Reconciles `PostgresCluster`: the built-in StatefulSet with its Services and superuser
//! Secret, the check of an external server's Secret, or a CloudNativePG `Cluster` whose status
//! and superuser Secret it reads; status carries the endpoint (I/O: Kubernetes API).
//!
//! The pipeline: [`validate`] picks the provider, [`build`] (or [`cloudnative_pg`]) makes the
//! children, [`apply`] reads the Secrets and applies, [`status`] reports.

pub mod apply;
pub mod build;
pub mod cloudnative_pg;
pub mod status;
pub mod validate;

use std::sync::Arc;

use kube::runtime::controller::Action;
use kube::{Resource, ResourceExt};

use super::{Ctx, Flow, Report, Result, Shutdown, finish, namespace, provider, sync_children};
use crate::crd::PostgresCluster;
use validate::Input;

const KIND: &str = "PostgresCluster";

/// validate → build → apply → status, per provider.
async fn pipeline(pg: &PostgresCluster, ctx: &Ctx) -> Flow<Report> {
    let ns = namespace(pg)?;
    let owner = (ns.as_str(), pg.meta().uid.as_deref().unwrap_or_default());
    match validate::validate(pg)? {
        Input::External(ext) => {
            sync_children(&ctx.client, owner, &[], &apply::kinds()).await?;
            let found = apply::external_secret(ctx, &ns, ext).await?;
            Ok(status::external(ext, found))
        }
        Input::Builtin => {
            let password = apply::superuser_password(ctx, &ns, &pg.name_any()).await?;
            let children = build::build(pg, &password)?;
            let applied = sync_children(&ctx.client, owner, &children, &apply::kinds()).await?;
            Ok(status::builtin(&pg.name_any(), &ns, &applied))
        }
        // Applies the Cluster and mirrors its status; Ready once the Cluster is healthy with
        // every instance and its superuser Secret exists.
        Input::Operator => {
            let children = cloudnative_pg::build(pg)?;
            let (provider, resource) = (&cloudnative_pg::PROVIDER, cloudnative_pg::resource());
            let stored = provider::apply(ctx, owner, provider, resource, &children).await?;
            let observed = cloudnative_pg::observe(&stored, cloudnative_pg::instances(pg));
            let secret = observed.ready && apply::cloudnative_pg_secret(ctx, &ns, pg).await?;
            Ok(status::cloudnative_pg(
                &pg.name_any(),
                &ns,
                observed,
                secret,
            ))
        }
    }
}

async fn reconcile(pg: Arc<PostgresCluster>, ctx: Arc<Ctx>) -> Result<Action> {
    finish(&ctx, pg.as_ref(), pipeline(&pg, &ctx).await).await
}

/// Runs the PostgresCluster controller until `shutdown`.
pub async fn controller(ctx: Arc<Ctx>, shutdown: impl Shutdown) {
    provider::run(KIND, (ctx, shutdown), cloudnative_pg::resource(), reconcile).await;
}
