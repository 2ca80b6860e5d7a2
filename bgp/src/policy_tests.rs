#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use ipnet::IpNet;

use super::*;
use crate::route::{AsPath, Origin, PeerInfo, Source};

fn net(text: &str) -> IpNet {
    text.parse().unwrap()
}

fn entry(text: &str) -> PrefixListEntry {
    text.parse().unwrap()
}

fn attributes(path: &[Asn]) -> Arc<PathAttributes> {
    Arc::new(PathAttributes {
        origin: Origin::Igp,
        as_path: AsPath::sequence(path.iter().copied()),
        next_hop: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
        med: None,
        local_pref: None,
        communities: Vec::new(),
    })
}

fn route(prefix: &str, path: &[Asn]) -> Route {
    Route {
        prefix: net(prefix),
        attributes: attributes(path),
        source: Source::Peer(PeerInfo {
            address: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
            router_id: Ipv4Addr::new(192, 0, 2, 1),
            asn: path.first().copied().unwrap_or(65000),
            ebgp: true,
        }),
    }
}

/// Asserts which of `prefixes` the entry matches.
fn check(entry_text: &str, matching: &[&str], other: &[&str]) {
    let e = entry(entry_text);
    for p in matching {
        assert!(e.matches(&net(p)), "{entry_text} should match {p}");
    }
    for p in other {
        assert!(!e.matches(&net(p)), "{entry_text} should not match {p}");
    }
}

#[test]
fn exact_entry_matches_only_its_prefix() {
    check(
        "permit 10.0.0.0/8",
        &["10.0.0.0/8"],
        &[
            "10.0.0.0/9",
            "10.1.0.0/16",
            "11.0.0.0/8",
            "0.0.0.0/0",
            "10.0.0.0/7",
        ],
    );
    check("permit 0.0.0.0/0", &["0.0.0.0/0"], &["10.0.0.0/8", "::/0"]);
}

#[test]
fn ge_alone_extends_to_the_longest_prefix() {
    let e = entry("permit 10.0.0.0/8 ge 16");
    assert_eq!(e.lengths(), 16..=32);
    check(
        "permit 10.0.0.0/8 ge 16",
        &["10.1.0.0/16", "10.1.2.0/24", "10.1.2.3/32"],
        &["10.0.0.0/8", "10.0.0.0/15", "11.1.0.0/16"],
    );
    assert_eq!(entry("permit 2001:db8::/32 ge 48").lengths(), 48..=128);
}

#[test]
fn le_alone_starts_at_the_entry_length() {
    assert_eq!(entry("permit 10.0.0.0/8 le 24").lengths(), 8..=24);
    check(
        "permit 10.0.0.0/8 le 24",
        &["10.0.0.0/8", "10.128.0.0/9", "10.1.2.0/24"],
        &["10.1.2.0/25", "10.0.0.0/7", "0.0.0.0/0"],
    );
}

#[test]
fn ge_and_le_bound_both_ends() {
    check(
        "permit 0.0.0.0/0 ge 8 le 24",
        &["10.0.0.0/8", "192.168.1.0/24", "172.16.0.0/12"],
        &["0.0.0.0/0", "10.0.0.0/7", "192.168.1.0/25", "2001:db8::/32"],
    );
    check(
        "permit 0.0.0.0/0 le 32",
        &["0.0.0.0/0", "10.0.0.0/8", "1.2.3.4/32"],
        &["::/0", "2001:db8::/32"],
    );
    // ge equal to le: exactly one length under the prefix.
    check(
        "permit 10.0.0.0/8 ge 24 le 24",
        &["10.9.9.0/24"],
        &["10.9.0.0/23", "10.9.9.0/25", "10.0.0.0/8"],
    );
}

#[test]
fn ipv6_entries() {
    check(
        "permit 2001:db8::/32 ge 48 le 64",
        &["2001:db8:1::/48", "2001:db8:ffff:1::/64", "2001:db8::/56"],
        &[
            "2001:db8::/32",
            "2001:db8::/47",
            "2001:db8:1:2::/65",
            "2001:db9::/48",
            "10.0.0.0/8",
        ],
    );
    check("permit ::/0", &["::/0"], &["2001:db8::/32", "0.0.0.0/0"]);
    check(
        "permit 2001:db8::/32 le 128",
        &["2001:db8::/32", "2001:db8::1/128"],
        &["2001:db8::/31", "::/0"],
    );
}

#[test]
fn invalid_entries_are_refused() {
    let err = |text: &str| text.parse::<PrefixListEntry>().unwrap_err();
    assert!(matches!(
        err("permit 10.0.0.1/8"),
        BgpError::HostBits { .. }
    ));
    assert_eq!(
        err("permit 10.0.0.1/8").to_string(),
        "prefix 10.0.0.1/8 has host bits set (did you mean 10.0.0.0/8?)"
    );
    for text in [
        "permit 10.0.0.0/16 ge 8",
        "permit 10.0.0.0/16 le 8",
        "permit 10.0.0.0/8 ge 24 le 16",
        "permit 10.0.0.0/8 le 33",
        "permit 10.0.0.0/8 ge 33",
        "permit 2001:db8::/32 le 129",
    ] {
        assert!(matches!(err(text), BgpError::BadRange { .. }), "{text}");
    }
    for text in [
        "",
        "accept 10.0.0.0/8",
        "permit",
        "permit 10.0.0.0",
        "permit 10.0.0.0/8 ge",
        "permit 10.0.0.0/8 ge x",
        "permit 10.0.0.0/8 ge 16 ge 17",
        "permit 10.0.0.0/8 16",
    ] {
        assert!(
            matches!(err(text), BgpError::PrefixListSyntax { .. }),
            "{text:?}"
        );
    }
}

#[test]
fn display_round_trips() {
    for text in [
        "permit 10.0.0.0/8",
        "deny 10.0.0.0/8 ge 16 le 32",
        "permit 10.0.0.0/8 le 24",
        "permit 2001:db8::/32 ge 48 le 64",
    ] {
        assert_eq!(entry(text).to_string(), text);
        assert_eq!(entry(&entry(text).to_string()), entry(text));
    }
    // ge alone is shown with the le it implies.
    assert_eq!(
        entry("permit 10.0.0.0/8 ge 16").to_string(),
        "permit 10.0.0.0/8 ge 16 le 32"
    );
}

#[test]
fn first_match_wins_and_no_match_denies() {
    let list = PrefixList::parse([
        "deny 10.1.0.0/16 le 32",
        "permit 10.0.0.0/8 le 24",
        "permit 2001:db8::/32 le 48",
    ])
    .unwrap();
    assert_eq!(
        list.check(&net("10.1.2.0/24")),
        Err(Rejection::PrefixDenied { entry: 1 })
    );
    assert_eq!(list.check(&net("10.2.0.0/16")), Ok(()));
    assert_eq!(
        list.check(&net("10.2.3.0/25")),
        Err(Rejection::PrefixNotListed)
    );
    assert_eq!(
        list.check(&net("192.168.0.0/16")),
        Err(Rejection::PrefixNotListed)
    );
    assert!(list.permits(&net("2001:db8:1::/48")));
    assert!(!list.permits(&net("2001:db8:1::/49")));
    assert!(!PrefixList::default().permits(&net("10.0.0.0/8")));
    assert_eq!(
        list.first_match(&net("10.1.0.0/16")).map(|(i, _)| i),
        Some(0)
    );
}

#[test]
fn policy_checks_and_rewrites() {
    let policy = Policy {
        prefixes: Some(PrefixList::parse(["permit 0.0.0.0/0 le 24"]).unwrap()),
        max_as_path_len: Some(3),
        set_local_pref: Some(200),
        set_med: None,
    };
    let ok = policy.evaluate(&route("10.0.0.0/24", &[1, 2, 3])).unwrap();
    assert_eq!(ok.attributes.local_pref, Some(200));
    assert_eq!(
        policy.evaluate(&route("10.0.0.0/25", &[1])),
        Err(Rejection::PrefixNotListed)
    );
    assert_eq!(
        policy.evaluate(&route("10.0.0.0/24", &[1, 2, 3, 4])),
        Err(Rejection::AsPathTooLong { len: 4, max: 3 })
    );
    // Nothing to rewrite: the attributes stay shared.
    let plain = route("10.0.0.0/24", &[1]);
    let out = Policy::default().evaluate(&plain).unwrap();
    assert!(Arc::ptr_eq(&out.attributes, &plain.attributes));
}

#[test]
fn rfc8212_defaults() {
    let policy = Policy::default();
    assert_eq!(Filter::new(true, None), Filter::RejectAll);
    assert_eq!(Filter::new(false, None), Filter::AcceptAll);
    assert_eq!(Filter::new(true, Some(&policy)), Filter::Apply(&policy));
    assert_eq!(Filter::new(false, Some(&policy)), Filter::Apply(&policy));

    let r = route("10.0.0.0/24", &[65001]);
    assert_eq!(
        Import::new(65000, true, None).evaluate(&r),
        Err(Rejection::NoPolicy)
    );
    assert!(Import::new(65000, false, None).import(&r).is_some());
    assert!(Import::new(65000, true, Some(&policy)).import(&r).is_some());
    // An explicit policy is not loosened on iBGP.
    let deny_all = Policy {
        prefixes: Some(PrefixList::default()),
        ..Policy::default()
    };
    assert_eq!(
        Import::new(65000, false, Some(&deny_all)).evaluate(&r),
        Err(Rejection::PrefixNotListed)
    );
}

#[test]
fn loop_detection_rejects_our_own_asn() {
    let policy = Policy::default();
    for (ebgp, policy) in [(true, Some(&policy)), (false, None)] {
        let import = Import::new(65000, ebgp, policy);
        assert_eq!(
            import.evaluate(&route("10.0.0.0/24", &[65001, 65000, 65002])),
            Err(Rejection::Loop(65000))
        );
        assert!(
            import
                .import(&route("10.0.0.0/24", &[65001, 65002]))
                .is_some()
        );
    }
    let mut set = PathAttributes::clone(&attributes(&[65001]));
    set.as_path
        .segments
        .push(crate::route::Segment::Set(vec![65003, 65000]));
    let r = Route {
        attributes: Arc::new(set),
        ..route("10.0.0.0/24", &[65001])
    };
    assert_eq!(
        Import::new(65000, false, None).evaluate(&r),
        Err(Rejection::Loop(65000))
    );
}

#[test]
fn ebgp_import_ignores_received_local_pref() {
    let mut with_lp = PathAttributes::clone(&attributes(&[65001]));
    with_lp.local_pref = Some(500);
    let r = Route {
        attributes: Arc::new(with_lp),
        ..route("10.0.0.0/24", &[65001])
    };
    let policy = Policy::default();
    let ebgp = Import::new(65000, true, Some(&policy)).import(&r).unwrap();
    assert_eq!(ebgp.attributes.local_pref, None);
    let ibgp = Import::new(65000, false, None).import(&r).unwrap();
    assert_eq!(ibgp.attributes.local_pref, Some(500));
    assert!(Arc::ptr_eq(&ibgp.attributes, &r.attributes));
    let set = Policy {
        set_local_pref: Some(150),
        ..Policy::default()
    };
    let ebgp = Import::new(65000, true, Some(&set)).import(&r).unwrap();
    assert_eq!(ebgp.attributes.local_pref, Some(150));
}

#[test]
fn max_prefix_limit() {
    assert_eq!(check_prefix_limit(1_000_000, None), PrefixLimit::Within);
    assert_eq!(check_prefix_limit(0, Some(0)), PrefixLimit::Within);
    assert_eq!(check_prefix_limit(100, Some(100)), PrefixLimit::Within);
    assert_eq!(
        check_prefix_limit(101, Some(100)),
        PrefixLimit::Exceeded {
            accepted: 101,
            limit: 100
        }
    );
}

#[test]
fn rejections_read_well() {
    assert_eq!(
        Rejection::NoPolicy.to_string(),
        "eBGP session without a policy (RFC 8212)"
    );
    assert_eq!(
        Rejection::PrefixDenied { entry: 2 }.to_string(),
        "denied by prefix-list entry 2"
    );
    assert_eq!(
        Rejection::Loop(65000).to_string(),
        "AS path contains our AS 65000"
    );
}
