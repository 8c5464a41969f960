//! Status conditions: building them from what a reconcile found, keeping
//! `lastTransitionTime` when a condition does not change, and reading readiness of
//! dependencies. Pure, no I/O.

use kube::Resource;
use kube::api::DynamicObject;
use serde_json::Value;

use crate::crd::{Condition, HasConditions};

/// A desired condition before timestamps and generations are filled in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cond {
    /// `Ready`, `Progressing` or `Degraded`.
    pub type_: &'static str,
    /// The condition holds.
    pub status: bool,
    /// CamelCase reason.
    pub reason: String,
    /// Human-readable message.
    pub message: String,
}

impl Cond {
    /// `type_=True`.
    pub fn yes(type_: &'static str, reason: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            type_,
            status: true,
            reason: reason.into(),
            message: message.into(),
        }
    }

    /// `type_=False`.
    pub fn no(type_: &'static str, reason: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            type_,
            status: false,
            reason: reason.into(),
            message: message.into(),
        }
    }
}

/// The current time as RFC 3339, second precision.
pub fn now_rfc3339() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// Conditions for `generation`: a condition whose status did not change keeps its
/// `lastTransitionTime`, so writing the same status twice is a no-op.
pub fn merge(
    previous: &[Condition],
    desired: &[Cond],
    generation: i64,
    now: &str,
) -> Vec<Condition> {
    desired
        .iter()
        .map(|d| {
            let status = if d.status { "True" } else { "False" };
            let last = previous
                .iter()
                .find(|p| p.type_ == d.type_ && p.status == status)
                .map_or_else(|| now.to_owned(), |p| p.last_transition_time.clone());
            Condition {
                type_: d.type_.to_owned(),
                status: status.to_owned(),
                reason: d.reason.clone(),
                message: d.message.clone(),
                last_transition_time: last,
                observed_generation: generation,
            }
        })
        .collect()
}

/// `Ready=True` for the object's current generation.
pub fn is_ready<K: HasConditions + Resource>(obj: &K) -> bool {
    let generation = obj.meta().generation.unwrap_or(0);
    obj.observed_generation() == Some(generation)
        && obj.conditions().iter().any(|c| {
            c.type_ == "Ready" && c.status == "True" && c.observed_generation == generation
        })
}

/// The first object of `kind` among the applied ones.
pub fn of_kind<'a>(applied: &'a [DynamicObject], kind: &str) -> Option<&'a DynamicObject> {
    applied
        .iter()
        .find(|o| o.types.as_ref().is_some_and(|t| t.kind == kind))
}

/// The `status` of an object as returned by apply, when it describes the current generation.
pub fn current_status(obj: &DynamicObject) -> Option<&Value> {
    let status = obj.data.get("status")?;
    let observed = status.get("observedGeneration").and_then(Value::as_i64);
    (observed == Some(obj.metadata.generation.unwrap_or(0))).then_some(status)
}

/// Whether a StatefulSet (as returned by apply) has all replicas of its generation ready.
pub fn statefulset_ready(obj: &DynamicObject) -> bool {
    let want = obj.data.pointer("/spec/replicas").and_then(Value::as_i64);
    current_status(obj).is_some_and(|s| {
        s.get("readyReplicas").and_then(Value::as_i64).unwrap_or(0) >= want.unwrap_or(1)
    })
}

/// The reason of the `Ready` condition, if any.
pub fn ready_reason<K: HasConditions>(obj: &K) -> Option<String> {
    obj.conditions()
        .iter()
        .find(|c| c.type_ == "Ready")
        .map(|c| c.reason.clone())
}

/// What a reconcile of a `Database` or `Queue` found on its server, once its cluster or
/// broker is reachable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Observed {
    /// Everything is declared; `rotating` says what a credential rotation still waits for.
    Ready {
        /// What is ready.
        message: String,
        /// A rotation in progress: the AppServices that have not rolled yet.
        rotating: Option<String>,
    },
    /// The role, user or database is another resource's (or nobody's and not adoptable).
    Conflict(String),
    /// The server failed: unreachable, or it refused a statement or request.
    Unavailable {
        /// `PostgresUnavailable` or `BrokerUnavailable`.
        reason: &'static str,
        /// The error.
        message: String,
    },
    /// Existing queues have other arguments than the spec asks for.
    ArgumentsChanged(String),
}

/// The conditions of a `Database` or `Queue` for what its reconcile found (pure):
/// `Ready=False` with reason `Conflict` never degrades anything (nothing was touched);
/// server errors and changed queue arguments set `Degraded=True`.
pub fn external_conditions(observed: &Observed) -> Vec<Cond> {
    match observed {
        Observed::Ready { message, rotating } => vec![
            Cond::yes("Ready", "Ready", message.clone()),
            match rotating {
                Some(waiting) => Cond::yes("Progressing", "RotatingCredentials", waiting.clone()),
                None => Cond::no("Progressing", "Ready", message.clone()),
            },
            Cond::no("Degraded", "AsExpected", ""),
        ],
        Observed::Conflict(message) => vec![
            Cond::no("Ready", "Conflict", message.clone()),
            Cond::no("Progressing", "Conflict", message.clone()),
            Cond::no("Degraded", "AsExpected", ""),
        ],
        Observed::Unavailable { reason, message } => vec![
            Cond::no("Ready", *reason, message.clone()),
            Cond::no("Progressing", *reason, message.clone()),
            Cond::yes("Degraded", *reason, message.clone()),
        ],
        Observed::ArgumentsChanged(message) => vec![
            Cond::no("Ready", "QueueArgumentsChanged", message.clone()),
            Cond::no("Progressing", "QueueArgumentsChanged", message.clone()),
            Cond::yes("Degraded", "QueueArgumentsChanged", message.clone()),
        ],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get<'a>(conds: &'a [Cond], t: &str) -> &'a Cond {
        conds
            .iter()
            .find(|c| c.type_ == t)
            .unwrap_or_else(|| panic!("no {t}"))
    }

    #[test]
    fn a_server_error_is_degraded_and_not_ready() {
        let c = external_conditions(&Observed::Unavailable {
            reason: "PostgresUnavailable",
            message: "connection refused".into(),
        });
        assert!(!get(&c, "Ready").status);
        assert_eq!(get(&c, "Ready").reason, "PostgresUnavailable");
        assert!(get(&c, "Degraded").status);
        assert_eq!(get(&c, "Degraded").message, "connection refused");
    }

    #[test]
    fn a_conflict_is_not_ready_but_not_degraded() {
        let c = external_conditions(&Observed::Conflict("role x is owned by another".into()));
        assert_eq!(get(&c, "Ready").reason, "Conflict");
        assert!(!get(&c, "Ready").status);
        assert!(!get(&c, "Degraded").status);
    }

    #[test]
    fn ready_clears_degraded_and_shows_a_rotation_as_progress() {
        let c = external_conditions(&Observed::Ready {
            message: "ok".into(),
            rotating: None,
        });
        assert!(get(&c, "Ready").status && !get(&c, "Degraded").status);
        assert!(!get(&c, "Progressing").status);
        let c = external_conditions(&Observed::Ready {
            message: "ok".into(),
            rotating: Some("waiting for payments".into()),
        });
        assert!(get(&c, "Ready").status);
        assert_eq!(get(&c, "Progressing").reason, "RotatingCredentials");
        assert!(get(&c, "Progressing").status);
    }

    #[test]
    fn changed_queue_arguments_name_their_reason() {
        let c = external_conditions(&Observed::ArgumentsChanged("queue q.retry.1".into()));
        assert_eq!(get(&c, "Ready").reason, "QueueArgumentsChanged");
        assert!(get(&c, "Degraded").status);
    }

    #[test]
    fn unchanged_status_keeps_transition_time() {
        let first = merge(
            &[],
            &[Cond::no("Ready", "WaitingForDatabase", "db")],
            1,
            "t1",
        );
        let again = merge(
            &first,
            &[Cond::no("Ready", "WaitingForQueue", "q")],
            2,
            "t2",
        );
        assert_eq!(again[0].last_transition_time, "t1");
        assert_eq!(again[0].observed_generation, 2);
        let flipped = merge(&again, &[Cond::yes("Ready", "Ready", "")], 2, "t3");
        assert_eq!(flipped[0].last_transition_time, "t3");
        assert_eq!(flipped[0].status, "True");
    }
}
