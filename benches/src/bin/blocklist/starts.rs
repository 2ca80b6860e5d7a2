//! Cold starts: each server spawned alone (the others idle), with and
//! without the list, timed by the probe from the spawn to the first
//! blocked answer (to the first answer at all without the list), then its
//! resident memory once loaded.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use benches::check_stop;
use e2e::Host;

use crate::list::PROBE_NAME;
use crate::memory::{Memory, mb};
use crate::probe::{Answer, Probe, Seen};
use crate::servers::{FilterBuilt, Kind, Running, Setup, filter_built, spawn};

/// Time left to a server after its first blocked answer before its
/// memory is read: what it frees after loading (parse buffers, the file's
/// copy) is not its cost.
const SETTLE: Duration = Duration::from_secs(1);

/// One cold start.
#[derive(Debug, Clone)]
pub struct Sample {
    pub kind: Kind,
    pub list: bool,
    pub seen: Seen,
    /// Read [`SETTLE`] after the awaited answer.
    pub memory: Memory,
    /// routerd's own report, from its log.
    pub filter: Option<FilterBuilt>,
}

/// Starts every server in `kinds` `starts` times, with and without the
/// list, one at a time; returns the samples and the servers of the last
/// round that the QPS rounds use (every one with the list, and routerd
/// without it).
pub fn cold_starts(
    client: &Host,
    hosts: &BTreeMap<&'static str, Host>,
    kinds: &[Kind],
    setup: &Setup,
    starts: u32,
    limit: Duration,
) -> Result<(Vec<Sample>, Vec<Running>)> {
    let mut samples = Vec::new();
    let mut kept = Vec::new();
    for start in 0..starts {
        for &kind in kinds {
            for list in [false, true] {
                check_stop()?;
                let host = hosts
                    .get(kind.host_name(list))
                    .with_context(|| format!("no lab host for {}", kind.name()))?;
                let (sample, running) = cold_start(client, host, kind, list, setup, start, limit)?;
                println!("start {}/{starts}: {}", start + 1, describe(&sample));
                samples.push(sample);
                let keep = start + 1 == starts && (list || kind == Kind::Routerd);
                if keep {
                    kept.push(running);
                }
            }
        }
    }
    Ok((samples, kept))
}

fn cold_start(
    client: &Host,
    host: &Host,
    kind: Kind,
    list: bool,
    setup: &Setup,
    start: u32,
    limit: Duration,
) -> Result<(Sample, Running)> {
    let until = if list {
        kind.block_answer()
    } else {
        Answer::Data
    };
    let addr = std::net::IpAddr::V4(host.v4);
    let probe = Probe::start(client, addr, PROBE_NAME, until, limit)?;
    let spawned = Instant::now();
    let mut running = spawn(kind, list, host, setup, start)?;
    let seen = match probe.wait(spawned, || running.daemon.is_running()) {
        Ok(seen) => seen,
        Err(e) => {
            running.daemon.check_running()?;
            return Err(e.context(format!(
                "{} {}: log tail:\n{}",
                kind.name(),
                with(list),
                running.daemon.log_tail(20)
            )));
        }
    };
    std::thread::sleep(SETTLE);
    running.daemon.check_running()?;
    let memory = Memory::read(running.daemon.pid())?;
    let filter = (kind == Kind::Routerd)
        .then(|| filter_built(&running.daemon.log()))
        .flatten();
    let sample = Sample {
        kind,
        list,
        seen,
        memory,
        filter,
    };
    Ok((sample, running))
}

pub fn with(list: bool) -> &'static str {
    if list {
        "with the list"
    } else {
        "without a list"
    }
}

fn describe(s: &Sample) -> String {
    let what = if s.list {
        "first blocked answer"
    } else {
        "first answer"
    };
    let mut text = format!(
        "{} {}: {what} after {:.3} s, RSS {:.1} MB (peak {:.1} MB)",
        s.kind.name(),
        with(s.list),
        s.seen.hit.as_secs_f64(),
        mb(s.memory.rss_kb),
        mb(s.memory.hwm_kb),
    );
    let (first, at) = s.seen.first;
    if at < s.seen.hit {
        text.push_str(&format!(
            "; answered {} from {:.3} s",
            first.name(),
            at.as_secs_f64()
        ));
    }
    if let Some(f) = s.filter {
        text.push_str(&format!(
            "; its log: {} domains, {:.1} MB set, built in {} ms",
            f.domains,
            f.bytes as f64 / 1e6,
            f.build_ms
        ));
    }
    text
}
