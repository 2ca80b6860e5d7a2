//! End-to-end VRRP suite: VRRP version 3 peers in network namespaces. See
//! `e2e::keepalived`.
//!
//! ```text
//!   vrrp1 10.53.0.90  keepalived, vrid 51, priority 150  ┐ 10.53.0.250/24
//!   vrrp2 10.53.0.91  keepalived, vrid 51, priority 100  ┘ (the master's)
//! ```
//!
//! `keepalived_lab` checks the lab without routerd: two keepalived elect
//! a master, fail over on a crash, preempt back and hand over on a clean
//! stop; `nopreempt` over unicast; an IPv6 instance; and the advert on
//! the wire against `e2e::keepalived::GOLDEN_ADVERT_V4`. So the harness
//! can be trusted as routerd's peer.
//!
//! `pair` runs two routerd nodes sharing a floating DNS address, with a
//! client querying it 200 times a second through a SIGKILL, a resolver
//! failure, a link going down and a split.
//!
//! `sync` has the standby follow the primary's configuration over the
//! pair listener: a change appears, a broken one does not.
//!
//! Needs root and keepalived (the golden advert also tcpdump); skipped
//! otherwise unless REQUIRE_E2E=1.

// Test harness: a failed unwrap is a failed test, with the message we want.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "vrrp/interop.rs"]
mod interop;
#[path = "vrrp/keepalived_lab.rs"]
mod keepalived_lab;
#[path = "vrrp/pair.rs"]
mod pair;
#[path = "vrrp/sync.rs"]
mod sync;
