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
