//! End-to-end DNS suite, run in network namespaces (needs root, NSD, dig
//! and ldns; skipped otherwise unless REQUIRE_E2E=1).
//!
//! `lab` checks the lab itself against NSD (and unbound as a reference
//! resolver), so it can be trusted before routerd works; `resolver` runs
//! routerd over it; `protocol` checks wire-level behaviour (ANY, EDNS,
//! sizes, case, rate limits); `control` and `reload` drive routerctl, the
//! control socket, SIGHUP and the metrics endpoint; `encrypted` forwards
//! over DoT and DoH to an Unbound with a CA made at test time (needs
//! openssl and kdig); `demo` runs `routerd demo` in a namespace.
//!
//! routerd and routerctl are not built by `cargo test -p e2e`: run
//! `cargo build -p router` first (or set ROUTERD_BIN and ROUTERCTL_BIN).

// Test harness: a failed unwrap is a failed test, with the message we want.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "dns/common.rs"]
mod common;
#[path = "dns/control.rs"]
mod control;
#[path = "dns/demo.rs"]
mod demo;
#[path = "dns/encrypted.rs"]
mod encrypted;
#[path = "dns/handover.rs"]
mod handover;
#[path = "dns/lab.rs"]
mod lab;
#[path = "dns/onthewire.rs"]
mod onthewire;
#[path = "dns/protocol.rs"]
mod protocol;
#[path = "dns/reload.rs"]
mod reload;
#[path = "dns/resolver.rs"]
mod resolver;
#[path = "dns/slowpath.rs"]
mod slowpath;
#[path = "dns/startup.rs"]
mod startup;
