//! Payment domain types that validate when constructed. Pure, no I/O.

pub mod money;
pub mod status;

/// The payment types (api.md §5.2).
pub const TYPES: [&str; 3] = ["instant", "scheduled", "recurring"];
/// The payment statuses in their API spelling.
pub const STATUSES: [&str; 5] = ["pending", "processing", "completed", "failed", "cancelled"];
