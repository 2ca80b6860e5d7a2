//! End-to-end WireGuard suite (issue 5): three sites in namespaces, each
//! with a LAN behind it, joined across a namespace that plays the
//! internet; routerd at each site brings the tunnels up with the userspace
//! backend (wireguard-go). See `e2e::wg_lab` for the topology.
//!
//! Needs root, the lab DNS tools (NSD, dig, ldns), `ping`, and for the
//! tunnel tests wireguard-go, `wg`, iperf3, routerd and routerctl; skipped
//! otherwise unless REQUIRE_E2E=1.
//!
//! The `lab_*` tests check the lab without routerd (so they pass before
//! routerd's WireGuard does): the sites reach only their own LANs, a site
//! can move, and wireguard-go set up by hand carries the LANs (with its
//! throughput as a reference). The rest run routerd at the sites: the
//! mesh and its status against `wg show`, staleness of a stopped site,
//! peers added and removed by reload under a running stream, an endpoint
//! that follows its DNS name, key-file modes in `routerd check`.
//!
//! Throughput figures are written to stderr (visible without
//! `--nocapture`): `wireguard: iperf3 ... Mbit/s`.
//!
//! routerd and routerctl are not built by `cargo test -p e2e`: run
//! `cargo build -p router` first (or set ROUTERD_BIN and ROUTERCTL_BIN).

// Test harness: a failed unwrap is a failed test, with the message we want.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::io::Write as _;
use std::net::IpAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use e2e::traffic::{self, Probe, Verdict};
use e2e::wg_lab::{
    self, A, B, C, LAB_TOOLS, PeerSpec, SITE_B_MOVED, SITES, TUNNEL_TOOLS, TunnelSpec, WgLab,
    WgStatus, dns_name, genkey, lan_host, lan_net, lan_router, listen_port, pubkey, router_v4,
    site_name, tunnel_addr, unix_now, wg_status, write_secret,
};
use e2e::{Query, Routerd, wait_until};

/// How long tunnels get to come up after routerd starts.
const UP: Duration = Duration::from_secs(15);

/// Counters may move between reading `wg show` and routerd's status (a
/// keepalive or two, a handshake): this much slack, in bytes.
const COUNTER_SLACK: u64 = 4096;

fn tunnel_tools() -> Vec<&'static str> {
    [LAB_TOOLS, TUNNEL_TOOLS].concat()
}

/// Writes to the real stderr, so the line shows even when the harness
/// captures the output of a passing test.
fn note(text: &str) {
    let _ = writeln!(std::io::stderr(), "wireguard: {text}");
}

fn sorted(items: &[String]) -> BTreeSet<String> {
    items.iter().cloned().collect()
}

/// Waits until routerd's status says `peer` of `site`'s tunnel has
/// `verdict`; returns that status.
fn wait_for_verdict(
    lab: &WgLab,
    routerd: &Routerd,
    site: usize,
    peer: &str,
    verdict: &str,
    deadline: Duration,
) -> WgStatus {
    let iface = &lab.site(site).interface;
    let mut last = None;
    let found = wait_until(deadline, &format!("peer {peer} to be {verdict}"), || {
        let status = wg_status(routerd);
        let seen = status
            .as_ref()
            .ok()
            .and_then(|s| s.tunnel(iface).ok())
            .and_then(|t| t.peer(peer).ok())
            .map(|p| p.verdict == verdict);
        let result = (seen == Some(true))
            .then(|| status.as_ref().ok().cloned())
            .flatten();
        last = Some(status.map_err(|e| format!("{e:#}")));
        result
    });
    match found {
        Ok(status) => status,
        Err(e) => panic!("{e}; last status: {last:#?}"),
    }
}

/// `wg show IFACE latest-handshakes` on the site's router: the time of
/// the peer's latest handshake (0 for never).
fn latest_handshake(lab: &WgLab, site: usize, public_key: &str) -> u64 {
    let s = lab.site(site);
    let text = s
        .router
        .run("wg", &["show", &s.interface, "latest-handshakes"])
        .unwrap();
    text.lines()
        .filter_map(|l| l.split_once('\t'))
        .find(|(key, _)| *key == public_key)
        .map(|(_, t)| t.trim().parse().unwrap())
        .unwrap_or_else(|| panic!("no peer {public_key} in latest-handshakes:\n{text}"))
}

/// The peer's latest handshake once it has not changed for 3 s (the first
/// seconds of a tunnel may see both sides' handshakes cross).
fn settled_handshake(lab: &WgLab, site: usize, public_key: &str) -> u64 {
    let mut seen = (0, Instant::now());
    wait_until(Duration::from_secs(15), "the handshake to settle", || {
        let t = latest_handshake(lab, site, public_key);
        if t != seen.0 {
            seen = (t, Instant::now());
            return None;
        }
        (t != 0 && seen.1.elapsed() >= Duration::from_secs(3)).then_some(t)
    })
    .unwrap()
}

#[test]
fn lab_sites_reach_only_their_own_lan() {
    if !e2e::require(LAB_TOOLS) {
        return;
    }
    let lab = WgLab::new().unwrap();
    let mut cases = Vec::new();
    for site in 0..SITES {
        let s = lab.site(site);
        // The LAN host reaches its router; the routers reach each other
        // over the internet.
        let gateway = IpAddr::V4(lan_router(site));
        cases.push((&s.lan, Probe::Ping(gateway), Verdict::Accepted));
        for other in (0..SITES).filter(|o| *o != site) {
            let peer = IpAddr::V4(router_v4(other));
            cases.push((&s.router, Probe::Ping(peer), Verdict::Accepted));
        }
    }
    traffic::expect_all(&cases).unwrap();
    // Without tunnels no LAN reaches another LAN, nor the internet (the
    // routers have no route back to the LANs).
    let mut probes = Vec::new();
    for from in 0..SITES {
        let lan = &lab.site(from).lan;
        for to in (0..SITES).filter(|t| *t != from) {
            probes.push((lan, Probe::Ping(IpAddr::V4(lan_host(to)))));
            probes.push((lan, Probe::Ping(IpAddr::V4(router_v4(to)))));
        }
    }
    let verdicts = traffic::check_all(&probes).unwrap();
    for ((host, probe), verdict) in probes.iter().zip(verdicts) {
        assert_ne!(verdict, Verdict::Accepted, "{} -> {probe}", host.name);
    }
    // The site names resolve in the lab DNS, with short TTLs.
    let leaf = lab.dns.addr(e2e::Server::Leaf);
    let asker = &lab.site(A).router;
    for site in 0..SITES {
        let answer = asker
            .dig(leaf, &Query::new(&dns_name(site), "A").norecurse())
            .unwrap();
        assert_eq!(answer.status, "NOERROR", "{}", dns_name(site));
        let a: Vec<_> = answer.answer.iter().filter(|r| r.rtype == "A").collect();
        assert_eq!(a.len(), 1, "{answer:?}");
        assert_eq!(a[0].data, router_v4(site).to_string());
        assert!(a[0].ttl <= 2, "TTL {} of {}", a[0].ttl, dns_name(site));
    }
}

#[test]
fn lab_moves_a_site() {
    if !e2e::require(LAB_TOOLS) {
        return;
    }
    let mut lab = WgLab::new().unwrap();
    lab.move_site(B, SITE_B_MOVED).unwrap();
    let leaf = lab.dns.addr(e2e::Server::Leaf);
    let router_a = &lab.site(A).router;
    let answer = router_a
        .dig(leaf, &Query::new(&dns_name(B), "A").norecurse())
        .unwrap();
    let a: Vec<_> = answer.answer.iter().map(|r| r.data.clone()).collect();
    assert_eq!(a, [SITE_B_MOVED.to_string()], "{answer:?}");
    traffic::expect_all(&[
        (
            router_a,
            Probe::Ping(IpAddr::V4(SITE_B_MOVED)),
            Verdict::Accepted,
        ),
        (
            router_a,
            Probe::Ping(IpAddr::V4(router_v4(B))),
            Verdict::Dropped,
        ),
    ])
    .unwrap();
}

/// The lab carries WireGuard without routerd: wireguard-go and `wg` set
/// up by hand in a full mesh. Also the reference figure for wireguard-go
/// alone, to compare with routerd's tunnels.
#[test]
fn lab_wireguard_go_by_hand() {
    if !e2e::require(&[LAB_TOOLS, &["wireguard-go", "wg", "iperf3"]].concat()) {
        return;
    }
    let lab = WgLab::with_keys_from(wg_lab::wg_keypair).unwrap();
    let _daemons: Vec<_> = (0..SITES)
        .map(|site| {
            lab.start_by_hand(site, &lab.mesh_tunnel(site).unwrap())
                .unwrap()
        })
        .collect();
    lab.wait_mesh_reachable(UP).unwrap();
    let report = iperf3_a_to_b(&lab);
    note(&format!(
        "iperf3 LAN a -> LAN b through wireguard-go set up by hand: {:.0} Mbit/s",
        report.mbit_per_second()
    ));
    // A rate-limited stream in the background, as the reload test runs it.
    let server = lab.iperf3_server(C).unwrap();
    let report = lab
        .spawn_iperf3(A, C, 3, Some("50M"))
        .unwrap()
        .wait()
        .unwrap();
    drop(server);
    assert_eq!(report.error, None, "{report:?}");
    assert_eq!(report.intervals.len(), 3, "{report:?}");
    assert!(report.intervals.iter().all(|(_, b)| *b > 0), "{report:?}");
    let dump = lab.wg_dump(A).unwrap();
    assert_eq!(dump.public_key, lab.site(A).key().unwrap().public_key);
    assert_eq!(dump.listen_port, listen_port(A));
    for to in [B, C] {
        let key = &lab.site(to).key().unwrap().public_key;
        let peer = dump.peer(key).unwrap();
        let endpoint = format!("{}:{}", router_v4(to), listen_port(to));
        assert_eq!(peer.endpoint.as_deref(), Some(endpoint.as_str()));
        assert_eq!(
            sorted(&peer.allowed_ips),
            sorted(&[format!("{}/32", tunnel_addr(to)), lan_net(to)])
        );
        assert!(peer.rx_bytes > 0 && peer.tx_bytes > 0, "{peer:?}");
        assert_eq!(peer.persistent_keepalive, Some(1));
        assert_eq!(latest_handshake(&lab, A, key), peer.latest_handshake);
        assert!(peer.latest_handshake + 10 >= unix_now(), "{peer:?}");
    }
    assert!(lab.ifindex(A).unwrap() > 1);
}

#[test]
fn routerctl_wg_keys_agree_with_wg() {
    if !e2e::require(&["wg", "routerctl", "routerd"]) {
        return;
    }
    let first = genkey().unwrap();
    let second = genkey().unwrap();
    assert_ne!(first, second, "genkey printed the same key twice");
    let public = pubkey(&first).unwrap();
    let mut wg = std::process::Command::new("wg")
        .arg("pubkey")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(wg.stdin.take().unwrap(), "{first}").unwrap();
    let out = wg.wait_with_output().unwrap();
    assert!(out.status.success());
    assert_eq!(public, String::from_utf8_lossy(&out.stdout).trim());
}

#[test]
fn three_sites_mesh() {
    if !e2e::require(&tunnel_tools()) {
        return;
    }
    let lab = WgLab::with_keys().unwrap();
    // Site a lets routerd choose the backend: the kernel's WireGuard when
    // it has one, else wireguard-go.
    let mut auto = lab.routerd_config(A, &lab.mesh_tunnel(A).unwrap());
    auto.extra_toml = auto
        .extra_toml
        .replace("backend = \"userspace\"", "backend = \"auto\"");
    assert!(auto.extra_toml.contains("backend = \"auto\""));
    let mut routerds = vec![auto.start(&lab.site(A).router).unwrap()];
    for site in [B, C] {
        routerds.push(
            lab.start_site(site, &lab.mesh_tunnel(site).unwrap())
                .unwrap(),
        );
    }

    // Every LAN reaches every other through the tunnels.
    lab.wait_mesh_reachable(UP).unwrap();

    // TCP through a tunnel, and the reference figure for wireguard-go.
    let report = iperf3_a_to_b(&lab);
    note(&format!(
        "iperf3 LAN a -> LAN b through wireguard-go: {:.0} Mbit/s ({} bytes received in 3 s, {} retransmits)",
        report.mbit_per_second(),
        report.received_bytes,
        report
            .retransmits
            .map_or_else(|| "?".to_string(), |r| r.to_string()),
    ));

    // routerd's status against `wg show`, on site a. routerd reads the
    // device when asked; once the stream's last bytes are in only
    // keepalives flow, and as counters only grow, routerd's must lie
    // between two dumps taken around it (give or take a few keepalives).
    std::thread::sleep(Duration::from_millis(2500));
    let site_a = lab.site(A);
    let iface = &site_a.interface;
    let before = lab.wg_dump(A).unwrap();
    let status = wg_status(&routerds[A]).unwrap();
    let after = lab.wg_dump(A).unwrap();
    let now = unix_now();
    let tunnel = status.tunnel(iface).unwrap();
    // Asking for a kernel WireGuard link loads the module when there is one.
    let kernel_has_wireguard = Path::new("/sys/module/wireguard").exists();
    let expected = if kernel_has_wireguard {
        "kernel"
    } else {
        "userspace"
    };
    assert_eq!(tunnel.backend, expected, "auto chose wrongly");
    assert_eq!(tunnel.error, None);
    assert_eq!(tunnel.public_key, site_a.key().unwrap().public_key);
    assert_eq!(tunnel.public_key, after.public_key);
    assert_eq!(tunnel.listen_port, Some(u64::from(listen_port(A))));
    assert_eq!(after.listen_port, listen_port(A));
    assert_eq!(tunnel.addresses, [format!("{}/24", tunnel_addr(A))]);
    assert_eq!(tunnel.mtu, Some(u64::from(wg_lab::MTU)));
    assert_eq!(tunnel.routes, "table");
    assert_eq!(tunnel.peers.len(), 2, "{tunnel:#?}");
    assert_eq!(after.peers.len(), 2, "{after:#?}");
    for to in [B, C] {
        let key = &lab.site(to).key().unwrap().public_key;
        let p = tunnel.peer(&site_name(to)).unwrap();
        let (d0, d1) = (before.peer(key).unwrap(), after.peer(key).unwrap());
        let what = format!("peer {}: status {p:#?}\nwg show: {d1:#?}", p.name);
        assert_eq!(&p.public_key, key, "{what}");
        assert_eq!(
            p.configured_endpoint.as_deref(),
            Some(format!("{}:{}", dns_name(to), listen_port(to)).as_str()),
            "{what}"
        );
        assert_eq!(
            p.endpoint.as_deref(),
            Some(format!("{}:{}", router_v4(to), listen_port(to)).as_str()),
            "{what}"
        );
        assert_eq!(p.endpoint, d1.endpoint, "{what}");
        let expected = sorted(&[format!("{}/32", tunnel_addr(to)), lan_net(to)]);
        assert_eq!(sorted(&p.allowed_ips), expected, "{what}");
        assert_eq!(sorted(&d1.allowed_ips), expected, "{what}");
        assert!(
            d0.rx_bytes.saturating_sub(COUNTER_SLACK) <= p.rx_bytes
                && p.rx_bytes <= d1.rx_bytes + COUNTER_SLACK,
            "rx_bytes {} not within wg show's {}..{}: {what}",
            p.rx_bytes,
            d0.rx_bytes,
            d1.rx_bytes
        );
        assert!(
            d0.tx_bytes.saturating_sub(COUNTER_SLACK) <= p.tx_bytes
                && p.tx_bytes <= d1.tx_bytes + COUNTER_SLACK,
            "tx_bytes {} not within wg show's {}..{}: {what}",
            p.tx_bytes,
            d0.tx_bytes,
            d1.tx_bytes
        );
        assert!(d0.rx_bytes > 0 && d0.tx_bytes > 0, "{what}");
        assert!(d1.latest_handshake > 0, "no handshake in wg show: {what}");
        let ago = p
            .latest_handshake_secs_ago
            .unwrap_or_else(|| panic!("no handshake in the status: {what}"));
        // Between the two dumps' handshakes, a second or two either way.
        let newest = now.saturating_sub(d1.latest_handshake);
        let oldest = now.saturating_sub(d0.latest_handshake);
        assert!(
            ago + 3 >= newest && ago <= oldest + 3,
            "latest_handshake_secs_ago {ago}, wg show says {newest}..{oldest} s ago: {what}"
        );
        assert_eq!(p.persistent_keepalive, Some(1), "{what}");
        assert_eq!(d1.persistent_keepalive, Some(1), "{what}");
        assert_eq!(p.verdict, "up", "{what}");
    }

    // routerd's routes to the other LANs, in its table.
    let routes = lab.tunnel_routes(A).unwrap();
    for to in [B, C] {
        let net = lan_net(to);
        let found = routes.lines().any(|l| {
            let words: Vec<&str> = l.split_whitespace().collect();
            words.first() == Some(&net.as_str())
                && words.windows(2).any(|w| w == ["dev", iface.as_str()])
        });
        assert!(
            found,
            "no route for {net} dev {iface} in table {}:\n{routes}",
            wg_lab::ROUTE_TABLE
        );
    }

    // Site c goes away: site a sees it stale, site b stays up.
    let mut c = routerds.pop().unwrap();
    assert_eq!(c.host.name, site_name(C));
    c.signal("TERM").unwrap();
    wait_until(
        Duration::from_secs(5),
        "routerd on site-c to exit on SIGTERM",
        || (!c.daemon.is_running()).then_some(()),
    )
    .unwrap();
    assert!(
        !lab.interface_exists(C),
        "routerd on site-c left {} behind after SIGTERM",
        lab.site(C).interface
    );
    drop(c);
    let a = &routerds[A];
    let status = wait_for_verdict(&lab, a, A, &site_name(C), "stale", Duration::from_secs(10));
    let tunnel = status.tunnel(iface).unwrap();
    assert_eq!(
        tunnel.peer(&site_name(B)).unwrap().verdict,
        "up",
        "{tunnel:#?}"
    );
    let table = a.routerctl(&["wg"]).unwrap();
    assert!(table.success, "{table}");
    let line = |peer: &str| {
        table
            .stdout
            .lines()
            .find(|l| l.contains(peer))
            .unwrap_or_else(|| panic!("no line for {peer} in routerctl wg:\n{table}"))
            .to_string()
    };
    assert!(line("site-c").contains("stale"), "{table}");
    let b_line = line("site-b");
    assert!(
        b_line.contains("up") && !b_line.contains("stale"),
        "{table}"
    );
    for r in &mut routerds {
        r.check_running().unwrap();
    }
}

#[test]
fn reload_adds_and_removes_peers_without_disturbing_others() {
    if !e2e::require(&tunnel_tools()) {
        return;
    }
    let lab = WgLab::with_keys().unwrap();
    let old = PeerSpec {
        name: "old".to_string(),
        public_key: pubkey(&genkey().unwrap()).unwrap(),
        endpoint: None,
        allowed_ips: vec!["10.62.0.99/32".to_string()],
        persistent_keepalive: None,
        preshared_key_file: None,
    };
    let first = lab
        .tunnel(A, vec![lab.mesh_peer(B).unwrap(), old.clone()])
        .unwrap();
    let _b = lab.start_site(B, &lab.mesh_tunnel(B).unwrap()).unwrap();
    let _c = lab.start_site(C, &lab.mesh_tunnel(C).unwrap()).unwrap();
    let mut a = lab.start_site(A, &first).unwrap();
    lab.wait_lan_reachable(A, B, UP).unwrap();
    assert_ne!(lab.ping_lan(A, C).unwrap(), Verdict::Accepted);
    let dump = lab.wg_dump(A).unwrap();
    assert!(dump.peer(&old.public_key).is_some(), "{dump:#?}");

    let key_b = lab.site(B).key().unwrap().public_key.clone();
    let key_c = lab.site(C).key().unwrap().public_key.clone();
    let handshake_b = settled_handshake(&lab, A, &key_b);
    let ifindex = lab.ifindex(A).unwrap();

    // A long stream LAN a -> LAN b; the reload happens in its middle.
    let _server = lab.iperf3_server(B).unwrap();
    let mut stream = lab.spawn_iperf3(A, B, 12, Some("100M")).unwrap();
    std::thread::sleep(Duration::from_secs(4));
    let second = lab
        .tunnel(
            A,
            vec![lab.mesh_peer(B).unwrap(), lab.mesh_peer(C).unwrap()],
        )
        .unwrap();
    a.rewrite_config(&lab.routerd_config(A, &second)).unwrap();
    let reload = a.routerctl(&["reload"]).unwrap();
    assert!(reload.success, "routerctl reload: {reload}");
    assert!(
        stream.daemon.is_running(),
        "the stream ended before the reload was done: the test proves nothing"
    );
    let report = stream.wait().unwrap();
    assert_eq!(report.error, None, "{report:?}");
    assert!(report.intervals.len() >= 10, "{report:?}");
    let stalls: Vec<_> = report
        .intervals
        .iter()
        .enumerate()
        .filter(|(_, (seconds, bytes))| *seconds >= 0.5 && *bytes == 0)
        .collect();
    assert!(
        stalls.is_empty(),
        "the stream through site-b stalled across the reload: intervals {stalls:?} of {report:?}"
    );
    note(&format!(
        "stream across the reload: {:.0} Mbit/s, per-second bytes {:?}",
        report.mbit_per_second(),
        report.intervals.iter().map(|i| i.1).collect::<Vec<_>>()
    ));

    // The new peer works, the old one is gone, site-b's session and the
    // interface itself were left alone.
    lab.wait_lan_reachable(A, C, UP).unwrap();
    let dump = lab.wg_dump(A).unwrap();
    let keys: BTreeSet<_> = dump.peers.iter().map(|p| p.public_key.clone()).collect();
    assert_eq!(keys, BTreeSet::from([key_b.clone(), key_c]), "{dump:#?}");
    assert_eq!(
        latest_handshake(&lab, A, &key_b),
        handshake_b,
        "site-b's session was renegotiated across the reload"
    );
    assert_eq!(
        lab.ifindex(A).unwrap(),
        ifindex,
        "the interface was recreated"
    );
    let status = wg_status(&a).unwrap();
    let names: BTreeSet<_> = status
        .tunnel(&lab.site(A).interface)
        .unwrap()
        .peers
        .iter()
        .map(|p| p.name.clone())
        .collect();
    assert_eq!(
        names,
        BTreeSet::from([site_name(B), site_name(C)]),
        "{status:#?}"
    );
    a.check_running().unwrap();
}

#[test]
fn endpoint_follows_dns() {
    if !e2e::require(&tunnel_tools()) {
        return;
    }
    let mut lab = WgLab::with_keys().unwrap();
    // Site b does not dial a (no endpoint, no keepalive), so only site a
    // can restore the tunnel at once when b moves: by following DNS.
    let a_at_b = PeerSpec {
        endpoint: None,
        persistent_keepalive: None,
        ..lab.mesh_peer(A).unwrap()
    };
    let _b = lab
        .start_site(B, &lab.tunnel(B, vec![a_at_b]).unwrap())
        .unwrap();
    let a = lab
        .start_site(A, &lab.tunnel(A, vec![lab.mesh_peer(B).unwrap()]).unwrap())
        .unwrap();
    lab.wait_lan_reachable(A, B, UP).unwrap();
    let iface = lab.site(A).interface.clone();
    let endpoint = |status: &WgStatus| {
        status
            .tunnel(&iface)
            .unwrap()
            .peer(&site_name(B))
            .unwrap()
            .endpoint
            .clone()
    };
    let first = format!("{}:{}", router_v4(B), listen_port(B));
    assert_eq!(endpoint(&wg_status(&a).unwrap()), Some(first));

    // The deadline must beat WireGuard's own recovery: site b, having
    // sent (ping replies) without hearing back, starts a handshake of its
    // own after 15 s (keepalive timeout + rekey timeout) from its new
    // address, and roaming then fixes site a whatever routerd does. With
    // a 1 s TTL routerd follows the name within a second or two (one
    // failed lookup costs it a 5 s retry).
    lab.move_site(B, SITE_B_MOVED).unwrap();
    let moved = format!("{SITE_B_MOVED}:{}", listen_port(B));
    lab.wait_lan_reachable(A, B, Duration::from_secs(10))
        .unwrap_or_else(|e| {
            let status = wg_status(&a).map(|s| format!("{s:#?}"));
            panic!("{e:#}\nsite a's status: {status:?}")
        });
    let status = wg_status(&a).unwrap();
    assert_eq!(endpoint(&status), Some(moved.clone()), "{status:#?}");
    let key_b = lab.site(B).key().unwrap().public_key.clone();
    let dump = lab.wg_dump(A).unwrap();
    assert_eq!(
        dump.peer(&key_b).unwrap().endpoint,
        Some(moved),
        "{dump:#?}"
    );
    let p = status.tunnel(&iface).unwrap().peer(&site_name(B)).unwrap();
    assert_eq!(
        p.configured_endpoint.as_deref(),
        Some(format!("{}:{}", dns_name(B), listen_port(B)).as_str())
    );
}

/// A private dir for tests that need no lab, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("e2e-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("e2e: files kept in {}", self.0.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// `routerd check --config PATH`, bounded (no namespace needed: check
/// binds nothing).
fn routerd_check(config: &Path) -> std::process::Output {
    let routerd = e2e::routerd::binary().unwrap();
    std::process::Command::new("timeout")
        .arg("10")
        .arg(routerd)
        .args(["check", "--config"])
        .arg(config)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap()
}

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

#[test]
fn loose_key_file_is_refused() {
    if !e2e::require(&["routerd", "routerctl", "timeout"]) {
        return;
    }
    let dir = TempDir::new("wgcheck");
    let key_file = dir.0.join("site.key");
    write_secret(&key_file, &genkey().unwrap()).unwrap();
    let psk_file = dir.0.join("site-b.psk");
    write_secret(&psk_file, &genkey().unwrap()).unwrap();
    let tunnel = TunnelSpec {
        interface: "wgcheck0".to_string(),
        private_key_file: key_file.clone(),
        listen_port: Some(51820),
        addresses: vec!["10.62.0.1/24".to_string()],
        mtu: None,
        routes: None,
        stale_after: None,
        peers: vec![PeerSpec {
            name: "site-b".to_string(),
            public_key: pubkey(&genkey().unwrap()).unwrap(),
            endpoint: Some(format!("{}:51820", lan_host(B))),
            allowed_ips: vec![lan_net(B)],
            persistent_keepalive: None,
            preshared_key_file: Some(psk_file.clone()),
        }],
    };
    let config = e2e::RouterdConfig {
        policies_dir: None,
        control_socket: Some(dir.0.join("ctl.sock")),
        extra_toml: wg_lab::wireguard_toml(&[tunnel]),
        ..e2e::zones_lab::routerd_config(PathBuf::new())
    };
    let path = dir.0.join("routerd.toml");
    std::fs::write(&path, config.to_toml(&dir.0.join("ctl.sock"))).unwrap();
    let show = |out: &std::process::Output| {
        format!(
            "{}\n--- stdout ---\n{}--- stderr ---\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    };

    // Mode 0600: accepted, so what fails below is the mode alone.
    let out = routerd_check(&path);
    assert!(out.status.success(), "0600 key files: {}", show(&out));

    for file in [&key_file, &psk_file] {
        chmod(file, 0o644);
        let out = routerd_check(&path);
        assert!(
            !out.status.success(),
            "{} with mode 0644 was accepted: {}",
            file.display(),
            show(&out)
        );
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            text.contains(&*file.to_string_lossy()),
            "the error does not name {}: {}",
            file.display(),
            show(&out)
        );
        chmod(file, 0o600);
    }
}

/// A 3 s iperf3 run from LAN a to LAN b, which must move data.
fn iperf3_a_to_b(lab: &WgLab) -> wg_lab::IperfReport {
    let server = lab.iperf3_server(B).unwrap();
    let report = lab.iperf3(A, B, 3).unwrap();
    drop(server);
    assert_eq!(report.error, None, "{report:?}");
    assert!(report.received_bytes > 0, "{report:?}");
    report
}

#[test]
fn removing_a_tunnel_removes_its_interface_and_routes_and_nothing_else() {
    if !e2e::require(&tunnel_tools()) {
        return;
    }
    let lab = WgLab::with_keys().unwrap();
    let metrics_at: std::net::SocketAddr = format!("{}:9153", router_v4(A)).parse().unwrap();
    let mut config = lab.routerd_config(A, &lab.mesh_tunnel(A).unwrap());
    config.metrics_listen = Some(metrics_at);
    let mut a = config.start(&lab.site(A).router).unwrap();
    let _b = lab.start_site(B, &lab.mesh_tunnel(B).unwrap()).unwrap();
    lab.wait_lan_reachable(A, B, UP).unwrap();

    // Per-peer metrics while the tunnel runs (sampled once a second).
    let probe = env!("CARGO_BIN_EXE_e2e-probe");
    let iface = lab.site(A).interface.clone();
    let series = format!(
        "router_wireguard_peer_up{{tunnel=\"{iface}\",peer=\"{}\"}} 1",
        site_name(B)
    );
    let mut page = String::new();
    let seen = wait_until(
        Duration::from_secs(5),
        "the peer to show up in /metrics",
        || {
            let out = lab
                .site(A)
                .router
                .exec(probe, &["http-get", &metrics_at.to_string(), "/metrics"])
                .ok()?;
            page = String::from_utf8_lossy(&out.stdout).into_owned();
            page.contains(&series).then_some(())
        },
    );
    assert!(seen.is_ok(), "no {series} in\n{page}");
    assert!(
        page.contains("router_wireguard_peer_receive_bytes_total{"),
        "{page}"
    );
    assert!(
        page.contains("router_wireguard_peer_handshake_age_seconds{"),
        "{page}"
    );

    let router = &lab.site(A).router;
    let links_before = router.run("ip", &["-o", "link", "show"]).unwrap();
    let main_before = router
        .run("ip", &["-4", "route", "show", "table", "main"])
        .unwrap();
    assert!(lab.tunnel_routes(A).unwrap().contains(&lan_net(B)));

    // The same configuration without [wireguard] tunnels.
    let mut without = config.clone();
    without.extra_toml = String::new();
    a.rewrite_config(&without).unwrap();
    let reload = a.routerctl(&["reload"]).unwrap();
    assert!(reload.success, "{reload}");
    assert!(
        !lab.interface_exists(A),
        "the tunnel interface is still there"
    );
    assert_eq!(
        lab.tunnel_routes(A).unwrap().trim(),
        "",
        "tunnel routes left behind"
    );
    // Everything else as it was: the other links, and the main table
    // minus the tunnel's own connected route.
    let links_after = router.run("ip", &["-o", "link", "show"]).unwrap();
    let names = |text: &str| -> BTreeSet<String> {
        text.lines()
            .filter_map(|l| {
                l.split(':')
                    .nth(1)
                    .map(|n| n.trim().split('@').next().unwrap_or("").to_string())
            })
            .collect()
    };
    let mut expected = names(&links_before);
    expected.remove(&iface);
    assert_eq!(names(&links_after), expected);
    let main_after = router
        .run("ip", &["-4", "route", "show", "table", "main"])
        .unwrap();
    let kept: Vec<&str> = main_before
        .lines()
        .filter(|l| !l.contains(&iface))
        .collect();
    assert_eq!(main_after.lines().collect::<Vec<_>>(), kept);
    let status = a.routerctl(&["wg", "--json"]).unwrap();
    assert!(status.stdout.contains("\"tunnels\": []"), "{status}");
    a.check_running().unwrap();
}
