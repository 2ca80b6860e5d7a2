//! The checked `[bgp]` configuration. Defaults live here.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use bgp::policy::Policy;
use ipnet::IpNet;

/// The well-known BGP port.
pub const BGP_PORT: u16 = 179;
/// RFC 4271 suggests 90 s.
pub const DEFAULT_HOLD_TIME: u16 = 90;
/// Faster than RFC 4271's 120 s: a site link that comes back should carry
/// routes again within seconds, not minutes.
pub const DEFAULT_CONNECT_RETRY: Duration = Duration::from_secs(5);
/// The main table.
pub const DEFAULT_KERNEL_TABLE: u32 = 254;
/// The kernel's route protocol number for BGP (rtnetlink `RTPROT_BGP`).
pub const ROUTE_PROTOCOL: u8 = 186;

#[derive(Debug, Clone, PartialEq)]
pub struct BgpConfig {
    pub asn: u32,
    pub router_id: Ipv4Addr,
    pub listen: Vec<SocketAddr>,
    pub hold_time: u16,
    pub connect_retry: Duration,
    pub kernel_table: u32,
    /// Install best routes in the kernel; false keeps BGP out of the
    /// forwarding table (a route server, or a benchmark of the speaker).
    pub kernel: bool,
    pub networks: Vec<IpNet>,
    pub peers: Vec<PeerConfig>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PeerConfig {
    pub name: String,
    pub address: IpAddr,
    pub remote_asn: u32,
    pub port: u16,
    pub local_address: Option<IpAddr>,
    pub passive: bool,
    pub md5_password: Option<Md5Password>,
    pub gtsm: bool,
    pub max_prefixes: Option<u32>,
    pub import: Option<Policy>,
    pub export: Option<Policy>,
}

impl PeerConfig {
    pub fn ebgp(&self, local_asn: u32) -> bool {
        self.remote_asn != local_asn
    }
}

/// A TCP MD5 key; its `Debug` does not show it.
#[derive(Clone, PartialEq, Eq)]
pub struct Md5Password(pub String);

impl std::fmt::Debug for Md5Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Md5Password(..)")
    }
}
