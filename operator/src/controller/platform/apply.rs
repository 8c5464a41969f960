//! `apply` of a `Platform`, the reads it needs besides applying its children: the generated
//! Secrets, made once and read back after (I/O: Kubernetes API).

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{Secret, Service};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::ResourceExt;
use kube::core::ApiResource;

use super::super::{Ctx, Error, Result, generate_password, secret_value};
use super::build;
use crate::crd::{
    AppService, Database, IngressCert, MessageBroker, Platform, PostgresCluster, Queue,
};
use crate::meta::resources;

/// The kinds of a Platform's children, which `prune` looks through; public for `payplane plan`.
pub fn kinds() -> Vec<ApiResource> {
    resources! {
        AppService, PostgresCluster, Database, MessageBroker, Queue,
        IngressCert, Secret, Service, StatefulSet, NetworkPolicy
    }
}

/// A new Ed25519 signing key as PKCS#8 PEM (what `AUTH_SIGNING_KEYS` points at).
fn generate_signing_key(p: &Platform) -> Result<String> {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).map_err(|e| {
        let what = format!(
            "generating the JWT signing key of Platform {}",
            p.name_any()
        );
        Error::Issue(what, e.into())
    })?;
    Ok(key.serialize_pem())
}

/// 32 bytes, base64 (what the console's `CONSOLE_SESSION_KEY` takes), from two v4 UUIDs: 244
/// random bits, well above what AES-256-GCM sealing needs.
fn generate_session_key() -> String {
    use base64::Engine;
    let mut key = [0u8; 32];
    key[..16].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    key[16..].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    base64::engine::general_purpose::STANDARD.encode(key)
}

/// Reads the generated Secrets back (making any that is missing), for [`build::build`];
/// public for `payplane plan`.
pub async fn resolve(p: &Platform, ctx: &Ctx, ns: &str) -> Result<build::Resolved> {
    let name = p.name_any();
    let read = |secret: String, key: &'static str| async move {
        secret_value(&ctx.client, ns, &secret, key).await
    };
    let jwt_signing_key = match read(format!("{name}-jwt"), "signing.pem").await? {
        Some(k) => k,
        None => generate_signing_key(p)?,
    };
    let mut service_tokens = BTreeMap::new();
    for (component, _) in build::COMPONENTS {
        let token = read(format!("{name}-service-tokens"), component).await?;
        service_tokens.insert(
            component.to_owned(),
            token.unwrap_or_else(generate_password),
        );
    }
    let session = read(format!("{name}-console"), "session-key").await?;
    Ok(build::Resolved {
        jwt_signing_key,
        service_tokens,
        console_session_key: session.unwrap_or_else(generate_session_key),
    })
}
