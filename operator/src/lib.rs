//! The payplane Kubernetes operator: custom resource types, pure builders of child objects,
//! the controllers that apply them, and the bench. See `README.md`.

pub mod crd;
