//! End-to-end firewall suite: the zones of policies/examples/homelab.toml
//! in network namespaces (needs root, `ping` and `sysctl`; skipped
//! otherwise unless REQUIRE_E2E=1).
//!
//! `lab` checks the lab itself with no firewall at all: every zone reaches
//! every other through the router, and the wan host reaches none of them,
//! so a verdict in the later tests is the firewall's doing. `policy`
//! (firewall/homelab.rs) runs routerd with homelab.toml and checks every
//! rule of it from the hosts' side (needs routerd's policy engine, and
//! `nft`, `dig` and routerctl).
//!
//! routerd and routerctl are not built by `cargo test -p e2e`: run
//! `cargo build -p router` first (or set ROUTERD_BIN and ROUTERCTL_BIN).

// Test harness: a failed unwrap is a failed test, with the message we want.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "firewall/lab.rs"]
mod lab;
// Not `mod homelab`: test names would then contain "lab", and
// `cargo test --test firewall lab` (the lab's own checks, which pass
// without the policy engine) would run these too.
#[path = "firewall/operate.rs"]
mod operate;
#[path = "firewall/homelab.rs"]
mod policy;
