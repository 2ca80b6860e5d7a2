//! Tests of the lab itself: NSD and dig only (plus unbound, if installed,
//! as a reference validating resolver).

use std::net::IpAddr;

use e2e::dns_hierarchy::data;
use e2e::unbound::Unbound;
use e2e::{Query, Server, addr};

use crate::common::{LAB_TOOLS, setup};

#[test]
fn lab_root_server_returns_delegation() {
    if !e2e::require(LAB_TOOLS) {
        return;
    }
    let s = setup();
    let root = s.dns.addr(Server::Root);
    let r = s
        .client
        .dig(root, &Query::new("www.plain.lab", "A").norecurse())
        .unwrap();
    assert_eq!(r.status, "NOERROR", "{}", r.raw);
    assert!(!r.aa() && r.answer.is_empty(), "{}", r.raw);
    let ns: Vec<_> = r.authority.iter().filter(|rr| rr.rtype == "NS").collect();
    assert_eq!(ns.len(), 1, "{}", r.raw);
    assert_eq!(
        (ns[0].name.as_str(), ns[0].data.as_str()),
        ("lab.", "ns.lab.")
    );
    assert!(
        r.additional
            .iter()
            .any(|rr| rr.data == addr::TLD.to_string()),
        "glue: {}",
        r.raw
    );

    // The root zone itself answers authoritatively, and the TLD delegates on.
    let r = s
        .client
        .dig(root, &Query::new(".", "SOA").norecurse())
        .unwrap();
    assert!(r.aa(), "{}", r.raw);
    let tld = s.dns.addr(Server::Tld);
    let r = s
        .client
        .dig(tld, &Query::new("www.plain.lab", "A").norecurse())
        .unwrap();
    assert!(
        r.authority
            .iter()
            .any(|rr| rr.rtype == "NS" && rr.data == "ns.leaf.lab."),
        "{}",
        r.raw
    );
}

#[test]
fn lab_signed_zones_carry_signatures_and_ds() {
    if !e2e::require(LAB_TOOLS) {
        return;
    }
    let s = setup();
    let leaf = s.dns.addr(Server::Leaf);
    let r = s
        .client
        .dig(leaf, &Query::new("www.secure.lab", "A").dnssec())
        .unwrap();
    assert!(r.aa(), "{}", r.raw);
    assert_eq!(r.answers("A"), [data::SECURE_A]);
    assert!(
        r.answers("RRSIG").iter().any(|d| d.starts_with("A 13 3 ")),
        "{}",
        r.raw
    );

    // The parents hold the DS records of the chain root -> lab -> secure.lab.
    let tld = s.dns.addr(Server::Tld);
    for child in ["secure.lab", "bogus.lab"] {
        let r = s
            .client
            .dig(tld, &Query::new(child, "DS").dnssec())
            .unwrap();
        assert_eq!(r.answers("DS").len(), 1, "{}", r.raw);
    }
    let root = s.dns.addr(Server::Root);
    let r = s
        .client
        .dig(root, &Query::new("lab", "DS").dnssec())
        .unwrap();
    assert_eq!(r.answers("DS").len(), 1, "{}", r.raw);
    let r = s
        .client
        .dig(tld, &Query::new("plain.lab", "DS").dnssec())
        .unwrap();
    assert!(
        r.answers("DS").is_empty(),
        "plain.lab is an insecure delegation: {}",
        r.raw
    );

    // bogus.lab serves the tampered address.
    let r = s
        .client
        .dig(leaf, &Query::new("www.bogus.lab", "A"))
        .unwrap();
    assert_eq!(r.answers("A"), [data::BOGUS_SERVED_A]);

    // The trust anchor holds the root KSK as served.
    let anchor = std::fs::read_to_string(&s.dns.trust_anchor).unwrap();
    let r = s.client.dig(root, &Query::new(".", "DNSKEY")).unwrap();
    let key = anchor.split_whitespace().last().unwrap();
    assert!(
        r.answers("DNSKEY")
            .iter()
            .any(|d| d.replace(' ', "").contains(key)),
        "{anchor}\n{}",
        r.raw
    );
}

#[test]
fn lab_plain_zone_data() {
    if !e2e::require(LAB_TOOLS) {
        return;
    }
    let s = setup();
    let leaf = s.dns.addr(Server::Leaf);
    let dig = |q: Query| s.client.dig(leaf, &q).unwrap();

    assert_eq!(
        dig(Query::new("www.plain.lab", "AAAA")).answers("AAAA"),
        [data::PLAIN_AAAA]
    );
    let r = dig(Query::new("v4only.plain.lab", "AAAA"));
    assert_eq!(
        (r.status.as_str(), r.answer.len()),
        ("NOERROR", 0),
        "{}",
        r.raw
    );
    let r = dig(Query::new("nope.plain.lab", "A"));
    assert_eq!(r.status, "NXDOMAIN");
    let soa = r.authority.iter().find(|rr| rr.rtype == "SOA").unwrap();
    assert!(
        soa.data.ends_with(&format!(" {}", data::PLAIN_NEG_TTL)),
        "{}",
        r.raw
    );
    let r = dig(Query::new("c1.plain.lab", "CNAME"));
    assert_eq!(r.answers("CNAME"), ["c2.plain.lab."]);

    // Truncation over UDP with a 1232 payload, full answer over TCP.
    let r = dig(Query::new("big.plain.lab", "TXT")
        .udp()
        .bufsize(1232)
        .ignore_tc());
    assert!(r.tc(), "{}", r.raw);
    let r = dig(Query::new("big.plain.lab", "TXT").bufsize(1232));
    assert!(r.retried_tcp && !r.tc(), "{}", r.raw);
    assert_eq!(r.answers("TXT").len(), data::BIG_TXT_COUNT);
    assert_eq!(r.transport.as_deref(), Some("TCP"));

    // The fwd.lab upstreams answer RD queries and tell who they are.
    for (server, name) in [(Server::Fwd1, "\"fwd1\""), (Server::Fwd2, "\"fwd2\"")] {
        let r = s
            .client
            .dig(s.dns.addr(server), &Query::new("x.fwd.lab", "TXT"))
            .unwrap();
        assert!(r.aa(), "{}", r.raw);
        assert_eq!(r.answers("TXT"), [name]);
    }
    let site2 = s.dns.addr(Server::Site2);
    let r = s
        .client
        .dig(site2, &Query::new("host.site2.internal", "A"))
        .unwrap();
    assert_eq!(r.answers("A"), [data::SITE2_A]);

    // IPv6 transport works too.
    let v6 = IpAddr::V6(addr::v6_of(addr::LEAF));
    let r = s.client.dig(v6, &Query::new("www.plain.lab", "A")).unwrap();
    assert_eq!(r.answers("A"), [data::PLAIN_A]);
}

#[test]
fn lab_servers_stop_and_start() {
    if !e2e::require(LAB_TOOLS) {
        return;
    }
    let mut s = setup();
    let fwd1 = s.dns.addr(Server::Fwd1);
    let q = Query::new("www.fwd.lab", "A").timeout(1);
    assert!(s.client.dig(fwd1, &q).is_ok());
    s.dns.stop(Server::Fwd1);
    assert!(s.client.dig(fwd1, &q).is_err());
    assert!(s.client.dig(s.dns.addr(Server::Fwd2), &q).is_ok());
    s.dns.start_server(Server::Fwd1).unwrap();
    assert_eq!(s.client.dig(fwd1, &q).unwrap().answers("A"), [data::FWD_A]);

    s.dns.stop_all();
    assert!(s.client.dig(s.dns.addr(Server::Root), &q).is_err());
    s.dns.start_all().unwrap();
}

/// The whole chain validates with an independent resolver: proof that the
/// keys, DS records, glue and hints are right, whatever routerd does.
#[test]
fn lab_validates_with_reference_resolver() {
    if !e2e::require(&[LAB_TOOLS, &["unbound"]].concat()) {
        return;
    }
    let s = setup();
    let host = s.lab.add_host("unbound", addr::REFERENCE).unwrap();
    let unbound = Unbound::start(&host, &s.dns).unwrap();
    let dig = |q: Query| s.client.dig(unbound.addr(), &q).unwrap();

    let r = dig(Query::new("www.secure.lab", "A").dnssec());
    assert_eq!(r.status, "NOERROR", "{}", r.raw);
    assert!(r.ad(), "secure.lab must validate: {}", r.raw);
    assert_eq!(r.answers("A"), [data::SECURE_A]);

    let r = dig(Query::new("www.bogus.lab", "A").dnssec());
    assert_eq!(r.status, "SERVFAIL", "bogus.lab must fail: {}", r.raw);
    let r = dig(Query::new("www.bogus.lab", "A").cdflag());
    assert_eq!(r.answers("A"), [data::BOGUS_SERVED_A]);

    let r = dig(Query::new("www.plain.lab", "A").dnssec());
    assert!(!r.ad(), "plain.lab is insecure: {}", r.raw);
    assert_eq!(r.answers("A"), [data::PLAIN_A]);
    let r = dig(Query::new("nope.secure.lab", "A").dnssec());
    assert!(r.status == "NXDOMAIN" && r.ad(), "{}", r.raw);
    let r = dig(Query::new("c1.plain.lab", "A"));
    assert_eq!(r.answers("A"), [data::CHAIN_A]);
    let r = dig(Query::new("big.plain.lab", "TXT"));
    assert_eq!(r.answers("TXT").len(), data::BIG_TXT_COUNT);
    let r = dig(Query::new("host.site2.internal", "A"));
    assert_eq!(r.answers("A"), [data::SITE2_A]);

    // delv validates with the lab anchor against the validating resolver.
    if e2e::require::find_tool("delv").is_some() {
        let anchor = s.dns.trust_anchor_bind.to_string_lossy().into_owned();
        let server = format!("@{}", unbound.addr());
        let out = s
            .client
            .exec("delv", &["-a", &anchor, &server, "www.secure.lab", "A"])
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains("; fully validated"),
            "{text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
