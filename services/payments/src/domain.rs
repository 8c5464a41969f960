//! Payment domain types that validate when constructed. Pure, no I/O.

pub mod money;
pub mod status;
