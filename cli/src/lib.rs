//! The library face of the `payplane` CLI: the commands tests drive in-process (the import).

pub mod import;
