//! `status` of a `PostgresCluster` (pure): ready or waiting, with the endpoint and the
//! superuser Secret the Databases connect with.

use kube::api::DynamicObject;
use serde_json::json;

use super::super::provider::NOT_READY;
use super::super::{RESYNC, Report};
use super::{build, cloudnative_pg};
use crate::crd::postgres_cluster::ExternalPostgres;

/// An external server: ready once its superuser Secret has the key (`found`).
pub fn external(ext: &ExternalPostgres, found: bool) -> Report {
    let secret = &ext.superuser_secret_ref;
    let extra = json!({
        "endpoint": {"host": ext.host, "port": ext.port},
        "superuserSecretName": secret.name,
        "superuserSecretKey": secret.key,
        "superuser": ext.user.as_deref().unwrap_or("postgres"),
        "sslMode": ext.ssl_mode,
    });
    if found {
        let message = format!("external server {}:{}", ext.host, ext.port);
        Report::ready(&message, extra, RESYNC)
    } else {
        let why = format!("Secret {} with key {} not found", secret.name, secret.key);
        Report::waiting("WaitingForSecret", why, extra)
    }
}

/// The built-in server `name` in `ns`: ready once its StatefulSet is.
pub fn builtin(name: &str, ns: &str, applied: &[DynamicObject]) -> Report {
    let extra = json!({
        "endpoint": {"host": format!("{}.{ns}.svc", build::rw_service(name)), "port": 5432},
        "superuserSecretName": build::superuser_secret(name),
        "superuserSecretKey": "password",
        "superuser": "postgres",
    });
    Report::statefulset(applied, name, "server running", extra)
}

/// A CloudNativePG Cluster `name`: ready once it is healthy and its superuser Secret exists.
pub fn cloudnative_pg(
    name: &str,
    ns: &str,
    observed: cloudnative_pg::Observed,
    secret: bool,
) -> Report {
    let extra = cloudnative_pg::status_fields(name, ns, &observed);
    if !observed.ready {
        return Report::waiting(NOT_READY, observed.message, extra);
    }
    if !secret {
        let secret = cloudnative_pg::superuser_secret(name);
        let why = format!("CloudNativePG has not created the superuser Secret {secret} yet");
        return Report::waiting("WaitingForSecret", why, extra);
    }
    Report::ready(&observed.message, extra, RESYNC)
}

#[cfg(test)]
mod tests {
    use super::super::super::WAIT;
    use super::*;
    use kube::runtime::controller::Action;

    fn sts(generation: i64, ready_replicas: i64) -> DynamicObject {
        serde_json::from_value(json!({
            "apiVersion": "apps/v1", "kind": "StatefulSet",
            "metadata": {"name": "pg", "generation": generation},
            "spec": {"replicas": 1},
            "status": {"observedGeneration": 2, "readyReplicas": ready_replicas},
        }))
        .unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn builtin_is_ready_with_its_statefulset() {
        let r = builtin("pg", "payments", &[sts(2, 1)]);
        assert_eq!(r.readiness(), (true, "Ready", "server running"));
        assert_eq!(r.action, Action::requeue(RESYNC));
        assert_eq!(r.extra["endpoint"]["host"], "pg-rw.payments.svc");
        let table = [vec![sts(3, 1)], vec![sts(2, 0)], vec![]];
        for applied in table {
            let r = builtin("pg", "payments", &applied);
            assert_eq!(
                r.readiness(),
                (false, "StatefulSetNotReady", "StatefulSet pg is not ready")
            );
            assert_eq!(r.action, Action::requeue(WAIT));
        }
    }

    #[test]
    fn external_waits_for_its_secret() {
        let ext: ExternalPostgres = serde_json::from_value(json!({
            "host": "db.example", "port": 5433, "superuserSecretRef": {"name": "su", "key": "pw"},
        }))
        .unwrap_or_else(|e| panic!("{e}"));
        let r = external(&ext, true);
        assert_eq!(
            r.readiness(),
            (true, "Ready", "external server db.example:5433")
        );
        assert_eq!(r.extra["superuser"], "postgres");
        let r = external(&ext, false);
        assert_eq!(
            r.readiness(),
            (false, "WaitingForSecret", "Secret su with key pw not found")
        );
        assert_eq!(r.extra["superuserSecretName"], "su");
    }

    #[test]
    fn cloudnative_pg_needs_health_then_the_secret() {
        let healthy = || {
            cloudnative_pg::observe(
                &json!({"status": {"phase": cloudnative_pg::HEALTHY, "instances": 1, "readyInstances": 1}}),
                1,
            )
        };
        assert!(healthy().ready);
        assert!(cloudnative_pg("pg", "ns", healthy(), true).readiness().0);
        let r = cloudnative_pg("pg", "ns", healthy(), false);
        assert_eq!(r.readiness().1, "WaitingForSecret");
        let r = cloudnative_pg("pg", "ns", cloudnative_pg::observe(&json!({}), 1), true);
        assert_eq!(r.readiness().1, NOT_READY);
    }
}
