//! The primary's configuration reaches the standby: over the pair
//! listener on the primary's address, with the shared token; a change
//! appears, a broken change does not, and each node keeps its own
//! addresses (its zone address in the shared policy included) and VRRP
//! priority.
//!
//! ```text
//!   node-a 10.53.0.90  primary (VRRP priority 150), pair listener :8054
//!   node-b 10.53.0.91  standby (priority 100), pulls from node-a
//! ```

use std::net::{IpAddr, Ipv4Addr};
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use e2e::dig::{Query, dig};
use e2e::{DnsHierarchy, Host, Lab, Routerd, RouterdConfig, addr};

use super::pair::{
    PairLab, cut_vrrp, heal_vrrp, node_config_every, pair_lab, pair_tools, state, wait_for_state,
};

const NODE_A: Ipv4Addr = addr::VRRP1;
const NODE_B: Ipv4Addr = addr::VRRP2;
const PORT: u16 = 8054;
const RECORD: &str = "printer.home.arpa";

/// One zone on the lab link that rejects input but for DNS, SSH and the
/// pair listener, with the primary's address. The other node's VRRP
/// adverts are accepted all the same: routerd lets protocol 112 in on
/// the interfaces of its VRRP instances, ahead of the zones.
const POLICY: &str = r#"
[management]
zone = "lan"
ssh_port = 22

[[zone]]
name = "lan"
interface = "eth0"
ipv4 = ["10.53.0.90/16"]
input = "reject"
forward = "drop"

[[rule]]
name = "dns-ssh-pair"
from = "lan"
to = "router"
service = ["dns", "ssh", "tcp/8054"]
action = "accept"
"#;

fn pair_toml(role: &str, lab: &Lab, host: &Host) -> String {
    let token = lab.dir().join("pair.token");
    let place = match role {
        "primary" => format!("listen = \"{NODE_A}:{PORT}\""),
        // The standby's own address on the policy's zone.
        _ => format!("peer = \"{NODE_A}:{PORT}\"\nzone_addresses = {{ lan = [\"{NODE_B}/16\"] }}"),
    };
    format!(
        "\n[pair]\nrole = \"{role}\"\n{place}\ntoken_file = \"{}\"\ninterval = \"1s\"\nstate_dir = \"{}\"\n",
        token.display(),
        lab.dir().join(format!("{}-pair", host.name)).display()
    )
}

fn node(dns: &DnsHierarchy, lab: &Lab, host: &Host, role: &str, priority: u8) -> RouterdConfig {
    node_config_every(dns, host.v4, priority, true, 100).with(|c| {
        c.extra_toml.push_str(&pair_toml(role, lab, host));
    })
}

/// The token file both nodes read, and the primary's configuration: a
/// local record and [`POLICY`].
fn primary_config(dns: &DnsHierarchy, lab: &Lab, node_a: &Host) -> RouterdConfig {
    let token = lab.dir().join("pair.token");
    std::fs::write(&token, "lab-pair-token-0123456789abcdef\n").unwrap();
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o600)).unwrap();
    let policies = lab.dir().join("policies");
    std::fs::create_dir_all(&policies).unwrap();
    std::fs::write(policies.join("lan.toml"), POLICY).unwrap();
    node(dns, lab, node_a, "primary", 150)
        .local_record(RECORD, "A", "192.168.1.20", 60)
        .with(|c| {
            c.extra_toml
                .push_str(&format!("\n[policies]\ndir = \"{}\"\n", policies.display()));
        })
}

/// Starts the primary, then the standby, each settled in its VRRP state.
fn start_in_order(
    primary_config: &RouterdConfig,
    dns: &DnsHierarchy,
    lab: &Lab,
    node_a: &Host,
    node_b: &Host,
) -> (Routerd, Routerd) {
    let a = primary_config.start(node_a).unwrap();
    wait_for_state(&a, "master", Duration::from_secs(3));
    let b = node(dns, lab, node_b, "standby", 100)
        .start(node_b)
        .unwrap();
    wait_for_state(&b, "backup", Duration::from_secs(3));
    (a, b)
}

/// Behind the policy's `input = "reject"`, the standby still hears the
/// primary: a second on, it is still the backup (both would be master if
/// the adverts were refused), and its firewall counted them.
fn adverts_pass_the_standbys_firewall(standby: &Routerd, node_b: &Host) {
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(state(standby), "backup");
    let table = node_b
        .run("nft", &["list", "table", "inet", "router"])
        .unwrap();
    let counted = table
        .lines()
        .find(|line| line.contains("comment \"vrrp\""))
        .and_then(|line| line.split("packets ").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse::<u64>().ok())
        .unwrap_or_else(|| panic!("no VRRP counter in the standby's table:\n{table}"));
    assert!(counted > 0, "{table}");
}

/// The A records `server` gives for [`RECORD`].
fn record_on(client: &Host, server: Ipv4Addr) -> Vec<String> {
    dig(client, IpAddr::V4(server), &Query::new(RECORD, "A"))
        .map(|r| r.answers("A").into_iter().map(str::to_string).collect())
        .unwrap_or_default()
}

fn pair_json(node: &Routerd) -> e2e::json::Value {
    let out = node.routerctl(&["pair", "--json"]).unwrap();
    assert!(out.success, "routerctl pair: {}{}", out.stdout, out.stderr);
    e2e::json::parse(&out.stdout).unwrap()
}

fn text(json: &e2e::json::Value, path: &str) -> String {
    json.get(path)
        .and_then(|v| v.as_str())
        .unwrap_or("")
        .to_string()
}

/// Asks the standby to sync now and waits for it to answer `want`.
fn standby_answers(standby: &Routerd, client: &Host, want: &[&str]) {
    let out = standby.routerctl(&["pair", "sync"]).unwrap();
    assert!(out.success, "{}{}", out.stdout, out.stderr);
    let result = e2e::wait_until(Duration::from_secs(10), "the standby to follow", || {
        (record_on(client, NODE_B) == want).then_some(())
    });
    if result.is_err() {
        panic!(
            "the standby answers {:?}, not {want:?}; routerctl pair:\n{}",
            record_on(client, NODE_B),
            standby.routerctl(&["pair"]).unwrap().stdout
        );
    }
}

#[test]
fn the_standby_follows_the_primary_and_refuses_a_broken_change() {
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
    let primary_config = primary_config(&dns, &lab, &node_a);
    let (a, b) = start_in_order(&primary_config, &dns, &lab, &node_a, &node_b);
    assert_eq!(record_on(&client, NODE_A), ["192.168.1.20"]);
    adverts_pass_the_standbys_firewall(&b, &node_b);

    // The standby started with the primary's configuration: its record,
    // answered on the standby's own address, and its policy, with the
    // standby's own address on the zone rather than the primary's.
    let standby = pair_json(&b);
    assert_eq!(text(&standby, "role"), "standby");
    assert_eq!(text(&standby, "last_sync.outcome"), "applied");
    assert_eq!(text(&standby, "last_sync.message"), "at start");
    standby_answers(&b, &client, &["192.168.1.20"]);
    let table = node_b
        .run("nft", &["list", "table", "inet", "router"])
        .unwrap();
    assert!(
        table.contains("eth0"),
        "the standby applies the shared policy:\n{table}"
    );
    let addresses = node_b
        .run("ip", &["-o", "-4", "addr", "show", "dev", "eth0"])
        .unwrap();
    assert!(
        !addresses.contains(&format!("{NODE_A}/")),
        "the standby must not take the primary's zone address: {addresses}"
    );
    let standby = pair_json(&b);
    let primary = pair_json(&a);
    assert_eq!(standby.get("in_sync").and_then(|v| v.as_bool()), Some(true));
    assert_eq!(text(&standby, "version"), text(&primary, "version"));
    assert_eq!(text(&primary, "peer_version"), text(&primary, "version"));
    assert_eq!(
        primary.get("peer_reachable").and_then(|v| v.as_bool()),
        Some(true)
    );
    // Node-specific settings stayed: the standby is still the backup with
    // its own priority.
    assert_eq!(text(&standby, "vrrp.0.state"), "backup");
    assert_eq!(
        standby.get("vrrp.0.priority").and_then(|v| v.as_u64()),
        Some(100)
    );
    let shown = b.routerctl(&["pair"]).unwrap().stdout;
    assert!(shown.contains("role      standby"), "{shown}");
    assert!(shown.contains("in sync"), "{shown}");
    assert!(shown.contains("vrrp      dns: backup"), "{shown}");

    // A change on the primary appears on the standby.
    let changed = primary_config.clone().with(|c| {
        c.local_records[0].value = "192.168.1.21".into();
    });
    a.rewrite_config(&changed).unwrap();
    assert!(a.routerctl(&["reload"]).unwrap().success);
    assert_eq!(record_on(&client, NODE_A), ["192.168.1.21"]);
    standby_answers(&b, &client, &["192.168.1.21"]);
    let good_version = text(&pair_json(&b), "version");

    // A broken change: the primary refuses it and does not hand it out;
    // the standby keeps the last good copy.
    let broken = std::fs::read_to_string(&a.config)
        .unwrap()
        .replace("192.168.1.21", "192.168.1.300");
    a.write_config_text(&broken).unwrap();
    assert!(!a.routerctl(&["reload"]).unwrap().success);
    assert!(b.routerctl(&["pair", "sync"]).unwrap().success);
    // The primary looks at its files when asked and every interval.
    let error = e2e::wait_until(Duration::from_secs(3), "the primary to report", || {
        Some(text(&pair_json(&a), "last_error")).filter(|e| !e.is_empty())
    })
    .unwrap();
    assert!(
        error.contains("not handed to the standby") && error.contains("192.168.1.300"),
        "{error}"
    );
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(record_on(&client, NODE_B), ["192.168.1.21"]);
    let standby = pair_json(&b);
    assert_eq!(text(&standby, "version"), good_version);
    assert_eq!(
        standby.get("peer_reachable").and_then(|v| v.as_bool()),
        Some(true)
    );

    // Without the token, the primary hands out nothing.
    let probe = env!("CARGO_BIN_EXE_e2e-probe");
    let out = client
        .exec(
            probe,
            &["http-get", &format!("{NODE_A}:{PORT}"), "/v1/pair/bundle"],
        )
        .unwrap();
    let page = String::from_utf8_lossy(&out.stdout);
    assert!(page.starts_with("HTTP/1.1 401"), "{page}");
}

/// A standby that starts while the primary is away runs its own file,
/// without the primary's [policies]; the first sync brings the policy in,
/// and the standby applies it then, without a restart.
#[test]
fn a_standby_that_started_alone_applies_the_policy_at_its_first_sync() {
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
    let primary_config = primary_config(&dns, &lab, &node_a);
    let b = node(&dns, &lab, &node_b, "standby", 100)
        .start(&node_b)
        .unwrap();
    wait_for_state(&b, "master", Duration::from_secs(3));
    let alone = b.routerctl(&["policy", "show"]).unwrap();
    assert!(
        !alone.success && alone.stderr.contains("manages no firewall"),
        "{}{}",
        alone.stdout,
        alone.stderr
    );
    assert_eq!(record_on(&client, NODE_B), Vec::<String>::new());

    let a = primary_config.start(&node_a).unwrap();
    wait_for_state(&a, "master", Duration::from_secs(3));
    wait_for_state(&b, "backup", Duration::from_secs(3));
    standby_answers(&b, &client, &["192.168.1.20"]);
    let shown = b.routerctl(&["policy", "show"]).unwrap();
    assert!(shown.success, "{}{}", shown.stdout, shown.stderr);
    assert!(shown.stdout.contains("lan"), "{}", shown.stdout);
    adverts_pass_the_standbys_firewall(&b, &node_b);
    let addresses = node_b
        .run("ip", &["-o", "-4", "addr", "show", "dev", "eth0"])
        .unwrap();
    assert!(
        !addresses.contains(&format!("{NODE_A}/")),
        "the standby must not take the primary's zone address: {addresses}"
    );
}

/// The floating addresses `node` reports both nodes holding.
fn both_hold(node: &Routerd) -> Vec<String> {
    pair_json(node)
        .get("both_hold")
        .and_then(|v| v.as_array())
        .map(|list| {
            list.iter()
                .filter_map(|a| a.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// Waits for both nodes to report `want` as held by both, the standby
/// asking the primary meanwhile (each exchange compares the holdings).
fn wait_for_both_hold(a: &Routerd, b: &Routerd, want: &[String]) {
    let result = e2e::wait_until(Duration::from_secs(10), "both nodes to agree", || {
        assert!(b.routerctl(&["pair", "sync"]).unwrap().success);
        std::thread::sleep(Duration::from_millis(300));
        (both_hold(a) == want && both_hold(b) == want).then_some(())
    });
    if result.is_err() {
        panic!(
            "want {want:?} held by both; the primary says {:?}, the standby {:?}",
            both_hold(a),
            both_hold(b)
        );
    }
}

/// VRRP cut between the nodes while the pair listener still connects
/// them (a switch that filters multicast, say): both take the floating
/// address, and both say so, through the pair, in `routerctl pair` and
/// `routerctl status`. Healed, one master remains and the warning goes.
#[test]
fn a_split_shows_on_both_nodes_and_clears_when_healed() {
    if !e2e::require(&pair_tools()) {
        return;
    }
    let PairLab {
        node_a,
        node_b,
        dns,
        lab,
        ..
    } = pair_lab();
    let primary_config = primary_config(&dns, &lab, &node_a);
    let (a, b) = start_in_order(&primary_config, &dns, &lab, &node_a, &node_b);
    wait_for_both_hold(&a, &b, &[]);

    cut_vrrp(&lab, &node_b);
    wait_for_state(&b, "master", Duration::from_secs(2));
    assert_eq!(state(&a), "master");
    let vip = super::pair::VIP.to_string();
    wait_for_both_hold(&a, &b, std::slice::from_ref(&vip));
    for node in [&a, &b] {
        let status = node.routerctl(&["status"]).unwrap().stdout;
        assert!(
            status.contains(&format!("DEGRADED: SPLIT, both nodes hold {vip}")),
            "{status}"
        );
        let pair = node.routerctl(&["pair"]).unwrap().stdout;
        assert!(
            pair.contains(&format!("SPLIT     both nodes hold {vip} as VRRP master")),
            "{pair}"
        );
    }

    heal_vrrp(&node_b);
    wait_for_state(&b, "backup", Duration::from_secs(2));
    wait_for_both_hold(&a, &b, &[]);
    let status = a.routerctl(&["status"]).unwrap().stdout;
    assert!(status.contains("pair     healthy"), "{status}");
}

/// `[pair]` follows a reload: a running node joins as the standby, and
/// a new token (written on both nodes, each reloaded) takes over without
/// a restart; between the two reloads the primary refuses the old one.
#[test]
fn a_reload_joins_a_node_to_the_pair_and_rotates_the_token() {
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
    let primary_config = primary_config(&dns, &lab, &node_a);
    let a = primary_config.start(&node_a).unwrap();
    wait_for_state(&a, "master", Duration::from_secs(3));
    let b = node_config_every(&dns, NODE_B, 100, true, 100)
        .start(&node_b)
        .unwrap();
    wait_for_state(&b, "backup", Duration::from_secs(3));
    let alone = b.routerctl(&["pair"]).unwrap();
    assert!(!alone.success, "{}", alone.stdout);

    b.rewrite_config(&node(&dns, &lab, &node_b, "standby", 100))
        .unwrap();
    let reload = b.routerctl(&["reload"]).unwrap();
    assert!(reload.success, "{}{}", reload.stdout, reload.stderr);
    standby_answers(&b, &client, &["192.168.1.20"]);
    assert_eq!(text(&pair_json(&b), "role"), "standby");

    let token = lab.dir().join("pair.token");
    std::fs::write(&token, "lab-pair-token-rotated-fedcba9876543210\n").unwrap();
    assert!(a.routerctl(&["reload"]).unwrap().success);
    let refused = e2e::wait_until(Duration::from_secs(5), "the old token refused", || {
        assert!(b.routerctl(&["pair", "sync"]).unwrap().success);
        std::thread::sleep(Duration::from_millis(200));
        Some(text(&pair_json(&b), "last_error")).filter(|e| e.contains("401"))
    });
    assert!(refused.is_ok(), "{:?}", pair_json(&b));

    assert!(b.routerctl(&["reload"]).unwrap().success);
    let healed = e2e::wait_until(Duration::from_secs(5), "the new token taken", || {
        assert!(b.routerctl(&["pair", "sync"]).unwrap().success);
        std::thread::sleep(Duration::from_millis(200));
        let standby = pair_json(&b);
        (standby.get("peer_reachable").and_then(|v| v.as_bool()) == Some(true)
            && text(&standby, "last_error").is_empty())
        .then_some(())
    });
    assert!(healed.is_ok(), "{:?}", pair_json(&b));
    assert_eq!(record_on(&client, NODE_B), ["192.168.1.20"]);
}
