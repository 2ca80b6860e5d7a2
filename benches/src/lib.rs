//! What the benchmark drivers (`load`, `policy`, `blocklist`) share:
//! stopping cleanly on Ctrl-C, waiting for a child with a deadline, naming
//! the machine, the BGP benchmark's control-socket clients ([`bgp`]),
//! and for the DNS load benchmarks the dnsperf runs
//! ([`dnsperf`]), the cache-hot query set ([`names`]), dnsmasq's command
//! line ([`dnsmasq`]) and the tables ([`table`]).

pub mod bgp;
pub mod dnsmasq;
pub mod dnsperf;
pub mod names;
pub mod table;

use std::process::{Child, ExitStatus};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Result, ensure};

/// Set by SIGINT/SIGTERM: stop the current round, tear the lab down.
pub static STOP: AtomicBool = AtomicBool::new(false);

/// Watches for SIGINT and SIGTERM on a background thread, so that an
/// interrupted run still drops the lab (kills its daemons, removes its
/// namespaces) instead of leaving them behind.
pub fn watch_signals(program: &'static str) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            runtime.block_on(async {
                use tokio::signal::unix::{SignalKind, signal};
                let (Ok(mut int), Ok(mut term)) = (
                    signal(SignalKind::interrupt()),
                    signal(SignalKind::terminate()),
                ) else {
                    return;
                };
                tokio::select! {
                    _ = int.recv() => {}
                    _ = term.recv() => {}
                }
                eprintln!("{program}: interrupted; stopping the run");
                STOP.store(true, Ordering::SeqCst);
            });
        })?;
    Ok(())
}

/// An error once the run was interrupted.
pub fn check_stop() -> Result<()> {
    ensure!(!STOP.load(Ordering::SeqCst), "interrupted");
    Ok(())
}

/// The error [`wait_with_deadline`] returns for a child it had to kill
/// because it outlived its limit (not for Ctrl-C).
#[derive(Debug)]
pub struct Overran {
    pub what: String,
    pub limit: Duration,
}

impl std::fmt::Display for Overran {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ran over {:?} and was killed", self.what, self.limit)
    }
}

impl std::error::Error for Overran {}

/// Waits for `child` at most `limit`, polling every `poll`; kills it after
/// that ([`Overran`]) or on Ctrl-C.
pub fn wait_with_deadline(
    child: &mut Child,
    what: &str,
    limit: Duration,
    poll: Duration,
) -> Result<ExitStatus> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(status);
        }
        if Instant::now() > deadline || STOP.load(Ordering::SeqCst) {
            let _ = child.kill();
            let _ = child.wait();
            check_stop()?;
            return Err(Overran {
                what: what.to_string(),
                limit,
            }
            .into());
        }
        std::thread::sleep(poll);
    }
}

/// What the DNS benchmarks' lab needs (dnsmasq forwards to an Unbound, so
/// Unbound is needed even when it is not compared).
pub const LAB_TOOLS: [&str; 6] = [
    "nsd",
    "dig",
    "ldns-signzone",
    "unbound",
    "dnsperf",
    "routerd",
];

/// The exit status of a benchmark driver: 130 after Ctrl-C (the lab is
/// removed by then), 1 with the error printed on any other failure.
pub fn exit_code(program: &str, result: Result<()>) -> std::process::ExitCode {
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(_) if STOP.load(Ordering::SeqCst) => {
            eprintln!("{program}: interrupted; the lab is removed");
            std::process::ExitCode::from(130)
        }
        Err(e) => {
            eprintln!("{program}: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// The CPU model from /proc/cpuinfo.
pub fn cpu_model() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .and_then(|l| l.split_once(':'))
        .map_or("unknown", |(_, v)| v.trim())
        .to_string()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // reason: test code
mod tests {
    use super::*;

    #[test]
    fn a_child_that_outlives_its_limit_is_killed_as_overran() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let started = Instant::now();
        let error = wait_with_deadline(
            &mut child,
            "sleep",
            Duration::from_millis(200),
            Duration::from_millis(20),
        )
        .unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(10));
        let overran = error.downcast_ref::<Overran>().unwrap();
        assert_eq!(overran.what, "sleep");
        // Killed and reaped: nothing left to wait for.
        assert!(child.try_wait().unwrap().is_some());
    }

    #[test]
    fn a_child_within_its_limit_returns_its_status() {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let status = wait_with_deadline(
            &mut child,
            "true",
            Duration::from_secs(10),
            Duration::from_millis(10),
        )
        .unwrap();
        assert!(status.success());
    }
}
