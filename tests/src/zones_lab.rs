//! The network of `policies/examples/homelab.toml`, in namespaces: a
//! router and one host per zone, for firewall tests.
//!
//! ```text
//!              admin    trusted   guests     iot      servers       wan
//!  host eth0   .10.10   .20.10    .30.10    .40.10    .50.10     100.64.0.2
//!                                           .40.20     (nas)    (no route back)
//!                |        |         |      (camera)     |            |
//!  router     eth0.10  eth0.20   eth0.30   eth0.40   eth0.50       eth1
//!  (routerd)  .10.1    .20.1     .30.1     .40.1     .50.1       100.64.0.1
//! ```
//!
//! Zone hosts have 192.168.N0.10/24 and fd00:N0::10/64 (N = 1..5) with
//! default routes via the router's .1 / ::1. The router-side addresses of
//! the five VLAN zones are *not* configured by the lab: routerd adds them
//! from the policy file, as it would on the appliance (the smoke test adds
//! them by hand with [`ZonesLab::add_router_addresses_for_smoke_test`]).
//!
//! - The VLAN zones' interfaces are veths named like the VLAN interfaces
//!   routerd would create (`eth0.10`...), since the lab kernel has no 8021q
//!   module; routerd finds them existing. routerd still checks that their
//!   trunk `eth0` exists (and brings it up), so the router has a stand-in:
//!   a veth `eth0` whose peer `trunk` stays in the router namespace,
//!   carrying nothing (the kernel has no dummy module either).
//! - The iot host also holds [`CAMERA`] (192.168.40.20, in the policy's
//!   `@cameras` set) as a second address: one namespace is enough, since
//!   the policy never matches on the source address of a camera, and
//!   traffic from the iot host leaves from 192.168.40.10, which is not a
//!   camera. The servers host is the NAS ([`NAS_V4`], [`NAS_V6`], the
//!   `@nas` set).
//! - The policy gives wan no address (the ISP's DHCP would), so the lab
//!   puts 100.64.0.1/24 on the router's `eth1` itself. The wan host has
//!   100.64.0.2/24 and no other route, and no IPv6 beyond link-local: zones
//!   reach it only through masquerade, and it reaches the zones only
//!   through port forwards.
//! - The router forwards IPv4 and IPv6; every namespace has IPv6 DAD off
//!   (so addresses routerd adds are usable at once) and the router has no
//!   ICMP rate limit (so back-to-back rejects in a test are all answered).
//!
//! Every namespace is made by [`Lab::add_host`], so [`Lab`]'s teardown
//! removes them (and every process in them) also when a test fails; the
//! lab's switch link is then replaced by the zone's veth. All addresses are
//! private (RFC 1918, ULA, CGNAT) and no namespace has a link to the root
//! namespace, so no packet leaves the machine.

use std::net::SocketAddr;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::netns::ip;
use crate::routerd::Upstream;
use crate::{Host, Lab, RouterdConfig};

/// routerd's config for the zones lab: DNS on every address of the router
/// (whatever routerd adds), clients of every zone allowed, forwarding to a
/// closed port (callers that need an upstream replace it), and
/// `policies_dir` as the policy directory.
pub fn routerd_config(policies_dir: PathBuf) -> RouterdConfig {
    RouterdConfig {
        // IPv4 first: the readiness probe asks the first address.
        listen: vec![
            SocketAddr::from(([0, 0, 0, 0], 53)),
            SocketAddr::from(([0u16; 8], 53)),
        ],
        allow: [
            "127.0.0.0/8",
            "::1/128",
            "192.168.0.0/16",
            "fd00::/8",
            "100.64.0.0/10",
        ]
        .map(String::from)
        .to_vec(),
        mode: "forward".to_string(),
        workers: 1,
        max_udp_payload: 1232,
        udp_segmentation: true,
        rate_limit_qps: 0,
        rate_limit_burst: 0,
        cache_max_entries: 1000,
        cache_min_ttl: 0,
        cache_max_ttl: 86400,
        prefetch: false,
        serve_stale: false,
        max_stale: 0,
        root_hints: None,
        dnssec: false,
        trust_anchor: None,
        qname_minimisation: true,
        case_randomisation: true,
        allow_servers: Vec::new(),
        upstreams: vec![Upstream {
            address: SocketAddr::from(([127, 0, 0, 1], 5)),
            protocol: "udp".to_string(),
            tls_name: None,
            ca_file: None,
        }],
        forward_zones: Vec::new(),
        local_records: Vec::new(),
        control_socket: None,
        metrics_listen: None,
        policies_dir: Some(policies_dir),
        rust_log: std::env::var("E2E_RUST_LOG").unwrap_or_else(|_| {
            "info,dns=debug,router=debug,routerd=debug,policies=debug".to_string()
        }),
        extra_toml: String::new(),
    }
}

/// A zone of homelab.toml.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Zone {
    /// VLAN 10: the operator's laptops; accepts everything.
    Admin,
    /// VLAN 20: the household's devices.
    Trusted,
    /// VLAN 30: visitors.
    Guests,
    /// VLAN 40: cameras and plugs; everything dropped.
    Iot,
    /// VLAN 50: the NAS.
    Servers,
    /// The uplink, `eth1`, masqueraded.
    Wan,
}

impl Zone {
    /// Every zone, VLAN zones first.
    pub const ALL: [Zone; 6] = [
        Zone::Admin,
        Zone::Trusted,
        Zone::Guests,
        Zone::Iot,
        Zone::Servers,
        Zone::Wan,
    ];

    /// The five VLAN zones (all but wan).
    pub const LAN: [Zone; 5] = [
        Zone::Admin,
        Zone::Trusted,
        Zone::Guests,
        Zone::Iot,
        Zone::Servers,
    ];

    /// The zone's name in the policy file.
    pub fn name(self) -> &'static str {
        match self {
            Zone::Admin => "admin",
            Zone::Trusted => "trusted",
            Zone::Guests => "guests",
            Zone::Iot => "iot",
            Zone::Servers => "servers",
            Zone::Wan => "wan",
        }
    }

    /// The VLAN id (10..50), `None` for wan.
    pub fn vlan(self) -> Option<u8> {
        match self {
            Zone::Admin => Some(10),
            Zone::Trusted => Some(20),
            Zone::Guests => Some(30),
            Zone::Iot => Some(40),
            Zone::Servers => Some(50),
            Zone::Wan => None,
        }
    }

    /// The router's interface on the zone: `eth0.<vlan>`, or `eth1`.
    pub fn interface(self) -> &'static str {
        match self {
            Zone::Admin => "eth0.10",
            Zone::Trusted => "eth0.20",
            Zone::Guests => "eth0.30",
            Zone::Iot => "eth0.40",
            Zone::Servers => "eth0.50",
            Zone::Wan => "eth1",
        }
    }

    /// The zone host's IPv4 address: 192.168.N0.10, or [`WAN_HOST`].
    pub fn host_v4(self) -> Ipv4Addr {
        match self.vlan() {
            Some(id) => Ipv4Addr::new(192, 168, id, 10),
            None => WAN_HOST,
        }
    }

    /// The zone host's IPv6 address: fd00:N0::10; `None` for wan.
    pub fn host_v6(self) -> Option<Ipv6Addr> {
        self.vlan()
            .map(|id| Ipv6Addr::new(0xfd00, ula_group(id), 0, 0, 0, 0, 0, 0x10))
    }

    /// The router's IPv4 address on the zone: 192.168.N0.1 (from the
    /// policy file), or [`WAN_ROUTER`] (from the lab).
    pub fn router_v4(self) -> Ipv4Addr {
        match self.vlan() {
            Some(id) => Ipv4Addr::new(192, 168, id, 1),
            None => WAN_ROUTER,
        }
    }

    /// The router's IPv6 address on the zone: fd00:N0::1; `None` for wan.
    pub fn router_v6(self) -> Option<Ipv6Addr> {
        self.vlan()
            .map(|id| Ipv6Addr::new(0xfd00, ula_group(id), 0, 0, 0, 0, 0, 1))
    }

    /// Every address of the zone's host (the camera's too, for iot).
    pub fn host_addrs(self) -> Vec<IpAddr> {
        let mut addrs = vec![IpAddr::V4(self.host_v4())];
        if self == Zone::Iot {
            addrs.push(IpAddr::V4(CAMERA));
        }
        addrs.extend(self.host_v6().map(IpAddr::V6));
        addrs
    }
}

/// `fd00:10::` for VLAN 10: the VLAN id's decimal digits read as hex, as
/// homelab.toml writes them.
fn ula_group(vlan: u8) -> u16 {
    u16::from(vlan / 10) << 4 | u16::from(vlan % 10)
}

/// A camera (in the policy's `@cameras`): a second address of the iot host.
pub const CAMERA: Ipv4Addr = Ipv4Addr::new(192, 168, 40, 20);
/// The NAS (the policy's `@nas`): the servers host.
pub const NAS_V4: Ipv4Addr = Ipv4Addr::new(192, 168, 50, 10);
/// The NAS's IPv6 address (the policy's `@nas`).
pub const NAS_V6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x50, 0, 0, 0, 0, 0, 0x10);
/// The router's wan address, which the lab (standing in for the ISP's
/// DHCP) puts on `eth1`: the masquerade source and port-forward target.
pub const WAN_ROUTER: Ipv4Addr = Ipv4Addr::new(100, 64, 0, 1);
/// The "internet" host on the wan link.
pub const WAN_HOST: Ipv4Addr = Ipv4Addr::new(100, 64, 0, 2);
/// The VLAN zones' trunk in homelab.toml (`vlan = { parent = "eth0" }`).
pub const TRUNK: &str = "eth0";
/// Prefix length of every subnet in the lab.
pub const PREFIX_V4: u8 = 24;
/// Prefix length of every IPv6 subnet in the lab.
pub const PREFIX_V6: u8 = 64;

/// The namespaces of the homelab; all removed on drop.
#[derive(Debug)]
pub struct ZonesLab {
    router: Host,
    /// One host per zone, in [`Zone::ALL`] order.
    hosts: Vec<Host>,
    /// Last, so it is dropped (namespaces deleted) last.
    lab: Lab,
}

impl ZonesLab {
    /// Builds the router and the six zone hosts (see the module docs).
    pub fn new() -> Result<ZonesLab> {
        let lab = Lab::new()?;
        let router = bare_namespace(&lab, "router")?;
        sysctl(
            &router,
            &[
                "net.ipv4.ip_forward=1",
                "net.ipv6.conf.all.forwarding=1",
                "net.ipv6.conf.default.forwarding=1",
                // Before the interfaces exist, so they inherit it.
                "net.ipv6.conf.all.accept_dad=0",
                "net.ipv6.conf.default.accept_dad=0",
                // Every reject answered, however many a test sends.
                "net.ipv4.icmp_ratelimit=0",
                "net.ipv6.icmp.ratelimit=0",
            ],
        )?;
        // The stand-in trunk for the VLAN zones (see the module docs).
        let ns = router.ns.as_str();
        ip(&[
            "-n", ns, "link", "add", TRUNK, "type", "veth", "peer", "name", "trunk",
        ])?;
        ip(&["-n", ns, "link", "set", "trunk", "up"])?;
        ip(&["-n", ns, "link", "set", TRUNK, "up"])?;
        let mut hosts = Vec::new();
        for zone in Zone::ALL {
            let host = add_zone_host(&lab, &router, zone)
                .with_context(|| format!("building the {} zone", zone.name()))?;
            hosts.push(host);
        }
        // The lab stands in for the ISP's DHCP on wan.
        ip(&[
            "-n",
            &router.ns,
            "addr",
            "add",
            &format!("{WAN_ROUTER}/{PREFIX_V4}"),
            "dev",
            Zone::Wan.interface(),
        ])?;
        let mut router = router;
        router.v4 = WAN_ROUTER;
        Ok(ZonesLab { router, hosts, lab })
    }

    /// The router's namespace (where routerd runs). Its `v4` is
    /// [`WAN_ROUTER`]; it has no lab-wide `v6`.
    pub fn router(&self) -> &Host {
        &self.router
    }

    /// The zone's host. Its `v4`/`v6` are [`Zone::host_v4`] and
    /// [`Zone::host_v6`] (the unspecified address `::` for wan).
    pub fn host(&self, zone: Zone) -> &Host {
        let i = Zone::ALL.iter().position(|z| *z == zone).unwrap_or(0);
        &self.hosts[i]
    }

    /// The underlying lab (its temp dir, its name prefix).
    pub fn lab(&self) -> &Lab {
        &self.lab
    }

    /// The lab's temp dir, where logs and configs go.
    pub fn dir(&self) -> &Path {
        self.lab.dir()
    }

    /// Adds the router's zone addresses of homelab.toml (192.168.N0.1/24,
    /// fd00:N0::1/64) by hand, as routerd would: only for tests that run
    /// without routerd. IPv6 goes without `nodad`, like routerd's, which
    /// also checks that the lab's DAD setting works.
    pub fn add_router_addresses_for_smoke_test(&self) -> Result<()> {
        let ns = self.router.ns.as_str();
        for zone in Zone::LAN {
            let dev = zone.interface();
            let v4 = format!("{}/{PREFIX_V4}", zone.router_v4());
            ip(&["-n", ns, "addr", "add", &v4, "dev", dev])?;
            if let Some(v6) = zone.router_v6() {
                let v6 = format!("{v6}/{PREFIX_V6}");
                ip(&["-n", ns, "addr", "add", &v6, "dev", dev])?;
            }
        }
        Ok(())
    }

    /// Copies policies/examples/homelab.toml into `<lab dir>/policies`
    /// and returns that directory, for routerd's `[policies] dir`.
    pub fn install_homelab_policy(&self) -> Result<PathBuf> {
        let policies = self.dir().join("policies");
        std::fs::create_dir_all(&policies)?;
        let example = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../policies/examples/homelab.toml"
        );
        std::fs::copy(example, policies.join("homelab.toml"))?;
        Ok(policies)
    }

    /// `ip -brief address` of the router, for failure messages.
    pub fn router_addresses(&self) -> String {
        match self.router.run("ip", &["-brief", "address"]) {
            Ok(text) => text,
            Err(e) => format!("({e:#})"),
        }
    }
}

/// A namespace from [`Lab::add_host`] (so the lab tears it down) with its
/// switch link removed: loopback only. `v4`/`v6` are then meaningless
/// until the caller sets them.
fn bare_namespace(lab: &Lab, name: &str) -> Result<Host> {
    // The switch link is deleted at once, so every namespace may use the
    // same placeholder address for that moment.
    let mut host = lab.add_host(name, Ipv4Addr::new(10, 53, 200, 1))?;
    ip(&["-n", &host.ns, "link", "del", "eth0"])?;
    host.v4 = Ipv4Addr::UNSPECIFIED;
    host.v6 = Ipv6Addr::UNSPECIFIED;
    Ok(host)
}

/// The zone's host namespace, linked to the router by a veth pair (router
/// side [`Zone::interface`], host side `eth0`), addressed and routed.
fn add_zone_host(lab: &Lab, router: &Host, zone: Zone) -> Result<Host> {
    let mut host = bare_namespace(lab, zone.name())?;
    sysctl(
        &host,
        &[
            "net.ipv6.conf.all.accept_dad=0",
            "net.ipv6.conf.default.accept_dad=0",
        ],
    )?;
    let dev = zone.interface();
    ip(&[
        "-n", &router.ns, "link", "add", dev, "type", "veth", "peer", "name", "eth0", "netns",
        &host.ns,
    ])?;
    ip(&["-n", &router.ns, "link", "set", dev, "up"])?;
    ip(&["-n", &host.ns, "link", "set", "eth0", "up"])?;

    host.v4 = zone.host_v4();
    host.add_addr(IpAddr::V4(host.v4), PREFIX_V4)?;
    if zone == Zone::Iot {
        host.add_addr(IpAddr::V4(CAMERA), PREFIX_V4)?;
    }
    match zone.host_v6() {
        Some(v6) => {
            host.v6 = v6;
            host.add_addr(IpAddr::V6(v6), PREFIX_V6)?;
        }
        None => host.v6 = Ipv6Addr::UNSPECIFIED,
    }
    // The wan host gets no route beyond its own subnet: zones are
    // reachable from there only through the router's port forwards.
    if zone != Zone::Wan {
        host.add_route("default", IpAddr::V4(zone.router_v4()))?;
        if let Some(gw) = zone.router_v6() {
            host.add_route("default", IpAddr::V6(gw))?;
        }
    }
    Ok(host)
}

/// `sysctl -w` each `key=value` inside `host`'s namespace.
pub(crate) fn sysctl(host: &Host, settings: &[&str]) -> Result<()> {
    let mut args = vec!["-q", "-w"];
    args.extend_from_slice(settings);
    host.run("sysctl", &args)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_follow_the_policy_file() {
        assert_eq!(Zone::Admin.host_v4().to_string(), "192.168.10.10");
        assert_eq!(
            Zone::Servers.host_v6().map(|a| a.to_string()),
            Some("fd00:50::10".to_string())
        );
        assert_eq!(
            Zone::Iot.router_v6().map(|a| a.to_string()),
            Some("fd00:40::1".to_string())
        );
        assert_eq!(Zone::Servers.host_v4(), NAS_V4);
        assert_eq!(Zone::Servers.host_v6(), Some(NAS_V6));
        assert_eq!(Zone::Wan.host_v6(), None);
        assert_eq!(Zone::Wan.router_v4(), WAN_ROUTER);
        assert_eq!(Zone::Guests.interface(), "eth0.30");
        assert_eq!(Zone::Iot.host_addrs().len(), 3);
    }
}
