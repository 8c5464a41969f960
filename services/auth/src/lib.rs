//! The payplane auth service.
