//! Three WireGuard sites in namespaces, joined across the lab switch (the
//! "internet"), for the site-to-site tunnel tests.
//!
//! ```text
//!   LAN a 10.61.1.10        LAN b 10.61.2.10        LAN c 10.61.3.10
//!        | eth0                  | eth0                  | eth0
//!        | lan0 10.61.1.1        | lan0 10.61.2.1        | lan0 10.61.3.1
//!   site-a router           site-b router           site-c router
//!   eth0 10.53.0.71         eth0 10.53.0.72         eth0 10.53.0.73
//!   (tunnel 10.62.0.1)      (tunnel 10.62.0.2)      (tunnel 10.62.0.3)
//!        |                       |                       |
//!   =============== lab switch: "the internet", with the lab DNS ===========
//!      site-a.plain.lab A 10.53.0.71, site-b... .72, site-c... .73 (TTL 1)
//! ```
//!
//! - Each site router is a lab host (its WAN is the switch) with IPv4
//!   forwarding on and a veth `lan0` to its LAN namespace. The LAN hosts
//!   are *not* on the switch and the routers have no route to the other
//!   LANs: a LAN reaches another only through a tunnel (routerd adds the
//!   routes, in [`ROUTE_TABLE`]).
//! - The lab DNS hierarchy ([`DnsHierarchy`]) serves `site-X.plain.lab`
//!   with a TTL of [`DNS_TTL`] s, so a routerd re-resolving an endpoint
//!   sees a change within seconds; [`WgLab::move_site`] changes one.
//! - Tunnel interface names are unique per lab (`wg<pid>x<n><site>`):
//!   wireguard-go's control sockets all live in one directory,
//!   /var/run/wireguard, shared by every namespace. Sockets the lab's
//!   tunnels leave behind are removed on drop.
//! - Keys come from `routerctl wg genkey` / `routerctl wg pubkey`
//!   ([`WgLab::with_keys`]); private keys are written with mode 0600.
//!
//! Nothing is connected to the root namespace: no packet leaves the
//! machine (the tunnels' UDP runs between namespaces on the lab switch).

use std::fmt::Write as _;
use std::io::Write as _;
use std::net::{IpAddr, Ipv4Addr};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};

use crate::json::Value;
use crate::netns::ip;
use crate::process::{Daemon, Proto, wait_for_port};
use crate::routerd::{quote, routerctl_binary, toml_list as list};
use crate::traffic::{self, Verdict};
use crate::zones_lab::sysctl;
use crate::{DnsHierarchy, Host, Lab, Routerd, RouterdConfig};

/// Site a (index 0).
pub const A: usize = 0;
/// Site b (index 1).
pub const B: usize = 1;
/// Site c (index 2).
pub const C: usize = 2;
/// How many sites the lab has.
pub const SITES: usize = 3;

/// The routing table routerd owns for tunnel routes in the lab configs.
pub const ROUTE_TABLE: u32 = 200;
/// `stale_after` in the lab configs: short, so staleness shows at once.
pub const STALE_AFTER: &str = "4s";
/// `persistent_keepalive` of mesh peers, seconds.
pub const KEEPALIVE: u16 = 1;
/// The tunnel MTU in the lab configs.
pub const MTU: u32 = 1420;
/// TTL of the `site-X.plain.lab` records.
pub const DNS_TTL: u32 = 1;
/// Where [`WgLab::move_site`] tests move site b.
pub const SITE_B_MOVED: Ipv4Addr = Ipv4Addr::new(10, 53, 0, 82);
/// The iperf3 port in the LANs.
pub const IPERF_PORT: u16 = 5201;
/// Where wireguard-go keeps its control sockets, for every namespace.
pub const WG_SOCKET_DIR: &str = "/var/run/wireguard";

/// Tools the lab needs without tunnels (besides `ip`): the DNS hierarchy,
/// `ping` and `sysctl`.
pub const LAB_TOOLS: &[&str] = &[
    "nsd",
    "dig",
    "ldns-keygen",
    "ldns-signzone",
    "ldns-key2ds",
    "ping",
    "sysctl",
    "timeout",
];

/// Tools the tunnel tests need on top of [`LAB_TOOLS`].
pub const TUNNEL_TOOLS: &[&str] = &["wireguard-go", "wg", "iperf3", "routerd", "routerctl"];

/// Site `i`'s letter: 'a', 'b', 'c'.
pub fn letter(site: usize) -> char {
    match site {
        A => 'a',
        B => 'b',
        C => 'c',
        _ => '?',
    }
}

/// 1 for site a, 2 for b, 3 for c: the digit in its addresses.
fn number(site: usize) -> u8 {
    u8::try_from(site + 1).unwrap_or(u8::MAX)
}

/// The site's name, also its peer name in the other sites' configs: "site-a".
pub fn site_name(site: usize) -> String {
    format!("site-{}", letter(site))
}

/// The site's DNS name in the lab: "site-a.plain.lab".
pub fn dns_name(site: usize) -> String {
    format!("{}.plain.lab", site_name(site))
}

/// The site router's address on the internet (the lab switch): 10.53.0.71...
pub fn router_v4(site: usize) -> Ipv4Addr {
    Ipv4Addr::new(10, 53, 0, 70 + number(site))
}

/// The site's LAN, "10.61.1.0/24" for site a.
pub fn lan_net(site: usize) -> String {
    format!("10.61.{}.0/24", number(site))
}

/// The router's address on its LAN: 10.61.1.1 for site a.
pub fn lan_router(site: usize) -> Ipv4Addr {
    Ipv4Addr::new(10, 61, number(site), 1)
}

/// The LAN host's address: 10.61.1.10 for site a.
pub fn lan_host(site: usize) -> Ipv4Addr {
    Ipv4Addr::new(10, 61, number(site), 10)
}

/// The router's address on the tunnel network: 10.62.0.1 for site a.
pub fn tunnel_addr(site: usize) -> Ipv4Addr {
    Ipv4Addr::new(10, 62, 0, number(site))
}

/// The site's WireGuard listen port: 51821 for site a (a different one
/// per site, so a mix-up shows).
pub fn listen_port(site: usize) -> u16 {
    51820 + u16::from(number(site))
}

/// A site's keys.
#[derive(Debug, Clone)]
pub struct SiteKey {
    /// The private key file (mode 0600).
    pub private_key_file: PathBuf,
    /// The public key, base64.
    pub public_key: String,
}

/// One site: its router (on the internet) and its LAN host.
#[derive(Debug, Clone)]
pub struct Site {
    /// 0, 1, 2 ([`A`], [`B`], [`C`]).
    pub index: usize,
    /// "site-a".
    pub name: String,
    /// The router namespace: `eth0` on the lab switch, `lan0` to the LAN.
    pub router: Host,
    /// The LAN host namespace (`v4` is [`lan_host`]).
    pub lan: Host,
    /// The site's tunnel interface name, unique to this lab.
    pub interface: String,
    /// Its keys, when the lab was made by [`WgLab::with_keys`].
    pub key: Option<SiteKey>,
}

impl Site {
    /// The site's keys; an error if the lab was made without them.
    pub fn key(&self) -> Result<&SiteKey> {
        self.key
            .as_ref()
            .with_context(|| format!("{} has no keys: use WgLab::with_keys", self.name))
    }
}

/// A peer section of a routerd config.
#[derive(Debug, Clone)]
pub struct PeerSpec {
    /// `name`.
    pub name: String,
    /// `public_key`.
    pub public_key: String,
    /// `endpoint` (host:port).
    pub endpoint: Option<String>,
    /// `allowed_ips`.
    pub allowed_ips: Vec<String>,
    /// `persistent_keepalive`, seconds.
    pub persistent_keepalive: Option<u16>,
    /// `preshared_key_file`.
    pub preshared_key_file: Option<PathBuf>,
}

/// A `[[wireguard.tunnels]]` section.
#[derive(Debug, Clone)]
pub struct TunnelSpec {
    /// `interface`.
    pub interface: String,
    /// `private_key_file`.
    pub private_key_file: PathBuf,
    /// `listen_port`.
    pub listen_port: Option<u16>,
    /// `addresses`.
    pub addresses: Vec<String>,
    /// `mtu`.
    pub mtu: Option<u32>,
    /// `routes`: "table", "bgp" or "none".
    pub routes: Option<String>,
    /// `stale_after`, e.g. "4s".
    pub stale_after: Option<String>,
    /// The peers.
    pub peers: Vec<PeerSpec>,
}

/// The `[wireguard]` section for `tunnels`, userspace backend, routes in
/// [`ROUTE_TABLE`].
pub fn wireguard_toml(tunnels: &[TunnelSpec]) -> String {
    let mut t = String::new();
    let _ = writeln!(t, "[wireguard]");
    let _ = writeln!(t, "backend = \"userspace\"");
    let _ = writeln!(t, "route_table = {ROUTE_TABLE}");
    for tunnel in tunnels {
        let _ = writeln!(t, "\n[[wireguard.tunnels]]");
        let _ = writeln!(t, "interface = {}", quote(&tunnel.interface));
        let _ = writeln!(
            t,
            "private_key_file = {}",
            quote(&tunnel.private_key_file.to_string_lossy())
        );
        if let Some(port) = tunnel.listen_port {
            let _ = writeln!(t, "listen_port = {port}");
        }
        let _ = writeln!(t, "addresses = {}", list(&tunnel.addresses));
        if let Some(mtu) = tunnel.mtu {
            let _ = writeln!(t, "mtu = {mtu}");
        }
        if let Some(routes) = &tunnel.routes {
            let _ = writeln!(t, "routes = {}", quote(routes));
        }
        if let Some(stale) = &tunnel.stale_after {
            let _ = writeln!(t, "stale_after = {}", quote(stale));
        }
        for peer in &tunnel.peers {
            let _ = writeln!(t, "\n[[wireguard.tunnels.peers]]");
            let _ = writeln!(t, "name = {}", quote(&peer.name));
            let _ = writeln!(t, "public_key = {}", quote(&peer.public_key));
            if let Some(endpoint) = &peer.endpoint {
                let _ = writeln!(t, "endpoint = {}", quote(endpoint));
            }
            let _ = writeln!(t, "allowed_ips = {}", list(&peer.allowed_ips));
            if let Some(keepalive) = peer.persistent_keepalive {
                let _ = writeln!(t, "persistent_keepalive = {keepalive}");
            }
            if let Some(psk) = &peer.preshared_key_file {
                let _ = writeln!(t, "preshared_key_file = {}", quote(&psk.to_string_lossy()));
            }
        }
    }
    t
}

/// The three sites, the lab DNS, and the lab under them; every namespace
/// (and every process in them) is removed on drop.
#[derive(Debug)]
pub struct WgLab {
    /// The lab DNS hierarchy (serves `site-X.plain.lab`).
    pub dns: DnsHierarchy,
    sites: Vec<Site>,
    /// The address each site's DNS record currently holds.
    records: Vec<Ipv4Addr>,
    /// Last, so it is dropped (namespaces deleted) last.
    lab: Lab,
}

impl WgLab {
    /// The lab without keys: sites, LANs and DNS (see the module docs).
    pub fn new() -> Result<WgLab> {
        let lab = Lab::new()?;
        let mut dns = DnsHierarchy::start(&lab)?;
        let id = lab
            .prefix()
            .strip_prefix("rl")
            .unwrap_or(lab.prefix())
            .to_string();
        let mut sites = Vec::new();
        let mut records = String::new();
        for index in 0..SITES {
            let site = add_site(&lab, index, &id)
                .with_context(|| format!("building {}", site_name(index)))?;
            let _ = writeln!(records, "{}", record_line(index, router_v4(index)));
            sites.push(site);
        }
        dns.add_records("plain.lab.", &records)?;
        Ok(WgLab {
            dns,
            sites,
            records: (0..SITES).map(router_v4).collect(),
            lab,
        })
    }

    /// Like [`WgLab::new`], with a key pair per site from `routerctl wg
    /// genkey` and `routerctl wg pubkey`, in `<lab dir>/wg/site-X.key`
    /// (mode 0600).
    pub fn with_keys() -> Result<WgLab> {
        WgLab::with_keys_from(|| {
            let private = genkey()?;
            let public = pubkey(&private)?;
            Ok((private, public))
        })
    }

    /// Like [`WgLab::with_keys`], with keys from `keypair` (private,
    /// public), e.g. [`wg_keypair`] for tests that do without routerd.
    pub fn with_keys_from(keypair: impl Fn() -> Result<(String, String)>) -> Result<WgLab> {
        let mut lab = WgLab::new()?;
        let dir = lab.wg_dir()?;
        for site in &mut lab.sites {
            let (private, public) = keypair()?;
            let file = dir.join(format!("{}.key", site.name));
            write_secret(&file, &private)?;
            site.key = Some(SiteKey {
                private_key_file: file,
                public_key: public,
            });
        }
        Ok(lab)
    }

    /// `<lab dir>/wg`, for keys; created on first use.
    pub fn wg_dir(&self) -> Result<PathBuf> {
        let dir = self.lab.dir().join("wg");
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        Ok(dir)
    }

    /// The lab underneath.
    pub fn lab(&self) -> &Lab {
        &self.lab
    }

    /// The lab's temp dir (logs, configs, keys).
    pub fn dir(&self) -> &Path {
        self.lab.dir()
    }

    /// Site `index` ([`A`], [`B`], [`C`]); panics for any other index.
    pub fn site(&self, index: usize) -> &Site {
        &self.sites[index]
    }

    /// `to` as a peer of `from` in a full mesh: endpoint
    /// `site-X.plain.lab:PORT`, allowed IPs its tunnel address and its
    /// LAN, keepalive [`KEEPALIVE`].
    pub fn mesh_peer(&self, to: usize) -> Result<PeerSpec> {
        let site = self.site(to);
        Ok(PeerSpec {
            name: site.name.clone(),
            public_key: site.key()?.public_key.clone(),
            endpoint: Some(format!("{}:{}", dns_name(to), listen_port(to))),
            allowed_ips: vec![format!("{}/32", tunnel_addr(to)), lan_net(to)],
            persistent_keepalive: Some(KEEPALIVE),
            preshared_key_file: None,
        })
    }

    /// The site's tunnel with `peers`: address 10.62.0.N/24, its listen
    /// port, MTU [`MTU`], routes in the table, stale after [`STALE_AFTER`].
    pub fn tunnel(&self, site: usize, peers: Vec<PeerSpec>) -> Result<TunnelSpec> {
        let s = self.site(site);
        Ok(TunnelSpec {
            interface: s.interface.clone(),
            private_key_file: s.key()?.private_key_file.clone(),
            listen_port: Some(listen_port(site)),
            addresses: vec![format!("{}/24", tunnel_addr(site))],
            mtu: Some(MTU),
            routes: Some("table".to_string()),
            stale_after: Some(STALE_AFTER.to_string()),
            peers,
        })
    }

    /// The site's tunnel with the two other sites as mesh peers.
    pub fn mesh_tunnel(&self, site: usize) -> Result<TunnelSpec> {
        let peers = (0..SITES)
            .filter(|other| *other != site)
            .map(|other| self.mesh_peer(other))
            .collect::<Result<Vec<_>>>()?;
        self.tunnel(site, peers)
    }

    /// routerd's config for the site: recursive DNS over the lab on the
    /// router's internet address, and `tunnel`.
    pub fn routerd_config(&self, site: usize, tunnel: &TunnelSpec) -> RouterdConfig {
        let mut config = RouterdConfig::recursive(&self.dns);
        config.listen = vec![std::net::SocketAddr::new(IpAddr::V4(router_v4(site)), 53)];
        config.workers = 1;
        config.extra_toml = wireguard_toml(std::slice::from_ref(tunnel));
        config
    }

    /// Starts routerd on the site's router with `tunnel`.
    pub fn start_site(&self, site: usize, tunnel: &TunnelSpec) -> Result<Routerd> {
        self.routerd_config(site, tunnel)
            .start(&self.site(site).router)
            .with_context(|| format!("starting routerd on {}", site_name(site)))
    }

    /// Starts routerd at every site with the full mesh.
    pub fn start_mesh(&self) -> Result<Vec<Routerd>> {
        (0..SITES)
            .map(|site| self.start_site(site, &self.mesh_tunnel(site)?))
            .collect()
    }

    /// One ping from `from`'s LAN host to `to`'s.
    pub fn ping_lan(&self, from: usize, to: usize) -> Result<Verdict> {
        traffic::ping(&self.site(from).lan, IpAddr::V4(lan_host(to)))
    }

    /// Waits until `from`'s LAN host gets a ping answer from `to`'s.
    pub fn wait_lan_reachable(&self, from: usize, to: usize, deadline: Duration) -> Result<()> {
        let mut last = None;
        let result = crate::wait_until(
            deadline,
            &format!("LAN {} to reach LAN {}", letter(from), letter(to)),
            || match self.ping_lan(from, to) {
                Ok(Verdict::Accepted) => Some(()),
                other => {
                    last = Some(other);
                    None
                }
            },
        );
        result.with_context(|| {
            format!(
                "last ping: {last:?}\n{}\n{}",
                self.diagnostics(from),
                self.diagnostics(to)
            )
        })
    }

    /// Waits until every LAN reaches every other.
    pub fn wait_mesh_reachable(&self, deadline: Duration) -> Result<()> {
        for from in 0..SITES {
            for to in (0..SITES).filter(|t| *t != from) {
                self.wait_lan_reachable(from, to, deadline)?;
            }
        }
        Ok(())
    }

    /// The site router's tunnel as `wg show` and `ip` see it, for failure
    /// messages.
    pub fn diagnostics(&self, site: usize) -> String {
        let s = self.site(site);
        let show = |program: &str, args: &[&str]| match s.router.exec(program, args) {
            Ok(out) => format!(
                "$ {program} {}\n{}{}",
                args.join(" "),
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
            Err(e) => format!("$ {program} {}: {e:#}\n", args.join(" ")),
        };
        let table = ROUTE_TABLE.to_string();
        format!(
            "--- {} ({}) ---\n{}{}{}{}",
            s.name,
            s.router.ns,
            show("wg", &["show", &s.interface]),
            show("ip", &["-brief", "address"]),
            show("ip", &["rule"]),
            show("ip", &["route", "show", "table", &table]),
        )
    }

    /// `wg show IFACE dump` on the site's router.
    pub fn wg_dump(&self, site: usize) -> Result<WgDump> {
        let s = self.site(site);
        let text = s.router.run("wg", &["show", &s.interface, "dump"])?;
        WgDump::parse(&text)
            .with_context(|| format!("wg show {} dump printed:\n{text}", s.interface))
    }

    /// The site's tunnel interface's ifindex; an error if it does not exist.
    pub fn ifindex(&self, site: usize) -> Result<u32> {
        let s = self.site(site);
        let text = s
            .router
            .run("ip", &["-o", "link", "show", "dev", &s.interface])?;
        text.split(':')
            .next()
            .and_then(|n| n.trim().parse().ok())
            .with_context(|| format!("no ifindex in {text:?}"))
    }

    /// True when the site's tunnel interface exists in its router.
    pub fn interface_exists(&self, site: usize) -> bool {
        let s = self.site(site);
        s.router
            .exec("ip", &["link", "show", "dev", &s.interface])
            .is_ok_and(|out| out.status.success())
    }

    /// `ip -4 route show table ROUTE_TABLE` on the site's router.
    pub fn tunnel_routes(&self, site: usize) -> Result<String> {
        let table = ROUTE_TABLE.to_string();
        self.site(site)
            .router
            .run("ip", &["-4", "route", "show", "table", &table])
    }

    /// Moves the site router to `to`: adds the address, points the site's
    /// DNS record at it, then removes the old address (with
    /// `promote_secondaries`, so the new one stays).
    pub fn move_site(&mut self, site: usize, to: Ipv4Addr) -> Result<()> {
        let index = site;
        let router = self.site(index).router.clone();
        let old = self.records[index];
        router.run(
            "sysctl",
            &["-q", "-w", "net.ipv4.conf.eth0.promote_secondaries=1"],
        )?;
        router.add_addr(IpAddr::V4(to), 16)?;
        self.dns.replace_record(
            "plain.lab.",
            &record_line(index, old),
            &record_line(index, to),
        )?;
        self.records[index] = to;
        ip(&[
            "-n",
            &router.ns,
            "addr",
            "del",
            &format!("{old}/16"),
            "dev",
            "eth0",
        ])?;
        Ok(())
    }

    /// Starts a one-shot iperf3 server in the site's LAN host and waits
    /// until it listens.
    pub fn iperf3_server(&self, site: usize) -> Result<Daemon> {
        let lan = &self.site(site).lan;
        let bind = lan_host(site).to_string();
        let port = IPERF_PORT.to_string();
        let label = format!("iperf3-server-{}", letter(site));
        let daemon = lan.spawn(&label, "iperf3", &["-s", "-1", "-B", &bind, "-p", &port])?;
        wait_for_port(lan, Proto::Tcp, IPERF_PORT, Duration::from_secs(5))?;
        Ok(daemon)
    }

    /// The arguments of an iperf3 client in `from`'s LAN sending to `to`'s
    /// for `seconds`, JSON into `logfile`, one interval a second.
    fn iperf3_client_args(
        &self,
        to: usize,
        seconds: u32,
        bitrate: Option<&str>,
        logfile: &Path,
    ) -> Vec<String> {
        let mut args: Vec<String> = [
            "-c",
            &lan_host(to).to_string(),
            "-p",
            &IPERF_PORT.to_string(),
            "-t",
            &seconds.to_string(),
            "-i",
            "1",
            "-J",
            "--connect-timeout",
            "3000",
            "--logfile",
            &logfile.to_string_lossy(),
        ]
        .iter()
        .map(ToString::to_string)
        .collect();
        if let Some(rate) = bitrate {
            args.extend(["-b".to_string(), rate.to_string()]);
        }
        args
    }

    /// Runs an iperf3 client from `from`'s LAN to `to`'s (where
    /// [`WgLab::iperf3_server`] runs) for `seconds`, bounded, and returns
    /// its report.
    pub fn iperf3(&self, from: usize, to: usize, seconds: u32) -> Result<IperfReport> {
        let logfile = self
            .dir()
            .join(format!("iperf3-{}{}.json", letter(from), letter(to)));
        let _ = std::fs::remove_file(&logfile);
        let bound = (seconds + 15).to_string();
        let mut args = vec![bound, "iperf3".to_string()];
        args.extend(self.iperf3_client_args(to, seconds, None, &logfile));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = self.site(from).lan.exec("timeout", &args)?;
        let text = std::fs::read_to_string(&logfile).unwrap_or_default();
        let report = IperfReport::parse(&text).with_context(|| {
            format!(
                "iperf3 ({}) wrote:\n{text}\nstderr: {}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            )
        })?;
        Ok(report)
    }

    /// Starts an iperf3 client in the background (see [`WgLab::iperf3`]),
    /// at `bitrate` (e.g. "100M") when given.
    pub fn spawn_iperf3(
        &self,
        from: usize,
        to: usize,
        seconds: u32,
        bitrate: Option<&str>,
    ) -> Result<IperfRun> {
        let label = format!("iperf3-client-{}{}", letter(from), letter(to));
        let logfile = self.dir().join(format!("{label}.json"));
        let _ = std::fs::remove_file(&logfile);
        let args = self.iperf3_client_args(to, seconds, bitrate, &logfile);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let daemon = self.site(from).lan.spawn(&label, "iperf3", &args)?;
        Ok(IperfRun {
            daemon,
            logfile,
            started: Instant::now(),
            seconds,
        })
    }
}

impl WgLab {
    /// Brings `tunnel` up on the site's router by hand, without routerd:
    /// wireguard-go, then `wg set`, `ip addr`, `ip route` (in the main
    /// table). Endpoints naming a site (`site-b.plain.lab:PORT`) are set
    /// to its router's address, since `wg` would ask the host's resolver.
    /// For the lab's own checks; the daemon is wireguard-go.
    pub fn start_by_hand(&self, site: usize, tunnel: &TunnelSpec) -> Result<Daemon> {
        let router = &self.site(site).router;
        let iface = tunnel.interface.as_str();
        let label = format!("wireguard-go-{}", letter(site));
        let daemon = router.spawn_with_env(
            &label,
            "wireguard-go",
            &["-f", iface],
            &[("LOG_LEVEL", "error")],
        )?;
        let socket = Path::new(WG_SOCKET_DIR).join(format!("{iface}.sock"));
        crate::wait_until(
            Duration::from_secs(5),
            &format!("{}", socket.display()),
            || socket.exists().then_some(()),
        )?;
        let mut args: Vec<String> = vec![
            "set".into(),
            iface.into(),
            "private-key".into(),
            tunnel.private_key_file.to_string_lossy().into_owned(),
        ];
        if let Some(port) = tunnel.listen_port {
            args.extend(["listen-port".into(), port.to_string()]);
        }
        for peer in &tunnel.peers {
            args.extend(["peer".into(), peer.public_key.clone()]);
            if let Some(endpoint) = &peer.endpoint {
                let mut endpoint = endpoint.clone();
                for other in 0..SITES {
                    let name = format!("{}:", dns_name(other));
                    if let Some(port) = endpoint.strip_prefix(&name) {
                        endpoint = format!("{}:{port}", router_v4(other));
                    }
                }
                args.extend(["endpoint".into(), endpoint]);
            }
            args.extend(["allowed-ips".into(), peer.allowed_ips.join(",")]);
            if let Some(keepalive) = peer.persistent_keepalive {
                args.extend(["persistent-keepalive".into(), keepalive.to_string()]);
            }
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        router.run("wg", &args)?;
        for addr in &tunnel.addresses {
            ip(&["-n", &router.ns, "addr", "add", addr, "dev", iface])?;
        }
        let mtu = tunnel.mtu.unwrap_or(MTU).to_string();
        ip(&["-n", &router.ns, "link", "set", iface, "mtu", &mtu, "up"])?;
        for peer in &tunnel.peers {
            for net in &peer.allowed_ips {
                ip(&["-n", &router.ns, "route", "replace", net, "dev", iface])?;
            }
        }
        Ok(daemon)
    }
}

impl Drop for WgLab {
    /// Removes control sockets the lab's tunnels left in
    /// [`WG_SOCKET_DIR`] (a wireguard-go that was killed leaves its own).
    fn drop(&mut self) {
        for site in &self.sites {
            let socket = Path::new(WG_SOCKET_DIR).join(format!("{}.sock", site.interface));
            let _ = std::fs::remove_file(socket);
        }
    }
}

/// The zone line of the site's A record, pointing at `addr`.
fn record_line(site: usize, addr: Ipv4Addr) -> String {
    format!("{} {DNS_TTL} IN A {addr}", site_name(site))
}

/// Adds site `index`: the router on the switch with forwarding on, and the
/// LAN host behind it.
fn add_site(lab: &Lab, index: usize, id: &str) -> Result<Site> {
    let name = site_name(index);
    let interface = format!("wg{id}{}", letter(index));
    if interface.len() > 15 {
        bail!("interface name {interface} is longer than 15 bytes");
    }
    let router = lab.add_host(&name, router_v4(index))?;
    sysctl(&router, &["net.ipv4.ip_forward=1"])?;
    let lan_name = format!("lan-{}", letter(index));
    // The switch link is deleted at once; the placeholder address differs
    // per site all the same.
    let mut lan = lab.add_host(&lan_name, Ipv4Addr::new(10, 53, 200, number(index)))?;
    ip(&["-n", &lan.ns, "link", "del", "eth0"])?;
    ip(&[
        "-n", &router.ns, "link", "add", "lan0", "type", "veth", "peer", "name", "eth0", "netns",
        &lan.ns,
    ])?;
    ip(&[
        "-n",
        &router.ns,
        "addr",
        "add",
        &format!("{}/24", lan_router(index)),
        "dev",
        "lan0",
    ])?;
    ip(&["-n", &router.ns, "link", "set", "lan0", "up"])?;
    ip(&[
        "-n",
        &lan.ns,
        "addr",
        "add",
        &format!("{}/24", lan_host(index)),
        "dev",
        "eth0",
    ])?;
    ip(&["-n", &lan.ns, "link", "set", "eth0", "up"])?;
    lan.v4 = lan_host(index);
    lan.v6 = std::net::Ipv6Addr::UNSPECIFIED;
    lan.add_route("default", IpAddr::V4(lan_router(index)))?;
    Ok(Site {
        index,
        name,
        router,
        lan,
        interface,
        key: None,
    })
}

// ---------------------------------------------------------------------------
// Keys, through routerctl.
// ---------------------------------------------------------------------------

/// Runs `routerctl ARGS` (no namespace needed: key commands touch no
/// daemon) with `stdin`, bounded to 10 s; returns stdout, an error with
/// stderr unless it exits 0.
fn routerctl_offline(args: &[&str], stdin: Option<&str>) -> Result<String> {
    let ctl = routerctl_binary()?;
    run_with_stdin(&ctl.to_string_lossy(), args, stdin)
}

/// Runs `program ARGS` here (not in a namespace) with `stdin`, bounded to
/// 10 s; returns stdout, an error with stderr unless it exits 0.
pub fn run_with_stdin(program: &str, args: &[&str], stdin: Option<&str>) -> Result<String> {
    let program = if program.contains('/') {
        PathBuf::from(program)
    } else {
        crate::require::tool(program)?
    };
    let mut cmd = Command::new("timeout");
    cmd.arg("10").arg(&program).args(args);
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    });
    let mut child = cmd
        .spawn()
        .with_context(|| format!("running {} {args:?}", program.display()))?;
    if let Some(input) = stdin
        && let Some(mut pipe) = child.stdin.take()
    {
        pipe.write_all(input.as_bytes())
            .with_context(|| format!("writing {}'s stdin", program.display()))?;
    }
    let out = child.wait_with_output()?;
    if !out.status.success() {
        bail!(
            "{} {args:?} failed ({}): {}{}",
            program.display(),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// A key pair from `wg genkey` and `wg pubkey` (private, public).
pub fn wg_keypair() -> Result<(String, String)> {
    let private = run_with_stdin("wg", &["genkey"], None)?.trim().to_string();
    let public = run_with_stdin("wg", &["pubkey"], Some(&format!("{private}\n")))?
        .trim()
        .to_string();
    check_key_shape(&private).context("wg genkey")?;
    check_key_shape(&public).context("wg pubkey")?;
    Ok((private, public))
}

/// `routerctl wg genkey`: a new private key, base64 (checked for shape).
pub fn genkey() -> Result<String> {
    let key = routerctl_offline(&["wg", "genkey"], None)?
        .trim()
        .to_string();
    check_key_shape(&key).context("routerctl wg genkey")?;
    Ok(key)
}

/// `routerctl wg pubkey` with `private` (plus a newline) on stdin.
pub fn pubkey(private: &str) -> Result<String> {
    let key = routerctl_offline(&["wg", "pubkey"], Some(&format!("{private}\n")))?
        .trim()
        .to_string();
    check_key_shape(&key).context("routerctl wg pubkey")?;
    Ok(key)
}

/// A WireGuard key as `wg genkey` prints it: 44 characters of base64
/// ending in '=' (32 bytes).
pub fn check_key_shape(key: &str) -> Result<()> {
    let base64 = |c: char| c.is_ascii_alphanumeric() || c == '+' || c == '/';
    let ok = key.len() == 44 && key.ends_with('=') && key.chars().take(43).all(base64);
    if !ok {
        bail!("{key:?} is not a base64 WireGuard key (44 characters ending in '=')");
    }
    Ok(())
}

/// Writes `content` (plus a newline) to a new file with mode 0600.
pub fn write_secret(path: &Path, content: &str) -> Result<()> {
    let _ = std::fs::remove_file(path);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    writeln!(file, "{content}").with_context(|| format!("writing {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(())
}

// ---------------------------------------------------------------------------
// `wg show IFACE dump`.
// ---------------------------------------------------------------------------

/// What `wg show IFACE dump` says about the interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WgDump {
    /// The interface's public key.
    pub public_key: String,
    /// Its listen port.
    pub listen_port: u16,
    /// Its peers, in `wg`'s order.
    pub peers: Vec<DumpPeer>,
}

/// One peer line of `wg show IFACE dump`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DumpPeer {
    /// Public key, base64.
    pub public_key: String,
    /// True when a preshared key is set.
    pub has_preshared_key: bool,
    /// `ip:port`, `None` for "(none)".
    pub endpoint: Option<String>,
    /// Allowed IPs, in `wg`'s order.
    pub allowed_ips: Vec<String>,
    /// Unix time of the latest handshake; 0 for never.
    pub latest_handshake: u64,
    /// Bytes received.
    pub rx_bytes: u64,
    /// Bytes sent.
    pub tx_bytes: u64,
    /// Keepalive interval, `None` for "off".
    pub persistent_keepalive: Option<u64>,
}

impl WgDump {
    /// Parses the output of `wg show IFACE dump` (one interface: its line
    /// has 4 fields, each peer's 8, tab-separated).
    pub fn parse(text: &str) -> Result<WgDump> {
        let mut lines = text.lines().filter(|l| !l.trim().is_empty());
        let first = lines.next().context("empty dump")?;
        let fields: Vec<&str> = first.split('\t').collect();
        if fields.len() != 4 {
            bail!("interface line has {} fields: {first:?}", fields.len());
        }
        let mut dump = WgDump {
            public_key: fields[1].to_string(),
            listen_port: fields[2].parse().context("listen port")?,
            peers: Vec::new(),
        };
        for line in lines {
            let f: Vec<&str> = line.split('\t').collect();
            if f.len() != 8 {
                bail!("peer line has {} fields: {line:?}", f.len());
            }
            let none = |s: &str| (s != "(none)" && !s.is_empty()).then(|| s.to_string());
            dump.peers.push(DumpPeer {
                public_key: f[0].to_string(),
                has_preshared_key: none(f[1]).is_some(),
                endpoint: none(f[2]),
                allowed_ips: none(f[3])
                    .map(|s| s.split(',').map(str::to_string).collect())
                    .unwrap_or_default(),
                latest_handshake: f[4].parse().context("latest handshake")?,
                rx_bytes: f[5].parse().context("rx bytes")?,
                tx_bytes: f[6].parse().context("tx bytes")?,
                persistent_keepalive: match f[7] {
                    "off" => None,
                    n => Some(n.parse().context("persistent keepalive")?),
                },
            });
        }
        Ok(dump)
    }

    /// The peer with `public_key`.
    pub fn peer(&self, public_key: &str) -> Option<&DumpPeer> {
        self.peers.iter().find(|p| p.public_key == public_key)
    }
}

// ---------------------------------------------------------------------------
// `routerctl wg --json`.
// ---------------------------------------------------------------------------

/// `routerctl wg --json` (GET /v1/wireguard).
#[derive(Debug, Clone, PartialEq)]
pub struct WgStatus {
    /// Every configured tunnel.
    pub tunnels: Vec<TunnelStatus>,
}

/// One tunnel of [`WgStatus`].
#[derive(Debug, Clone, PartialEq)]
pub struct TunnelStatus {
    /// `interface`.
    pub interface: String,
    /// `backend`: "kernel" or "userspace".
    pub backend: String,
    /// `public_key`.
    pub public_key: String,
    /// `listen_port`.
    pub listen_port: Option<u64>,
    /// `addresses`.
    pub addresses: Vec<String>,
    /// `mtu`.
    pub mtu: Option<u64>,
    /// `routes`.
    pub routes: String,
    /// `error`: why the tunnel is not up, `None` when it is.
    pub error: Option<String>,
    /// `peers`.
    pub peers: Vec<PeerStatus>,
}

/// One peer of a [`TunnelStatus`].
#[derive(Debug, Clone, PartialEq)]
pub struct PeerStatus {
    /// `name`.
    pub name: String,
    /// `public_key`.
    pub public_key: String,
    /// `configured_endpoint`: as in the config.
    pub configured_endpoint: Option<String>,
    /// `endpoint`: what the device has now.
    pub endpoint: Option<String>,
    /// `allowed_ips`.
    pub allowed_ips: Vec<String>,
    /// `latest_handshake_secs_ago`, `None` when never.
    pub latest_handshake_secs_ago: Option<u64>,
    /// `rx_bytes`.
    pub rx_bytes: u64,
    /// `tx_bytes`.
    pub tx_bytes: u64,
    /// `persistent_keepalive`.
    pub persistent_keepalive: Option<u64>,
    /// `verdict`: "up", "stale" or "never".
    pub verdict: String,
}

impl WgStatus {
    /// Parses the JSON; every documented key must be present.
    pub fn parse(text: &str) -> Result<WgStatus> {
        let v = crate::json::parse(text)?;
        let tunnels = array(&v, "tunnels")?
            .iter()
            .map(TunnelStatus::from_json)
            .collect::<Result<Vec<_>>>()?;
        Ok(WgStatus { tunnels })
    }

    /// The tunnel on `interface`.
    pub fn tunnel(&self, interface: &str) -> Result<&TunnelStatus> {
        self.tunnels
            .iter()
            .find(|t| t.interface == interface)
            .with_context(|| format!("no tunnel {interface} in the status: {self:#?}"))
    }
}

impl TunnelStatus {
    fn from_json(v: &Value) -> Result<TunnelStatus> {
        let interface = string(v, "interface")?;
        let parse = || -> Result<TunnelStatus> {
            Ok(TunnelStatus {
                interface: interface.clone(),
                backend: string(v, "backend")?,
                public_key: string(v, "public_key")?,
                listen_port: opt_u64(v, "listen_port")?,
                addresses: strings(v, "addresses")?,
                mtu: opt_u64(v, "mtu")?,
                routes: string(v, "routes")?,
                error: opt_string(v, "error")?,
                peers: array(v, "peers")?
                    .iter()
                    .map(PeerStatus::from_json)
                    .collect::<Result<Vec<_>>>()?,
            })
        };
        parse().with_context(|| format!("tunnel {interface}"))
    }

    /// The peer called `name`.
    pub fn peer(&self, name: &str) -> Result<&PeerStatus> {
        self.peers
            .iter()
            .find(|p| p.name == name)
            .with_context(|| format!("no peer {name} on {}: {self:#?}", self.interface))
    }
}

impl PeerStatus {
    fn from_json(v: &Value) -> Result<PeerStatus> {
        let name = string(v, "name")?;
        let parse = || -> Result<PeerStatus> {
            Ok(PeerStatus {
                name: name.clone(),
                public_key: string(v, "public_key")?,
                configured_endpoint: opt_string(v, "configured_endpoint")?,
                endpoint: opt_string(v, "endpoint")?,
                allowed_ips: strings(v, "allowed_ips")?,
                latest_handshake_secs_ago: opt_u64(v, "latest_handshake_secs_ago")?,
                rx_bytes: opt_u64(v, "rx_bytes")?.context("rx_bytes is null")?,
                tx_bytes: opt_u64(v, "tx_bytes")?.context("tx_bytes is null")?,
                persistent_keepalive: opt_u64(v, "persistent_keepalive")?,
                verdict: string(v, "verdict")?,
            })
        };
        parse().with_context(|| format!("peer {name}"))
    }
}

/// `routerctl wg --json` of `routerd`, parsed.
pub fn wg_status(routerd: &Routerd) -> Result<WgStatus> {
    let out = routerd.routerctl(&["wg", "--json"])?;
    if !out.success {
        bail!("routerctl wg --json failed: {out}");
    }
    WgStatus::parse(&out.stdout)
        .with_context(|| format!("routerctl wg --json printed:\n{}", out.stdout))
}

fn field<'a>(v: &'a Value, key: &str) -> Result<&'a Value> {
    match v {
        Value::Object(fields) => fields
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
            .with_context(|| format!("no key {key:?}")),
        _ => bail!("not an object where {key:?} should be"),
    }
}

fn string(v: &Value, key: &str) -> Result<String> {
    field(v, key)?
        .as_str()
        .map(str::to_string)
        .with_context(|| format!("{key:?} is not a string"))
}

fn opt_string(v: &Value, key: &str) -> Result<Option<String>> {
    let f = field(v, key)?;
    if f.is_null() {
        return Ok(None);
    }
    f.as_str()
        .map(|s| Some(s.to_string()))
        .with_context(|| format!("{key:?} is neither a string nor null"))
}

fn opt_u64(v: &Value, key: &str) -> Result<Option<u64>> {
    let f = field(v, key)?;
    if f.is_null() {
        return Ok(None);
    }
    f.as_u64()
        .map(Some)
        .with_context(|| format!("{key:?} is neither a count nor null"))
}

fn array<'a>(v: &'a Value, key: &str) -> Result<&'a [Value]> {
    field(v, key)?
        .as_array()
        .with_context(|| format!("{key:?} is not an array"))
}

fn strings(v: &Value, key: &str) -> Result<Vec<String>> {
    array(v, key)?
        .iter()
        .map(|s| {
            s.as_str()
                .map(str::to_string)
                .with_context(|| format!("{key:?} holds a non-string"))
        })
        .collect()
}

// ---------------------------------------------------------------------------
// iperf3.
// ---------------------------------------------------------------------------

/// What an iperf3 client's JSON report (`-J`) says.
#[derive(Debug, Clone, PartialEq)]
pub struct IperfReport {
    /// iperf3's `error`, when it failed.
    pub error: Option<String>,
    /// Bytes the client sent (`end.sum_sent.bytes`).
    pub sent_bytes: u64,
    /// Bytes the server received (`end.sum_received.bytes`).
    pub received_bytes: u64,
    /// The server's receive rate (`end.sum_received.bits_per_second`).
    pub received_bits_per_second: f64,
    /// TCP retransmissions at the sender, when reported.
    pub retransmits: Option<u64>,
    /// Each interval's (seconds, bytes sent).
    pub intervals: Vec<(f64, u64)>,
}

impl IperfReport {
    /// Parses iperf3's `-J` output.
    pub fn parse(text: &str) -> Result<IperfReport> {
        let v = crate::json::parse(text)?;
        let num = |path: &str| v.get(path).and_then(Value::as_f64);
        let intervals = v
            .get("intervals")
            .and_then(Value::as_array)
            .unwrap_or_default()
            .iter()
            .map(|i| {
                let seconds = i.get("sum.seconds").and_then(Value::as_f64).unwrap_or(0.0);
                let bytes = i.get("sum.bytes").and_then(Value::as_u64).unwrap_or(0);
                (seconds, bytes)
            })
            .collect();
        Ok(IperfReport {
            error: v.get("error").and_then(Value::as_str).map(str::to_string),
            sent_bytes: v
                .get("end.sum_sent.bytes")
                .and_then(Value::as_u64)
                .unwrap_or(0),
            received_bytes: v
                .get("end.sum_received.bytes")
                .and_then(Value::as_u64)
                .unwrap_or(0),
            received_bits_per_second: num("end.sum_received.bits_per_second").unwrap_or(0.0),
            retransmits: v.get("end.sum_sent.retransmits").and_then(Value::as_u64),
            intervals,
        })
    }

    /// The receive rate in Mbit/s.
    pub fn mbit_per_second(&self) -> f64 {
        self.received_bits_per_second / 1e6
    }
}

/// An iperf3 client running in the background ([`WgLab::spawn_iperf3`]).
#[derive(Debug)]
pub struct IperfRun {
    /// The client process.
    pub daemon: Daemon,
    /// Its JSON report file.
    pub logfile: PathBuf,
    started: Instant,
    seconds: u32,
}

impl IperfRun {
    /// Waits for the client to exit (at most its duration plus 15 s) and
    /// returns its report.
    pub fn wait(mut self) -> Result<IperfReport> {
        let bound = Duration::from_secs(u64::from(self.seconds) + 15);
        let remaining = bound.saturating_sub(self.started.elapsed());
        crate::wait_until(remaining, "the iperf3 client to finish", || {
            (!self.daemon.is_running()).then_some(())
        })?;
        let text = std::fs::read_to_string(&self.logfile)
            .with_context(|| format!("reading {}", self.logfile.display()))?;
        IperfReport::parse(&text).with_context(|| {
            format!(
                "iperf3 wrote:\n{text}\nits output:\n{}",
                self.daemon.log_tail(20)
            )
        })
    }
}

/// Seconds since the epoch, as `wg`'s handshake times count.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // test code
mod tests {
    use super::*;

    #[test]
    fn parses_a_wg_dump() {
        let text = "cHJpdg==\tcHViA=\t51821\toff\n\
                    a2V5Qg==\t(none)\t10.53.0.72:51822\t10.62.0.2/32,10.61.2.0/24\t1700000000\t1234\t5678\t1\n\
                    a2V5Qw==\t(none)\t(none)\t(none)\t0\t0\t0\toff\n";
        let dump = WgDump::parse(text).unwrap();
        assert_eq!(dump.listen_port, 51821);
        assert_eq!(dump.peers.len(), 2);
        let b = dump.peer("a2V5Qg==").unwrap();
        assert_eq!(b.endpoint.as_deref(), Some("10.53.0.72:51822"));
        assert_eq!(b.allowed_ips, ["10.62.0.2/32", "10.61.2.0/24"]);
        assert_eq!((b.rx_bytes, b.tx_bytes), (1234, 5678));
        assert_eq!(b.persistent_keepalive, Some(1));
        let c = dump.peer("a2V5Qw==").unwrap();
        assert_eq!(c.endpoint, None);
        assert!(c.allowed_ips.is_empty());
        assert_eq!(c.persistent_keepalive, None);
    }

    #[test]
    fn parses_the_status_json() {
        let text = r#"{"tunnels":[{"interface":"wg1x0a","backend":"userspace","public_key":"k","listen_port":51820,"addresses":["10.62.0.1/24"],"mtu":1420,"routes":"table","error":null,
          "peers":[{"name":"site-b","public_key":"b","configured_endpoint":"site-b.plain.lab:51820","endpoint":"10.53.0.72:51820","allowed_ips":["10.62.0.2/32","10.61.2.0/24"],
                    "latest_handshake_secs_ago":3,"rx_bytes":123,"tx_bytes":456,"persistent_keepalive":1,"verdict":"up"}]}]}"#;
        let status = WgStatus::parse(text).unwrap();
        let t = status.tunnel("wg1x0a").unwrap();
        assert_eq!(t.error, None);
        let p = t.peer("site-b").unwrap();
        assert_eq!(p.latest_handshake_secs_ago, Some(3));
        assert_eq!(p.verdict, "up");
        // A missing key is an error, not a default.
        assert!(WgStatus::parse(r#"{"tunnels":[{"interface":"x"}]}"#).is_err());
    }

    #[test]
    fn key_shape() {
        assert!(check_key_shape("yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=").is_ok());
        assert!(check_key_shape("short=").is_err());
        assert!(check_key_shape(&format!("{}é=", "a".repeat(41))).is_err());
    }

    #[test]
    fn writes_the_wireguard_section() {
        let tunnel = TunnelSpec {
            interface: "wg1a".to_string(),
            private_key_file: PathBuf::from("/k"),
            listen_port: Some(51821),
            addresses: vec!["10.62.0.1/24".to_string()],
            mtu: Some(1420),
            routes: Some("table".to_string()),
            stale_after: Some("4s".to_string()),
            peers: vec![PeerSpec {
                name: "site-b".to_string(),
                public_key: "b".to_string(),
                endpoint: Some("site-b.plain.lab:51822".to_string()),
                allowed_ips: vec!["10.61.2.0/24".to_string()],
                persistent_keepalive: Some(1),
                preshared_key_file: None,
            }],
        };
        let text = wireguard_toml(&[tunnel]);
        assert!(text.contains("[[wireguard.tunnels.peers]]\nname = \"site-b\""));
        assert!(text.contains("allowed_ips = [\"10.61.2.0/24\"]"));
        assert!(text.contains("route_table = 200"));
    }
}
