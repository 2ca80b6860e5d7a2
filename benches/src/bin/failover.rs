//! The failover benchmark: how long a house's DNS is unanswered when the
//! primary of a pair dies, for a routerd pair and for what people build
//! today, keepalived moving the address between two Unbound resolvers
//! (each bound to the floating address with `ip-freebind`).
//!
//! Each scenario is its own namespace lab (the NSD hierarchy, two nodes
//! and a client on one bridge). Per round, the client asks the floating
//! address `--rate` times a second for a cached name; one second in, the
//! primary node dies (SIGKILL to routerd, or to keepalived and Unbound
//! together); the round measures the longest run of unanswered queries
//! (first unanswered to next answered) and how many went unanswered.
//! Then the primary comes back and takes the address again (preempt)
//! before the next round. The table gives medians and the worst round.
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
use e2e::keepalived::{Keepalived, KeepalivedConfig, State};
use e2e::unbound::{Unbound, UnboundOptions};
use e2e::vrrp_node::{
    PROBE_NAME, outage, parse_steady, routerd_node, unanswered_runs, wait_for_vrrp_state,
};
use e2e::{DnsHierarchy, Host, Lab, Routerd, addr};

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
    /// Leave out keepalived at its default 1 s advert (the slowest rounds).
    #[arg(long)]
    no_default_interval: bool,
    /// Also write the table as markdown to this file.
    #[arg(long)]
    markdown: Option<std::path::PathBuf>,
}

/// One scenario's rounds.
struct Scenario {
    name: String,
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

fn routerd_scenario(args: &Args, probe: &Path) -> Result<Scenario> {
    let s = setup()?;
    let advert_ms = 100;
    let config_a = routerd_node(&s.dns, VRRP1, (vip(), 16), 150, true, advert_ms);
    let config_b = routerd_node(&s.dns, VRRP2, (vip(), 16), 100, true, advert_ms);
    let mut a: Routerd = config_a.start(&s.node_a)?;
    wait_for_vrrp_state(&a, "master", Duration::from_secs(5))?;
    let b = config_b.start(&s.node_b)?;
    wait_for_vrrp_state(&b, "backup", Duration::from_secs(5))?;
    let mut scenario = Scenario {
        name: "routerd pair".into(),
        advert: Duration::from_millis(advert_ms),
        gaps: Vec::new(),
        lost: Vec::new(),
    };
    for i in 0..args.rounds {
        let pid = a.daemon.pid();
        let label = format!("steady-routerd-{i}");
        let (gap, lost) = round(
            &label,
            probe,
            &s.client,
            (args.rate, scenario.advert),
            || {
                kill(pid);
                Ok(())
            },
        )?;
        println!(
            "routerd pair #{}: gap {} ms, {lost} unanswered",
            i + 1,
            gap.as_millis()
        );
        scenario.gaps.push(gap);
        scenario.lost.push(lost);
        a.daemon.stop();
        a = config_a.start(&s.node_a)?;
        wait_for_vrrp_state(&a, "master", Duration::from_secs(5))?;
        wait_for_vrrp_state(&b, "backup", Duration::from_secs(5))?;
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

fn keepalived_scenario(args: &Args, probe: &Path, advert: Duration) -> Result<Scenario> {
    let s = setup()?;
    let config = |priority| {
        KeepalivedConfig::new(51, priority, vip(), 16).with(|c| c.advert_interval = advert)
    };
    let mut unbound_a = unbound_on(&s.node_a, &s.dns)?;
    let _unbound_b = unbound_on(&s.node_b, &s.dns)?;
    let mut ka_a: Keepalived = config(150).start(&s.node_a)?;
    ka_a.wait_for_state(State::Master, advert * 5 + Duration::from_secs(2))?;
    let mut ka_b = config(100).start(&s.node_b)?;
    ka_b.wait_for_state(State::Backup, advert * 5 + Duration::from_secs(2))?;
    let mut scenario = Scenario {
        name: "keepalived + Unbound".into(),
        advert,
        gaps: Vec::new(),
        lost: Vec::new(),
    };
    for i in 0..args.rounds {
        let unbound_pid = unbound_a.daemon.pid();
        let label = format!("steady-keepalived-{}-{i}", advert.as_millis());
        let (gap, lost) = round(&label, probe, &s.client, (args.rate, advert), || {
            ka_a.kill();
            kill(unbound_pid);
            Ok(())
        })?;
        println!(
            "keepalived {} ms #{}: gap {} ms, {lost} unanswered",
            advert.as_millis(),
            i + 1,
            gap.as_millis()
        );
        scenario.gaps.push(gap);
        scenario.lost.push(lost);
        unbound_a.daemon.stop();
        unbound_a = unbound_on(&s.node_a, &s.dns)?;
        ka_a = config(150).start(&s.node_a)?;
        ka_a.wait_for_state(State::Master, advert * 5 + Duration::from_secs(2))?;
        ka_b.wait_for_state(State::Backup, advert * 5 + Duration::from_secs(2))?;
    }
    Ok(scenario)
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
    let mut scenarios = vec![
        routerd_scenario(args, &probe).context("routerd pair")?,
        keepalived_scenario(args, &probe, Duration::from_millis(100))
            .context("keepalived at 100 ms")?,
    ];
    if !args.no_default_interval {
        scenarios.push(
            keepalived_scenario(args, &probe, Duration::from_secs(1))
                .context("keepalived at 1 s")?,
        );
    }
    let columns = [
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
        "\nSIGKILL of the primary, client at {} queries/s to the floating address:",
        args.rate
    );
    print!("{}", text_table(&columns, &rows));
    if let Some(path) = &args.markdown {
        std::fs::write(path, markdown_table(&columns, &rows))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}
