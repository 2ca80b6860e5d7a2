//! dnsperf runs against a lab server: bounded command lines, the parsed
//! report with a latency histogram, and the server's CPU time around each
//! run (`load` and `blocklist` measure the same way).

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::net::IpAddr;
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use e2e::Host;

use crate::{Overran, check_stop, wait_with_deadline};

/// Largest query rate we ever let dnsperf reach, per second of run time;
/// with `-n` it bounds the number of queries a round can send.
pub const MAX_QPS: u64 = 500_000;
/// Extra time given to a dnsperf run beyond `-l` before it is killed.
pub const WATCHDOG_SLACK: Duration = Duration::from_secs(20);
/// Latency histogram resolution: 1 µs buckets up to this many µs; slower
/// answers land in the last bucket.
const HISTOGRAM_US: usize = 1_000_000;

/// What dnsperf reported for one run, plus the latency histogram built
/// from its verbose lines.
#[derive(Debug, Default, Clone)]
pub struct DnsperfReport {
    pub sent: u64,
    pub completed: u64,
    pub lost: u64,
    /// Response codes as dnsperf counts them.
    pub rcodes: BTreeMap<String, u64>,
    pub run_time_s: f64,
    pub qps: f64,
    pub avg_latency_s: f64,
    pub response_size: Option<u64>,
    /// Percentiles from the verbose lines (seconds), if collected.
    pub p50_s: Option<f64>,
    pub p99_s: Option<f64>,
    /// Verbose lines seen (a cross-check of `completed`).
    pub latency_samples: u64,
}

impl DnsperfReport {
    pub fn noerror(&self) -> u64 {
        self.rcode("NOERROR")
    }

    /// Answers with response code `code` ("NOERROR", "NXDOMAIN", ...).
    pub fn rcode(&self, code: &str) -> u64 {
        self.rcodes.get(code).copied().unwrap_or(0)
    }
}

/// Parses dnsperf's statistics block (the lines after "Statistics:").
pub fn parse_summary(text: &str, report: &mut DnsperfReport) -> Result<()> {
    let first_number = |s: &str| -> Option<f64> {
        s.split_whitespace()
            .next()
            .and_then(|w| w.trim_end_matches(',').parse().ok())
    };
    let mut seen_sent = false;
    for line in text.lines() {
        let line = line.trim();
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        match key {
            "Queries sent" => {
                report.sent = first_number(value).context("Queries sent")? as u64;
                seen_sent = true;
            }
            "Queries completed" => {
                report.completed = first_number(value).context("Queries completed")? as u64;
            }
            "Queries lost" => report.lost = first_number(value).context("Queries lost")? as u64,
            "Response codes" => {
                // "NOERROR 1000 (100.00%), SERVFAIL 2 (0.00%)"
                for part in value.split(',') {
                    let mut words = part.split_whitespace();
                    if let (Some(code), Some(count)) = (words.next(), words.next())
                        && let Ok(count) = count.parse::<u64>()
                    {
                        report.rcodes.insert(code.to_string(), count);
                    }
                }
            }
            "Average packet size" => {
                // "request 56, response 72"
                report.response_size = value
                    .split_once("response")
                    .and_then(|(_, r)| r.trim().parse().ok());
            }
            "Run time (s)" => report.run_time_s = first_number(value).context("Run time")?,
            "Queries per second" => report.qps = first_number(value).context("QPS")?,
            "Average Latency (s)" => {
                report.avg_latency_s = first_number(value).context("Average Latency")?;
            }
            _ => {}
        }
    }
    ensure!(seen_sent, "no statistics in dnsperf's output");
    Ok(())
}

/// Reads dnsperf's stdout: verbose lines ("> NOERROR name A 0.000123")
/// into a histogram, then the statistics block.
pub fn parse_dnsperf_output(path: &Path) -> Result<DnsperfReport> {
    let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut histogram = vec![0u64; HISTOGRAM_US + 1];
    let mut samples = 0u64;
    let mut summary = String::new();
    let mut in_summary = false;
    for line in BufReader::with_capacity(1 << 20, file).lines() {
        let line = line?;
        if let Some(rest) = line.strip_prefix("> ") {
            let mut words = rest.split_whitespace();
            let rcode = words.next().unwrap_or("");
            if rcode == "T" || rcode == "I" {
                continue;
            }
            if let Some(latency) = words.last().and_then(|w| w.parse::<f64>().ok()) {
                let us = (latency * 1e6).round().max(0.0) as usize;
                if let Some(bucket) = histogram.get_mut(us.min(HISTOGRAM_US)) {
                    *bucket += 1;
                }
                samples += 1;
            }
            continue;
        }
        if line.trim() == "Statistics:" {
            in_summary = true;
        }
        if in_summary {
            summary.push_str(&line);
            summary.push('\n');
        }
    }
    let mut report = DnsperfReport::default();
    parse_summary(&summary, &mut report)?;
    report.latency_samples = samples;
    if samples > 0 {
        report.p50_s = Some(percentile(&histogram, samples, 0.50));
        report.p99_s = Some(percentile(&histogram, samples, 0.99));
    }
    Ok(report)
}

/// The `q` quantile (0..1) of a 1 µs histogram, in seconds.
pub fn percentile(histogram: &[u64], total: u64, q: f64) -> f64 {
    let rank = ((total as f64) * q).ceil().max(1.0) as u64;
    let mut seen = 0u64;
    for (us, count) in histogram.iter().enumerate() {
        seen += count;
        if seen >= rank {
            return us as f64 / 1e6;
        }
    }
    HISTOGRAM_US as f64 / 1e6
}

/// Busy and total CPU time of the whole machine (all cores), from the
/// first line of /proc/stat, in clock ticks.
pub fn machine_cpu_ticks() -> Result<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat")?;
    let line = stat.lines().next().context("empty /proc/stat")?;
    let values: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .take(8) // user nice system idle iowait irq softirq steal
        .map(|v| v.parse().unwrap_or(0))
        .collect();
    ensure!(values.len() == 8, "unexpected /proc/stat line {line:?}");
    let total: u64 = values.iter().sum();
    let idle = values[3] + values[4];
    Ok((total - idle, total))
}

/// dnsperf's arguments for one run.
#[derive(Debug, Clone)]
pub struct LoadShape {
    pub seconds: u64,
    pub outstanding: u32,
    pub clients: u32,
    pub threads: u32,
    pub edns: bool,
    pub verbose: bool,
}

impl LoadShape {
    /// The dnsperf command line as reported in the tables' header.
    pub fn describe(&self) -> String {
        format!(
            "dnsperf -l {} -q {} -c {} -T {}{}{}",
            self.seconds,
            self.outstanding,
            self.clients,
            self.threads,
            if self.edns { " -e" } else { "" },
            if self.verbose { " -v" } else { "" },
        )
    }

    pub fn args(&self, server: IpAddr, data: &Path, queries_in_file: u64) -> Vec<String> {
        // -n bounds the passes over the file, hence the queries sent, even
        // if the clock-based -l limit somehow failed.
        let max_passes = (self.seconds * MAX_QPS).div_ceil(queries_in_file.max(1));
        let mut args: Vec<String> = vec![
            "-s".into(),
            server.to_string(),
            "-d".into(),
            data.to_string_lossy().into_owned(),
            "-l".into(),
            self.seconds.to_string(),
            "-n".into(),
            max_passes.to_string(),
            "-q".into(),
            self.outstanding.to_string(),
            "-c".into(),
            self.clients.to_string(),
            "-T".into(),
            self.threads.to_string(),
            "-t".into(),
            "2".into(),
            // A per-query "Query timed out" warning would flood the output.
            "-O".into(),
            "suppress=timeout,congestion,sendfailed,sockready,unexpected".into(),
        ];
        if self.edns {
            args.push("-e".into());
        }
        if self.verbose {
            args.push("-v".into());
        }
        args
    }
}

/// Runs dnsperf on `client` with `args`, output to `out`; killed if it
/// outlives `limit`.
pub fn run_dnsperf(client: &Host, args: &[String], out: &Path, limit: Duration) -> Result<()> {
    let stdout = File::create(out)?;
    let stderr_path = out.with_extension("stderr");
    let stderr = File::create(&stderr_path)?;
    let mut child: Child = client
        .command("dnsperf")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::from(stdout))
        .stderr(Stdio::from(stderr))
        .spawn()
        .context("spawning dnsperf")?;
    let status = wait_with_deadline(&mut child, "dnsperf", limit, Duration::from_millis(100))?;
    if !status.success() {
        let err = std::fs::read_to_string(&stderr_path).unwrap_or_default();
        bail!("dnsperf failed ({status}): {err}");
    }
    Ok(())
}

/// A server process under load: where it listens and which pid to account.
#[derive(Debug, Clone, Copy)]
pub struct Server<'a> {
    /// For messages.
    pub name: &'a str,
    pub addr: IpAddr,
    pub pid: u32,
}

/// One dnsperf run against one server, with that server's CPU time.
#[derive(Debug, Clone)]
pub struct Measured {
    pub report: DnsperfReport,
    /// Server CPU (user + system, all threads and child processes) during
    /// the run.
    pub server_cpu_s: f64,
    /// The user-space part of it.
    pub server_user_s: f64,
    /// Whole-machine busy fraction (0..1 of all cores) during the run.
    pub machine_busy: f64,
}

impl Measured {
    /// Server CPU in % of one core (top's convention).
    pub fn cpu_pct(&self) -> f64 {
        100.0 * self.server_cpu_s / self.report.run_time_s.max(1e-9)
    }

    /// Answered queries per second of server CPU time.
    pub fn qps_per_cpu_s(&self) -> f64 {
        self.report.completed as f64 / self.server_cpu_s.max(1e-9)
    }

    /// Share of the server's CPU time spent in user space, in %.
    pub fn user_pct(&self) -> f64 {
        100.0 * self.server_user_s / self.server_cpu_s.max(1e-9)
    }

    /// Answered queries per second of server user-space CPU time.
    pub fn qps_per_user_cpu_s(&self) -> f64 {
        self.report.completed as f64 / self.server_user_s.max(1e-9)
    }
}

/// Runs one dnsperf round from `client` against `server`, accounting its
/// CPU; dnsperf's output goes to `out` (removed once parsed).
pub fn measure(
    client: &Host,
    server: Server<'_>,
    shape: &LoadShape,
    data: &Path,
    queries_in_file: u64,
    out: &Path,
) -> Result<Measured> {
    let args = shape.args(server.addr, data, queries_in_file);
    let limit = Duration::from_secs(shape.seconds) + WATCHDOG_SLACK;
    // dnsperf itself now and then fails to exit after its run (twice in a
    // few dozen runs, against routerd and against NSD alike): the round is
    // run once more rather than losing the whole benchmark; a second
    // overrun, or any other failure, ends it.
    match measure_once(server, client, &args, out, limit) {
        Err(e) if e.downcast_ref::<Overran>().is_some() => {
            eprintln!("{}: {e}; running the round again", server.name);
            measure_once(server, client, &args, out, limit)
        }
        result => result,
    }
}

/// One dnsperf run with `args` and the server's CPU time around it.
fn measure_once(
    server: Server<'_>,
    client: &Host,
    args: &[String],
    out: &Path,
    limit: Duration,
) -> Result<Measured> {
    check_stop()?;
    let (user_before, sys_before) = e2e::process::tree_cpu_times(server.pid)?;
    let (busy_before, total_before) = machine_cpu_ticks()?;
    run_dnsperf(client, args, out, limit)?;
    let (user_after, sys_after) = e2e::process::tree_cpu_times(server.pid)
        .with_context(|| format!("{} is gone", server.name))?;
    let (busy_after, total_after) = machine_cpu_ticks()?;
    let report = parse_dnsperf_output(out)?;
    let _ = std::fs::remove_file(out);
    let _ = std::fs::remove_file(out.with_extension("stderr"));
    let total = (total_after - total_before).max(1);
    Ok(Measured {
        report,
        server_cpu_s: ((user_after + sys_after) - (user_before + sys_before)).as_secs_f64(),
        server_user_s: (user_after - user_before).as_secs_f64(),
        machine_busy: (busy_after - busy_before) as f64 / total as f64,
    })
}

/// dnsperf's arguments for a warm-up pass: `passes` over the file with
/// `outstanding` queries in flight, `timeout` s per query, `limit` s in all.
fn warm_args(
    server: IpAddr,
    data: &Path,
    passes: u32,
    outstanding: u32,
    timeout: u32,
    limit: u32,
) -> Vec<String> {
    let mut args = vec![
        "-s".to_string(),
        server.to_string(),
        "-d".to_string(),
        data.to_string_lossy().into_owned(),
    ];
    for (flag, value) in [
        ("-n", passes),
        ("-q", outstanding),
        ("-t", timeout),
        ("-l", limit),
    ] {
        args.push(flag.to_string());
        args.push(value.to_string());
    }
    args
}

/// Queries the whole set a few times so every answer is cached, and
/// fails unless every answer of the last passes had response code
/// `rcode` (`out` is dnsperf's scratch output file).
pub fn warm(
    client: &Host,
    server: Server<'_>,
    data: &Path,
    queries_in_file: u64,
    rcode: &str,
    out: &Path,
) -> Result<()> {
    // One gentle pass resolves everything (recursion, validation) ...
    let gentle = warm_args(server.addr, data, 1, 20, 5, 60);
    run_dnsperf(client, &gentle, out, Duration::from_secs(90))?;
    let first = parse_dnsperf_output(out)?;
    // ... the second must then be all cache hits, all of one rcode.
    let check = warm_args(server.addr, data, 2, 50, 2, 30);
    run_dnsperf(client, &check, out, Duration::from_secs(60))?;
    let second = parse_dnsperf_output(out)?;
    let _ = std::fs::remove_file(out);
    let _ = std::fs::remove_file(out.with_extension("stderr"));
    let expected = 2 * queries_in_file;
    ensure!(
        second.sent == expected && second.completed == expected && second.rcode(rcode) == expected,
        "{} is not answering the query set {} with {rcode} after warm-up: \
         first pass {first:?}, second pass {second:?}",
        server.name,
        data.display()
    );
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // reason: test code
mod tests {
    use super::*;

    #[test]
    fn parses_dnsperf_statistics() {
        let text = "Statistics:

  Queries sent:         1000
  Queries completed:    998 (99.80%)
  Queries lost:         2 (0.20%)

  Response codes:       NOERROR 990 (99.20%), SERVFAIL 8 (0.80%)
  Average packet size:  request 34, response 50
  Run time (s):         10.000256
  Queries per second:   99.797440

  Average Latency (s):  0.000772 (min 0.000402, max 0.019581)
  Latency StdDev (s):   0.000892
";
        let mut r = DnsperfReport::default();
        parse_summary(text, &mut r).unwrap();
        assert_eq!((r.sent, r.completed, r.lost), (1000, 998, 2));
        assert_eq!(r.noerror(), 990);
        assert_eq!(r.rcode("SERVFAIL"), 8);
        assert_eq!(r.rcode("NXDOMAIN"), 0);
        assert_eq!(r.response_size, Some(50));
        assert!((r.qps - 99.79744).abs() < 1e-6);
        assert!((r.avg_latency_s - 0.000772).abs() < 1e-9);
    }

    #[test]
    fn percentiles() {
        let mut h = vec![0u64; 100];
        h[10] = 50;
        h[20] = 49;
        h[90] = 1;
        assert!((percentile(&h, 100, 0.5) - 10e-6).abs() < 1e-12);
        assert!((percentile(&h, 100, 0.99) - 20e-6).abs() < 1e-12);
        assert!((percentile(&h, 100, 1.0) - 90e-6).abs() < 1e-12);
    }
}

/// The dnsperf options both load benchmarks take.
#[derive(Debug, Clone, clap::Args)]
pub struct LoadArgs {
    /// Length of one dnsperf run (`-l`), in seconds.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=120))]
    pub seconds: u64,
    /// Benchmark names added to the zone; each is queried for A and AAAA.
    #[arg(long, default_value_t = 250, value_parser = clap::value_parser!(u32).range(1..=20_000))]
    pub names: u32,
    /// Queries outstanding at once (dnsperf `-q`).
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub outstanding: u32,
    /// Client sockets (dnsperf `-c`); several, so SO_REUSEPORT spreads
    /// them over the server's threads.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=256))]
    pub clients: u32,
    /// dnsperf threads (`-T`).
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub threads: u32,
}
