//! The shared service kit every payplane service is built from: typed config, the response
//! envelope and error type, request ids, strict JSON input and validation, Prometheus metrics,
//! health endpoints, the HTTP middleware stack and graceful serving (api.md §1, §3.9, §8.3).

#[cfg(feature = "bench")]
pub mod bench;
pub mod client_ip;
pub mod config;
pub mod context;
pub mod digest;
pub mod duration;
pub mod error;
pub mod health;
pub mod http;
pub mod json;
pub mod metrics;
pub mod openapi;
pub mod otel;
pub mod password;
pub mod query;
pub mod request_id;
pub mod server;
pub mod service;
pub mod shell;
pub mod signup;
pub mod storable;
pub mod store;
pub mod telemetry;
pub mod validate;

pub use error::{ApiError, Created, Data};
