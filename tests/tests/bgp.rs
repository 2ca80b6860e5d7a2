//! End-to-end BGP suite (issue 6): routerd's BGP speaker against BIRD 2
//! (Debian `bird2`) in network namespaces, and against a raw peer that
//! sends malformed UPDATEs (`bgp_raw_peer`, RFC 7606). See `e2e::bird`.
//!
//! ```text
//!   router 10.53.0.53 / fd53::35  routerd, AS 65001, networks 10.61.x, fd61:x
//!   bird   10.53.0.60 / fd53::3c  BIRD (or bgp_raw_peer), AS 65002, 10.70.x, fd70:x
//!   client 10.53.0.100            dig; plus the lab DNS hierarchy (NSD)
//! ```
//!
//! One session over IPv4 carries IPv4 and IPv6 (MP-BGP). routerd installs
//! best routes in its namespace's main table with protocol 186 (`proto
//! bgp`); BIRD keeps what it learns in its own tables (`birdc show route`).
//!
//! `lab` checks the lab without routerd (two BIRDs peer, MD5 and IPv6
//! included), so it can be trusted before routerd's speaker works;
//! `session` (active and passive, MD5), `policy` (import/export filters,
//! max-prefix), `withdraw` (withdrawals, hold timer, a stopped peer) and
//! `malformed` (RFC 7606 with the raw peer, DNS still served) run routerd.
//!
//! Needs root, bird/birdc, the lab DNS tools, routerd and routerctl;
//! skipped otherwise unless REQUIRE_E2E=1. routerd and routerctl are not
//! built by `cargo test -p e2e`: run `cargo build -p router` first (or set
//! ROUTERD_BIN and ROUTERCTL_BIN).

// Test harness: a failed unwrap is a failed test, with the message we want.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "bgp/common.rs"]
mod common;
#[path = "bgp/lab.rs"]
mod lab;
#[path = "bgp/malformed.rs"]
mod malformed;
#[path = "bgp/policy.rs"]
mod policy;
#[path = "bgp/session.rs"]
mod session;
#[path = "bgp/withdraw.rs"]
mod withdraw;
