//! keepalived (Debian `keepalived`) as a VRRP version 3 peer of the lab: a
//! config writer, the daemon in a namespace with its own pid files, a
//! notify script that records every transition, and checks of who holds
//! the virtual address.
//!
//! ```text
//!   vrrp1 10.53.0.90  keepalived, vrid 51, priority 150  ┐ 10.53.0.250/24
//!   vrrp2 10.53.0.91  keepalived, vrid 51, priority 100  ┘ (the master's)
//! ```
//!
//! What keepalived needs, as found in the lab (keepalived 2.2.7):
//!
//! - `global_defs`: `vrrp_version 3` (the default is 2; IPv6 instances
//!   are always 3), `script_user root` plus `enable_script_security`
//!   (without them every start logs a warning and `keepalived -t` exits 6;
//!   with them a notify script under a directory a non-root user can write
//!   to is disabled, logging "Unsafe permissions found for script"; the
//!   lab's dir under the sticky /tmp passes), `vrrp_garp_master_delay 0`
//!   (no second burst of gratuitous ARPs 5 s after becoming master),
//!   `vrrp_lower_prio_no_advert` (a master answers a lower-priority advert
//!   with one of its own unless told not to, which RFC 5798 6.4.3 does not
//!   do). Not the top-level `instance NAME` (not a `global_defs`
//!   keyword): it makes keepalived create /run/keepalived/ on the machine
//!   and remove it on exit, even with explicit pid files.
//! - Not `vrrp_strict`: it implies `no_accept`, which keepalived enforces
//!   with nftables/iptables rules, and it refuses unicast peers, preempt
//!   delays and GARP repeats. Without it keepalived is in accept mode: the
//!   master answers on the virtual address.
//! - Command line: `--dont-fork --log-console --log-detail --no-syslog
//!   --vrrp --dont-respawn --use-file CONF --pid P --vrrp_pid P
//!   --checkers_pid P --bfd_pid P`, every file in the lab dir. Without
//!   `--no-syslog` keepalived also logs through /dev/log, or to
//!   /dev/console when there is no syslog daemon, i.e. outside the lab.
//!   With explicit pid files nothing is written to /run (checked with
//!   strace), so any number of keepalived processes run at once, one per
//!   namespace; started with `ip netns exec`, all netlink and sockets stay
//!   in the host's namespace (no `net_namespace`, which would make
//!   keepalived switch namespaces itself). The VRRP child, the parent and
//!   the notify scripts share the parent's process group.
//! - `keepalived -t` checks the config in the namespace (interface names
//!   included) and exits non-zero on any error or warning; otherwise
//!   keepalived replaces a bad value by its default and runs. It does not
//!   see runtime warnings such as "the first IPv6 VIP address should be
//!   link local" (RFC 5798 wants that; keepalived runs anyway).
//! - `notify SCRIPT` runs `SCRIPT INSTANCE <name> <STATE> <priority>` on
//!   every transition: `BACKUP` at start (`state BACKUP`), then `MASTER`,
//!   `FAULT`, and `STOP` on SIGTERM. Scripts run asynchronously, so two
//!   transitions a few milliseconds apart could be recorded out of order.
//! - SIGTERM: keepalived sends one advertisement with priority 0, removes
//!   the virtual addresses and exits in about 1 s; the backup took over
//!   after its skew time (0.127-0.131 s for priority 100, advert 0.2 s,
//!   skew 0.122 s). SIGKILL leaves the virtual address on the dead
//!   master's interface (two hosts then hold it); a keepalived started
//!   later removes it at startup ("removing VIPs") before entering BACKUP.
//!   The killed VRRP child stays a zombie until pid 1 reaps it, seconds
//!   on some machines, and keepalived refuses to start ("daemon is
//!   already running") while its pid file names a live or zombie pid:
//!   the harness uses new pid files for every start.
//! - Timing, advert 0.2 s, priorities 150/100: the 150 became master
//!   0.61 s after the 100 started (its own timer, 0.68 s, started first);
//!   the backup became master 0.70-0.71 s after the master was SIGKILLed
//!   in the test (Master_Down_Interval = 3 × 0.2 + (256 - 100) × 0.2 /
//!   256 = 0.72 s, less the time since the last advert, which the test
//!   sends about 20 ms after one; 0.63 s in a run by hand);
//!   a restarted 150 preempted 0.66 s after its start (it discards the
//!   lower-priority adverts and waits out its own Master_Down_Interval,
//!   0.68 s, counted from a moment during startup).
//! - IPv6: adverts go out from the interface's link-local address; while
//!   it is tentative (duplicate address detection, 1-2 s after the link
//!   came up) every send fails with "send advert error 22 (Invalid
//!   argument)" and the instance still becomes master. The harness waits
//!   for DAD before starting an IPv6 instance.
//!
//! On the wire (tcpdump in the namespace): IPv4 adverts go to 224.0.0.18
//! (MAC 01:00:5e:00:00:12) from the interface's primary address and real
//! MAC (no virtual MAC without `use_vmac`), TTL 255, TOS 0xc0, no DF, IP
//! ids counting from 1 per instance; IPv6 adverts go to ff02::12 from the
//! link-local address, hop limit 255, traffic class 0xc0, a flow label.
//! The VRRPv3 checksum covers the pseudo-header (RFC 5798 5.2.8), for
//! IPv4 too, with the real destination: 224.0.0.18 for multicast, the
//! peer's address for unicast (keepalived before 1.3.6 used the multicast
//! group there, see `old_unicast_checksum`).
//!
//! Golden vectors (IP packets without the Ethernet header, captured in
//! this lab with [`capture_adverts`], checksums recomputed by hand):
//!
//! ```text
//! multicast, 10.53.0.90 -> 224.0.0.18, vrid 51, prio 150, 20 cs, 10.53.0.250
//! (GOLDEN_ADVERT_V4; VRRP checksum 0x426a, 0x2d88 without pseudo-header):
//!   45c0 0020 0002 0000 ff70 d00a 0a35 005a e000 0012
//!   3133 9601 0014 426a 0a35 00fa
//! unicast, 10.53.0.90 -> 10.53.0.91, otherwise the same:
//!   45c0 0020 0002 0000 ff70 a58d 0a35 005a 0a35 005b
//!   3133 9601 0014 17ed 0a35 00fa
//! the same master's advert on SIGTERM, priority 0:
//!   45c0 0020 0004 0000 ff70 a58b 0a35 005a 0a35 005b
//!   3133 0001 0014 aded 0a35 00fa
//! the new master's reply, unicast 10.53.0.91 -> 10.53.0.90, priority 100:
//!   45c0 0020 0001 0000 ff70 a58e 0a35 005b 0a35 005a
//!   3133 6401 0014 49ed 0a35 00fa
//! IPv6, fe80::c4de:b0ff:fe5f:c60d -> ff02::12, vrid 51, prio 150, fd53::fa:
//!   6c04 4593 0018 70ff fe80 0000 0000 0000 c4de b0ff fe5f c60d
//!   ff02 0000 0000 0000 0000 0000 0000 0012
//!   3133 9601 0014 01ff fd53 0000 0000 0000 0000 0000 0000 00fa
//! ```
//!
//! As a frame, the multicast advert follows `0100 5e00 0012`, the
//! sender's MAC (random per lab) and `0800`.

use std::fmt::Write as _;
use std::net::IpAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};

use crate::Host;
use crate::process::Daemon;

/// Tools a keepalived test needs besides the lab's.
pub const KEEPALIVED_TOOLS: &[&str] = &["keepalived"];

/// The lab interface of every [`Host`] (see [`crate::netns`]).
pub const LAB_INTERFACE: &str = "eth0";

/// A VRRPv3 advert keepalived sent in the lab as an IP packet: master
/// 10.53.0.90 to 224.0.0.18, vrid 51, priority 150, interval 20 cs,
/// 10.53.0.250; IP id 2 (bytes 4-5) and IP header checksum (10-11) vary.
pub const GOLDEN_ADVERT_V4: [u8; 32] = [
    0x45, 0xc0, 0x00, 0x20, 0x00, 0x02, 0x00, 0x00, 0xff, 0x70, 0xd0, 0x0a, 0x0a, 0x35, 0x00, 0x5a,
    0xe0, 0x00, 0x00, 0x12, 0x31, 0x33, 0x96, 0x01, 0x00, 0x14, 0x42, 0x6a, 0x0a, 0x35, 0x00, 0xfa,
];

/// The VRRP instance name in the configs the harness writes.
pub const INSTANCE: &str = "lab";

/// How long keepalived gets to read its config and report its first
/// state.
const STARTUP: Duration = Duration::from_secs(10);

/// How long a SIGTERMed keepalived gets to send priority 0 and exit.
const SHUTDOWN: Duration = Duration::from_secs(5);

/// Numbers the runs, whose state file, notify script and pid files are
/// their own: a notify script of an earlier run on the same host (still
/// running after a kill) cannot write into the new state file, and a
/// killed VRRP child that is still a zombie (orphans are reaped by pid 1,
/// which can take seconds) does not make keepalived refuse to start with
/// "daemon is already running" because of its pid file.
static RUN_COUNTER: AtomicU32 = AtomicU32::new(0);

/// One VRRP instance on one host, and the global settings around it.
#[derive(Debug, Clone)]
pub struct KeepalivedConfig {
    /// `interface`: the host's lab interface, [`LAB_INTERFACE`].
    pub interface: String,
    /// `virtual_router_id`, 1-255.
    pub vrid: u8,
    /// `priority`, 1-255; 255 is the address owner, which starts as
    /// master (`state MASTER`) when it preempts.
    pub priority: u8,
    /// `advert_int`: 10 ms to 40.95 s in whole centiseconds (VRRPv3's
    /// field); keepalived takes fractions of a second with version 3.
    pub advert_interval: Duration,
    /// `preempt` (true) or `nopreempt` (false: a higher priority node
    /// that comes up stays backup while a master is there).
    pub preempt: bool,
    /// `preempt_delay`, 0 to 1000 s (0: none): how much longer than the
    /// Master_Down_Interval to wait before preempting, at startup or on
    /// seeing a lower priority master. Ignored with `nopreempt` and for
    /// an address owner (keepalived needs `state BACKUP` for it).
    pub preempt_delay: Duration,
    /// `virtual_ipaddress`: addresses with prefix length, all of one
    /// family, which is the instance's (IPv6 adverts go out from the
    /// link-local address to ff02::12).
    pub virtual_addresses: Vec<(IpAddr, u8)>,
    /// `unicast_src_ip`: the source of unicast adverts (default: the
    /// interface's primary address). Only used with `unicast_peers`.
    pub unicast_src: Option<IpAddr>,
    /// `unicast_peer {}`: send adverts to these addresses instead of the
    /// multicast group (empty: multicast).
    pub unicast_peers: Vec<IpAddr>,
    /// `vrrp_garp_master_delay`, seconds: when to send the second burst
    /// of gratuitous ARPs/NAs after becoming master (0: no second burst;
    /// keepalived's default is 5).
    pub garp_master_delay: u32,
    /// `vrrp_script` tracked by the instance (none: no check).
    pub track_script: Option<TrackScript>,
}

/// A `vrrp_script`: a command keepalived runs every `interval`; after
/// `fall` failures in a row the instance goes to FAULT (weight 0) or
/// lowers its priority by `weight`, after `rise` successes it recovers.
#[derive(Debug, Clone)]
pub struct TrackScript {
    /// The command line (absolute program path; keepalived splits words).
    pub command: String,
    /// Whole seconds, as keepalived counts them.
    pub interval_secs: u32,
    pub timeout_secs: u32,
    pub fall: u32,
    pub rise: u32,
    /// 0: FAULT on failure; negative: priority lowered by that much.
    pub weight: i32,
}

impl KeepalivedConfig {
    /// Virtual router `vrid` at `priority` on [`LAB_INTERFACE`], sharing
    /// `address/prefix_len` over multicast: preempting, no preempt delay,
    /// adverts every 1 s (RFC 5798's default).
    pub fn new(vrid: u8, priority: u8, address: IpAddr, prefix_len: u8) -> KeepalivedConfig {
        KeepalivedConfig {
            interface: LAB_INTERFACE.to_string(),
            vrid,
            priority,
            advert_interval: Duration::from_secs(1),
            preempt: true,
            preempt_delay: Duration::ZERO,
            virtual_addresses: vec![(address, prefix_len)],
            unicast_src: None,
            unicast_peers: Vec::new(),
            garp_master_delay: 0,
            track_script: None,
        }
    }

    /// Applies any change.
    pub fn with(mut self, change: impl FnOnce(&mut KeepalivedConfig)) -> Self {
        change(&mut self);
        self
    }

    /// True for an IPv6 instance (its virtual addresses are IPv6).
    pub fn is_ipv6(&self) -> bool {
        self.virtual_addresses
            .first()
            .is_some_and(|(addr, _)| addr.is_ipv6())
    }

    /// RFC 5798's Skew_Time for this priority and advert interval:
    /// `(256 - priority) * interval / 256`.
    pub fn skew_time(&self) -> Duration {
        self.advert_interval * (256 - u32::from(self.priority)) / 256
    }

    /// RFC 5798's Master_Down_Interval: `3 * interval + skew`, how long a
    /// backup waits after the last advert before it becomes master.
    pub fn master_down_interval(&self) -> Duration {
        self.advert_interval * 3 + self.skew_time()
    }

    /// Errors for values keepalived would reject or replace by a default.
    pub fn check(&self) -> Result<()> {
        if self.vrid == 0 {
            bail!("vrid must be 1-255");
        }
        if self.priority == 0 {
            bail!("priority must be 1-255 (0 is only sent, when stopping)");
        }
        let interval = self.advert_interval;
        if interval < Duration::from_millis(10)
            || interval > Duration::from_millis(40_950)
            || !interval.subsec_nanos().is_multiple_of(10_000_000)
        {
            bail!("advert interval {interval:?}: must be 10 ms to 40.95 s in whole centiseconds");
        }
        if self.preempt_delay > Duration::from_secs(1000) {
            bail!("preempt delay {:?}: at most 1000 s", self.preempt_delay);
        }
        let Some(&(first, _)) = self.virtual_addresses.first() else {
            bail!("no virtual address");
        };
        for &(addr, len) in &self.virtual_addresses {
            if addr.is_ipv6() != first.is_ipv6() {
                bail!("virtual addresses {first} and {addr} are of different families");
            }
            let max = if addr.is_ipv6() { 128 } else { 32 };
            if len > max {
                bail!("prefix length /{len} of {addr}");
            }
        }
        for addr in self.unicast_src.iter().chain(&self.unicast_peers) {
            if addr.is_ipv6() != first.is_ipv6() {
                bail!("unicast address {addr} is not of the instance's family");
            }
        }
        Ok(())
    }

    /// The keepalived.conf text: `router_id` (a name for logs), every
    /// transition reported to the script `notify`.
    pub fn to_conf(&self, router_id: &str, notify: &Path) -> Result<String> {
        self.check()?;
        let mut t = String::new();
        let _ = writeln!(t, "global_defs {{");
        let _ = writeln!(t, "    router_id {router_id}");
        let _ = writeln!(t, "    vrrp_version 3");
        let _ = writeln!(t, "    script_user root");
        let _ = writeln!(t, "    enable_script_security");
        let _ = writeln!(t, "    vrrp_garp_master_delay {}", self.garp_master_delay);
        let _ = writeln!(t, "    vrrp_lower_prio_no_advert");
        let _ = writeln!(t, "}}");
        if let Some(script) = &self.track_script {
            let _ = writeln!(t, "vrrp_script check {{");
            let _ = writeln!(t, "    script \"{}\"", script.command);
            let _ = writeln!(t, "    interval {}", script.interval_secs);
            let _ = writeln!(t, "    timeout {}", script.timeout_secs);
            let _ = writeln!(t, "    fall {}", script.fall);
            let _ = writeln!(t, "    rise {}", script.rise);
            if script.weight != 0 {
                let _ = writeln!(t, "    weight {}", script.weight);
            }
            let _ = writeln!(t, "}}");
        }
        let _ = writeln!(t, "vrrp_instance {INSTANCE} {{");
        // keepalived starts an instance in BACKUP unless told MASTER,
        // which only the address owner should be (RFC 5798 6.4.1), and
        // which `nopreempt` and `preempt_delay` do not allow.
        let state = if self.priority == 255 && self.preempt {
            "MASTER"
        } else {
            "BACKUP"
        };
        let _ = writeln!(t, "    state {state}");
        let _ = writeln!(t, "    interface {}", self.interface);
        let _ = writeln!(t, "    virtual_router_id {}", self.vrid);
        let _ = writeln!(t, "    priority {}", self.priority);
        let _ = writeln!(t, "    advert_int {}", centiseconds(self.advert_interval));
        if !self.preempt {
            let _ = writeln!(t, "    nopreempt");
        } else if !self.preempt_delay.is_zero() && state == "BACKUP" {
            let _ = writeln!(t, "    preempt_delay {}", millis(self.preempt_delay));
        }
        let _ = writeln!(t, "    notify \"{}\"", notify.display());
        if self.track_script.is_some() {
            let _ = writeln!(t, "    track_script {{");
            let _ = writeln!(t, "        check");
            let _ = writeln!(t, "    }}");
        }
        if !self.unicast_peers.is_empty() {
            if let Some(src) = self.unicast_src {
                let _ = writeln!(t, "    unicast_src_ip {src}");
            }
            let _ = writeln!(t, "    unicast_peer {{");
            for peer in &self.unicast_peers {
                let _ = writeln!(t, "        {peer}");
            }
            let _ = writeln!(t, "    }}");
        }
        let _ = writeln!(t, "    virtual_ipaddress {{");
        for (addr, len) in &self.virtual_addresses {
            let _ = writeln!(t, "        {addr}/{len}");
        }
        let _ = writeln!(t, "    }}");
        let _ = writeln!(t, "}}");
        Ok(t)
    }

    /// Starts keepalived on `host`; see [`Keepalived::start`].
    pub fn start(&self, host: &Host) -> Result<Keepalived> {
        Keepalived::start(host, self)
    }
}

/// `d` in seconds with two decimals (keepalived's `advert_int`).
fn centiseconds(d: Duration) -> String {
    format!("{}.{:02}", d.as_secs(), d.subsec_millis() / 10)
}

/// `d` in seconds with three decimals.
fn millis(d: Duration) -> String {
    format!("{}.{:03}", d.as_secs(), d.subsec_millis())
}

/// A state keepalived reports to its notify script.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// `BACKUP`: also the state it starts in.
    Backup,
    /// `MASTER`: it holds the virtual addresses.
    Master,
    /// `FAULT`: the interface (or a tracked object) is down.
    Fault,
    /// `STOP`: keepalived is shutting down (after SIGTERM).
    Stop,
    /// `DELETED`: the instance was removed by a reload.
    Deleted,
}

impl State {
    /// The word keepalived passes to the script.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Backup => "BACKUP",
            State::Master => "MASTER",
            State::Fault => "FAULT",
            State::Stop => "STOP",
            State::Deleted => "DELETED",
        }
    }

    /// Parses the script's word.
    pub fn parse(word: &str) -> Option<State> {
        Some(match word {
            "BACKUP" => State::Backup,
            "MASTER" => State::Master,
            "FAULT" => State::Fault,
            "STOP" => State::Stop,
            "DELETED" => State::Deleted,
            _ => return None,
        })
    }
}

impl std::fmt::Display for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One line of the state file: a transition as the notify script saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transition {
    /// When the script ran (wall clock, `date +%s.%N`).
    pub at: SystemTime,
    /// The state entered.
    pub state: State,
    /// The instance's priority at the time.
    pub priority: u8,
}

/// A running keepalived; killed on drop (log tail printed if the test
/// failed).
#[derive(Debug)]
pub struct Keepalived {
    /// The process guard.
    pub daemon: Daemon,
    /// Where it runs.
    pub host: Host,
    /// What it runs.
    pub config: KeepalivedConfig,
    /// Its config file.
    pub conf: PathBuf,
    /// The file its notify script appends transitions to (a new one per
    /// start).
    pub state_file: PathBuf,
    /// The VRRP child's pid file.
    vrrp_pid_file: PathBuf,
}

impl Keepalived {
    /// Writes `keepalived-<host>.conf` and, per run, a notify script,
    /// state file and pid files (`keepalived-<host>.<n>*`) to the lab dir,
    /// checks the config with `keepalived -t` in the namespace, starts
    /// keepalived in the foreground on `host` (log `keepalived-<host>.log`,
    /// appended across restarts) and waits for its first state (BACKUP, or
    /// MASTER for an address owner).
    pub fn start(host: &Host, config: &KeepalivedConfig) -> Result<Keepalived> {
        let dir = host.dir();
        let base = format!("keepalived-{}", host.name);
        let conf = dir.join(format!("{base}.conf"));
        // Files of one run: see RUN_COUNTER.
        let run = format!("{base}.{}", RUN_COUNTER.fetch_add(1, Ordering::SeqCst));
        let notify = dir.join(format!("{run}-notify.sh"));
        let state_file = dir.join(format!("{run}.state"));
        std::fs::write(&state_file, "")
            .with_context(|| format!("creating {}", state_file.display()))?;
        write_notify_script(&notify, &state_file)?;
        let text = config.to_conf(&host.ns, &notify)?;
        std::fs::write(&conf, &text).with_context(|| format!("writing {}", conf.display()))?;

        if config.is_ipv6() {
            wait_link_local(host, &config.interface, STARTUP)?;
        }
        let conf_arg = conf.to_string_lossy().into_owned();
        let test = host.exec("keepalived", &["-t", "-f", &conf_arg])?;
        if !test.status.success() {
            bail!(
                "keepalived -t rejected the config ({}):\n{}{}\nconfig:\n{text}",
                test.status,
                String::from_utf8_lossy(&test.stdout),
                String::from_utf8_lossy(&test.stderr)
            );
        }

        let pid = |what: &str| dir.join(format!("{run}{what}.pid"));
        let vrrp_pid_file = pid("-vrrp");
        let [main, vrrp, checkers, bfd] = [
            pid(""),
            vrrp_pid_file.clone(),
            pid("-checkers"),
            pid("-bfd"),
        ]
        .map(|p| p.to_string_lossy().into_owned());
        let mut cmd = host.command("keepalived");
        cmd.args([
            "--dont-fork",
            "--log-console",
            "--log-detail",
            "--no-syslog",
            "--vrrp",
            "--dont-respawn",
            "--use-file",
            &conf_arg,
            "--pid",
            &main,
            "--vrrp_pid",
            &vrrp,
            "--checkers_pid",
            &checkers,
            "--bfd_pid",
            &bfd,
        ]);
        // Would make keepalived talk to the test runner's systemd.
        cmd.env_remove("NOTIFY_SOCKET");
        let label = base.clone();
        let daemon = Daemon::spawn(&label, cmd, &dir.join(format!("{label}.log")))?;
        let mut keepalived = Keepalived {
            daemon,
            host: host.clone(),
            config: config.clone(),
            conf,
            state_file,
            vrrp_pid_file,
        };
        let started = crate::wait_until(STARTUP, "keepalived's first state", || {
            if !keepalived.daemon.is_running() {
                return Some(false);
            }
            keepalived.state().ok().flatten().map(|_| true)
        });
        let why = match started {
            Ok(true) => return Ok(keepalived),
            Ok(false) => "keepalived exited during startup".to_string(),
            Err(e) => e.to_string(),
        };
        let log = keepalived.daemon.log_tail(40);
        let hint = if log.contains("Unsafe permissions") {
            "\n(the notify script's directory is writable by non-root users: \
             keepalived's script security disabled it)"
        } else {
            ""
        };
        bail!("{why}{hint}\nconfig:\n{text}\nlog:\n{log}")
    }

    /// Every transition since this start, in the order recorded.
    pub fn transitions(&self) -> Result<Vec<Transition>> {
        let text = std::fs::read_to_string(&self.state_file)
            .with_context(|| format!("reading {}", self.state_file.display()))?;
        parse_transitions(&text)
    }

    /// The last state reported since this start (None before the first).
    pub fn state(&self) -> Result<Option<State>> {
        Ok(self.transitions()?.last().map(|t| t.state))
    }

    /// Waits until the last reported state is `state`; returns that
    /// transition. An error (with the transitions and the log tail) after
    /// `deadline`, or at once if keepalived exited.
    pub fn wait_for_state(&mut self, state: State, deadline: Duration) -> Result<Transition> {
        let mut exited = false;
        let found = crate::wait_until(deadline, &format!("keepalived to be {state}"), || {
            if let Some(last) = self.transitions().ok()?.last()
                && last.state == state
            {
                return Some(Some(*last));
            }
            if !self.daemon.is_running() {
                exited = true;
                return Some(None);
            }
            None
        });
        match found {
            Ok(Some(t)) => Ok(t),
            Ok(None) | Err(_) => {
                let why = if exited {
                    format!("keepalived exited before becoming {state}")
                } else {
                    format!("keepalived not {state} after {deadline:?}")
                };
                bail!(
                    "{why} on {}: transitions {:?}\nlog:\n{}",
                    self.host.name,
                    self.transitions().unwrap_or_default(),
                    self.daemon.log_tail(30)
                )
            }
        }
    }

    /// Whether the host's interface currently has `addr`.
    pub fn holds(&self, addr: IpAddr) -> Result<bool> {
        holds(&self.host, &self.config.interface, addr)
    }

    /// Polls every 10 ms until the host's interface has `addr` (or, with
    /// `present` false, no longer has it); returns how long that took.
    pub fn wait_holds(&self, addr: IpAddr, present: bool, deadline: Duration) -> Result<Duration> {
        wait_holds(&self.host, &self.config.interface, addr, present, deadline)
    }

    /// The pid of the VRRP child process, from its pid file.
    pub fn vrrp_pid(&self) -> Result<u32> {
        let path = &self.vrrp_pid_file;
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        text.trim()
            .parse()
            .with_context(|| format!("parsing {}: {text:?}", path.display()))
    }

    /// SIGKILL to keepalived's process group (parent, VRRP child, running
    /// scripts): a crash. No priority 0 is sent and the virtual addresses
    /// stay on the interface.
    pub fn kill(&mut self) {
        signal(&format!("-{}", self.daemon.pid()), "KILL");
        self.daemon.stop();
    }

    /// SIGTERM to keepalived (the parent, as its systemd unit does): it
    /// sends an advert with priority 0, removes the virtual addresses and
    /// exits. Waits up to 5 s, then kills what is left.
    pub fn stop(&mut self) -> Result<()> {
        signal(&self.daemon.pid().to_string(), "TERM");
        let exited = crate::wait_until(SHUTDOWN, "keepalived to exit", || {
            (!self.daemon.is_running()).then_some(())
        });
        self.daemon.stop();
        exited
    }
}

/// Sends `signal` to `target` (a pid, or `-pgid` for a group) with
/// kill(1) (libc::kill is unsafe).
fn signal(target: &str, signal: &str) {
    let _ = Command::new("kill")
        .args(["-s", signal, "--", target])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// Writes the notify script: one line `<unix time> <STATE> <priority>`
/// appended to `state_file` per call (a single short write, so lines of
/// scripts running at once do not mix).
fn write_notify_script(path: &Path, state_file: &Path) -> Result<()> {
    let script = format!(
        "#!/bin/sh\n\
         # keepalived notify: $1 INSTANCE|GROUP, $2 name, $3 state, $4 priority.\n\
         echo \"$(date +%s.%N) $3 $4\" >> {}\n",
        shell_quote(&state_file.to_string_lossy())
    );
    std::fs::write(path, script).with_context(|| format!("writing {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
        .with_context(|| format!("making {} executable", path.display()))
}

/// `s` in single quotes for sh.
fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// Parses the state file; a last line without its newline (being
/// written) is left out.
pub fn parse_transitions(text: &str) -> Result<Vec<Transition>> {
    let complete = match text.rfind('\n') {
        Some(end) => &text[..end],
        None => "",
    };
    complete
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| parse_transition(line).with_context(|| format!("state file line {line:?}")))
        .collect()
}

fn parse_transition(line: &str) -> Result<Transition> {
    let mut words = line.split_whitespace();
    let (Some(time), Some(state), Some(priority)) = (words.next(), words.next(), words.next())
    else {
        bail!("expected `<time> <STATE> <priority>`");
    };
    let (secs, nanos) = time.split_once('.').unwrap_or((time, "0"));
    let secs: u64 = secs.parse().context("seconds")?;
    let nanos: u32 = format!("{nanos:0<9}")[..9].parse().context("nanoseconds")?;
    Ok(Transition {
        at: UNIX_EPOCH + Duration::new(secs, nanos),
        state: State::parse(state).with_context(|| format!("unknown state {state}"))?,
        priority: priority.parse().context("priority")?,
    })
}

/// The addresses on `interface` in `host`'s namespace (`ip -o addr show
/// dev IF`), with prefix lengths.
pub fn addresses(host: &Host, interface: &str) -> Result<Vec<(IpAddr, u8)>> {
    let out = host.run("ip", &["-o", "addr", "show", "dev", interface])?;
    Ok(parse_addresses(&out))
}

/// Parses `ip -o addr show`: the word after each `inet`/`inet6`.
pub fn parse_addresses(text: &str) -> Vec<(IpAddr, u8)> {
    let mut found = Vec::new();
    for line in text.lines() {
        let mut words = line.split_whitespace();
        while let Some(word) = words.next() {
            if word != "inet" && word != "inet6" {
                continue;
            }
            let Some((addr, len)) = words.next().and_then(|w| w.split_once('/')) else {
                continue;
            };
            if let (Ok(addr), Ok(len)) = (addr.parse(), len.parse()) {
                found.push((addr, len));
            }
        }
    }
    found
}

/// Waits until `interface` in `host`'s namespace has a link-local IPv6
/// address that is no longer tentative: IPv6 adverts go out from it, and
/// until duplicate address detection is done (1-2 s after the link came
/// up) every send fails with EINVAL ("send advert error 22").
pub fn wait_link_local(host: &Host, interface: &str, deadline: Duration) -> Result<()> {
    let mut last = String::new();
    crate::wait_until(deadline, "a usable IPv6 link-local address", || {
        last = host
            .run(
                "ip",
                &[
                    "-6", "-o", "addr", "show", "dev", interface, "scope", "link",
                ],
            )
            .ok()?;
        let ready = !last.trim().is_empty() && !last.contains("tentative");
        ready.then_some(())
    })
    .with_context(|| format!("on {} {interface}: {last}", host.name))
}

/// Tools [`capture_adverts`] needs.
pub const CAPTURE_TOOLS: &[&str] = &["tcpdump", "timeout"];

/// Captures `count` VRRP packets (IP protocol 112) seen on `interface` in
/// `host`'s namespace with tcpdump, as IP packets (no link-layer header);
/// an error if fewer arrive within `deadline` (whole seconds, at least 1).
pub fn capture_adverts(
    host: &Host,
    interface: &str,
    count: usize,
    deadline: Duration,
) -> Result<Vec<Vec<u8>>> {
    let tcpdump = crate::require::tool("tcpdump")?;
    let secs = deadline.as_secs().max(1).to_string();
    let count_arg = count.to_string();
    let out = host.exec(
        "timeout",
        &[
            &secs,
            &tcpdump.to_string_lossy(),
            "-i",
            interface,
            "-nn",
            "-x",
            "-c",
            &count_arg,
            "proto",
            "112",
        ],
    )?;
    let packets = parse_tcpdump_hex(&String::from_utf8_lossy(&out.stdout));
    if packets.len() < count {
        bail!(
            "captured {} of {count} VRRP packets on {} {interface} in {secs} s: {}",
            packets.len(),
            host.name,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(packets)
}

/// Parses `tcpdump -x` output: each packet's summary line followed by
/// `\t0x0000:  4500 0020 ...` lines.
pub fn parse_tcpdump_hex(text: &str) -> Vec<Vec<u8>> {
    let mut packets: Vec<Vec<u8>> = Vec::new();
    for line in text.lines() {
        let Some(rest) = line.trim_start().strip_prefix("0x") else {
            if !line.trim().is_empty() {
                packets.push(Vec::new());
            }
            continue;
        };
        let Some((offset, hex)) = rest.split_once(':') else {
            continue;
        };
        if offset == "0000" && packets.last().is_none_or(|p| !p.is_empty()) {
            packets.push(Vec::new());
        }
        let Some(packet) = packets.last_mut() else {
            continue;
        };
        // Groups of 4 hex digits (the last may be 2), then maybe ASCII
        // (-X), which is separated by two blanks.
        let hex = hex.trim_start().split("  ").next().unwrap_or_default();
        for group in hex.split_whitespace() {
            for i in (0..group.len()).step_by(2) {
                if let Some(byte) = group
                    .get(i..i + 2)
                    .and_then(|b| u8::from_str_radix(b, 16).ok())
                {
                    packet.push(byte);
                }
            }
        }
    }
    packets.retain(|p| !p.is_empty());
    packets
}

/// Whether `interface` in `host`'s namespace has `addr` (any prefix
/// length).
pub fn holds(host: &Host, interface: &str, addr: IpAddr) -> Result<bool> {
    Ok(addresses(host, interface)?.iter().any(|(a, _)| *a == addr))
}

/// Polls [`holds`] every 10 ms until it is `present`; returns how long
/// that took, or an error after `deadline`.
pub fn wait_holds(
    host: &Host,
    interface: &str,
    addr: IpAddr,
    present: bool,
    deadline: Duration,
) -> Result<Duration> {
    let start = Instant::now();
    loop {
        if holds(host, interface, addr)? == present {
            return Ok(start.elapsed());
        }
        if start.elapsed() >= deadline {
            let verb = if present { "get" } else { "lose" };
            bail!(
                "{} did not {verb} {addr} within {deadline:?}: {:?}",
                host.name,
                addresses(host, interface)?
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // test code
mod tests {
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
    use std::path::Path;
    use std::time::{Duration, UNIX_EPOCH};

    use super::{
        GOLDEN_ADVERT_V4, KeepalivedConfig, State, parse_addresses, parse_tcpdump_hex,
        parse_transitions,
    };

    fn vip() -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(10, 53, 0, 250))
    }

    #[test]
    fn writes_a_vrrpv3_instance() {
        let config = KeepalivedConfig::new(51, 150, vip(), 24).with(|c| {
            c.advert_interval = Duration::from_millis(200);
            c.preempt_delay = Duration::from_millis(1500);
            c.unicast_src = Some(IpAddr::V4(Ipv4Addr::new(10, 53, 0, 90)));
            c.unicast_peers = vec![IpAddr::V4(Ipv4Addr::new(10, 53, 0, 91))];
        });
        let conf = config.to_conf("ns1", Path::new("/lab/n.sh")).unwrap();
        for line in [
            "    vrrp_version 3\n",
            "    router_id ns1\n",
            "    state BACKUP\n",
            "    interface eth0\n",
            "    virtual_router_id 51\n",
            "    priority 150\n",
            "    advert_int 0.20\n",
            "    preempt_delay 1.500\n",
            "    notify \"/lab/n.sh\"\n",
            "    unicast_src_ip 10.53.0.90\n",
            "        10.53.0.91\n",
            "        10.53.0.250/24\n",
        ] {
            assert!(conf.contains(line), "{line:?} missing in\n{conf}");
        }
        assert!(!conf.contains("vrrp_strict"));
        assert!(!conf.contains("nopreempt"));
    }

    #[test]
    fn nopreempt_and_owner() {
        let conf = KeepalivedConfig::new(1, 200, vip(), 24)
            .with(|c| c.preempt = false)
            .to_conf("x", Path::new("/n"))
            .unwrap();
        assert!(conf.contains("    nopreempt\n") && conf.contains("state BACKUP"));
        assert!(!conf.contains("unicast_peer"));
        let owner = KeepalivedConfig::new(1, 255, vip(), 24)
            .to_conf("x", Path::new("/n"))
            .unwrap();
        assert!(owner.contains("state MASTER"), "{owner}");
    }

    #[test]
    fn rejects_what_keepalived_would_replace() {
        let base = KeepalivedConfig::new(51, 100, vip(), 24);
        let bad = [
            base.clone().with(|c| c.vrid = 0),
            base.clone().with(|c| c.priority = 0),
            base.clone()
                .with(|c| c.advert_interval = Duration::from_millis(5)),
            base.clone()
                .with(|c| c.advert_interval = Duration::from_millis(205)),
            base.clone()
                .with(|c| c.advert_interval = Duration::from_secs(41)),
            base.clone().with(|c| c.virtual_addresses.clear()),
            base.clone().with(|c| {
                c.virtual_addresses
                    .push((IpAddr::V6(Ipv6Addr::LOCALHOST), 128))
            }),
            base.clone().with(|c| c.virtual_addresses[0].1 = 33),
        ];
        for config in bad {
            assert!(config.check().is_err(), "{config:?}");
        }
        assert!(base.check().is_ok());
    }

    #[test]
    fn rfc_timers() {
        let config = KeepalivedConfig::new(51, 100, vip(), 24)
            .with(|c| c.advert_interval = Duration::from_millis(200));
        assert_eq!(config.skew_time(), Duration::from_micros(121_875));
        assert_eq!(
            config.master_down_interval(),
            Duration::from_micros(721_875)
        );
    }

    #[test]
    fn parses_the_state_file() {
        let text = "1796512745.836757218 BACKUP 150\n1796512746.52 MASTER 150\n17965127";
        let t = parse_transitions(text).unwrap();
        assert_eq!(t.len(), 2);
        assert_eq!(t[0].state, State::Backup);
        assert_eq!(
            t[1].at,
            UNIX_EPOCH + Duration::new(1_796_512_746, 520_000_000)
        );
        assert_eq!(t[1].state, State::Master);
        assert_eq!(t[1].priority, 150);
        assert!(parse_transitions("1 SLEEPING 1\n").is_err());
        assert!(parse_transitions("").unwrap().is_empty());
    }

    #[test]
    fn parses_tcpdump_hex() {
        let text = "23:19:06.516915 IP 10.53.0.90 > 224.0.0.18: VRRPv3, Advertisement, vrid 51, prio 150, intvl 20cs, length 12\n\
                    \t0x0000:  45c0 0020 0002 0000 ff70 d00a 0a35 005a\n\
                    \t0x0010:  e000 0012 3133 9601 0014 426a 0a35 00fa\n\
                    23:19:06.717604 IP 10.53.0.90 > 224.0.0.18: VRRPv3, Advertisement\n\
                    \t0x0000:  45c0 0020 0003 0000 ff70 d009 0a35 005a\n\
                    \t0x0010:  e000 0012 3133 9601 0014 426a 0a35 00\n";
        let packets = parse_tcpdump_hex(text);
        assert_eq!(packets.len(), 2);
        assert_eq!(packets[0], GOLDEN_ADVERT_V4);
        assert_eq!(packets[1].len(), 31);
        assert_eq!(packets[1][5], 3);
    }

    #[test]
    fn parses_ip_addr_show() {
        let text = "2: eth0    inet 10.53.0.90/16 scope global eth0\\       valid_lft forever preferred_lft forever\n\
                    2: eth0    inet 10.53.0.250/24 scope global eth0\\       valid_lft forever preferred_lft forever\n\
                    2: eth0    inet6 fd53::fa/64 scope global nodad \\       valid_lft forever preferred_lft forever\n";
        let found = parse_addresses(text);
        assert_eq!(found.len(), 3);
        assert_eq!(found[1], (vip(), 24));
        assert_eq!(found[2].0, "fd53::fa".parse::<IpAddr>().unwrap());
    }
}
