//! A steady, bounded dnsperf load for tests that check that nothing is
//! lost while something changes underneath (reloads, list swaps).

use std::net::IpAddr;
use std::path::Path;
use std::process::Child;

use anyhow::{Context, Result};

use crate::Host;

/// Starts dnsperf on `host` against `server`: the queries of `data` at
/// `qps` for `seconds`, `max` queries at most, two threads. The caller
/// waits for it ([`Child::wait_with_output`]) and reads [`stat`]s.
pub fn steady_load(
    host: &Host,
    server: IpAddr,
    data: &Path,
    seconds: u32,
    qps: u32,
    max: u32,
) -> Result<Child> {
    host.command("dnsperf")
        .args(["-s", &server.to_string(), "-d"])
        .arg(data)
        .args(["-l", &seconds.to_string(), "-Q", &qps.to_string()])
        .args(["-n", &max.to_string(), "-t", "2"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .context("starting dnsperf")
}

/// The number after `label` (e.g. "Queries lost:") in dnsperf's statistics.
pub fn stat(text: &str, label: &str) -> u64 {
    text.lines()
        .find_map(|line| line.trim().strip_prefix(label))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no {label:?} in dnsperf output:\n{text}"))
}

/// Waits for a [`steady_load`] and checks that it sent a real load (more
/// than `min_sent` queries) and lost none while `what` happened; returns
/// dnsperf's report.
pub fn expect_nothing_lost(load: Child, min_sent: u64, what: &str) -> String {
    let out = match load.wait_with_output() {
        Ok(out) => out,
        Err(e) => panic!("waiting for dnsperf: {e}"),
    };
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{stdout}");
    let sent = stat(&stdout, "Queries sent:");
    let lost = stat(&stdout, "Queries lost:");
    assert!(sent > min_sent, "{stdout}");
    assert_eq!(lost, 0, "queries lost during {what}:\n{stdout}");
    stdout
}
