//! The end-to-end lab: network namespaces on a private bridge, a fake DNS
//! hierarchy served by NSD, and helpers to run `routerd` and `dig` inside it.
//!
//! Nothing in the lab touches the host's root namespace: every daemon and
//! every client runs in a namespace whose only link is a veth to the lab's
//! own "switch" namespace, so no packet can leave the machine.
//!
//! A test typically reads:
//!
//! ```no_run
//! # fn main() -> anyhow::Result<()> {
//! if !e2e::require(&["nsd", "dig", "ldns-signzone", "routerd"]) {
//!     return Ok(());
//! }
//! let lab = e2e::Lab::new()?;
//! let dns = e2e::DnsHierarchy::start(&lab)?;
//! let client = lab.add_host("client", e2e::addr::CLIENT)?;
//! let router = lab.add_host("router", e2e::addr::ROUTER)?;
//! let routerd = e2e::RouterdConfig::recursive(&dns).start(&router)?;
//! let answer = client.dig(routerd.addr(), &e2e::Query::new("www.plain.lab", "A"))?;
//! assert_eq!(answer.status, "NOERROR");
//! # Ok(()) }
//! ```

pub mod addr;
pub mod bird;
pub mod dig;
pub mod dns_hierarchy;
pub mod dnsperf;
pub mod json;
pub mod keepalived;
pub mod malformed;
pub mod netns;
pub mod probe;
pub mod process;
pub mod require;
pub mod routerd;
pub mod tls;
pub mod traffic;
pub mod unbound;
pub mod vrrp_node;
pub mod wg_lab;
pub mod zones_lab;

pub use dig::{DigResult, Query, Rr};
pub use dns_hierarchy::{DnsHierarchy, Server};
pub use netns::{Host, Lab};
pub use process::{Daemon, wait_until};
pub use require::{e2e_enabled, require};
pub use routerd::{Routerd, RouterdConfig};
