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

use std::fmt::Write as _;
use std::fs::File;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use benches::dnsperf::{LoadShape, Measured};
use benches::names::{BENCH_TTL, BENCH_ZONE, BenchName, bench_names, query_file, zone_records};
use benches::table::{cores, first_line_of, markdown_table, median, num, ratio, text_table};
use benches::{check_stop, cpu_model, watch_signals};
use clap::Parser;
use e2e::unbound::{Unbound, UnboundOptions};
use e2e::{DnsHierarchy, Host, Lab, Query, RouterdConfig, addr};

/// Load comparison of routerd with Unbound in the namespace lab.
#[derive(Debug, Parser)]
#[command(name = "load")]
struct Args {
    /// Measured rounds per server (interleaved: R U, U R, R U, ...).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=50))]
    rounds: u32,
    #[command(flatten)]
    load: benches::dnsperf::LoadArgs,
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
    /// Keep routerd's query log on (its default), recording every query
    /// to SQLite; off otherwise, as Unbound and dnsmasq log nothing here.
    #[arg(long)]
    query_log: bool,
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
    /// Leave NSD out of the comparison. It answers the same queries
    /// authoritatively from its own copy of the zones, one server process
    /// per core: no recursion, cache or validation, the floor of what
    /// answering a UDP query costs.
    #[arg(long)]
    no_nsd: bool,
    /// Leave out the second routerd, the one with `udp_segmentation =
    /// false` that hands the kernel one datagram per answer as the other
    /// servers do (it shows what segmented sends buy routerd here).
    #[arg(long)]
    no_gso_row: bool,
}

/// The resolvers under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Target {
    Routerd,
    Unbound,
    /// routerd with `udp_segmentation = false`: one datagram per send, as
    /// every other server here sends, to show what segmentation buys.
    RouterdNoGso,
    /// dnsmasq caching and forwarding to the lab's Unbound: what Pi-hole
    /// runs (as FTL), single-threaded by design.
    Dnsmasq,
    /// NSD serving the bench zones authoritatively: a reference for the
    /// cost of the UDP path itself, not a resolver.
    Nsd,
}

impl Target {
    fn name(self) -> &'static str {
        match self {
            Target::Routerd => "routerd",
            Target::Unbound => "unbound",
            Target::RouterdNoGso => "routerd-no-gso",
            Target::Dnsmasq => "dnsmasq",
            Target::Nsd => "nsd",
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

/// One measured round against one server.
#[derive(Debug, Clone)]
struct Round {
    target: Target,
    run: Measured,
}

impl Subject {
    fn server(&self) -> benches::dnsperf::Server<'static> {
        benches::dnsperf::Server {
            name: self.target.name(),
            addr: self.addr,
            pid: self.pid,
        }
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
    let run =
        benches::dnsperf::measure(client, subject.server(), shape, data, queries_in_file, out)?;
    Ok(Round {
        target: subject.target,
        run,
    })
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
    benches::dnsperf::warm(
        client,
        subject.server(),
        data,
        queries_in_file,
        "NOERROR",
        &out,
    )
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
        let a = benches::names::expect_a(client, subject.addr, n, who)?;
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
        // NSD answers as the zone's authority, not as a recursive server.
        let served = if subject.target == Target::Nsd {
            a.aa()
        } else {
            a.ra()
        };
        ensure!(served, "{who}: no RA (or AA from nsd) flag on {} A", n.name);
    }
    let secure = client.dig(subject.addr, &Query::new("www.secure.lab", "A").adflag())?;
    // dnsmasq does not validate; it passes Unbound's AD through on a miss
    // (proxy-dnssec) but not from its own cache. NSD is the zone's source.
    let validated = secure.ad() || matches!(subject.target, Target::Dnsmasq | Target::Nsd);
    ensure!(
        secure.status == "NOERROR"
            && secure.answers("A") == [e2e::dns_hierarchy::data::SECURE_A]
            && validated,
        "{who}: www.secure.lab A is not a validated answer: {}",
        secure.raw
    );
    Ok(())
}

/// dnsmasq on `host` (see [`benches::dnsmasq::args`]), forwarding to
/// `upstream`.
fn start_dnsmasq(host: &Host, upstream: IpAddr, loopback: bool) -> Result<e2e::Daemon> {
    let mut args = benches::dnsmasq::args(IpAddr::V4(addr::REFERENCE2), upstream);
    if loopback {
        args.push("--listen-address=127.0.0.1".to_string());
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
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
    let mine: Vec<&Measured> = rounds
        .iter()
        .filter(|r| r.target == target)
        .map(|r| &r.run)
        .collect();
    let m = |f: &dyn Fn(&Measured) -> f64| median(mine.iter().map(|r| f(r)).collect());
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

fn round_cells(i: usize, round: &Round) -> Vec<String> {
    let ms = |v: Option<f64>| v.map_or(f64::NAN, |s| s * 1e3);
    let r = &round.run;
    vec![
        format!("{} #{}", round.target.name(), i + 1),
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

/// The environment a result belongs to.
struct Environment {
    date: String,
    cpu: String,
    cores: usize,
    kernel: String,
    routerd: String,
    unbound: String,
    references: String,
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
            references: format!(
                "nsd {}; dnsmasq {}",
                first_line_of("nsd", &["-v"], "NSD version").trim_start_matches("NSD version "),
                first_line_of("dnsmasq", &["--version"], "version")
                    .split_whitespace()
                    .nth(2)
                    .unwrap_or("unknown"),
            ),
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
                "versions: {}; {}; {}; {}",
                self.routerd, self.unbound, self.references, self.dnsperf
            ),
            format!("command:  {}", self.command),
        ]
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    benches::exit_code("load", run(&args))
}

/// The whole benchmark; the lab is torn down when this returns.
fn run(args: &Args) -> Result<()> {
    watch_signals("load")?;
    if !e2e::require(&benches::LAB_TOOLS) {
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
    let names = bench_names(args.load.names);
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
    let routerd_config = |address: Ipv4Addr, udp_segmentation: bool| {
        RouterdConfig::recursive(&dns).with(|c| {
            c.listen = vec![SocketAddr::new(IpAddr::V4(address), 53)];
            if args.loopback {
                c.listen.push(loopback_addr);
                c.allow.push("127.0.0.0/8".to_string());
            }
            c.workers = 0;
            c.rate_limit_qps = 0;
            c.cache_max_entries = 100_000;
            c.prefetch = true;
            c.udp_segmentation = udp_segmentation;
            c.rust_log = std::env::var("LOAD_RUST_LOG").unwrap_or_else(|_| "warn".to_string());
            if !args.query_log {
                c.extra_toml = "[dns.query_log]\nenabled = false\n".to_string();
            }
        })
    };
    let routerd = routerd_config(addr::ROUTER, true).start(&router_host)?;
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
    let _routerd_no_gso = if args.no_gso_row {
        None
    } else {
        let host = lab.add_host("router2", addr::ROUTER2)?;
        let daemon = routerd_config(addr::ROUTER2, false).start(&host)?;
        subjects.push(Subject {
            target: Target::RouterdNoGso,
            addr: daemon.addr(),
            pid: daemon.daemon.pid(),
        });
        hosts.push(host);
        Some(daemon)
    };
    let with_dnsmasq = !args.no_dnsmasq && e2e::require::find_tool("dnsmasq").is_some();
    if !args.no_dnsmasq && !with_dnsmasq {
        println!("dnsmasq not installed (Debian package dnsmasq-base): comparing two servers");
    }
    let with_nsd = !args.no_nsd && !args.loopback;
    if !args.no_nsd && args.loopback {
        println!("--loopback: NSD left out (it serves the lab addresses only)");
    }
    let _nsd = if with_nsd {
        let host = lab.add_host("nsd", addr::REFERENCE3)?;
        let daemon = dns.serve_copy(&host, e2e::dns_hierarchy::Server::Leaf, cores)?;
        subjects.push(Subject {
            target: Target::Nsd,
            addr: IpAddr::V4(addr::REFERENCE3),
            pid: daemon.pid(),
        });
        hosts.push(host);
        Some(daemon)
    } else {
        None
    };
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
         TTL {BENCH_TTL} s; routerd workers = {cores} (0 = per core), unbound num-threads = {cores}, nsd server-count = {cores}",
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
        seconds: args.load.seconds,
        outstanding: args.load.outstanding,
        clients: args.load.clients,
        threads: args.load.threads,
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
                text_table(&COLUMNS, &[round_cells(index, &r)])
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
    if let Some(no_gso) = summaries.iter().find(|s| s.target == Target::RouterdNoGso) {
        ratios.push(format!(
            "routerd-no-gso/unbound: QPS {}, QPS per CPU-second {}, p99 {}",
            ratio(no_gso.qps, u.qps),
            ratio(no_gso.qps_per_cpu_s, u.qps_per_cpu_s),
            ratio(no_gso.p99_ms, u.p99_ms),
        ));
    }
    for reference in summaries.iter().skip(2) {
        ratios.push(format!(
            "routerd/{}: QPS {}, QPS per CPU-second {}, p99 {}",
            reference.target.name(),
            ratio(r.qps, reference.qps),
            ratio(r.qps_per_cpu_s, reference.qps_per_cpu_s),
            ratio(r.p99_ms, reference.p99_ms),
        ));
    }

    println!("\nper round:");
    print!("{}", text_table(&COLUMNS, &per_round));
    println!(
        "\nmedians over {} rounds of {} s each:",
        args.rounds, args.load.seconds
    );
    print!("{}", text_table(&COLUMNS, &summary_rows));
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
        md.push_str(&markdown_table(&COLUMNS, &summary_rows));
        md.push('\n');
        for line in &ratios {
            let _ = writeln!(md, "{line}  ");
        }
        md.push_str("\nPer round:\n\n");
        md.push_str(&markdown_table(&COLUMNS, &per_round));
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
