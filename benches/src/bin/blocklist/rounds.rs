//! The QPS rounds: dnsperf with blocked names and with allowed
//! (cache-hot) names against every server with the list, and with the
//! allowed names against routerd without it; interleaved, medians.

use std::path::{Path, PathBuf};

use anyhow::Result;
use benches::dnsperf::{LoadShape, Measured, Server, measure, warm};
use benches::table::median;
use e2e::Host;

use crate::servers::{Kind, Running};

/// Which query file a run sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Queries {
    /// Names of the list: answered from the block.
    Blocked,
    /// The lab's bench names: answered from the cache.
    Allowed,
}

impl Queries {
    pub fn name(self) -> &'static str {
        match self {
            Queries::Blocked => "blocked",
            Queries::Allowed => "allowed",
        }
    }
}

/// A dnsperf data file.
#[derive(Debug, Clone)]
pub struct QueryFile {
    pub path: PathBuf,
    pub queries: u64,
}

/// The two data files.
#[derive(Debug, Clone)]
pub struct QueryFiles {
    pub blocked: QueryFile,
    pub allowed: QueryFile,
}

impl QueryFiles {
    pub fn get(&self, queries: Queries) -> &QueryFile {
        match queries {
            Queries::Blocked => &self.blocked,
            Queries::Allowed => &self.allowed,
        }
    }
}

/// One server and query file pair, measured in every round.
#[derive(Debug, Clone)]
pub struct Job {
    pub kind: Kind,
    pub list: bool,
    pub queries: Queries,
    /// The server's process and address.
    pub pid: u32,
    pub addr: std::net::IpAddr,
    label: String,
}

impl Job {
    pub fn label(&self) -> &str {
        &self.label
    }

    /// Every answer of the run should carry this response code.
    pub fn rcode(&self) -> &'static str {
        match self.queries {
            Queries::Blocked => self.kind.block_rcode(),
            Queries::Allowed => "NOERROR",
        }
    }

    pub fn server(&self) -> Server<'_> {
        Server {
            name: &self.label,
            addr: self.addr,
            pid: self.pid,
        }
    }
}

/// Blocked and allowed names for every server with the list, allowed
/// names only for routerd without it.
pub fn jobs(running: &[Running]) -> Vec<Job> {
    let mut jobs = Vec::new();
    for r in running {
        let sets: &[Queries] = if r.list {
            &[Queries::Blocked, Queries::Allowed]
        } else {
            &[Queries::Allowed]
        };
        for &queries in sets {
            let list = if r.list { "" } else { ", no list" };
            jobs.push(Job {
                kind: r.kind,
                list: r.list,
                queries,
                pid: r.daemon.pid(),
                addr: r.addr,
                label: format!("{}{list}: {}", r.kind.name(), queries.name()),
            });
        }
    }
    jobs.sort_by_key(|j| (j.kind, !j.list, j.queries));
    jobs
}

/// Fills every server's cache with its query files and checks the
/// response codes of a second pass.
pub fn warm_all(client: &Host, jobs: &[Job], files: &QueryFiles, dir: &Path) -> Result<()> {
    for (i, job) in jobs.iter().enumerate() {
        let file = files.get(job.queries);
        let out = dir.join(format!("warm-{i}.out"));
        warm(
            client,
            job.server(),
            &file.path,
            file.queries,
            job.rcode(),
            &out,
        )?;
        println!("warmed: {} (all {})", job.label(), job.rcode());
    }
    Ok(())
}

/// One measured run.
#[derive(Debug, Clone)]
pub struct Run {
    pub job: usize,
    pub measured: Measured,
}

/// `rounds` rounds of every job; within a round the order rotates and
/// every other round runs backwards, so no job always follows the same
/// one (or always runs first, on a cooler machine).
pub fn run_rounds(
    client: &Host,
    jobs: &[Job],
    files: &QueryFiles,
    shape: &LoadShape,
    rounds: u32,
    dir: &Path,
) -> Result<Vec<Run>> {
    let mut runs = Vec::new();
    for round in 0..rounds {
        let mut order: Vec<usize> = (0..jobs.len()).collect();
        order.rotate_left(round as usize % jobs.len().max(1));
        if round % 2 == 1 {
            order.reverse();
        }
        for i in order {
            let job = &jobs[i];
            let file = files.get(job.queries);
            let out = dir.join(format!("round-{round}-{i}.out"));
            let measured = measure(client, job.server(), shape, &file.path, file.queries, &out)?;
            println!(
                "round {}: {:<32} {:>8.0} QPS  {:>8.0} QPS/CPU-s  CPU {:>5.1} %",
                round + 1,
                job.label(),
                measured.report.qps,
                measured.qps_per_cpu_s(),
                measured.cpu_pct(),
            );
            runs.push(Run { job: i, measured });
        }
    }
    Ok(runs)
}

/// One job's QPS per CPU-second, round by round.
pub fn per_round(job: usize, runs: &[Run]) -> Vec<f64> {
    runs.iter()
        .filter(|r| r.job == job)
        .map(|r| r.measured.qps_per_cpu_s())
        .collect()
}

/// Medians of one job's runs.
#[derive(Debug, Clone)]
pub struct Summary {
    pub runs: usize,
    pub qps: f64,
    pub p99_ms: f64,
    pub lost: f64,
    /// Answers with another response code than [`Job::rcode`].
    pub wrong: f64,
    pub cpu_pct: f64,
    pub qps_per_cpu_s: f64,
    pub machine_pct: f64,
}

pub fn summarize(job: usize, jobs: &[Job], runs: &[Run]) -> Summary {
    let rcode = jobs.get(job).map_or("NOERROR", Job::rcode);
    let mine: Vec<&Measured> = runs
        .iter()
        .filter(|r| r.job == job)
        .map(|r| &r.measured)
        .collect();
    let m = |f: &dyn Fn(&Measured) -> f64| median(mine.iter().map(|r| f(r)).collect());
    Summary {
        runs: mine.len(),
        qps: m(&|r| r.report.qps),
        p99_ms: m(&|r| r.report.p99_s.map_or(f64::NAN, |s| s * 1e3)),
        lost: m(&|r| r.report.lost as f64),
        wrong: m(&|r| r.report.completed.saturating_sub(r.report.rcode(rcode)) as f64),
        cpu_pct: m(&|r| r.cpu_pct()),
        qps_per_cpu_s: m(&|r| r.qps_per_cpu_s()),
        machine_pct: m(&|r| 100.0 * r.machine_busy),
    }
}
