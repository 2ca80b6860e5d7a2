//! Before anything is measured: does each server block what it should,
//! with the answer it should, and resolve the rest? dnsperf only counts
//! response codes, which cannot tell 0.0.0.0 from a real address.

use std::net::IpAddr;

use anyhow::{Result, ensure};
use benches::names::BenchName;
use e2e::{Host, Query};

use crate::list::{PROBE_A, PROBE_NAME};
use crate::probe::Answer;
use crate::servers::{Kind, Running};

/// Checks `blocked` names (a sample of the list) and `allowed` names
/// against every running server.
pub fn answers(
    client: &Host,
    running: &[Running],
    blocked: &[String],
    allowed: &[BenchName],
) -> Result<()> {
    for r in running {
        let who = format!("{} ({})", r.kind.name(), crate::starts::with(r.list));
        for name in blocked {
            check_blocked(client, r.addr, r.kind, r.list, name, &who)?;
        }
        for n in allowed {
            benches::names::expect_a(client, r.addr, n, &who)?;
        }
        let probe = client.dig(r.addr, &Query::new(PROBE_NAME, "A"))?;
        if !r.list {
            ensure!(
                probe.status == "NOERROR" && probe.answers("A") == [PROBE_A.to_string()],
                "{who}: {PROBE_NAME} A is not resolved: {}",
                probe.raw
            );
        }
        println!("answers checked: {who}");
    }
    Ok(())
}

/// A listed name: the server's block answer for A and AAAA with the
/// list; without it, NXDOMAIN from the lab's root (none of the list's
/// top-level domains exists there).
fn check_blocked(
    client: &Host,
    server: IpAddr,
    kind: Kind,
    list: bool,
    name: &str,
    who: &str,
) -> Result<()> {
    let a = client.dig(server, &Query::new(name, "A"))?;
    let aaaa = client.dig(server, &Query::new(name, "AAAA"))?;
    let ok = match (list, kind.block_answer()) {
        (false, _) | (true, Answer::Nxdomain) => {
            a.status == "NXDOMAIN" && aaaa.status == "NXDOMAIN"
        }
        (true, _) => {
            a.status == "NOERROR"
                && a.answers("A") == ["0.0.0.0"]
                && aaaa.status == "NOERROR"
                && aaaa.answers("AAAA") == ["::"]
        }
    };
    ensure!(
        ok,
        "{who}: unexpected answers for {name}:\n{}\n{}",
        a.raw,
        aaaa.raw
    );
    Ok(())
}
