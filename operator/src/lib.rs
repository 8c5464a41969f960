//! The payplane Kubernetes operator (placeholder until the operator work lands).
