//! The BGP convergence benchmark: routerd and BIRD receiving the same
//! table of a million IPv4 prefixes from BIRD, in the namespace lab.
//!
//! Two senders (BIRD 2, one namespace each) hold the table as static
//! routes: one with every prefix sharing one attribute set, one with
//! `--paths` distinct AS paths. Each measurement starts a fresh receiver
//! (routerd with `[bgp] kernel = false`, or BIRD with `import all; export
//! none` and no kernel protocol) in its own namespace, enables the
//! sender's session toward it and times, from the moment a poll first sees
//! the session Established, until every prefix is in the receiver's
//! Loc-RIB; then withdraws the whole table (`disable` of the sender's
//! static protocol) and times until none is left. CPU time and memory of
//! the receiver come from `/proc`. Rounds interleave the receivers; the
//! table gives medians. Nothing leaves the machine.
//!
//! Run it through `benches/bgp.sh` (which builds routerd in release);
//! `--help` lists the options. See benches/README.md.

#![allow(clippy::print_stdout)] // reason: printing the results table is this binary's job

use std::fmt::Write as _;
use std::io::{BufWriter, Write as _};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use benches::bgp::{bird_session, birdc, control_get, memory, routerd_session};
use benches::table::{cores, first_line_of, markdown_table, median, num, ratio, text_table};
use benches::{check_stop, cpu_model, watch_signals};
use clap::Parser;
use e2e::process::cpu_times;
use e2e::{Daemon, Host, Lab};

/// BGP convergence of a large table: routerd against BIRD, both receiving
/// from BIRD in the namespace lab.
#[derive(Debug, Parser)]
#[command(name = "bgp_load")]
struct Args {
    /// Measured rounds per receiver and table (interleaved).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=20))]
    rounds: u32,
    /// IPv4 prefixes in the table (/24s from 16.0.0.0 upward).
    #[arg(long, default_value_t = 1_000_000, value_parser = clap::value_parser!(u32).range(1..=4_000_000))]
    prefixes: u32,
    /// Distinct AS paths of the second table (consecutive prefixes share a
    /// path); 0 leaves that table out.
    #[arg(long, default_value_t = 250_000)]
    paths: u32,
    /// Leave the table with one shared attribute set out.
    #[arg(long)]
    no_shared: bool,
    /// Also measure routerd with `[bgp] kernel = true` (best routes into
    /// its namespace's kernel table), reported in rows of their own with
    /// the time until the kernel holds every route.
    #[arg(long)]
    kernel: bool,
    /// Poll interval once the session is Established, milliseconds (before
    /// that the receiver is polled every 5 ms to catch the Established
    /// moment).
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u64).range(5..=1000))]
    poll_ms: u64,
    /// Limit of each wait (sender load, convergence, withdrawal), seconds.
    #[arg(long, default_value_t = 120, value_parser = clap::value_parser!(u64).range(5..=3600))]
    timeout: u64,
    /// Also write the tables as markdown to this file.
    #[arg(long, value_name = "FILE")]
    markdown: Option<PathBuf>,
}

/// routerd's AS, and BIRD-the-receiver's.
const RECEIVER_ASN: u32 = 65001;
/// The senders' AS.
const SENDER_ASN: u32 = 65002;
/// First AS of the distinct paths (private 4-octet range).
const PATH_ASN_BASE: u32 = 4_200_000_000;
/// The sender's static protocol.
const STATIC: &str = "s1";
/// routerd's peer name and BIRD-the-receiver's protocol name.
const PEER: &str = "feed";
/// Poll interval until the session is Established.
const FAST_POLL: Duration = Duration::from_millis(5);

/// The two tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Table {
    /// Every prefix with the same attributes.
    Shared,
    /// `--paths` distinct AS paths.
    Distinct,
}

/// The receivers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Receiver {
    Routerd,
    Bird,
    /// routerd with `[bgp] kernel = true`.
    RouterdKernel,
}

impl Receiver {
    fn name(self) -> &'static str {
        match self {
            Receiver::Routerd => "routerd",
            Receiver::Bird => "bird",
            Receiver::RouterdKernel => "routerd+kernel",
        }
    }

    /// The sender's BGP protocol toward this receiver.
    fn protocol(self) -> &'static str {
        match self {
            Receiver::Routerd => "to_routerd",
            Receiver::Bird => "to_bird",
            Receiver::RouterdKernel => "to_routerdk",
        }
    }

    fn addr(self) -> Ipv4Addr {
        match self {
            Receiver::Routerd => e2e::addr::ROUTER,
            Receiver::Bird => e2e::addr::REFERENCE,
            Receiver::RouterdKernel => e2e::addr::REFERENCE3,
        }
    }

    fn is_routerd(self) -> bool {
        matches!(self, Receiver::Routerd | Receiver::RouterdKernel)
    }
}

/// The `n`th prefix of the table: /24s from 16.0.0.0 upward.
fn prefix(n: u32) -> String {
    let base = u32::from(Ipv4Addr::new(16, 0, 0, 0));
    format!("{}/24", Ipv4Addr::from(base + n * 256))
}

/// A sender's bird.conf: the table as blackhole statics in [`STATIC`],
/// and one disabled BGP protocol per receiver that exports all of it.
fn write_sender_conf(
    path: &Path,
    me: Ipv4Addr,
    prefixes: u32,
    paths: Option<u32>,
    receivers: &[Receiver],
) -> Result<()> {
    let file =
        std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let mut w = BufWriter::with_capacity(1 << 20, file);
    writeln!(
        w,
        "log stderr {{ info, remote, warning, error, auth, fatal, bug }};"
    )?;
    writeln!(w, "router id {me};")?;
    writeln!(w, "protocol device {{ }}")?;
    writeln!(w, "protocol static {STATIC} {{\n  ipv4;")?;
    let per_path = paths.map(|p| prefixes.div_ceil(p.max(1)));
    for n in 0..prefixes {
        match per_path {
            None => writeln!(w, "  route {} blackhole;", prefix(n))?,
            Some(k) => writeln!(
                w,
                "  route {} blackhole {{ bgp_path.prepend({}); }};",
                prefix(n),
                PATH_ASN_BASE + n / k
            )?,
        }
    }
    writeln!(w, "}}")?;
    for r in receivers {
        writeln!(
            w,
            "protocol bgp {} {{\n  disabled;\n  local {me} as {SENDER_ASN};\n  \
             neighbor {} as {RECEIVER_ASN};\n  hold time 90;\n  connect delay time 1;\n  \
             connect retry time 1;\n  ipv4 {{ import none; export all; next hop self; }};\n}}",
            r.protocol(),
            r.addr()
        )?;
    }
    w.flush()?;
    Ok(())
}

/// A BIRD daemon of the lab and its control socket.
struct Bird {
    daemon: Daemon,
    socket: PathBuf,
}

impl Bird {
    /// Starts `bird -f` on `host` with `conf`; waits until its socket
    /// answers.
    fn start(host: &Host, label: &str, conf: &Path) -> Result<Bird> {
        let socket = host.dir().join(format!("{label}.ctl"));
        let pidfile = host.dir().join(format!("{label}.pid"));
        let mut daemon = e2e::bird::spawn_bird(host, label, conf, &socket, &pidfile)?;
        daemon.set_tail_lines(10);
        let mut last;
        let started = Instant::now();
        loop {
            check_stop()?;
            daemon.check_running()?;
            match birdc(&socket, "show status") {
                Ok(out) if out.contains("Daemon is up") => break,
                Ok(out) => last = out,
                Err(e) => last = format!("{e:#}"),
            }
            ensure!(
                started.elapsed() < Duration::from_secs(60),
                "{label}: BIRD did not come up: {last}\n{}",
                daemon.log_tail(20)
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(Bird { daemon, socket })
    }

    fn cmd(&self, command: &str) -> Result<String> {
        birdc(&self.socket, command)
    }

    /// Routes the static protocol holds.
    fn static_routes(&self) -> Result<u64> {
        Ok(bird_session(&self.cmd(&format!("show protocols all {STATIC}"))?).1)
    }

    fn pid(&self) -> u32 {
        self.daemon.pid()
    }

    /// A `show status` on the control socket, for what it does to BIRD's
    /// main loop: BIRD 2.0.12 as a sender sometimes leaves its last
    /// UPDATEs queued until the loop's 3 s poll timeout; any activity on
    /// one of its sockets sends them at once (see benches/README.md).
    fn nudge(&self) {
        let _ = self.cmd("show status");
    }
}

/// CPU time (user + system) of `pid`, seconds, and the user part.
fn cpu(pid: u32) -> Result<(f64, f64)> {
    let (user, system) = cpu_times(pid)?;
    Ok(((user + system).as_secs_f64(), user.as_secs_f64()))
}

/// Waits until `pid` used less than 20 ms of CPU in 300 ms (at most
/// `limit`): the daemon is done with whatever it was doing.
fn wait_quiet(pid: u32, limit: Duration) -> Result<()> {
    let end = Instant::now() + limit;
    let mut before = cpu(pid)?.0;
    loop {
        check_stop()?;
        std::thread::sleep(Duration::from_millis(300));
        let now = cpu(pid)?.0;
        if now - before < 0.02 || Instant::now() > end {
            return Ok(());
        }
        before = now;
    }
}

/// A receiver under test, started fresh for one measurement.
struct Subject {
    receiver: Receiver,
    daemon: Daemon,
    socket: PathBuf,
    host: Host,
}

impl Subject {
    /// The session's state and the prefixes in the receiver's Loc-RIB.
    fn poll(&self) -> Result<(String, u64)> {
        if self.receiver.is_routerd() {
            routerd_session(&control_get(&self.socket, "/v1/bgp")?, PEER)
        } else {
            Ok(bird_session(&birdc(
                &self.socket,
                &format!("show protocols all {PEER}"),
            )?))
        }
    }

    fn pid(&self) -> u32 {
        self.daemon.pid()
    }

    /// Routes of protocol bgp (186) in the receiver namespace's main table.
    fn kernel_routes(&self) -> Result<u64> {
        let out = self.host.run(
            "ip",
            &["-4", "route", "show", "table", "main", "proto", "186"],
        )?;
        Ok(out.lines().count() as u64)
    }
}

/// routerd's config: DNS forwarding to nothing on loopback (required,
/// unused), the control socket in the lab directory, one passive peer
/// importing everything and exporting nothing.
fn routerd_conf(host: &Host, sender: Ipv4Addr, kernel: bool, socket: &Path) -> String {
    let dir = host.dir();
    let mut t = String::new();
    let _ = writeln!(
        t,
        "[dns]\nlisten = [\"{}:53\"]\nallow = [\"10.53.0.0/16\"]\nmode = \"forward\"\nworkers = 1\n\n\
         [[dns.upstreams]]\naddress = \"127.0.0.1:5399\"\nprotocol = \"udp\"\n\n\
         [dns.query_log]\nenabled = false\npath = \"{}\"\n\n[dns.filter]\nlists_dir = \"{}\"\n\n\
         [control]\nsocket = \"{}\"\n",
        host.v4,
        dir.join(format!("{}-querylog.sqlite", host.name)).display(),
        dir.join(format!("{}-lists", host.name)).display(),
        socket.display(),
    );
    let _ = writeln!(
        t,
        "[bgp]\nasn = {RECEIVER_ASN}\nrouter_id = \"{0}\"\nlisten = [\"{0}\"]\nhold_time = 90\n\
         kernel = {kernel}\n\n[[bgp.peers]]\nname = \"{PEER}\"\naddress = \"{sender}\"\n\
         remote_asn = {SENDER_ASN}\npassive = true\n\
         import = {{ prefixes = [\"permit 0.0.0.0/0 le 32\"] }}",
        host.v4
    );
    t
}

/// BIRD-the-receiver's config: one passive session, everything imported
/// into its table, nothing exported, no kernel protocol.
fn bird_receiver_conf(me: Ipv4Addr, sender: Ipv4Addr) -> String {
    format!(
        "log stderr {{ info, remote, warning, error, auth, fatal, bug }};\nrouter id {me};\n\
         protocol device {{ }}\n\
         protocol bgp {PEER} {{\n  local {me} as {RECEIVER_ASN};\n  neighbor {sender} as {SENDER_ASN};\n  \
         passive on;\n  hold time 90;\n  ipv4 {{ import all; export none; }};\n}}\n"
    )
}

/// Starts `receiver` on `host`, peering with `sender`; waits until its
/// control socket shows the (not yet connected) session.
fn start_receiver(receiver: Receiver, host: &Host, sender: Ipv4Addr) -> Result<Subject> {
    let label = format!("{}-{}", host.name, unique());
    let (daemon, socket) = if receiver.is_routerd() {
        let socket = host.dir().join(format!("{label}.sock"));
        let conf = host.dir().join(format!("{label}.toml"));
        let kernel = receiver == Receiver::RouterdKernel;
        std::fs::write(&conf, routerd_conf(host, sender, kernel, &socket))?;
        let binary = e2e::routerd::binary()?;
        let log = std::env::var("BGP_RUST_LOG").unwrap_or_else(|_| "warn".to_string());
        let mut daemon = host.spawn_with_env(
            &label,
            &binary.to_string_lossy(),
            &["--config", &conf.to_string_lossy()],
            &[("RUST_LOG", &log), ("NO_COLOR", "1")],
        )?;
        daemon.set_tail_lines(20);
        (daemon, socket)
    } else {
        let conf = host.dir().join(format!("{label}.conf"));
        std::fs::write(&conf, bird_receiver_conf(host.v4, sender))?;
        let bird = Bird::start(host, &label, &conf)?;
        (bird.daemon, bird.socket)
    };
    let mut subject = Subject {
        receiver,
        daemon,
        socket,
        host: host.clone(),
    };
    let started = Instant::now();
    loop {
        check_stop()?;
        subject.daemon.check_running()?;
        match subject.poll() {
            Ok(_) => return Ok(subject),
            Err(e) if started.elapsed() > Duration::from_secs(20) => {
                bail!(
                    "{} did not come up: {e:#}\n{}",
                    receiver.name(),
                    subject.daemon.log_tail(20)
                )
            }
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

/// A number unique in this run, for file names.
fn unique() -> u32 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    N.fetch_add(1, Ordering::SeqCst)
}

/// One measurement of one receiver with one table.
#[derive(Debug, Clone)]
struct Trial {
    table: Table,
    receiver: Receiver,
    /// Sender enabled to the first poll that saw Established.
    to_established_s: f64,
    /// Prefixes already in the Loc-RIB at that poll.
    at_established: u64,
    converge_s: f64,
    cpu_s: f64,
    user_s: f64,
    /// The sender's CPU over the same interval.
    sender_cpu_s: f64,
    rss_before: u64,
    rss_after: u64,
    hwm_after: u64,
    withdraw_s: f64,
    withdraw_cpu_s: f64,
    rss_withdrawn: u64,
    /// Control-socket polls during convergence: median and longest, ms.
    poll_median_ms: f64,
    poll_max_ms: f64,
    /// The same with the whole table in and nothing else to do.
    idle_poll_median_ms: f64,
    idle_poll_max_ms: f64,
    /// The receiver's CPU while polled so, in % of one core.
    idle_cpu_pct: f64,
    /// With the kernel: from Established until the kernel held every
    /// route (NaN otherwise).
    kernel_s: f64,
}

impl Trial {
    fn bytes_per_prefix(&self, prefixes: u32) -> f64 {
        (self.rss_after as f64 - self.rss_before as f64) / f64::from(prefixes)
    }
}

/// Polls `subject` until `done(count)` (and the session is Established),
/// at most `limit`; returns the time, the count and each poll's duration.
fn poll_until(
    subject: &Subject,
    sender: &Bird,
    every: Duration,
    limit: Duration,
    what: &str,
    done: impl Fn(u64) -> bool,
) -> Result<(Instant, u64, Vec<f64>)> {
    let start = Instant::now();
    let mut polls = Vec::new();
    let mut last = (String::new(), 0);
    loop {
        check_stop()?;
        sender.nudge();
        let asked = Instant::now();
        let got = subject.poll();
        let now = Instant::now();
        polls.push((now - asked).as_secs_f64() * 1e3);
        match got {
            Ok((state, count)) => {
                ensure!(
                    state == "Established",
                    "{}: session left Established ({state}) while waiting for {what}",
                    subject.receiver.name()
                );
                if std::env::var_os("BGP_TRACE").is_some() {
                    println!("  {:.3} s {state} {count}", start.elapsed().as_secs_f64());
                }
                if done(count) {
                    return Ok((now, count, polls));
                }
                last = (state, count);
            }
            Err(e) => last = (format!("{e:#}"), last.1),
        }
        ensure!(
            start.elapsed() < limit,
            "{}: timed out after {limit:?} waiting for {what}; last poll {last:?}",
            subject.receiver.name()
        );
        std::thread::sleep(every.saturating_sub(now.elapsed()));
    }
}

/// Measures `receiver` receiving and losing the table of `sender`.
fn trial(
    args: &Args,
    table: Table,
    receiver: Receiver,
    host: &Host,
    sender: &Bird,
    sender_addr: Ipv4Addr,
) -> Result<Trial> {
    let limit = Duration::from_secs(args.timeout);
    let n = u64::from(args.prefixes);
    let mut subject = start_receiver(receiver, host, sender_addr)?;
    let pid = subject.pid();
    wait_quiet(pid, Duration::from_secs(5))?;
    let (rss_before, _) = memory(pid)?;

    sender.cmd(&format!("enable {}", receiver.protocol()))?;
    let enabled = Instant::now();
    // Established: polled fast, the receiver is idle until then.
    let (established, at_established, cpu0, sender0) = loop {
        check_stop()?;
        subject.daemon.check_running()?;
        sender.nudge();
        if let Ok((state, count)) = subject.poll()
            && state == "Established"
        {
            break (Instant::now(), count, cpu(pid)?, cpu(sender.pid())?.0);
        }
        ensure!(
            enabled.elapsed() < limit,
            "{}: the session did not come up within {limit:?}",
            receiver.name()
        );
        std::thread::sleep(FAST_POLL);
    };
    let every = Duration::from_millis(args.poll_ms);
    let (converged, _, polls) =
        poll_until(&subject, sender, every, limit, "the whole table", |c| {
            c >= n
        })?;
    let cpu1 = cpu(pid)?;
    let sender1 = cpu(sender.pid())?.0;
    let kernel_s = if receiver == Receiver::RouterdKernel {
        let started = Instant::now();
        loop {
            check_stop()?;
            if subject.kernel_routes()? >= n {
                break Instant::now().duration_since(established).as_secs_f64();
            }
            ensure!(
                started.elapsed() < limit,
                "routerd+kernel: the kernel did not get every route within {limit:?}"
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    } else {
        f64::NAN
    };
    wait_quiet(pid, Duration::from_secs(10))?;
    let (rss_after, hwm_after) = memory(pid)?;

    // What status polls cost with the whole table in: 20 polls, one per
    // interval, and the receiver's CPU meanwhile.
    let idle_cpu0 = cpu(pid)?.0;
    let idle_start = Instant::now();
    let mut idle_polls = Vec::new();
    for _ in 0..20 {
        check_stop()?;
        let asked = Instant::now();
        subject.poll()?;
        idle_polls.push(asked.elapsed().as_secs_f64() * 1e3);
        std::thread::sleep(every.saturating_sub(asked.elapsed()));
    }
    let idle_cpu_pct = 100.0 * (cpu(pid)?.0 - idle_cpu0) / idle_start.elapsed().as_secs_f64();
    let idle_poll_max_ms = idle_polls.iter().copied().fold(0.0, f64::max);

    let w_cpu0 = cpu(pid)?.0;
    sender.cmd(&format!("disable {STATIC}"))?;
    let withdrawing = Instant::now();
    let (withdrawn, _, _) =
        poll_until(&subject, sender, every, limit, "the withdrawal", |c| c == 0)?;
    let w_cpu1 = cpu(pid)?.0;
    wait_quiet(pid, Duration::from_secs(10))?;
    let (rss_withdrawn, _) = memory(pid)?;

    // Back to the start: session down, receiver gone, table reloaded.
    sender.cmd(&format!("disable {}", receiver.protocol()))?;
    subject.daemon.check_running()?;
    subject.daemon.stop();
    sender.cmd(&format!("enable {STATIC}"))?;
    let reload = Instant::now();
    while sender.static_routes()? < n {
        check_stop()?;
        ensure!(
            reload.elapsed() < limit,
            "the sender did not reload its table"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    wait_quiet(sender.pid(), Duration::from_secs(30))?;

    let mut sorted = polls.clone();
    sorted.sort_by(f64::total_cmp);
    Ok(Trial {
        table,
        receiver,
        to_established_s: (established - enabled).as_secs_f64(),
        at_established,
        converge_s: (converged - established).as_secs_f64(),
        cpu_s: cpu1.0 - cpu0.0,
        user_s: cpu1.1 - cpu0.1,
        sender_cpu_s: sender1 - sender0,
        rss_before,
        rss_after,
        hwm_after,
        withdraw_s: (withdrawn - withdrawing).as_secs_f64(),
        withdraw_cpu_s: w_cpu1 - w_cpu0,
        rss_withdrawn,
        poll_median_ms: median(polls),
        poll_max_ms: sorted.last().copied().unwrap_or(f64::NAN),
        idle_poll_median_ms: median(idle_polls),
        idle_poll_max_ms,
        idle_cpu_pct,
        kernel_s,
    })
}

const MB: f64 = 1e6;

const COLUMNS: [&str; 15] = [
    "receiver",
    "table",
    "converge s",
    "CPU s",
    "user s",
    "sender CPU s",
    "RSS MB",
    "B/prefix",
    "peak MB",
    "withdraw s",
    "withdraw CPU s",
    "RSS withdrawn MB",
    "poll ms (max)",
    "idle poll ms (max)",
    "idle CPU % polled",
];

fn table_name(t: Table, args: &Args) -> String {
    match t {
        Table::Shared => "1 attribute set".to_string(),
        Table::Distinct => format!("{} AS paths", args.paths),
    }
}

fn trial_cells(label: String, t: &Trial, args: &Args) -> Vec<String> {
    vec![
        label,
        table_name(t.table, args),
        num(t.converge_s, 2),
        num(t.cpu_s, 2),
        num(t.user_s, 2),
        num(t.sender_cpu_s, 2),
        num(t.rss_after as f64 / MB, 1),
        num(t.bytes_per_prefix(args.prefixes), 0),
        num(t.hwm_after as f64 / MB, 1),
        num(t.withdraw_s, 2),
        num(t.withdraw_cpu_s, 2),
        num(t.rss_withdrawn as f64 / MB, 1),
        format!("{} ({})", num(t.poll_median_ms, 1), num(t.poll_max_ms, 0)),
        format!(
            "{} ({})",
            num(t.idle_poll_median_ms, 1),
            num(t.idle_poll_max_ms, 0)
        ),
        num(t.idle_cpu_pct, 1),
    ]
}

/// Medians of one receiver's trials with one table. `rss_after` is the
/// median RSS and `rss_before` is set so that the growth, and so
/// [`Trial::bytes_per_prefix`], is the median of the trials' growths.
fn summary(trials: &[&Trial]) -> Trial {
    let m = |f: &dyn Fn(&Trial) -> f64| median(trials.iter().map(|t| f(t)).collect());
    let first = trials[0];
    let rss_after = m(&|t| t.rss_after as f64);
    let growth = m(&|t| t.rss_after as f64 - t.rss_before as f64);
    Trial {
        table: first.table,
        receiver: first.receiver,
        to_established_s: m(&|t| t.to_established_s),
        at_established: m(&|t| t.at_established as f64) as u64,
        converge_s: m(&|t| t.converge_s),
        cpu_s: m(&|t| t.cpu_s),
        user_s: m(&|t| t.user_s),
        sender_cpu_s: m(&|t| t.sender_cpu_s),
        rss_before: (rss_after - growth).max(0.0) as u64,
        rss_after: rss_after as u64,
        hwm_after: m(&|t| t.hwm_after as f64) as u64,
        withdraw_s: m(&|t| t.withdraw_s),
        withdraw_cpu_s: m(&|t| t.withdraw_cpu_s),
        rss_withdrawn: m(&|t| t.rss_withdrawn as f64) as u64,
        poll_median_ms: m(&|t| t.poll_median_ms),
        poll_max_ms: m(&|t| t.poll_max_ms),
        idle_poll_median_ms: m(&|t| t.idle_poll_median_ms),
        idle_poll_max_ms: m(&|t| t.idle_poll_max_ms),
        idle_cpu_pct: m(&|t| t.idle_cpu_pct),
        kernel_s: m(&|t| t.kernel_s),
    }
}

/// The environment a result belongs to.
struct Environment {
    date: String,
    cpu: String,
    cores: usize,
    kernel: String,
    routerd: String,
    bird: String,
    command: String,
}

impl Environment {
    fn collect(routerd: &Path) -> Environment {
        Environment {
            date: first_line_of("date", &["-u", "+%Y-%m-%d %H:%M:%S UTC"], ""),
            cpu: cpu_model(),
            cores: cores(),
            kernel: first_line_of("uname", &["-sr"], ""),
            routerd: first_line_of(&routerd.to_string_lossy(), &["--version"], "routerd"),
            bird: first_line_of("bird", &["--version"], "BIRD"),
            command: std::env::var("BGP_BENCH_COMMAND")
                .unwrap_or_else(|_| std::env::args().collect::<Vec<_>>().join(" ")),
        }
    }

    fn lines(&self) -> Vec<String> {
        vec![
            format!("date:     {}", self.date),
            format!(
                "machine:  {} x {} cores, {}",
                self.cpu, self.cores, self.kernel
            ),
            format!("versions: {}; {}", self.routerd, self.bird),
            format!("command:  {}", self.command),
        ]
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    benches::exit_code("bgp_load", run(&args))
}

fn run(args: &Args) -> Result<()> {
    watch_signals("bgp_load")?;
    if !e2e::require(&["bird", "birdc", "routerd"]) {
        bail!("the lab cannot run here (see above)");
    }
    let routerd_bin = e2e::routerd::binary()?;
    let env = Environment::collect(&routerd_bin);
    for line in env.lines() {
        println!("{line}");
    }
    println!("routerd binary: {}", routerd_bin.display());
    let started = Instant::now();

    let mut tables = Vec::new();
    if !args.no_shared {
        tables.push(Table::Shared);
    }
    if args.paths > 0 {
        tables.push(Table::Distinct);
    }
    ensure!(
        !tables.is_empty(),
        "no table to send (--no-shared and --paths 0)"
    );
    let mut receivers = vec![Receiver::Routerd, Receiver::Bird];
    if args.kernel {
        receivers.push(Receiver::RouterdKernel);
    }

    let lab = Lab::new()?;
    lab.disable_bridge_netfilter()?;
    let hosts: Vec<Host> = receivers
        .iter()
        .map(|r| {
            let name = match r {
                Receiver::Routerd => "routerd",
                Receiver::Bird => "birdrx",
                Receiver::RouterdKernel => "routerdk",
            };
            lab.add_host(name, r.addr())
        })
        .collect::<Result<_>>()?;

    // The senders, loaded before any session starts.
    let mut senders: Vec<(Table, Bird, Ipv4Addr)> = Vec::new();
    for (i, table) in tables.iter().copied().enumerate() {
        let addr = Ipv4Addr::new(10, 53, 0, 60 + i as u8);
        let host = lab.add_host(&format!("tx{i}"), addr)?;
        let conf = lab.dir().join(format!("sender{i}.conf"));
        let paths = (table == Table::Distinct).then_some(args.paths);
        let t0 = Instant::now();
        write_sender_conf(&conf, addr, args.prefixes, paths, &receivers)?;
        let written = t0.elapsed().as_secs_f64();
        let bird = Bird::start(&host, &format!("sender{i}"), &conf)?;
        let limit = Duration::from_secs(args.timeout);
        while bird.static_routes()? < u64::from(args.prefixes) {
            check_stop()?;
            ensure!(t0.elapsed() < limit, "the sender did not load its table");
            std::thread::sleep(Duration::from_millis(50));
        }
        let loaded = t0.elapsed().as_secs_f64();
        wait_quiet(bird.pid(), Duration::from_secs(30))?;
        let (rss, _) = memory(bird.pid())?;
        println!(
            "sender {} ({}): config written in {written:.1} s, {} prefixes in its table {loaded:.1} s after, RSS {:.0} MB",
            i,
            table_name(table, args),
            args.prefixes,
            rss as f64 / MB
        );
        senders.push((table, bird, addr));
    }

    let mut trials: Vec<Trial> = Vec::new();
    for round in 0..args.rounds {
        for (table, sender, addr) in &senders {
            let mut order: Vec<(Receiver, &Host)> = receivers.iter().copied().zip(&hosts).collect();
            if round % 2 == 1 {
                order.reverse();
            }
            for (receiver, host) in order {
                let t = trial(args, *table, receiver, host, sender, *addr)
                    .with_context(|| format!("round {} {}", round + 1, receiver.name()))?;
                println!(
                    "round {} {:<15} {:<16} Established after {:.2} s ({} prefixes in by then), all in {:.2} s, CPU {:.2} s, {:.0} B/prefix, withdrawn in {:.2} s{}",
                    round + 1,
                    receiver.name(),
                    table_name(*table, args),
                    t.to_established_s,
                    t.at_established,
                    t.converge_s,
                    t.cpu_s,
                    t.bytes_per_prefix(args.prefixes),
                    t.withdraw_s,
                    if t.kernel_s.is_finite() {
                        format!(", kernel complete {:.2} s after Established", t.kernel_s)
                    } else {
                        String::new()
                    }
                );
                trials.push(t);
            }
        }
    }

    let mut summaries = Vec::new();
    let mut per_round = Vec::new();
    for table in &tables {
        for receiver in &receivers {
            let mine: Vec<&Trial> = trials
                .iter()
                .filter(|t| t.table == *table && t.receiver == *receiver)
                .collect();
            for (i, t) in mine.iter().enumerate() {
                per_round.push(trial_cells(
                    format!("{} #{}", receiver.name(), i + 1),
                    t,
                    args,
                ));
            }
            summaries.push(summary(&mine));
        }
    }
    let rows: Vec<Vec<String>> = summaries
        .iter()
        .map(|s| trial_cells(format!("{} ({}x)", s.receiver.name(), args.rounds), s, args))
        .collect();
    let mut notes = Vec::new();
    for table in &tables {
        let find = |r: Receiver| {
            summaries
                .iter()
                .find(|s| s.table == *table && s.receiver == r)
        };
        let (Some(r), Some(b)) = (find(Receiver::Routerd), find(Receiver::Bird)) else {
            continue;
        };
        let (rb, bb) = (
            r.bytes_per_prefix(args.prefixes),
            b.bytes_per_prefix(args.prefixes),
        );
        let met = |ok: bool| if ok { "met" } else { "NOT met" };
        notes.push(format!(
            "{}: routerd/bird: converge {}, CPU {}, bytes per prefix {}, withdraw {}; \
             target (time <= BIRD's: {}, bytes per prefix <= BIRD's: {})",
            table_name(*table, args),
            ratio(r.converge_s, b.converge_s),
            ratio(r.cpu_s, b.cpu_s),
            ratio(rb, bb),
            ratio(r.withdraw_s, b.withdraw_s),
            met(r.converge_s <= b.converge_s),
            met(rb <= bb),
        ));
        if let Some(k) = find(Receiver::RouterdKernel) {
            notes.push(format!(
                "{}: routerd with kernel = true: Loc-RIB complete in {:.2} s, kernel table complete {:.2} s after Established (polled every 250 ms with ip route)",
                table_name(*table, args),
                k.converge_s,
                k.kernel_s
            ));
        }
    }

    println!("\nper round:");
    print!("{}", text_table(&COLUMNS, &per_round));
    println!("\nmedians over {} rounds:", args.rounds);
    print!("{}", text_table(&COLUMNS, &rows));
    for n in &notes {
        println!("{n}");
    }
    println!(
        "(converge s: from the first poll that saw the session Established until all {} prefixes were in the Loc-RIB; \
         CPU s: receiver user + system over that interval; B/prefix: RSS growth from before the session to after convergence / prefixes; \
         withdraw s: from `disable {STATIC}` on the sender until none was left; poll ms: one control-socket status request, median (max) during convergence; \
         idle poll ms and idle CPU %: 20 such requests, one per poll interval, after convergence, and the receiver's CPU meanwhile)",
        args.prefixes
    );

    if let Some(path) = &args.markdown {
        let mut md = format!(
            "### BGP convergence: {} IPv4 prefixes from BIRD, routerd vs BIRD\n\n",
            args.prefixes
        );
        for line in env.lines() {
            let (key, value) = line.split_once(':').unwrap_or((line.as_str(), ""));
            let _ = writeln!(md, "- {key}: {}", value.trim());
        }
        let _ = writeln!(
            md,
            "- {} interleaved rounds per receiver and table; polls every {} ms once Established\n",
            args.rounds, args.poll_ms
        );
        md.push_str("Medians:\n\n");
        md.push_str(&markdown_table(&COLUMNS, &rows));
        md.push('\n');
        for n in &notes {
            let _ = writeln!(md, "{n}  ");
        }
        md.push_str("\nPer round:\n\n");
        md.push_str(&markdown_table(&COLUMNS, &per_round));
        std::fs::write(path, md).with_context(|| format!("writing {}", path.display()))?;
        println!("markdown written to {}", path.display());
    }
    println!("total time {:.0} s", started.elapsed().as_secs_f64());
    drop(senders);
    drop(lab);
    Ok(())
}
