//! Test fixtures that read like sentences (`AppService::test("payments").with_database(…)`).
//! Test-only, no I/O.

use crate::crd::app_service::{Autoscaling, Migration, ObjectRef};
use crate::crd::{AppService, AppServiceSpec, Platform, PlatformSpec};
use crate::meta::test_meta;

/// A `K` with `spec`, as stored: named `name` in `payments`, uid `uid-<name>`, generation 1.
#[expect(
    clippy::needless_pass_by_value,
    reason = "callers write `json!` in place"
)]
pub fn stored<K>(name: &str, spec: serde_json::Value) -> K
where
    K: serde::de::DeserializeOwned + kube::Resource<DynamicType = ()>,
{
    let object = serde_json::json!({
        "apiVersion": K::api_version(&()), "kind": K::kind(&()), "metadata": {}, "spec": spec,
    });
    let mut k: K = serde_json::from_value(object)
        .unwrap_or_else(|e| panic!("fixture {} {name}: {e}", K::kind(&())));
    *k.meta_mut() = test_meta(name, &format!("uid-{name}"));
    k
}

impl AppService {
    /// A minimal stored AppService named `name` running `<name>:1`.
    pub fn test(name: &str) -> Self {
        Self {
            metadata: test_meta(name, &format!("uid-{name}")),
            spec: AppServiceSpec {
                image: format!("{name}:1"),
                args: vec!["serve".into()],
                port: 8080,
                replicas: Some(1),
                migration: None,
                database: None,
                queues: vec![],
                cache: None,
                files: vec![],
                env: vec![],
                resources: None,
                autoscaling: None,
                probes: None,
                reloads: vec![],
                allow_from: None,
            },
            status: None,
        }
    }

    /// With a Database reference.
    #[must_use]
    pub fn with_database(mut self, db: &str) -> Self {
        self.spec.database = Some(ObjectRef { ref_: db.into() });
        self
    }

    /// With a Queue reference.
    #[must_use]
    pub fn with_queue(mut self, q: &str) -> Self {
        self.spec.queues.push(ObjectRef { ref_: q.into() });
        self
    }

    /// With a `migrate` migration.
    #[must_use]
    pub fn with_migration(mut self) -> Self {
        self.spec.migration = Some(Migration {
            args: vec!["migrate".into()],
        });
        self
    }

    /// With autoscaling between `min` and `max`.
    #[must_use]
    pub fn with_autoscaling(mut self, min: i32, max: i32) -> Self {
        self.spec.autoscaling = Some(Autoscaling {
            min_replicas: min,
            max_replicas: max,
            target_cpu_utilization_percentage: 70,
        });
        self
    }
}

impl Platform {
    /// The example Platform of `examples/platform.yaml`, as stored.
    pub fn example() -> Self {
        let mut p: Self = serde_saphyr::from_str(include_str!("../../examples/platform.yaml"))
            .unwrap_or_else(|_| Self {
                metadata: test_meta("payplane", "uid-payplane"),
                spec: PlatformSpec {
                    version: "0.1.0".into(),
                    image_repository: "ghcr.io/payplane".into(),
                    profile: crate::crd::platform::Profile::Dev,
                    domain: "payplane.localtest.me".into(),
                    tls: None,
                    ingress_class_name: None,
                    http_route: None,
                    postgres: None,
                    broker: None,
                    cache: None,
                    components: None,
                    network: None,
                    psp: None,
                },
                status: None,
            });
        p.metadata.uid = Some("uid-payplane".into());
        p.metadata.generation = Some(1);
        p
    }

    /// The example as a `prod` Platform with an external PSP and no payments override.
    pub fn prod_with_psp() -> Self {
        let mut p = Self::example();
        p.spec.profile = crate::crd::platform::Profile::Prod;
        // The example's override pins the simulator.
        if let Some(o) = p.spec.components.as_mut().and_then(|c| c.payments.as_mut()) {
            o.env.clear();
        }
        p.spec.psp = Some(crate::crd::platform::PlatformPsp {
            mode: crate::crd::platform::PspMode::External,
            webhook_secrets_ref: Some(crate::crd::SecretKeyRef {
                name: "psp".into(),
                key: "webhook".into(),
            }),
        });
        p
    }
}
