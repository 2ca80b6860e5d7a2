//! RFC 7606 against a raw peer (`bgp_raw_peer`) that sends hand-built
//! UPDATEs: a bad ORIGIN is treat-as-withdraw (the session stays), an
//! NLRI claiming a /40 IPv4 prefix resets the session with NOTIFICATION
//! 3/10 (Invalid Network Field), and the daemon keeps serving DNS.

use std::time::Duration;

use e2e::Query;

use crate::common::{
    BgpLab, BgpSpec, CONVERGE, PeerSpec, RawPeer, UP, bgp_status, kernel_routes, note, tools,
    wait_kernel_route, wait_peer, wait_peer_established,
};

#[test]
fn malformed_updates_follow_rfc7606() {
    if !e2e::require(&tools()) {
        return;
    }
    let lab = BgpLab::new().unwrap();
    let spec = BgpSpec::new(vec![PeerSpec::bird().with(|p| {
        p.name = "raw".to_string();
        p.passive = true;
    })]);
    let mut routerd = lab.start_routerd(&spec).unwrap();
    e2e::process::wait_for_port(
        &lab.router,
        e2e::process::Proto::Tcp,
        179,
        Duration::from_secs(10),
    )
    .unwrap();
    let mut peer = RawPeer::start(&lab.peer, lab.router.v4);
    peer.wait_for("established", UP);
    wait_peer_established(&routerd, "raw").unwrap();

    // A good UPDATE: installed.
    peer.send("good 10.70.9.0/24");
    let route = wait_kernel_route(&lab.router, "10.70.9.0/24", true, CONVERGE)
        .unwrap()
        .unwrap();
    assert_eq!(route.via.as_deref(), Some("10.53.0.60"), "{route:?}");

    // ORIGIN 7: treat-as-withdraw. The route goes, the session stays.
    peer.send("bad-origin 10.70.9.0/24");
    wait_kernel_route(&lab.router, "10.70.9.0/24", false, CONVERGE).unwrap();
    // Two keepalive intervals later the session is still there.
    std::thread::sleep(Duration::from_secs(3));
    let out = peer.output();
    assert!(
        !out.contains("recv NOTIFICATION") && !out.contains("closed"),
        "bad ORIGIN must not reset the session (RFC 7606 treat-as-withdraw):\n{out}"
    );
    let status = bgp_status(&routerd).unwrap();
    assert_eq!(
        status.peer("raw").unwrap().state,
        "Established",
        "{}",
        status.raw
    );

    // The good one again, then an NLRI claiming /40: NOTIFICATION 3/10.
    peer.send("good 10.70.9.0/24");
    wait_kernel_route(&lab.router, "10.70.9.0/24", true, CONVERGE).unwrap();
    peer.send("bad-nlri");
    let notification = peer.wait_for("recv NOTIFICATION", CONVERGE);
    note(&format!("raw peer: {notification}"));
    assert!(
        notification.starts_with("recv NOTIFICATION 3/10"),
        "expected UPDATE Message Error / Invalid Network Field:\n{}",
        peer.output()
    );
    peer.wait_for("closed", CONVERGE);
    wait_kernel_route(&lab.router, "10.70.9.0/24", false, CONVERGE).unwrap();
    assert!(kernel_routes(&lab.router).unwrap().is_empty());
    let p = wait_peer(&routerd, "raw", "to leave Established", CONVERGE, |p| {
        p.state != "Established"
    })
    .unwrap();
    note(&format!("routerd's last error: {:?}", p.last_error));

    // The daemon is fine: it answers DNS.
    routerd.check_running().unwrap();
    let answer = lab
        .client
        .dig(routerd.addr(), &Query::new("www.plain.lab", "A"))
        .unwrap();
    assert_eq!(answer.status, "NOERROR", "{answer:?}");
    assert!(
        answer
            .answer
            .iter()
            .any(|r| r.rtype == "A" && r.data == e2e::dns_hierarchy::data::PLAIN_A),
        "{answer:?}"
    );
}
