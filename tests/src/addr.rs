//! The lab's fixed address plan. Every lab has its own switch, so two labs
//! running at once reuse the same addresses without seeing each other.
//!
//! Everything is in 10.53.0.0/16 (and fd53::/64 for IPv6, derived from the
//! IPv4 address by [`v6_of`]).

use std::net::{Ipv4Addr, Ipv6Addr};

/// The root server, `a.root.lab.`
pub const ROOT: Ipv4Addr = Ipv4Addr::new(10, 53, 0, 1);
/// The `lab.` TLD server, `ns.lab.`
pub const TLD: Ipv4Addr = Ipv4Addr::new(10, 53, 0, 2);
/// The leaf server `ns.leaf.lab.`: plain, secure, bogus and stale `.lab`.
pub const LEAF: Ipv4Addr = Ipv4Addr::new(10, 53, 0, 3);
/// First forwarding upstream, serving `fwd.lab.` (`who.fwd.lab` TXT "fwd1").
pub const FWD1: Ipv4Addr = Ipv4Addr::new(10, 53, 0, 11);
/// Second forwarding upstream, serving `fwd.lab.` (`who.fwd.lab` TXT "fwd2").
pub const FWD2: Ipv4Addr = Ipv4Addr::new(10, 53, 0, 12);
/// The server of `site2.internal.`, reachable only by conditional forwarding.
pub const SITE2: Ipv4Addr = Ipv4Addr::new(10, 53, 0, 21);
/// Where tests run routerd.
pub const ROUTER: Ipv4Addr = Ipv4Addr::new(10, 53, 0, 53);
/// Where the reference resolver (unbound) runs.
pub const REFERENCE: Ipv4Addr = Ipv4Addr::new(10, 53, 0, 54);
/// Where a second reference (dnsmasq, forwarding to unbound) runs.
pub const REFERENCE2: Ipv4Addr = Ipv4Addr::new(10, 53, 0, 55);
/// Where a third reference (NSD, answering authoritatively) runs.
pub const REFERENCE3: Ipv4Addr = Ipv4Addr::new(10, 53, 0, 56);
/// Where a second routerd runs (the load benchmark's, with a setting
/// changed).
pub const ROUTER2: Ipv4Addr = Ipv4Addr::new(10, 53, 0, 58);
/// The first VRRP node of the keepalived lab ([`crate::keepalived`]).
pub const VRRP1: Ipv4Addr = Ipv4Addr::new(10, 53, 0, 90);
/// The second VRRP node of the keepalived lab.
pub const VRRP2: Ipv4Addr = Ipv4Addr::new(10, 53, 0, 91);
/// The virtual address the VRRP nodes share (configured as a /24, see
/// [`VRRP_VIP_PREFIX_LEN`]); no host has it as its own address.
pub const VRRP_VIP: Ipv4Addr = Ipv4Addr::new(10, 53, 0, 250);
/// The prefix length [`VRRP_VIP`] is configured with.
pub const VRRP_VIP_PREFIX_LEN: u8 = 24;
/// The ordinary client.
pub const CLIENT: Ipv4Addr = Ipv4Addr::new(10, 53, 0, 100);
/// A second allowed client (the flood source, so the first one's rate
/// limit is untouched).
pub const CLIENT2: Ipv4Addr = Ipv4Addr::new(10, 53, 0, 101);
/// A client on the lab segment but outside [`ALLOWED_CLIENTS`].
pub const OUTSIDER: Ipv4Addr = Ipv4Addr::new(10, 53, 99, 1);
/// The client networks tests put in routerd's `allow` list: 10.53.0.0/24
/// and its IPv6 twin fd53::0:0/112; excludes [`OUTSIDER`].
pub const ALLOWED_CLIENTS: [&str; 2] = ["10.53.0.0/24", "fd53::/112"];
/// The whole lab, for routerd's `recursion.allow_servers`.
pub const LAB_NET: &str = "10.53.0.0/16";

/// The IPv6 address of a lab host: fd53::X:Y for 10.53.X.Y.
pub fn v6_of(v4: Ipv4Addr) -> Ipv6Addr {
    let [_, _, x, y] = v4.octets();
    Ipv6Addr::new(0xfd53, 0, 0, 0, 0, 0, u16::from(x), u16::from(y))
}
