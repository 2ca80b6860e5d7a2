//! Routes leaving routerd's kernel table: a withdrawn prefix, a peer gone
//! silent (hold timer), and a peer that stops cleanly.

use std::time::{Duration, Instant};

use e2e::bird::STATIC4;
use e2e::wait_until;

use crate::common::{
    BgpLab, BgpSpec, CONVERGE, HOLD_TIME, PeerSpec, bgp_status, expect_kernel_route_via,
    kernel_dump, kernel_routes, note, tools, wait_both_established, wait_kernel_route, wait_peer,
};

#[test]
fn withdrawal_and_session_loss_remove_kernel_routes() {
    if !e2e::require(&tools()) {
        return;
    }
    let lab = BgpLab::new().unwrap();
    let routerd = lab
        .start_routerd(&BgpSpec::new(vec![PeerSpec::bird()]))
        .unwrap();
    let two = lab
        .bird_config()
        .with(|c| c.routes4 = vec!["10.70.1.0/24".to_string(), "10.70.2.0/24".to_string()]);
    let bird = two.start(&lab.peer).unwrap();
    wait_both_established(&bird, &routerd, "bird").unwrap();
    expect_kernel_route_via(&lab.router, "10.70.1.0/24", "10.53.0.60").unwrap();
    expect_kernel_route_via(&lab.router, "10.70.2.0/24", "10.53.0.60").unwrap();
    expect_kernel_route_via(&lab.router, "fd70:1::/64", "fd53::3c").unwrap();

    // One static route removed from BIRD's config: withdrawn.
    bird.reconfigure(&two.clone().with(|c| c.routes4.truncate(1)))
        .unwrap();
    wait_kernel_route(&lab.router, "10.70.2.0/24", false, CONVERGE).unwrap();
    assert!(
        kernel_routes(&lab.router)
            .unwrap()
            .iter()
            .any(|r| r.prefix == "10.70.1.0/24"),
        "{}",
        kernel_dump(&lab.router)
    );

    // The whole IPv4 static protocol disabled: its route goes, IPv6 stays.
    bird.disable(STATIC4).unwrap();
    wait_kernel_route(&lab.router, "10.70.1.0/24", false, CONVERGE).unwrap();
    let kernel = kernel_routes(&lab.router).unwrap();
    assert!(
        kernel.iter().any(|r| r.prefix == "fd70:1::/64"),
        "{}",
        kernel_dump(&lab.router)
    );
    assert_eq!(
        bgp_status(&routerd).unwrap().peer("bird").unwrap().state,
        "Established"
    );
    bird.enable(STATIC4).unwrap();
    wait_kernel_route(&lab.router, "10.70.1.0/24", true, CONVERGE).unwrap();

    // BIRD goes silent (its link down: no FIN, no NOTIFICATION): the
    // routes go when routerd's hold timer expires, not before.
    lab.peer
        .run("ip", &["link", "set", "eth0", "down"])
        .unwrap();
    let down = Instant::now();
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        !kernel_routes(&lab.router).unwrap().is_empty(),
        "routes gone 2 s after the peer went silent, before any hold timer\n{}",
        kernel_dump(&lab.router)
    );
    let hold = Duration::from_secs(u64::from(HOLD_TIME));
    wait_until(
        hold + Duration::from_secs(4),
        "every BGP route to go",
        || kernel_routes(&lab.router).ok()?.is_empty().then_some(()),
    )
    .unwrap_or_else(|e| panic!("{e:#}\n{}", kernel_dump(&lab.router)));
    note(&format!(
        "routes gone {:.1} s after the peer went silent (hold time {HOLD_TIME} s)",
        down.elapsed().as_secs_f64()
    ));
    let peer = bgp_status(&routerd).unwrap().peer("bird").unwrap().clone();
    assert_ne!(peer.state, "Established", "{peer:?}");
    note(&format!("routerd's last error: {:?}", peer.last_error));
    assert!(
        peer.last_error
            .as_deref()
            .is_some_and(|e| e.to_lowercase().contains("hold")),
        "{peer:?}"
    );
}

#[test]
fn a_stopped_peer_takes_its_routes_at_once() {
    if !e2e::require(&tools()) {
        return;
    }
    let lab = BgpLab::new().unwrap();
    let routerd = lab
        .start_routerd(&BgpSpec::new(vec![PeerSpec::bird()]))
        .unwrap();
    let mut bird = lab.bird_config().start(&lab.peer).unwrap();
    wait_both_established(&bird, &routerd, "bird").unwrap();
    expect_kernel_route_via(&lab.router, "10.70.1.0/24", "10.53.0.60").unwrap();
    expect_kernel_route_via(&lab.router, "fd70:1::/64", "fd53::3c").unwrap();

    // SIGTERM: BIRD closes the session with a Cease; routerd must not wait
    // for its hold timer.
    let stopped = Instant::now();
    bird.stop();
    wait_until(Duration::from_secs(4), "every BGP route to go", || {
        kernel_routes(&lab.router).ok()?.is_empty().then_some(())
    })
    .unwrap_or_else(|e| panic!("{e:#}\n{}", kernel_dump(&lab.router)));
    note(&format!(
        "routes gone {:.1} s after BIRD stopped",
        stopped.elapsed().as_secs_f64()
    ));
    let peer = wait_peer(&routerd, "bird", "to leave Established", CONVERGE, |p| {
        p.state != "Established"
    })
    .unwrap();
    note(&format!("routerd's last error: {:?}", peer.last_error));
}
