//! The failover benchmark: how long a house's DNS is unanswered when the
//! primary of a pair fails, for a routerd pair and for what people build
//! today, keepalived moving the address between two Unbound resolvers
//! (each bound to the floating address with `ip-freebind`) with a `dig`
//! check every second (fall 2), at 100 ms and at 1 s adverts.
//!
//! Each scenario is its own namespace lab (the NSD hierarchy, two nodes
//! and a client on one bridge). Per round, the client asks the floating
//! address `--rate` times a second for a cached name; one second in, the
//! primary fails: SIGKILL (routerd, or keepalived and Unbound together),
//! its resolver stops answering (nftables drops port 53 on the node), or
//! its link goes down. The round measures the longest run of unanswered
//! queries (first unanswered to next answered) and how many went
//! unanswered. Then the failure is undone and the primary takes the
//! address again (preempt) before the next round. The table gives medians
//! and the worst round.
//!
//! Run it through `benches/failover.sh`; `--help` lists the options.
//! Nothing leaves the machine.

#![allow(clippy::print_stdout)] // reason: printing the results table is this binary's job

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use benches::table::{first_line_of, markdown_table, median, text_table};
use benches::{check_stop, cpu_model, watch_signals};
use clap::Parser;
use e2e::addr::{VRRP_VIP, VRRP1, VRRP2};
use e2e::keepalived::{Keepalived, KeepalivedConfig, State, TrackScript};
use e2e::unbound::{Unbound, UnboundOptions};
use e2e::vrrp_node::{
    PROBE_NAME, outage, parse_steady, routerd_node, unanswered_runs, wait_for_vrrp_state,
};
use e2e::{DnsHierarchy, Host, Lab, Routerd, RouterdConfig, addr};

/// Failover of a floating DNS address: a routerd pair against keepalived
/// with Unbound, in the namespace lab.
#[derive(Debug, Parser)]
#[command(name = "failover")]
struct Args {
    /// Failovers per scenario.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=20))]
    rounds: u32,
    /// Queries a second from the client.
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u32).range(10..=2000))]
    rate: u32,
    /// Leave out the 1 s adverts (keepalived's default; the slowest rounds).
    #[arg(long)]
    no_default_interval: bool,
    /// The failures to measure.
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = [Failure::Kill, Failure::Resolver, Failure::Link])]
    failures: Vec<Failure>,
    /// Also write the table as markdown to this file.
    #[arg(long)]
    markdown: Option<std::path::PathBuf>,
}

/// One scenario's rounds.
struct Scenario {
    name: String,
    failure: Failure,
    advert: Duration,
    gaps: Vec<Duration>,
    lost: Vec<usize>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    if let Err(e) = watch_signals("failover") {
        eprintln!("failover: {e:#}");
        return ExitCode::FAILURE;
    }
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("failover: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn vip() -> IpAddr {
    IpAddr::V4(VRRP_VIP)
}

/// A lab with the hierarchy, two nodes and the client.
struct Setup {
    node_a: Host,
    node_b: Host,
    client: Host,
    dns: DnsHierarchy,
    _lab: Lab,
}

fn setup() -> Result<Setup> {
    let lab = Lab::new()?;
    lab.disable_bridge_netfilter()?;
    let dns = DnsHierarchy::start(&lab)?;
    Ok(Setup {
        node_a: lab.add_host("node-a", VRRP1)?,
        node_b: lab.add_host("node-b", VRRP2)?,
        client: lab.add_host("client", addr::CLIENT)?,
        dns,
        _lab: lab,
    })
}

/// Runs the steady client long enough for a failover at `advert` (one
/// second before the failure, then four master down intervals), calls
/// `fail` one second in, and returns (longest gap, unanswered).
fn round(
    label: &str,
    probe: &Path,
    client: &Host,
    (rate, advert): (u32, Duration),
    fail: impl FnOnce() -> Result<()>,
) -> Result<(Duration, usize)> {
    let target = SocketAddr::new(vip(), 53).to_string();
    let rate_text = rate.to_string();
    let seconds = (2 + (advert * 15).as_secs()).to_string();
    // A log of its own per round: the host's logs are append-only.
    let mut stream = client.spawn(
        label,
        &probe.to_string_lossy(),
        &["udp-steady", &target, PROBE_NAME, &rate_text, &seconds],
    )?;
    std::thread::sleep(Duration::from_secs(1));
    fail()?;
    while stream.is_running() {
        check_stop()?;
        std::thread::sleep(Duration::from_millis(100));
    }
    let sent = parse_steady(&stream.log());
    anyhow::ensure!(
        sent.len() > 100,
        "the client sent only {} queries",
        sent.len()
    );
    let (lost, gap) = outage(&sent);
    let runs: Vec<String> = unanswered_runs(&sent)
        .iter()
        .map(|(at, length)| format!("{}ms@{at}", length.as_millis()))
        .collect();
    println!(
        "  unanswered runs (length@start, ms into the round): {}",
        runs.join(" ")
    );
    Ok((gap, lost))
}

/// How the primary fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Failure {
    /// SIGKILL: routerd, or keepalived and Unbound together.
    Kill,
    /// The primary's resolver stops answering: nftables on the primary
    /// drops DNS (TCP and UDP port 53) from anywhere, its own checks
    /// included, while VRRP carries on.
    Resolver,
    /// The primary's link goes down.
    Link,
}

impl Failure {
    fn describe(self) -> &'static str {
        match self {
            Failure::Kill => "SIGKILL of the primary",
            Failure::Resolver => "the primary's resolver stops answering",
            Failure::Link => "the primary's link goes down",
        }
    }
}

/// Which pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Routerd,
    Keepalived,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Routerd => "routerd pair",
            Kind::Keepalived => "keepalived + Unbound",
        }
    }
}

/// The two running nodes of one scenario.
#[expect(
    clippy::large_enum_variant,
    reason = "one value per scenario: boxing would buy nothing"
)]
enum Nodes {
    Routerd {
        a: Routerd,
        b: Routerd,
        config_a: RouterdConfig,
    },
    Keepalived {
        a: Keepalived,
        b: Keepalived,
        config_a: KeepalivedConfig,
        unbound_a: Unbound,
        _unbound_b: Unbound,
    },
}

/// keepalived's check as people write it: `dig` against the node's own
/// Unbound every second, two failures in a row to FAULT. dig waits whole
/// seconds at least, and a check still running at the next interval is
/// skipped rather than failed ("Track script check is already running"),
/// which left keepalived at 1 s adverts never noticing a silent resolver:
/// `timeout 0.5` ends each run within its interval.
fn dig_check(host: std::net::Ipv4Addr) -> TrackScript {
    TrackScript {
        command: format!("/usr/bin/timeout 0.5 /usr/bin/dig +tries=1 @{host} {PROBE_NAME} A"),
        interval_secs: 1,
        timeout_secs: 1,
        fall: 2,
        rise: 2,
        weight: 0,
    }
}

const RESOLVER_DOWN: &str = "add table inet resolver_down\n\
    add chain inet resolver_down input { type filter hook input priority -10; }\n\
    add rule inet resolver_down input meta l4proto { tcp, udp } th dport 53 drop\n";

impl Nodes {
    fn start(kind: Kind, s: &Setup, advert: Duration) -> Result<Nodes> {
        let settle = advert * 5 + Duration::from_secs(3);
        match kind {
            Kind::Routerd => {
                let advert_ms = advert.as_millis() as u64;
                let config_a = routerd_node(&s.dns, VRRP1, (vip(), 16), 150, true, advert_ms);
                let config_b = routerd_node(&s.dns, VRRP2, (vip(), 16), 100, true, advert_ms);
                let a = config_a.start(&s.node_a)?;
                wait_for_vrrp_state(&a, "master", settle)?;
                let b = config_b.start(&s.node_b)?;
                wait_for_vrrp_state(&b, "backup", settle)?;
                Ok(Nodes::Routerd { a, b, config_a })
            }
            Kind::Keepalived => {
                let config = |priority, host| {
                    KeepalivedConfig::new(51, priority, vip(), 16).with(|c| {
                        c.advert_interval = advert;
                        c.track_script = Some(dig_check(host));
                    })
                };
                let unbound_a = unbound_on(&s.node_a, &s.dns)?;
                let unbound_b = unbound_on(&s.node_b, &s.dns)?;
                let config_a = config(150, VRRP1);
                let mut a = config_a.start(&s.node_a)?;
                a.wait_for_state(State::Master, settle)?;
                let mut b = config(100, VRRP2).start(&s.node_b)?;
                b.wait_for_state(State::Backup, settle)?;
                Ok(Nodes::Keepalived {
                    a,
                    b,
                    config_a,
                    unbound_a,
                    _unbound_b: unbound_b,
                })
            }
        }
    }

    fn fail(&mut self, s: &Setup, failure: Failure) -> Result<()> {
        match (failure, self) {
            (Failure::Kill, Nodes::Routerd { a, .. }) => kill(a.daemon.pid()),
            (Failure::Kill, Nodes::Keepalived { a, unbound_a, .. }) => {
                let unbound = unbound_a.daemon.pid();
                a.kill();
                kill(unbound);
            }
            (Failure::Resolver, _) => {
                let rules = s.node_a.dir().join("resolver-down.nft");
                std::fs::write(&rules, RESOLVER_DOWN)?;
                s.node_a.run("nft", &["-f", &rules.to_string_lossy()])?;
            }
            (Failure::Link, _) => {
                s.node_a
                    .run("ip", &["link", "set", "dev", "eth0", "down"])?;
            }
        }
        Ok(())
    }

    /// Undoes the failure and waits for the primary to be master again.
    fn restore(&mut self, s: &Setup, failure: Failure, advert: Duration) -> Result<()> {
        let settle = advert * 5 + Duration::from_secs(5);
        match failure {
            Failure::Kill => {}
            Failure::Resolver => {
                s.node_a
                    .run("nft", &["delete", "table", "inet", "resolver_down"])?;
            }
            Failure::Link => {
                s.node_a.run("ip", &["link", "set", "dev", "eth0", "up"])?;
            }
        }
        match self {
            Nodes::Routerd { a, b, config_a } => {
                if failure == Failure::Kill {
                    a.daemon.stop();
                    *a = config_a.start(&s.node_a)?;
                }
                wait_for_vrrp_state(a, "master", settle)?;
                wait_for_vrrp_state(b, "backup", settle)?;
            }
            Nodes::Keepalived {
                a,
                b,
                config_a,
                unbound_a,
                ..
            } => {
                if failure == Failure::Kill {
                    unbound_a.daemon.stop();
                    *unbound_a = unbound_on(&s.node_a, &s.dns)?;
                    *a = config_a.start(&s.node_a)?;
                }
                a.wait_for_state(State::Master, settle)?;
                b.wait_for_state(State::Backup, settle)?;
            }
        }
        Ok(())
    }
}

fn scenario(
    args: &Args,
    probe: &Path,
    kind: Kind,
    advert: Duration,
    failure: Failure,
) -> Result<Scenario> {
    let s = setup()?;
    let mut nodes = Nodes::start(kind, &s, advert)?;
    let mut scenario = Scenario {
        name: kind.name().into(),
        failure,
        advert,
        gaps: Vec::new(),
        lost: Vec::new(),
    };
    for i in 0..args.rounds {
        let label = format!("steady-{:?}-{}-{failure:?}-{i}", kind, advert.as_millis());
        let (gap, lost) = round(&label, probe, &s.client, (args.rate, advert), || {
            nodes.fail(&s, failure)
        })?;
        println!(
            "{} {} ms, {}: #{}: gap {} ms, {lost} unanswered",
            kind.name(),
            advert.as_millis(),
            failure.describe(),
            i + 1,
            gap.as_millis()
        );
        scenario.gaps.push(gap);
        scenario.lost.push(lost);
        nodes.restore(&s, failure, advert)?;
    }
    Ok(scenario)
}

/// Unbound on `host`, answering on its own address and (freebind) on the
/// floating one.
fn unbound_on(host: &Host, dns: &DnsHierarchy) -> Result<Unbound> {
    let options = UnboundOptions {
        extra_server: format!("    interface: {VRRP_VIP}\n    ip-freebind: yes\n"),
        ..UnboundOptions::default()
    };
    let unbound = Unbound::start_with(host, dns, &options)?;
    // Warm its cache for the client's name.
    let _ = host.dig(host.v4.into(), &e2e::Query::new(PROBE_NAME, "A"));
    Ok(unbound)
}

fn kill(pid: u32) {
    let _ = std::process::Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status();
}

fn run(args: &Args) -> Result<()> {
    let probe = e2e::process::cargo_binary(
        "e2e-probe",
        "E2E_PROBE_BIN",
        "cargo build --release -p e2e --bin e2e-probe",
    )?;
    let routerd = e2e::routerd::binary()?;
    println!(
        "date:     {}",
        first_line_of("date", &["-u", "+%F %T UTC"], "")
    );
    println!("machine:  {}", cpu_model());
    println!(
        "versions: {}; {}; {}",
        first_line_of(&routerd.to_string_lossy(), &["--version"], "routerd"),
        first_line_of("keepalived", &["--version"], "Keepalived"),
        first_line_of("unbound", &["-V"], "Version")
    );
    let mut adverts = vec![Duration::from_millis(100)];
    if !args.no_default_interval {
        adverts.push(Duration::from_secs(1));
    }
    let mut scenarios = Vec::new();
    for &failure in &args.failures {
        for &advert in &adverts {
            for kind in [Kind::Routerd, Kind::Keepalived] {
                scenarios.push(scenario(args, &probe, kind, advert, failure).with_context(
                    || {
                        format!(
                            "{} at {} ms, {}",
                            kind.name(),
                            advert.as_millis(),
                            failure.describe()
                        )
                    },
                )?);
            }
        }
    }
    let columns = [
        "failure",
        "pair",
        "advert",
        "rounds",
        "median gap ms",
        "worst gap ms",
        "median unanswered",
    ];
    let rows: Vec<Vec<String>> = scenarios
        .iter()
        .map(|s| {
            let gaps: Vec<f64> = s.gaps.iter().map(|g| g.as_secs_f64() * 1000.0).collect();
            let lost: Vec<f64> = s.lost.iter().map(|&n| n as f64).collect();
            let worst = gaps.iter().copied().fold(0.0, f64::max);
            vec![
                format!("{:?}", s.failure).to_lowercase(),
                s.name.clone(),
                format!("{} ms", s.advert.as_millis()),
                s.gaps.len().to_string(),
                format!("{:.0}", median(gaps.clone())),
                format!("{worst:.0}"),
                format!("{:.0}", median(lost)),
            ]
        })
        .collect();
    println!(
        "\nclient at {} queries/s to the floating address; failures: {}",
        args.rate,
        args.failures
            .iter()
            .map(|f| format!("{f:?} = {}", f.describe()).to_lowercase())
            .collect::<Vec<_>>()
            .join("; ")
    );
    print!("{}", text_table(&columns, &rows));
    if let Some(path) = &args.markdown {
        std::fs::write(path, markdown_table(&columns, &rows))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}
