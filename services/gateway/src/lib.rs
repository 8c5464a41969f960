//! The payplane gateway service (being built).
