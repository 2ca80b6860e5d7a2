//! Guards for daemons the lab starts, and polling with deadlines.

use std::fs::OpenOptions;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// How many log lines to show when a test fails, by default.
const TAIL_LINES: usize = 40;

/// A spawned daemon: output goes to a log file, and the whole process group
/// is killed when the guard is dropped (NSD forks helpers, so killing the
/// main pid alone could leave children behind).
///
/// When the guard is dropped during a panic (a failing test), the tail of
/// the log is printed, which is usually all one needs to debug a CI run.
#[derive(Debug)]
pub struct Daemon {
    label: String,
    child: Child,
    log: PathBuf,
    reaped: bool,
    tail_lines: usize,
}

impl Daemon {
    /// Spawns `cmd` in its own process group, appending stdout and stderr
    /// to `log` (appending keeps the history across restarts).
    pub fn spawn(label: &str, mut cmd: Command, log: &Path) -> Result<Daemon> {
        let out = OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .with_context(|| format!("opening log {}", log.display()))?;
        let err = out.try_clone()?;
        cmd.stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            .process_group(0);
        let child = cmd
            .spawn()
            .with_context(|| format!("spawning {label}: {cmd:?}"))?;
        Ok(Daemon {
            label: label.to_string(),
            child,
            log: log.to_path_buf(),
            reaped: false,
            tail_lines: TAIL_LINES,
        })
    }

    /// How many log lines to print if the test fails (0: none), for
    /// daemons whose logs are rarely the interesting ones.
    pub fn set_tail_lines(&mut self, lines: usize) {
        self.tail_lines = lines;
    }

    /// The daemon's pid, which is also its process group id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Where its output goes.
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// The whole log so far (empty if unreadable).
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The last `lines` lines of the log.
    pub fn log_tail(&self, lines: usize) -> String {
        tail(&self.log(), lines)
    }

    /// True while the process has not exited.
    pub fn is_running(&mut self) -> bool {
        !self.reaped && matches!(self.child.try_wait(), Ok(None))
    }

    /// An error carrying the log tail if the daemon has exited.
    pub fn check_running(&mut self) -> Result<()> {
        if self.is_running() {
            return Ok(());
        }
        let status = self.child.try_wait().ok().flatten();
        bail!(
            "{} exited ({status:?}); log tail:\n{}",
            self.label,
            self.log_tail(TAIL_LINES)
        )
    }

    /// SIGTERM to the group, up to 2 s grace, then SIGKILL; reaps the child.
    pub fn stop(&mut self) {
        if self.reaped {
            return;
        }
        signal_group(self.pid(), "TERM");
        let deadline = Instant::now() + Duration::from_secs(2);
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        // Also catches forked helpers that outlived the main process.
        signal_group(self.pid(), "KILL");
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.reaped = true;
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if std::thread::panicking() && self.tail_lines > 0 {
            eprintln!(
                "----- {} log ({}), last {} lines -----\n{}\n----- end of {} log -----",
                self.label,
                self.log.display(),
                self.tail_lines,
                self.log_tail(self.tail_lines),
                self.label
            );
        }
        self.stop();
    }
}

/// Sends a signal to a process group with kill(1) (libc::kill is unsafe).
fn signal_group(pgid: u32, signal: &str) {
    let _ = Command::new("kill")
        .args(["-s", signal, "--", &format!("-{pgid}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// The last `lines` lines of `text`.
pub fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Polls `probe` every 50 ms until it returns `Some`, or fails after
/// `deadline` with `what` in the message.
pub fn wait_until<T>(
    deadline: Duration,
    what: &str,
    mut probe: impl FnMut() -> Option<T>,
) -> Result<T> {
    let end = Instant::now() + deadline;
    loop {
        if let Some(v) = probe() {
            return Ok(v);
        }
        if Instant::now() >= end {
            bail!("timed out after {deadline:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Transport for [`wait_for_port`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proto {
    /// A listening TCP socket.
    Tcp,
    /// A bound UDP socket.
    Udp,
}

/// Waits until something in `host`'s namespace listens on `port` (checked
/// with `ss`, so it works for any protocol and needs no client).
pub fn wait_for_port(
    host: &crate::Host,
    proto: Proto,
    port: u16,
    deadline: Duration,
) -> Result<()> {
    let flag = match proto {
        Proto::Tcp => "-Hltn",
        Proto::Udp => "-Hlun",
    };
    let filter = format!("sport = :{port}");
    wait_until(
        deadline,
        &format!("{proto:?} port {port} in {}", host.ns),
        || {
            let out = host.exec("ss", &[flag, &filter]).ok()?;
            (!String::from_utf8_lossy(&out.stdout).trim().is_empty()).then_some(())
        },
    )
}

/// CPU time (user + system) a process has consumed so far, all its threads
/// included (also threads that have exited), from `/proc/<pid>/stat`.
///
/// The kernel counts in clock ticks ([`clock_ticks_per_second`], normally
/// 100 Hz), so differences are exact to about 10 ms per reading.
pub fn cpu_time(pid: u32) -> Result<Duration> {
    let (user, system) = cpu_times(pid)?;
    Ok(user + system)
}

/// Like [`cpu_time`], split into (user, system) time.
pub fn cpu_times(pid: u32) -> Result<(Duration, Duration)> {
    let path = format!("/proc/{pid}/stat");
    let stat = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    let (user, system) = parse_stat_cpu_ticks(&stat).with_context(|| format!("parsing {path}"))?;
    let hz = u128::from(clock_ticks_per_second());
    let duration = |ticks: u64| {
        let nanos = u128::from(ticks) * 1_000_000_000 / hz;
        Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
    };
    Ok((duration(user), duration(system)))
}

/// Like [`cpu_times`], for `pid` and every live process descended from it:
/// servers that fork their workers (NSD) count whole.
pub fn tree_cpu_times(pid: u32) -> Result<(Duration, Duration)> {
    let (mut user, mut system) = cpu_times(pid)?;
    for child in descendants(pid) {
        // A child that exits between the listing and the read is gone
        // with its time, as it would be from any reading.
        if let Ok((u, s)) = cpu_times(child) {
            user += u;
            system += s;
        }
    }
    Ok((user, system))
}

/// Live processes descended from `pid`, from each process's parent in
/// `/proc/<pid>/stat`.
fn descendants(pid: u32) -> Vec<u32> {
    let mut parents: Vec<(u32, u32)> = Vec::new();
    if let Ok(entries) = std::fs::read_dir("/proc") {
        for entry in entries.flatten() {
            let Some(child) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<u32>().ok())
            else {
                continue;
            };
            let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
            if let Some(parent) = parse_stat_parent(&stat) {
                parents.push((child, parent));
            }
        }
    }
    let mut found = vec![pid];
    let mut i = 0;
    while let Some(&ancestor) = found.get(i) {
        found.extend(
            parents
                .iter()
                .filter(|(_, parent)| *parent == ancestor)
                .map(|(child, _)| *child),
        );
        i += 1;
    }
    found.split_off(1)
}

/// The parent pid (field 4) of a `/proc/<pid>/stat` line.
fn parse_stat_parent(stat: &str) -> Option<u32> {
    stat_fields_from_state(stat)?.nth(1)?.parse().ok()
}

/// The fields of a `/proc/<pid>/stat` line from field 3 (state) on. The
/// command name (field 2) may contain spaces and parentheses, so fields
/// are counted from the last `)`.
fn stat_fields_from_state(stat: &str) -> Option<std::str::SplitWhitespace<'_>> {
    let (_, rest) = stat.rsplit_once(')')?;
    Some(rest.split_whitespace())
}

/// `(utime, stime)` (fields 14 and 15) of a `/proc/<pid>/stat` line, in
/// clock ticks.
pub fn parse_stat_cpu_ticks(stat: &str) -> Option<(u64, u64)> {
    // Counted from field 3 (state): utime is field 14, i.e. index 11.
    let mut fields = stat_fields_from_state(stat)?.skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some((utime, stime))
}

/// The kernel's USER_HZ (`getconf CLK_TCK`), 100 when it cannot be asked.
pub fn clock_ticks_per_second() -> u64 {
    static HZ: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *HZ.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .stderr(Stdio::null())
            .output()
            .ok()
            .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
            .filter(|hz| *hz > 0)
            .unwrap_or(100)
    })
}

/// A binary cargo built beside the test: `$env_var` when set, else `name`
/// in the test binary's directory or the one above (tests run from
/// target/<profile>/deps/, bins land in target/<profile>/). `build` is the
/// command that builds it, for the error.
pub fn cargo_binary(name: &str, env_var: &str, build: &str) -> Result<PathBuf> {
    if let Some(path) = std::env::var_os(env_var) {
        let path = PathBuf::from(path);
        if !path.is_file() {
            bail!("{env_var}={} does not exist", path.display());
        }
        return Ok(path);
    }
    let exe = std::env::current_exe().context("locating the test binary")?;
    for dir in exe.ancestors().skip(1).take(2) {
        let candidate = dir.join(name);
        if candidate.is_file() {
            return Ok(candidate);
        }
    }
    bail!(
        "no {name} next to {}: run `{build}` or set {env_var}",
        exe.display()
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // test code
mod tests {
    #[test]
    fn parses_stat_cpu_ticks() {
        let line = "4242 (my (odd) daemon) S 1 4242 4242 0 -1 4194560 500 0 0 0 \
                    1234 567 0 0 20 0 3 0 100 0 0";
        assert_eq!(super::parse_stat_cpu_ticks(line), Some((1234, 567)));
        assert_eq!(super::parse_stat_cpu_ticks("garbage"), None);
        assert_eq!(super::parse_stat_parent(line), Some(1));
    }

    #[test]
    fn a_process_tree_counts_its_children() {
        // A child that burns CPU for a moment, then waits to be read.
        let mut child = std::process::Command::new("sh")
            .args([
                "-c",
                "i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done; sleep 5",
            ])
            .spawn()
            .unwrap();
        let me = std::process::id();
        std::thread::sleep(std::time::Duration::from_millis(1500));
        assert!(super::descendants(me).contains(&child.id()));
        // Parts first, then the tree: every reading only grows.
        let (child_user, child_system) = super::cpu_times(child.id()).unwrap();
        let (own_user, own_system) = super::cpu_times(me).unwrap();
        let (tree_user, tree_system) = super::tree_cpu_times(me).unwrap();
        let _ = child.kill();
        let _ = child.wait();
        assert!(child_user + child_system > std::time::Duration::ZERO);
        assert!(tree_user + tree_system >= own_user + own_system + child_user + child_system);
    }

    #[test]
    fn own_cpu_time_is_readable() {
        let t = super::cpu_time(std::process::id()).unwrap();
        assert!(t < std::time::Duration::from_secs(3600));
    }
}
