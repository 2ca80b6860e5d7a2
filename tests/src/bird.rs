//! BIRD 2 (Debian `bird2`) as the BGP peer of the lab: a config writer,
//! the daemon in a namespace with its own control socket, and `birdc`
//! wrappers (protocol state, routes, enable/disable, reconfigure).
//!
//! ```text
//!   router 10.53.0.53 / fd53::35  (routerd, AS 65001)
//!        |  one BGP session over IPv4 carrying ipv4 and ipv6 (MP-BGP)
//!   bird   10.53.0.60 / fd53::3c  (BIRD, AS 65002)
//! ```
//!
//! What BIRD needs, as found in the lab (BIRD 2.0.12):
//!
//! - One `protocol bgp` with an `ipv4` and an `ipv6` channel runs both
//!   families over the IPv4 session. With `next hop self` and a directly
//!   connected neighbor, BIRD takes the IPv6 next hop of the ipv6 channel
//!   from the interface's global IPv6 address (fd53::3c) and adds its
//!   link-local one: the MP_REACH next hop is 32 bytes (global +
//!   link-local). No `next hop address` is needed.
//! - TCP MD5: `password "...";` in the protocol; both ends must agree or
//!   the SYNs are dropped silently (the kernel logs "MD5 Hash failed").
//! - `connect delay time` (default 5 s) delays the first dial after
//!   start; the lab sets it to 1 s. `passive on` never dials (BIRD's state
//!   then reads "Passive" between sessions).
//! - No `protocol kernel`: BIRD keeps what it learns in its own tables
//!   (`birdc show route`), its namespace's kernel table is untouched.
//! - `birdc show protocols all NAME` has a `BGP state:` line and, after
//!   a NOTIFICATION, `Last error: Received: <text>` (Cease/1 reads
//!   "Maximum number of prefixes reached").

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};

use crate::Host;
use crate::process::Daemon;

/// BIRD's AS number in the lab.
pub const BIRD_ASN: u32 = 65002;
/// The name of BIRD's BGP protocol toward routerd.
pub const PROTOCOL: &str = "routerd";
/// The IPv4 static protocol (what BIRD announces).
pub const STATIC4: &str = "s4";
/// The IPv6 static protocol.
pub const STATIC6: &str = "s6";

/// Tools a BIRD test needs besides the lab's.
pub const BIRD_TOOLS: &[&str] = &["bird", "birdc"];

/// BIRD's configuration: one BGP session toward `neighbor`, static routes
/// it announces (IPv4 in [`STATIC4`], IPv6 in [`STATIC6`]).
#[derive(Debug, Clone)]
pub struct BirdConfig {
    /// `router id`.
    pub router_id: Ipv4Addr,
    /// `local ADDR as ASN`.
    pub local: IpAddr,
    /// BIRD's AS.
    pub asn: u32,
    /// The neighbor (routerd).
    pub neighbor: IpAddr,
    /// The neighbor's AS.
    pub neighbor_asn: u32,
    /// `hold time`, seconds.
    pub hold_time: u16,
    /// `connect retry time`, seconds.
    pub connect_retry: u16,
    /// `passive on`: never dial, only accept.
    pub passive: bool,
    /// `password "..."`: TCP MD5.
    pub password: Option<String>,
    /// `ttl security on`: GTSM (RFC 5082).
    pub ttl_security: bool,
    /// IPv4 prefixes announced (blackhole statics).
    pub routes4: Vec<String>,
    /// IPv6 prefixes announced.
    pub routes6: Vec<String>,
    /// Carry IPv6 on the session (an `ipv6` channel).
    pub ipv6: bool,
}

impl BirdConfig {
    /// `host` peering with routerd at `neighbor` (AS `neighbor_asn`): AS
    /// [`BIRD_ASN`], hold time 9, retry 2 s, announcing 10.70.1.0/24 and
    /// fd70:1::/64.
    pub fn new(host: &Host, neighbor: IpAddr, neighbor_asn: u32) -> BirdConfig {
        BirdConfig {
            router_id: host.v4,
            local: IpAddr::V4(host.v4),
            asn: BIRD_ASN,
            neighbor,
            neighbor_asn,
            hold_time: 9,
            connect_retry: 2,
            passive: false,
            password: None,
            ttl_security: false,
            routes4: vec!["10.70.1.0/24".to_string()],
            routes6: vec!["fd70:1::/64".to_string()],
            ipv6: true,
        }
    }

    /// Applies any change.
    pub fn with(mut self, change: impl FnOnce(&mut BirdConfig)) -> Self {
        change(&mut self);
        self
    }

    /// The bird.conf text.
    pub fn to_conf(&self) -> String {
        let mut t = String::new();
        let _ = writeln!(t, "log stderr all;");
        let _ = writeln!(t, "router id {};", self.router_id);
        let _ = writeln!(t, "debug protocols {{ states, events }};");
        let _ = writeln!(t, "protocol device {{ scan time 1; }}");
        let statics = |t: &mut String, name: &str, family: &str, routes: &[String]| {
            let _ = writeln!(t, "protocol static {name} {{");
            let _ = writeln!(t, "  {family};");
            for r in routes {
                let _ = writeln!(t, "  route {r} blackhole;");
            }
            let _ = writeln!(t, "}}");
        };
        statics(&mut t, STATIC4, "ipv4", &self.routes4);
        if self.ipv6 {
            statics(&mut t, STATIC6, "ipv6", &self.routes6);
        }
        let _ = writeln!(t, "protocol bgp {PROTOCOL} {{");
        let _ = writeln!(t, "  local {} as {};", self.local, self.asn);
        let _ = writeln!(t, "  neighbor {} as {};", self.neighbor, self.neighbor_asn);
        let _ = writeln!(t, "  hold time {};", self.hold_time);
        let _ = writeln!(t, "  connect delay time 1;");
        let _ = writeln!(t, "  connect retry time {};", self.connect_retry);
        if self.passive {
            let _ = writeln!(t, "  passive on;");
        }
        if let Some(password) = &self.password {
            let _ = writeln!(t, "  password \"{}\";", password.replace('"', "\\\""));
        }
        if self.ttl_security {
            let _ = writeln!(t, "  ttl security on;");
        }
        let channel = |t: &mut String, family: &str| {
            let _ = writeln!(t, "  {family} {{");
            let _ = writeln!(t, "    import all;");
            let _ = writeln!(t, "    export where source = RTS_STATIC;");
            let _ = writeln!(t, "    next hop self;");
            let _ = writeln!(t, "  }};");
        };
        channel(&mut t, "ipv4");
        if self.ipv6 {
            channel(&mut t, "ipv6");
        }
        let _ = writeln!(t, "}}");
        t
    }

    /// Writes `<lab dir>/bird-<host>.conf`, starts `bird -f` on `host`
    /// with its own control socket and waits until `birdc` answers.
    pub fn start(&self, host: &Host) -> Result<Bird> {
        let conf = host.dir().join(format!("bird-{}.conf", host.name));
        let socket = host.dir().join(format!("bird-{}.ctl", host.name));
        let pidfile = host.dir().join(format!("bird-{}.pid", host.name));
        std::fs::write(&conf, self.to_conf())
            .with_context(|| format!("writing {}", conf.display()))?;
        let label = format!("bird-{}", host.name);
        let daemon = spawn_bird(host, &label, &conf, &socket, &pidfile)?;
        let mut bird = Bird {
            daemon,
            host: host.clone(),
            conf,
            socket,
        };
        let mut last = String::new();
        let ready = crate::wait_until(Duration::from_secs(10), "birdc to answer", || {
            if !bird.daemon.is_running() {
                return Some(false);
            }
            match bird.birdc(&["show", "status"]) {
                Ok(out) if out.contains("Daemon is up") => Some(true),
                Ok(out) => {
                    last = out;
                    None
                }
                Err(e) => {
                    last = format!("{e:#}");
                    None
                }
            }
        });
        match ready {
            Ok(true) => Ok(bird),
            Ok(false) => bail!(
                "bird exited during startup; config:\n{}\nlog:\n{}",
                self.to_conf(),
                bird.daemon.log_tail(40)
            ),
            Err(e) => bail!(
                "{e}: {last}\nconfig:\n{}\nlog:\n{}",
                self.to_conf(),
                bird.daemon.log_tail(40)
            ),
        }
    }
}

/// A running BIRD; killed on drop (log tail printed if the test failed).
#[derive(Debug)]
pub struct Bird {
    /// The process guard.
    pub daemon: Daemon,
    /// Where it runs.
    pub host: Host,
    /// Its config file.
    pub conf: PathBuf,
    /// Its control socket.
    pub socket: PathBuf,
}

/// One route of `birdc show route all`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BirdRoute {
    /// "10.61.1.0/24".
    pub prefix: String,
    /// The protocol it came from ("routerd", "s4").
    pub protocol: String,
    /// `BGP.as_path`, as printed ("65001"), empty when none.
    pub as_path: String,
    /// `BGP.next_hop`, as printed (for IPv6 possibly two addresses).
    pub next_hop: String,
    /// The gateway of the `via X on IFACE` line, if any.
    pub via: Option<String>,
    /// Whether BIRD marked it as the best route (`*`).
    pub primary: bool,
}

impl Bird {
    /// Runs `birdc -s SOCKET ARGS` (bounded to 10 s); an error unless it
    /// exits 0. Returns stdout.
    pub fn birdc(&self, args: &[&str]) -> Result<String> {
        let birdc = crate::require::tool("birdc")?;
        let socket = self.socket.to_string_lossy();
        let mut all = vec![
            "10",
            birdc.to_str().context("non-UTF-8 birdc path")?,
            "-s",
            &socket,
        ];
        all.extend(args);
        self.host.run("timeout", &all)
    }

    /// `show protocols all NAME`.
    pub fn protocol_info(&self, name: &str) -> Result<String> {
        self.birdc(&["show", "protocols", "all", name])
    }

    /// The `BGP state:` of protocol `name` ("Established", "Active",
    /// "Passive", "Connect", "Idle", "Down", ...).
    pub fn bgp_state(&self, name: &str) -> Result<String> {
        let info = self.protocol_info(name)?;
        field(&info, "BGP state:")
            .with_context(|| format!("no BGP state in show protocols all {name}:\n{info}"))
    }

    /// The `Last error:` of protocol `name`, if any.
    pub fn last_error(&self, name: &str) -> Result<Option<String>> {
        Ok(field(&self.protocol_info(name)?, "Last error:"))
    }

    /// Waits until BIRD's session to routerd is Established.
    pub fn wait_established(&self, deadline: Duration) -> Result<()> {
        let mut last = String::new();
        crate::wait_until(deadline, "BIRD's session to be Established", || match self
            .bgp_state(PROTOCOL)
        {
            Ok(state) if state == "Established" => Some(()),
            Ok(state) => {
                last = state;
                None
            }
            Err(e) => {
                last = format!("{e:#}");
                None
            }
        })
        .with_context(|| {
            format!(
                "last state {last}\n{}",
                self.protocol_info(PROTOCOL).unwrap_or_default()
            )
        })
    }

    /// Every route of `show route all` (both tables).
    pub fn routes(&self) -> Result<Vec<BirdRoute>> {
        Ok(parse_routes(&self.birdc(&["show", "route", "all"])?))
    }

    /// The routes BIRD learned from routerd.
    pub fn learned(&self) -> Result<Vec<BirdRoute>> {
        Ok(self
            .routes()?
            .into_iter()
            .filter(|r| r.protocol == PROTOCOL)
            .collect())
    }

    /// Waits until BIRD learned `prefix` from routerd; returns the route.
    pub fn wait_learned(&self, prefix: &str, deadline: Duration) -> Result<BirdRoute> {
        let mut last = Vec::new();
        crate::wait_until(deadline, &format!("BIRD to learn {prefix}"), || {
            last = self.learned().unwrap_or_default();
            last.iter().find(|r| r.prefix == prefix).cloned()
        })
        .with_context(|| format!("BIRD learned {last:?}"))
    }

    /// `birdc disable NAME` (a static protocol: its routes are withdrawn).
    pub fn disable(&self, name: &str) -> Result<()> {
        self.birdc(&["disable", name]).map(drop)
    }

    /// `birdc enable NAME`.
    pub fn enable(&self, name: &str) -> Result<()> {
        self.birdc(&["enable", name]).map(drop)
    }

    /// Rewrites the config file and runs `birdc configure`.
    pub fn reconfigure(&self, config: &BirdConfig) -> Result<()> {
        std::fs::write(&self.conf, config.to_conf())
            .with_context(|| format!("writing {}", self.conf.display()))?;
        let out = self.birdc(&["configure"])?;
        if !out.contains("Reconfigured") && !out.contains("Reconfiguration in progress") {
            bail!("birdc configure: {out}");
        }
        Ok(())
    }

    /// Stops BIRD (SIGTERM: it closes its sessions with a Cease).
    pub fn stop(&mut self) {
        self.daemon.stop();
    }
}

/// The value after `key` on the first line that starts with it (leading
/// blanks ignored).
fn field(text: &str, key: &str) -> Option<String> {
    text.lines()
        .map(str::trim)
        .find_map(|l| l.strip_prefix(key))
        .map(|v| v.trim().to_string())
}

/// Parses `birdc show route all`:
///
/// ```text
/// Table master4:
/// 10.61.1.0/24         unicast [routerd 20:23:46.337] * (100) [AS65001i]
///         via 10.53.0.53 on eth0
///         Type: BGP univ
///         BGP.as_path: 65001
///         BGP.next_hop: 10.53.0.53
/// 10.70.1.0/24         blackhole [s4 20:23:39.475] * (200)
/// ```
///
/// A second route for the same prefix starts with blanks and a route
/// type; attribute lines start with a tab.
pub fn parse_routes(text: &str) -> Vec<BirdRoute> {
    let mut routes: Vec<BirdRoute> = Vec::new();
    let mut prefix = String::new();
    for line in text.lines() {
        if line.starts_with("BIRD ") || line.starts_with("Table ") || line.trim().is_empty() {
            continue;
        }
        let route_line = |rest: &str, prefix: &str| -> Option<BirdRoute> {
            let open = rest.find('[')?;
            let protocol = rest[open + 1..]
                .split([' ', ']'])
                .next()
                .unwrap_or_default()
                .to_string();
            let after = &rest[open..];
            let close = after.find(']').unwrap_or(0);
            Some(BirdRoute {
                prefix: prefix.to_string(),
                protocol,
                as_path: String::new(),
                next_hop: String::new(),
                via: None,
                primary: after[close..]
                    .trim_start_matches(']')
                    .trim()
                    .starts_with('*'),
            })
        };
        if !line.starts_with([' ', '\t']) {
            let mut parts = line.splitn(2, char::is_whitespace);
            prefix = parts.next().unwrap_or_default().to_string();
            if let Some(r) = route_line(parts.next().unwrap_or_default(), &prefix) {
                routes.push(r);
            }
            continue;
        }
        let trimmed = line.trim();
        if line.starts_with(' ') && !line.starts_with('\t') && trimmed.contains('[') {
            if let Some(r) = route_line(trimmed, &prefix) {
                routes.push(r);
            }
            continue;
        }
        let Some(route) = routes.last_mut() else {
            continue;
        };
        if let Some(v) = trimmed.strip_prefix("BGP.as_path:") {
            route.as_path = v.trim().to_string();
        } else if let Some(v) = trimmed.strip_prefix("BGP.next_hop:") {
            route.next_hop = v.trim().to_string();
        } else if let Some(v) = trimmed.strip_prefix("via ") {
            route.via = v.split_whitespace().next().map(str::to_string);
        }
    }
    routes
}

/// Starts `bird -f` on `host` with `conf`, its own control `socket` and
/// `pidfile` (BIRD's defaults are shared by every namespace), logging to
/// `<lab dir>/<label>.log`.
pub fn spawn_bird(
    host: &Host,
    label: &str,
    conf: &std::path::Path,
    socket: &std::path::Path,
    pidfile: &std::path::Path,
) -> Result<Daemon> {
    let _ = std::fs::remove_file(socket);
    host.spawn(
        label,
        "bird",
        &[
            "-f",
            "-c",
            &conf.to_string_lossy(),
            "-s",
            &socket.to_string_lossy(),
            "-P",
            &pidfile.to_string_lossy(),
        ],
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // test code
mod tests {
    use super::parse_routes;

    #[test]
    fn parses_show_route_all() {
        let text = [
            "BIRD 2.0.12 ready.",
            "Table master4:",
            "10.70.1.0/24         blackhole [s4 20:23:39.475] * (200)",
            "\tType: static univ",
            "10.61.1.0/24         unicast [routerd 20:23:46.337] * (100) [AS65001i]",
            "\tvia 10.53.0.53 on eth0",
            "\tType: BGP univ",
            "\tBGP.origin: IGP",
            "\tBGP.as_path: 65001",
            "\tBGP.next_hop: 10.53.0.53",
            "                     unicast [other 20:23:47.000] (100) [AS65003i]",
            "\tvia 10.53.0.61 on eth0",
            "\tBGP.as_path: 65003",
            "",
            "Table master6:",
            "fd61:1::/64          unicast [routerd 20:23:46.337 from 10.53.0.53] * (100) [AS65001i]",
            "\tvia fd53::35 on eth0",
            "\tBGP.as_path: 65001",
            "\tBGP.next_hop: fd53::35 fe80::1",
        ]
        .join("\n");
        let routes = parse_routes(&text);
        assert_eq!(routes.len(), 4, "{routes:?}");
        assert_eq!(routes[0].protocol, "s4");
        assert!(routes[0].primary);
        assert_eq!(routes[1].prefix, "10.61.1.0/24");
        assert_eq!(routes[1].protocol, "routerd");
        assert_eq!(routes[1].as_path, "65001");
        assert_eq!(routes[1].via.as_deref(), Some("10.53.0.53"));
        assert_eq!(routes[2].prefix, "10.61.1.0/24");
        assert_eq!(routes[2].protocol, "other");
        assert!(!routes[2].primary);
        assert_eq!(routes[2].as_path, "65003");
        assert_eq!(routes[3].prefix, "fd61:1::/64");
        assert_eq!(routes[3].next_hop, "fd53::35 fe80::1");
        assert_eq!(routes[3].via.as_deref(), Some("fd53::35"));
    }
}
