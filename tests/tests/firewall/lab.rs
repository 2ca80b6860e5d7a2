//! Tests of the zones lab itself, with no firewall (routerd is not
//! started; the router's zone addresses are added by hand): whatever the
//! firewall tests see later is then the firewall's doing.

use std::net::{IpAddr, SocketAddr};

use e2e::traffic::{self, Probe, Verdict, expect_all};
use e2e::zones_lab::{CAMERA, WAN_HOST, WAN_ROUTER, Zone, ZonesLab};

/// Tools the lab needs (besides `ip`, and the e2e-traffic helper that
/// cargo builds with the tests).
pub const LAB_TOOLS: &[&str] = &["ping", "sysctl"];

/// A port no rule of homelab.toml names.
const PORT: u16 = 8080;

fn v4(zone: Zone) -> IpAddr {
    IpAddr::V4(zone.host_v4())
}

fn v6(zone: Zone) -> IpAddr {
    IpAddr::V6(zone.host_v6().expect("a VLAN zone"))
}

#[test]
fn lab_zone_hosts_reach_each_other_through_the_router() {
    if !e2e::require(LAB_TOOLS) {
        return;
    }
    let lab = ZonesLab::new().unwrap();
    lab.add_router_addresses_for_smoke_test().unwrap();
    let _tcp: Vec<_> = Zone::LAN
        .iter()
        .map(|z| traffic::tcp_listen(lab.host(*z), z.name(), &[PORT]).unwrap())
        .collect();
    let _udp: Vec<_> = Zone::LAN
        .iter()
        .map(|z| traffic::udp_echo(lab.host(*z), z.name(), &z.host_addrs(), PORT).unwrap())
        .collect();

    let mut cases = Vec::new();
    for from in Zone::LAN {
        let host = lab.host(from);
        // Its gateway, which routerd will own.
        let gw4 = IpAddr::V4(from.router_v4());
        let gw6 = IpAddr::V6(from.router_v6().unwrap());
        cases.push((host, Probe::Ping(gw4), Verdict::Accepted));
        cases.push((host, Probe::Ping(gw6), Verdict::Accepted));
        for to in Zone::LAN.into_iter().filter(|z| *z != from) {
            for addr in [v4(to), v6(to)] {
                cases.push((host, Probe::Ping(addr), Verdict::Accepted));
                cases.push((
                    host,
                    Probe::Tcp(SocketAddr::new(addr, PORT)),
                    Verdict::Accepted,
                ));
                cases.push((
                    host,
                    Probe::Udp(SocketAddr::new(addr, PORT)),
                    Verdict::Accepted,
                ));
            }
        }
    }
    // The camera's address answers too, from its own address.
    let camera = SocketAddr::new(IpAddr::V4(CAMERA), PORT);
    cases.push((
        lab.host(Zone::Trusted),
        Probe::Tcp(camera),
        Verdict::Accepted,
    ));
    cases.push((
        lab.host(Zone::Trusted),
        Probe::Udp(camera),
        Verdict::Accepted,
    ));
    expect_all(&cases)
        .map_err(|e| e.context(lab.router_addresses()))
        .unwrap();

    // No NAT between zones: the server sees the client's own address, and
    // the greeting (data from the server) comes back on the connection.
    for to in [Zone::Servers, Zone::Iot] {
        for addr in [v4(to), v6(to)] {
            let x = traffic::tcp_greeting(lab.host(Zone::Trusted), SocketAddr::new(addr, PORT))
                .unwrap();
            assert_eq!(x.verdict, Verdict::Accepted, "{x:?}");
            let seen = x.seen.expect("a greeting");
            assert_eq!(seen.label, to.name());
            let client = if addr.is_ipv4() {
                v4(Zone::Trusted)
            } else {
                v6(Zone::Trusted)
            };
            assert_eq!(seen.peer.ip(), client);
        }
    }
    let x = traffic::udp_request(lab.host(Zone::Guests), camera).unwrap();
    assert_eq!(x.seen.map(|s| s.peer.ip()), Some(v4(Zone::Guests)));

    // The router's addresses were added without `nodad`, as routerd adds
    // them: the lab's DAD setting made them usable at once.
    let tentative = lab
        .router()
        .run("ip", &["-6", "address", "show", "tentative"])
        .unwrap();
    assert!(tentative.trim().is_empty(), "tentative: {tentative}");
}

#[test]
fn lab_wan_host_has_no_route_to_the_zones() {
    if !e2e::require(LAB_TOOLS) {
        return;
    }
    let lab = ZonesLab::new().unwrap();
    lab.add_router_addresses_for_smoke_test().unwrap();
    let wan = lab.host(Zone::Wan);
    let _listeners: Vec<_> = Zone::ALL
        .iter()
        .map(|z| traffic::tcp_listen(lab.host(*z), z.name(), &[PORT]).unwrap())
        .collect();

    for zone in Zone::LAN {
        let route = wan.exec("ip", &["route", "get", &zone.host_v4().to_string()]);
        assert!(
            !route.unwrap().status.success(),
            "wan has a route to {zone:?}"
        );
    }
    let mut cases = Vec::new();
    for zone in Zone::LAN {
        for addr in [v4(zone), v6(zone)] {
            // No route: the attempt fails at once, without a packet sent.
            cases.push((wan, Probe::Ping(addr), Verdict::Rejected));
            cases.push((
                wan,
                Probe::Tcp(SocketAddr::new(addr, PORT)),
                Verdict::Rejected,
            ));
        }
    }
    // The router's own wan address is on the link.
    cases.push((wan, Probe::Ping(IpAddr::V4(WAN_ROUTER)), Verdict::Accepted));
    cases.push((
        lab.router(),
        Probe::Ping(IpAddr::V4(WAN_HOST)),
        Verdict::Accepted,
    ));
    // A zone's SYN reaches the wan host, whose answer has no way back:
    // only masquerade will make the internet reachable.
    let to_wan = SocketAddr::new(IpAddr::V4(WAN_HOST), PORT);
    cases.push((lab.host(Zone::Admin), Probe::Tcp(to_wan), Verdict::Dropped));
    expect_all(&cases).unwrap();
}

#[test]
fn lab_namespaces_are_removed_on_drop() {
    if !e2e::require(LAB_TOOLS) {
        return;
    }
    let lab = ZonesLab::new().unwrap();
    let mut names: Vec<String> = Zone::ALL.iter().map(|z| lab.host(*z).ns.clone()).collect();
    names.push(lab.router().ns.clone());
    let mut listener = traffic::tcp_listen(lab.host(Zone::Iot), "iot", &[PORT]).unwrap();
    for ns in &names {
        assert!(
            std::path::Path::new("/run/netns").join(ns).exists(),
            "{ns} missing"
        );
    }
    drop(lab);
    for ns in &names {
        assert!(
            !std::path::Path::new("/run/netns").join(ns).exists(),
            "{ns} left behind"
        );
    }
    // Processes in the namespaces went with them.
    e2e::wait_until(
        std::time::Duration::from_secs(2),
        "the listener to die",
        || (!listener.daemon.is_running()).then_some(()),
    )
    .unwrap();
}

/// A hand-written ruleset in the router: the probes must tell a reject
/// (of every kind nftables sends) from a drop, for TCP, UDP and ping over
/// both families, or the firewall tests could not tell "reject" policies
/// from "drop" ones.
#[test]
fn lab_probes_tell_rejected_from_dropped() {
    if !e2e::require(&["ping", "sysctl", "nft"]) {
        return;
    }
    let lab = ZonesLab::new().unwrap();
    lab.add_router_addresses_for_smoke_test().unwrap();
    let _listeners: Vec<_> = Zone::LAN
        .iter()
        .flat_map(|z| {
            let host = lab.host(*z);
            [
                traffic::tcp_listen(host, z.name(), &[PORT, PORT + 1]).unwrap(),
                traffic::udp_echo(host, z.name(), &z.host_addrs(), PORT).unwrap(),
            ]
        })
        .collect();
    let ruleset = lab.dir().join("probe-test.nft");
    std::fs::write(
        &ruleset,
        r#"table inet probe_test {
    chain forward {
        type filter hook forward priority filter; policy accept;
        iifname "eth0.30" reject
        iifname "eth0.40" drop
        iifname "eth0.20" tcp dport 8080 reject with tcp reset
        iifname "eth0.20" reject with icmpx admin-prohibited
    }
}
"#,
    )
    .unwrap();
    lab.router()
        .run("nft", &["-f", &ruleset.to_string_lossy()])
        .unwrap();

    let (admin, trusted, guests, iot) = (
        lab.host(Zone::Admin),
        lab.host(Zone::Trusted),
        lab.host(Zone::Guests),
        lab.host(Zone::Iot),
    );
    let mut cases = Vec::new();
    for addr in [v4(Zone::Servers), v6(Zone::Servers)] {
        let tcp = Probe::Tcp(SocketAddr::new(addr, PORT));
        let tcp2 = Probe::Tcp(SocketAddr::new(addr, PORT + 1));
        let udp = Probe::Udp(SocketAddr::new(addr, PORT));
        let ping = Probe::Ping(addr);
        for probe in [tcp, tcp2, udp, ping] {
            cases.push((admin, probe, Verdict::Accepted));
            // ICMP port unreachable.
            cases.push((guests, probe, Verdict::Rejected));
            cases.push((iot, probe, Verdict::Dropped));
            // A TCP reset (tcp), administratively prohibited (the rest).
            cases.push((trusted, probe, Verdict::Rejected));
        }
    }
    expect_all(&cases).unwrap();
}
