//! payplane's event backbone (events.md): the transactional outbox writer used inside service
//! transactions; the relay, topology and consumer runtime live beside it.

pub mod outbox;
