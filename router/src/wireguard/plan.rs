//! What must change on a WireGuard device to match its tunnel's settings:
//! a pure function of the settings, the device as it is, and the endpoints
//! routerd pushed before, so that reconciling is testable without a device
//! and an unchanged peer is never touched (it keeps its session).

use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;

use ipnet::IpNet;
use std::time::SystemTime;

use wireguard_control::{Device, DeviceUpdate, Key, PeerConfigBuilder};

use super::settings::{Endpoint, Peer, Tunnel};

/// A device as its backend reports it, in the terms routerd compares.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeviceState {
    pub private_key: Option<Key>,
    pub listen_port: Option<u16>,
    pub peers: Vec<PeerState>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerState {
    pub public_key: Key,
    /// `None` also when the backend reports an all-zero key.
    pub preshared_key: Option<Key>,
    pub endpoint: Option<SocketAddr>,
    /// `None` also when the backend reports 0 (off).
    pub persistent_keepalive: Option<u16>,
    pub allowed_ips: BTreeSet<IpNet>,
    pub last_handshake: Option<SystemTime>,
    pub rx_bytes: u64,
    pub tx_bytes: u64,
}

impl From<&Device> for DeviceState {
    fn from(device: &Device) -> Self {
        DeviceState {
            private_key: device.private_key.clone(),
            listen_port: device.listen_port,
            peers: device
                .peers
                .iter()
                .map(|info| PeerState {
                    public_key: info.config.public_key.clone(),
                    preshared_key: info
                        .config
                        .preshared_key
                        .clone()
                        .filter(|k| *k != Key::zero()),
                    endpoint: info.config.endpoint,
                    persistent_keepalive: info
                        .config
                        .persistent_keepalive_interval
                        .filter(|k| *k > 0),
                    allowed_ips: info
                        .config
                        .allowed_ips
                        .iter()
                        .filter_map(|a| IpNet::new(a.address, a.cidr).ok())
                        .collect(),
                    last_handshake: info.stats.last_handshake_time,
                    rx_bytes: info.stats.rx_bytes,
                    tx_bytes: info.stats.tx_bytes,
                })
                .collect(),
        }
    }
}

/// The changes for one device; empty when it already matches.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Changes {
    pub private_key: Option<Key>,
    pub listen_port: Option<u16>,
    /// Peers on the device that the configuration no longer has.
    pub remove: Vec<Key>,
    /// Peers to add, or to change in the fields that are `Some`.
    pub upsert: Vec<PeerChange>,
}

#[derive(Debug, PartialEq, Eq)]
pub struct PeerChange {
    pub public_key: Key,
    /// The peer's name, for logs.
    pub name: String,
    pub added: bool,
    /// `Some(Key::zero())` removes a preshared key.
    pub preshared_key: Option<Key>,
    pub endpoint: Option<SocketAddr>,
    /// `Some(0)` turns keepalives off.
    pub persistent_keepalive: Option<u16>,
    /// Replaces the peer's allowed IPs.
    pub allowed_ips: Option<Vec<IpNet>>,
}

impl Changes {
    pub fn is_empty(&self) -> bool {
        self.private_key.is_none()
            && self.listen_port.is_none()
            && self.remove.is_empty()
            && self.upsert.is_empty()
    }

    /// The `wireguard-control` request that makes these changes, and only
    /// these: a peer's fields left `None` are not sent.
    pub fn to_update(&self) -> DeviceUpdate {
        let mut update = DeviceUpdate::new();
        if let Some(key) = &self.private_key {
            update = update.set_private_key(key.clone());
        }
        if let Some(port) = self.listen_port {
            update = update.set_listen_port(port);
        }
        for key in &self.remove {
            update = update.remove_peer_by_key(key);
        }
        for change in &self.upsert {
            let mut peer = PeerConfigBuilder::new(&change.public_key);
            if let Some(key) = &change.preshared_key {
                peer = peer.set_preshared_key(key.clone());
            }
            if let Some(endpoint) = change.endpoint {
                peer = peer.set_endpoint(endpoint);
            }
            if let Some(interval) = change.persistent_keepalive {
                peer = peer.set_persistent_keepalive_interval(interval);
            }
            if let Some(allowed) = &change.allowed_ips {
                peer = peer.replace_allowed_ips();
                for net in allowed {
                    peer = peer.add_allowed_ip(net.addr(), net.prefix_len());
                }
            }
            update = update.add_peer(peer);
        }
        update
    }
}

/// The changes that bring `device` (`None`: just created, empty) to
/// `tunnel`. `endpoints` holds, per peer key, the address its configured
/// endpoint stands for now (names resolved by routerd); `pushed` what
/// routerd last set on the device. An endpoint is only sent when it
/// differs from what was pushed: the device's own value may be a newer
/// address the peer roamed to, which must not be undone.
pub fn plan(
    tunnel: &Tunnel,
    device: Option<&DeviceState>,
    endpoints: &HashMap<Key, SocketAddr>,
    pushed: &HashMap<Key, SocketAddr>,
) -> Changes {
    let mut changes = Changes::default();
    let private = tunnel.private_key.key();
    if device.and_then(|d| d.private_key.as_ref()) != Some(private) {
        changes.private_key = Some(private.clone());
    }
    if let Some(port) = tunnel.listen_port
        && device.and_then(|d| d.listen_port) != Some(port)
    {
        changes.listen_port = Some(port);
    }
    let current: &[PeerState] = device.map(|d| d.peers.as_slice()).unwrap_or_default();
    for info in current {
        let key = &info.public_key;
        if !tunnel.peers.iter().any(|p| &p.public_key == key) {
            changes.remove.push(key.clone());
        }
    }
    for peer in &tunnel.peers {
        let existing = current
            .iter()
            .find(|info| info.public_key == peer.public_key);
        let wanted_endpoint = endpoint_for(peer, endpoints);
        if let Some(change) = peer_change(peer, existing, wanted_endpoint, pushed) {
            changes.upsert.push(change);
        }
    }
    changes
}

/// The address `peer`'s endpoint stands for now, if known.
pub fn endpoint_for(peer: &Peer, endpoints: &HashMap<Key, SocketAddr>) -> Option<SocketAddr> {
    match &peer.endpoint {
        Some(Endpoint::Address(addr)) => Some(*addr),
        Some(Endpoint::Name { .. }) => endpoints.get(&peer.public_key).copied(),
        None => None,
    }
}

fn peer_change(
    peer: &Peer,
    existing: Option<&PeerState>,
    wanted_endpoint: Option<SocketAddr>,
    pushed: &HashMap<Key, SocketAddr>,
) -> Option<PeerChange> {
    let wanted_psk = peer.preshared_key.as_ref().map(|k| k.key().clone());
    let wanted_allowed: BTreeSet<IpNet> = peer.allowed_ips.iter().copied().collect();
    let Some(info) = existing else {
        return Some(PeerChange {
            public_key: peer.public_key.clone(),
            name: peer.name.clone(),
            added: true,
            preshared_key: wanted_psk,
            endpoint: wanted_endpoint,
            persistent_keepalive: peer.persistent_keepalive,
            allowed_ips: Some(wanted_allowed.into_iter().collect()),
        });
    };
    let (have_psk, have_keepalive, have_allowed) = (
        info.preshared_key.clone(),
        info.persistent_keepalive,
        &info.allowed_ips,
    );
    let change = PeerChange {
        public_key: peer.public_key.clone(),
        name: peer.name.clone(),
        added: false,
        preshared_key: (have_psk != wanted_psk).then(|| wanted_psk.unwrap_or_else(Key::zero)),
        endpoint: wanted_endpoint.filter(|addr| {
            pushed.get(&peer.public_key) != Some(addr) && info.endpoint != Some(*addr)
        }),
        persistent_keepalive: (have_keepalive != peer.persistent_keepalive)
            .then(|| peer.persistent_keepalive.unwrap_or(0)),
        allowed_ips: (*have_allowed != wanted_allowed)
            .then(|| wanted_allowed.into_iter().collect()),
    };
    let unchanged = change.preshared_key.is_none()
        && change.endpoint.is_none()
        && change.persistent_keepalive.is_none()
        && change.allowed_ips.is_none();
    (!unchanged).then_some(change)
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
