//! The payplane payments service (api.md §5). This crate currently holds the domain rules —
//! money, currencies and the status transition table — that the HTTP layer, the PSP simulator
//! and the webhook will share; the service itself lands with the payments issue.

pub mod domain;
