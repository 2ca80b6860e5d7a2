//! Protocol details clients depend on: RFC 8482 ANY, EDNS versions, UDP
//! size limits, the question's case, and the per-client rate limit.

use std::net::SocketAddr;
use std::time::Duration;

use e2e::dns_hierarchy::data;
use e2e::json::Value;
use e2e::{DigResult, Host, Query, Routerd, RouterdConfig, Server, addr};

use crate::common::{CTL_TOOLS, ROUTERD_TOOLS, Setup, setup};

fn q(name: &str, rtype: &str) -> Query {
    Query::new(name, rtype).timeout(5)
}

fn ask(s: &Setup, r: &Routerd, query: Query) -> DigResult {
    s.client.dig(r.addr(), &query).unwrap()
}

#[test]
fn any_query_gets_minimal_hinfo_answer() {
    if !e2e::require(ROUTERD_TOOLS) {
        return;
    }
    let s = setup();
    let mut r = RouterdConfig::recursive(&s.dns).start(&s.router).unwrap();
    // Once before the name is cached, once after, and over TCP.
    let warm = ask(&s, &r, q("www.plain.lab", "A"));
    assert_eq!(warm.answers("A"), [data::PLAIN_A], "{}", warm.raw);
    for query in [
        q("v4only.plain.lab", "ANY"),
        q("www.plain.lab", "ANY"),
        q("www.plain.lab", "ANY").tcp(),
    ] {
        let a = ask(&s, &r, query);
        assert_eq!(a.status, "NOERROR", "{}", a.raw);
        assert_eq!(a.answer.len(), 1, "RFC 8482: one record only: {}", a.raw);
        let hinfo = &a.answer[0];
        assert_eq!(hinfo.rtype, "HINFO", "{}", a.raw);
        assert_eq!(hinfo.data, "\"RFC8482\" \"\"", "{}", a.raw);
        assert!(!a.tc(), "{}", a.raw);
    }
    r.check_running().unwrap();
}

#[test]
fn edns_version_1_gets_badvers() {
    if !e2e::require(ROUTERD_TOOLS) {
        return;
    }
    let s = setup();
    let mut r = RouterdConfig::recursive(&s.dns).start(&s.router).unwrap();
    // +noednsnegotiation: show the first answer, do not retry with v0.
    for query in [
        q("www.plain.lab", "A")
            .arg("+edns=1")
            .arg("+noednsnegotiation"),
        q("www.plain.lab", "A")
            .arg("+edns=1")
            .arg("+noednsnegotiation")
            .tcp(),
    ] {
        let a = ask(&s, &r, query);
        // RCODE 16 is BADVERS with an OPT record (BADSIG without; hickory
        // names the value BADSIG), which dig prints as BADVERS.
        assert_eq!(a.status, "BADVERS", "{}", a.raw);
        assert!(a.answer.is_empty(), "{}", a.raw);
        assert_eq!(
            a.edns_version,
            Some(0),
            "RFC 6891 6.1.3: the OPT carries the version we speak: {}",
            a.raw
        );
    }
    // Version 0 is of course fine.
    let a = ask(&s, &r, q("www.plain.lab", "A").arg("+edns=0"));
    assert_eq!(a.answers("A"), [data::PLAIN_A], "{}", a.raw);
    r.check_running().unwrap();
}

#[test]
fn udp_answers_respect_payload_limits() {
    if !e2e::require(ROUTERD_TOOLS) {
        return;
    }
    let s = setup();
    let mut r = RouterdConfig::recursive(&s.dns).start(&s.router).unwrap();
    // Each twice: the first answer is resolved, the second comes from the
    // cache, and both paths must respect the limits.
    for round in ["resolved", "cached"] {
        // Without EDNS: 512 bytes at most.
        let a = ask(
            &s,
            &r,
            q("big.plain.lab", "TXT").udp().bufsize(0).ignore_tc(),
        );
        assert!(a.tc(), "{round}: {}", a.raw);
        let size = a.msg_size.unwrap_or_else(|| panic!("no size: {}", a.raw));
        assert!(size <= 512, "{round}: {size} bytes without EDNS: {}", a.raw);
        assert_eq!(
            a.edns_udp, None,
            "no OPT for a client without EDNS: {}",
            a.raw
        );

        // The client offers 4096, the server caps at max_udp_payload.
        let a = ask(
            &s,
            &r,
            q("big.plain.lab", "TXT").udp().bufsize(4096).ignore_tc(),
        );
        assert!(a.tc(), "{round}: {}", a.raw);
        let size = a.msg_size.unwrap_or_else(|| panic!("no size: {}", a.raw));
        assert!(
            size <= 1232,
            "{round}: {size} bytes though max_udp_payload = 1232: {}",
            a.raw
        );
        assert_eq!(a.edns_udp, Some(1232), "{round}: {}", a.raw);

        // A small answer is not truncated, with or without EDNS.
        for bufsize in [0, 4096] {
            let a = ask(&s, &r, q("www.plain.lab", "A").udp().bufsize(bufsize));
            assert!(!a.tc(), "{}", a.raw);
            assert_eq!(a.answers("A"), [data::PLAIN_A], "{}", a.raw);
        }
    }
    r.check_running().unwrap();
}

/// With a smaller max_udp_payload, that is the cap (and what we advertise).
#[test]
fn udp_answers_respect_configured_payload() {
    if !e2e::require(ROUTERD_TOOLS) {
        return;
    }
    let s = setup();
    let mut r = RouterdConfig::recursive(&s.dns)
        .with(|c| c.max_udp_payload = 800)
        .start(&s.router)
        .unwrap();
    for _ in 0..2 {
        let a = ask(
            &s,
            &r,
            q("big.plain.lab", "TXT").udp().bufsize(4096).ignore_tc(),
        );
        assert!(a.tc(), "{}", a.raw);
        assert!(a.msg_size.is_some_and(|n| n <= 800), "{}", a.raw);
        assert_eq!(a.edns_udp, Some(800), "{}", a.raw);
    }
    r.check_running().unwrap();
}

fn assert_echoed(a: &DigResult, name: &str) {
    assert_eq!(
        a.question.first().map(|(n, _)| n.as_str()),
        Some(name),
        "question case not echoed: {}",
        a.raw
    );
    assert!(!a.answer.is_empty(), "{}", a.raw);
    assert_eq!(a.answer[0].name, name, "answer owner case: {}", a.raw);
}

#[test]
fn question_case_is_echoed() {
    if !e2e::require(ROUTERD_TOOLS) {
        return;
    }
    let s = setup();
    let fwd1 = s.dns.addr(Server::Fwd1);
    let mut r = RouterdConfig::recursive(&s.dns)
        .forward_zone("fwd.lab", &[fwd1])
        .local_record("nas.home.arpa", "A", "10.53.7.7", 300)
        .start(&s.router)
        .unwrap();
    // Cached in lower case first, then asked in mixed case: a cache hit
    // must still carry the client's spelling (0x20 from the client side).
    let a = ask(&s, &r, q("www.plain.lab", "A"));
    assert_eq!(a.answers("A"), [data::PLAIN_A], "{}", a.raw);
    for query in [q("WwW.PlAiN.lAb", "A").udp(), q("WwW.PlAiN.lAb", "A").tcp()] {
        assert_echoed(&ask(&s, &r, query), "WwW.PlAiN.lAb.");
    }
    // Mixed case on a miss, then another spelling on the hit.
    assert_echoed(
        &ask(&s, &r, q("V4oNlY.pLaIn.LaB", "A")),
        "V4oNlY.pLaIn.LaB.",
    );
    assert_echoed(
        &ask(&s, &r, q("v4ONLY.PLAIN.lab", "A")),
        "v4ONLY.PLAIN.lab.",
    );
    // Forward zones and local records too.
    assert_echoed(&ask(&s, &r, q("wWw.FwD.lAb", "A")), "wWw.FwD.lAb.");
    assert_echoed(&ask(&s, &r, q("www.fwd.LAB", "A")), "www.fwd.LAB.");
    assert_echoed(&ask(&s, &r, q("NaS.HoMe.ArPa", "A")), "NaS.HoMe.ArPa.");
    r.check_running().unwrap();
}

/// `e2e-probe udp-burst`: (sent, answered, intact), answers checked
/// against `expect` when given.
fn burst(
    from: &Host,
    target: SocketAddr,
    name: &str,
    count: u16,
    expect: Option<&str>,
) -> (usize, usize, usize) {
    let probe = env!("CARGO_BIN_EXE_e2e-probe");
    let (target, count) = (target.to_string(), count.to_string());
    let mut args = vec!["udp-burst", &target, name, &count];
    args.extend(expect);
    let out = from.exec(probe, &args).unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let field = |key: &str| -> usize {
        text.split_whitespace()
            .find_map(|w| w.strip_prefix(key)?.parse().ok())
            .unwrap_or_else(|| panic!("no {key} in {text:?}"))
    };
    (field("sent="), field("answered="), field("intact="))
}

#[test]
fn rate_limit_drops_a_flood_but_not_other_clients() {
    if !e2e::require(CTL_TOOLS) {
        return;
    }
    let s = setup();
    let flooder = s.lab.add_host("flooder", addr::CLIENT2).unwrap();
    let mut r = RouterdConfig::recursive(&s.dns)
        .with(|c| {
            c.rate_limit_qps = 5;
            c.rate_limit_burst = 10;
        })
        .start(&s.router)
        .unwrap();
    let a = ask(&s, &r, q("www.plain.lab", "A"));
    assert_eq!(a.answers("A"), [data::PLAIN_A], "{}", a.raw);
    let limited0 = r
        .status_json()
        .unwrap()
        .get("dns.totals.rate_limited")
        .and_then(Value::as_u64)
        .unwrap();

    let target = SocketAddr::new(r.addr(), 53);
    let (sent, answered, _) = burst(&flooder, target, "www.plain.lab", 200, None);
    assert_eq!(sent, 200);
    assert!(
        answered >= 5,
        "the burst allowance (10) should be answered, got {answered}"
    );
    assert!(
        answered <= 40,
        "5 qps with a burst of 10, yet {answered} of 200 answered"
    );

    // Another client is not affected.
    for _ in 0..3 {
        let a = ask(&s, &r, q("www.plain.lab", "A"));
        assert_eq!(a.answers("A"), [data::PLAIN_A], "{}", a.raw);
    }
    let status = r.status_json().unwrap();
    let limited = status
        .get("dns.totals.rate_limited")
        .and_then(Value::as_u64)
        .unwrap()
        - limited0;
    assert!(
        limited as usize >= 200 - answered - 5,
        "{limited} counted as rate-limited, {answered} of 200 answered: {status:?}"
    );

    // The flooder is served again once its bucket refills.
    std::thread::sleep(Duration::from_millis(1500));
    let a = flooder
        .dig(r.addr(), &q("www.plain.lab", "A").tries(2))
        .unwrap();
    assert_eq!(a.answers("A"), [data::PLAIN_A], "{}", a.raw);
    r.check_running().unwrap();
}

/// A client with many queries in flight on one socket (a forwarder, a load
/// generator) has its equal-sized answers sent as one segmented send; each
/// must still reach it as its own whole datagram, across the lab's veth
/// pairs and bridge.
#[test]
fn a_burst_from_one_socket_gets_every_answer_whole() {
    if !e2e::require(CTL_TOOLS) {
        return;
    }
    let s = setup();
    let mut r = RouterdConfig::recursive(&s.dns)
        .with(|c| {
            c.rate_limit_qps = 0;
            c.workers = 1;
        })
        .start(&s.router)
        .unwrap();
    let a = ask(&s, &r, q("www.plain.lab", "A"));
    assert_eq!(a.answers("A"), [data::PLAIN_A], "{}", a.raw);

    let target = SocketAddr::new(r.addr(), 53);
    let count = 200;
    let (sent, answered, intact) = burst(
        &s.client,
        target,
        "www.plain.lab",
        count,
        Some(data::PLAIN_A),
    );
    assert_eq!(sent, usize::from(count));
    assert_eq!(answered, sent, "every query of the burst is answered");
    assert_eq!(intact, answered, "every answer is one whole response");
    let segmented = r
        .status_json()
        .unwrap()
        .get("dns.totals.udp_segmented")
        .and_then(Value::as_u64)
        .unwrap();
    assert!(
        segmented > 0,
        "a burst of {count} equal answers to one socket went out without a single segmented send"
    );
    r.check_running().unwrap();
}
