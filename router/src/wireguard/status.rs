//! `routerctl wg` and `GET /v1/wireguard`: each tunnel and peer as the
//! operator wants to see them.

use std::net::SocketAddr;

use ipnet::IpNet;
use serde::Serialize;

use super::health::Verdict;
use super::settings::RouteMode;

#[derive(Debug, Clone, Default, Serialize)]
pub struct WireguardStatus {
    pub tunnels: Vec<TunnelStatus>,
}

#[derive(Debug, Clone, Serialize)]
pub struct TunnelStatus {
    pub interface: String,
    /// "kernel" or "userspace"; `None` until the interface exists.
    pub backend: Option<&'static str>,
    pub public_key: String,
    pub listen_port: Option<u16>,
    pub addresses: Vec<IpNet>,
    pub mtu: u32,
    pub zone: Option<String>,
    pub routes: RouteMode,
    /// Why the tunnel is not as configured, when it is not.
    pub error: Option<String>,
    pub peers: Vec<PeerStatus>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PeerStatus {
    pub name: String,
    pub public_key: String,
    /// The endpoint as configured (a name or an address).
    pub configured_endpoint: Option<String>,
    /// The address the device sends to now.
    pub endpoint: Option<SocketAddr>,
    pub allowed_ips: Vec<IpNet>,
    pub latest_handshake_secs_ago: Option<u64>,
    /// Seconds since routerd last saw the receive counter grow.
    pub last_received_secs_ago: Option<u64>,
    pub rx_bytes: u64,
    pub tx_bytes: u64,
    pub persistent_keepalive: Option<u16>,
    pub verdict: Verdict,
    /// Why the endpoint name could not be resolved, the last time it failed.
    pub resolve_error: Option<String>,
}
