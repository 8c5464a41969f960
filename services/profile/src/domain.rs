//! The profile's rules as pure functions (api.md §7): the effective preferences and their
//! key-by-key merge, and the validation of profile edits. No I/O.

pub mod edit;
pub mod preferences;
