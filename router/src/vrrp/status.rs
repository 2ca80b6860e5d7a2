//! What `routerctl vrrp` shows.

use std::net::IpAddr;

use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct VrrpStatus {
    pub instances: Vec<InstanceStatus>,
    /// Checks failing now (DNS probes), shared by the instances.
    pub failing_checks: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct InstanceStatus {
    pub name: String,
    pub interface: String,
    pub vrid: u8,
    pub state: String,
    pub priority: u8,
    pub configured_priority: u8,
    pub addresses: Vec<String>,
    /// This node's address on the interface (the adverts' source).
    pub local_address: Option<IpAddr>,
    pub master: Option<IpAddr>,
    pub master_priority: Option<u8>,
    pub advert_interval_ms: u64,
    pub master_advert_interval_ms: u64,
    pub transitions: u64,
    pub last_reason: Option<String>,
    pub state_secs: u64,
    /// Advertisements received and refused (bad TTL, checksum, version).
    pub bad_packets: u64,
    /// Why the instance is not running, when it is not.
    pub error: Option<String>,
}
