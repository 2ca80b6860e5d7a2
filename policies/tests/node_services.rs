//! VRRP adverts pass the input chain on the node's VRRP interfaces
//! before any zone's default can refuse them.

#![allow(clippy::unwrap_used, clippy::expect_used)] // reason: test harness

use std::path::Path;

use policies::{NodeServices, Protected, compile, parse_files};

const POLICY: &str = r#"
[management]
zone = "lan"

[[zone]]
name = "lan"
interface = "eth0"
ipv4 = ["192.168.1.1/24"]
input = "reject"
forward = "drop"

[[rule]]
name = "ssh"
from = "lan"
to = "router"
service = "ssh"
action = "accept"
"#;

fn input_chain(text: &str) -> &str {
    let start = text.find("chain input {").unwrap();
    let end = text[start..].find("\n\t}").unwrap();
    &text[start..start + end]
}

#[test]
fn vrrp_is_accepted_on_vrrp_interfaces_ahead_of_the_zone_defaults() {
    let loaded = parse_files(&[(Path::new("lan.toml"), POLICY)], &Protected::default()).unwrap();
    let node = NodeServices {
        vrrp_interfaces: vec!["eth0".into()],
    };
    let text = compile(&loaded.policy, &node).to_text();
    let input = input_chain(&text);
    let vrrp = input
        .find("iifname @vrrp meta l4proto 112 counter accept")
        .unwrap_or_else(|| panic!("no VRRP rule in\n{input}"));
    let defaults = input.find("input_defaults").unwrap();
    assert!(vrrp < defaults, "{input}");
    assert!(text.contains("set vrrp {"), "{text}");
    assert!(text.contains("elements = { \"eth0\" }"), "{text}");
}

#[test]
fn without_vrrp_instances_the_set_is_empty() {
    let loaded = parse_files(&[(Path::new("lan.toml"), POLICY)], &Protected::default()).unwrap();
    let ruleset = compile(&loaded.policy, &NodeServices::default());
    let set = ruleset.sets.iter().find(|set| set.name == "vrrp").unwrap();
    assert!(set.elements.is_empty());
}
