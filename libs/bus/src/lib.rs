//! payplane's event backbone (events.md): the transactional outbox writer used inside service
//! transactions, the relay that publishes it, topology declaration, the consumer runtime with
//! retries and dead-lettering, DLQ operations and the throughput bench.

#[cfg(feature = "bench")]
pub mod bench;
pub mod conn;
pub mod consumer;
pub mod dlq;
pub mod handler;
pub mod message;
pub mod metrics;
pub mod outbox;
pub mod relay;
#[cfg(feature = "sandbox")]
pub mod sandbox;
pub mod tasks;
pub mod topology;
