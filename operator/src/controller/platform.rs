//! Reconciles `Platform`: applies the AppServices, PostgresCluster, Databases,
//! MessageBroker, Queues, Redis, IngressCert and generated Secrets, and aggregates their
//! readiness into one status (I/O: Kubernetes API).

pub mod build;
pub mod security;

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{Secret, Service};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::api::DynamicObject;
use kube::core::ApiResource;
use kube::runtime::controller::Action;
use kube::runtime::{Controller, watcher};
use kube::{Resource, ResourceExt};
use serde_json::{Value, json};

use super::postgres_cluster::statefulset_ready;
use super::{
    Ctx, Result, apply_children, ids, invalid, namespace, prune, ready, waiting, write_status,
};
use crate::crd::{
    AppService, Database, IngressCert, MessageBroker, Platform, PostgresCluster, Queue,
};

const KIND: &str = "Platform";

/// A new Ed25519 signing key as PKCS#8 PEM (what `AUTH_SIGNING_KEYS` points at).
fn generate_signing_key() -> Result<String> {
    let key =
        rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).map_err(crate::tls::TlsError::from)?;
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
    let jwt =
        match super::secret_value(&ctx.client, ns, &format!("{name}-jwt"), "signing.pem").await? {
            Some(k) => k,
            None => generate_signing_key()?,
        };
    let mut tokens = BTreeMap::new();
    for (component, _) in build::COMPONENTS {
        let token = super::secret_value(
            &ctx.client,
            ns,
            &format!("{name}-service-tokens"),
            component,
        )
        .await?
        .unwrap_or_else(super::generate_password);
        tokens.insert(component.to_owned(), token);
    }
    let console_session_key =
        match super::secret_value(&ctx.client, ns, &format!("{name}-console"), "session-key")
            .await?
        {
            Some(k) => k,
            None => generate_session_key(),
        };
    Ok(build::Resolved {
        jwt_signing_key: jwt,
        service_tokens: tokens,
        console_session_key,
    })
}

/// Ready and reason of an applied payplane child, from its status as returned by apply.
fn child_readiness(obj: &DynamicObject) -> (bool, Option<String>) {
    let generation = obj.metadata.generation.unwrap_or(0);
    let status = obj.data.get("status");
    let observed = status
        .and_then(|s| s.get("observedGeneration"))
        .and_then(Value::as_i64);
    let ready = status
        .and_then(|s| s.get("conditions"))
        .and_then(Value::as_array)
        .and_then(|cs| cs.iter().find(|c| c["type"] == "Ready").cloned());
    let is_ready =
        observed == Some(generation) && ready.as_ref().is_some_and(|c| c["status"] == "True");
    let reason = ready
        .and_then(|c| c.get("reason").and_then(Value::as_str).map(str::to_owned))
        .or_else(|| Some("Pending".to_owned()));
    (is_ready, if is_ready { None } else { reason })
}

async fn reconcile(p: Arc<Platform>, ctx: Arc<Ctx>) -> Result<Action> {
    let ns = namespace(p.as_ref())?;
    let uid = p.meta().uid.clone().unwrap_or_default();
    // Refused before anything is applied: the children already running keep their spec.
    if let Err(e) = security::validate(&p) {
        write_status(
            &ctx,
            p.as_ref(),
            &invalid("InvalidSpec", e.to_string()),
            json!({}),
        )
        .await?;
        return Ok(Action::await_change());
    }
    let resolved = resolve(&p, &ctx, &ns).await?;
    let children = build::build(&p, &resolved)?;
    let applied = apply_children(&ctx.client, &ns, &children).await?;
    prune(&ctx.client, &ns, &uid, &kinds(), &ids(&children)).await?;

    let mut components = Vec::new();
    for obj in &applied {
        let kind = obj
            .types
            .as_ref()
            .map(|t| t.kind.clone())
            .unwrap_or_default();
        let (ready, reason) = match kind.as_str() {
            "StatefulSet" => {
                let r = statefulset_ready(obj);
                (r, (!r).then(|| "StatefulSetNotReady".to_owned()))
            }
            "Secret" | "Service" | "NetworkPolicy" => continue,
            _ => child_readiness(obj),
        };
        components
            .push(json!({"kind": kind, "name": obj.name_any(), "ready": ready, "reason": reason}));
    }
    let not_ready: Vec<String> = components
        .iter()
        .filter(|c| c["ready"] == false)
        .map(|c| {
            format!(
                "{} {}",
                c["kind"].as_str().unwrap_or(""),
                c["name"].as_str().unwrap_or("")
            )
        })
        .collect();
    let extra = json!({"endpoint": format!("https://{}", p.spec.domain), "components": components});
    if not_ready.is_empty() {
        write_status(
            &ctx,
            p.as_ref(),
            &ready(&format!("{} components ready", components.len())),
            extra,
        )
        .await?;
        Ok(Action::requeue(super::RESYNC))
    } else {
        let msg = format!("waiting for {}", not_ready.join(", "));
        write_status(&ctx, p.as_ref(), &waiting("ComponentsNotReady", msg), extra).await?;
        Ok(Action::requeue(super::WAIT))
    }
}

/// The kinds of a Platform's children, which [`prune`] looks through; public for `payplane plan`.
pub fn kinds() -> Vec<ApiResource> {
    vec![
        ApiResource::erase::<AppService>(&()),
        ApiResource::erase::<PostgresCluster>(&()),
        ApiResource::erase::<Database>(&()),
        ApiResource::erase::<MessageBroker>(&()),
        ApiResource::erase::<Queue>(&()),
        ApiResource::erase::<IngressCert>(&()),
        ApiResource::erase::<Secret>(&()),
        ApiResource::erase::<Service>(&()),
        ApiResource::erase::<StatefulSet>(&()),
        ApiResource::erase::<NetworkPolicy>(&()),
    ]
}

/// Runs the Platform controller until `shutdown`.
pub async fn controller(
    ctx: Arc<Ctx>,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    let cfg = super::managed();
    let ctrl = Controller::new(ctx.watched::<Platform>(), watcher::Config::default())
        .owns(ctx.watched::<AppService>(), cfg.clone())
        .owns(ctx.watched::<PostgresCluster>(), cfg.clone())
        .owns(ctx.watched::<Database>(), cfg.clone())
        .owns(ctx.watched::<MessageBroker>(), cfg.clone())
        .owns(ctx.watched::<Queue>(), cfg.clone())
        .owns(ctx.watched::<IngressCert>(), cfg.clone())
        .owns(ctx.watched::<StatefulSet>(), cfg)
        .graceful_shutdown_on(shutdown);
    super::run_controller(KIND, ctrl, reconcile, ctx).await;
}
