//! Pure builder of an `IngressCert`'s children: the operator-managed CA Secret (selfSigned),
//! the `kubernetes.io/tls` Secret (selfSigned, ca) or a cert-manager `Certificate`, and the
//! optional Ingress or Gateway API `HTTPRoute` (with the `ReferenceGrant` a Gateway in another
//! namespace needs to read the Secret). No I/O.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::networking::v1::Ingress;
use serde_json::json;

use crate::crd::IngressCert;
use crate::crd::ingress_cert::{CertificateRef, HttpRouteSpec, Issuer};
use crate::meta::{Child, MetaError, Owner, api_resource, secret_body};
use crate::tls::Pem;

/// Annotations on the TLS Secret that let the controller decide about renewal without
/// parsing the certificate.
pub const NOT_BEFORE: &str = "payplane.dev/not-before";
/// End of validity.
pub const NOT_AFTER: &str = "payplane.dev/not-after";
/// Hosts the certificate covers (comma-separated).
pub const HOSTS: &str = "payplane.dev/hosts";
/// Serial of the certificate.
pub const SERIAL: &str = "payplane.dev/serial";
/// When the controller issues the next certificate.
pub const RENEWAL: &str = "payplane.dev/renewal-time";

/// The certificate material decided by the controller.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Resolved {
    /// The operator-managed CA (selfSigned only).
    pub managed_ca: Option<Pem>,
    /// The CA certificate PEM that signed the leaf.
    pub ca_cert: String,
    /// The current leaf (selfSigned, ca).
    pub leaf: Option<Pem>,
    /// Annotations describing the leaf (validity, hosts, serial).
    pub leaf_annotations: BTreeMap<String, String>,
}

/// Whether the stored leaf (`data` and `ann` of its Secret) can stay at `now`: same hosts,
/// same CA, before its renewal time.
pub fn leaf_is_current(
    ic: &IngressCert,
    (data, ann): (&BTreeMap<String, String>, &BTreeMap<String, String>),
    ca_cert: &str,
    now: jiff::Timestamp,
) -> bool {
    let renewal = ann
        .get(RENEWAL)
        .and_then(|t| t.parse::<jiff::Timestamp>().ok());
    ann.get(HOSTS) == Some(&ic.spec.hosts.join(","))
        && data.get("ca.crt").map(String::as_str) == Some(ca_cert)
        && data.contains_key("tls.crt")
        && data.contains_key("tls.key")
        && renewal.is_some_and(|r| now < r)
}

/// The annotations describing a new `leaf` of `ic`, renewed at `renewal`.
pub fn leaf_annotations(
    ic: &IngressCert,
    leaf: &crate::tls::Leaf,
    renewal: jiff::Timestamp,
) -> BTreeMap<String, String> {
    BTreeMap::from([
        (NOT_BEFORE.to_owned(), leaf.not_before.to_string()),
        (NOT_AFTER.to_owned(), leaf.not_after.to_string()),
        (RENEWAL.to_owned(), renewal.to_string()),
        (HOSTS.to_owned(), ic.spec.hosts.join(",")),
        (SERIAL.to_owned(), leaf.serial.clone()),
    ])
}

/// Name of the operator-managed CA Secret.
pub fn ca_secret(name: &str) -> String {
    format!("{name}-ca")
}

/// The cert-manager `Certificate` type.
pub fn certificate_resource() -> kube::core::ApiResource {
    api_resource("cert-manager.io", "v1", "Certificate", "certificates")
}

/// The Gateway API group.
pub const GATEWAY_GROUP: &str = "gateway.networking.k8s.io";

/// The Gateway API `HTTPRoute` type (`v1`, standard channel).
pub fn http_route_resource() -> kube::core::ApiResource {
    api_resource(GATEWAY_GROUP, "v1", "HTTPRoute", "httproutes")
}

/// The Gateway API `ReferenceGrant` type. `v1beta1` rather than `v1`: every Gateway API
/// release since v0.6 serves it (v1.6 serves both), so older installations work too.
pub fn reference_grant_resource() -> kube::core::ApiResource {
    api_resource(
        GATEWAY_GROUP,
        "v1beta1",
        "ReferenceGrant",
        "referencegrants",
    )
}

/// Name of the `ReferenceGrant` that lets the Gateway's namespace read the certificate Secret.
pub fn reference_grant_name(name: &str) -> String {
    format!("{name}-gateway-tls")
}

/// The entry the Gateway listener's `tls.certificateRefs` must hold to serve the certificate
/// of `ic`, when `ic` routes through a Gateway.
pub fn listener_certificate_ref(ic: &IngressCert) -> Option<CertificateRef> {
    ic.spec.http_route.as_ref()?;
    Some(CertificateRef {
        group: String::new(),
        kind: "Secret".into(),
        name: ic.spec.secret_name.clone(),
        namespace: ic.metadata.namespace.clone().unwrap_or_default(),
    })
}

/// The `Ready` message: where the certificate is and, with a route, what the Gateway's owner
/// must set on the listener (the operator never changes a Gateway it does not own).
pub fn ready_message(ic: &IngressCert) -> String {
    let stored = format!("certificate in Secret {}", ic.spec.secret_name);
    let (Some(route), Some(cert)) = (ic.spec.http_route.as_ref(), listener_certificate_ref(ic))
    else {
        return stored;
    };
    let name = ic.metadata.name.clone().unwrap_or_default();
    let gateway_ns = route
        .parent_ref
        .namespace
        .as_deref()
        .unwrap_or(&cert.namespace);
    let listener = route.parent_ref.section_name.as_ref().map_or_else(
        || "its HTTPS listener".to_owned(),
        |l| format!("listener {l}"),
    );
    let grant = if gateway_ns == cert.namespace {
        String::new()
    } else {
        format!(
            " (ReferenceGrant {} lets namespace {gateway_ns} read it)",
            reference_grant_name(&name)
        )
    };
    format!(
        "{stored}; HTTPRoute {name} attached to Gateway {gateway_ns}/{}: {listener} must list {{kind: Secret, namespace: {}, name: {}}} in tls.certificateRefs{grant}",
        route.parent_ref.name, cert.namespace, cert.name,
    )
}

/// What the Gateway controllers say about a route, from its stored `status.parents`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteVerdict {
    /// No controller has written a verdict yet (none runs, or not yet).
    Unknown,
    /// Every controller that answered accepts the route and resolves its backend.
    Accepted,
    /// A controller refused the route or could not resolve its references: what it said.
    Rejected(String),
}

/// The verdict of the `Accepted` and `ResolvedRefs` conditions in the stored `route`'s
/// `status.parents` (written by the Gateway's controller, not by the operator). A condition
/// about an older `metadata.generation` of the route is ignored: the spec it judged is gone.
pub fn route_verdict(route: &serde_json::Value) -> RouteVerdict {
    let generation = route
        .pointer("/metadata/generation")
        .and_then(serde_json::Value::as_i64);
    let parents = route
        .pointer("/status/parents")
        .and_then(serde_json::Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    if parents.is_empty() {
        return RouteVerdict::Unknown;
    }
    let refusals: Vec<String> = parents
        .iter()
        .flat_map(|parent| {
            let gateway = parent["parentRef"]["namespace"].as_str().map_or_else(
                || {
                    parent["parentRef"]["name"]
                        .as_str()
                        .unwrap_or("?")
                        .to_owned()
                },
                |ns| {
                    format!(
                        "{ns}/{}",
                        parent["parentRef"]["name"].as_str().unwrap_or("?")
                    )
                },
            );
            parent["conditions"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default()
                .iter()
                .filter(|c| {
                    (c["type"] == "Accepted" || c["type"] == "ResolvedRefs")
                        && c["status"] == "False"
                        && !matches!(
                            (c["observedGeneration"].as_i64(), generation),
                            (Some(seen), Some(now)) if seen < now
                        )
                })
                .map(move |c| {
                    format!(
                        "Gateway {gateway}: {}={} {}: {}",
                        c["type"].as_str().unwrap_or_default(),
                        c["status"].as_str().unwrap_or_default(),
                        c["reason"].as_str().unwrap_or_default(),
                        c["message"].as_str().unwrap_or_default()
                    )
                })
                .collect::<Vec<_>>()
        })
        .collect();
    if refusals.is_empty() {
        RouteVerdict::Accepted
    } else {
        RouteVerdict::Rejected(refusals.join("; "))
    }
}

/// The `HTTPRoute` body: every host, every path, to the backend Service, attached to the
/// named Gateway (and listener).
fn http_route_body(hosts: &[String], route: &HttpRouteSpec) -> serde_json::Value {
    let mut parent =
        json!({"group": GATEWAY_GROUP, "kind": "Gateway", "name": route.parent_ref.name});
    if let Some(ns) = &route.parent_ref.namespace {
        parent["namespace"] = json!(ns);
    }
    if let Some(section) = &route.parent_ref.section_name {
        parent["sectionName"] = json!(section);
    }
    json!({"spec": {
        "parentRefs": [parent],
        "hostnames": hosts,
        "rules": [{
            "matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
            "backendRefs": [{"group": "", "kind": "Service", "name": route.backend.service_name, "port": route.backend.port}],
        }],
    }})
}

/// The `kubernetes.io/tls` Secret `name` of `owner` with the PEM `data` (`tls.crt`, …).
fn tls_secret(owner: &Owner, name: &str, data: &[(&str, &str)]) -> Child {
    let data: BTreeMap<String, String> = (data.iter())
        .map(|(key, pem)| ((*key).to_owned(), (*pem).to_owned()))
        .collect();
    owner.child::<Secret>(name, "tls", secret_body("kubernetes.io/tls", &data))
}

/// The children of `ic`.
pub fn build(ic: &IngressCert, resolved: &Resolved) -> Result<Vec<Child>, MetaError> {
    let owner = Owner::of(ic)?;
    let name = owner.name().to_owned();
    let mut children = Vec::new();
    if let Some(ca) = &resolved.managed_ca {
        let data = [("tls.crt", ca.cert.as_str()), ("tls.key", ca.key.as_str())];
        children.push(tls_secret(&owner, &ca_secret(&name), &data));
    }
    match ic.spec.issuer {
        Issuer::SelfSigned | Issuer::Ca => {
            if let Some(leaf) = &resolved.leaf {
                let data = [
                    ("tls.crt", leaf.cert.as_str()),
                    ("tls.key", leaf.key.as_str()),
                    ("ca.crt", resolved.ca_cert.as_str()),
                ];
                let mut secret = tls_secret(&owner, &ic.spec.secret_name, &data);
                secret.object["metadata"]["annotations"] = json!(resolved.leaf_annotations);
                children.push(secret);
            }
        }
        Issuer::CertManager => {
            let issuer = ic.spec.cert_manager.as_ref().map(|c| c.issuer_ref.clone());
            let mut spec = json!({
                "secretName": ic.spec.secret_name,
                "dnsNames": ic.spec.hosts,
                "issuerRef": issuer.map(|i| json!({"group": "cert-manager.io", "kind": i.kind, "name": i.name})),
                "privateKey": {"rotationPolicy": "Always"},
            });
            if let Some(d) = &ic.spec.duration {
                spec["duration"] = json!(d);
            }
            if let Some(r) = &ic.spec.renew_before {
                spec["renewBefore"] = json!(r);
            }
            children.push(owner.child_of(
                certificate_resource(),
                &name,
                "tls",
                json!({ "spec": spec }),
            ));
        }
    }
    children.extend(routes(ic, &owner));
    Ok(children)
}

/// The Ingress or the `HTTPRoute` (with its `ReferenceGrant` when the Gateway is in another
/// namespace) that serves `ic`'s hosts.
fn routes(ic: &IngressCert, owner: &Owner) -> Vec<Child> {
    let name = owner.name();
    let mut children = Vec::new();
    if let Some(ingress) = &ic.spec.ingress {
        let rules: Vec<_> = ic
            .spec
            .hosts
            .iter()
            .map(|h| {
                json!({"host": h, "http": {"paths": [{"path": "/", "pathType": "Prefix", "backend": {
                    "service": {"name": ingress.backend.service_name, "port": {"number": ingress.backend.port}}}}]}})
            })
            .collect();
        let mut spec = json!({
            "tls": [{"hosts": ic.spec.hosts, "secretName": ic.spec.secret_name}],
            "rules": rules,
        });
        if let Some(class) = &ingress.class_name {
            spec["ingressClassName"] = json!(class);
        }
        children.push(owner.child::<Ingress>(name, "ingress", json!({ "spec": spec })));
    }
    if let Some(route) = &ic.spec.http_route {
        children.push(owner.child_of(
            http_route_resource(),
            name,
            "ingress",
            http_route_body(&ic.spec.hosts, route),
        ));
        // A Gateway may reference a Secret of another namespace only when that namespace
        // grants it; the grant lives next to the Secret, so the operator can make it. It
        // names the one Secret, for Gateways of the one namespace.
        if let Some(gateway_ns) = route
            .parent_ref
            .namespace
            .as_deref()
            .filter(|gw| *gw != owner.namespace())
        {
            children.push(owner.child_of(
                reference_grant_resource(),
                &reference_grant_name(name),
                "ingress",
                json!({"spec": {
                    "from": [{"group": GATEWAY_GROUP, "kind": "Gateway", "namespace": gateway_ns}],
                    "to": [{"group": "", "kind": "Secret", "name": ic.spec.secret_name}],
                }}),
            ));
        }
    }
    children
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::ingress_cert::{Backend, GatewayRef, IngressSpec};
    use crate::meta::test_meta;

    fn cert(route: Option<GatewayRef>) -> IngressCert {
        let spec = serde_json::from_value(json!({
            "hosts": ["pay.example.com", "*.pay.example.com"],
            "secretName": "pay-tls",
            "issuer": "certManager",
            "certManager": {"issuerRef": {"kind": "ClusterIssuer", "name": "letsencrypt"}},
        }));
        let mut ic = IngressCert::new("pay", spec.unwrap_or_else(|e| panic!("spec: {e}")));
        ic.metadata = test_meta("pay", "uid-pay");
        ic.spec.http_route = route.map(|parent_ref| HttpRouteSpec {
            parent_ref,
            backend: Backend {
                service_name: "payplane-gateway".into(),
                port: 80,
            },
        });
        ic
    }

    fn gateway(namespace: Option<&str>, section: Option<&str>) -> GatewayRef {
        GatewayRef {
            name: "public".into(),
            namespace: namespace.map(Into::into),
            section_name: section.map(Into::into),
        }
    }

    fn built(ic: &IngressCert) -> Vec<Child> {
        build(ic, &Resolved::default()).unwrap_or_else(|e| panic!("build: {e}"))
    }

    fn of_kind<'a>(children: &'a [Child], kind: &str) -> Vec<&'a Child> {
        children
            .iter()
            .filter(|c| c.resource.kind == kind)
            .collect()
    }

    #[test]
    fn route_to_a_gateway_elsewhere_comes_with_a_grant_for_the_secret() {
        let children = built(&cert(Some(gateway(Some("gateway-system"), Some("https")))));
        let objects: Vec<_> = children
            .iter()
            .filter(|c| c.resource.group == GATEWAY_GROUP)
            .map(|c| c.object.clone())
            .collect();
        insta::assert_yaml_snapshot!("httproute_cross_namespace", objects);
        let route = &of_kind(&children, "HTTPRoute")[0].object;
        assert_eq!(route["apiVersion"], "gateway.networking.k8s.io/v1");
        assert_eq!(
            route["spec"]["parentRefs"],
            json!([{"group": GATEWAY_GROUP, "kind": "Gateway", "name": "public", "namespace": "gateway-system", "sectionName": "https"}])
        );
        assert_eq!(
            route["spec"]["hostnames"],
            json!(["pay.example.com", "*.pay.example.com"])
        );
        assert_eq!(
            route["spec"]["rules"][0]["backendRefs"],
            json!([{"group": "", "kind": "Service", "name": "payplane-gateway", "port": 80}])
        );
        let grant = &of_kind(&children, "ReferenceGrant")[0].object;
        assert_eq!(grant["metadata"]["name"], "pay-gateway-tls");
        assert_eq!(
            grant["spec"]["from"],
            json!([{"group": GATEWAY_GROUP, "kind": "Gateway", "namespace": "gateway-system"}])
        );
        assert_eq!(
            grant["spec"]["to"],
            json!([{"group": "", "kind": "Secret", "name": "pay-tls"}])
        );
        assert!(of_kind(&children, "Ingress").is_empty());
    }

    #[test]
    fn route_to_a_gateway_of_the_same_namespace_needs_no_grant() {
        for ns in [None, Some("payments")] {
            let children = built(&cert(Some(gateway(ns, None))));
            let route = &of_kind(&children, "HTTPRoute")[0].object;
            assert_eq!(
                route["spec"]["parentRefs"][0].get("sectionName"),
                None,
                "no listener named: every listener that admits the route"
            );
            assert_eq!(
                route["spec"]["parentRefs"][0].get("namespace").is_some(),
                ns.is_some()
            );
            assert!(of_kind(&children, "ReferenceGrant").is_empty());
        }
    }

    #[test]
    fn ingress_instead_of_a_route_builds_no_gateway_api_object() {
        let mut ic = cert(None);
        ic.spec.ingress = Some(IngressSpec {
            class_name: Some("envoy".into()),
            backend: Backend {
                service_name: "payplane-gateway".into(),
                port: 80,
            },
        });
        let children = built(&ic);
        assert!(children.iter().all(|c| c.resource.group != GATEWAY_GROUP));
        let ingress = &of_kind(&children, "Ingress")[0].object;
        assert_eq!(ingress["spec"]["ingressClassName"], "envoy");
        assert_eq!(listener_certificate_ref(&ic), None);
    }

    #[test]
    fn ready_message_says_what_the_listener_must_reference() {
        assert_eq!(
            ready_message(&cert(Some(gateway(Some("gateway-system"), Some("https"))))),
            "certificate in Secret pay-tls; HTTPRoute pay attached to Gateway gateway-system/public: \
             listener https must list {kind: Secret, namespace: payments, name: pay-tls} in \
             tls.certificateRefs (ReferenceGrant pay-gateway-tls lets namespace gateway-system read it)"
        );
        assert_eq!(
            ready_message(&cert(Some(gateway(None, None)))),
            "certificate in Secret pay-tls; HTTPRoute pay attached to Gateway payments/public: \
             its HTTPS listener must list {kind: Secret, namespace: payments, name: pay-tls} in \
             tls.certificateRefs"
        );
        assert_eq!(ready_message(&cert(None)), "certificate in Secret pay-tls");
    }

    #[test]
    fn route_verdict_reads_the_gateway_controllers_conditions() {
        let route = |parents: serde_json::Value| json!({"status": {"parents": parents}});
        let cond = |t: &str, s: &str, reason: &str| json!({"type": t, "status": s, "reason": reason, "message": format!("{reason} said")});
        assert_eq!(route_verdict(&json!({"spec": {}})), RouteVerdict::Unknown);
        assert_eq!(route_verdict(&route(json!([]))), RouteVerdict::Unknown);
        assert_eq!(
            route_verdict(&route(json!([{"parentRef": {"name": "public"},
                "conditions": [cond("Accepted", "True", "Accepted"), cond("ResolvedRefs", "True", "ResolvedRefs")]}]))),
            RouteVerdict::Accepted
        );
        assert_eq!(
            route_verdict(&route(json!([{"parentRef": {"name": "public", "namespace": "edge"},
                "conditions": [cond("Accepted", "False", "NotAllowedByListeners"), cond("ResolvedRefs", "True", "ResolvedRefs")]}]))),
            RouteVerdict::Rejected(
                "Gateway edge/public: Accepted=False NotAllowedByListeners: NotAllowedByListeners said"
                    .into()
            )
        );
        // A refusal of an older generation of the route no longer counts.
        let mut stale = route(json!([{"parentRef": {"name": "public"},
            "conditions": [cond("Accepted", "False", "NotAllowedByListeners")]}]));
        stale["metadata"] = json!({"generation": 2});
        stale["status"]["parents"][0]["conditions"][0]["observedGeneration"] = json!(1);
        assert_eq!(route_verdict(&stale), RouteVerdict::Accepted);
        // Accepted, but the backend Service does not resolve: still not serving.
        assert!(matches!(
            route_verdict(&route(json!([{"parentRef": {"name": "public"},
                "conditions": [cond("Accepted", "True", "Accepted"), cond("ResolvedRefs", "False", "BackendNotFound")]}]))),
            RouteVerdict::Rejected(m) if m.contains("BackendNotFound")
        ));
    }

    #[test]
    fn the_listener_must_reference_the_certificate_secret() {
        let ic = cert(Some(gateway(Some("gateway-system"), None)));
        assert_eq!(
            listener_certificate_ref(&ic),
            Some(CertificateRef {
                group: String::new(),
                kind: "Secret".into(),
                name: "pay-tls".into(),
                namespace: "payments".into(),
            })
        );
    }

    /// The Platform hands its `httpRoute` to its IngressCert, which then has no Ingress; the
    /// backend is the gateway Service either way.
    #[test]
    fn platform_routes_through_the_named_gateway_instead_of_an_ingress() {
        use crate::controller::platform::build as platform;
        use crate::crd::platform::PlatformHttpRoute;
        let certs = |p: &crate::crd::Platform| -> Vec<IngressCert> {
            platform::build(p, &platform::Resolved::default())
                .unwrap_or_else(|e| panic!("platform build: {e}"))
                .into_iter()
                .filter(|c| c.resource.kind == "IngressCert")
                .map(|c| serde_json::from_value(c.object).unwrap_or_else(|e| panic!("icert: {e}")))
                .collect()
        };
        let mut p = crate::crd::Platform::example();
        p.spec.ingress_class_name = None;
        p.spec.http_route = Some(PlatformHttpRoute {
            parent_ref: gateway(Some("gateway-system"), Some("https")),
        });
        let ic = &certs(&p)[0];
        assert_eq!(ic.spec.ingress, None);
        let route = ic
            .spec
            .http_route
            .clone()
            .unwrap_or_else(|| panic!("no route"));
        assert_eq!(
            route.parent_ref,
            gateway(Some("gateway-system"), Some("https"))
        );
        assert_eq!(route.backend.service_name, "payplane-gateway");
        assert_eq!(ic.spec.hosts, vec![p.spec.domain.clone()]);
        p.spec.http_route = None;
        let ic = &certs(&p)[0];
        assert_eq!(ic.spec.http_route, None);
        assert_eq!(
            ic.spec.ingress.as_ref().map(|i| i.backend.clone()),
            Some(route.backend)
        );
    }
}
