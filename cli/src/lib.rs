//! The library face of the `payplane` CLI: the commands tests drive in-process (the import and
//! `payplane plan`).

pub mod import;
pub mod plan;
