//! The appliance's own health, as VRRP sees it:
//! - DNS probes through the fast path and through recursion, asked of
//!   routerd's own resolver over UDP;
//! - track scripts (keepalived's `vrrp_script`), exit status 0 passing;
//! - WireGuard peers gone stale and BGP sessions down, which the daemon
//!   reports from its own status.
//!
//! Probes and scripts each keep keepalived-style fall and rise counts; the
//! union of what fails goes to every instance through a watch channel.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::Duration;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{Name, RecordType};

use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tracing::{info, warn};

use super::settings::{ChecksConfig, ScriptCheck};
use crate::wireguard::resolve::ask;

/// The failing checks, by name; empty when all pass.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Health {
    pub failing: Vec<String>,
}

/// Fall/rise state of one check.
#[derive(Debug)]
struct Hysteresis {
    passing: bool,
    streak: u32,
}

impl Hysteresis {
    fn new() -> Hysteresis {
        Hysteresis {
            passing: true,
            streak: 0,
        }
    }

    /// Feeds one result; returns whether the verdict flipped.
    fn observe(&mut self, ok: bool, fall: u32, rise: u32) -> bool {
        if ok == self.passing {
            self.streak = 0;
            return false;
        }
        self.streak += 1;
        let needed = if self.passing { fall } else { rise };
        if self.streak >= needed {
            self.passing = ok;
            self.streak = 0;
            return true;
        }
        false
    }
}

/// A verdict flip: the check's name and whether it passes now.
type Flip = (String, bool);

/// Runs every check until the health's receivers are gone. `appliance`
/// carries the daemon's own findings (stale tunnels, BGP sessions down).
pub async fn run(
    config: ChecksConfig,
    resolver: Option<SocketAddr>,
    mut appliance: watch::Receiver<Vec<String>>,
    health: watch::Sender<Health>,
) {
    let (flips, mut flipped) = mpsc::channel::<Flip>(64);
    let mut checks = JoinSet::new();
    if let Some(resolver) = resolver {
        if let Some(name) = config.fast_path_probe.clone() {
            checks.spawn(dns_check(
                "dns fast path",
                name,
                false,
                resolver,
                config.clone(),
                flips.clone(),
            ));
        }
        if let Some(zone) = config.recursion_probe.clone() {
            checks.spawn(dns_check(
                "dns recursion",
                zone,
                true,
                resolver,
                config.clone(),
                flips.clone(),
            ));
        }
    }
    for script in &config.scripts {
        checks.spawn(script_check(script.clone(), flips.clone()));
    }
    drop(flips);
    let mut failing: BTreeSet<String> = BTreeSet::new();
    let mut reported: Vec<String> = Vec::new();
    let mut appliance_open = true;
    loop {
        tokio::select! {
            () = health.closed() => return,
            Some((name, passing)) = flipped.recv() => {
                if passing {
                    failing.remove(&name);
                } else {
                    failing.insert(name);
                }
            }
            changed = appliance.changed(), if appliance_open => {
                if changed.is_err() {
                    appliance_open = false;
                }
            }
        }
        let mut now: Vec<String> = failing.iter().cloned().collect();
        now.extend(appliance.borrow().iter().cloned());
        if now != reported {
            reported.clone_from(&now);
            health.send_replace(Health { failing: now });
        }
    }
}

async fn dns_check(
    check: &'static str,
    name: String,
    fresh_label: bool,
    resolver: SocketAddr,
    config: ChecksConfig,
    flips: mpsc::Sender<Flip>,
) {
    let mut ticker = tokio::time::interval(config.interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut state = Hysteresis::new();
    loop {
        ticker.tick().await;
        let asked = if fresh_label {
            format!("probe-{:08x}.{name}", rand::random::<u32>())
        } else {
            name.clone()
        };
        let timeout = if fresh_label {
            config.probe_timeout
        } else {
            config.fast_path_timeout
        };
        let ok = probe(resolver, &asked, timeout).await;
        if state.observe(ok, config.fall, config.rise) {
            if state.passing {
                info!(check, "health check passes again");
            } else {
                warn!(check, resolver = %resolver, "health check failed");
            }
            if flips.send((check.to_owned(), state.passing)).await.is_err() {
                return;
            }
        }
    }
}

async fn script_check(script: ScriptCheck, flips: mpsc::Sender<Flip>) {
    let mut ticker = tokio::time::interval(script.interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut state = Hysteresis::new();
    let check = format!("script {}", script.name);
    loop {
        ticker.tick().await;
        let ok = run_script(&script).await;
        if state.observe(ok, script.fall, script.rise) {
            if state.passing {
                info!(check = %check, "health check passes again");
            } else {
                warn!(check = %check, command = %script.command.display(), "health check failed");
            }
            if flips.send((check.clone(), state.passing)).await.is_err() {
                return;
            }
        }
    }
}

/// One run: true on exit status 0 within the timeout.
async fn run_script(script: &ScriptCheck) -> bool {
    let mut command = tokio::process::Command::new(&script.command);
    command
        .args(&script.args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true);
    let Ok(mut child) = command.spawn() else {
        return false;
    };
    matches!(
        tokio::time::timeout(script.timeout, child.wait()).await,
        Ok(Ok(status)) if status.success()
    )
}

/// What VRRP's checks take from the daemon's own status: WireGuard peers
/// gone stale and BGP sessions not Established, when asked for.
pub fn appliance_findings(
    checks: &ChecksConfig,
    wireguard: &crate::wireguard::status::WireguardStatus,
    bgp: Option<&crate::bgp::status::BgpStatus>,
) -> Vec<String> {
    let mut findings = Vec::new();
    if checks.wireguard {
        for tunnel in &wireguard.tunnels {
            for peer in &tunnel.peers {
                if peer.verdict == crate::wireguard::health::Verdict::Stale {
                    findings.push(format!(
                        "wireguard {} peer {} stale",
                        tunnel.interface, peer.name
                    ));
                }
            }
        }
    }
    if checks.bgp
        && let Some(bgp) = bgp
    {
        for peer in &bgp.peers {
            if peer.state != "Established" {
                findings.push(format!("bgp peer {} {}", peer.name, peer.state));
            }
        }
    }
    findings
}

/// One query for `name`/A; true when an answer with NOERROR or NXDOMAIN
/// comes back in time (SERVFAIL, REFUSED or silence fail).
async fn probe(resolver: SocketAddr, name: &str, timeout: Duration) -> bool {
    let Ok(name) = Name::from_ascii(format!("{name}.")) else {
        return false;
    };
    matches!(
        ask(resolver, &name, RecordType::A, timeout).await,
        Ok(reply) if matches!(reply.metadata.response_code, ResponseCode::NoError | ResponseCode::NXDomain)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts_flip_after_fall_failures_and_rise_successes_in_a_row() {
        let mut c = Hysteresis::new();
        assert!(!c.observe(false, 3, 2));
        assert!(!c.observe(true, 3, 2), "a success resets the streak");
        assert!(!c.observe(false, 3, 2));
        assert!(!c.observe(false, 3, 2));
        assert!(c.observe(false, 3, 2));
        assert!(!c.passing);
        assert!(!c.observe(true, 3, 2));
        assert!(c.observe(true, 3, 2));
        assert!(c.passing);
    }

    fn script(command: &str, args: &[&str], timeout_ms: u64) -> ScriptCheck {
        ScriptCheck {
            name: "t".into(),
            command: command.into(),
            args: args.iter().map(|a| (*a).to_owned()).collect(),
            interval: Duration::from_millis(10),
            timeout: Duration::from_millis(timeout_ms),
            fall: 1,
            rise: 1,
        }
    }

    #[tokio::test]
    async fn a_script_passes_on_status_zero_only_and_within_its_timeout() {
        assert!(run_script(&script("/bin/sh", &["-c", "exit 0"], 2000)).await);
        assert!(!run_script(&script("/bin/sh", &["-c", "exit 3"], 2000)).await);
        assert!(!run_script(&script("/bin/sh", &["-c", "sleep 5"], 100)).await);
        assert!(!run_script(&script("/nonexistent/check", &[], 100)).await);
    }

    #[tokio::test]
    async fn failing_checks_and_the_appliance_findings_reach_the_instances() {
        let config = ChecksConfig {
            scripts: vec![ScriptCheck {
                name: "uplink".into(),
                ..script("/bin/sh", &["-c", "exit 1"], 1000)
            }],
            ..ChecksConfig::default()
        };
        let (appliance_tx, appliance_rx) = watch::channel(Vec::new());
        let (health_tx, mut health_rx) = watch::channel(Health::default());
        let task = tokio::spawn(run(config, None, appliance_rx, health_tx));
        health_rx.changed().await.unwrap_or_default();
        assert_eq!(health_rx.borrow_and_update().failing, ["script uplink"]);
        appliance_tx.send_replace(vec!["bgp peer b: Active".into()]);
        health_rx.changed().await.unwrap_or_default();
        assert_eq!(
            health_rx.borrow().failing,
            ["script uplink", "bgp peer b: Active"]
        );
        task.abort();
    }

    #[test]
    fn stale_tunnels_and_down_sessions_count_only_when_asked_for() {
        use crate::wireguard::health::Verdict;
        use crate::wireguard::status::{PeerStatus, TunnelStatus, WireguardStatus};
        let peer = |name: &str, verdict| PeerStatus {
            name: name.into(),
            public_key: String::new(),
            configured_endpoint: None,
            endpoint: None,
            allowed_ips: Vec::new(),
            latest_handshake_secs_ago: None,
            last_received_secs_ago: None,
            rx_bytes: 0,
            tx_bytes: 0,
            persistent_keepalive: None,
            verdict,
            resolve_error: None,
        };
        let wireguard = WireguardStatus {
            tunnels: vec![TunnelStatus {
                interface: "wg0".into(),
                backend: None,
                public_key: String::new(),
                listen_port: None,
                addresses: Vec::new(),
                mtu: 1420,
                zone: None,
                routes: crate::wireguard::settings::RouteMode::Table,
                error: None,
                peers: vec![peer("grandma", Verdict::Stale), peer("cloud", Verdict::Up)],
            }],
        };
        let bgp = crate::bgp::status::BgpStatus {
            asn: 65001,
            router_id: std::net::Ipv4Addr::new(10, 62, 0, 1),
            peers: vec![crate::bgp::status::PeerStatus {
                name: "grandma".into(),
                address: std::net::Ipv4Addr::new(10, 62, 0, 2).into(),
                remote_asn: 65002,
                state: "Active",
                uptime_secs: None,
                last_error: None,
                prefixes_received: 0,
                prefixes_accepted: 0,
                prefixes_advertised: 0,
            }],
        };
        let mut checks = ChecksConfig::default();
        assert!(appliance_findings(&checks, &wireguard, Some(&bgp)).is_empty());
        checks.wireguard = true;
        checks.bgp = true;
        assert_eq!(
            appliance_findings(&checks, &wireguard, Some(&bgp)),
            [
                "wireguard wg0 peer grandma stale",
                "bgp peer grandma Active"
            ]
        );
    }
}
