//! routerd as a VRRP node of the lab: its config (the DNS service on its
//! own address and on the floating one, one VRRP instance with the DNS
//! probes as checks) and its state as `routerctl vrrp --json` reports it.
//! Shared by the VRRP suite and the failover benchmark.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use anyhow::{Result, bail};

use crate::{DnsHierarchy, Routerd, RouterdConfig};

/// The name the steady clients and the fast-path probe ask.
pub const PROBE_NAME: &str = "www.plain.lab";

/// A routerd node at `host` sharing `vip` (with its prefix length) as
/// VRID 51 with adverts every `advert_ms`; the probes check the cache
/// ([`PROBE_NAME`]) and recursion (`plain.lab`) every 100 ms.
pub fn routerd_node(
    dns: &DnsHierarchy,
    host: Ipv4Addr,
    vip: (IpAddr, u8),
    priority: u8,
    preempt: bool,
    advert_ms: u64,
) -> RouterdConfig {
    let (address, prefix_len) = vip;
    RouterdConfig::recursive(dns).with(|c| {
        // The node's own address first: the harness's readiness probe asks
        // it, and the VIP is only on the master.
        c.listen = vec![
            SocketAddr::new(IpAddr::V4(host), 53),
            SocketAddr::new(address, 53),
        ];
        c.rate_limit_qps = 0;
        c.extra_toml = format!(
            "[vrrp.checks]\n\
             interval = \"100ms\"\n\
             fall = 2\n\
             rise = 2\n\
             probe_timeout = \"300ms\"\n\
             fast_path_probe = \"{PROBE_NAME}\"\n\
             recursion_probe = \"plain.lab\"\n\
             \n\
             [[vrrp.instances]]\n\
             name = \"dns\"\n\
             interface = \"eth0\"\n\
             vrid = 51\n\
             priority = {priority}\n\
             advert_interval = \"{advert_ms}ms\"\n\
             preempt = {preempt}\n\
             addresses = [\"{address}/{prefix_len}\"]\n"
        );
    })
}

/// The state of the node's first instance ("master", "backup", ...).
pub fn vrrp_state(node: &Routerd) -> Result<String> {
    let out = node.routerctl(&["vrrp", "--json"])?;
    if !out.success {
        bail!("routerctl vrrp --json: {}{}", out.stdout, out.stderr);
    }
    let json = crate::json::parse(&out.stdout)?;
    Ok(json
        .get("instances.0.state")
        .and_then(|s| s.as_str())
        .unwrap_or("?")
        .to_string())
}

/// Waits until the node's instance is in `want`.
pub fn wait_for_vrrp_state(node: &Routerd, want: &str, within: Duration) -> Result<()> {
    let deadline = Instant::now() + within;
    loop {
        let now = vrrp_state(node)?;
        if now == want {
            return Ok(());
        }
        if Instant::now() >= deadline {
            bail!(
                "{} is {now}, not {want}, after {within:?}:\n{}",
                node.host.name,
                node.daemon.log_tail(30)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// What a steady client saw: per query, when it was sent (ms from the
/// start) and whether it was answered, as `e2e-probe udp-steady` prints.
pub fn parse_steady(log: &str) -> Vec<(u64, bool)> {
    log.lines()
        .filter_map(|line| {
            let (at, answered) = line.split_once(' ')?;
            Some((at.parse().ok()?, answered == "1"))
        })
        .collect()
}

/// Each run of unanswered queries: (when its first query was sent, ms
/// from the start; how long until the next answered one, or the end).
pub fn unanswered_runs(sent: &[(u64, bool)]) -> Vec<(u64, Duration)> {
    let mut runs = Vec::new();
    let mut first_lost: Option<u64> = None;
    for &(at, answered) in sent {
        match (answered, first_lost) {
            (false, None) => first_lost = Some(at),
            (true, Some(start)) => {
                runs.push((start, Duration::from_millis(at.saturating_sub(start))));
                first_lost = None;
            }
            _ => {}
        }
    }
    if let (Some(start), Some(last)) = (first_lost, sent.last()) {
        runs.push((start, Duration::from_millis(last.0.saturating_sub(start))));
    }
    runs
}

/// Unanswered queries, and the longest time from an unanswered query to
/// the next answered one (to the end, when none follows).
pub fn outage(sent: &[(u64, bool)]) -> (usize, Duration) {
    let lost = sent.iter().filter(|(_, answered)| !answered).count();
    let gap = unanswered_runs(sent)
        .into_iter()
        .map(|(_, length)| length)
        .max()
        .unwrap_or_default();
    (lost, gap)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_longest_unanswered_run_is_the_outage() {
        let sent = parse_steady("0 1\n5 1\n10 0\n15 0\n20 1\n25 0\n30 1\nnoise\n");
        assert_eq!(sent.len(), 7);
        assert_eq!(outage(&sent), (3, Duration::from_millis(10)));
        assert_eq!(
            outage(&[(0, true), (5, false), (40, false)]),
            (2, Duration::from_millis(35))
        );
        assert_eq!(outage(&[]), (0, Duration::ZERO));
    }
}
