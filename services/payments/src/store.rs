//! The SQL of the payments database, one module per aggregate. Every function runs on the
//! connection it is given, so callers compose them inside one transaction.

pub mod idempotency;
pub mod payments;
pub mod users;
pub mod webhook_events;

/// The payments database, as its store errors name it.
pub enum PaymentsDb {}

impl payplane_kit::store::Store for PaymentsDb {
    const NAME: &'static str = "payments";
}

/// A failed statement, named by what it was doing.
pub type StoreError = payplane_kit::store::StoreError<PaymentsDb>;
pub(crate) use payplane_kit::store::Ctx;
