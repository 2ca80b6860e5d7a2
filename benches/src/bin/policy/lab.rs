//! The measured path in namespaces: a sender host, the router, a receiver
//! host, each pair joined by a veth.
//!
//! ```text
//!  sender eth0 10.F.0.2 ── zF 10.F.0.1  router  10.T.0.1 zT ── eth0 10.T.0.2 receiver
//! ```
//!
//! F and T are the measured path's zones, and the router's interfaces are
//! named like the zones' (`zF`, `zT`), so the policy's rules for that pair
//! apply as they would on the appliance. The router forwards IPv4; its
//! nftables table is whatever the benchmark loads. Every namespace comes
//! from [`Lab::add_host`] (its switch link removed at once), so the lab's
//! teardown removes them all, with every process in them; no namespace has
//! a link to the root namespace, so no packet leaves the machine.

use std::net::{IpAddr, Ipv4Addr};

use anyhow::{Context, Result};
use e2e::netns::ip;
use e2e::{Host, Lab};

/// The zone host's address in zone `n`: 10.n.0.2 (the router is .1).
pub fn host_v4(n: u16) -> Ipv4Addr {
    Ipv4Addr::new(10, n.to_be_bytes()[1], 0, 2)
}

fn router_v4(n: u16) -> Ipv4Addr {
    Ipv4Addr::new(10, n.to_be_bytes()[1], 0, 1)
}

#[derive(Debug)]
pub struct PathLab {
    pub router: Host,
    pub sender: Host,
    pub receiver: Host,
    /// The router's interface towards the receiver.
    pub out_interface: String,
    /// Last, so the namespaces go after everything else.
    lab: Lab,
}

impl PathLab {
    /// Builds the three namespaces for the path from zone `from` to zone
    /// `to` (numbers, 1..=254).
    pub fn new(from: u16, to: u16) -> Result<PathLab> {
        let lab = Lab::new()?;
        let router = bare_namespace(&lab, "router")?;
        router.run(
            "sysctl",
            &[
                "-q",
                "-w",
                "net.ipv4.ip_forward=1",
                "net.ipv6.conf.all.forwarding=1",
            ],
        )?;
        let sender = zone_host(&lab, &router, "sender", from, to)?;
        let receiver = zone_host(&lab, &router, "receiver", to, from)?;
        Ok(PathLab {
            router,
            sender,
            receiver,
            out_interface: format!("z{to}"),
            lab,
        })
    }

    /// Packets the router has sent towards the receiver.
    pub fn forwarded(&self) -> Result<u64> {
        let out = self.router.run(
            "ip",
            &["-j", "-s", "link", "show", "dev", &self.out_interface],
        )?;
        let json: serde_json::Value =
            serde_json::from_str(&out).context("reading `ip -j -s link`")?;
        json.get(0)
            .and_then(|link| link.pointer("/stats64/tx/packets"))
            .and_then(serde_json::Value::as_u64)
            .with_context(|| format!("no tx packet count for {}", self.out_interface))
    }

    pub fn dir(&self) -> &std::path::Path {
        self.lab.dir()
    }
}

/// A namespace from [`Lab::add_host`] (so the lab tears it down) with its
/// switch link removed: loopback only.
fn bare_namespace(lab: &Lab, name: &str) -> Result<Host> {
    // The link is deleted at once, so every namespace may use the same
    // placeholder address for that moment.
    let host = lab.add_host(name, Ipv4Addr::new(10, 53, 200, 1))?;
    ip(&["-n", &host.ns, "link", "del", "eth0"])?;
    Ok(host)
}

/// The host of zone `zone`, linked to the router's `z<zone>`, with a
/// route to zone `other` through the router.
fn zone_host(lab: &Lab, router: &Host, name: &str, zone: u16, other: u16) -> Result<Host> {
    let mut host = bare_namespace(lab, name)?;
    let dev = format!("z{zone}");
    ip(&[
        "-n", &router.ns, "link", "add", &dev, "type", "veth", "peer", "name", "eth0", "netns",
        &host.ns,
    ])?;
    ip(&[
        "-n",
        &router.ns,
        "addr",
        "add",
        &format!("{}/24", router_v4(zone)),
        "dev",
        &dev,
    ])?;
    ip(&["-n", &router.ns, "link", "set", &dev, "up"])?;
    ip(&["-n", &host.ns, "link", "set", "eth0", "up"])?;
    host.v4 = host_v4(zone);
    host.add_addr(IpAddr::V4(host.v4), 24)?;
    host.add_route(
        &format!("10.{}.0.0/24", other.to_be_bytes()[1]),
        IpAddr::V4(router_v4(zone)),
    )?;
    Ok(host)
}
