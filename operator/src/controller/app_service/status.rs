//! `status` of an `AppService` (pure): what blocks it, the phase of its migration Job, and
//! from the applied Deployment whether the new image is available.

use kube::ResourceExt;
use kube::api::DynamicObject;
use kube::runtime::controller::Action;
use serde_json::{Value, json};

use super::super::{RESYNC, Report, WAIT};
use crate::conditions::{Cond, of_kind};
use crate::crd::AppService;
use crate::crd::app_service::MigrationPhase;

/// Why the service cannot roll out yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blocked {
    /// The condition reason.
    pub reason: &'static str,
    /// The condition message.
    pub message: String,
    /// Whether only a spec change can unblock it.
    pub invalid: bool,
}

impl Blocked {
    /// The `kind` named `name` does not exist: only a spec change helps.
    pub fn missing(reason: &'static str, kind: &str, name: &str) -> Self {
        let message = format!("{kind} {name} not found");
        Self {
            reason,
            message,
            invalid: true,
        }
    }

    /// `name` is not ready yet.
    pub fn waiting(reason: &'static str, name: &str) -> Self {
        let message = format!("{reason} {name}");
        Self {
            reason,
            message,
            invalid: false,
        }
    }

    /// The report: invalid, or waiting.
    pub fn report(self) -> Report {
        if self.invalid {
            Report::invalid(self.reason, self.message)
        } else {
            Report::waiting(self.reason, self.message, json!({}))
        }
    }
}

/// Whether a migration runs before the Deployment rolls: there is one and the Deployment does
/// not serve `spec.image` yet.
pub fn migrates(app: &AppService, serving: Option<&str>) -> bool {
    app.spec.migration.is_some() && serving != Some(app.spec.image.as_str())
}

/// The phase of a migration Job from its stored conditions.
pub fn job_phase(job: &Value) -> MigrationPhase {
    let conds = (job.pointer("/status/conditions").and_then(Value::as_array))
        .cloned()
        .unwrap_or_default();
    let has = |t: &str| {
        conds
            .iter()
            .any(|c| c["type"] == t && c["status"] == "True")
    };
    if has("Complete") {
        MigrationPhase::Succeeded
    } else if has("Failed") {
        MigrationPhase::Failed
    } else {
        MigrationPhase::Running
    }
}

/// Whether the Deployment runs `image` with every replica of its generation available, and
/// how many replicas are ready.
fn deployment_available(d: &DynamicObject, image: &str) -> (bool, i64) {
    let status = d.data.get("status").cloned().unwrap_or(Value::Null);
    let count = |key: &str| status.get(key).and_then(Value::as_i64);
    let generation = d.metadata.generation.unwrap_or(0);
    let want = (d.data.pointer("/spec/replicas").and_then(Value::as_i64))
        .or_else(|| count("replicas"))
        .unwrap_or(1);
    let runs = (d.data.pointer("/spec/template/spec/containers/0/image")).and_then(Value::as_str)
        == Some(image);
    let available = runs
        && count("observedGeneration") == Some(generation)
        && count("availableReplicas").unwrap_or(0) >= want
        && count("updatedReplicas").unwrap_or(0) >= want;
    (available, count("readyReplicas").unwrap_or(0))
}

/// What the migration step found: the Job's phase while a new image waits for it, the image
/// served before, and the Job's name.
pub struct Migration {
    /// The Job's phase, when a migration runs.
    pub phase: Option<MigrationPhase>,
    /// The image the Deployment served before this reconcile.
    pub serving: Option<String>,
    /// The migration Job of the current spec.
    pub job: Option<String>,
}

/// The report of `app` from its applied children.
pub fn status(app: &AppService, applied: &[DynamicObject], migration: &Migration) -> Report {
    let (name, image) = (app.name_any(), &app.spec.image);
    let deployment = of_kind(applied, "Deployment");
    let (available, ready_replicas) =
        deployment.map_or((false, 0), |d| deployment_available(d, image));
    let serving_now = (deployment
        .and_then(|d| d.data.pointer("/spec/template/spec/containers/0/image")))
    .and_then(Value::as_str);
    // Once the new image serves, its migration is reported as succeeded.
    let shown = (migration.phase).or_else(|| {
        app.spec
            .migration
            .as_ref()
            .map(|_| MigrationPhase::Succeeded)
    });
    let extra = json!({
        "image": serving_now,
        "readyReplicas": ready_replicas,
        "migration": shown.map(|phase| json!({"image": image, "phase": phase})),
    });
    let job = migration.job.as_deref().unwrap_or_default();
    let (conds, requeue) = match migration.phase {
        Some(MigrationPhase::Failed) => {
            let serving = migration.serving.as_deref().unwrap_or("nothing");
            let msg = format!("migration Job {job} failed; {serving} keeps serving");
            let conds = vec![
                Cond::no("Ready", "MigrationFailed", msg.clone()),
                Cond::no("Progressing", "MigrationFailed", msg.clone()),
                Cond::yes("Degraded", "MigrationFailed", msg),
            ];
            (conds, RESYNC)
        }
        Some(MigrationPhase::Running | MigrationPhase::Pending) => {
            let msg = format!("migration Job {job} runs with {image}");
            (progressing("MigrationRunning", msg), WAIT)
        }
        _ if available => {
            let msg = format!("{ready_replicas} replicas of {image} available");
            let conds = vec![
                Cond::yes("Ready", "Available", msg),
                Cond::no("Progressing", "Available", ""),
                Cond::no("Degraded", "AsExpected", ""),
            ];
            (conds, RESYNC)
        }
        _ => {
            let msg = format!("Deployment {name} is rolling out {image}");
            (progressing("RollingOut", msg), WAIT)
        }
    };
    Report::new(conds, extra, Action::requeue(requeue))
}

/// `Ready=False` and `Progressing=True` with `reason` and `msg`, not degraded.
fn progressing(reason: &str, msg: String) -> Vec<Cond> {
    vec![
        Cond::no("Ready", reason, msg.clone()),
        Cond::yes("Progressing", reason, msg),
        Cond::no("Degraded", "AsExpected", ""),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deployment(image: &str, generation: i64, available: i64) -> DynamicObject {
        serde_json::from_value(json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "pay", "generation": generation},
            "spec": {"replicas": 2, "template": {"spec": {"containers": [{"image": image}]}}},
            "status": {"observedGeneration": 2, "readyReplicas": available,
                "availableReplicas": available, "updatedReplicas": available},
        }))
        .unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn blocked_reports_say_what_they_wait_for() {
        let r = Blocked::missing("DatabaseNotFound", "Database", "pay-db").report();
        assert_eq!(
            r.readiness(),
            (false, "DatabaseNotFound", "Database pay-db not found")
        );
        assert_eq!(r.action, Action::await_change());
        let r = Blocked::waiting("WaitingForSecret", "redis").report();
        assert_eq!(
            r.readiness(),
            (false, "WaitingForSecret", "WaitingForSecret redis")
        );
        assert_eq!(r.action, Action::requeue(WAIT));
    }

    #[test]
    fn job_phases_come_from_its_conditions() {
        let job = |t: &str| json!({"status": {"conditions": [{"type": t, "status": "True"}]}});
        assert_eq!(job_phase(&job("Complete")), MigrationPhase::Succeeded);
        assert_eq!(job_phase(&job("Failed")), MigrationPhase::Failed);
        assert_eq!(job_phase(&json!({})), MigrationPhase::Running);
    }

    #[test]
    fn the_rollout_and_the_migration_decide_readiness() {
        let app = AppService::test("pay").with_migration();
        let none = Migration {
            phase: None,
            serving: None,
            job: None,
        };
        let r = status(&app, &[deployment("pay:1", 2, 2)], &none);
        assert_eq!(
            r.readiness(),
            (true, "Available", "2 replicas of pay:1 available")
        );
        assert_eq!(
            r.extra["migration"],
            json!({"image": "pay:1", "phase": "Succeeded"})
        );
        assert_eq!(r.extra["image"], "pay:1");
        assert_eq!(r.action, Action::requeue(RESYNC));
        let table = [
            (deployment("pay:0", 2, 2), "RollingOut"),
            (deployment("pay:1", 3, 2), "RollingOut"),
            (deployment("pay:1", 2, 1), "RollingOut"),
        ];
        for (d, reason) in table {
            assert_eq!(status(&app, &[d], &none).readiness().1, reason);
        }
        let failed = Migration {
            phase: Some(MigrationPhase::Failed),
            serving: Some("pay:0".into()),
            job: Some("pay-migrate-1".into()),
        };
        let r = status(&app, &[deployment("pay:0", 2, 2)], &failed);
        assert_eq!(
            r.readiness().2,
            "migration Job pay-migrate-1 failed; pay:0 keeps serving"
        );
        assert!(r.conds.iter().any(|c| c.type_ == "Degraded" && c.status));
        let running = Migration {
            phase: Some(MigrationPhase::Running),
            ..failed
        };
        let r = status(&app, &[deployment("pay:0", 2, 2)], &running);
        assert_eq!(r.readiness().1, "MigrationRunning");
        assert_eq!(r.action, Action::requeue(WAIT));
        assert!(migrates(&app, Some("pay:0")) && !migrates(&app, Some("pay:1")));
    }
}
