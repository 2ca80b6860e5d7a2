//! The packet rounds: load a ruleset into the router's namespace, send
//! one UDP flow through it flat out, count what the router forwarded.
//!
//! The flow (one source port, to the receiver's [`PATH_PORT`]) is never
//! answered, so conntrack keeps it unreplied: every datagram is in state
//! `new` and walks the forward hook's rules down to the one that accepts
//! it, yet only one conntrack entry is ever made (inserting an entry per
//! packet would measure conntrack, the same for every ruleset, and could
//! not be kept up for long: entries of unreplied flows live 30 s). The
//! rate is the router's packet count towards the receiver over the
//! sender's run time; the receiver's count only proves the flow was
//! accepted.

use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};

use crate::generate::PATH_PORT;
use crate::lab::PathLab;
use benches::{check_stop, wait_with_deadline};

/// Extra time a sender or receiver gets beyond its own limit before it is
/// killed.
const WATCHDOG_SLACK: Duration = Duration::from_secs(10);
/// How long the sender runs before each measurement, to resolve ARP and
/// create the flow's conntrack entry.
const WARM_UP_SECONDS: f64 = 0.3;

/// The rulesets packets are measured with, in the router's namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Config {
    /// `policies::compile`'s ruleset (verdict maps).
    Ours,
    /// One chain per zone pair, one nft rule per policy rule.
    Naive,
    /// The same, one nft rule per port and address.
    NaivePerPort,
    /// Only the connection-state rule: what conntrack costs, which every
    /// ruleset pays.
    CtOnly,
    /// No table at all, no conntrack: the baseline.
    Empty,
}

impl Config {
    /// In the order of the first round; later rounds rotate it.
    pub const ALL: [Config; 5] = [
        Config::Empty,
        Config::Ours,
        Config::Naive,
        Config::NaivePerPort,
        Config::CtOnly,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Config::Ours => "compiled (ours)",
            Config::Naive => "naive",
            Config::NaivePerPort => "naive, one rule per port",
            Config::CtOnly => "conntrack only",
            Config::Empty => "empty (no table)",
        }
    }

    /// Its script in the lab directory (JSON for ours, as `Nft::apply`
    /// sends it; nft text otherwise).
    pub fn file(self) -> &'static str {
        match self {
            Config::Ours => "ours.json",
            Config::Naive => "naive.nft",
            Config::NaivePerPort => "naive-per-port.nft",
            Config::CtOnly => "ct-only.nft",
            Config::Empty => "none.nft",
        }
    }
}

/// [`Config::CtOnly`]'s table.
pub const CT_ONLY: &str = "table inet router\ndelete table inet router\n\
     table inet router {\n\tchain forward {\n\t\ttype filter hook forward priority 0; policy accept;\n\
     \t\tct state vmap { established : accept, related : accept, invalid : drop }\n\t}\n}\n";
/// [`Config::Empty`]: the table removed.
pub const NONE: &str = "table inet router\ndelete table inet router\n";

/// Replaces the router's table with `config`'s, in one transaction.
pub fn load(lab: &PathLab, config: Config) -> Result<()> {
    let path = lab.dir().join(config.file());
    let path = path.to_string_lossy();
    if config == Config::Ours {
        lab.router.run("nft", &["-j", "-f", &path])?;
    } else {
        lab.router.run("nft", &["-f", &path])?;
    }
    Ok(())
}

/// One packet round.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    pub sent: u64,
    pub send_errors: u64,
    /// Packets the router sent towards the receiver.
    pub forwarded: u64,
    /// Measured datagrams the receiver got.
    pub delivered: u64,
    /// The sender's run time.
    pub seconds: f64,
}

impl Sample {
    pub fn pps(&self) -> f64 {
        self.forwarded as f64 / self.seconds.max(1e-9)
    }
}

/// Waits for `child` at most `limit`, killing it after that or on Ctrl-C;
/// returns its stdout.
pub fn finish(mut child: Child, what: &str, limit: Duration) -> Result<String> {
    let status = wait_with_deadline(&mut child, what, limit, Duration::from_millis(20))?;
    let mut out = String::new();
    if let Some(mut stdout) = child.stdout.take() {
        stdout.read_to_string(&mut out)?;
    }
    let mut err = String::new();
    if let Some(mut stderr) = child.stderr.take() {
        stderr.read_to_string(&mut err)?;
    }
    ensure!(status.success(), "{what} failed ({status}): {}", err.trim());
    Ok(out)
}

/// The numbers after `key` words in `line` ("sent 5 errors 0 ...").
fn field(line: &str, key: &str) -> Option<f64> {
    let mut words = line.split_whitespace();
    while let Some(word) = words.next() {
        if word == key {
            return words.next().and_then(|v| v.parse().ok());
        }
    }
    None
}

/// The sender and receiver (`udpflood`) on the lab's hosts.
pub struct Flood<'a> {
    pub lab: &'a PathLab,
    /// The `udpflood` binary.
    pub bin: PathBuf,
    /// Sender on CPU 0, receiver on CPU 1 (when there are two cores).
    pub pin: bool,
    pub seconds: f64,
    pub max_packets: u64,
}

impl Flood<'_> {
    /// `udpflood ARGS` in `host`, on `cpu` when pinning.
    fn command(&self, host: &e2e::Host, cpu: &str, args: &[String]) -> Command {
        let mut command = if self.pin {
            let mut c = host.command("taskset");
            c.args(["-c", cpu]).arg(&self.bin);
            c
        } else {
            host.command(&self.bin.to_string_lossy())
        };
        command
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        command
    }

    fn send(&self, seconds: f64, phase: u8) -> Result<(u64, u64, f64)> {
        let to = format!("{}:{PATH_PORT}", self.lab.receiver.v4);
        let args = [
            "send".to_string(),
            "--to".into(),
            to,
            "--seconds".into(),
            seconds.to_string(),
            "--max-packets".into(),
            self.max_packets.to_string(),
            "--phase".into(),
            phase.to_string(),
        ];
        let child = self
            .command(&self.lab.sender, "0", &args)
            .spawn()
            .context("starting the sender")?;
        let limit = Duration::from_secs_f64(seconds) + WATCHDOG_SLACK;
        let out = finish(child, "the sender", limit)?;
        let sent = field(&out, "sent").context("sender output")? as u64;
        let errors = field(&out, "errors").unwrap_or(0.0) as u64;
        let elapsed = field(&out, "elapsed_s").context("sender output")?;
        Ok((sent, errors, elapsed))
    }

    /// One round with whatever ruleset is loaded.
    pub fn round(&self) -> Result<Sample> {
        check_stop()?;
        let receiver_seconds = WARM_UP_SECONDS + self.seconds + 5.0;
        let args = [
            "recv".to_string(),
            "--bind".into(),
            format!("{}:{PATH_PORT}", self.lab.receiver.v4),
            "--seconds".into(),
            receiver_seconds.to_string(),
        ];
        let mut receiver = self
            .command(&self.lab.receiver, "1", &args)
            .spawn()
            .context("starting the receiver")?;
        let mut ready = String::new();
        if let Some(stdout) = receiver.stdout.as_mut() {
            BufReader::new(stdout).read_line(&mut ready)?;
        }
        if ready.trim() != "ready" {
            let _ = receiver.kill();
            let _ = receiver.wait();
            bail!("the receiver did not start");
        }
        self.send(WARM_UP_SECONDS, 0)?;
        let before = self.lab.forwarded()?;
        let (sent, send_errors, seconds) = self.send(self.seconds, 1)?;
        // Let the backlogs drain before counting.
        std::thread::sleep(Duration::from_millis(100));
        let after = self.lab.forwarded()?;
        let limit = Duration::from_secs_f64(receiver_seconds) + WATCHDOG_SLACK;
        let out = finish(receiver, "the receiver", limit)?;
        let delivered = field(&out, "received").context("receiver output")? as u64;
        Ok(Sample {
            sent,
            send_errors,
            forwarded: after.saturating_sub(before),
            delivered,
            seconds,
        })
    }
}
