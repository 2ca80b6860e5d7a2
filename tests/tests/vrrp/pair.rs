//! Two routerd nodes share a floating DNS address over VRRPv3; a client
//! queries it at a steady 200 queries a second while the primary fails.
//!
//! ```text
//!   node-a 10.53.0.90  (priority 150)  \
//!   node-b 10.53.0.91  (priority 100)   > lab bridge, VIP 10.53.0.250/16
//!   client 10.53.0.100 (200 q/s to the VIP)  /
//! ```

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use e2e::dns_hierarchy::HIERARCHY_TOOLS;
use e2e::vrrp_node::{
    PROBE_NAME, outage, parse_steady, routerd_node, vrrp_state, wait_for_vrrp_state,
};
use e2e::{DnsHierarchy, Host, Lab, Routerd, RouterdConfig, addr};

/// Tools these tests need.
pub fn pair_tools() -> Vec<&'static str> {
    [HIERARCHY_TOOLS, &["routerd", "routerctl", "nft"]].concat()
}

/// In the nodes' own subnet, as on a real LAN: the kernel then keeps the
/// node's address as the source of its own traffic (recursion, probes).
/// A VIP in a narrower prefix would add a route with the VIP as source,
/// and during a split the other node would get the answers.
pub const VIP: Ipv4Addr = addr::VRRP_VIP;
const NODE_A: Ipv4Addr = addr::VRRP1;
const NODE_B: Ipv4Addr = addr::VRRP2;
/// 100 ms adverts: a backup declares the master dead after 3 intervals
/// plus its skew, (256 - 100) / 256 of an interval: 361 ms.
const ADVERT_MS: u64 = 100;
const MASTER_DOWN: Duration = Duration::from_millis(3 * ADVERT_MS + (256 - 100) * ADVERT_MS / 256);
const RATE: u32 = 200;
const NAME: &str = PROBE_NAME;

struct Pair {
    a: Routerd,
    b: Routerd,
    client: Host,
    node_a: Host,
    node_b: Host,
    dns: DnsHierarchy,
    lab: Lab,
}

fn node_config(dns: &DnsHierarchy, host: Ipv4Addr, priority: u8, preempt: bool) -> RouterdConfig {
    node_config_every(dns, host, priority, preempt, ADVERT_MS)
}

/// A node with adverts every `advert_ms`.
pub fn node_config_every(
    dns: &DnsHierarchy,
    host: Ipv4Addr,
    priority: u8,
    preempt: bool,
    advert_ms: u64,
) -> RouterdConfig {
    routerd_node(
        dns,
        host,
        (IpAddr::V4(VIP), 16),
        priority,
        preempt,
        advert_ms,
    )
}

/// The pair's lab with nothing running on the nodes yet: the DNS
/// hierarchy, both nodes and the client.
pub struct PairLab {
    pub node_a: Host,
    pub node_b: Host,
    pub client: Host,
    pub dns: DnsHierarchy,
    pub lab: Lab,
}

pub fn pair_lab() -> PairLab {
    let lab = Lab::new().unwrap();
    let dns = DnsHierarchy::start(&lab).unwrap();
    PairLab {
        node_a: lab.add_host("node-a", NODE_A).unwrap(),
        node_b: lab.add_host("node-b", NODE_B).unwrap(),
        client: lab.add_host("client", addr::CLIENT).unwrap(),
        dns,
        lab,
    }
}

fn start_pair(preempt: bool) -> Pair {
    let PairLab {
        node_a,
        node_b,
        client,
        dns,
        lab,
    } = pair_lab();
    let a = node_config(&dns, NODE_A, 150, preempt)
        .start(&node_a)
        .unwrap();
    wait_for_state(&a, "master", Duration::from_secs(3));
    let b = node_config(&dns, NODE_B, 100, preempt)
        .start(&node_b)
        .unwrap();
    wait_for_state(&b, "backup", Duration::from_secs(3));
    Pair {
        a,
        b,
        client,
        node_a,
        node_b,
        dns,
        lab,
    }
}

/// The state of the node's one instance, from `routerctl vrrp --json`.
pub fn state(node: &Routerd) -> String {
    vrrp_state(node).unwrap()
}

pub fn wait_for_state(node: &Routerd, want: &str, within: Duration) {
    wait_for_vrrp_state(node, want, within).unwrap();
}

/// Whether `host` holds the VIP once it settles: waits up to a second for
/// it to be `expected` (the state a node reports changes a moment before
/// its address does), then answers what it sees.
pub fn vip_on(host: &Host, expected: bool) -> bool {
    e2e::wait_until(Duration::from_secs(1), "the VIP to settle", || {
        (holds_vip(host) == expected).then_some(())
    })
    .map_or(!expected, |()| expected)
}

pub fn holds_vip(host: &Host) -> bool {
    let out = host
        .run("ip", &["-o", "-4", "addr", "show", "dev", "eth0"])
        .unwrap();
    out.contains(&format!("{VIP}/16"))
}

/// What the steady client saw around a failure.
#[derive(Debug)]
struct Outage {
    lost: usize,
    /// From the first unanswered query to the first answered one after it.
    gap: Duration,
    total: usize,
}

/// Starts the 200 q/s client for `seconds`, runs `fail` one second in,
/// and measures the longest run of unanswered queries.
fn during_steady_queries(client: &Host, seconds: u64, fail: impl FnOnce()) -> Outage {
    let probe = env!("CARGO_BIN_EXE_e2e-probe");
    let target = SocketAddr::new(IpAddr::V4(VIP), 53).to_string();
    let (rate, secs) = (RATE.to_string(), seconds.to_string());
    let mut stream = client
        .spawn(
            "steady",
            probe,
            &["udp-steady", &target, NAME, &rate, &secs],
        )
        .unwrap();
    std::thread::sleep(Duration::from_secs(1));
    fail();
    let deadline = std::time::Instant::now() + Duration::from_secs(seconds + 5);
    while stream.is_running() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    let log = stream.log();
    let sent = parse_steady(&log);
    assert!(
        sent.len() as u64 >= u64::from(RATE) * seconds * 9 / 10,
        "the client sent {} queries:\n{log}",
        sent.len()
    );
    let (lost, gap) = outage(&sent);
    Outage {
        lost,
        gap,
        total: sent.len(),
    }
}

/// The bound on a failover the client notices: the master down interval,
/// plus the interval between the client's queries, plus slack for the
/// gratuitous ARP and for scheduling on a loaded 2-core machine.
fn bound() -> Duration {
    MASTER_DOWN + Duration::from_millis(400)
}

fn assert_within_bounds(what: &str, outage: &Outage) {
    eprintln!(
        "{what}: {} of {} queries unanswered, longest gap {:?} (master down interval {:?})",
        outage.lost, outage.total, outage.gap, MASTER_DOWN
    );
    assert!(
        outage.gap <= bound(),
        "{what}: the address was unanswered for {:?}, more than {:?}",
        outage.gap,
        bound()
    );
    let max_lost = (bound().as_millis() as usize) * RATE as usize / 1000;
    assert!(
        outage.lost <= max_lost,
        "{what}: {} queries lost, more than {max_lost}",
        outage.lost
    );
}

#[test]
fn sigkill_of_the_primary_moves_the_address_and_it_comes_back() {
    if !e2e::require(&pair_tools()) {
        return;
    }
    let mut pair = start_pair(true);
    assert!(vip_on(&pair.node_a, true));
    assert!(!vip_on(&pair.node_b, false));
    let outage = during_steady_queries(&pair.client, 4, || {
        let _ = std::process::Command::new("kill")
            .args(["-9", &pair.a.daemon.pid().to_string()])
            .status();
    });
    assert_eq!(state(&pair.b), "master");
    assert!(vip_on(&pair.node_b, true));
    assert_within_bounds("SIGKILL", &outage);

    // The primary comes back and, with preempt, takes the address back;
    // it clears the address its killed predecessor left behind first.
    pair.a.daemon.stop();
    let config = node_config(&pair.dns, NODE_A, 150, true);
    pair.a = config.start(&pair.node_a).unwrap();
    wait_for_state(&pair.a, "master", Duration::from_secs(3));
    wait_for_state(&pair.b, "backup", Duration::from_secs(2));
    assert!(vip_on(&pair.node_a, true));
    assert!(!vip_on(&pair.node_b, false));
    let _ = &pair.lab;
}

#[test]
fn a_failing_resolver_hands_the_address_over() {
    if !e2e::require(&pair_tools()) {
        return;
    }
    let pair = start_pair(true);
    // Cut the primary off from the DNS hierarchy: its cache still answers
    // the client's name, but the recursion probe fails.
    let outage = during_steady_queries(&pair.client, 4, || {
        for server in [addr::ROOT, addr::TLD, addr::LEAF] {
            pair.node_a
                .run("ip", &["route", "add", "prohibit", &format!("{server}/32")])
                .unwrap();
        }
    });
    wait_for_state(&pair.a, "fault", Duration::from_secs(2));
    assert_eq!(state(&pair.b), "master");
    assert!(!vip_on(&pair.node_a, false));
    assert!(vip_on(&pair.node_b, true));
    assert_within_bounds("resolver failure", &outage);
    let out = pair.a.routerctl(&["vrrp"]).unwrap();
    assert!(out.stdout.contains("dns recursion"), "{}", out.stdout);

    // Healed, the primary leaves Fault and preempts.
    for server in [addr::ROOT, addr::TLD, addr::LEAF] {
        pair.node_a
            .run("ip", &["route", "del", "prohibit", &format!("{server}/32")])
            .unwrap();
    }
    wait_for_state(&pair.a, "master", Duration::from_secs(5));
    wait_for_state(&pair.b, "backup", Duration::from_secs(2));
}

#[test]
fn a_primary_link_down_fails_over_and_no_preempt_keeps_the_standby() {
    if !e2e::require(&pair_tools()) {
        return;
    }
    let pair = start_pair(false);
    let outage = during_steady_queries(&pair.client, 4, || {
        pair.node_a
            .run("ip", &["link", "set", "dev", "eth0", "down"])
            .unwrap();
    });
    assert_eq!(state(&pair.b), "master");
    assert_within_bounds("link down", &outage);
    wait_for_state(&pair.a, "fault", Duration::from_secs(2));

    // Back up, the primary stays backup: no preempt.
    pair.node_a
        .run("ip", &["link", "set", "dev", "eth0", "up"])
        .unwrap();
    wait_for_state(&pair.a, "backup", Duration::from_secs(5));
    std::thread::sleep(MASTER_DOWN * 3);
    assert_eq!(state(&pair.b), "master");
    assert_eq!(state(&pair.a), "backup");
    assert!(vip_on(&pair.node_b, true));
}

/// Drops VRRP arriving at `host`, in a table of its own: the other node's
/// adverts no longer reach it, while everything else (the client, the
/// pair listener) still does.
pub fn cut_vrrp(lab: &Lab, host: &Host) {
    let cut = "add table inet split\n\
               add chain inet split input { type filter hook input priority 0; }\n\
               add rule inet split input ip protocol 112 drop\n";
    let rules = lab.dir().join("split.nft");
    std::fs::write(&rules, cut).unwrap();
    host.run("nft", &["-f", &rules.to_string_lossy()]).unwrap();
}

/// Undoes [`cut_vrrp`].
pub fn heal_vrrp(host: &Host) {
    host.run("nft", &["delete", "table", "inet", "split"])
        .unwrap();
}

#[test]
fn a_healed_split_leaves_exactly_one_master() {
    if !e2e::require(&pair_tools()) {
        return;
    }
    let pair = start_pair(true);
    cut_vrrp(&pair.lab, &pair.node_b);
    wait_for_state(&pair.b, "master", Duration::from_secs(2));
    assert_eq!(
        state(&pair.a),
        "master",
        "both claim the address while split"
    );
    for node in [&pair.a, &pair.b] {
        let out = node.routerctl(&["vrrp"]).unwrap();
        assert!(out.stdout.contains("master"), "{}", out.stdout);
    }
    heal_vrrp(&pair.node_b);
    wait_for_state(&pair.b, "backup", Duration::from_secs(2));
    std::thread::sleep(MASTER_DOWN * 2);
    assert_eq!(state(&pair.a), "master");
    assert_eq!(state(&pair.b), "backup");
    assert!(vip_on(&pair.node_a, true));
    assert!(!vip_on(&pair.node_b, false));
}

/// A track script that starts failing lowers the primary's priority by
/// its weight (150 - 60 = 90, below the standby's 100): the standby
/// preempts, and takes the address back when the script passes again.
#[test]
fn a_failing_track_script_lowers_the_priority_and_the_standby_preempts() {
    if !e2e::require(&pair_tools()) {
        return;
    }
    let pair = start_pair(true);
    let flag = pair.lab.dir().join("uplink-ok");
    std::fs::write(&flag, "").unwrap();
    let script = format!(
        "\n[[vrrp.checks.scripts]]\nname = \"uplink\"\ncommand = \"/bin/sh\"\nargs = [\"-c\", \"test -e {}\"]\ninterval = \"100ms\"\nfall = 2\nrise = 2\n",
        flag.display()
    );
    // The scripts table belongs to [vrrp.checks], so it goes before the
    // instance; the weight goes in the instance.
    let config = node_config(&pair.dns, NODE_A, 150, true).with(|c| {
        let (checks, instance) = c
            .extra_toml
            .split_once("[[vrrp.instances]]")
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .unwrap();
        c.extra_toml = format!("{checks}{script}\n[[vrrp.instances]]{instance}check_weight = 60\n");
    });
    pair.a.rewrite_config(&config).unwrap();
    let out = pair.a.routerctl(&["reload"]).unwrap();
    assert!(out.success, "{}{}", out.stdout, out.stderr);
    wait_for_state(&pair.a, "master", Duration::from_secs(3));
    wait_for_state(&pair.b, "backup", Duration::from_secs(3));

    std::fs::remove_file(&flag).unwrap();
    wait_for_state(&pair.b, "master", Duration::from_secs(2));
    wait_for_state(&pair.a, "backup", Duration::from_secs(1));
    let status = pair.a.routerctl(&["vrrp", "--json"]).unwrap();
    let json = e2e::json::parse(&status.stdout).unwrap();
    assert_eq!(
        json.get("instances.0.priority").and_then(|p| p.as_u64()),
        Some(90)
    );
    assert_eq!(
        json.get("failing_checks.0").and_then(|p| p.as_str()),
        Some("script uplink"),
        "{}",
        status.stdout
    );

    std::fs::write(&flag, "").unwrap();
    wait_for_state(&pair.a, "master", Duration::from_secs(3));
    wait_for_state(&pair.b, "backup", Duration::from_secs(1));
}

/// The same pair over IPv6: adverts from the link-local addresses to
/// ff02::12, the virtual address announced with unsolicited neighbour
/// advertisements; a client asking the IPv6 VIP sees the standby take
/// over from a killed primary within the master down interval.
#[test]
fn an_ipv6_floating_address_fails_over_too() {
    if !e2e::require(&pair_tools()) {
        return;
    }
    let vip6 = addr::v6_of(VIP);
    let PairLab {
        node_a,
        node_b,
        client,
        dns,
        lab: _lab,
    } = pair_lab();
    let config = |host: &Host, priority: u8| {
        node_config(&dns, host.v4, priority, true).with(|c| {
            c.listen[1] = SocketAddr::new(IpAddr::V6(vip6), 53);
            c.extra_toml = c
                .extra_toml
                .replace(&format!("{VIP}/16"), &format!("{vip6}/64"));
        })
    };
    let a = config(&node_a, 150).start(&node_a).unwrap();
    wait_for_state(&a, "master", Duration::from_secs(5));
    let b = config(&node_b, 100).start(&node_b).unwrap();
    wait_for_state(&b, "backup", Duration::from_secs(5));
    let holds = |host: &Host| {
        host.run("ip", &["-o", "-6", "addr", "show", "dev", "eth0"])
            .unwrap()
            .contains(&format!("{vip6}/64"))
    };
    assert!(holds(&node_a) && !holds(&node_b));
    // The standby names its master once the first advert arrives.
    let master = e2e::wait_until(
        Duration::from_secs(2),
        "the standby to hear the master",
        || {
            let status = b.routerctl(&["vrrp", "--json"]).ok()?;
            let json = e2e::json::parse(&status.stdout).ok()?;
            json.get("instances.0.master")
                .and_then(|m| m.as_str())
                .map(str::to_string)
        },
    )
    .unwrap();
    assert!(
        master.starts_with("fe80::"),
        "adverts come from the link-local address, not {master}"
    );

    let probe = env!("CARGO_BIN_EXE_e2e-probe");
    let target = SocketAddr::new(IpAddr::V6(vip6), 53).to_string();
    let mut stream = client
        .spawn("steady6", probe, &["udp-steady", &target, NAME, "200", "4"])
        .unwrap();
    std::thread::sleep(Duration::from_secs(1));
    let _ = std::process::Command::new("kill")
        .args(["-9", &a.daemon.pid().to_string()])
        .status();
    while stream.is_running() {
        std::thread::sleep(Duration::from_millis(100));
    }
    wait_for_state(&b, "master", Duration::from_secs(1));
    e2e::wait_until(
        Duration::from_secs(1),
        "the standby to hold the VIP",
        || holds(&node_b).then_some(()),
    )
    .unwrap();
    let log = stream.log();
    let lost = log.lines().filter(|l| l.ends_with(" 0")).count();
    let answered = log.lines().filter(|l| l.ends_with(" 1")).count();
    eprintln!(
        "IPv6 SIGKILL: {lost} of {} queries unanswered",
        lost + answered
    );
    assert!(answered > 600, "{answered} answered:\n{log}");
    let max_lost = (bound().as_millis() as usize) * RATE as usize / 1000;
    assert!(
        lost <= max_lost,
        "{lost} queries lost over IPv6, more than {max_lost}"
    );
}

/// With multicast VRRP dropped on both nodes (a switch that filters it),
/// adverts to unicast peers keep one master, and a SIGKILL still moves
/// the address within the same bound.
#[test]
fn unicast_peers_keep_the_pair_working_without_multicast() {
    if !e2e::require(&pair_tools()) {
        return;
    }
    let PairLab {
        node_a,
        node_b,
        client,
        dns,
        lab,
    } = pair_lab();
    let no_multicast = lab.dir().join("no-multicast.nft");
    std::fs::write(
        &no_multicast,
        "add table inet filtering_switch\n\
         add chain inet filtering_switch input { type filter hook input priority 0; }\n\
         add rule inet filtering_switch input ip daddr 224.0.0.18 drop\n",
    )
    .unwrap();
    for node in [&node_a, &node_b] {
        node.run("nft", &["-f", &no_multicast.to_string_lossy()])
            .unwrap();
    }
    let unicast = |host: Ipv4Addr, peer: Ipv4Addr, priority: u8| {
        node_config(&dns, host, priority, true).with(|c| {
            c.extra_toml
                .push_str(&format!("unicast_peers = [\"{peer}\"]\n"));
        })
    };
    let a = unicast(NODE_A, NODE_B, 150).start(&node_a).unwrap();
    wait_for_state(&a, "master", Duration::from_secs(3));
    let b = unicast(NODE_B, NODE_A, 100).start(&node_b).unwrap();
    wait_for_state(&b, "backup", Duration::from_secs(3));
    // Held for several master down intervals: the adverts arrive.
    std::thread::sleep(MASTER_DOWN * 4);
    assert_eq!(state(&b), "backup");
    assert!(vip_on(&node_a, true));
    assert!(!vip_on(&node_b, false));

    let outage = during_steady_queries(&client, 4, || {
        let _ = std::process::Command::new("kill")
            .args(["-9", &a.daemon.pid().to_string()])
            .status();
    });
    assert_eq!(state(&b), "master");
    assert!(vip_on(&node_b, true));
    assert_within_bounds("SIGKILL, unicast", &outage);
}

/// A floating address in a narrower prefix than the node's own (a /24
/// VIP on a /16 LAN): the master's own traffic to the LAN keeps the
/// node's address as its source, so answers to its recursion and probes
/// come back to it and not to whichever node holds the VIP.
#[test]
fn a_narrower_floating_prefix_does_not_become_the_nodes_source() {
    if !e2e::require(&pair_tools()) {
        return;
    }
    let PairLab {
        node_a, dns, lab, ..
    } = pair_lab();
    let config = node_config(&dns, NODE_A, 150, true).with(|c| {
        c.extra_toml = c
            .extra_toml
            .replace(&format!("{VIP}/16"), &format!("{VIP}/24"));
    });
    let a = config.start(&node_a).unwrap();
    wait_for_state(&a, "master", Duration::from_secs(3));
    let held = node_a
        .run("ip", &["-o", "-4", "addr", "show", "dev", "eth0"])
        .unwrap();
    assert!(held.contains(&format!("{VIP}/24")), "{held}");
    let route = node_a
        .run("ip", &["-4", "route", "get", &addr::CLIENT.to_string()])
        .unwrap();
    assert!(
        route.contains(&format!("src {NODE_A}")),
        "the node's own traffic must leave from its own address: {route}"
    );
    let _ = (&a, &lab);
}

/// The instance's transitions so far, from `routerctl vrrp --json`.
fn transitions(node: &Routerd, instance: usize) -> u64 {
    let out = node.routerctl(&["vrrp", "--json"]).unwrap();
    e2e::json::parse(&out.stdout)
        .unwrap()
        .get(&format!("instances.{instance}.transitions"))
        .and_then(|t| t.as_u64())
        .unwrap_or_else(|| panic!("no instance {instance}: {}", out.stdout))
}

/// Adding an instance on the master, then changing only that one, and a
/// reload each time: the floating DNS address stays where it is, its
/// instance does not move (no transition on either node), and the client
/// loses nothing.
#[test]
fn a_reload_restarts_only_the_instances_that_changed() {
    if !e2e::require(&pair_tools()) {
        return;
    }
    let pair = start_pair(true);
    let before = (transitions(&pair.a, 0), transitions(&pair.b, 0));
    let extra = |priority: u8| {
        node_config(&pair.dns, NODE_A, 150, true).with(|c| {
            c.extra_toml.push_str(&format!(
                "\n[[vrrp.instances]]\nname = \"extra\"\ninterface = \"eth0\"\nvrid = 52\n\
                 priority = {priority}\nadvert_interval = \"100ms\"\naddresses = [\"10.53.0.251/16\"]\n"
            ));
        })
    };
    let outage = during_steady_queries(&pair.client, 3, || {
        pair.a.rewrite_config(&extra(120)).unwrap();
        let out = pair.a.routerctl(&["reload"]).unwrap();
        assert!(out.success, "{}{}", out.stdout, out.stderr);
        wait_for_vrrp_state_of(&pair.a, 1, "master");
        pair.a.rewrite_config(&extra(130)).unwrap();
        let out = pair.a.routerctl(&["reload"]).unwrap();
        assert!(out.success, "{}{}", out.stdout, out.stderr);
        wait_for_vrrp_state_of(&pair.a, 1, "master");
    });
    assert_eq!(outage.lost, 0, "{outage:?}");
    assert_eq!((transitions(&pair.a, 0), transitions(&pair.b, 0)), before);
    assert_eq!(state(&pair.a), "master");
    assert!(vip_on(&pair.node_a, true));
    let out = pair.a.routerctl(&["vrrp", "--json"]).unwrap();
    let json = e2e::json::parse(&out.stdout).unwrap();
    assert_eq!(
        json.get("instances.1.priority").and_then(|p| p.as_u64()),
        Some(130)
    );
}

/// Waits up to 2 s for the node's instance number `instance` to be in
/// `want`.
fn wait_for_vrrp_state_of(node: &Routerd, instance: usize, want: &str) {
    e2e::wait_until(Duration::from_secs(2), want, || {
        let out = node.routerctl(&["vrrp", "--json"]).ok()?;
        let json = e2e::json::parse(&out.stdout).ok()?;
        (json
            .get(&format!("instances.{instance}.state"))
            .and_then(|s| s.as_str())
            == Some(want))
        .then_some(())
    })
    .unwrap();
}

/// Accept mode off (a floating gateway, not a DNS address): the master
/// holds the address and answers ARP for it, but drops what is sent to
/// it; the node's own address still answers.
#[test]
fn with_accept_mode_off_the_master_drops_traffic_to_the_address() {
    if !e2e::require(&pair_tools()) {
        return;
    }
    let PairLab {
        node_a,
        client,
        dns,
        lab: _lab,
        ..
    } = pair_lab();
    let config = node_config(&dns, NODE_A, 150, true).with(|c| {
        // DNS on the node's own address only: accept = false and DNS on
        // the VIP are refused together.
        c.listen.truncate(1);
        c.extra_toml.push_str("accept = false\n");
    });
    let a = config.start(&node_a).unwrap();
    wait_for_state(&a, "master", Duration::from_secs(3));
    assert!(vip_on(&node_a, true));
    let ping = |to: Ipv4Addr| {
        client
            .exec("ping", &["-c", "1", "-W", "1", &to.to_string()])
            .unwrap()
            .status
            .success()
    };
    assert!(ping(NODE_A), "the node's own address answers");
    assert!(!ping(VIP), "traffic to the virtual address is dropped");
    let neighbour = client
        .run("ip", &["neigh", "show", &VIP.to_string()])
        .unwrap();
    assert!(
        neighbour.contains("lladdr"),
        "ARP for the virtual address is answered: {neighbour}"
    );
    // Back to the default, the address answers.
    let accepting = node_config(&dns, NODE_A, 150, true).with(|c| c.listen.truncate(1));
    a.rewrite_config(&accepting).unwrap();
    assert!(a.routerctl(&["reload"]).unwrap().success);
    wait_for_state(&a, "master", Duration::from_secs(3));
    let answered = e2e::wait_until(Duration::from_secs(3), "the VIP to answer", || {
        ping(VIP).then_some(())
    });
    assert!(answered.is_ok(), "with accept mode on the address answers");
}
