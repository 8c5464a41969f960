//! The SQL of the admin database, one module per table. Every function runs on the connection
//! it is given, so callers compose them inside one transaction.

pub mod audit;
pub mod config;
pub mod users;

/// The admin database, as its store errors name it.
pub enum AdminDb {}

impl payplane_kit::store::Store for AdminDb {
    const NAME: &'static str = "admin";
}

/// A failed statement, named by what it was doing.
pub type StoreError = payplane_kit::store::StoreError<AdminDb>;
pub(crate) use payplane_kit::store::Ctx;
