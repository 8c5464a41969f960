//! `apply` of a `PostgresCluster`, the reads it needs besides applying its children: the
//! superuser Secrets of the built-in server, of an external one and of CloudNativePG (I/O:
//! Kubernetes API).

use kube::ResourceExt;

use super::super::{Ctx, Result, generate_password, secret_value};
use super::{build, cloudnative_pg};
use crate::crd::PostgresCluster;
use crate::crd::postgres_cluster::ExternalPostgres;

/// Whether the external server's superuser Secret has its key.
pub async fn external_secret(ctx: &Ctx, ns: &str, ext: &ExternalPostgres) -> Result<bool> {
    let r = &ext.superuser_secret_ref;
    Ok(secret_value(&ctx.client, ns, &r.name, &r.key)
        .await?
        .is_some())
}

/// Whether CloudNativePG has created the Cluster's superuser Secret.
pub async fn cloudnative_pg_secret(ctx: &Ctx, ns: &str, pg: &PostgresCluster) -> Result<bool> {
    let secret = cloudnative_pg::superuser_secret(&pg.name_any());
    Ok(stored_password(ctx, ns, &secret).await?.is_some())
}

/// The built-in server's superuser password: the one its Secret stores, or a new one (the
/// first reconcile).
pub async fn superuser_password(ctx: &Ctx, ns: &str, pg: &PostgresCluster) -> Result<String> {
    let secret = build::superuser_secret(&pg.name_any());
    Ok(stored_password(ctx, ns, &secret)
        .await?
        .unwrap_or_else(generate_password))
}

async fn stored_password(ctx: &Ctx, ns: &str, secret: &str) -> Result<Option<String>> {
    secret_value(&ctx.client, ns, secret, "password").await
}
