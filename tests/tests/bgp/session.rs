//! Sessions with BIRD: routerd dialling and accepting, both families
//! exchanged (routerd's kernel table, BIRD's table, routerctl), and TCP
//! MD5 on both ends.

use std::time::{Duration, Instant};

use e2e::bird::PROTOCOL;

use crate::common::{
    BgpLab, BgpSpec, CONVERGE, PeerSpec, bgp_routes, bgp_status, expect_kernel_route_via, note,
    routerd_dialled, tools, wait_both_established, wait_peer, wait_peer_established,
};

/// One session, routerd `routerd_passive` or BIRD passive; checks both
/// directions of both families.
fn exchange(routerd_passive: bool) {
    let lab = BgpLab::new().unwrap();
    let spec = BgpSpec::new(vec![PeerSpec::bird().with(|p| p.passive = routerd_passive)]);
    let routerd = lab.start_routerd(&spec).unwrap();
    let bird = lab
        .bird_config()
        .with(|c| c.passive = !routerd_passive)
        .start(&lab.peer)
        .unwrap();
    let status = wait_both_established(&bird, &routerd, "bird").unwrap();
    assert_eq!(status.address, "10.53.0.60");
    // Who dialled: routerd holds a connection to port 179 only if it did.
    assert_eq!(
        routerd_dialled(&lab.router).unwrap(),
        !routerd_passive,
        "{}",
        lab.router
            .run("ss", &["-tn", "state", "established"])
            .unwrap_or_default()
    );

    // BIRD's prefixes in routerd's kernel table.
    expect_kernel_route_via(&lab.router, "10.70.1.0/24", "10.53.0.60").unwrap();
    expect_kernel_route_via(&lab.router, "fd70:1::/64", "fd53::3c").unwrap();

    // routerd's networks in BIRD's table, with routerd's AS path.
    let v4 = bird.wait_learned("10.61.1.0/24", CONVERGE).unwrap();
    assert_eq!(v4.as_path, "65001", "{v4:?}");
    assert_eq!(v4.via.as_deref(), Some("10.53.0.53"), "{v4:?}");
    let v6 = bird.wait_learned("fd61:1::/64", CONVERGE).unwrap();
    assert_eq!(v6.as_path, "65001", "{v6:?}");
    note(&format!(
        "BIRD learned fd61:1::/64 with next hop {}",
        v6.next_hop
    ));
    let v6_via = v6.via.clone().unwrap_or_default();
    assert!(
        v6_via == "fd53::35" || v6_via.starts_with("fe80:"),
        "{v6:?}"
    );

    // routerctl: status and the Loc-RIB.
    let status = bgp_status(&routerd).unwrap();
    assert_eq!(status.asn, 65001, "{}", status.raw);
    assert_eq!(status.router_id, "10.53.0.53", "{}", status.raw);
    let peer = status.peer("bird").unwrap();
    assert_eq!(peer.state, "Established");
    assert!(peer.last_error.is_none(), "{}", status.raw);
    assert_eq!(peer.prefixes_received, 2, "{}", status.raw);
    assert_eq!(peer.prefixes_accepted, 2, "{}", status.raw);
    // routerd recounts what it advertised at most once a second.
    wait_peer(
        &routerd,
        "bird",
        "to count 2 prefixes advertised",
        CONVERGE,
        |p| p.prefixes_advertised == 2,
    )
    .unwrap();
    let table = routerd.routerctl(&["bgp"]).unwrap();
    assert!(table.success, "{table}");
    assert!(
        table.stdout.contains("bird") && table.stdout.contains("Established"),
        "{table}"
    );

    let routes = bgp_routes(&routerd, None).unwrap();
    let find = |prefix: &str| {
        routes
            .iter()
            .find(|(p, _)| p == prefix)
            .map(|(_, c)| c.clone())
            .unwrap_or_else(|| panic!("no {prefix} in routerctl bgp routes: {routes:?}"))
    };
    let learned = find("10.70.1.0/24");
    assert_eq!(learned.len(), 1, "{learned:?}");
    assert_eq!(learned[0].peer.as_deref(), Some("bird"));
    assert_eq!(learned[0].next_hop, "10.53.0.60");
    assert_eq!(learned[0].as_path, "65002");
    assert_eq!(learned[0].standing, "best");
    let own = find("10.61.1.0/24");
    assert!(own.iter().any(|c| c.peer.is_none()), "{own:?}");
    find("fd70:1::/64");
    // With a prefix: only that one.
    let one = bgp_routes(&routerd, Some("10.70.1.0/24")).unwrap();
    assert_eq!(one.len(), 1, "{one:?}");
    assert_eq!(one[0].0, "10.70.1.0/24");
}

#[test]
fn session_with_bird_routerd_active() {
    if !e2e::require(&tools()) {
        return;
    }
    exchange(false);
}

#[test]
fn session_with_bird_routerd_passive() {
    if !e2e::require(&tools()) {
        return;
    }
    exchange(true);
}

#[test]
fn md5_on_both_ends() {
    if !e2e::require(&tools()) {
        return;
    }
    let lab = BgpLab::new().unwrap();
    let password = "s3cret md5 key";
    let file = lab.secret_file("md5-bird", password).unwrap();
    let spec = BgpSpec::new(vec![
        PeerSpec::bird().with(|p| p.md5_password_file = Some(file)),
    ]);
    let routerd = lab.start_routerd(&spec).unwrap();
    let bird = lab
        .bird_config()
        .with(|c| c.password = Some(password.to_string()))
        .start(&lab.peer)
        .unwrap();
    wait_both_established(&bird, &routerd, "bird").unwrap();
    expect_kernel_route_via(&lab.router, "10.70.1.0/24", "10.53.0.60").unwrap();
    bird.wait_learned("10.61.1.0/24", CONVERGE).unwrap();
}

#[test]
fn md5_mismatch_never_establishes() {
    if !e2e::require(&tools()) {
        return;
    }
    let lab = BgpLab::new().unwrap();
    let file = lab.secret_file("md5-bird", "the right key").unwrap();
    let spec = BgpSpec::new(vec![
        PeerSpec::bird().with(|p| p.md5_password_file = Some(file)),
    ]);
    let routerd = lab.start_routerd(&spec).unwrap();
    let bird = lab
        .bird_config()
        .with(|c| c.password = Some("the wrong key".to_string()))
        .start(&lab.peer)
        .unwrap();
    // Both sides dial every 2 s; for 10 s neither may get anywhere.
    let start = Instant::now();
    let mut states = std::collections::BTreeSet::new();
    while start.elapsed() < Duration::from_secs(10) {
        let b = bird.bgp_state(PROTOCOL).unwrap();
        assert_ne!(
            b,
            "Established",
            "{}",
            bird.protocol_info(PROTOCOL).unwrap()
        );
        let status = bgp_status(&routerd).unwrap();
        let r = status.peer("bird").unwrap();
        assert_ne!(r.state, "Established", "{}", status.raw);
        states.insert(format!("bird {b}, routerd {}", r.state));
        std::thread::sleep(Duration::from_millis(500));
    }
    note(&format!("MD5 mismatch states seen: {states:?}"));
    assert!(
        crate::common::kernel_routes(&lab.router)
            .unwrap()
            .is_empty(),
        "{}",
        crate::common::kernel_dump(&lab.router)
    );
    // The right key on BIRD's side: the session comes up (the mismatch,
    // not something else, kept it down).
    let config = lab
        .bird_config()
        .with(|c| c.password = Some("the right key".to_string()));
    bird.reconfigure(&config).unwrap();
    // BIRD restarts the protocol when the password changes; if it only
    // says "Reconfigured", a restart makes sure.
    let _ = bird.birdc(&["restart", PROTOCOL]);
    bird.wait_established(crate::common::UP).unwrap();
    wait_peer_established(&routerd, "bird").unwrap();
}

#[test]
fn gtsm_on_both_ends_and_refused_from_a_speaker_without_it() {
    if !e2e::require(&tools()) {
        return;
    }
    let lab = BgpLab::new().unwrap();
    let spec = BgpSpec::new(vec![PeerSpec::bird().with(|p| p.gtsm = true)]);
    let routerd = lab.start_routerd(&spec).unwrap();
    // BIRD without TTL security sends its direct eBGP packets with TTL 1:
    // routerd, asking for 255, must never see them.
    let bird = lab.bird_config().start(&lab.peer).unwrap();
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(6) {
        let status = bgp_status(&routerd).unwrap();
        let r = status.peer("bird").unwrap();
        assert_ne!(r.state, "Established", "{}", status.raw);
        std::thread::sleep(Duration::from_millis(500));
    }
    // With `ttl security on` BIRD sends TTL 255 and asks for it too.
    let config = lab.bird_config().with(|c| c.ttl_security = true);
    bird.reconfigure(&config).unwrap();
    let _ = bird.birdc(&["restart", PROTOCOL]);
    wait_both_established(&bird, &routerd, "bird").unwrap();
    expect_kernel_route_via(&lab.router, "10.70.1.0/24", "10.53.0.60").unwrap();
}
