//! The cache-hot query set: names added to the lab's `plain.lab` zone
//! with long TTLs, each asked for A and AAAA.

use std::fmt::Write as _;
use std::net::{Ipv4Addr, Ipv6Addr};

/// The zone the benchmark names are added to (unsigned, so names can be
/// appended; the path to it is still validated: `lab.` is signed and
/// proves plain.lab insecure).
pub const BENCH_ZONE: &str = "plain.lab.";
/// TTL of the benchmark names: far longer than any run, so every round is
/// answered from the cache.
pub const BENCH_TTL: u32 = 86_400;

/// One benchmark name and the data it must resolve to.
#[derive(Debug, Clone)]
pub struct BenchName {
    pub name: String,
    pub a: Ipv4Addr,
    pub aaaa: Ipv6Addr,
}

/// The benchmark's names: `b00000.plain.lab` ... with one A and one AAAA
/// each. The addresses are data only (192.0.2.0/24-style documentation
/// ranges would be too small): nothing ever sends a packet to them.
pub fn bench_names(count: u32) -> Vec<BenchName> {
    (0..count)
        .map(|i| {
            let [_, _, hi, lo] = i.to_be_bytes();
            BenchName {
                name: format!("b{i:05}.{}", BENCH_ZONE.trim_end_matches('.')),
                a: Ipv4Addr::new(10, 200, hi, lo),
                aaaa: Ipv6Addr::new(0xfd60, 0, 0, 0, 0, 0, u16::from(hi), u16::from(lo)),
            }
        })
        .collect()
}

/// Zone-file lines for [`bench_names`].
pub fn zone_records(names: &[BenchName]) -> String {
    let mut text = String::new();
    for n in names {
        let _ = writeln!(text, "{}. {BENCH_TTL} IN A {}", n.name, n.a);
        let _ = writeln!(text, "{}. {BENCH_TTL} IN AAAA {}", n.name, n.aaaa);
    }
    text
}

/// The dnsperf data file: every name for A then AAAA, plus a signed name
/// (validated, AD) so the secure path is part of the mix.
pub fn query_file(names: &[BenchName]) -> String {
    let mut text = String::new();
    for n in names {
        let _ = writeln!(text, "{} A\n{} AAAA", n.name, n.name);
    }
    text.push_str("www.secure.lab A\nwww.secure.lab AAAA\n");
    text
}

/// Checks that `server` answers `n`'s A record as the zone has it; `who`
/// names the server in the error.
pub fn expect_a(
    client: &e2e::Host,
    server: std::net::IpAddr,
    n: &BenchName,
    who: &str,
) -> anyhow::Result<e2e::DigResult> {
    let a = client.dig(server, &e2e::Query::new(&n.name, "A"))?;
    anyhow::ensure!(
        a.status == "NOERROR" && a.answers("A") == [n.a.to_string()],
        "{who}: {} A: expected {}, got {} {:?}",
        n.name,
        n.a,
        a.status,
        a.answers("A")
    );
    Ok(a)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bench_names_are_distinct_and_in_the_zone() {
        let names = bench_names(300);
        assert_eq!(names[0].name, "b00000.plain.lab");
        assert_eq!(names[299].a, Ipv4Addr::new(10, 200, 1, 43));
        let records = zone_records(&names);
        assert!(records.contains("b00299.plain.lab. 86400 IN AAAA fd60::1:2b"));
        assert_eq!(query_file(&names).lines().count(), 602);
    }
}
