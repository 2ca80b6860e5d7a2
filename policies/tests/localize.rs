//! A standby's own zone addresses replace the ones the shared policy
//! files give, without changing what the rules mean.

#![allow(clippy::unwrap_used, clippy::expect_used)] // reason: test harness

use std::path::Path;

use ipnet::IpNet;
use policies::{NodeAddresses, Protected, compile, load_dir, localize};

fn example() -> policies::Policy {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    load_dir(&dir, &Protected::default()).unwrap().policy
}

fn nets(list: &[&str]) -> Vec<IpNet> {
    list.iter().map(|n| n.parse().unwrap()).collect()
}

#[test]
fn the_nodes_address_replaces_the_primarys() {
    let mut policy = example();
    let before = compile(&policy, &policies::NodeServices::default()).to_text();
    let mut own = NodeAddresses::new();
    own.insert("iot".into(), nets(&["192.168.40.2/24", "fd00:40::2/64"]));
    own.insert("admin".into(), nets(&["192.168.10.2/24", "fd00:10::2/64"]));
    localize(&mut policy, &own).unwrap();
    let iot = policy.zones.iter().find(|z| z.name == "iot").unwrap();
    assert_eq!(iot.ipv4, vec!["192.168.40.2/24".parse().unwrap()]);
    let admin = policy.zones.iter().find(|z| z.name == "admin").unwrap();
    assert_eq!(admin.ipv6, vec!["fd00:10::2/64".parse().unwrap()]);
    // The subnets, and so every rule that names a zone, are unchanged.
    assert_eq!(
        compile(&policy, &policies::NodeServices::default()).to_text(),
        before
    );
    let subnets =
        |p: &policies::Policy| -> Vec<IpNet> { p.zones.iter().flat_map(|z| z.subnets()).collect() };
    assert_eq!(subnets(&policy), subnets(&example()));
}

#[test]
fn addresses_outside_the_zone_or_unknown_zones_are_refused() {
    let mut policy = example();
    let mut own = NodeAddresses::new();
    own.insert("iot".into(), nets(&["192.168.41.2/24", "fd00:40::2/64"]));
    let error = localize(&mut policy, &own).unwrap_err().to_string();
    assert!(
        error.contains("zone `iot`") && error.contains("192.168.40.0/24"),
        "{error}"
    );

    let mut own = NodeAddresses::new();
    own.insert("garage".into(), nets(&["192.168.90.2/24"]));
    let error = localize(&mut example(), &own).unwrap_err().to_string();
    assert!(
        error.contains("`garage`") && error.contains("iot"),
        "{error}"
    );
}
