//! `apply` of an `IngressCert`, the part that talks to the API server: reads the CA and the
//! stored leaf, makes a CA or issues a leaf when needed, and applies the children, leaving
//! out the route where the Gateway API is not installed (I/O: Kubernetes API).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::networking::v1::Ingress;
use kube::api::{Api, DynamicObject, ListParams};
use kube::core::ApiResource;
use kube::{Resource, ResourceExt};
use serde_json::json;

use super::super::{Ctx, Error, Flow, Report, Result, get, reading, sync_children};
use super::build;
use super::validate::{Input, Issuing};
use crate::crd::IngressCert;
use crate::meta::Child;
use crate::tls::{self, Pem};

/// Whether the API server serves the Gateway API's `HTTPRoute` (its CRDs are installed): a
/// list in `ns` answers 404 when the type does not exist. Asked at every reconcile that wants
/// a route, so installing the CRDs later is picked up without restarting the operator.
async fn gateway_api_served(ctx: &Ctx, ns: &str) -> Result<bool> {
    let api: Api<DynamicObject> =
        Api::namespaced_with(ctx.client.clone(), ns, &build::http_route_resource());
    match api.list_metadata(&ListParams::default().limit(1)).await {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(false),
        Err(e) => Err(reading(format!("the HTTPRoutes of {ns}"))(e)),
    }
}

/// The data and annotations of the Secret `name`, if it exists.
type SecretData = (BTreeMap<String, String>, BTreeMap<String, String>);

async fn secret_data(ctx: &Ctx, ns: &str, name: &str) -> Result<Option<SecretData>> {
    Ok(get::<Secret>(&ctx.client, ns, name).await?.map(|s| {
        let data = s
            .data
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k, String::from_utf8_lossy(&v.0).into_owned()))
            .collect();
        (data, s.metadata.annotations.unwrap_or_default())
    }))
}

/// The certificate and key of a `kubernetes.io/tls` Secret.
fn pem(data: &BTreeMap<String, String>) -> Option<Pem> {
    Some(Pem {
        cert: data.get("tls.crt")?.clone(),
        key: data.get("tls.key")?.clone(),
    })
}

/// What a certificate step failed to make, for whom.
fn issuing(what: &str, ic: &IngressCert) -> impl FnOnce(tls::TlsError) -> Error {
    let what = format!("{what} of IngressCert {}", ic.name_any());
    move |e| Error::Issue(what, e)
}

/// The certificate material: for `selfSigned` and `ca` the CA (kept, or made once) and the
/// leaf (kept while current, else issued, told in an Event); nothing for `certManager`.
pub async fn resolve(
    ic: &IngressCert,
    ctx: &Ctx,
    ns: &str,
    input: &Input<'_>,
) -> Flow<build::Resolved> {
    let mut resolved = build::Resolved::default();
    let ca = match input.issuing {
        Issuing::CertManager => return Ok(resolved),
        Issuing::SelfSigned => {
            let stored = secret_data(ctx, ns, &build::ca_secret(&ic.name_any())).await?;
            let ca = match stored.and_then(|(d, _)| pem(&d)) {
                Some(ca) => ca,
                None => {
                    tls::generate_ca(&ic.name_any()).map_err(issuing("generating the CA", ic))?
                }
            };
            resolved.managed_ca = Some(ca.clone());
            ca
        }
        Issuing::Ca { secret } => {
            let stored = secret_data(ctx, ns, secret).await?;
            let Some(ca) = stored.and_then(|(d, _)| pem(&d)) else {
                let why = format!("CA Secret {secret} with tls.crt and tls.key not found");
                return Err(Report::waiting("WaitingForSecret", why, json!({})).into());
            };
            ca
        }
    };
    resolved.ca_cert = ca.cert.clone();
    let now = jiff::Timestamp::now();
    let existing = secret_data(ctx, ns, &ic.spec.secret_name).await?;
    let current = existing.filter(|(d, a)| build::leaf_is_current(ic, (d, a), &ca.cert, now));
    let (leaf, annotations) = if let Some((d, a)) = current {
        (
            pem(&d).unwrap_or_else(|| Pem {
                cert: String::new(),
                key: String::new(),
            }),
            a,
        )
    } else {
        let hosts = &ic.spec.hosts;
        let leaf = tls::issue_leaf(&ca, hosts, input.lifetime)
            .map_err(issuing("issuing the certificate", ic))?;
        let renewal = tls::renewal_time(leaf.not_before, leaf.not_after, input.renew_before);
        let annotations = build::leaf_annotations(ic, &leaf, renewal);
        let note = format!("issued certificate {} for {}", leaf.serial, hosts.join(","));
        ctx.event(ic, false, "Issued", note).await;
        (leaf.pem, annotations)
    };
    resolved.leaf = Some(leaf);
    resolved.leaf_annotations = annotations;
    Ok(resolved)
}

/// Applies the children and prunes the rest; without the Gateway API CRDs the route cannot
/// exist and is left out (the certificate still can), which the second value says.
pub async fn apply(
    ic: &IngressCert,
    ctx: &Ctx,
    ns: &str,
    mut children: Vec<Child>,
) -> Result<(Vec<DynamicObject>, bool)> {
    let gateway_api_missing = ic.spec.http_route.is_some() && !gateway_api_served(ctx, ns).await?;
    if gateway_api_missing {
        children.retain(|c| c.resource.group != build::GATEWAY_GROUP);
    }
    let mut kinds = vec![
        ApiResource::erase::<Secret>(&()),
        ApiResource::erase::<Ingress>(&()),
        // Pruned whether or not a route is asked for, so switching back to an Ingress removes
        // them; a cluster without the Gateway API answers 404, which prune skips.
        build::http_route_resource(),
        build::reference_grant_resource(),
    ];
    if ic.spec.issuer == crate::crd::ingress_cert::Issuer::CertManager {
        kinds.push(build::certificate_resource());
    }
    let owner = (ns, ic.meta().uid.as_deref().unwrap_or_default());
    let applied = sync_children(&ctx.client, owner, &children, &kinds).await?;
    Ok((applied, gateway_api_missing))
}
