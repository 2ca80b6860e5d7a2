//! What recursion looks like to the authoritative servers, seen with
//! tcpdump in the router's namespace: QNAME minimisation (RFC 9156) keeps
//! the full name from servers that only delegate, and 0x20 randomises the
//! case of every name sent (both done by hickory's recursor; checked here
//! because a config option that silently does nothing would not be seen
//! any other way).

use std::time::Duration;

use e2e::dns_hierarchy::data;
use e2e::{Query, RouterdConfig, addr};

use crate::common::{ROUTERD_TOOLS, setup};

/// Query names routerd sent, by server address, from tcpdump's lines such
/// as `10.53.0.53.4123 > 10.53.0.1.53: 4711+ [1au] NS? lAB. (32)`.
fn queries_sent(capture: &str) -> Vec<(String, String)> {
    capture
        .lines()
        .filter_map(|line| {
            let (_, after) = line.split_once(" > ")?;
            let (dest, rest) = after.split_once(": ")?;
            let server = dest.rsplit_once('.')?.0.to_string();
            let name = rest
                .split_whitespace()
                .skip_while(|w| !w.ends_with('?'))
                .nth(1)?
                .to_string();
            Some((server, name))
        })
        .collect()
}

#[test]
fn recursion_minimises_and_randomises_names_on_the_wire() {
    if !e2e::require(&[ROUTERD_TOOLS, &["tcpdump"]].concat()) {
        return;
    }
    let s = setup();
    let filter = format!("udp and dst port 53 and src host {}", addr::ROUTER);
    let mut capture = s
        .router
        .spawn(
            "tcpdump",
            "tcpdump",
            &["-n", "-l", "-i", "eth0", "-c", "500", &filter],
        )
        .unwrap();
    // tcpdump announces itself once it listens.
    e2e::wait_until(Duration::from_secs(5), "tcpdump to listen", || {
        capture.log().contains("listening on").then_some(())
    })
    .unwrap();
    let mut r = RouterdConfig::recursive(&s.dns).start(&s.router).unwrap();
    let a = s
        .client
        .dig(r.addr(), &Query::new("www.plain.lab", "A"))
        .unwrap();
    assert_eq!(a.answers("A"), [data::PLAIN_A], "{}", a.raw);
    std::thread::sleep(Duration::from_millis(300));
    capture.stop();
    let log = capture.log();
    let sent = queries_sent(&log);
    assert!(!sent.is_empty(), "no queries captured:\n{log}");

    let root = addr::ROOT.to_string();
    let to_root: Vec<&(String, String)> = sent.iter().filter(|(to, _)| *to == root).collect();
    assert!(!to_root.is_empty(), "the root was never asked:\n{log}");
    for (_, name) in &to_root {
        assert!(
            !name.to_ascii_lowercase().contains("plain"),
            "the root saw more than the next label ({name}):\n{log}"
        );
    }
    let leaf = addr::LEAF.to_string();
    assert!(
        sent.iter()
            .any(|(to, name)| *to == leaf && name.eq_ignore_ascii_case("www.plain.lab.")),
        "the full name reaches the zone's own server:\n{log}"
    );
    let mixed = sent
        .iter()
        .filter(|(_, name)| name.chars().any(|c| c.is_ascii_uppercase()))
        .count();
    assert!(
        mixed * 2 >= sent.len(),
        "0x20: most names go out in mixed case ({mixed} of {}):\n{log}",
        sent.len()
    );
    r.check_running().unwrap();
}
