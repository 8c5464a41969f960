//! Pure builder of an `IngressCert`'s children: the operator-managed CA Secret (selfSigned),
//! the `kubernetes.io/tls` Secret (selfSigned, ca) or a cert-manager `Certificate`, and the
//! optional Ingress. No I/O.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::networking::v1::Ingress;
use serde_json::json;

use crate::crd::IngressCert;
use crate::crd::ingress_cert::Issuer;
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

/// Name of the operator-managed CA Secret.
pub fn ca_secret(name: &str) -> String {
    format!("{name}-ca")
}

/// The cert-manager `Certificate` type.
pub fn certificate_resource() -> kube::core::ApiResource {
    api_resource("cert-manager.io", "v1", "Certificate", "certificates")
}

/// The children of `ic`.
pub fn build(ic: &IngressCert, resolved: &Resolved) -> Result<Vec<Child>, MetaError> {
    let owner = Owner::of(ic)?;
    let name = owner.name().to_owned();
    let mut children = Vec::new();
    if let Some(ca) = &resolved.managed_ca {
        children.push(owner.child::<Secret>(
            &ca_secret(&name),
            "tls",
            secret_body(
                "kubernetes.io/tls",
                &BTreeMap::from([
                    ("tls.crt".to_owned(), ca.cert.clone()),
                    ("tls.key".to_owned(), ca.key.clone()),
                ]),
            ),
        ));
    }
    match ic.spec.issuer {
        Issuer::SelfSigned | Issuer::Ca => {
            if let Some(leaf) = &resolved.leaf {
                let mut secret = owner.child::<Secret>(
                    &ic.spec.secret_name,
                    "tls",
                    secret_body(
                        "kubernetes.io/tls",
                        &BTreeMap::from([
                            ("tls.crt".to_owned(), leaf.cert.clone()),
                            ("tls.key".to_owned(), leaf.key.clone()),
                            ("ca.crt".to_owned(), resolved.ca_cert.clone()),
                        ]),
                    ),
                );
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
        children.push(owner.child::<Ingress>(&name, "ingress", json!({ "spec": spec })));
    }
    Ok(children)
}
