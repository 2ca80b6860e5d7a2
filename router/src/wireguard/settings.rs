//! The checked WireGuard configuration: what [`crate::config`] hands the
//! daemon. Defaults live here and nowhere else.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use ipnet::IpNet;
use serde::Serialize;
use wireguard_control::Key;

use super::keys::SecretKey;

/// The routing table routerd owns for tunnel routes.
pub const DEFAULT_ROUTE_TABLE: u32 = 200;
/// The rule sending lookups to that table comes before `main` (32766).
pub const DEFAULT_RULE_PRIORITY: u32 = 10_200;
/// Default MTU: 1500 minus WireGuard's worst-case overhead over IPv6.
pub const DEFAULT_MTU: u32 = 1420;
/// A session's keys expire after 180 s without a handshake
/// (REJECT_AFTER_TIME in the WireGuard paper): nothing heard for that long
/// means nothing can get through.
pub const DEFAULT_STALE_AFTER: Duration = Duration::from_secs(180);
/// The userspace implementation Debian packages.
pub const DEFAULT_USERSPACE_BINARY: &str = "wireguard-go";

#[derive(Debug, Clone, PartialEq)]
pub struct WireguardConfig {
    pub backend: BackendChoice,
    pub route_table: u32,
    pub rule_priority: u32,
    pub userspace_binary: PathBuf,
    pub tunnels: Vec<Tunnel>,
}

impl Default for WireguardConfig {
    fn default() -> Self {
        WireguardConfig {
            backend: BackendChoice::Auto,
            route_table: DEFAULT_ROUTE_TABLE,
            rule_priority: DEFAULT_RULE_PRIORITY,
            userspace_binary: PathBuf::from(DEFAULT_USERSPACE_BINARY),
            tunnels: Vec::new(),
        }
    }
}

impl WireguardConfig {
    /// The tunnels' interface names.
    pub fn interfaces(&self) -> Vec<String> {
        self.tunnels.iter().map(|t| t.interface.clone()).collect()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendChoice {
    Auto,
    Kernel,
    Userspace,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RouteMode {
    /// A route per allowed IP in the owned table.
    Table,
    /// Routes come from BGP sessions over the tunnel.
    Bgp,
    None,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Tunnel {
    pub interface: String,
    pub private_key: SecretKey,
    pub listen_port: Option<u16>,
    pub addresses: Vec<IpNet>,
    pub mtu: u32,
    pub zone: Option<String>,
    pub routes: RouteMode,
    pub stale_after: Duration,
    pub peers: Vec<Peer>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Peer {
    pub name: String,
    pub public_key: Key,
    pub preshared_key: Option<SecretKey>,
    pub endpoint: Option<Endpoint>,
    pub allowed_ips: Vec<IpNet>,
    pub persistent_keepalive: Option<u16>,
}

/// Where a peer is reached: an address, or a name resolved by routerd.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Endpoint {
    Address(SocketAddr),
    Name { host: String, port: u16 },
}

impl Endpoint {
    /// Parses `host:port`, `a.b.c.d:port` or `[v6]:port`.
    pub fn parse(text: &str) -> Result<Endpoint, String> {
        if let Ok(addr) = text.parse::<SocketAddr>() {
            return Ok(Endpoint::Address(addr));
        }
        let expected = || {
            format!(
                "endpoint \"{text}\": expected host:port, e.g. \"vpn.example.org:51820\" or \"[2001:db8::1]:51820\""
            )
        };
        let (host, port) = text.rsplit_once(':').ok_or_else(expected)?;
        let port: u16 = port.parse().map_err(|_| expected())?;
        if port == 0 || host.parse::<IpAddr>().is_ok() || host.contains(':') {
            return Err(expected());
        }
        let valid_label = |label: &str| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        };
        let host = host.trim_end_matches('.');
        if host.is_empty() || host.len() > 253 || !host.split('.').all(valid_label) {
            return Err(expected());
        }
        Ok(Endpoint::Name {
            host: host.to_ascii_lowercase(),
            port,
        })
    }
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Endpoint::Address(addr) => write!(f, "{addr}"),
            Endpoint::Name { host, port } => write!(f, "{host}:{port}"),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests
mod tests {
    use super::*;

    #[test]
    fn endpoints_parse_as_operators_write_them() {
        assert_eq!(
            Endpoint::parse("192.0.2.1:51820").unwrap(),
            Endpoint::Address("192.0.2.1:51820".parse().unwrap())
        );
        assert_eq!(
            Endpoint::parse("[2001:db8::1]:51820").unwrap(),
            Endpoint::Address("[2001:db8::1]:51820".parse().unwrap())
        );
        assert_eq!(
            Endpoint::parse("VPN.Example.org.:4500").unwrap(),
            Endpoint::Name {
                host: "vpn.example.org".into(),
                port: 4500
            }
        );
        for bad in [
            "vpn.example.org",
            "vpn.example.org:0",
            "vpn.example.org:70000",
            "2001:db8::1:51820",
            "bad host:1",
            ":51820",
        ] {
            assert!(Endpoint::parse(bad).is_err(), "{bad}");
        }
    }
}
