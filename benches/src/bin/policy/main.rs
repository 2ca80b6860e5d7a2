//! The policy benchmark: what a large policy costs to validate, compile
//! and apply, how many nft rules it becomes, and what it adds to every
//! forwarded packet, next to the same policy written naively (one chain
//! per zone pair, one nft rule per policy rule).
//!
//! 1. A policy of `--zones` zones and `--rules` rules is generated from a
//!    seed ([`generate`]) into policy files, then timed through
//!    `policies::load_dir` (validate) and `policies::compile`.
//! 2. The same policy, as loaded, is written in the naive layout
//!    ([`naive`]), twice: one nft rule per policy rule (anonymous sets for
//!    several ports), and one nft rule per port.
//! 3. A lab ([`lab`]): sender, router and receiver namespaces on the
//!    measured path (the last zone to the one before it: the naive form's
//!    deepest path). In the router's namespace, a worker (this binary,
//!    `apply-worker`) times `Nft::apply` of the compiled ruleset and
//!    `nft -f` of the naive scripts, and counts what nft then lists.
//! 4. Packets ([`packets`]): with no table, a conntrack-only table, the
//!    compiled and the naive rulesets in turn (interleaved rounds),
//!    `udpflood` sends one UDP flow flat out from the sender to the
//!    receiver's port 9999 through the router; the router's packet count
//!    towards the receiver gives the forwarded rate.
//! 5. The table ([`report`]), in markdown.
//!
//! Run it through `benches/policy.sh` (root; it builds in release). See
//! benches/README.md for how to read the table.

#![allow(clippy::print_stdout)] // reason: printing the results table is this binary's job

mod generate;
mod lab;
mod naive;
mod packets;
mod report;

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use benches::{check_stop, watch_signals};
use clap::{Parser, Subcommand};
use policies::eval::{DecidedBy, Packet, Payload, decide};
use policies::model::{Action, Destination, Policy, Transport};
use policies::{Protected, Ruleset};
use serde_json::{Value as Json, json};

use crate::generate::{Generated, PATH_PORT, PATH_RULE, Shape};
use crate::lab::PathLab;
use crate::naive::Layout;
use crate::packets::{Config, Flood, Sample};
use crate::report::{Environment, Row, cores};

/// The policy benchmark (see benches/README.md).
#[derive(Debug, Parser)]
#[command(name = "policy", args_conflicts_with_subcommands = true)]
struct Args {
    #[command(subcommand)]
    worker: Option<Worker>,
    #[command(flatten)]
    bench: BenchArgs,
}

#[derive(Debug, clap::Args)]
struct BenchArgs {
    /// Zones in the generated policy.
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u16).range(2..=250))]
    zones: u16,
    /// Rules in the generated policy (at least zones + 3).
    #[arg(long, default_value_t = 5000, value_parser = clap::value_parser!(u32).range(5..=100_000))]
    rules: u32,
    /// Share of the zone-pair rules with destination addresses, in %.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(0..=100))]
    addressed_percent: u32,
    /// Seed of the generator: the same seed writes the same policy.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Files the rules are spread over (in order; zones have their own):
    /// validation reads every file, and its cost depends on their sizes.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=500))]
    rule_files: u16,
    /// Timed repetitions of validate, compile and apply (medians reported).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=100))]
    repeat: u32,
    /// Packet rounds per ruleset, interleaved (medians reported).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=50))]
    rounds: u32,
    /// Length of one packet round, in seconds.
    #[arg(long, default_value_t = 3.0)]
    seconds: f64,
    /// The most datagrams one round may send, whatever the time.
    #[arg(long, default_value_t = 20_000_000)]
    max_packets: u64,
    /// Skip the packet rounds (validate, compile, apply and counts only).
    #[arg(long)]
    no_packets: bool,
    /// Also write the results as markdown to this file.
    #[arg(long, value_name = "FILE")]
    markdown: Option<PathBuf>,
    /// Keep the generated policy files, the compiled ruleset (nft text)
    /// and the naive script in this directory.
    #[arg(long, value_name = "DIR")]
    write: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
enum Worker {
    /// Runs inside the router's namespace: times the applies and counts
    /// what nft lists; prints JSON.
    #[command(hide = true)]
    ApplyWorker {
        #[arg(long)]
        policy_dir: PathBuf,
        /// `NAME=FILE`: an nft script to time as NAME (repeatable).
        #[arg(long)]
        script: Vec<String>,
        #[arg(long)]
        repeat: u32,
    },
}

fn main() -> ExitCode {
    let args = Args::parse();
    let result = match &args.worker {
        Some(Worker::ApplyWorker {
            policy_dir,
            script,
            repeat,
        }) => apply_worker(policy_dir, script, *repeat),
        None => run(&args.bench),
    };
    benches::exit_code("policy", result)
}

fn median(values: &[f64]) -> f64 {
    let mut sorted: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    sorted.sort_by(f64::total_cmp);
    match sorted.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Checks that the policy itself accepts the measured flow with its last
/// rule: a new udp/PATH_PORT flow from the sender host to the receiver.
fn path_decision(policy: &Policy, generated: &Generated) -> Result<(), String> {
    let to = Destination::Zone(generated.path_to.clone());
    let packet = Packet {
        from: &generated.path_from,
        to: &to,
        payload: Payload::Port(Transport::Udp, PATH_PORT),
        source: Some(IpAddr::V4(lab::host_v4(generated.path_from_n))),
        destination: Some(IpAddr::V4(lab::host_v4(generated.path_to_n))),
    };
    let decision = decide(policy, &packet);
    if decision.action == Action::Accept && decision.by == DecidedBy::Rule(PATH_RULE.into()) {
        Ok(())
    } else {
        Err(format!(
            "the measured flow is decided by {:?} ({}), not by rule {PATH_RULE}",
            decision.by, decision.action
        ))
    }
}

/// Rules a packet on the measured path is matched against in the
/// compiled forward chain, the verdict map lookups included: the chain's
/// rules down to the `forward_ports` lookup, plus the pair's own chain.
fn compiled_path_depth(ruleset: &Ruleset, from: &str, to: &str) -> Option<usize> {
    use policies::compile::ir::Stmt;
    let forward = ruleset.chains.iter().find(|c| c.name == "forward")?;
    let ports = forward.rules.iter().position(|rule| {
        rule.stmts
            .iter()
            .any(|s| matches!(s, Stmt::Vmap(_, map) if map == "forward_ports"))
    })?;
    let pair = format!("forward_{from}_{to}");
    let pair_rules = ruleset
        .chains
        .iter()
        .find(|c| c.name == pair)
        .map_or(0, |c| c.rules.len());
    Some(ports + 1 + pair_rules)
}

/// What `nft -j list table inet router` shows.
#[derive(Debug, Clone, Copy, Default, serde::Serialize, serde::Deserialize)]
pub struct Listed {
    pub rules: usize,
    pub chains: usize,
    pub elements: usize,
}

fn count_listing(listing: &Json) -> Listed {
    let mut listed = Listed::default();
    for object in policies::nft::listing_objects(listing) {
        if object.get("rule").is_some() {
            listed.rules += 1;
        }
        if object.get("chain").is_some() {
            listed.chains += 1;
        }
        if let Some(set) = object.get("map").or_else(|| object.get("set")) {
            listed.elements += set.get("elem").and_then(Json::as_array).map_or(0, Vec::len);
        }
    }
    listed
}

/// Runs `nft` (in the current namespace) with `args`, stdin from `input`.
fn nft(args: &[&str], input: Option<&Path>) -> Result<String> {
    let mut command = Command::new(e2e::require::tool("nft")?);
    command.args(args);
    match input {
        Some(path) => command.stdin(std::fs::File::open(path)?),
        None => command.stdin(Stdio::null()),
    };
    let out = command.output().context("running nft")?;
    ensure!(
        out.status.success(),
        "nft {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr).trim()
    );
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn list_here() -> Result<Listed> {
    let listing: Json =
        serde_json::from_str(&nft(&["-j", "list", "table", "inet", "router"], None)?)
            .context("reading nft's listing")?;
    Ok(count_listing(&listing))
}

/// The worker: in the router's namespace, applies each form once to warm
/// up (replacing whatever was there), then `repeat` timed times
/// (replacing the same form), and lists the result. The compiled form
/// goes through `Nft::apply`, the scripts through `nft -f`. Leaves no
/// table.
fn apply_worker(policy_dir: &Path, scripts: &[String], repeat: u32) -> Result<()> {
    let loaded = policies::load_dir(policy_dir, &Protected::default())
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let ruleset = policies::compile(&loaded.policy, &policies::NodeServices::default());
    let nft_api = policies::nft::Nft::default();
    let mut result = serde_json::Map::new();

    let mut ours = Vec::new();
    nft_api
        .apply(&ruleset)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    for _ in 0..repeat {
        let started = Instant::now();
        nft_api
            .apply(&ruleset)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        ours.push(ms(started.elapsed()));
    }
    result.insert(
        "ours".into(),
        json!({ "apply_ms": ours, "listed": list_here()? }),
    );

    for script in scripts {
        let (name, path) = script
            .split_once('=')
            .with_context(|| format!("--script {script}: expected NAME=FILE"))?;
        let mut times = Vec::new();
        nft(&["-f", path], None)?;
        for _ in 0..repeat {
            let started = Instant::now();
            nft(&["-f", path], None)?;
            times.push(ms(started.elapsed()));
        }
        result.insert(
            name.into(),
            json!({ "apply_ms": times, "listed": list_here()? }),
        );
    }
    nft_api.remove().map_err(|e| anyhow::anyhow!("{e}"))?;
    println!("{}", Json::Object(result));
    Ok(())
}

/// Apply timings and listing of one form, from the worker.
#[derive(Debug, Clone, Default)]
struct Applied {
    apply_ms: Vec<f64>,
    listed: Listed,
}

fn parse_applied(json: &Json, form: &str) -> Result<Applied> {
    let entry = json
        .get(form)
        .with_context(|| format!("no {form} in the worker's output"))?;
    let apply_ms = entry
        .get("apply_ms")
        .and_then(Json::as_array)
        .context("apply_ms")?
        .iter()
        .filter_map(Json::as_f64)
        .collect();
    let listed = serde_json::from_value(entry.get("listed").cloned().unwrap_or_default())?;
    Ok(Applied { apply_ms, listed })
}

/// The whole benchmark; the lab is torn down when this returns.
fn run(args: &BenchArgs) -> Result<()> {
    watch_signals("policy")?;
    if !e2e::require(&["nft", "sysctl", "taskset"]) {
        bail!("the benchmark cannot run here (see above)");
    }
    ensure!(
        args.rules >= generate::min_rules(args.zones),
        "--rules must be at least --zones + 3 ({})",
        generate::min_rules(args.zones)
    );
    ensure!(
        args.seconds > 0.0 && args.seconds <= 60.0,
        "--seconds must be in (0, 60]"
    );
    let exe = std::env::current_exe()?;
    let udpflood = exe.with_file_name("udpflood");
    ensure!(
        args.no_packets || udpflood.exists(),
        "{} is missing: cargo build --release -p benches --bin udpflood",
        udpflood.display()
    );
    let env = Environment::collect();
    println!("date:    {}", env.date);
    println!(
        "machine: {}, nproc {}, {}, {}",
        env.cpu, env.cores, env.kernel, env.nft
    );
    println!("command: {}", env.command);

    // The policy, in the lab's directory.
    let generated = generate::generate(Shape {
        zones: args.zones,
        rules: args.rules,
        addressed_percent: args.addressed_percent,
        seed: args.seed,
        rule_files: args.rule_files,
    });
    let lab = PathLab::new(generated.path_from_n, generated.path_to_n)?;
    let dir = lab.dir().join("policy");
    std::fs::create_dir_all(&dir)?;
    for (name, text) in &generated.files {
        std::fs::write(dir.join(name), text)?;
    }

    // Validate and compile.
    let mut validate_ms = Vec::new();
    let mut loaded = None;
    for _ in 0..args.repeat {
        check_stop()?;
        let started = Instant::now();
        let result = policies::load_dir(&dir, &Protected::default());
        validate_ms.push(ms(started.elapsed()));
        match result {
            Ok(l) => loaded = Some(l),
            Err(e) => bail!("the generated policy is refused:\n{e:?}"),
        }
    }
    let loaded = loaded.context("no validation ran")?;
    ensure!(
        loaded.policy.rules.len() == generated.rules as usize,
        "{} rules loaded of the {} generated",
        loaded.policy.rules.len(),
        generated.rules
    );
    if let Err(e) = path_decision(&loaded.policy, &generated) {
        bail!("{e}");
    }
    let mut compile_ms = Vec::new();
    let mut ruleset = None;
    for _ in 0..args.repeat {
        let started = Instant::now();
        let compiled = policies::compile(&loaded.policy, &policies::NodeServices::default());
        compile_ms.push(ms(started.elapsed()));
        ruleset = Some(compiled);
    }
    let ruleset = ruleset.context("no compile ran")?;
    let path = (generated.path_from.as_str(), generated.path_to.as_str());
    let naive = naive::render(&loaded.policy, path, PATH_RULE, Layout::OnePerRule)?;
    let per_port = naive::render(&loaded.policy, path, PATH_RULE, Layout::OnePerPort)?;
    let ours_depth = compiled_path_depth(&ruleset, path.0, path.1)
        .context("the compiled forward chain has no forward_ports lookup")?;
    println!(
        "policy:  {} zones, {} rules in {} rule file(s) ({} with destination addresses), seed {}; {} warnings",
        loaded.policy.zones.len(),
        loaded.policy.rules.len(),
        generated.files.len() - 1,
        generated.addressed,
        args.seed,
        loaded.warnings.len()
    );
    for warning in &loaded.warnings {
        println!("  {}", warning.to_string().replace('\n', "\n  "));
    }

    let scripts = [
        (
            Config::Ours,
            policies::compile::json::replace_table(&ruleset).to_string(),
        ),
        (Config::Naive, naive.text.clone()),
        (Config::NaivePerPort, per_port.text.clone()),
        (Config::CtOnly, packets::CT_ONLY.to_string()),
        (Config::Empty, packets::NONE.to_string()),
    ];
    for (config, text) in &scripts {
        std::fs::write(lab.dir().join(config.file()), text)?;
    }
    if let Some(out) = &args.write {
        std::fs::create_dir_all(out)?;
        for (name, text) in &generated.files {
            std::fs::write(out.join(name), text)?;
        }
        std::fs::write(out.join("compiled.nft"), ruleset.to_text())?;
        std::fs::write(out.join("naive.nft"), &naive.text)?;
        std::fs::write(out.join("naive-per-port.nft"), &per_port.text)?;
        println!("wrote:   {}", out.display());
    }

    // Apply, in the router's namespace.
    check_stop()?;
    let script_arg = |config: Config| {
        format!(
            "{}={}",
            config.file(),
            lab.dir().join(config.file()).display()
        )
    };
    let worker = lab
        .router
        .command(&exe.to_string_lossy())
        .args(["apply-worker", "--policy-dir"])
        .arg(&dir)
        .args(["--script", &script_arg(Config::Naive)])
        .args(["--script", &script_arg(Config::NaivePerPort)])
        .args(["--repeat", &args.repeat.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("starting the apply worker")?;
    let limit = Duration::from_secs(60) * (args.repeat + 1) * 3;
    let out = packets::finish(worker, "the apply worker", limit)?;
    let applied: Json = serde_json::from_str(out.trim()).context("reading the worker's output")?;
    let ours_applied = parse_applied(&applied, "ours")?;
    ensure!(
        ours_applied.listed.rules == ruleset.rule_count(),
        "nft lists {} rules of the compiled ruleset's {}",
        ours_applied.listed.rules,
        ruleset.rule_count()
    );
    let mut naive_applied = Vec::new();
    for (config, form) in [(Config::Naive, &naive), (Config::NaivePerPort, &per_port)] {
        let applied = parse_applied(&applied, config.file())?;
        ensure!(
            applied.listed.rules == form.rules && applied.listed.chains == form.chains,
            "{}: nft lists {} rules in {} chains of the script's {} in {}",
            config.label(),
            applied.listed.rules,
            applied.listed.chains,
            form.rules,
            form.chains
        );
        naive_applied.push(applied);
    }

    // Packets.
    let mut samples: Vec<(Config, Sample)> = Vec::new();
    if !args.no_packets {
        let flood = Flood {
            lab: &lab,
            bin: udpflood,
            pin: cores() >= 2,
            seconds: args.seconds,
            max_packets: args.max_packets,
        };
        for round in 0..args.rounds as usize {
            for i in 0..Config::ALL.len() {
                let config = Config::ALL[(i + round) % Config::ALL.len()];
                packets::load(&lab, config)?;
                let sample = flood.round()?;
                println!(
                    "round {} {:<24} sent {:>9} ({} errors), forwarded {:>9}, delivered {:>9} in {:.2} s: {:>7.0} pps",
                    round + 1,
                    config.label(),
                    sample.sent,
                    sample.send_errors,
                    sample.forwarded,
                    sample.delivered,
                    sample.seconds,
                    sample.pps()
                );
                ensure!(
                    sample.delivered > 0,
                    "{}: nothing reached the receiver: the ruleset does not accept the flow",
                    config.label()
                );
                if config == Config::Ours {
                    let listing: Json = serde_json::from_str(
                        &lab.router
                            .run("nft", &["-j", "list", "table", "inet", "router"])?,
                    )?;
                    let counted = policies::nft::sum_counters(&listing)
                        .get(&format!("rule:{PATH_RULE}"))
                        .map_or(0, |c| c.packets);
                    ensure!(
                        counted > 0,
                        "the compiled ruleset accepted the flow, but not by rule {PATH_RULE}"
                    );
                }
                samples.push((config, sample));
            }
        }
        let conntrack = lab
            .router
            .run("cat", &["/proc/net/nf_conntrack"])
            .unwrap_or_default();
        if let Some(entry) = conntrack
            .lines()
            .find(|l| l.contains(&format!("dport={PATH_PORT}")))
        {
            let entry: Vec<&str> = entry.split_whitespace().collect();
            println!(
                "the flow in the router's conntrack table: {}",
                entry.join(" ")
            );
        }
        packets::load(&lab, Config::Empty)?;
    }

    // The table.
    let pps = |config: Config| -> Option<f64> {
        let values: Vec<f64> = samples
            .iter()
            .filter(|(c, _)| *c == config)
            .map(|(_, s)| s.pps())
            .collect();
        let median = median(&values);
        (median > 0.0).then_some(median)
    };
    let empty = pps(Config::Empty);
    let added = |config: Config| -> Option<f64> { Some(1e6 / pps(config)? - 1e6 / empty?) };
    let mut rows = vec![Row {
        label: Config::Ours.label(),
        validate_ms: Some(median(&validate_ms)),
        compile_ms: Some(median(&compile_ms)),
        apply_ms: Some(median(&ours_applied.apply_ms)),
        listed: ours_applied.listed,
        depth: ours_depth,
        pps: pps(Config::Ours),
        added_us: added(Config::Ours),
    }];
    for ((config, form), applied) in [(Config::Naive, &naive), (Config::NaivePerPort, &per_port)]
        .into_iter()
        .zip(&naive_applied)
    {
        rows.push(Row {
            label: config.label(),
            validate_ms: None,
            compile_ms: None,
            apply_ms: Some(median(&applied.apply_ms)),
            listed: applied.listed,
            depth: form.path_depth,
            pps: pps(config),
            added_us: added(config),
        });
    }
    if !args.no_packets {
        rows.push(Row {
            label: Config::CtOnly.label(),
            validate_ms: None,
            compile_ms: None,
            apply_ms: None,
            listed: Listed {
                rules: 1,
                chains: 1,
                elements: 0,
            },
            depth: 1,
            pps: pps(Config::CtOnly),
            added_us: added(Config::CtOnly),
        });
        rows.push(Row {
            label: Config::Empty.label(),
            validate_ms: None,
            compile_ms: None,
            apply_ms: None,
            listed: Listed::default(),
            depth: 0,
            pps: empty,
            added_us: empty.map(|_| 0.0),
        });
    }
    let mut notes = vec![format!(
        "policy: {} zones, {} rules in {} rule file(s) ({} with destination addresses), seed {}, \
         {} warnings; validate (`load_dir`), compile and apply (`Nft::apply`, or `nft -f` for the \
         naive scripts, each replacing the same table): medians of {}",
        loaded.policy.zones.len(),
        loaded.policy.rules.len(),
        generated.files.len() - 1,
        generated.addressed,
        args.seed,
        loaded.warnings.len(),
        args.repeat
    )];
    if !args.no_packets {
        notes.push(format!(
            "packets: one UDP flow {} → {} (udp/{PATH_PORT}, accepted by that pair's last rule), \
             18-byte datagrams sent flat out by one sender{}, never answered (conntrack state new: \
             every packet walks the rules); forwarded pps: medians of {} rounds of {} s",
            path.0,
            path.1,
            if cores() >= 2 {
                " (CPU 0; receiver on CPU 1)"
            } else {
                ""
            },
            args.rounds,
            args.seconds
        ));
    }
    let title = format!(
        "Policy benchmark: {} zones, {} rules",
        args.zones, args.rules
    );
    let md = report::markdown(&title, &env, &notes, &rows);
    println!("\n{md}");
    if let Some(path) = &args.markdown {
        std::fs::write(path, &md).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}
