//! The blocklist benchmark: routerd with a large generated blocklist,
//! side by side with Unbound (`local-zone`s), dnsmasq (`addn-hosts`, as
//! Pi-hole loads it) and PowerDNS Recursor (an RPZ), in the namespace lab.
//!
//! 1. The list ([`list`]): `--domains` names from
//!    `dns::filter::testdata` (the same for the same `--seed`), written as
//!    a hosts file, then as Unbound `local-zone`s and an RPZ zone.
//! 2. Cold starts ([`starts`]): each server alone, without and with the
//!    list, `--starts` times; a probe in the client namespace ([`probe`])
//!    asks for a listed name every 10 ms and times the first blocked
//!    answer from the spawn; then the process's resident memory
//!    ([`memory`]).
//! 3. Checks ([`check`]) that each server blocks and resolves what it
//!    should, then QPS rounds ([`rounds`]): dnsperf with blocked names and
//!    with cache-hot allowed names, and allowed names against routerd
//!    without the list, interleaved; server CPU time gives QPS per
//!    CPU-second.
//! 4. Tables ([`report`]) and routerd's targets.
//!
//! Nothing leaves the machine: every process runs in a lab namespace
//! whose only link is the lab's private bridge, and the resolvers recurse
//! from the lab's root hints. Run it through `benches/blocklist.sh`; see
//! benches/README.md for how to read the tables.

#![allow(clippy::print_stdout)] // reason: printing the results tables is this binary's job

mod check;
mod list;
mod memory;
mod probe;
mod report;
mod rounds;
mod servers;
mod starts;
mod swaps;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use benches::dnsperf::LoadShape;
use benches::names::{BENCH_TTL, BENCH_ZONE, bench_names, query_file, zone_records};
use benches::table::cores;
use benches::watch_signals;
use clap::{Parser, Subcommand};
use e2e::unbound::{Unbound, UnboundOptions};
use e2e::{DnsHierarchy, Host, Lab, addr};

use crate::list::ListFiles;
use crate::memory::Memory;
use crate::probe::Answer;
use crate::report::{Environment, Results};
use crate::rounds::{QueryFile, QueryFiles};
use crate::servers::{Kind, Setup};

/// The blocklist benchmark (see benches/README.md).
#[derive(Debug, Parser)]
#[command(name = "blocklist", args_conflicts_with_subcommands = true)]
struct Args {
    #[command(subcommand)]
    worker: Option<Worker>,
    #[command(flatten)]
    bench: BenchArgs,
}

#[derive(Debug, clap::Args)]
struct BenchArgs {
    /// Names in the generated list.
    #[arg(long, default_value_t = 1_000_000, value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    domains: u64,
    /// Seed of the list: the same seed gives the same names.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Cold starts per server, with and without the list (medians).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=20))]
    starts: u32,
    /// Longest wait for a server's first blocked answer, in seconds.
    #[arg(long, default_value_t = 300, value_parser = clap::value_parser!(u64).range(10..=3600))]
    start_limit: u64,
    /// Measured rounds per server and query file (interleaved).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=50))]
    rounds: u32,
    /// Names of the list in the blocked query file (each asked for A and
    /// AAAA), spread evenly over it.
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    blocked_names: u64,
    /// The allowed query file's lab names (`--names`) and the dnsperf load.
    #[command(flatten)]
    load: benches::dnsperf::LoadArgs,
    /// Also write the tables as markdown to this file.
    #[arg(long, value_name = "FILE")]
    markdown: Option<PathBuf>,
    /// Leave Unbound out.
    #[arg(long)]
    no_unbound: bool,
    /// Leave dnsmasq out (also left out when not installed).
    #[arg(long)]
    no_dnsmasq: bool,
    /// Leave PowerDNS Recursor out (also left out when not installed).
    #[arg(long)]
    no_pdns: bool,
    /// After the rounds, measure routerd's allowed-query load once quietly
    /// and once while its list is swapped every 2 s
    /// (`--swaps=false` skips it).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    swaps: bool,
}

#[derive(Debug, Subcommand)]
enum Worker {
    /// Runs inside the client namespace: asks SERVER for NAME/A every
    /// 10 ms until an answer of kind UNTIL; prints what it sees.
    #[command(hide = true)]
    Probe {
        #[arg(long)]
        server: IpAddr,
        #[arg(long)]
        name: String,
        #[arg(long, value_enum)]
        until: Answer,
        /// Seconds.
        #[arg(long)]
        limit: u64,
    },
}

fn main() -> ExitCode {
    let args = Args::parse();
    let result = match &args.worker {
        Some(Worker::Probe {
            server,
            name,
            until,
            limit,
        }) => probe::run(*server, name, *until, Duration::from_secs(*limit)),
        None => run(&args.bench),
    };
    benches::exit_code("blocklist", result)
}

/// The servers this run compares: routerd and every peer that is
/// installed and not left out.
fn kinds(args: &BenchArgs) -> Vec<Kind> {
    let mut kinds = vec![Kind::Routerd];
    if !args.no_unbound {
        kinds.push(Kind::Unbound);
    }
    for (kind, skip, tool, package) in [
        (Kind::Dnsmasq, args.no_dnsmasq, "dnsmasq", "dnsmasq-base"),
        (Kind::Pdns, args.no_pdns, "pdns_recursor", "pdns-recursor"),
    ] {
        if skip {
            continue;
        }
        if e2e::require::find_tool(tool).is_some() {
            kinds.push(kind);
        } else {
            println!("{tool} not installed (Debian package {package}): left out");
        }
    }
    kinds
}

/// The whole benchmark; the lab is torn down when this returns.
fn run(args: &BenchArgs) -> Result<()> {
    watch_signals("blocklist")?;
    if !e2e::require(&benches::LAB_TOOLS) {
        bail!("the lab cannot run here (see above)");
    }
    let kinds = kinds(args);
    let env = Environment::collect(&e2e::routerd::binary()?);
    env.print();

    let started = Instant::now();
    let lab = Lab::new()?;
    // The host's bridge firewall is not what is measured (see load.rs).
    lab.disable_bridge_netfilter()?;
    let mut dns = DnsHierarchy::start(&lab)?;
    let names = bench_names(args.load.names);
    let records = zone_records(&names) + &list::probe_records(BENCH_TTL);
    dns.add_records(BENCH_ZONE, &records)?;

    let list = ListFiles::write(lab.dir(), args.domains, args.seed)?;
    let blocked = list.sample(args.blocked_names);
    let files = QueryFiles {
        blocked: write_queries(lab.dir(), "blocked", &list::blocked_queries(&blocked))?,
        allowed: write_queries(lab.dir(), "allowed", &query_file(&names))?,
    };
    let mut setup_lines = vec![format!(
        "list: {} names of seed {} plus the probe name, generated in {:.2} s: hosts file {:.1} MB, \
         dnsmasq's (with ::) {:.1} MB, Unbound local-zones {:.1} MB, RPZ {:.1} MB",
        list.domains,
        list.seed,
        list.generate_s,
        ListFiles::mb(&list.hosts),
        ListFiles::mb(&list.dnsmasq),
        ListFiles::mb(&list.unbound),
        ListFiles::mb(&list.rpz),
    )];
    setup_lines.push(format!(
        "queries: blocked {} (names of the list, A and AAAA), allowed {} (lab names, A and AAAA, \
         cache-hot)",
        files.blocked.queries, files.allowed.queries
    ));

    let client = lab.add_host("client", addr::CLIENT)?;
    let _upstream = if kinds.contains(&Kind::Dnsmasq) {
        let host = lab.add_host("upstream", servers::UPSTREAM)?;
        Some(Unbound::start_with(
            &host,
            &dns,
            &UnboundOptions::load_test(1),
        )?)
    } else {
        None
    };
    let mut hosts: BTreeMap<&'static str, Host> = BTreeMap::new();
    for &kind in &kinds {
        for list in [false, true] {
            let name = kind.host_name(list);
            if !hosts.contains_key(name) {
                hosts.insert(name, lab.add_host(name, kind.addr(list))?);
            }
        }
    }
    let threads = u32::try_from(cores()).unwrap_or(1);
    let setup = Setup {
        dns: &dns,
        list: &list,
        threads,
        dir: lab.dir(),
    };
    println!(
        "lab ready in {:.1} s; {}",
        started.elapsed().as_secs_f64(),
        setup_lines.join("; ")
    );

    let limit = Duration::from_secs(args.start_limit);
    let (samples, running) =
        starts::cold_starts(&client, &hosts, &kinds, &setup, args.starts, limit)?;
    check::answers(&client, &running, &spread(&blocked, 8), &spread(&names, 4))?;

    let jobs = rounds::jobs(&running);
    rounds::warm_all(&client, &jobs, &files, lab.dir())?;
    let shape = LoadShape {
        seconds: args.load.seconds,
        outstanding: args.load.outstanding,
        clients: args.load.clients,
        threads: args.load.threads,
        edns: false,
        verbose: true,
    };
    setup_lines.push(format!(
        "load: {}, {} interleaved rounds per server and query file; {} cold starts per server; \
         {threads} threads for routerd, Unbound and PowerDNS Recursor",
        shape.describe(),
        args.rounds,
        args.starts
    ));
    println!("{}", setup_lines.last().map_or("", String::as_str));
    let runs = rounds::run_rounds(&client, &jobs, &files, &shape, args.rounds, lab.dir())?;
    let swaps = match hosts.get(Kind::Routerd.host_name(true)) {
        Some(host) if args.swaps => {
            let socket = e2e::RouterdConfig::recursive(&dns).control_socket_on(host);
            swaps::measure_swaps(
                &client,
                &jobs,
                &files,
                &shape,
                &list.hosts,
                &socket,
                lab.dir(),
            )?
        }
        _ => None,
    };
    let summaries: Vec<_> = (0..jobs.len())
        .map(|i| rounds::summarize(i, &jobs, &runs))
        .collect();
    let after = running
        .iter()
        .map(|r| Ok((r.kind, r.list, Memory::read(r.daemon.pid())?)))
        .collect::<Result<Vec<_>>>()?;

    let results = Results {
        kinds: &kinds,
        domains: args.domains,
        setup: setup_lines,
        starts: &samples,
        after: &after,
        jobs: &jobs,
        summaries: &summaries,
        runs: &runs,
        swaps: swaps.as_ref(),
    };
    results.print();
    if let Some(path) = &args.markdown {
        std::fs::write(path, results.markdown(&env))
            .with_context(|| format!("writing {}", path.display()))?;
        println!("markdown written to {}", path.display());
    }
    println!("total time {:.0} s", started.elapsed().as_secs_f64());
    drop(running);
    drop(dns);
    drop(lab);
    Ok(())
}

fn write_queries(dir: &std::path::Path, name: &str, text: &str) -> Result<QueryFile> {
    let path = dir.join(format!("{name}.queries"));
    std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    Ok(QueryFile {
        path,
        queries: text.lines().count() as u64,
    })
}

/// About `count` items spread over `items`, the last included.
fn spread<T: Clone>(items: &[T], count: usize) -> Vec<T> {
    let step = (items.len() / count.max(1)).max(1);
    let mut picked: Vec<T> = items.iter().step_by(step).cloned().collect();
    if items.len() > 1 && !(items.len() - 1).is_multiple_of(step) {
        picked.extend(items.last().cloned());
    }
    picked
}
