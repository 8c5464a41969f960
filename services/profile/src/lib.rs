//! The payplane profile service (being built).
