#![allow(clippy::unwrap_used)] // tests

use std::time::Duration;

use super::*;
use crate::wireguard::keys::SecretKey;
use crate::wireguard::settings::RouteMode;

fn key() -> Key {
    Key::generate_private().get_public()
}

fn net(text: &str) -> IpNet {
    text.parse().unwrap()
}

fn addr(text: &str) -> SocketAddr {
    text.parse().unwrap()
}

fn peer(name: &str, public_key: Key, allowed: &[&str], endpoint: Option<Endpoint>) -> Peer {
    Peer {
        name: name.into(),
        public_key,
        preshared_key: None,
        endpoint,
        allowed_ips: allowed.iter().map(|a| net(a)).collect(),
        persistent_keepalive: Some(25),
    }
}

fn tunnel(peers: Vec<Peer>) -> Tunnel {
    Tunnel {
        interface: "wg-home".into(),
        private_key: SecretKey::new(Key::generate_private()),
        listen_port: Some(51820),
        addresses: vec![net("10.62.0.1/24")],
        mtu: 1420,
        zone: None,
        routes: RouteMode::Table,
        stale_after: Duration::from_secs(180),
        peers,
    }
}

/// The device as the backend would report `tunnel` after applying it.
fn device_of(tunnel: &Tunnel, endpoints: &HashMap<Key, SocketAddr>) -> DeviceState {
    DeviceState {
        private_key: Some(tunnel.private_key.key().clone()),
        listen_port: tunnel.listen_port,
        peers: tunnel
            .peers
            .iter()
            .map(|p| PeerState {
                public_key: p.public_key.clone(),
                preshared_key: None,
                endpoint: endpoint_for(p, endpoints),
                persistent_keepalive: p.persistent_keepalive,
                allowed_ips: p.allowed_ips.iter().copied().collect(),
                last_handshake: None,
                rx_bytes: 0,
                tx_bytes: 0,
            })
            .collect(),
    }
}

#[test]
fn a_new_device_gets_everything() {
    let t = tunnel(vec![peer(
        "grandma",
        key(),
        &["10.62.0.2/32"],
        Some(Endpoint::Address(addr("192.0.2.7:51820"))),
    )]);
    let changes = plan(&t, None, &HashMap::new(), &HashMap::new());
    assert_eq!(changes.private_key.as_ref(), Some(t.private_key.key()));
    assert_eq!(changes.listen_port, Some(51820));
    assert_eq!(changes.upsert.len(), 1);
    let peer = &changes.upsert[0];
    assert!(peer.added);
    assert_eq!(peer.endpoint, Some(addr("192.0.2.7:51820")));
    assert_eq!(peer.persistent_keepalive, Some(25));
    assert_eq!(peer.allowed_ips, Some(vec![net("10.62.0.2/32")]));
}

#[test]
fn a_device_that_matches_needs_nothing() {
    let t = tunnel(vec![
        peer("a", key(), &["10.62.0.2/32", "192.168.50.0/24"], None),
        peer(
            "b",
            key(),
            &["10.62.0.3/32"],
            Some(Endpoint::Address(addr("192.0.2.7:51820"))),
        ),
    ]);
    let device = device_of(&t, &HashMap::new());
    let changes = plan(&t, Some(&device), &HashMap::new(), &HashMap::new());
    assert!(changes.is_empty(), "{changes:?}");
}

#[test]
fn reload_touches_only_the_peers_that_changed() {
    let (kept, dropped, changed) = (key(), key(), key());
    let before = tunnel(vec![
        peer("kept", kept.clone(), &["10.62.0.2/32"], None),
        peer("dropped", dropped.clone(), &["10.62.0.3/32"], None),
        peer("changed", changed.clone(), &["10.62.0.4/32"], None),
    ]);
    let device = device_of(&before, &HashMap::new());
    let added = key();
    let mut after = before.clone();
    after.peers.retain(|p| p.name != "dropped");
    after.peers[1].allowed_ips.push(net("192.168.60.0/24"));
    after
        .peers
        .push(peer("added", added.clone(), &["10.62.0.5/32"], None));
    let changes = plan(&after, Some(&device), &HashMap::new(), &HashMap::new());
    assert_eq!(changes.private_key, None);
    assert_eq!(changes.listen_port, None);
    assert_eq!(changes.remove, vec![dropped]);
    let touched: Vec<&str> = changes.upsert.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(touched, ["changed", "added"]);
    let change = &changes.upsert[0];
    assert!(!change.added);
    assert_eq!(
        change.allowed_ips,
        Some(vec![net("10.62.0.4/32"), net("192.168.60.0/24")])
    );
    assert_eq!((change.endpoint, change.persistent_keepalive), (None, None));
}

#[test]
fn a_resolved_name_is_pushed_once_and_a_roamed_address_is_left_alone() {
    let k = key();
    let t = tunnel(vec![peer(
        "grandma",
        k.clone(),
        &["10.62.0.2/32"],
        Some(Endpoint::Name {
            host: "grandma.example.org".into(),
            port: 51820,
        }),
    )]);
    // Not resolved yet: the peer goes in without an endpoint.
    let changes = plan(&t, None, &HashMap::new(), &HashMap::new());
    assert_eq!(changes.upsert[0].endpoint, None);

    let resolved = HashMap::from([(k.clone(), addr("192.0.2.7:51820"))]);
    let mut device = device_of(&t, &HashMap::new());
    let changes = plan(&t, Some(&device), &resolved, &HashMap::new());
    assert_eq!(changes.upsert[0].endpoint, Some(addr("192.0.2.7:51820")));

    // Pushed; then the peer roams: its packets come from elsewhere.
    device.peers[0].endpoint = Some(addr("198.51.100.9:40000"));
    let pushed = resolved.clone();
    let changes = plan(&t, Some(&device), &resolved, &pushed);
    assert!(changes.is_empty(), "{changes:?}");

    // The name now resolves to a new address: that one is pushed.
    let moved = HashMap::from([(k, addr("192.0.2.8:51820"))]);
    let changes = plan(&t, Some(&device), &moved, &pushed);
    assert_eq!(changes.upsert[0].endpoint, Some(addr("192.0.2.8:51820")));
    assert_eq!(changes.upsert[0].allowed_ips, None);
}

#[test]
fn preshared_keys_and_keepalives_can_be_turned_off() {
    let k = key();
    let mut t = tunnel(vec![peer("a", k, &["10.62.0.2/32"], None)]);
    t.peers[0].preshared_key = Some(SecretKey::new(Key::generate_preshared()));
    let device = device_of(&t, &HashMap::new());
    // device_of reports no preshared key: it must be set.
    let changes = plan(&t, Some(&device), &HashMap::new(), &HashMap::new());
    assert!(changes.upsert[0].preshared_key.is_some());

    let mut device = device;
    device.peers[0].preshared_key = t.peers[0].preshared_key.as_ref().map(|k| k.key().clone());
    let mut off = t.clone();
    off.peers[0].preshared_key = None;
    off.peers[0].persistent_keepalive = None;
    let changes = plan(&off, Some(&device), &HashMap::new(), &HashMap::new());
    assert_eq!(changes.upsert[0].preshared_key, Some(Key::zero()));
    assert_eq!(changes.upsert[0].persistent_keepalive, Some(0));
}
