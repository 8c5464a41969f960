//! The payplane API gateway (api.md §3, websocket.md): the one door clients use. A streaming
//! reverse proxy to auth, payments, admin and profile; the edge rules (CORS, rate limits,
//! security headers, body limits, compression, TLS with hot reload, HTTP/2); the WebSocket hub
//! fed by this replica's broker queue; GraphQL over the services' REST endpoints (api.md §9);
//! and the merged API documentation.

pub mod api_first;
pub mod app;
pub mod breaker;
pub mod config;
pub mod docs;
pub mod edge;
pub mod graphql;
pub mod proxy;
pub mod ratelimit;
pub mod span;
#[cfg(feature = "testing")]
pub mod testing;
pub mod tls;
pub mod ws;

pub use app::{AppState, Application, StartError, router};
pub use config::Config;
pub use tls::generate_self_signed;
