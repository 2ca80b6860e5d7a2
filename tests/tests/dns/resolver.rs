//! routerd over the lab: each test starts its own lab, hierarchy and
//! routerd, and queries it with dig from a client host.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use e2e::dig::reverse_name;
use e2e::dns_hierarchy::data;
use e2e::{DigResult, Query, Routerd, RouterdConfig, Server, addr};

use crate::common::{ROUTERD_TOOLS, Setup, setup};

/// A query with a timeout generous enough for a debug build's first,
/// uncached recursion (which also fetches DNSKEYs and DS records).
fn q(name: &str, rtype: &str) -> Query {
    Query::new(name, rtype).timeout(5)
}

fn start(s: &Setup, config: RouterdConfig) -> Routerd {
    config.start(&s.router).unwrap()
}

fn ask(s: &Setup, r: &Routerd, query: Query) -> DigResult {
    s.client.dig(r.addr(), &query).unwrap()
}

#[test]
fn recursion_a_and_aaaa() {
    if !e2e::require(ROUTERD_TOOLS) {
        return;
    }
    let s = setup();
    let v6 = IpAddr::V6(addr::v6_of(addr::ROUTER));
    let mut r = start(
        &s,
        RouterdConfig::recursive(&s.dns).with(|c| c.listen.push(SocketAddr::new(v6, 53))),
    );
    let a = ask(&s, &r, q("www.plain.lab", "A"));
    assert_eq!(a.status, "NOERROR", "{}", a.raw);
    assert!(a.ra() && !a.aa(), "{}", a.raw);
    assert_eq!(a.answers("A"), [data::PLAIN_A], "{}", a.raw);
    let aaaa = ask(&s, &r, q("www.plain.lab", "AAAA"));
    assert_eq!(aaaa.answers("AAAA"), [data::PLAIN_AAAA], "{}", aaaa.raw);

    // Over TCP and over IPv6 as well.
    let tcp = ask(&s, &r, q("www.plain.lab", "A").tcp());
    assert_eq!(tcp.answers("A"), [data::PLAIN_A], "{}", tcp.raw);
    let over_v6 = s.client.dig(v6, &q("www.plain.lab", "AAAA")).unwrap();
    assert_eq!(
        over_v6.answers("AAAA"),
        [data::PLAIN_AAAA],
        "{}",
        over_v6.raw
    );
    r.check_running().unwrap();
}

#[test]
fn recursion_follows_cname_chain() {
    if !e2e::require(ROUTERD_TOOLS) {
        return;
    }
    let s = setup();
    let mut r = start(&s, RouterdConfig::recursive(&s.dns));
    let a = ask(&s, &r, q("c1.plain.lab", "A"));
    assert_eq!(a.status, "NOERROR", "{}", a.raw);
    assert_eq!(
        a.names("CNAME"),
        ["c2.plain.lab.", "c3.plain.lab.", "target.plain.lab."],
        "{}",
        a.raw
    );
    assert_eq!(a.answers("A"), [data::CHAIN_A], "{}", a.raw);
    assert_eq!(
        a.answer.last().map(|rr| rr.rtype.as_str()),
        Some("A"),
        "{}",
        a.raw
    );
    // Starting mid-chain uses what the first query cached.
    let a = ask(&s, &r, q("c2.plain.lab", "A"));
    assert_eq!(a.answers("CNAME").len(), 2, "{}", a.raw);
    assert_eq!(a.answers("A"), [data::CHAIN_A], "{}", a.raw);
    r.check_running().unwrap();
}

/// With case randomisation on (the default) routerd asks upstream in mixed
/// case; the client must get its own spelling back, not the random one.
#[test]
fn answers_keep_the_client_case() {
    if !e2e::require(ROUTERD_TOOLS) {
        return;
    }
    let s = setup();
    let r = start(&s, RouterdConfig::recursive(&s.dns));
    // The zone is all lower case, so any upper case is leaked randomisation.
    let a = ask(&s, &r, q("c1.plain.lab", "A"));
    let leaked: Vec<_> = a
        .answer
        .iter()
        .filter(|rr| {
            rr.name != rr.name.to_ascii_lowercase() || rr.data != rr.data.to_ascii_lowercase()
        })
        .collect();
    assert!(
        leaked.is_empty(),
        "randomised case leaked: {leaked:?}\n{}",
        a.raw
    );
    // A mixed-case question gets its spelling echoed in the answer owner.
    let a = ask(&s, &r, q("WwW.PlAiN.LaB", "A"));
    assert_eq!(
        a.answer.first().map(|rr| rr.name.as_str()),
        Some("WwW.PlAiN.LaB."),
        "{}",
        a.raw
    );
}

#[test]
fn recursion_nxdomain_and_nodata() {
    if !e2e::require(ROUTERD_TOOLS) {
        return;
    }
    let s = setup();
    let mut r = start(&s, RouterdConfig::recursive(&s.dns));
    // Twice: the second answer comes from the negative cache.
    for _ in 0..2 {
        let nx = ask(&s, &r, q("nope.plain.lab", "A"));
        assert_eq!(nx.status, "NXDOMAIN", "{}", nx.raw);
        assert!(nx.answer.is_empty(), "{}", nx.raw);
        let soa = nx.authority.iter().find(|rr| rr.rtype == "SOA");
        let soa = soa.unwrap_or_else(|| panic!("NXDOMAIN without SOA: {}", nx.raw));
        assert!(soa.ttl <= data::PLAIN_NEG_TTL, "negative TTL: {}", nx.raw);

        let nodata = ask(&s, &r, q("v4only.plain.lab", "AAAA"));
        assert_eq!(nodata.status, "NOERROR", "{}", nodata.raw);
        assert!(nodata.answer.is_empty(), "{}", nodata.raw);
        assert!(
            nodata.authority.iter().any(|rr| rr.rtype == "SOA"),
            "{}",
            nodata.raw
        );
    }
    let a = ask(&s, &r, q("v4only.plain.lab", "A"));
    assert_eq!(a.answers("A"), [data::V4ONLY_A], "{}", a.raw);
    r.check_running().unwrap();
}

#[test]
fn dnssec_secure_answers_have_ad() {
    if !e2e::require(ROUTERD_TOOLS) {
        return;
    }
    let s = setup();
    let mut r = start(&s, RouterdConfig::recursive(&s.dns));
    let a = ask(&s, &r, q("www.secure.lab", "A").dnssec());
    assert_eq!(a.status, "NOERROR", "{}", a.raw);
    assert!(a.ad(), "secure answer without AD: {}", a.raw);
    assert_eq!(a.answers("A"), [data::SECURE_A], "{}", a.raw);
    assert!(
        !a.answers("RRSIG").is_empty(),
        "DO set but no RRSIG: {}",
        a.raw
    );

    // RFC 6840 5.7: AD in the query (no DO) also asks for the AD bit.
    let a = ask(&s, &r, q("www.secure.lab", "AAAA").adflag());
    assert!(a.ad(), "{}", a.raw);

    // Proven non-existence in a signed zone is secure too.
    let nx = ask(&s, &r, q("nope.secure.lab", "A").dnssec());
    assert_eq!(nx.status, "NXDOMAIN", "{}", nx.raw);
    assert!(nx.ad(), "{}", nx.raw);

    // An insecure delegation resolves, without AD.
    let plain = ask(&s, &r, q("www.plain.lab", "A").dnssec());
    assert_eq!(plain.status, "NOERROR", "{}", plain.raw);
    assert!(!plain.ad(), "plain.lab is unsigned: {}", plain.raw);
    r.check_running().unwrap();
}

#[test]
fn dnssec_bogus_is_servfail() {
    if !e2e::require(ROUTERD_TOOLS) {
        return;
    }
    let s = setup();
    let mut r = start(&s, RouterdConfig::recursive(&s.dns));
    for query in [q("www.bogus.lab", "A").dnssec(), q("www.bogus.lab", "A")] {
        let a = ask(&s, &r, query);
        assert_eq!(
            a.status, "SERVFAIL",
            "bogus data must not be served: {}",
            a.raw
        );
        assert!(a.answers("A").is_empty(), "{}", a.raw);
    }
    // The secure sibling still validates.
    let a = ask(&s, &r, q("www.secure.lab", "A").dnssec());
    assert!(a.ad(), "{}", a.raw);
    r.check_running().unwrap();
}

/// `dnssec = false` switches validation off: bogus data is served, and
/// nothing is marked authenticated.
#[test]
fn dnssec_validation_can_be_switched_off() {
    if !e2e::require(ROUTERD_TOOLS) {
        return;
    }
    let s = setup();
    let mut r = start(
        &s,
        RouterdConfig::recursive(&s.dns).with(|c| c.dnssec = false),
    );
    let bogus = ask(&s, &r, q("www.bogus.lab", "A"));
    assert_eq!(bogus.status, "NOERROR", "{}", bogus.raw);
    assert!(!bogus.answers("A").is_empty(), "{}", bogus.raw);
    let secure = ask(&s, &r, q("www.secure.lab", "A").dnssec());
    assert_eq!(secure.status, "NOERROR", "{}", secure.raw);
    assert!(!secure.ad(), "no validation, no AD: {}", secure.raw);
    r.check_running().unwrap();
}

/// RFC 4035 3.2.2: with CD set the resolver returns the data unvalidated.
#[test]
fn dnssec_bogus_with_cd_returns_data() {
    if !e2e::require(ROUTERD_TOOLS) {
        return;
    }
    let s = setup();
    let r = start(&s, RouterdConfig::recursive(&s.dns));
    let a = ask(&s, &r, q("www.bogus.lab", "A").dnssec().cdflag());
    assert_eq!(a.status, "NOERROR", "{}", a.raw);
    assert_eq!(a.answers("A"), [data::BOGUS_SERVED_A], "{}", a.raw);
    assert!(!a.ad(), "{}", a.raw);
}

#[test]
fn tcp_fallback_after_truncation() {
    if !e2e::require(ROUTERD_TOOLS) {
        return;
    }
    let s = setup();
    let mut r = start(&s, RouterdConfig::recursive(&s.dns));
    let udp = ask(
        &s,
        &r,
        q("big.plain.lab", "TXT").udp().bufsize(1232).ignore_tc(),
    );
    assert!(
        udp.tc(),
        "a >1500-byte answer must be truncated over UDP: {}",
        udp.raw
    );
    assert!(
        udp.answers("TXT").len() < data::BIG_TXT_COUNT,
        "{}",
        udp.raw
    );

    let full = ask(&s, &r, q("big.plain.lab", "TXT").bufsize(1232));
    assert!(
        full.retried_tcp,
        "dig should have retried over TCP: {}",
        full.raw
    );
    assert_eq!(full.transport.as_deref(), Some("TCP"), "{}", full.raw);
    assert!(!full.tc(), "{}", full.raw);
    assert_eq!(
        full.answers("TXT").len(),
        data::BIG_TXT_COUNT,
        "{}",
        full.raw
    );

    // Without EDNS (512 bytes) it is truncated as well.
    let small = ask(
        &s,
        &r,
        q("big.plain.lab", "TXT").udp().bufsize(0).ignore_tc(),
    );
    assert!(small.tc(), "{}", small.raw);
    r.check_running().unwrap();
}

#[test]
fn forward_mode_fails_over_to_second_upstream() {
    if !e2e::require(ROUTERD_TOOLS) {
        return;
    }
    let mut s = setup();
    let upstreams = [s.dns.addr(Server::Fwd1), s.dns.addr(Server::Fwd2)];
    let mut r = start(&s, RouterdConfig::forward(&s.dns, &upstreams));
    let a = ask(&s, &r, q("www.fwd.lab", "A"));
    assert_eq!(a.answers("A"), [data::FWD_A], "{}", a.raw);
    let who = ask(&s, &r, q("first.fwd.lab", "TXT"));
    assert_eq!(
        who.answers("TXT"),
        ["\"fwd1\""],
        "the first upstream comes first: {}",
        who.raw
    );

    s.dns.stop(Server::Fwd1);
    // The first query after the failure may wait for a timeout; allow
    // two tries, then every later query must go straight to fwd2.
    let who = ask(&s, &r, q("second.fwd.lab", "TXT").tries(2));
    assert_eq!(who.answers("TXT"), ["\"fwd2\""], "{}", who.raw);
    for name in ["third.fwd.lab", "fourth.fwd.lab"] {
        let who = ask(&s, &r, Query::new(name, "TXT").timeout(2));
        assert_eq!(who.answers("TXT"), ["\"fwd2\""], "{}", who.raw);
    }
    // Cached data from before the failure is still there.
    let a = ask(&s, &r, q("www.fwd.lab", "A"));
    assert_eq!(a.answers("A"), [data::FWD_A], "{}", a.raw);
    r.check_running().unwrap();
}

#[test]
fn conditional_forwarding_reaches_undelegated_zone() {
    if !e2e::require(ROUTERD_TOOLS) {
        return;
    }
    let s = setup();
    let site2 = s.dns.addr(Server::Site2);
    // Default DNSSEC setting (on): site2.internal is not in the signed
    // hierarchy, as with home.arpa or a corporate domain at home.
    let config = RouterdConfig::recursive(&s.dns).forward_zone("site2.internal", &[site2]);
    let mut r = start(&s, config);
    let a = ask(&s, &r, q("host.site2.internal", "A"));
    assert_eq!(a.status, "NOERROR", "{}", a.raw);
    assert_eq!(a.answers("A"), [data::SITE2_A], "{}", a.raw);
    let nx = ask(&s, &r, q("nope.site2.internal", "A"));
    assert_eq!(nx.status, "NXDOMAIN", "{}", nx.raw);
    // Everything else is still resolved from the root.
    let a = ask(&s, &r, q("www.plain.lab", "A"));
    assert_eq!(a.answers("A"), [data::PLAIN_A], "{}", a.raw);
    // A sibling of the forward zone is not forwarded: the lab root has no
    // "internal." so it does not exist.
    let nx = ask(&s, &r, q("host.site3.internal", "A"));
    assert_eq!(nx.status, "NXDOMAIN", "{}", nx.raw);
    r.check_running().unwrap();
}

#[test]
fn local_records_and_derived_ptr() {
    if !e2e::require(ROUTERD_TOOLS) {
        return;
    }
    let s = setup();
    let config = RouterdConfig::recursive(&s.dns)
        .local_record("nas.home.arpa", "A", "10.53.7.7", 300)
        .local_record("nas.home.arpa", "AAAA", "fd53::7:7", 300);
    let mut r = start(&s, config);
    let a = ask(&s, &r, q("nas.home.arpa", "A"));
    assert_eq!(a.status, "NOERROR", "{}", a.raw);
    assert_eq!(a.answers("A"), ["10.53.7.7"], "{}", a.raw);
    assert_eq!(a.answer[0].ttl, 300, "{}", a.raw);
    assert!(
        a.aa(),
        "local records are answered authoritatively: {}",
        a.raw
    );
    let aaaa = ask(&s, &r, q("nas.home.arpa", "AAAA"));
    assert_eq!(aaaa.answers("AAAA"), ["fd53::7:7"], "{}", aaaa.raw);

    for ip in ["10.53.7.7", "fd53::7:7"] {
        let name = reverse_name(ip.parse().unwrap());
        let ptr = ask(&s, &r, q(&name, "PTR"));
        assert_eq!(ptr.names("PTR"), ["nas.home.arpa."], "{}", ptr.raw);
    }
    // Recursion still works next to them.
    let a = ask(&s, &r, q("www.plain.lab", "A"));
    assert_eq!(a.answers("A"), [data::PLAIN_A], "{}", a.raw);
    r.check_running().unwrap();
}

/// Stub resolvers (glibc) do not chase CNAMEs themselves, so a local CNAME
/// must come with its target's address, local or recursed.
#[test]
fn local_cname_is_chased() {
    if !e2e::require(ROUTERD_TOOLS) {
        return;
    }
    let s = setup();
    let config = RouterdConfig::recursive(&s.dns)
        .local_record("nas.home.arpa", "A", "10.53.7.7", 300)
        .local_record("alias.home.arpa", "CNAME", "nas.home.arpa", 300)
        .local_record("web.home.arpa", "CNAME", "www.plain.lab", 300);
    let r = start(&s, config);
    let alias = ask(&s, &r, q("alias.home.arpa", "A"));
    assert_eq!(alias.names("CNAME"), ["nas.home.arpa."], "{}", alias.raw);
    assert_eq!(alias.answers("A"), ["10.53.7.7"], "{}", alias.raw);
    let web = ask(&s, &r, q("web.home.arpa", "A"));
    assert_eq!(web.names("CNAME"), ["www.plain.lab."], "{}", web.raw);
    assert_eq!(web.answers("A"), [data::PLAIN_A], "{}", web.raw);
}

#[test]
fn refused_outside_allow_list() {
    if !e2e::require(ROUTERD_TOOLS) {
        return;
    }
    let s = setup();
    let outsider = s.lab.add_host("outsider", addr::OUTSIDER).unwrap();
    let mut r = start(&s, RouterdConfig::recursive(&s.dns));
    for query in [q("www.plain.lab", "A"), q("www.plain.lab", "A").tcp()] {
        let a = outsider.dig(r.addr(), &query).unwrap();
        assert_eq!(a.status, "REFUSED", "{}", a.raw);
        assert!(a.answer.is_empty(), "{}", a.raw);
    }
    let a = ask(&s, &r, q("www.plain.lab", "A"));
    assert_eq!(a.answers("A"), [data::PLAIN_A], "{}", a.raw);
    // Not even cached data leaks to the outsider.
    let a = outsider.dig(r.addr(), &q("www.plain.lab", "A")).unwrap();
    assert_eq!(a.status, "REFUSED", "{}", a.raw);
    r.check_running().unwrap();
}

#[test]
fn serve_stale_when_hierarchy_is_down() {
    if !e2e::require(ROUTERD_TOOLS) {
        return;
    }
    let mut s = setup();
    let mut r = start(&s, RouterdConfig::recursive(&s.dns));
    let a = ask(&s, &r, q("www.stale.lab", "A"));
    assert_eq!(a.answers("A"), [data::STALE_A], "{}", a.raw);
    assert!(a.answer[0].ttl <= data::STALE_TTL, "{}", a.raw);

    s.dns.stop_all();
    std::thread::sleep(Duration::from_secs(u64::from(data::STALE_TTL) + 2));
    let stale = ask(&s, &r, q("www.stale.lab", "A").timeout(6));
    assert_eq!(
        stale.status, "NOERROR",
        "expired entry not served: {}",
        stale.raw
    );
    assert_eq!(stale.answers("A"), [data::STALE_A], "{}", stale.raw);
    let ttl = stale.answer[0].ttl;
    assert!(
        ttl > 0 && ttl <= 30,
        "stale answers carry a 30 s TTL, got {ttl}"
    );
    // Names never cached fail rather than hang.
    let miss = s
        .client
        .dig(r.addr(), &q("other.stale.lab", "A").timeout(8));
    if let Ok(miss) = miss {
        assert_eq!(miss.status, "SERVFAIL", "{}", miss.raw);
    }
    r.check_running().unwrap();
}

#[test]
fn survives_malformed_packet_flood() {
    if !e2e::require(ROUTERD_TOOLS) {
        return;
    }
    let s = setup();
    let flooder = s.lab.add_host("flooder", addr::CLIENT2).unwrap();
    let mut r = start(&s, RouterdConfig::recursive(&s.dns));
    let a = ask(&s, &r, q("www.plain.lab", "A"));
    assert_eq!(a.answers("A"), [data::PLAIN_A], "{}", a.raw);

    let target = SocketAddr::new(r.addr(), 53).to_string();
    let flood = env!("CARGO_BIN_EXE_e2e-flood");
    let out = flooder.exec(flood, &[&target, "20000", "42"]).unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    r.check_running().unwrap();
    let a = ask(&s, &r, q("www.plain.lab", "A"));
    assert_eq!(a.answers("A"), [data::PLAIN_A], "{}", a.raw);
    // Fresh recursion, too, and the flooder itself is still served.
    let a = ask(&s, &r, q("c1.plain.lab", "A"));
    assert_eq!(a.answers("A"), [data::CHAIN_A], "{}", a.raw);
    let a = flooder
        .dig(r.addr(), &q("www.secure.lab", "A").tries(3))
        .unwrap();
    assert_eq!(a.answers("A"), [data::SECURE_A], "{}", a.raw);
    r.check_running().unwrap();
}
