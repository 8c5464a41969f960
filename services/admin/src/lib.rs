//! The payplane admin service (being built).
