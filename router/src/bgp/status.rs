//! `routerctl bgp` and `routerctl bgp routes` as JSON.

use std::net::{IpAddr, Ipv4Addr};

use ipnet::IpNet;
use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct BgpStatus {
    pub asn: u32,
    pub router_id: Ipv4Addr,
    pub peers: Vec<PeerStatus>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PeerStatus {
    pub name: String,
    pub address: IpAddr,
    pub remote_asn: u32,
    pub state: &'static str,
    /// Seconds in Established; `None` when not established.
    pub uptime_secs: Option<u64>,
    pub last_error: Option<String>,
    pub prefixes_received: usize,
    pub prefixes_accepted: usize,
    pub prefixes_advertised: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct RoutesReport {
    pub routes: Vec<RouteEntry>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RouteEntry {
    pub prefix: IpNet,
    pub candidates: Vec<CandidateStatus>,
}

#[derive(Debug, Clone, Serialize)]
pub struct CandidateStatus {
    /// `None` for this router's own networks.
    pub peer: Option<String>,
    pub next_hop: Option<IpAddr>,
    pub as_path: String,
    pub origin: &'static str,
    pub local_pref: Option<u32>,
    pub med: Option<u32>,
    /// "best", or why the decision process passed it over.
    pub standing: String,
}
