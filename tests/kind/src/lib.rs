//! Opt-in end-to-end tests on a real kind cluster live in `tests/`; this crate has no library code.
