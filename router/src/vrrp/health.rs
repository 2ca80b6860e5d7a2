//! The appliance's own health, as VRRP sees it: DNS probes through the
//! fast path and through recursion, asked of routerd's own resolver over
//! UDP, each with keepalived-style fall and rise counts. The verdict goes
//! to every instance through a watch channel.

use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use tokio::sync::watch;
use tracing::{info, warn};

use super::settings::ChecksConfig;

/// The failing checks, by name; empty when all pass.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Health {
    pub failing: Vec<String>,
}

/// One check with its fall/rise state.
#[derive(Debug)]
struct Check {
    name: &'static str,
    /// The query name; a random label goes in front for recursion.
    name_to_ask: String,
    fresh_label: bool,
    passing: bool,
    streak: u32,
}

impl Check {
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

/// Runs the DNS checks against `resolver` until the sender's receivers are
/// gone. Without probes configured the health never changes.
pub async fn run(config: ChecksConfig, resolver: SocketAddr, health: watch::Sender<Health>) {
    let mut checks: Vec<Check> = Vec::new();
    if let Some(name) = &config.fast_path_probe {
        checks.push(Check {
            name: "dns fast path",
            name_to_ask: name.clone(),
            fresh_label: false,
            passing: true,
            streak: 0,
        });
    }
    if let Some(zone) = &config.recursion_probe {
        checks.push(Check {
            name: "dns recursion",
            name_to_ask: zone.clone(),
            fresh_label: true,
            passing: true,
            streak: 0,
        });
    }
    if checks.is_empty() {
        health.closed().await;
        return;
    }
    let mut ticker = tokio::time::interval(config.interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut id: u16 = rand::random();
    loop {
        tokio::select! {
            () = health.closed() => return,
            _ = ticker.tick() => {}
        }
        let mut changed = false;
        for check in &mut checks {
            id = id.wrapping_add(1);
            let name = if check.fresh_label {
                format!("probe-{:08x}.{}", rand::random::<u32>(), check.name_to_ask)
            } else {
                check.name_to_ask.clone()
            };
            let timeout = config.probe_timeout;
            let ok = tokio::task::spawn_blocking(move || probe(resolver, &name, id, timeout))
                .await
                .unwrap_or(false);
            if check.observe(ok, config.fall, config.rise) {
                changed = true;
                if check.passing {
                    info!(check = check.name, "health check passes again");
                } else {
                    warn!(check = check.name, resolver = %resolver, "health check failed");
                }
            }
        }
        if changed {
            let failing = checks
                .iter()
                .filter(|c| !c.passing)
                .map(|c| c.name.to_owned())
                .collect();
            health.send_replace(Health { failing });
        }
    }
}

/// One query for `name`/A; true when an answer with NOERROR or NXDOMAIN
/// comes back in time (SERVFAIL, REFUSED or silence fail).
fn probe(resolver: SocketAddr, name: &str, id: u16, timeout: Duration) -> bool {
    let bind: SocketAddr = if resolver.is_ipv4() {
        SocketAddr::from(([0, 0, 0, 0], 0))
    } else {
        SocketAddr::from(([0u16; 8], 0))
    };
    let Ok(socket) = UdpSocket::bind(bind) else {
        return false;
    };
    if socket.set_read_timeout(Some(timeout)).is_err() || socket.connect(resolver).is_err() {
        return false;
    }
    if socket.send(&query(id, name)).is_err() {
        return false;
    }
    let mut buf = [0u8; 1500];
    let deadline = std::time::Instant::now() + timeout;
    while std::time::Instant::now() < deadline {
        let Ok(n) = socket.recv(&mut buf) else {
            return false;
        };
        let Some(answer) = buf.get(..n) else {
            return false;
        };
        if answer.len() >= 12 && answer[..2] == id.to_be_bytes() && answer[2] & 0x80 != 0 {
            return matches!(answer[3] & 0x0f, 0 | 3);
        }
    }
    false
}

/// A recursive query for `name`/A without EDNS.
fn query(id: u16, name: &str) -> Vec<u8> {
    let mut packet = Vec::with_capacity(18 + name.len());
    packet.extend_from_slice(&id.to_be_bytes());
    packet.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    for label in name.split('.').filter(|l| !l.is_empty()) {
        let label = &label.as_bytes()[..label.len().min(63)];
        packet.push(label.len() as u8);
        packet.extend_from_slice(label);
    }
    packet.extend_from_slice(&[0, 0, 1, 0, 1]);
    packet
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check() -> Check {
        Check {
            name: "t",
            name_to_ask: "x".into(),
            fresh_label: false,
            passing: true,
            streak: 0,
        }
    }

    #[test]
    fn verdicts_flip_after_fall_failures_and_rise_successes_in_a_row() {
        let mut c = check();
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

    #[test]
    fn the_probe_query_is_a_well_formed_question() {
        let q = query(0x1234, "probe-1.lab");
        assert_eq!(
            q,
            [
                0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 7, b'p', b'r', b'o', b'b', b'e', b'-',
                b'1', 3, b'l', b'a', b'b', 0, 0, 1, 0, 1
            ]
        );
    }
}
