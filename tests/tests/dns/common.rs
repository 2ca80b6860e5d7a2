//! Shared setup for the DNS tests.

use e2e::dns_hierarchy::HIERARCHY_TOOLS;
use e2e::{DnsHierarchy, Host, Lab, addr};

/// Tools every DNS test needs.
pub const LAB_TOOLS: &[&str] = HIERARCHY_TOOLS;

/// Tools for tests that run routerd (the lab's, plus the daemon).
pub const ROUTERD_TOOLS: &[&str] = &[
    "nsd",
    "dig",
    "ldns-keygen",
    "ldns-signzone",
    "ldns-key2ds",
    "routerd",
];

/// Tools for tests that also drive `routerctl`: as `ROUTERD_TOOLS` plus
/// `routerctl` and `timeout` (kept as one literal list: consts cannot be
/// concatenated).
pub const CTL_TOOLS: &[&str] = &[
    "nsd",
    "dig",
    "ldns-keygen",
    "ldns-signzone",
    "ldns-key2ds",
    "routerd",
    "routerctl",
    "timeout",
];

/// A lab with the hierarchy, a router host and a client host. Field order
/// is drop order: daemons first, namespaces last.
pub struct Setup {
    pub dns: DnsHierarchy,
    pub router: Host,
    pub client: Host,
    pub lab: Lab,
}

/// Builds the standard lab (the caller checked `e2e::require`).
pub fn setup() -> Setup {
    let lab = Lab::new().unwrap();
    let dns = DnsHierarchy::start(&lab).unwrap();
    let router = lab.add_host("router", addr::ROUTER).unwrap();
    let client = lab.add_host("client", addr::CLIENT).unwrap();
    Setup {
        dns,
        router,
        client,
        lab,
    }
}
