//! End-to-end DNS suite, run in network namespaces (needs root, NSD, dig
//! and ldns; skipped otherwise unless REQUIRE_E2E=1).
//!
//! `lab` checks the lab itself against NSD (and unbound as a reference
//! resolver), so it can be trusted before routerd works; `resolver` runs
//! routerd over it. routerd is not built by `cargo test -p e2e`: run
//! `cargo build -p router` first (or set ROUTERD_BIN).

// Test harness: a failed unwrap is a failed test, with the message we want.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "dns/common.rs"]
mod common;
#[path = "dns/lab.rs"]
mod lab;
#[path = "dns/resolver.rs"]
mod resolver;
