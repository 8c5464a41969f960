//! Reconciles `IngressCert`: keeps an operator-managed CA (selfSigned) or uses a given CA
//! Secret (ca) to issue the leaf into a `kubernetes.io/tls` Secret, renewing it at its
//! renewal time, or creates a cert-manager `Certificate` (certManager); plus the Ingress or
//! the Gateway API `HTTPRoute` (I/O: Kubernetes API).

pub mod build;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::networking::v1::Ingress;
use kube::api::{Api, DynamicObject, ListParams};
use kube::core::ApiResource;
use kube::runtime::controller::Action;
use kube::runtime::{Controller, watcher};
use kube::{Resource, ResourceExt};
use serde_json::{Value, json};

use super::{
    Ctx, Result, apply_children, ids, invalid, namespace, prune, ready, waiting, write_status,
};
use crate::crd::IngressCert;
use crate::crd::ingress_cert::Issuer;
use crate::tls::{self, Pem};

const KIND: &str = "IngressCert";

/// Whether the API server serves the Gateway API's `HTTPRoute` (its CRDs are installed): a
/// list in `ns` answers 404 when the type does not exist. Asked at every reconcile that wants
/// a route, so installing the CRDs later is picked up without restarting the operator.
async fn gateway_api_served(ctx: &Ctx, ns: &str) -> Result<bool> {
    let api: Api<DynamicObject> =
        Api::namespaced_with(ctx.client.clone(), ns, &build::http_route_resource());
    match api.list_metadata(&ListParams::default().limit(1)).await {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(false),
        Err(e) => Err(e.into()),
    }
}

async fn secret_data(
    ctx: &Ctx,
    ns: &str,
    name: &str,
) -> Result<Option<(BTreeMap<String, String>, BTreeMap<String, String>)>> {
    let api: Api<Secret> = Api::namespaced(ctx.client.clone(), ns);
    Ok(api.get_opt(name).await?.map(|s| {
        let data = s
            .data
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k, String::from_utf8_lossy(&v.0).into_owned()))
            .collect();
        (data, s.metadata.annotations.unwrap_or_default())
    }))
}

/// Whether the stored leaf can stay: same hosts, same CA, before its renewal time.
fn leaf_is_current(
    ic: &IngressCert,
    data: &BTreeMap<String, String>,
    ann: &BTreeMap<String, String>,
    ca_cert: &str,
) -> bool {
    let now = jiff::Timestamp::now();
    let renewal = ann
        .get("payplane.dev/renewal-time")
        .and_then(|t| t.parse::<jiff::Timestamp>().ok());
    ann.get(build::HOSTS) == Some(&ic.spec.hosts.join(","))
        && data.get("ca.crt").map(String::as_str) == Some(ca_cert)
        && data.contains_key("tls.crt")
        && data.contains_key("tls.key")
        && renewal.is_some_and(|r| now < r)
}

#[expect(
    clippy::too_many_lines,
    reason = "reconcile steps still inline: the per-kind validate/build/apply/status pipeline (issue #17, open) splits it"
)]
async fn reconcile(ic: Arc<IngressCert>, ctx: Arc<Ctx>) -> Result<Action> {
    let ns = namespace(ic.as_ref())?;
    let name = ic.name_any();
    let uid = ic.meta().uid.clone().unwrap_or_default();
    let lifetime = match ic.spec.duration.as_deref().map(tls::parse_duration) {
        None => jiff::SignedDuration::from_hours(2160),
        Some(Some(d)) => d,
        Some(None) => {
            write_status(
                &ctx,
                ic.as_ref(),
                &invalid("InvalidSpec", "duration is not like 2160h".into()),
                json!({}),
            )
            .await?;
            return Ok(Action::await_change());
        }
    };
    let renew_before = ic
        .spec
        .renew_before
        .as_deref()
        .and_then(tls::parse_duration);
    let mut resolved = build::Resolved::default();
    let mut extra = json!({});
    let mut requeue = super::RESYNC;
    match ic.spec.issuer {
        Issuer::CertManager if ic.spec.cert_manager.is_none() => {
            write_status(
                &ctx,
                ic.as_ref(),
                &invalid(
                    "InvalidSpec",
                    "issuer certManager needs spec.certManager".into(),
                ),
                json!({}),
            )
            .await?;
            return Ok(Action::await_change());
        }
        Issuer::Ca if ic.spec.ca.is_none() => {
            write_status(
                &ctx,
                ic.as_ref(),
                &invalid("InvalidSpec", "issuer ca needs spec.ca".into()),
                json!({}),
            )
            .await?;
            return Ok(Action::await_change());
        }
        Issuer::CertManager => {}
        Issuer::SelfSigned | Issuer::Ca => {
            let ca = if ic.spec.issuer == Issuer::SelfSigned {
                let stored = secret_data(&ctx, &ns, &build::ca_secret(&name)).await?;
                let ca = match stored.and_then(|(d, _)| {
                    Some(Pem {
                        cert: d.get("tls.crt")?.clone(),
                        key: d.get("tls.key")?.clone(),
                    })
                }) {
                    Some(ca) => ca,
                    None => tls::generate_ca(&name)?,
                };
                resolved.managed_ca = Some(ca.clone());
                ca
            } else {
                let secret = ic
                    .spec
                    .ca
                    .as_ref()
                    .map(|c| c.secret_ref.name.clone())
                    .unwrap_or_default();
                let stored = secret_data(&ctx, &ns, &secret).await?;
                let found = stored.and_then(|(d, _)| {
                    Some(Pem {
                        cert: d.get("tls.crt")?.clone(),
                        key: d.get("tls.key")?.clone(),
                    })
                });
                if let Some(ca) = found {
                    ca
                } else {
                    {
                        write_status(
                            &ctx,
                            ic.as_ref(),
                            &waiting(
                                "WaitingForSecret",
                                format!("CA Secret {secret} with tls.crt and tls.key not found"),
                            ),
                            json!({}),
                        )
                        .await?;
                        return Ok(Action::requeue(super::WAIT));
                    }
                }
            };
            resolved.ca_cert = ca.cert.clone();
            let existing = secret_data(&ctx, &ns, &ic.spec.secret_name).await?;
            let current = existing.filter(|(d, a)| leaf_is_current(&ic, d, a, &ca.cert));
            let (leaf, annotations) = if let Some((d, a)) = current {
                (
                    Pem {
                        cert: d.get("tls.crt").cloned().unwrap_or_default(),
                        key: d.get("tls.key").cloned().unwrap_or_default(),
                    },
                    a,
                )
            } else {
                let leaf = tls::issue_leaf(&ca, &ic.spec.hosts, lifetime)?;
                let renewal = tls::renewal_time(leaf.not_before, leaf.not_after, renew_before);
                let ann = BTreeMap::from([
                    (build::NOT_BEFORE.to_owned(), leaf.not_before.to_string()),
                    (build::NOT_AFTER.to_owned(), leaf.not_after.to_string()),
                    ("payplane.dev/renewal-time".to_owned(), renewal.to_string()),
                    (build::HOSTS.to_owned(), ic.spec.hosts.join(",")),
                    (build::SERIAL.to_owned(), leaf.serial.clone()),
                ]);
                ctx.event(
                    ic.as_ref(),
                    false,
                    "Issued",
                    format!(
                        "issued certificate {} for {}",
                        leaf.serial,
                        ic.spec.hosts.join(",")
                    ),
                )
                .await;
                (leaf.pem, ann)
            };
            if let Some(r) = annotations
                .get("payplane.dev/renewal-time")
                .and_then(|t| t.parse::<jiff::Timestamp>().ok())
            {
                let secs = r.duration_since(jiff::Timestamp::now()).as_secs().max(1);
                requeue = requeue.min(Duration::from_secs(u64::try_from(secs).unwrap_or(1)));
            }
            extra = json!({
                "notBefore": annotations.get(build::NOT_BEFORE),
                "notAfter": annotations.get(build::NOT_AFTER),
                "renewalTime": annotations.get("payplane.dev/renewal-time"),
                "serial": annotations.get(build::SERIAL),
            });
            resolved.leaf = Some(leaf);
            resolved.leaf_annotations = annotations;
        }
    }
    let mut children = build::build(ic.as_ref(), &resolved)?;
    // Without the Gateway API CRDs the route cannot exist; the certificate still can.
    let gateway_api_missing =
        ic.spec.http_route.is_some() && !gateway_api_served(&ctx, &ns).await?;
    if gateway_api_missing {
        children.retain(|c| c.resource.group != build::GATEWAY_GROUP);
    }
    let applied = apply_children(&ctx.client, &ns, &children).await?;
    let mut kinds = vec![
        ApiResource::erase::<Secret>(&()),
        ApiResource::erase::<Ingress>(&()),
        // Pruned whether or not a route is asked for, so switching back to an Ingress removes
        // them; a cluster without the Gateway API answers 404, which prune skips.
        build::http_route_resource(),
        build::reference_grant_resource(),
    ];
    if ic.spec.issuer == Issuer::CertManager {
        kinds.push(build::certificate_resource());
    }
    prune(&ctx.client, &ns, &uid, &kinds, &ids(&children)).await?;
    if ic.spec.issuer == Issuer::CertManager {
        let cert = applied
            .iter()
            .find(|o| o.types.as_ref().is_some_and(|t| t.kind == "Certificate"));
        let status = cert
            .and_then(|c| c.data.get("status"))
            .cloned()
            .unwrap_or(Value::Null);
        let is_ready = status
            .get("conditions")
            .and_then(Value::as_array)
            .is_some_and(|cs| {
                cs.iter()
                    .any(|c| c["type"] == "Ready" && c["status"] == "True")
            });
        extra = json!({"notBefore": status.get("notBefore"), "notAfter": status.get("notAfter"), "renewalTime": status.get("renewalTime")});
        if !is_ready {
            write_status(
                &ctx,
                ic.as_ref(),
                &waiting(
                    "WaitingForCertManager",
                    format!("Certificate {name} is not ready"),
                ),
                extra,
            )
            .await?;
            return Ok(Action::requeue(super::WAIT));
        }
    }
    if let (Some(cert), Value::Object(fields)) = (build::listener_certificate_ref(&ic), &mut extra)
    {
        fields.insert("listenerCertificateRef".into(), json!(cert));
    }
    // A Gateway's controller that refuses the route says so in the route's status; without a
    // verdict yet (or no controller at all) the route is re-read every WAIT, as the operator
    // does not watch routes (their API may not exist).
    let verdict = applied
        .iter()
        .find(|o| o.types.as_ref().is_some_and(|t| t.kind == "HTTPRoute"))
        .map(|route| build::route_verdict(&serde_json::to_value(route).unwrap_or_default()));
    if let Some(build::RouteVerdict::Rejected(why)) = &verdict {
        write_status(
            &ctx,
            ic.as_ref(),
            &waiting(
                "RouteNotAccepted",
                format!("HTTPRoute {name} is not served: {why}"),
            ),
            extra,
        )
        .await?;
        return Ok(Action::requeue(super::WAIT));
    }
    if verdict == Some(build::RouteVerdict::Unknown) {
        requeue = requeue.min(super::WAIT);
    }
    if gateway_api_missing {
        write_status(
            &ctx,
            ic.as_ref(),
            &waiting(
                "GatewayApiMissing",
                format!(
                    "spec.httpRoute needs the Gateway API CRDs ({}/v1 HTTPRoute, standard channel) on the cluster; certificate in Secret {}",
                    build::GATEWAY_GROUP,
                    ic.spec.secret_name
                ),
            ),
            extra,
        )
        .await?;
        return Ok(Action::requeue(super::WAIT));
    }
    write_status(&ctx, ic.as_ref(), &ready(&build::ready_message(&ic)), extra).await?;
    Ok(Action::requeue(requeue))
}

/// Runs the IngressCert controller until `shutdown`.
pub async fn controller(
    ctx: Arc<Ctx>,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    let ctrl = Controller::new(ctx.watched::<IngressCert>(), watcher::Config::default())
        .owns(ctx.watched::<Secret>(), super::managed())
        .graceful_shutdown_on(shutdown);
    super::run_controller(KIND, ctrl, reconcile, ctx).await;
}
