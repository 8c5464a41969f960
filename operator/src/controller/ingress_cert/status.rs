//! `status` of an `IngressCert` (pure): from the applied objects and the leaf's annotations,
//! ready or waiting (on cert-manager, on the Gateway's verdict on the route, on the Gateway
//! API CRDs), with the certificate's validity and when to look again.

use std::collections::BTreeMap;
use std::time::Duration;

use kube::ResourceExt;
use kube::api::DynamicObject;
use serde_json::{Value, json};

use super::super::{RESYNC, Report, WAIT};
use super::build::{self, RouteVerdict};
use crate::conditions::of_kind;
use crate::crd::IngressCert;
use crate::crd::ingress_cert::Issuer;

/// What the reconcile found.
pub struct Observed<'a> {
    /// The children as stored.
    pub applied: &'a [DynamicObject],
    /// The annotations of the leaf the operator issued (selfSigned, ca).
    pub leaf: &'a BTreeMap<String, String>,
    /// The route is asked for but the Gateway API CRDs are not installed.
    pub gateway_api_missing: bool,
}

/// The report of `ic` at `now`.
pub fn status(ic: &IngressCert, observed: &Observed<'_>, now: jiff::Timestamp) -> Report {
    let name = ic.name_any();
    let (mut extra, mut requeue) = if ic.spec.issuer == Issuer::CertManager {
        let cert = of_kind(observed.applied, "Certificate");
        let status = (cert.and_then(|c| c.data.get("status")).cloned()).unwrap_or(Value::Null);
        let extra = json!({"notBefore": status.get("notBefore"), "notAfter": status.get("notAfter"), "renewalTime": status.get("renewalTime")});
        let ready = (status.get("conditions").and_then(Value::as_array)).is_some_and(|cs| {
            cs.iter()
                .any(|c| c["type"] == "Ready" && c["status"] == "True")
        });
        if !ready {
            let why = format!("Certificate {name} is not ready");
            return Report::waiting("WaitingForCertManager", why, extra);
        }
        (extra, RESYNC)
    } else {
        let leaf = observed.leaf;
        let extra = json!({
            "notBefore": leaf.get(build::NOT_BEFORE),
            "notAfter": leaf.get(build::NOT_AFTER),
            "renewalTime": leaf.get(build::RENEWAL),
            "serial": leaf.get(build::SERIAL),
        });
        (extra, renewal_requeue(leaf, now))
    };
    if let (Some(cert), Value::Object(fields)) = (build::listener_certificate_ref(ic), &mut extra) {
        fields.insert("listenerCertificateRef".into(), json!(cert));
    }
    // A Gateway's controller that refuses the route says so in the route's status; without a
    // verdict yet (or no controller at all) the route is re-read every WAIT, as the operator
    // does not watch routes (their API may not exist).
    let route = of_kind(observed.applied, "HTTPRoute");
    let verdict = route.map(|r| build::route_verdict(&serde_json::to_value(r).unwrap_or_default()));
    if let Some(RouteVerdict::Rejected(why)) = &verdict {
        let why = format!("HTTPRoute {name} is not served: {why}");
        return Report::waiting("RouteNotAccepted", why, extra);
    }
    if verdict == Some(RouteVerdict::Unknown) {
        requeue = requeue.min(WAIT);
    }
    if observed.gateway_api_missing {
        let why = format!(
            "spec.httpRoute needs the Gateway API CRDs ({}/v1 HTTPRoute, standard channel) on the cluster; certificate in Secret {}",
            build::GATEWAY_GROUP,
            ic.spec.secret_name
        );
        return Report::waiting("GatewayApiMissing", why, extra);
    }
    Report::ready(&build::ready_message(ic), extra, requeue)
}

/// [`RESYNC`], or sooner when the leaf's renewal time comes first (at least a second).
fn renewal_requeue(leaf: &BTreeMap<String, String>, now: jiff::Timestamp) -> Duration {
    let renewal = leaf
        .get(build::RENEWAL)
        .and_then(|t| t.parse::<jiff::Timestamp>().ok());
    renewal.map_or(RESYNC, |r| {
        let secs = r.duration_since(now).as_secs().max(1);
        RESYNC.min(Duration::from_secs(u64::try_from(secs).unwrap_or(1)))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::runtime::controller::Action;

    fn ic(spec: Value) -> IngressCert {
        crate::fixtures::stored("pay", spec)
    }

    fn applied(objects: &[Value]) -> Vec<DynamicObject> {
        let parse = |o: &Value| serde_json::from_value(o.clone()).unwrap_or_else(|e| panic!("{e}"));
        objects.iter().map(parse).collect()
    }

    #[test]
    fn a_self_signed_leaf_is_ready_and_renewed_on_time() {
        let now: jiff::Timestamp = "2030-01-01T00:00:00Z"
            .parse()
            .unwrap_or_else(|e| panic!("{e}"));
        let cert = ic(json!({"hosts": ["pay.example"], "secretName": "pay-tls"}));
        let leaf = BTreeMap::from([
            (build::RENEWAL.to_owned(), "2030-01-01T00:01:00Z".to_owned()),
            (build::SERIAL.to_owned(), "0a".to_owned()),
        ]);
        let observed = Observed {
            applied: &[],
            leaf: &leaf,
            gateway_api_missing: false,
        };
        let r = status(&cert, &observed, now);
        assert_eq!((r.readiness().0, r.readiness().1), (true, "Ready"));
        assert_eq!(r.extra["serial"], "0a");
        assert_eq!(r.action, Action::requeue(Duration::from_secs(60)));
        let later: jiff::Timestamp = "2030-02-01T00:00:00Z"
            .parse()
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            status(&cert, &observed, later).action,
            Action::requeue(Duration::from_secs(1))
        );
        let none = BTreeMap::new();
        let observed = Observed {
            applied: &[],
            leaf: &none,
            gateway_api_missing: false,
        };
        assert_eq!(
            status(&cert, &observed, now).action,
            Action::requeue(RESYNC)
        );
    }

    #[test]
    fn cert_manager_and_routes_are_waited_for() {
        let cm = ic(
            json!({"hosts": ["pay.example"], "secretName": "pay-tls", "issuer": "certManager",
            "certManager": {"issuerRef": {"kind": "ClusterIssuer", "name": "le"}},
            "httpRoute": {"parentRef": {"name": "public"}, "backend": {"serviceName": "gw", "port": 80}}}),
        );
        let certificate = |ready: &str| {
            json!({"apiVersion": "cert-manager.io/v1", "kind": "Certificate",
            "metadata": {"name": "pay"}, "status": {"notAfter": "2030-01-01T00:00:00Z",
            "conditions": [{"type": "Ready", "status": ready}]}})
        };
        let route = |parents: Value| {
            json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
            "metadata": {"name": "pay", "generation": 1}, "status": {"parents": parents}})
        };
        let none = BTreeMap::new();
        let now = jiff::Timestamp::now();
        let report = |objects: &[Value], missing: bool| {
            let applied = applied(objects);
            let observed = Observed {
                applied: &applied,
                leaf: &none,
                gateway_api_missing: missing,
            };
            status(&cm, &observed, now)
        };
        let r = report(&[certificate("False")], false);
        assert_eq!(
            (r.readiness().0, r.readiness().1),
            (false, "WaitingForCertManager")
        );
        assert!(r.extra.get("listenerCertificateRef").is_none());
        let rejected = route(json!([{"parentRef": {"name": "public"}, "conditions": [
            {"type": "Accepted", "status": "False", "reason": "NotAllowedByListeners", "observedGeneration": 1}]}]));
        let r = report(&[certificate("True"), rejected], false);
        assert_eq!(
            (r.readiness().0, r.readiness().1),
            (false, "RouteNotAccepted")
        );
        assert_eq!(r.extra["listenerCertificateRef"]["name"], "pay-tls");
        assert_eq!(r.extra["notAfter"], "2030-01-01T00:00:00Z");
        let r = report(&[certificate("True")], true);
        assert_eq!(
            (r.readiness().0, r.readiness().1),
            (false, "GatewayApiMissing")
        );
        let r = report(&[certificate("True"), route(json!([]))], false);
        assert_eq!((r.readiness().0, r.readiness().1), (true, "Ready"));
        assert_eq!(
            r.action,
            Action::requeue(WAIT),
            "no verdict yet: re-read soon"
        );
    }
}
