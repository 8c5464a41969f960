//! The `IngressCert` kind: TLS for hostnames and, optionally, the Ingress or the Gateway API
//! `HTTPRoute` that serves them. Pure data, no I/O.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::LocalRef;

super::kind! {
    kind: "IngressCert",
    status: "IngressCertStatus",
    shortname: "icert",
    doc: "IngressCert is TLS for hostnames: selfSigned (an operator-managed CA), ca (a CA Secret you give) or certManager (a cert-manager Certificate). The certificate lands in a kubernetes.io/tls Secret and is renewed before expiry; an optional Ingress, or a Gateway API HTTPRoute attached to a Gateway you run, routes the hosts to a backend Service.",
    column: r#"{"name":"Expires","type":"string","jsonPath":".status.notAfter","priority":1}"#,
    /// A TLS certificate for hostnames, kept in a `kubernetes.io/tls` Secret.
    #[derive(Eq)]
    #[schemars(extend("x-kubernetes-validations" = [
        {"rule": "self.issuer != 'ca' || has(self.ca)", "message": "issuer ca needs the ca block"},
        {"rule": "self.issuer != 'certManager' || has(self.certManager)", "message": "issuer certManager needs the certManager block"},
        {"rule": "!(has(self.ingress) && has(self.httpRoute))", "message": "ingress and httpRoute exclude each other: route the hosts one way"}
    ]))]
    pub struct IngressCertSpec {
        /// DNS names the certificate is valid for.
        #[schemars(length(min = 1))]
        pub hosts: Vec<String>,
        /// Who signs the certificate.
        #[serde(default)]
        pub issuer: Issuer,
        /// The CA for `issuer: ca`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub ca: Option<CaIssuer>,
        /// The cert-manager issuer for `issuer: certManager`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub cert_manager: Option<CertManagerIssuer>,
        /// Lifetime of the certificate (`2160h`); 90 days when absent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(pattern("^([0-9]+(h|m|s))+$"))]
        pub duration: Option<String>,
        /// How long before expiry to renew (`720h`); a third of the lifetime when absent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(pattern("^([0-9]+(h|m|s))+$"))]
        pub renew_before: Option<String>,
        /// The `kubernetes.io/tls` Secret that receives the certificate.
        #[schemars(length(min = 1))]
        pub secret_name: String,
        /// The Ingress that serves these hosts with this certificate.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub ingress: Option<IngressSpec>,
        /// The Gateway API `HTTPRoute` that serves these hosts through a Gateway you run (instead
        /// of `ingress`). The Gateway's HTTPS listener terminates TLS with `secretName`: the
        /// operator never changes a Gateway, `status.listenerCertificateRef` says what to set.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub http_route: Option<HttpRouteSpec>,
    }
}

/// Who signs the certificate.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema, Default)]
#[serde(rename_all = "camelCase")]
pub enum Issuer {
    /// An operator-managed CA (for dev and kind).
    #[default]
    SelfSigned,
    /// A CA you provide in a Secret.
    Ca,
    /// cert-manager, through a `Certificate`.
    CertManager,
}

/// A CA kept in a Secret.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CaIssuer {
    /// A `kubernetes.io/tls` Secret with the CA certificate (`tls.crt`) and key (`tls.key`).
    pub secret_ref: LocalRef,
}

/// A cert-manager issuer.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CertManagerIssuer {
    /// The Issuer or ClusterIssuer that signs.
    pub issuer_ref: IssuerRef,
}

/// Reference to a cert-manager Issuer or ClusterIssuer.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
pub struct IssuerRef {
    /// `Issuer` or `ClusterIssuer`.
    #[schemars(extend("enum" = ["Issuer", "ClusterIssuer"]))]
    pub kind: String,
    /// Name of the issuer.
    pub name: String,
}

/// The Ingress routing the hosts to a Service.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct IngressSpec {
    /// IngressClass (`nginx`); the cluster default when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class_name: Option<String>,
    /// The Service that receives the traffic.
    pub backend: Backend,
}

/// The `HTTPRoute` routing the hosts to a Service through a Gateway.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HttpRouteSpec {
    /// The Gateway the route attaches to.
    pub parent_ref: GatewayRef,
    /// The Service that receives the traffic.
    pub backend: Backend,
}

/// A Gateway (`gateway.networking.k8s.io/v1`) and, optionally, one of its listeners.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GatewayRef {
    /// Name of the Gateway.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Namespace of the Gateway; the route's own when absent. From another namespace the
    /// operator also creates a ReferenceGrant that lets that namespace's Gateways read the
    /// certificate Secret, and the listener's `allowedRoutes` must admit this namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 63), pattern("^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"))]
    pub namespace: Option<String>,
    /// Name of the listener (`spec.listeners[].name`) to attach to; every listener that admits
    /// the route when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 1, max = 253),
        pattern("^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
    )]
    pub section_name: Option<String>,
}

/// A Service port.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Backend {
    /// Name of the Service.
    pub service_name: String,
    /// Port of the Service.
    #[schemars(range(min = 1, max = 65535))]
    pub port: i32,
}

super::status! {
    /// Observed state of an IngressCert.
    pub struct IngressCertStatus {
        /// `Ready`.
        conditions,
        /// Start of validity of the current certificate (RFC 3339).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub not_before: Option<String>,
        /// End of validity of the current certificate (RFC 3339).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub not_after: Option<String>,
        /// When the operator issues the next certificate (RFC 3339).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub renewal_time: Option<String>,
        /// Serial number of the current certificate (hex).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub serial: Option<String>,
        /// With `httpRoute`: the entry the Gateway listener's `tls.certificateRefs` must hold to
        /// serve this certificate (the operator does not change Gateways it does not own).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub listener_certificate_ref: Option<CertificateRef>,
    }
}

/// A Gateway listener's `tls.certificateRefs` entry: a Secret.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CertificateRef {
    /// `""` (the core API group).
    pub group: String,
    /// `Secret`.
    pub kind: String,
    /// Name of the Secret (`spec.secretName`).
    pub name: String,
    /// Namespace of the Secret (the IngressCert's).
    pub namespace: String,
}

super::impl_has_conditions!(IngressCert);
