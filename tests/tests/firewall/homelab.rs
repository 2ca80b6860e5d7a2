//! The firewall of policies/examples/homelab.toml, checked from the hosts'
//! side: routerd runs in the zones lab with a copy of that file as its
//! policy directory, and every test probes what one part of the file says.
//!
//! NEEDS THE POLICY ENGINE: these tests fail until routerd reads
//! `[policies] dir`, configures the zones' addresses, loads the nftables
//! ruleset and answers `routerctl policy show`. That is expected.
//!
//! Every probe that should be refused or dropped has a listener behind it
//! (on all ports the test uses, on every address of the host), so a rule
//! that wrongly lets it through shows up as "accepted", not as the reset of
//! a closed port.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use e2e::traffic::{self, Listener, Probe, Verdict, expect_all};
use e2e::zones_lab::{CAMERA, NAS_V4, NAS_V6, WAN_HOST, WAN_ROUTER, Zone, ZonesLab};
use e2e::{Query, Routerd, RouterdConfig, wait_until};

/// Tools these tests need (besides `ip` and the e2e-traffic helper).
pub(crate) const TOOLS: &[&str] = &[
    "ping",
    "sysctl",
    "nft",
    "dig",
    "timeout",
    "routerd",
    "routerctl",
];

/// A port no rule names: the zone defaults decide.
pub(crate) const PLAIN: u16 = 8080;
/// A UDP port no rule names.
const PLAIN_UDP: u16 = 9999;
/// RTSP, which trusted may use on the cameras.
const RTSP: u16 = 554;
/// The `https` service.
const HTTPS: u16 = 443;
/// The `mqtt` service.
const MQTT: u16 = 1883;
/// The `ssh` service and the management port.
pub(crate) const SSH: u16 = 22;
/// The port forward `nas-https`: the router's 8443 to the NAS's 443.
const FORWARDED: u16 = 8443;

/// The local record routerd serves, and its address.
const PRINTER: &str = "printer.home.arpa";
const PRINTER_A: &str = "192.168.40.5";

/// routerd running homelab.toml, with listeners everywhere. Field order is
/// drop order: processes first, namespaces last.
pub(crate) struct Homelab {
    pub(crate) routerd: Routerd,
    _listeners: Vec<Listener>,
    pub(crate) lab: ZonesLab,
}

impl Homelab {
    pub(crate) fn host(&self, zone: Zone) -> &e2e::Host {
        self.lab.host(zone)
    }
}

pub(crate) fn tcp(addr: impl Into<IpAddr>, port: u16) -> Probe {
    Probe::Tcp(SocketAddr::new(addr.into(), port))
}

fn udp(addr: impl Into<IpAddr>, port: u16) -> Probe {
    Probe::Udp(SocketAddr::new(addr.into(), port))
}

pub(crate) fn ping(addr: impl Into<IpAddr>) -> Probe {
    Probe::Ping(addr.into())
}

fn v6(zone: Zone) -> IpAddr {
    IpAddr::V6(zone.host_v6().expect("a VLAN zone"))
}

fn router_v6(zone: Zone) -> IpAddr {
    IpAddr::V6(zone.router_v6().expect("a VLAN zone"))
}

/// routerd's config for the zones lab, with the printer as a local record.
fn config(policies_dir: PathBuf) -> RouterdConfig {
    e2e::zones_lab::routerd_config(policies_dir).local_record(PRINTER, "A", PRINTER_A, 300)
}

/// The lab, routerd with a copy of homelab.toml (once `routerctl policy
/// show` answers), and listeners: TCP on every host (labelled with the
/// zone, the NAS as "nas") on all the ports the tests use, UDP echo on
/// every address of every host, and on the router TCP ssh and [`PLAIN`].
pub(crate) fn homelab() -> Homelab {
    let lab = ZonesLab::new().unwrap();
    let policies = lab.install_homelab_policy().unwrap();

    let mut listeners = Vec::new();
    for zone in Zone::ALL {
        let host = lab.host(zone);
        let label = if zone == Zone::Servers {
            "nas"
        } else {
            zone.name()
        };
        let ports = [PLAIN, RTSP, HTTPS, MQTT, SSH];
        listeners.push(traffic::tcp_listen(host, label, &ports).unwrap());
        listeners.push(traffic::udp_echo(host, label, &zone.host_addrs(), PLAIN_UDP).unwrap());
    }
    // routerd runs no ssh server: this stands in for it.
    listeners.push(traffic::tcp_listen(lab.router(), "router", &[SSH, PLAIN]).unwrap());

    let routerd = config(policies).start(lab.router()).unwrap();
    let shown = wait_until(Duration::from_secs(10), "routerctl policy show", || {
        let ctl = routerd.routerctl(&["policy", "show"]).ok()?;
        ctl.success.then_some(ctl)
    });
    if let Err(e) = shown {
        let last = routerd.routerctl(&["policy", "show"]);
        panic!("{e:#}\nlast attempt: {last:?}");
    }
    Homelab {
        routerd,
        _listeners: listeners,
        lab,
    }
}

/// `dig NAME A` from `zone`'s host to `server`: the A records of the answer.
fn resolve(h: &Homelab, zone: Zone, server: IpAddr, name: &str) -> Vec<String> {
    let answer = h
        .host(zone)
        .dig(server, &Query::new(name, "A").timeout(2).tries(1))
        .unwrap();
    answer
        .answer
        .iter()
        .filter(|rr| rr.rtype == "A")
        .map(|rr| rr.data.clone())
        .collect()
}

#[test]
fn policy_loads_and_routerd_addresses_the_zones() {
    if !e2e::require(TOOLS) {
        return;
    }
    let mut h = homelab();
    h.routerd.check_running().unwrap();
    let addrs = h.lab.router_addresses();
    for zone in Zone::LAN {
        for addr in [
            format!("{}/24", zone.router_v4()),
            format!("{}/64", router_v6(zone)),
        ] {
            assert!(addrs.contains(&addr), "{addr} missing:\n{addrs}");
        }
    }
    let ruleset = h.lab.router().run("nft", &["list", "ruleset"]).unwrap();
    assert!(
        ruleset.contains("table inet router {") && ruleset.contains("chain forward {"),
        "routerd's table is not loaded:\n{ruleset}"
    );
}

#[test]
fn policy_admin_reaches_every_zone_the_router_and_wan() {
    if !e2e::require(TOOLS) {
        return;
    }
    let h = homelab();
    let admin = h.host(Zone::Admin);
    let mut cases = Vec::new();
    for to in [Zone::Trusted, Zone::Guests, Zone::Iot, Zone::Servers] {
        for addr in [IpAddr::V4(to.host_v4()), v6(to)] {
            cases.push((admin, tcp(addr, PLAIN), Verdict::Accepted));
            cases.push((admin, udp(addr, PLAIN_UDP), Verdict::Accepted));
            cases.push((admin, ping(addr), Verdict::Accepted));
        }
    }
    // Management: the router's ssh, over both families.
    cases.push((admin, tcp(Zone::Admin.router_v4(), SSH), Verdict::Accepted));
    cases.push((admin, tcp(router_v6(Zone::Admin), SSH), Verdict::Accepted));
    cases.push((
        admin,
        tcp(Zone::Admin.router_v4(), PLAIN),
        Verdict::Accepted,
    ));
    cases.push((admin, tcp(WAN_HOST, PLAIN), Verdict::Accepted));
    expect_all(&cases).unwrap();
}

#[test]
fn policy_trusted_reaches_servers_over_ipv4_and_ipv6() {
    if !e2e::require(TOOLS) {
        return;
    }
    let h = homelab();
    let trusted = h.host(Zone::Trusted);
    let nas6 = IpAddr::V6(NAS_V6);
    expect_all(&[
        (trusted, tcp(NAS_V4, PLAIN), Verdict::Accepted),
        (trusted, tcp(NAS_V4, HTTPS), Verdict::Accepted),
        (trusted, udp(NAS_V4, PLAIN_UDP), Verdict::Accepted),
        (trusted, ping(NAS_V4), Verdict::Accepted),
        (trusted, tcp(nas6, PLAIN), Verdict::Accepted),
        (trusted, udp(nas6, PLAIN_UDP), Verdict::Accepted),
        (trusted, ping(nas6), Verdict::Accepted),
    ])
    .unwrap();
}

#[test]
fn policy_trusted_reaches_cameras_only_on_their_services() {
    if !e2e::require(TOOLS) {
        return;
    }
    let h = homelab();
    let trusted = h.host(Zone::Trusted);
    let not_a_camera = Zone::Iot.host_v4();
    expect_all(&[
        (trusted, tcp(CAMERA, RTSP), Verdict::Accepted),
        (trusted, tcp(CAMERA, HTTPS), Verdict::Accepted),
        // No rule: trusted's forward default, reject.
        (trusted, tcp(CAMERA, PLAIN), Verdict::Rejected),
        (trusted, tcp(not_a_camera, RTSP), Verdict::Rejected),
        (trusted, tcp(v6(Zone::Iot), RTSP), Verdict::Rejected),
        (trusted, ping(not_a_camera), Verdict::Rejected),
    ])
    .unwrap();
}

#[test]
fn policy_trusted_is_rejected_by_zones_without_a_policy() {
    if !e2e::require(TOOLS) {
        return;
    }
    let h = homelab();
    let trusted = h.host(Zone::Trusted);
    let mut cases = Vec::new();
    for to in [Zone::Admin, Zone::Guests] {
        for addr in [IpAddr::V4(to.host_v4()), v6(to)] {
            cases.push((trusted, tcp(addr, PLAIN), Verdict::Rejected));
            cases.push((trusted, ping(addr), Verdict::Rejected));
        }
    }
    cases.push((
        trusted,
        udp(Zone::Guests.host_v4(), PLAIN_UDP),
        Verdict::Rejected,
    ));
    expect_all(&cases).unwrap();
}

#[test]
fn policy_trusted_ssh_to_router_accepted_other_ports_rejected() {
    if !e2e::require(TOOLS) {
        return;
    }
    let h = homelab();
    let trusted = h.host(Zone::Trusted);
    let gw = Zone::Trusted.router_v4();
    expect_all(&[
        (trusted, tcp(gw, SSH), Verdict::Accepted),
        (
            trusted,
            tcp(router_v6(Zone::Trusted), SSH),
            Verdict::Accepted,
        ),
        (trusted, ping(gw), Verdict::Accepted),
        (trusted, tcp(gw, PLAIN), Verdict::Rejected),
    ])
    .unwrap();
}

#[test]
fn policy_guests_to_servers_rejected_but_ping_accepted() {
    if !e2e::require(TOOLS) {
        return;
    }
    let h = homelab();
    let guests = h.host(Zone::Guests);
    let nas6 = IpAddr::V6(NAS_V6);
    expect_all(&[
        (guests, tcp(NAS_V4, HTTPS), Verdict::Rejected),
        (guests, tcp(NAS_V4, PLAIN), Verdict::Rejected),
        (guests, udp(NAS_V4, PLAIN_UDP), Verdict::Rejected),
        (guests, ping(NAS_V4), Verdict::Accepted),
        (guests, tcp(nas6, HTTPS), Verdict::Rejected),
        (guests, ping(nas6), Verdict::Accepted),
    ])
    .unwrap();
}

#[test]
fn policy_guests_ssh_to_router_rejected() {
    if !e2e::require(TOOLS) {
        return;
    }
    let h = homelab();
    let guests = h.host(Zone::Guests);
    let gw = Zone::Guests.router_v4();
    expect_all(&[
        (guests, tcp(gw, SSH), Verdict::Rejected),
        (guests, tcp(router_v6(Zone::Guests), SSH), Verdict::Rejected),
        (guests, tcp(gw, PLAIN), Verdict::Rejected),
        (guests, ping(gw), Verdict::Accepted),
    ])
    .unwrap();
    // dns-and-time: the router's resolver answers guests.
    assert_eq!(
        resolve(&h, Zone::Guests, IpAddr::V4(gw), PRINTER),
        [PRINTER_A]
    );
}

#[test]
fn policy_iot_is_dropped_everywhere_except_mqtt_dns_and_ping() {
    if !e2e::require(TOOLS) {
        return;
    }
    let h = homelab();
    let iot = h.host(Zone::Iot);
    let mut cases = Vec::new();
    for to in [Zone::Admin, Zone::Trusted, Zone::Guests, Zone::Servers] {
        for addr in [IpAddr::V4(to.host_v4()), v6(to)] {
            cases.push((iot, tcp(addr, PLAIN), Verdict::Dropped));
            cases.push((iot, ping(addr), Verdict::Dropped));
        }
        cases.push((iot, udp(to.host_v4(), PLAIN_UDP), Verdict::Dropped));
    }
    cases.push((iot, tcp(WAN_HOST, PLAIN), Verdict::Dropped));
    cases.push((iot, tcp(WAN_HOST, HTTPS), Verdict::Dropped));
    // To the router: input drop, except dns-and-time (which has ping).
    let gw = Zone::Iot.router_v4();
    cases.push((iot, tcp(gw, SSH), Verdict::Dropped));
    cases.push((iot, tcp(router_v6(Zone::Iot), SSH), Verdict::Dropped));
    cases.push((iot, ping(gw), Verdict::Accepted));
    // iot-reports-to-mqtt, to @nas only, over both families.
    cases.push((iot, tcp(NAS_V4, MQTT), Verdict::Accepted));
    cases.push((iot, tcp(NAS_V6, MQTT), Verdict::Accepted));
    cases.push((iot, tcp(NAS_V4, HTTPS), Verdict::Dropped));
    cases.push((iot, tcp(Zone::Trusted.host_v4(), MQTT), Verdict::Dropped));
    expect_all(&cases).unwrap();
}

#[test]
fn policy_iot_dns_to_router_answers() {
    if !e2e::require(TOOLS) {
        return;
    }
    let h = homelab();
    let gw = IpAddr::V4(Zone::Iot.router_v4());
    assert_eq!(resolve(&h, Zone::Iot, gw, PRINTER), [PRINTER_A]);
    assert_eq!(
        resolve(&h, Zone::Iot, router_v6(Zone::Iot), PRINTER),
        [PRINTER_A]
    );
}

#[test]
fn policy_iot_dns_to_any_server_is_intercepted() {
    if !e2e::require(TOOLS) {
        return;
    }
    let h = homelab();
    // The wan host runs no DNS server: only the router can answer.
    assert_eq!(
        resolve(&h, Zone::Iot, IpAddr::V4(WAN_HOST), PRINTER),
        [PRINTER_A]
    );
    // Only iot's DNS is intercepted: trusted asking wan gets no answer.
    let trusted = h
        .host(Zone::Trusted)
        .dig(
            IpAddr::V4(WAN_HOST),
            &Query::new(PRINTER, "A").timeout(1).tries(1),
        )
        .map(|a| a.answer.len())
        .unwrap_or(0);
    assert_eq!(trusted, 0);
}

#[test]
fn policy_zones_reach_wan_masqueraded() {
    if !e2e::require(TOOLS) {
        return;
    }
    let h = homelab();
    let wan = SocketAddr::new(IpAddr::V4(WAN_HOST), PLAIN);
    let wan_udp = SocketAddr::new(IpAddr::V4(WAN_HOST), PLAIN_UDP);
    for zone in [Zone::Admin, Zone::Trusted, Zone::Guests, Zone::Servers] {
        let x = traffic::tcp_greeting(h.host(zone), wan).unwrap();
        assert_eq!(x.verdict, Verdict::Accepted, "{zone:?} -> wan tcp: {x:?}");
        let seen = x.seen.expect("the wan listener's greeting");
        assert_eq!(seen.label, "wan");
        assert_eq!(seen.peer.ip(), IpAddr::V4(WAN_ROUTER), "{zone:?}");

        let x = traffic::udp_request(h.host(zone), wan_udp).unwrap();
        assert_eq!(x.verdict, Verdict::Accepted, "{zone:?} -> wan udp: {x:?}");
        let seen = x.seen.expect("the wan echo");
        assert_eq!(seen.peer.ip(), IpAddr::V4(WAN_ROUTER), "{zone:?}");
    }
}

#[test]
fn policy_wan_port_forward_reaches_the_nas() {
    if !e2e::require(TOOLS) {
        return;
    }
    let h = homelab();
    let wan = h.host(Zone::Wan);
    let x = traffic::tcp_greeting(wan, SocketAddr::new(IpAddr::V4(WAN_ROUTER), FORWARDED)).unwrap();
    assert_eq!(x.verdict, Verdict::Accepted, "{x:?}");
    let seen = x.seen.expect("the NAS's greeting");
    assert_eq!(seen.label, "nas");
    // A port forward rewrites the destination only.
    assert_eq!(seen.peer.ip(), IpAddr::V4(WAN_HOST));
}

#[test]
fn policy_wan_is_dropped() {
    if !e2e::require(TOOLS) {
        return;
    }
    let h = homelab();
    let wan = h.host(Zone::Wan);
    expect_all(&[
        (wan, tcp(WAN_ROUTER, SSH), Verdict::Dropped),
        (wan, tcp(WAN_ROUTER, PLAIN), Verdict::Dropped),
        (wan, tcp(WAN_ROUTER, HTTPS), Verdict::Dropped),
        (wan, udp(WAN_ROUTER, 53), Verdict::Dropped),
        (wan, ping(WAN_ROUTER), Verdict::Dropped),
    ])
    .unwrap();
}

#[test]
fn policy_replies_to_allowed_connections_return() {
    if !e2e::require(TOOLS) {
        return;
    }
    let h = homelab();
    let trusted = h.host(Zone::Trusted);
    // Data from the NAS back to trusted on the connection and as a UDP
    // reply: accepted as replies...
    for nas in [IpAddr::V4(NAS_V4), IpAddr::V6(NAS_V6)] {
        let x = traffic::tcp_greeting(trusted, SocketAddr::new(nas, PLAIN)).unwrap();
        let seen = x
            .seen
            .as_ref()
            .unwrap_or_else(|| panic!("no greeting from {nas}: {x:?}"));
        assert_eq!(seen.label, "nas");
        assert_eq!(seen.peer.ip().is_ipv4(), nas.is_ipv4());
        let x = traffic::udp_request(trusted, SocketAddr::new(nas, PLAIN_UDP)).unwrap();
        assert!(x.seen.is_some(), "no UDP reply from {nas}: {x:?}");
    }
    // ...though servers may not open connections to trusted.
    let servers = h.host(Zone::Servers);
    expect_all(&[
        (
            servers,
            tcp(Zone::Trusted.host_v4(), PLAIN),
            Verdict::Rejected,
        ),
        (
            servers,
            udp(Zone::Trusted.host_v4(), PLAIN_UDP),
            Verdict::Rejected,
        ),
    ])
    .unwrap();
}

#[test]
fn policy_servers_reach_wan_but_not_other_zones() {
    if !e2e::require(TOOLS) {
        return;
    }
    let h = homelab();
    let servers = h.host(Zone::Servers);
    let mut cases = vec![(servers, tcp(WAN_HOST, HTTPS), Verdict::Accepted)];
    for to in [Zone::Admin, Zone::Trusted, Zone::Guests, Zone::Iot] {
        cases.push((servers, tcp(to.host_v4(), PLAIN), Verdict::Rejected));
        cases.push((servers, tcp(v6(to), PLAIN), Verdict::Rejected));
    }
    cases.push((
        servers,
        tcp(Zone::Servers.router_v4(), SSH),
        Verdict::Rejected,
    ));
    expect_all(&cases).unwrap();
}
