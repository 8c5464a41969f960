//! The payplane Kubernetes operator: custom resource types, pure builders of child objects,
//! the controllers that apply them, the external systems they manage, and (feature
//! `testing`) the operator on a real control plane for tests and the bench.
//! See `README.md`.

pub mod conditions;
pub mod controller;
pub mod crd;
pub mod external;
#[cfg(test)]
mod fixtures;
pub mod meta;
pub mod metrics;
pub mod process;
#[cfg(feature = "testing")]
pub mod testing;
pub mod tls;
