//! Status conditions: building them from what a reconcile found, keeping
//! `lastTransitionTime` when a condition does not change, and reading readiness of
//! dependencies. Pure, no I/O.

use kube::Resource;

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

/// The reason of the `Ready` condition, if any.
pub fn ready_reason<K: HasConditions>(obj: &K) -> Option<String> {
    obj.conditions()
        .iter()
        .find(|c| c.type_ == "Ready")
        .map(|c| c.reason.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

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
