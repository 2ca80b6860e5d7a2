//! `[wireguard]`: tunnels and their peers, checked into
//! [`crate::wireguard::settings`]. Key files are read here, so a missing,
//! loose or malformed key fails `routerd check` and a reload, not a tunnel.

use std::collections::HashMap;

use ipnet::IpNet;
use toml::Spanned;

use super::ConfigError;
use super::check::{Checker, PolicyZones};
use super::raw::{RawPeer, RawRoutes, RawTunnel, RawWgBackend, RawWireguard};
use crate::wireguard::keys::{parse_key, read_key_file};
use crate::wireguard::settings::{
    BackendChoice, Endpoint, Peer, RouteMode, Tunnel, WireguardConfig,
};

/// Tables the kernel itself uses: unspec, default, main and local.
const RESERVED_TABLES: [u32; 4] = [0, 253, 254, 255];

pub(super) fn check_wireguard(
    checker: &Checker<'_>,
    raw: &RawWireguard,
    zones: &PolicyZones,
) -> Result<WireguardConfig, ConfigError> {
    let defaults = WireguardConfig::default();
    let route_table = match &raw.route_table {
        Some(table) if RESERVED_TABLES.contains(table.get_ref()) => {
            return Err(checker.error_at(
                table,
                format!(
                    "route_table = {} is a table the kernel uses itself: pick one routerd can own, such as {}",
                    table.get_ref(),
                    defaults.route_table
                ),
            ));
        }
        Some(table) => *table.get_ref(),
        None => defaults.route_table,
    };
    let mut tunnels: Vec<Tunnel> = Vec::new();
    // Where each routed prefix comes from, to catch overlaps between peers.
    let mut routed: Vec<(IpNet, String)> = Vec::new();
    for raw_tunnel in &raw.tunnels {
        let tunnel = check_tunnel(checker, raw_tunnel, zones)?;
        if let Some(other) = tunnels.iter().find(|t| t.interface == tunnel.interface) {
            return Err(checker.error_at(
                &raw_tunnel.get_ref().interface,
                format!("interface {} is declared twice", other.interface),
            ));
        }
        if let (Some(port), Some(spanned)) = (tunnel.listen_port, &raw_tunnel.get_ref().listen_port)
            && let Some(other) = tunnels.iter().find(|t| t.listen_port == Some(port))
        {
            return Err(checker.error_at(
                spanned,
                format!(
                    "listen_port {port} is already used by tunnel {}",
                    other.interface
                ),
            ));
        }
        if let Some(other) = tunnels.iter().find(|t| t.private_key == tunnel.private_key) {
            return Err(checker.error_at(
                &raw_tunnel.get_ref().private_key_file,
                format!(
                    "tunnel {} uses the same private key as tunnel {}: give each tunnel its own (`routerctl wg genkey`)",
                    tunnel.interface, other.interface
                ),
            ));
        }
        for (peer, raw_peer) in tunnel.peers.iter().zip(&raw_tunnel.get_ref().peers) {
            for t in &tunnels {
                if let Some(other) = t.peers.iter().find(|p| p.public_key == peer.public_key) {
                    return Err(checker.error_at(
                        &raw_peer.get_ref().public_key,
                        format!(
                            "peer {} has the same public key as peer {} of tunnel {}",
                            peer.name, other.name, t.interface
                        ),
                    ));
                }
            }
            if tunnel.routes != RouteMode::Table {
                continue;
            }
            let owner = format!("peer {} of tunnel {}", peer.name, tunnel.interface);
            for net in &peer.allowed_ips {
                if let Some((_, other)) = routed.iter().find(|(n, _)| overlaps(n, net)) {
                    return Err(checker.error_at(
                        &raw_peer.get_ref().allowed_ips,
                        format!("allowed IP {net} of {owner} overlaps {other}"),
                    ));
                }
            }
            routed.extend(peer.allowed_ips.iter().map(|n| (*n, owner.clone())));
        }
        tunnels.push(tunnel);
    }
    Ok(WireguardConfig {
        backend: match raw.backend {
            Some(RawWgBackend::Auto) | None => BackendChoice::Auto,
            Some(RawWgBackend::Kernel) => BackendChoice::Kernel,
            Some(RawWgBackend::Userspace) => BackendChoice::Userspace,
        },
        route_table,
        rule_priority: raw.rule_priority.unwrap_or(defaults.rule_priority),
        userspace_binary: raw
            .userspace_binary
            .clone()
            .unwrap_or(defaults.userspace_binary),
        tunnels,
    })
}

fn check_tunnel(
    checker: &Checker<'_>,
    spanned: &Spanned<RawTunnel>,
    zones: &PolicyZones,
) -> Result<Tunnel, ConfigError> {
    let raw = spanned.get_ref();
    let interface = raw.interface.get_ref().clone();
    if !crate::links::valid_ifname(&interface) {
        return Err(checker.error_at(
            &raw.interface,
            format!(
                "interface \"{interface}\" is not a valid interface name: expected at most 15 bytes without `/`, `:` or spaces, e.g. \"wg-home\""
            ),
        ));
    }
    let key_path = checker.resolve(raw.private_key_file.get_ref());
    let private_key = read_key_file(&key_path)
        .map_err(|e| checker.error_at(&raw.private_key_file, format!("tunnel {interface}: {e}")))?;
    let mtu = match &raw.mtu {
        Some(mtu) if !(576..=9000).contains(mtu.get_ref()) => {
            return Err(checker.error_at(
                mtu,
                format!(
                    "tunnel {interface}: mtu = {} is outside 576 to 9000",
                    mtu.get_ref()
                ),
            ));
        }
        Some(mtu) => *mtu.get_ref(),
        None => crate::wireguard::settings::DEFAULT_MTU,
    };
    let mut addresses = raw.addresses.clone();
    let zone = match &raw.zone {
        Some(zone) => {
            let name = zone.get_ref();
            match zones {
                PolicyZones::Known(known) => {
                    let Some(declared) = known.iter().find(|z| &z.name == name) else {
                        let names: Vec<&str> = known.iter().map(|z| z.name.as_str()).collect();
                        return Err(checker.error_at(
                            zone,
                            format!(
                                "tunnel {interface}: zone \"{name}\" is not declared in the policy files (zones: {})",
                                names.join(", ")
                            ),
                        ));
                    };
                    if declared.interface != interface {
                        return Err(checker.error_at(
                            zone,
                            format!(
                                "tunnel {interface}: zone \"{name}\" is on interface {}: set interface = \"{interface}\" in that zone so its rules apply to the tunnel",
                                declared.interface
                            ),
                        ));
                    }
                    // The zone's router addresses are the tunnel's, unless
                    // the tunnel names its own, which must then agree.
                    if addresses.is_empty() {
                        addresses = declared.addresses.clone();
                    } else if !same_set(&addresses, &declared.addresses) {
                        return Err(checker.error_at(
                            zone,
                            format!(
                                "tunnel {interface}: addresses {addresses:?} differ from zone \"{name}\"'s {:?}: declare them in one place",
                                declared.addresses
                            ),
                        ));
                    }
                }
                PolicyZones::Unreadable => {}
                PolicyZones::NoPolicies => {
                    return Err(checker.error_at(
                        zone,
                        format!("tunnel {interface}: zone \"{name}\" needs a [policies] section whose files declare it"),
                    ));
                }
            }
            Some(name.clone())
        }
        None => None,
    };
    let stale_after = match &raw.stale_after {
        Some(text) => {
            let after = crate::duration::parse(text.get_ref()).map_err(|e| {
                checker.error_at(text, format!("tunnel {interface}: stale_after: {e}"))
            })?;
            if after.is_zero() {
                return Err(checker.error_at(
                    text,
                    format!("tunnel {interface}: stale_after must be at least 1s"),
                ));
            }
            after
        }
        None => crate::wireguard::settings::DEFAULT_STALE_AFTER,
    };
    let routes = match raw.routes {
        Some(RawRoutes::Table) | None => RouteMode::Table,
        Some(RawRoutes::Bgp) => RouteMode::Bgp,
        Some(RawRoutes::None) => RouteMode::None,
    };
    let own_public = private_key.public();
    let mut peers: Vec<Peer> = Vec::new();
    let mut names: HashMap<String, ()> = HashMap::new();
    for raw_peer in &raw.peers {
        let peer = check_peer(checker, &interface, raw_peer, routes)?;
        let at = raw_peer.get_ref();
        if names.insert(peer.name.clone(), ()).is_some() {
            return Err(checker.error_at(
                &at.name,
                format!(
                    "tunnel {interface}: peer name \"{}\" is used twice",
                    peer.name
                ),
            ));
        }
        if peer.public_key == own_public {
            return Err(checker.error_at(
                &at.public_key,
                format!(
                    "tunnel {interface}: peer {} has the tunnel's own public key",
                    peer.name
                ),
            ));
        }
        if let Some(other) = peers.iter().find(|p| p.public_key == peer.public_key) {
            return Err(checker.error_at(
                &at.public_key,
                format!(
                    "tunnel {interface}: peers {} and {} have the same public key",
                    other.name, peer.name
                ),
            ));
        }
        for net in &peer.allowed_ips {
            if let Some(other) = peers
                .iter()
                .find(|p| p.allowed_ips.iter().any(|n| overlaps(n, net)))
            {
                return Err(checker.error_at(
                    &at.allowed_ips,
                    format!(
                        "tunnel {interface}: allowed IP {net} of peer {} overlaps peer {}",
                        peer.name, other.name
                    ),
                ));
            }
        }
        peers.push(peer);
    }
    Ok(Tunnel {
        interface,
        private_key,
        listen_port: raw.listen_port.as_ref().map(|p| *p.get_ref()),
        addresses,
        mtu,
        zone,
        routes,
        stale_after,
        peers,
    })
}

fn check_peer(
    checker: &Checker<'_>,
    interface: &str,
    spanned: &Spanned<RawPeer>,
    routes: RouteMode,
) -> Result<Peer, ConfigError> {
    let raw = spanned.get_ref();
    let name = raw.name.get_ref().clone();
    if !super::check::valid_object_name(&name) {
        return Err(checker.error_at(
            &raw.name,
            format!("tunnel {interface}: peer name \"{name}\": expected letters, digits, `-`, `_` or `.`"),
        ));
    }
    let public_key = parse_key(raw.public_key.get_ref()).map_err(|e| {
        checker.error_at(
            &raw.public_key,
            format!("tunnel {interface}, peer {name}: public_key: {e}"),
        )
    })?;
    let preshared_key = match &raw.preshared_key_file {
        Some(file) => Some(
            read_key_file(&checker.resolve(file.get_ref())).map_err(|e| {
                checker.error_at(file, format!("tunnel {interface}, peer {name}: {e}"))
            })?,
        ),
        None => None,
    };
    let endpoint = match &raw.endpoint {
        Some(text) => Some(Endpoint::parse(text.get_ref()).map_err(|e| {
            checker.error_at(text, format!("tunnel {interface}, peer {name}: {e}"))
        })?),
        None => None,
    };
    let allowed_ips = raw.allowed_ips.get_ref().clone();
    if allowed_ips.is_empty() {
        return Err(checker.error_at(
            &raw.allowed_ips,
            format!("tunnel {interface}, peer {name}: allowed_ips is empty: expected the peer's tunnel address and the networks behind it"),
        ));
    }
    for net in &allowed_ips {
        if net.trunc() != *net {
            return Err(checker.error_at(
                &raw.allowed_ips,
                format!(
                    "tunnel {interface}, peer {name}: allowed IP {net} has host bits set: did you mean {}?",
                    net.trunc()
                ),
            ));
        }
        if net.prefix_len() == 0 && routes == RouteMode::Table {
            return Err(checker.error_at(
                &raw.allowed_ips,
                format!(
                    "tunnel {interface}, peer {name}: allowed IP {net} with routes = \"table\" would send the tunnel's own packets into the tunnel: list the sites' networks, or set routes = \"none\""
                ),
            ));
        }
    }
    let mut sorted = allowed_ips.clone();
    sorted.sort();
    if let Some(pair) = sorted.windows(2).find(|w| overlaps(&w[0], &w[1])) {
        return Err(checker.error_at(
            &raw.allowed_ips,
            format!(
                "tunnel {interface}, peer {name}: allowed IPs {} and {} overlap",
                pair[0], pair[1]
            ),
        ));
    }
    Ok(Peer {
        name,
        public_key,
        preshared_key,
        endpoint,
        allowed_ips,
        persistent_keepalive: raw.persistent_keepalive.filter(|k| *k > 0),
    })
}

fn same_set(a: &[IpNet], b: &[IpNet]) -> bool {
    let mut a = a.to_vec();
    let mut b = b.to_vec();
    a.sort();
    b.sort();
    a.dedup();
    b.dedup();
    a == b
}

/// Whether two networks share an address.
fn overlaps(a: &IpNet, b: &IpNet) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}
