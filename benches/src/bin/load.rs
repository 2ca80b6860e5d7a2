//! The load comparison of routerd with Unbound, in the namespace lab.
//!
//! Builds one lab (the NSD hierarchy plus a bench zone of long-TTL names,
//! routerd, Unbound and a dnsperf client, each in its own namespace),
//! warms both resolvers, then runs interleaved dnsperf rounds against each
//! and prints the medians. Nothing leaves the machine: every process runs
//! in a lab namespace whose only link is the lab's private bridge.
//!
//! Run it through `benches/load.sh` (which builds routerd in release);
//! `--help` lists the options. See benches/README.md for how to read the
//! table.

#![allow(clippy::print_stdout)] // reason: printing the results table is this binary's job

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use benches::{STOP, check_stop, cpu_model, wait_with_deadline, watch_signals};
use clap::Parser;
use e2e::unbound::{Unbound, UnboundOptions};
use e2e::{DnsHierarchy, Host, Lab, Query, RouterdConfig, addr};

/// The zone the benchmark names are added to (unsigned, so names can be
/// appended; the path to it is still validated: `lab.` is signed and
/// proves plain.lab insecure).
const BENCH_ZONE: &str = "plain.lab.";
/// TTL of the benchmark names: far longer than any run, so every round is
/// answered from the cache.
const BENCH_TTL: u32 = 86_400;
/// Largest query rate we ever let dnsperf reach, per second of run time;
/// with `-n` it bounds the number of queries a round can send.
const MAX_QPS: u64 = 500_000;
/// Extra time given to a dnsperf run beyond `-l` before it is killed.
const WATCHDOG_SLACK: Duration = Duration::from_secs(20);
/// Latency histogram resolution: 1 µs buckets up to this many µs; slower
/// answers land in the last bucket.
const HISTOGRAM_US: usize = 1_000_000;

/// Load comparison of routerd with Unbound in the namespace lab.
#[derive(Debug, Parser)]
#[command(name = "load")]
struct Args {
    /// Measured rounds per server (interleaved: R U, U R, R U, ...).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=50))]
    rounds: u32,
    /// Length of one dnsperf run (`-l`), in seconds.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=120))]
    seconds: u64,
    /// Benchmark names added to the zone; each is queried for A and AAAA.
    #[arg(long, default_value_t = 250, value_parser = clap::value_parser!(u32).range(1..=20_000))]
    names: u32,
    /// Queries outstanding at once (dnsperf `-q`).
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    outstanding: u32,
    /// Client sockets (dnsperf `-c`); several, so SO_REUSEPORT spreads
    /// them over the server's threads.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=256))]
    clients: u32,
    /// dnsperf threads (`-T`).
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=64))]
    threads: u32,
    /// Send queries with EDNS0 (dnsperf `-e`); plain queries otherwise.
    #[arg(long)]
    edns: bool,
    /// Run dnsperf without `-v`: no per-query latencies, so no p50/p99,
    /// but a slightly higher load-generator ceiling.
    #[arg(long)]
    no_histogram: bool,
    /// Also write the summary table as markdown to this file.
    #[arg(long, value_name = "FILE")]
    markdown: Option<PathBuf>,
    /// After the measured rounds, run one more round per server under
    /// `perf record -g` and write DIR/routerd.perf.data and
    /// DIR/unbound.perf.data (not counted in the table).
    #[arg(long, value_name = "DIR")]
    perf: Option<PathBuf>,
    /// After the warm-up, print the lab's namespaces and pids and wait
    /// this many seconds before the rounds (to poke at the servers with
    /// `ip netns exec`, perf, ...).
    #[arg(long, value_name = "SECONDS", default_value_t = 0, value_parser = clap::value_parser!(u64).range(0..=3600))]
    hold: u64,
    /// Leave the host's bridge netfilter (br_netfilter: iptables on the
    /// lab's bridge) on; by default this lab's switch skips it, as the
    /// firewall is not what is measured and costs both servers alike.
    #[arg(long)]
    keep_bridge_netfilter: bool,
    /// Run dnsperf inside each server's own namespace against its loopback
    /// address (127.0.0.1), instead of from the client host across the lab
    /// bridge: the reply's trip through veth and bridge, which costs both
    /// servers the same and dominates their CPU, is replaced by loopback's
    /// cheaper one, so the servers' own work weighs more.
    #[arg(long)]
    loopback: bool,
    /// Leave dnsmasq out of the comparison (it is included when the
    /// `dnsmasq` binary is installed, Debian package dnsmasq-base).
    #[arg(long)]
    no_dnsmasq: bool,
}

/// The resolvers under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Target {
    Routerd,
    Unbound,
    /// dnsmasq caching and forwarding to the lab's Unbound: what Pi-hole
    /// runs (as FTL), single-threaded by design.
    Dnsmasq,
}

impl Target {
    fn name(self) -> &'static str {
        match self {
            Target::Routerd => "routerd",
            Target::Unbound => "unbound",
            Target::Dnsmasq => "dnsmasq",
        }
    }
}

/// A server under test: where it listens and which process to account.
#[derive(Debug, Clone, Copy)]
struct Subject {
    target: Target,
    addr: IpAddr,
    pid: u32,
}

/// One benchmark name and the data it must resolve to.
#[derive(Debug, Clone)]
struct BenchName {
    name: String,
    a: Ipv4Addr,
    aaaa: Ipv6Addr,
}

/// The benchmark's names: `b00000.plain.lab` ... with one A and one AAAA
/// each. The addresses are data only (192.0.2.0/24-style documentation
/// ranges would be too small): nothing ever sends a packet to them.
fn bench_names(count: u32) -> Vec<BenchName> {
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
fn zone_records(names: &[BenchName]) -> String {
    let mut text = String::new();
    for n in names {
        let _ = writeln!(text, "{}. {BENCH_TTL} IN A {}", n.name, n.a);
        let _ = writeln!(text, "{}. {BENCH_TTL} IN AAAA {}", n.name, n.aaaa);
    }
    text
}

/// The dnsperf data file: every name for A then AAAA, plus a signed name
/// (validated, AD) so the secure path is part of the mix.
fn query_file(names: &[BenchName]) -> String {
    let mut text = String::new();
    for n in names {
        let _ = writeln!(text, "{} A\n{} AAAA", n.name, n.name);
    }
    text.push_str("www.secure.lab A\nwww.secure.lab AAAA\n");
    text
}

/// What dnsperf reported for one run, plus the latency histogram built
/// from its verbose lines.
#[derive(Debug, Default, Clone)]
struct DnsperfReport {
    sent: u64,
    completed: u64,
    lost: u64,
    /// Response codes as dnsperf counts them.
    rcodes: BTreeMap<String, u64>,
    run_time_s: f64,
    qps: f64,
    avg_latency_s: f64,
    response_size: Option<u64>,
    /// Percentiles from the verbose lines (seconds), if collected.
    p50_s: Option<f64>,
    p99_s: Option<f64>,
    /// Verbose lines seen (a cross-check of `completed`).
    latency_samples: u64,
}

impl DnsperfReport {
    fn noerror(&self) -> u64 {
        self.rcodes.get("NOERROR").copied().unwrap_or(0)
    }
}

/// Parses dnsperf's statistics block (the lines after "Statistics:").
fn parse_summary(text: &str, report: &mut DnsperfReport) -> Result<()> {
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
fn parse_dnsperf_output(path: &Path) -> Result<DnsperfReport> {
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
fn percentile(histogram: &[u64], total: u64, q: f64) -> f64 {
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
fn machine_cpu_ticks() -> Result<(u64, u64)> {
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
struct LoadShape {
    seconds: u64,
    outstanding: u32,
    clients: u32,
    threads: u32,
    edns: bool,
    verbose: bool,
}

impl LoadShape {
    /// The dnsperf command line as reported in the tables' header.
    fn describe(&self) -> String {
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

    fn args(&self, server: IpAddr, data: &Path, queries_in_file: u64) -> Vec<String> {
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
fn run_dnsperf(client: &Host, args: &[String], out: &Path, limit: Duration) -> Result<()> {
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

/// One measured round against one server.
#[derive(Debug, Clone)]
struct Round {
    target: Target,
    report: DnsperfReport,
    /// Server CPU (user + system, all threads) during the round.
    server_cpu_s: f64,
    /// The user-space part of it.
    server_user_s: f64,
    /// Whole-machine busy fraction (0..1 of all cores) during the round.
    machine_busy: f64,
}

impl Round {
    /// Server CPU in % of one core (top's convention).
    fn cpu_pct(&self) -> f64 {
        100.0 * self.server_cpu_s / self.report.run_time_s.max(1e-9)
    }

    /// Answered queries per second of server CPU time.
    fn qps_per_cpu_s(&self) -> f64 {
        self.report.completed as f64 / self.server_cpu_s.max(1e-9)
    }

    /// Share of the server's CPU time spent in user space, in %.
    fn user_pct(&self) -> f64 {
        100.0 * self.server_user_s / self.server_cpu_s.max(1e-9)
    }

    /// Answered queries per second of server user-space CPU time.
    fn qps_per_user_cpu_s(&self) -> f64 {
        self.report.completed as f64 / self.server_user_s.max(1e-9)
    }
}

/// Runs one dnsperf round against `subject`, accounting its CPU.
fn measure(
    client: &Host,
    subject: Subject,
    shape: &LoadShape,
    data: &Path,
    queries_in_file: u64,
    out: &Path,
) -> Result<Round> {
    let args = shape.args(subject.addr, data, queries_in_file);
    let limit = Duration::from_secs(shape.seconds) + WATCHDOG_SLACK;
    check_stop()?;
    let (user_before, sys_before) = e2e::process::cpu_times(subject.pid)?;
    let (busy_before, total_before) = machine_cpu_ticks()?;
    run_dnsperf(client, &args, out, limit)?;
    let (user_after, sys_after) = e2e::process::cpu_times(subject.pid)
        .with_context(|| format!("{} is gone", subject.target.name()))?;
    let (busy_after, total_after) = machine_cpu_ticks()?;
    let report = parse_dnsperf_output(out)?;
    let _ = std::fs::remove_file(out);
    let _ = std::fs::remove_file(out.with_extension("stderr"));
    let total = (total_after - total_before).max(1);
    Ok(Round {
        target: subject.target,
        report,
        server_cpu_s: ((user_after + sys_after) - (user_before + sys_before)).as_secs_f64(),
        server_user_s: (user_after - user_before).as_secs_f64(),
        machine_busy: (busy_after - busy_before) as f64 / total as f64,
    })
}

/// dnsperf's arguments for a warm-up pass: `passes` over the file with
/// `outstanding` queries in flight, `timeout` s per query, `limit` s in all.
fn warm_args(
    subject: Subject,
    data: &Path,
    passes: u32,
    outstanding: u32,
    timeout: u32,
    limit: u32,
) -> Vec<String> {
    let mut args = vec![
        "-s".to_string(),
        subject.addr.to_string(),
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
/// fails unless every answer was NOERROR.
fn warm(
    client: &Host,
    subject: Subject,
    data: &Path,
    queries_in_file: u64,
    dir: &Path,
) -> Result<()> {
    let out = dir.join(format!("warm-{}.out", subject.target.name()));
    // One gentle pass resolves everything (recursion, validation) ...
    let gentle = warm_args(subject, data, 1, 20, 5, 60);
    run_dnsperf(client, &gentle, &out, Duration::from_secs(90))?;
    let first = parse_dnsperf_output(&out)?;
    // ... the second must then be all cache hits, all NOERROR.
    let check = warm_args(subject, data, 2, 50, 2, 30);
    run_dnsperf(client, &check, &out, Duration::from_secs(60))?;
    let second = parse_dnsperf_output(&out)?;
    let _ = std::fs::remove_file(&out);
    let expected = 2 * queries_in_file;
    ensure!(
        second.sent == expected && second.completed == expected && second.noerror() == expected,
        "{} is not answering the query set correctly after warm-up: \
         first pass {first:?}, second pass {second:?}",
        subject.target.name()
    );
    Ok(())
}

/// Checks a sample of answers with dig: the right data, from the cache
/// (RA), and AD on the signed name.
fn verify_answers(client: &Host, subject: Subject, names: &[BenchName]) -> Result<()> {
    let who = subject.target.name();
    let step = (names.len() / 16).max(1);
    let sample = names
        .iter()
        .step_by(step)
        .chain(names.last())
        .collect::<Vec<_>>();
    for n in sample {
        let a = client.dig(subject.addr, &Query::new(&n.name, "A"))?;
        ensure!(
            a.status == "NOERROR" && a.answers("A") == [n.a.to_string()],
            "{who}: {} A: expected {}, got {} {:?}",
            n.name,
            n.a,
            a.status,
            a.answers("A")
        );
        let aaaa = client.dig(subject.addr, &Query::new(&n.name, "AAAA"))?;
        let got: Vec<Option<Ipv6Addr>> = aaaa
            .answers("AAAA")
            .iter()
            .map(|s| s.parse().ok())
            .collect();
        ensure!(
            aaaa.status == "NOERROR" && got == [Some(n.aaaa)],
            "{who}: {} AAAA: expected {}, got {} {:?}",
            n.name,
            n.aaaa,
            aaaa.status,
            aaaa.answers("AAAA")
        );
        ensure!(a.ra(), "{who}: no RA flag on {} A", n.name);
    }
    let secure = client.dig(subject.addr, &Query::new("www.secure.lab", "A").adflag())?;
    // dnsmasq does not validate; it passes Unbound's AD through on a miss
    // (proxy-dnssec) but not from its own cache.
    let validated = secure.ad() || subject.target == Target::Dnsmasq;
    ensure!(
        secure.status == "NOERROR"
            && secure.answers("A") == [e2e::dns_hierarchy::data::SECURE_A]
            && validated,
        "{who}: www.secure.lab A is not a validated answer: {}",
        secure.raw
    );
    Ok(())
}

/// dnsmasq on `host`, caching (10 000 entries) and forwarding everything
/// to `upstream`, with Unbound's AD passed through; no query logging.
fn start_dnsmasq(host: &Host, upstream: IpAddr, loopback: bool) -> Result<e2e::Daemon> {
    let listen = format!("--listen-address={}", addr::REFERENCE2);
    let server = format!("--server={upstream}");
    let mut args = vec![
        "--keep-in-foreground",
        "--log-facility=-",
        "--no-resolv",
        "--no-hosts",
        "--no-poll",
        "--pid-file",
        "--user=root",
        "--bind-interfaces",
        "--cache-size=10000",
        "--dns-forward-max=1000",
        "--proxy-dnssec",
        listen.as_str(),
        server.as_str(),
    ];
    if loopback {
        args.push("--listen-address=127.0.0.1");
    }
    let daemon = host.spawn("dnsmasq", "dnsmasq", &args)?;
    let probe = Query::new("www.plain.lab", "A").timeout(1);
    let at = IpAddr::V4(addr::REFERENCE2);
    e2e::wait_until(Duration::from_secs(10), "dnsmasq to answer", || {
        host.dig(at, &probe).is_ok().then_some(())
    })?;
    Ok(daemon)
}

/// `perf record` of `subject` during one extra (unmeasured) round.
fn perf_round(
    client: &Host,
    subject: Subject,
    shape: &LoadShape,
    data: &Path,
    queries_in_file: u64,
    dir: &Path,
    out_dir: &Path,
) -> Result<PathBuf> {
    let perf = e2e::require::tool("perf")?;
    std::fs::create_dir_all(out_dir)?;
    let file = out_dir.join(format!("{}.perf.data", subject.target.name()));
    let seconds = shape.seconds.to_string();
    let mut recorder = Command::new(perf)
        .args(["record", "-F", "999", "-g", "-p"])
        .arg(subject.pid.to_string())
        .arg("-o")
        .arg(&file)
        .args(["--", "sleep", &seconds])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(File::create(
            dir.join(format!("perf-{}.log", subject.target.name())),
        )?))
        .spawn()
        .context("spawning perf record")?;
    let out = dir.join(format!("perf-{}.out", subject.target.name()));
    let result = measure(client, subject, shape, data, queries_in_file, &out);
    let status = recorder.wait()?;
    result?;
    ensure!(status.success(), "perf record failed ({status})");
    Ok(file)
}

/// Median of `values` (mean of the middle two for an even count).
fn median(mut values: Vec<f64>) -> f64 {
    values.retain(|v| v.is_finite());
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    if values.len() % 2 == 1 {
        values[mid]
    } else {
        (values[mid - 1] + values[mid]) / 2.0
    }
}

/// Medians across one server's rounds.
#[derive(Debug, Clone)]
struct Summary {
    target: Target,
    rounds: usize,
    qps: f64,
    mean_ms: f64,
    p50_ms: f64,
    p99_ms: f64,
    lost: f64,
    not_noerror: f64,
    cpu_pct: f64,
    user_pct: f64,
    qps_per_cpu_s: f64,
    qps_per_user_cpu_s: f64,
    machine_busy_pct: f64,
    response_size: f64,
}

fn summarize(target: Target, rounds: &[Round]) -> Summary {
    let mine: Vec<&Round> = rounds.iter().filter(|r| r.target == target).collect();
    let m = |f: &dyn Fn(&Round) -> f64| median(mine.iter().map(|r| f(r)).collect());
    let ms = |v: Option<f64>| v.map_or(f64::NAN, |s| s * 1e3);
    Summary {
        target,
        rounds: mine.len(),
        qps: m(&|r| r.report.qps),
        mean_ms: m(&|r| r.report.avg_latency_s * 1e3),
        p50_ms: m(&|r| ms(r.report.p50_s)),
        p99_ms: m(&|r| ms(r.report.p99_s)),
        lost: m(&|r| r.report.lost as f64),
        not_noerror: m(&|r| r.report.completed.saturating_sub(r.report.noerror()) as f64),
        cpu_pct: m(&|r| r.cpu_pct()),
        user_pct: m(&|r| r.user_pct()),
        qps_per_cpu_s: m(&|r| r.qps_per_cpu_s()),
        qps_per_user_cpu_s: m(&|r| r.qps_per_user_cpu_s()),
        machine_busy_pct: m(&|r| 100.0 * r.machine_busy),
        response_size: m(&|r| r.report.response_size.map_or(f64::NAN, |s| s as f64)),
    }
}

/// A number for the table: `-` when not measured.
fn num(v: f64, decimals: usize) -> String {
    if v.is_finite() {
        format!("{v:.decimals$}")
    } else {
        "-".to_string()
    }
}

const COLUMNS: [&str; 12] = [
    "server",
    "QPS",
    "mean ms",
    "p50 ms",
    "p99 ms",
    "lost",
    "!NOERROR",
    "CPU %",
    "user %",
    "QPS/CPU-s",
    "machine %",
    "resp B",
];

fn summary_cells(s: &Summary) -> Vec<String> {
    vec![
        format!("{} ({}x)", s.target.name(), s.rounds),
        num(s.qps, 0),
        num(s.mean_ms, 3),
        num(s.p50_ms, 3),
        num(s.p99_ms, 3),
        num(s.lost, 0),
        num(s.not_noerror, 0),
        num(s.cpu_pct, 1),
        num(s.user_pct, 1),
        num(s.qps_per_cpu_s, 0),
        num(s.machine_busy_pct, 1),
        num(s.response_size, 0),
    ]
}

fn round_cells(i: usize, r: &Round) -> Vec<String> {
    let ms = |v: Option<f64>| v.map_or(f64::NAN, |s| s * 1e3);
    vec![
        format!("{} #{}", r.target.name(), i + 1),
        num(r.report.qps, 0),
        num(r.report.avg_latency_s * 1e3, 3),
        num(ms(r.report.p50_s), 3),
        num(ms(r.report.p99_s), 3),
        r.report.lost.to_string(),
        r.report
            .completed
            .saturating_sub(r.report.noerror())
            .to_string(),
        num(r.cpu_pct(), 1),
        num(r.user_pct(), 1),
        num(r.qps_per_cpu_s(), 0),
        num(100.0 * r.machine_busy, 1),
        r.report
            .response_size
            .map_or("-".to_string(), |s| s.to_string()),
    ]
}

/// A plain-text table with right-aligned numbers.
fn text_table(rows: &[Vec<String>]) -> String {
    let header: Vec<String> = COLUMNS.iter().map(|c| c.to_string()).collect();
    let all: Vec<&Vec<String>> = std::iter::once(&header).chain(rows).collect();
    let widths: Vec<usize> = (0..COLUMNS.len())
        .map(|c| all.iter().map(|r| r[c].len()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for (i, row) in all.iter().enumerate() {
        for (c, cell) in row.iter().enumerate() {
            if c == 0 {
                let _ = write!(out, "{cell:<w$}", w = widths[c]);
            } else {
                let _ = write!(out, "  {cell:>w$}", w = widths[c]);
            }
        }
        out.push('\n');
        if i == 0 {
            let rule: usize = widths.iter().sum::<usize>() + 2 * (widths.len() - 1);
            out.push_str(&"-".repeat(rule));
            out.push('\n');
        }
    }
    out
}

fn markdown_table(rows: &[Vec<String>]) -> String {
    let mut out = format!("| {} |\n", COLUMNS.join(" | "));
    let _ = writeln!(
        out,
        "|{}",
        (0..COLUMNS.len())
            .map(|c| if c == 0 { "---|" } else { "---:|" })
            .collect::<String>()
    );
    for row in rows {
        let _ = writeln!(out, "| {} |", row.join(" | "));
    }
    out
}

/// First line of a command's output (stdout, else stderr), or "unknown".
fn first_line_of(program: &str, args: &[&str], matching: &str) -> String {
    let path = e2e::require::find_tool(program).unwrap_or_else(|| PathBuf::from(program));
    let Ok(out) = Command::new(path).args(args).stdin(Stdio::null()).output() else {
        return "unknown".to_string();
    };
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    text.lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && l.contains(matching))
        .unwrap_or("unknown")
        .to_string()
}

/// The environment a result belongs to.
struct Environment {
    date: String,
    cpu: String,
    cores: usize,
    kernel: String,
    routerd: String,
    unbound: String,
    dnsperf: String,
    command: String,
}

impl Environment {
    fn collect(routerd: &Path) -> Environment {
        let cpu = cpu_model();
        let unbound = first_line_of("unbound", &["-V"], "Version");
        Environment {
            date: first_line_of("date", &["-u", "+%Y-%m-%d %H:%M:%S UTC"], ""),
            cpu,
            cores: cores(),
            kernel: first_line_of("uname", &["-sr"], ""),
            routerd: first_line_of(&routerd.to_string_lossy(), &["--version"], "routerd"),
            unbound: format!("unbound {}", unbound.trim_start_matches("Version ")),
            dnsperf: format!(
                "dnsperf {}",
                first_line_of("dnsperf", &["-h"], "Version").trim_start_matches("Version ")
            ),
            command: std::env::args().collect::<Vec<_>>().join(" "),
        }
    }

    fn lines(&self) -> Vec<String> {
        vec![
            format!("date:     {}", self.date),
            format!(
                "machine:  {} x {} cores, {}",
                self.cpu, self.cores, self.kernel
            ),
            format!(
                "versions: {}; {}; {}",
                self.routerd, self.unbound, self.dnsperf
            ),
            format!("command:  {}", self.command),
        ]
    }
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

fn ratio(a: f64, b: f64) -> String {
    if a.is_finite() && b.is_finite() && b > 0.0 {
        format!("{:.2}x", a / b)
    } else {
        "-".to_string()
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(_) if STOP.load(Ordering::SeqCst) => {
            eprintln!("load: interrupted; the lab is removed");
            ExitCode::from(130)
        }
        Err(e) => {
            eprintln!("load: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The whole benchmark; the lab is torn down when this returns.
fn run(args: &Args) -> Result<()> {
    watch_signals("load")?;
    if !e2e::require(&[
        "nsd",
        "dig",
        "ldns-signzone",
        "unbound",
        "dnsperf",
        "routerd",
    ]) {
        bail!("the lab cannot run here (see above)");
    }
    let routerd_bin = e2e::routerd::binary()?;
    let env = Environment::collect(&routerd_bin);
    for line in env.lines() {
        println!("{line}");
    }
    println!("routerd binary: {}", routerd_bin.display());

    let started = Instant::now();
    let lab = Lab::new()?;
    if !args.keep_bridge_netfilter {
        lab.disable_bridge_netfilter()?;
    }
    let mut dns = DnsHierarchy::start(&lab)?;
    let names = bench_names(args.names);
    dns.add_records(BENCH_ZONE, &zone_records(&names))?;
    let data = lab.dir().join("queries.txt");
    let queries = query_file(&names);
    let queries_in_file = queries.lines().count() as u64;
    std::fs::write(&data, queries)?;

    let cores = u32::try_from(cores()).unwrap_or(1);
    let router_host = lab.add_host("router", addr::ROUTER)?;
    let unbound_host = lab.add_host("unbound", addr::REFERENCE)?;
    let client = lab.add_host("client", addr::CLIENT)?;

    let loopback_addr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 53);
    let routerd = RouterdConfig::recursive(&dns)
        .with(|c| {
            if args.loopback {
                c.listen.push(loopback_addr);
                c.allow.push("127.0.0.0/8".to_string());
            }
            c.workers = 0;
            c.rate_limit_qps = 0;
            c.cache_max_entries = 100_000;
            c.prefetch = true;
            c.rust_log = std::env::var("LOAD_RUST_LOG").unwrap_or_else(|_| "warn".to_string());
        })
        .start(&router_host)?;
    let mut unbound_options = UnboundOptions::load_test(cores);
    if args.loopback {
        unbound_options
            .extra_server
            .push_str("    interface: 127.0.0.1\n");
    }
    let unbound = Unbound::start_with(&unbound_host, &dns, &unbound_options)?;
    let mut subjects = vec![
        Subject {
            target: Target::Routerd,
            addr: routerd.addr(),
            pid: routerd.daemon.pid(),
        },
        Subject {
            target: Target::Unbound,
            addr: unbound.addr(),
            pid: unbound.daemon.pid(),
        },
    ];
    let mut hosts = vec![router_host.clone(), unbound_host.clone()];
    let with_dnsmasq = !args.no_dnsmasq && e2e::require::find_tool("dnsmasq").is_some();
    if !args.no_dnsmasq && !with_dnsmasq {
        println!("dnsmasq not installed (Debian package dnsmasq-base): comparing two servers");
    }
    let _dnsmasq = if with_dnsmasq {
        let host = lab.add_host("dnsmasq", addr::REFERENCE2)?;
        let daemon = start_dnsmasq(&host, unbound.addr(), args.loopback)?;
        subjects.push(Subject {
            target: Target::Dnsmasq,
            addr: IpAddr::V4(addr::REFERENCE2),
            pid: daemon.pid(),
        });
        hosts.push(host);
        Some(daemon)
    } else {
        None
    };
    println!(
        "lab ready in {:.1} s: {} names x A/AAAA + www.secure.lab A/AAAA = {queries_in_file} queries, \
         TTL {BENCH_TTL} s; routerd workers = {cores} (0 = per core), unbound num-threads = {cores}",
        started.elapsed().as_secs_f64(),
        names.len(),
    );

    for subject in subjects.iter().copied() {
        warm(&client, subject, &data, queries_in_file, lab.dir())?;
        verify_answers(&client, subject, &names)?;
        println!("warmed and checked: {}", subject.target.name());
    }

    if args.hold > 0 {
        println!(
            "holding {} s: client netns {} ({}); query file {}",
            args.hold,
            client.ns,
            client.v4,
            data.display()
        );
        for (subject, host) in subjects.iter().zip(&hosts) {
            println!(
                "  {}: netns {}, {} pid {}",
                subject.target.name(),
                host.ns,
                subject.addr,
                subject.pid
            );
        }
        let until = Instant::now() + Duration::from_secs(args.hold);
        while Instant::now() < until {
            check_stop()?;
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    let shape = LoadShape {
        seconds: args.seconds,
        outstanding: args.outstanding,
        clients: args.clients,
        threads: args.threads,
        edns: args.edns,
        verbose: !args.no_histogram,
    };
    println!(
        "load: {} ; {} rounds per server, interleaved",
        shape.describe(),
        args.rounds
    );
    let mut rounds: Vec<Round> = Vec::new();
    for round in 0..args.rounds {
        // ABBA order: neither server always runs first (or just after the
        // other one warmed the CPU caches / frequency).
        // Rotate which server goes first, and reverse every other round:
        // with two servers this is ABBA.
        let mut order: Vec<(Subject, &Host)> = subjects.iter().copied().zip(&hosts).collect();
        let first = round as usize % order.len();
        order.rotate_left(first);
        if round % 2 == 1 {
            order.reverse();
        }
        for (subject, host) in order {
            let out = lab
                .dir()
                .join(format!("round-{round}-{}.out", subject.target.name()));
            let r = if args.loopback {
                let local = Subject {
                    addr: loopback_addr.ip(),
                    ..subject
                };
                measure(host, local, &shape, &data, queries_in_file, &out)?
            } else {
                measure(&client, subject, &shape, &data, queries_in_file, &out)?
            };
            let index = rounds.iter().filter(|x| x.target == r.target).count();
            println!(
                "{}",
                text_table(&[round_cells(index, &r)])
                    .lines()
                    .nth(2)
                    .unwrap_or("")
            );
            rounds.push(r);
        }
    }

    let mut per_round: Vec<Vec<String>> = Vec::new();
    let targets: Vec<Target> = subjects.iter().map(|s| s.target).collect();
    for target in targets.iter().copied() {
        for (i, r) in rounds.iter().filter(|r| r.target == target).enumerate() {
            per_round.push(round_cells(i, r));
        }
    }
    let summaries: Vec<Summary> = targets.iter().map(|t| summarize(*t, &rounds)).collect();
    let (r, u) = (&summaries[0], &summaries[1]);
    let summary_rows: Vec<Vec<String>> = summaries.iter().map(summary_cells).collect();

    let verdict_qps = r.qps_per_cpu_s >= 1.5 * u.qps_per_cpu_s;
    // Unknown without percentiles (--no-histogram).
    let verdict_p99 = match r.p99_ms.partial_cmp(&u.p99_ms) {
        Some(std::cmp::Ordering::Less | std::cmp::Ordering::Equal) => "met",
        Some(std::cmp::Ordering::Greater) => "NOT met",
        None => "unknown",
    };
    let mut ratios = vec![
        format!(
            "routerd/unbound: QPS {}, QPS per CPU-second {} (per user-space CPU-second {}), p99 {}, mean latency {}",
            ratio(r.qps, u.qps),
            ratio(r.qps_per_cpu_s, u.qps_per_cpu_s),
            ratio(r.qps_per_user_cpu_s, u.qps_per_user_cpu_s),
            ratio(r.p99_ms, u.p99_ms),
            ratio(r.mean_ms, u.mean_ms),
        ),
        format!(
            "goal (QPS per CPU-second >= 1.5x unbound, p99 no worse): {} / {}",
            if verdict_qps { "met" } else { "NOT met" },
            verdict_p99,
        ),
    ];
    if let Some(d) = summaries.get(2) {
        ratios.push(format!(
            "routerd/dnsmasq: QPS {}, QPS per CPU-second {}, p99 {}",
            ratio(r.qps, d.qps),
            ratio(r.qps_per_cpu_s, d.qps_per_cpu_s),
            ratio(r.p99_ms, d.p99_ms),
        ));
    }

    println!("\nper round:");
    print!("{}", text_table(&per_round));
    println!(
        "\nmedians over {} rounds of {} s each:",
        args.rounds, args.seconds
    );
    print!("{}", text_table(&summary_rows));
    for line in &ratios {
        println!("{line}");
    }
    println!(
        "(CPU % = server CPU, user + system, in % of one core (up to {cores}00%); user % = its user-space share; \
         QPS/CPU-s = answered queries / server CPU seconds; machine % = all cores busy, load generator included)"
    );

    if let Some(path) = &args.markdown {
        let names: Vec<&str> = targets.iter().map(|t| t.name()).collect();
        let mut md = format!("## {}, cache-hot UDP load\n\n", names.join(" vs "));
        for line in env.lines() {
            let (key, value) = line.split_once(':').unwrap_or((line.as_str(), ""));
            let _ = writeln!(md, "- {key}: {}", value.trim());
        }
        let _ = writeln!(
            md,
            "- load: {}, {queries_in_file} distinct queries, {} interleaved rounds per server\n",
            shape.describe(),
            args.rounds
        );
        md.push_str("Medians across rounds:\n\n");
        md.push_str(&markdown_table(&summary_rows));
        md.push('\n');
        for line in &ratios {
            let _ = writeln!(md, "{line}  ");
        }
        md.push_str("\nPer round:\n\n");
        md.push_str(&markdown_table(&per_round));
        std::fs::write(path, md).with_context(|| format!("writing {}", path.display()))?;
        println!("markdown written to {}", path.display());
    }

    if let Some(dir) = &args.perf {
        for subject in subjects.iter().copied() {
            match perf_round(
                &client,
                subject,
                &shape,
                &data,
                queries_in_file,
                lab.dir(),
                dir,
            ) {
                Ok(file) => println!(
                    "perf profile of {}: {} (perf report -i {} --no-children)",
                    subject.target.name(),
                    file.display(),
                    file.display()
                ),
                Err(e) => println!("perf profile of {} failed: {e:#}", subject.target.name()),
            }
        }
    }

    println!("total time {:.0} s", started.elapsed().as_secs_f64());
    drop(unbound);
    drop(routerd);
    drop(dns);
    drop(lab);
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
        assert_eq!(r.rcodes.get("SERVFAIL"), Some(&8));
        assert_eq!(r.response_size, Some(50));
        assert!((r.qps - 99.79744).abs() < 1e-6);
        assert!((r.avg_latency_s - 0.000772).abs() < 1e-9);
    }

    #[test]
    fn percentiles_and_medians() {
        let mut h = vec![0u64; 100];
        h[10] = 50;
        h[20] = 49;
        h[90] = 1;
        assert!((percentile(&h, 100, 0.5) - 10e-6).abs() < 1e-12);
        assert!((percentile(&h, 100, 0.99) - 20e-6).abs() < 1e-12);
        assert!((percentile(&h, 100, 1.0) - 90e-6).abs() < 1e-12);
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(median(vec![]).is_nan());
    }

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
