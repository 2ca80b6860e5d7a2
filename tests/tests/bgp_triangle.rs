//! Three sites in a triangle of WireGuard links, each running routerd with
//! a BGP session over each link: when one link fails, traffic between the
//! two sites it joined takes the long way through the third site within
//! the hold time, and comes back when the link does. Needs root, and
//! wireguard-go, wg, nft and ping; skipped otherwise unless REQUIRE_E2E=1.
//!
//! Each link is its own tunnel interface with one peer allowing every
//! address (`routes = "bgp"`): BGP decides what goes where.

// Test harness: a failed unwrap is a failed test, with the message we want.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fmt::Write as _;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use e2e::traffic::Verdict;
use e2e::wg_lab::{
    self, A, B, C, PeerSpec, SITES, TunnelSpec, WgLab, genkey, lan_host, lan_net, letter, pubkey,
    router_v4, write_secret,
};
use e2e::{Routerd, wait_until};

/// Short, so that failover is quick to see: the session notices a dead
/// link within this many seconds.
const HOLD_TIME: u64 = 3;

/// The link between two sites, lower index first.
fn link_id(a: usize, b: usize) -> usize {
    let (low, high) = (a.min(b), a.max(b));
    low * SITES + high
}

/// The site's address on its link to `other`: 10.63.<link>.<1|2>/30.
fn link_addr(site: usize, other: usize) -> Ipv4Addr {
    let host = if site < other { 1 } else { 2 };
    Ipv4Addr::new(10, 63, link_id(site, other) as u8, host)
}

fn link_port(site: usize, other: usize) -> u16 {
    52_000 + (site * SITES + other) as u16
}

/// The tunnel interface of `site` toward `other`.
fn link_interface(lab: &WgLab, site: usize, other: usize) -> String {
    format!("{}{}", lab.site(site).interface, letter(other))
}

struct Triangle {
    lab: WgLab,
    routerds: Vec<Routerd>,
}

impl Triangle {
    fn start() -> Triangle {
        let lab = WgLab::new().unwrap();
        let dir = lab.wg_dir().unwrap();
        // A key pair per tunnel, by (site, other).
        let mut keys = std::collections::HashMap::new();
        for site in 0..SITES {
            for other in (0..SITES).filter(|o| *o != site) {
                let private = genkey().unwrap();
                let public = pubkey(&private).unwrap();
                let file = dir.join(format!("{}-{}.key", letter(site), letter(other)));
                write_secret(&file, &private).unwrap();
                keys.insert((site, other), (file, public));
            }
        }
        let mut routerds = Vec::new();
        for site in 0..SITES {
            let mut tunnels = Vec::new();
            let mut bgp = String::new();
            let others: Vec<usize> = (0..SITES).filter(|o| *o != site).collect();
            let listen: Vec<String> = others
                .iter()
                .map(|o| format!("\"{}\"", link_addr(site, *o)))
                .collect();
            let _ = write!(
                bgp,
                "\n[bgp]\nasn = {}\nrouter_id = \"{}\"\nlisten = [{}]\nhold_time = {HOLD_TIME}\nconnect_retry = \"1s\"\nnetworks = [\"{}\"]\n",
                65001 + site,
                router_v4(site),
                listen.join(", "),
                lan_net(site)
            );
            for &other in &others {
                let (file, _) = keys[&(site, other)].clone();
                let (_, their_public) = keys[&(other, site)].clone();
                tunnels.push(TunnelSpec {
                    interface: link_interface(&lab, site, other),
                    private_key_file: file,
                    listen_port: Some(link_port(site, other)),
                    addresses: vec![format!("{}/30", link_addr(site, other))],
                    mtu: Some(wg_lab::MTU),
                    routes: Some("bgp".to_string()),
                    stale_after: Some(wg_lab::STALE_AFTER.to_string()),
                    peers: vec![PeerSpec {
                        name: format!("site-{}", letter(other)),
                        public_key: their_public,
                        endpoint: Some(format!("{}:{}", router_v4(other), link_port(other, site))),
                        allowed_ips: vec!["0.0.0.0/0".to_string()],
                        persistent_keepalive: Some(1),
                        preshared_key_file: None,
                    }],
                });
                let _ = write!(
                    bgp,
                    "\n[[bgp.peers]]\nname = \"site-{}\"\naddress = \"{}\"\nremote_asn = {}\nimport = {{ prefixes = [\"permit 10.61.0.0/16 le 24\"] }}\nexport = {{ prefixes = [\"permit 10.61.0.0/16 le 24\"] }}\n",
                    letter(other),
                    link_addr(other, site),
                    65001 + other
                );
            }
            let mut config = lab.routerd_config(site, &tunnels[0]);
            config.extra_toml = format!("{}{bgp}", wg_lab::wireguard_toml(&tunnels));
            routerds.push(config.start(&lab.site(site).router).unwrap());
        }
        Triangle { lab, routerds }
    }

    /// The interface the kernel of `site` sends LAN `to`'s traffic out of.
    fn route_dev(&self, site: usize, to: usize) -> String {
        let out = self
            .lab
            .site(site)
            .router
            .run("ip", &["-4", "route", "get", &lan_host(to).to_string()])
            .unwrap_or_default();
        let words: Vec<&str> = out.split_whitespace().collect();
        words
            .windows(2)
            .find(|w| w[0] == "dev")
            .map(|w| w[1].to_string())
            .unwrap_or_default()
    }

    fn wait_route(&self, site: usize, to: usize, via: usize, deadline: Duration) {
        let want = link_interface(&self.lab, site, via);
        wait_until(
            deadline,
            &format!(
                "site {} to route LAN {} via {want}",
                letter(site),
                letter(to)
            ),
            || (self.route_dev(site, to) == want).then_some(()),
        )
        .unwrap_or_else(|e| {
            let bgp = self.routerds[site]
                .routerctl(&["bgp"])
                .map(|c| c.to_string());
            let routes = self.routerds[site]
                .routerctl(&["bgp", "routes"])
                .map(|c| c.to_string());
            panic!("{e:#}\n{bgp:?}\n{routes:?}")
        });
    }

    /// Drops the WireGuard packets between two sites' routers on the
    /// internet side, as a dead link would.
    fn cut(&self, a: usize, b: usize) {
        let rules = format!(
            "table inet cut {{ chain input {{ type filter hook input priority -10; ip saddr {} udp dport {} drop; }}; chain output {{ type filter hook output priority -10; ip daddr {} udp dport {} drop; }}; }}",
            router_v4(b),
            link_port(a, b),
            router_v4(b),
            link_port(b, a)
        );
        self.lab.site(a).router.run("nft", &[&rules]).unwrap();
    }

    fn heal(&self, a: usize) {
        self.lab
            .site(a)
            .router
            .run("nft", &["delete", "table", "inet", "cut"])
            .unwrap();
    }
}

#[test]
fn a_failed_link_reroutes_through_the_third_site_and_comes_back() {
    if !e2e::require(&[
        "wireguard-go",
        "wg",
        "nft",
        "ping",
        "routerd",
        "routerctl",
        "nsd",
    ]) {
        return;
    }
    let triangle = Triangle::start();
    let lab = &triangle.lab;
    // Every LAN reaches every other, each over its direct link.
    lab.wait_mesh_reachable(Duration::from_secs(20)).unwrap();
    for site in 0..SITES {
        for to in (0..SITES).filter(|t| *t != site) {
            triangle.wait_route(site, to, to, Duration::from_secs(10));
        }
    }
    let status = triangle.routerds[A].routerctl(&["bgp", "--json"]).unwrap();
    assert!(status.success, "{status}");
    assert_eq!(
        status.stdout.matches("\"Established\"").count(),
        2,
        "{status}"
    );

    // The link between a and b dies.
    let cut = Instant::now();
    triangle.cut(A, B);
    let deadline = Duration::from_secs(HOLD_TIME + 6);
    triangle.wait_route(A, B, C, deadline);
    triangle.wait_route(B, A, C, deadline);
    lab.wait_lan_reachable(A, B, Duration::from_secs(5))
        .unwrap();
    let rerouted = cut.elapsed();
    eprintln!(
        "bgp triangle: LAN a reaches LAN b through site c {:.1} s after the link died (hold time {HOLD_TIME} s)",
        rerouted.as_secs_f64()
    );
    assert!(
        rerouted <= Duration::from_secs(HOLD_TIME + 6),
        "rerouting took {rerouted:?}"
    );
    // The long way is the only candidate left, and the reason is visible.
    let routes = triangle.routerds[A]
        .routerctl(&["bgp", "routes", &lan_net(B)])
        .unwrap();
    assert!(routes.success, "{routes}");
    assert!(routes.stdout.contains("65003 65002"), "{routes}");
    // Traffic between a and c is untouched.
    assert_eq!(lab.ping_lan(A, C).unwrap(), Verdict::Accepted);

    // The link comes back: the direct path wins again.
    triangle.heal(A);
    triangle.wait_route(A, B, B, Duration::from_secs(20));
    triangle.wait_route(B, A, A, Duration::from_secs(20));
    lab.wait_lan_reachable(A, B, Duration::from_secs(5))
        .unwrap();
    let routes = triangle.routerds[A]
        .routerctl(&["bgp", "routes", &lan_net(B)])
        .unwrap();
    assert!(routes.stdout.contains("longer AS path"), "{routes}");
    let mut triangle = triangle;
    for routerd in &mut triangle.routerds {
        routerd.check_running().unwrap();
    }
}
