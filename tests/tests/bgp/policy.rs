//! Policies: an import prefix list that filters one of BIRD's prefixes,
//! an export list that keeps one of routerd's networks home, and
//! max-prefix tearing the session down.

use std::time::{Duration, Instant};

use e2e::bird::PROTOCOL;
use e2e::wait_until;

use crate::common::{
    BgpLab, BgpSpec, CONVERGE, PeerSpec, UP, bgp_routes, bgp_status, expect_kernel_route_via,
    kernel_dump, kernel_routes, note, tools, wait_both_established, wait_peer,
};

#[test]
fn import_policy_filters_a_prefix() {
    if !e2e::require(&tools()) {
        return;
    }
    let lab = BgpLab::new().unwrap();
    let spec = BgpSpec::new(vec![PeerSpec::bird().with(|p| {
        p.import = Some(vec![
            "permit 10.70.1.0/24".to_string(),
            "permit fd70::/16 le 64".to_string(),
        ]);
        p.export = Some(vec![
            "permit 10.61.1.0/24".to_string(),
            "permit fd61::/16 le 64".to_string(),
        ]);
    })])
    .with(|b| b.networks.push("10.61.2.0/24".to_string()));
    let routerd = lab.start_routerd(&spec).unwrap();
    let bird = lab
        .bird_config()
        .with(|c| c.routes4 = vec!["10.70.1.0/24".to_string(), "10.70.2.0/24".to_string()])
        .start(&lab.peer)
        .unwrap();
    wait_both_established(&bird, &routerd, "bird").unwrap();
    expect_kernel_route_via(&lab.router, "10.70.1.0/24", "10.53.0.60").unwrap();
    expect_kernel_route_via(&lab.router, "fd70:1::/64", "fd53::3c").unwrap();
    // Everything BIRD sent has arrived: 3 received, 2 accepted.
    let peer = wait_peer(
        &routerd,
        "bird",
        "to have received 3 prefixes",
        CONVERGE,
        |p| p.prefixes_received >= 3,
    )
    .unwrap();
    assert_eq!(peer.prefixes_received, 3, "{peer:?}");
    assert_eq!(peer.prefixes_accepted, 2, "{peer:?}");
    let kernel = kernel_routes(&lab.router).unwrap();
    assert!(
        !kernel.iter().any(|r| r.prefix == "10.70.2.0/24"),
        "{}",
        kernel_dump(&lab.router)
    );
    let loc = bgp_routes(&routerd, Some("10.70.2.0/24")).unwrap();
    note(&format!("routerctl bgp routes 10.70.2.0/24: {loc:?}"));
    assert!(
        loc.iter()
            .flat_map(|(_, c)| c)
            .all(|c| c.standing != "best"),
        "{loc:?}"
    );

    // Export: 10.61.1.0/24 goes out, 10.61.2.0/24 stays home.
    bird.wait_learned("10.61.1.0/24", CONVERGE).unwrap();
    bird.wait_learned("fd61:1::/64", CONVERGE).unwrap();
    let learned = bird.learned().unwrap();
    assert!(
        !learned.iter().any(|r| r.prefix == "10.61.2.0/24"),
        "{learned:?}"
    );
    // routerd recounts what it advertised at most once a second.
    wait_peer(
        &routerd,
        "bird",
        "to count 2 prefixes advertised",
        CONVERGE,
        |p| p.prefixes_advertised == 2,
    )
    .unwrap();
}

#[test]
fn max_prefix_tears_the_session_down() {
    if !e2e::require(&tools()) {
        return;
    }
    const MAX: u32 = 3;
    let lab = BgpLab::new().unwrap();
    let spec = BgpSpec::new(vec![PeerSpec::bird().with(|p| p.max_prefixes = Some(MAX))]);
    let routerd = lab.start_routerd(&spec).unwrap();
    let routes4: Vec<String> = (1..=5).map(|i| format!("10.70.{i}.0/24")).collect();
    let bird = lab
        .bird_config()
        .with(|c| {
            c.routes4 = routes4;
            c.ipv6 = false;
        })
        .start(&lab.peer)
        .unwrap();
    // The session may come up and go down before a poll sees it: wait
    // for the error, not for Established.
    let peer = wait_peer(
        &routerd,
        "bird",
        "to report the maximum number of prefixes",
        UP,
        |p| {
            p.last_error
                .as_deref()
                .is_some_and(|e| e.contains("maximum number of prefixes"))
        },
    )
    .unwrap();
    note(&format!("routerd's last error: {:?}", peer.last_error));
    // Our decision, not the peer's: "sent cease: ..." in the status spec;
    // routerd words it "stopped: cease: ..." (a max-prefix trip stops the
    // session like an operator would, with no automatic restart).
    let error = peer.last_error.clone().unwrap_or_default();
    assert!(
        error.starts_with("sent cease") || error.starts_with("stopped: cease"),
        "{peer:?}"
    );

    // BIRD got the Cease (subcode 1).
    let bird_error = wait_until(UP, "BIRD to report the Cease", || {
        bird.last_error(PROTOCOL)
            .ok()
            .flatten()
            .filter(|e| e.contains("Maximum number of prefixes reached"))
    })
    .unwrap_or_else(|e| {
        panic!(
            "{e:#}\n{}",
            bird.protocol_info(PROTOCOL).unwrap_or_default()
        )
    });
    note(&format!("BIRD's last error: {bird_error}"));
    assert!(bird_error.starts_with("Received"), "{bird_error}");

    // Never more than MAX routes in the kernel, none once it is down.
    wait_until(CONVERGE, "the kernel to hold no BGP route", || {
        kernel_routes(&lab.router).ok()?.is_empty().then_some(())
    })
    .unwrap_or_else(|e| panic!("{e:#}\n{}", kernel_dump(&lab.router)));
    let start = Instant::now();
    let mut states = std::collections::BTreeSet::new();
    while start.elapsed() < Duration::from_secs(5) {
        let kernel = kernel_routes(&lab.router).unwrap();
        assert!(kernel.len() <= MAX as usize, "{}", kernel_dump(&lab.router));
        if let Ok(status) = bgp_status(&routerd) {
            states.insert(status.peer("bird").unwrap().state.clone());
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    note(&format!("routerd's states after the trip: {states:?}"));
}
