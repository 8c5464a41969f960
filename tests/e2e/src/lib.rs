//! End-to-end harness: the whole platform as child processes on loopback ports, and a small
//! HTTP + WebSocket client that talks to it only through the gateway, as a web client would.

pub mod client;
pub mod otlp;
pub mod platform;
pub mod servers;
pub mod stream;
pub mod ws;

pub use client::{Api, Reply, Session};
pub use platform::{Platform, PlatformOptions};
pub use ws::Socket;

/// The password every journey user gets (satisfies the api.md §4.4 rule).
pub const PASSWORD: &str = "Journey-Passw0rd!";
