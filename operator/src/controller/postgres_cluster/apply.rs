//! `apply` of a `PostgresCluster`, the reads it needs besides applying its children: the
//! superuser Secrets (I/O: Kubernetes API).

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{Secret, Service};
use kube::ResourceExt;
use kube::core::ApiResource;

use super::super::{Ctx, Result, generate_password, secret_value};
use super::{build, cloudnative_pg};
use crate::crd::PostgresCluster;
use crate::crd::postgres_cluster::ExternalPostgres;
use crate::meta::resources;

/// The kinds of the built-in server's children, which `prune` looks through.
pub fn kinds() -> Vec<ApiResource> {
    resources! {Secret, Service, StatefulSet}
}

/// The built-in server's superuser password: the stored one, or a new one.
pub async fn superuser_password(ctx: &Ctx, ns: &str, name: &str) -> Result<String> {
    let secret = build::superuser_secret(name);
    let stored = secret_value(&ctx.client, ns, &secret, "password").await?;
    Ok(stored.unwrap_or_else(generate_password))
}

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
    Ok(secret_value(&ctx.client, ns, &secret, "password")
        .await?
        .is_some())
}
