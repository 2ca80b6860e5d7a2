//! The lab without routerd: BIRD on the router host plays routerd's part
//! (AS 65001, 10.61.1.0/24 and fd61:1::/64), so the BIRD helper, TCP MD5
//! in namespaces and IPv6 over an IPv4 session are known to work before
//! routerd's speaker is tested against them.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use e2e::bird::{BIRD_ASN, BirdConfig, PROTOCOL, STATIC4};
use e2e::{Lab, wait_until};

use crate::common::{CONVERGE, PEER_V4, ROUTERD_ASN, RawPeer, UP, bird_tools, routerd_dialled};

/// BIRD on "router" as routerd would be: AS 65001, routerd's networks.
fn stand_in(router: &e2e::Host, peer: &e2e::Host) -> BirdConfig {
    BirdConfig::new(router, IpAddr::V4(peer.v4), BIRD_ASN).with(|c| {
        c.asn = ROUTERD_ASN;
        c.routes4 = vec!["10.61.1.0/24".to_string()];
        c.routes6 = vec!["fd61:1::/64".to_string()];
    })
}

#[test]
fn lab_two_birds_exchange_both_families_with_md5() {
    if !e2e::require(&bird_tools()) {
        return;
    }
    let lab = Lab::new().unwrap();
    let router = lab.add_host("router", e2e::addr::ROUTER).unwrap();
    let peer = lab.add_host("bird", PEER_V4).unwrap();
    let password = Some("lab secret".to_string());
    let a = stand_in(&router, &peer)
        .with(|c| {
            c.password.clone_from(&password);
            c.passive = true;
        })
        .start(&router)
        .unwrap();
    let b = BirdConfig::new(&peer, IpAddr::V4(router.v4), ROUTERD_ASN)
        .with(|c| c.password = password)
        .start(&peer)
        .unwrap();
    a.wait_established(UP).unwrap();
    b.wait_established(UP).unwrap();
    // "router" is passive: the connection came from the peer.
    assert!(!routerd_dialled(&router).unwrap());

    let v4 = a.wait_learned("10.70.1.0/24", CONVERGE).unwrap();
    assert_eq!(v4.as_path, "65002");
    assert_eq!(v4.via.as_deref(), Some("10.53.0.60"));
    let v6 = a.wait_learned("fd70:1::/64", CONVERGE).unwrap();
    assert_eq!(v6.as_path, "65002");
    // BIRD's IPv6 next hop over the IPv4 session: the interface's global
    // address, followed by its link-local one.
    assert!(v6.next_hop.starts_with("fd53::3c"), "{v6:?}");
    assert_eq!(v6.via.as_deref(), Some("fd53::3c"));
    let back = b.wait_learned("fd61:1::/64", CONVERGE).unwrap();
    assert_eq!(back.as_path, "65001");
    assert_eq!(back.via.as_deref(), Some("fd53::35"));

    // Withdrawal: the static protocol disabled, the route gone.
    b.disable(STATIC4).unwrap();
    wait_until(CONVERGE, "10.70.1.0/24 withdrawn", || {
        let learned = a.learned().ok()?;
        (!learned.iter().any(|r| r.prefix == "10.70.1.0/24")).then_some(())
    })
    .unwrap();
    assert!(
        a.learned()
            .unwrap()
            .iter()
            .any(|r| r.prefix == "fd70:1::/64")
    );
}

#[test]
fn lab_md5_mismatch_keeps_birds_apart() {
    if !e2e::require(&bird_tools()) {
        return;
    }
    let lab = Lab::new().unwrap();
    let router = lab.add_host("router", e2e::addr::ROUTER).unwrap();
    let peer = lab.add_host("bird", PEER_V4).unwrap();
    let a = stand_in(&router, &peer)
        .with(|c| c.password = Some("right".to_string()))
        .start(&router)
        .unwrap();
    let b = BirdConfig::new(&peer, IpAddr::V4(router.v4), ROUTERD_ASN)
        .with(|c| c.password = Some("wrong".to_string()))
        .start(&peer)
        .unwrap();
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(8) {
        for bird in [&a, &b] {
            let state = bird.bgp_state(PROTOCOL).unwrap();
            assert_ne!(
                state,
                "Established",
                "{}",
                bird.protocol_info(PROTOCOL).unwrap()
            );
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// The raw peer against BIRD, which implements RFC 7606 too: the bytes it
/// builds are right (the good UPDATE is learned) and its malformations are
/// the intended ones (BIRD withdraws on the bad ORIGIN and answers the /40
/// NLRI with 3/10).
#[test]
fn lab_raw_peer_speaks_to_bird() {
    if !e2e::require(&bird_tools()) {
        return;
    }
    let lab = Lab::new().unwrap();
    let router = lab.add_host("router", e2e::addr::ROUTER).unwrap();
    let peer = lab.add_host("bird", PEER_V4).unwrap();
    let bird = stand_in(&router, &peer)
        .with(|c| {
            c.passive = true;
            c.ipv6 = false;
        })
        .start(&router)
        .unwrap();
    let mut raw = RawPeer::start(&peer, router.v4);
    raw.wait_for("established", UP);
    bird.wait_established(UP).unwrap();
    raw.send("good 10.70.9.0/24");
    let route = bird.wait_learned("10.70.9.0/24", CONVERGE).unwrap();
    assert_eq!(route.as_path, "65002");
    raw.send("bad-origin 10.70.9.0/24");
    wait_until(CONVERGE, "BIRD to withdraw 10.70.9.0/24", || {
        let learned = bird.learned().ok()?;
        (!learned.iter().any(|r| r.prefix == "10.70.9.0/24")).then_some(())
    })
    .unwrap();
    assert_eq!(bird.bgp_state(PROTOCOL).unwrap(), "Established");
    raw.send("bad-nlri");
    let notification = raw.wait_for("recv NOTIFICATION", CONVERGE);
    assert!(
        notification.starts_with("recv NOTIFICATION 3/10"),
        "{}",
        raw.output()
    );
    raw.wait_for("closed", CONVERGE);
}
