use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use rtnetlink::packet_core::Emitable;
use rtnetlink::packet_route::AddressFamily;
use rtnetlink::packet_route::address::AddressHeader;

use super::*;

// Attribute numbers from linux/if_link.h: the test checks the bytes the
// kernel parses, not netlink-packet-route's view of them.
const IFLA_IFNAME: u16 = 3;
const IFLA_LINK: u16 = 5;
const IFLA_LINKINFO: u16 = 18;
const IFLA_INFO_KIND: u16 = 1;
const IFLA_INFO_DATA: u16 = 2;
const IFLA_VLAN_ID: u16 = 1;
const IFLA_VLAN_PROTOCOL: u16 = 5;
const ETH_P_8021Q: u16 = 0x8100;
/// sizeof(struct ifinfomsg), the header before the attributes.
const IFINFOMSG_LEN: usize = 16;

/// Splits a run of netlink attributes into (type, payload), the nested and
/// byte-order flag bits masked off.
fn nlas(mut bytes: &[u8]) -> Vec<(u16, &[u8])> {
    let mut out = Vec::new();
    while bytes.len() >= 4 {
        let len = usize::from(u16::from_ne_bytes([bytes[0], bytes[1]]));
        let kind = u16::from_ne_bytes([bytes[2], bytes[3]]) & 0x3fff;
        assert!(len >= 4 && len <= bytes.len(), "malformed attribute");
        out.push((kind, &bytes[4..len]));
        // Attributes are padded to 4 bytes; the last one's padding may be cut.
        bytes = &bytes[len.next_multiple_of(4).min(bytes.len())..];
    }
    out
}

fn attribute<'a>(nlas: &[(u16, &'a [u8])], kind: u16) -> &'a [u8] {
    let found: Vec<_> = nlas.iter().filter(|(k, _)| *k == kind).collect();
    assert_eq!(found.len(), 1, "attribute {kind} present once");
    found[0].1
}

#[test]
fn links_vlan_request_carries_name_parent_kind_id_and_protocol() {
    let message = vlan_link_message("eth0.10", 7, 10);
    let mut bytes = vec![0; message.buffer_len()];
    message.emit(&mut bytes);

    let top = nlas(&bytes[IFINFOMSG_LEN..]);
    assert_eq!(attribute(&top, IFLA_IFNAME), b"eth0.10\0");
    assert_eq!(attribute(&top, IFLA_LINK), 7u32.to_ne_bytes());

    let info = nlas(attribute(&top, IFLA_LINKINFO));
    let kind = attribute(&info, IFLA_INFO_KIND);
    assert_eq!(kind.strip_suffix(b"\0").unwrap_or(kind), b"vlan");
    let data = nlas(attribute(&info, IFLA_INFO_DATA));
    assert_eq!(attribute(&data, IFLA_VLAN_ID), 10u16.to_ne_bytes());
    // __be16 on the wire, unlike the other integers.
    assert_eq!(
        attribute(&data, IFLA_VLAN_PROTOCOL),
        ETH_P_8021Q.to_be_bytes()
    );
}

#[test]
fn links_vlan_request_leaves_the_link_state_alone() {
    // Creating must not also bring the link up: ensure_zone_links does that
    // in one place for created and existing links alike.
    let message = vlan_link_message("eth0.10", 7, 10);
    assert_eq!(message.header.index, 0);
    assert!(message.header.change_mask.is_empty());
}

fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

fn nets(list: &[&str]) -> Vec<IpNet> {
    list.iter().map(|s| net(s)).collect()
}

#[test]
fn links_plan_adds_only_what_is_missing_in_declared_order() {
    let existing = nets(&["10.99.0.1/24", "192.168.10.1/24", "fe80::1/64"]);
    let wanted = nets(&["fd00:10::1/64", "192.168.10.1/24", "192.168.11.1/24"]);
    assert_eq!(
        plan_addresses(&existing, &wanted),
        Ok(nets(&["fd00:10::1/64", "192.168.11.1/24"]))
    );
}

#[test]
fn links_plan_is_empty_once_applied() {
    let wanted = nets(&["192.168.10.1/24", "fd00:10::1/64"]);
    let mut existing = nets(&["10.99.0.1/24"]);
    existing.extend(plan_addresses(&existing, &wanted).unwrap());
    assert_eq!(plan_addresses(&existing, &wanted), Ok(vec![]));
}

#[test]
fn links_plan_adds_a_repeated_address_once() {
    let wanted = nets(&["192.168.10.1/24", "192.168.10.1/24"]);
    assert_eq!(plan_addresses(&[], &wanted), Ok(nets(&["192.168.10.1/24"])));
}

#[test]
fn links_plan_refuses_the_same_ip_with_another_prefix() {
    for (existing, wanted) in [
        ("192.168.10.1/16", "192.168.10.1/24"),
        ("fd00:10::1/56", "fd00:10::1/64"),
    ] {
        assert_eq!(
            plan_addresses(&[net(existing)], &[net(wanted)]),
            Err(Conflict {
                wanted: net(wanted),
                existing: net(existing),
            })
        );
    }
    let declared_twice = nets(&["192.168.10.1/24", "192.168.10.1/25"]);
    assert!(plan_addresses(&[], &declared_twice).is_err());
}

fn address_message(
    family: AddressFamily,
    prefix_len: u8,
    attributes: Vec<AddressAttribute>,
) -> AddressMessage {
    let mut message = AddressMessage::default();
    message.header = AddressHeader {
        family,
        prefix_len,
        ..message.header
    };
    message.attributes = attributes;
    message
}

#[test]
fn links_reads_the_local_address_not_the_peer() {
    let local = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
    let peer = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2));
    let point_to_point = address_message(
        AddressFamily::Inet,
        32,
        vec![
            AddressAttribute::Address(peer),
            AddressAttribute::Local(local),
        ],
    );
    assert_eq!(address_of(&point_to_point), Some(net("10.0.0.1/32")));

    let v6 = IpAddr::V6(Ipv6Addr::new(0xfd00, 0x10, 0, 0, 0, 0, 0, 1));
    let v6 = address_message(
        AddressFamily::Inet6,
        64,
        vec![AddressAttribute::Address(v6)],
    );
    assert_eq!(address_of(&v6), Some(net("fd00:10::1/64")));

    let no_address = address_message(AddressFamily::Inet, 24, vec![]);
    assert_eq!(address_of(&no_address), None);
}

fn zone(name: &str, vlan: Option<(&str, u16)>) -> ZoneLink {
    ZoneLink {
        zone: "lan".into(),
        name: name.into(),
        vlan: vlan.map(|(parent, id)| Vlan {
            parent: parent.into(),
            id,
        }),
        addresses: vec![],
    }
}

#[test]
fn links_validation_matches_the_kernel_rules() {
    assert!(validate(&zone("eth0.10", Some(("eth0", 10)))).is_ok());
    assert!(validate(&zone("enp3s0f0np0.100", Some(("enp3s0f0np0", 4094)))).is_ok());
    for bad in [
        "",
        ".",
        "..",
        "eth0/1",
        "eth0:1",
        "eth 0",
        "a-name-of-16-byt",
    ] {
        assert!(
            matches!(
                validate(&zone(bad, None)),
                Err(LinkError::InvalidName { .. })
            ),
            "{bad:?} accepted"
        );
    }
    assert!(matches!(
        validate(&zone("eth0.10", Some(("eth/0", 10)))),
        Err(LinkError::InvalidName { name, .. }) if name == "eth/0"
    ));
    for id in [0, 4095] {
        assert!(matches!(
            validate(&zone("eth0.10", Some(("eth0", id)))),
            Err(LinkError::InvalidVlanId { .. })
        ));
    }
}

#[test]
fn links_errors_name_the_zone_and_the_interfaces() {
    let missing = LinkError::MissingInterface {
        zone: "lan".into(),
        interface: "eth9".into(),
    };
    assert_eq!(
        missing.to_string(),
        "zone lan: interface eth9 does not exist"
    );

    let parent = LinkError::MissingParent {
        zone: "guest".into(),
        interface: "eth9.20".into(),
        parent: "eth9".into(),
    };
    assert_eq!(
        parent.to_string(),
        "zone guest: parent interface eth9 of VLAN eth9.20 does not exist"
    );

    let refused = |errno| LinkError::CreateVlan {
        zone: "guest".into(),
        interface: "eth0.20".into(),
        parent: "eth0".into(),
        id: 20,
        source: io::Error::from_raw_os_error(errno),
    };
    assert_eq!(
        refused(libc::EOPNOTSUPP).to_string(),
        "zone guest: the kernel refused creating VLAN eth0.20 (id 20 on eth0): \
         this kernel has no VLAN support (is the 8021q module available?)"
    );
    assert_eq!(
        refused(libc::EEXIST).to_string(),
        "zone guest: the kernel refused creating VLAN eth0.20 (id 20 on eth0)"
    );
}

#[test]
fn links_report_serializes_addresses_as_text() {
    let report = LinksReport {
        created: vec!["eth0.10".into()],
        brought_up: vec!["eth0".into(), "eth0.10".into()],
        addresses_added: vec![AddedAddress {
            zone: "lan".into(),
            interface: "eth0.10".into(),
            address: net("192.168.10.1/24"),
        }],
    };
    assert!(!report.is_empty());
    assert_eq!(
        serde_json::to_value(&report).unwrap(),
        serde_json::json!({
            "created": ["eth0.10"],
            "brought_up": ["eth0", "eth0.10"],
            "addresses_added": [
                {"zone": "lan", "interface": "eth0.10", "address": "192.168.10.1/24"}
            ],
        })
    );
    assert!(LinksReport::default().is_empty());
}
