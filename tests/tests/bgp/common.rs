//! The BGP lab: routerd on "router" (10.53.0.53, AS 65001), a peer host
//! "bird" (10.53.0.60, AS 65002) running BIRD or the raw peer, a "client"
//! for DNS checks, and the lab DNS hierarchy (routerd resolves over it).
//! Plus routerd's `[bgp]` TOML, `routerctl bgp --json` and the kernel's
//! `proto bgp` routes in routerd's namespace.

use std::fmt::Write as _;
use std::io::Write as _;
use std::net::{IpAddr, Ipv4Addr};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use e2e::bird::{BIRD_ASN, BIRD_TOOLS, Bird, BirdConfig};
use e2e::dns_hierarchy::HIERARCHY_TOOLS;
use e2e::json::Value;
use e2e::{DnsHierarchy, Host, Lab, Routerd, RouterdConfig, wait_until};

/// routerd's AS.
pub const ROUTERD_ASN: u32 = 65001;
/// The peer host's address.
pub const PEER_V4: Ipv4Addr = Ipv4Addr::new(10, 53, 0, 60);
/// routerd's hold time in the lab configs (BIRD's too).
pub const HOLD_TIME: u16 = 9;
/// How long a session gets to come up.
pub const UP: Duration = Duration::from_secs(25);
/// How long a route change gets to reach the other side's table.
pub const CONVERGE: Duration = Duration::from_secs(10);

/// Tools the routerd tests need.
pub fn tools() -> Vec<&'static str> {
    [
        HIERARCHY_TOOLS,
        &["timeout", "ss"],
        BIRD_TOOLS,
        &["routerd", "routerctl"],
    ]
    .concat()
}

/// Tools the BIRD-only lab checks need.
pub fn bird_tools() -> Vec<&'static str> {
    [&["timeout", "ss"], BIRD_TOOLS].concat()
}

/// Writes to the real stderr, so the line shows even when the harness
/// captures the output of a passing test.
pub fn note(text: &str) {
    let _ = writeln!(std::io::stderr(), "bgp: {text}");
}

/// The hosts; the lab is dropped (namespaces deleted) last.
#[derive(Debug)]
pub struct BgpLab {
    pub dns: DnsHierarchy,
    pub router: Host,
    pub peer: Host,
    pub client: Host,
    pub lab: Lab,
}

impl BgpLab {
    pub fn new() -> Result<BgpLab> {
        let lab = Lab::new()?;
        let dns = DnsHierarchy::start(&lab)?;
        let router = lab.add_host("router", e2e::addr::ROUTER)?;
        let peer = lab.add_host("bird", PEER_V4)?;
        let client = lab.add_host("client", e2e::addr::CLIENT)?;
        Ok(BgpLab {
            dns,
            router,
            peer,
            client,
            lab,
        })
    }

    pub fn dir(&self) -> &Path {
        self.lab.dir()
    }

    /// BIRD on the peer host toward routerd.
    pub fn bird_config(&self) -> BirdConfig {
        BirdConfig::new(&self.peer, IpAddr::V4(self.router.v4), ROUTERD_ASN)
    }

    /// Starts routerd (recursive DNS over the lab) with `bgp`.
    pub fn start_routerd(&self, bgp: &BgpSpec) -> Result<Routerd> {
        let mut config = RouterdConfig::recursive(&self.dns);
        config.workers = 1;
        config.extra_toml = bgp.to_toml();
        config.start(&self.router)
    }

    /// Writes `password` to `<lab dir>/NAME` with mode 0600.
    pub fn secret_file(&self, name: &str, password: &str) -> Result<PathBuf> {
        let path = self.dir().join(name);
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .mode(0o600)
            .open(&path)
            .with_context(|| format!("creating {}", path.display()))?;
        writeln!(f, "{password}")?;
        Ok(path)
    }
}

/// `[[bgp.peers]]`.
#[derive(Debug, Clone)]
pub struct PeerSpec {
    pub name: String,
    pub address: IpAddr,
    pub remote_asn: u32,
    pub passive: bool,
    pub md5_password_file: Option<PathBuf>,
    /// `gtsm = true`.
    pub gtsm: bool,
    pub max_prefixes: Option<u32>,
    /// Import prefix list; `None`: no import policy (RFC 8212: nothing).
    pub import: Option<Vec<String>>,
    /// Export prefix list.
    pub export: Option<Vec<String>>,
}

impl PeerSpec {
    /// BIRD as a peer: import 10.70.0.0/16 le 24 and fd70::/16 le 64,
    /// export 10.61.0.0/16 le 24 and fd61::/16 le 64.
    pub fn bird() -> PeerSpec {
        PeerSpec {
            name: "bird".to_string(),
            address: IpAddr::V4(PEER_V4),
            remote_asn: BIRD_ASN,
            passive: false,
            md5_password_file: None,
            gtsm: false,
            max_prefixes: None,
            import: Some(vec![
                "permit 10.70.0.0/16 le 24".to_string(),
                "permit fd70::/16 le 64".to_string(),
            ]),
            export: Some(vec![
                "permit 10.61.0.0/16 le 24".to_string(),
                "permit fd61::/16 le 64".to_string(),
            ]),
        }
    }

    pub fn with(mut self, change: impl FnOnce(&mut PeerSpec)) -> Self {
        change(&mut self);
        self
    }
}

/// `[bgp]`.
#[derive(Debug, Clone)]
pub struct BgpSpec {
    pub asn: u32,
    pub router_id: Ipv4Addr,
    pub listen: Vec<String>,
    pub hold_time: u16,
    pub connect_retry: String,
    pub networks: Vec<String>,
    pub peers: Vec<PeerSpec>,
}

impl BgpSpec {
    /// AS 65001 on 10.53.0.53, hold 9, retry 2 s, originating
    /// 10.61.1.0/24 and fd61:1::/64, with `peers`.
    pub fn new(peers: Vec<PeerSpec>) -> BgpSpec {
        BgpSpec {
            asn: ROUTERD_ASN,
            router_id: e2e::addr::ROUTER,
            listen: vec![e2e::addr::ROUTER.to_string()],
            hold_time: HOLD_TIME,
            connect_retry: "2s".to_string(),
            networks: vec!["10.61.1.0/24".to_string(), "fd61:1::/64".to_string()],
            peers,
        }
    }

    pub fn with(mut self, change: impl FnOnce(&mut BgpSpec)) -> Self {
        change(&mut self);
        self
    }

    pub fn to_toml(&self) -> String {
        let mut t = String::new();
        let _ = writeln!(t, "[bgp]");
        let _ = writeln!(t, "asn = {}", self.asn);
        let _ = writeln!(t, "router_id = {}", quote(&self.router_id.to_string()));
        let _ = writeln!(t, "listen = {}", list(&self.listen));
        let _ = writeln!(t, "hold_time = {}", self.hold_time);
        let _ = writeln!(t, "connect_retry = {}", quote(&self.connect_retry));
        let _ = writeln!(t, "networks = {}", list(&self.networks));
        for p in &self.peers {
            let _ = writeln!(t, "\n[[bgp.peers]]");
            let _ = writeln!(t, "name = {}", quote(&p.name));
            let _ = writeln!(t, "address = {}", quote(&p.address.to_string()));
            let _ = writeln!(t, "remote_asn = {}", p.remote_asn);
            let _ = writeln!(t, "passive = {}", p.passive);
            if p.gtsm {
                let _ = writeln!(t, "gtsm = true");
            }
            if let Some(file) = &p.md5_password_file {
                let _ = writeln!(t, "md5_password_file = {}", quote(&file.to_string_lossy()));
            }
            if let Some(max) = p.max_prefixes {
                let _ = writeln!(t, "max_prefixes = {max}");
            }
            if let Some(prefixes) = &p.import {
                let _ = writeln!(t, "import = {{ prefixes = {} }}", list(prefixes));
            }
            if let Some(prefixes) = &p.export {
                let _ = writeln!(t, "export = {{ prefixes = {} }}", list(prefixes));
            }
        }
        t
    }
}

fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

fn list(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| quote(s)).collect();
    format!("[{}]", quoted.join(", "))
}

/// One peer of `routerctl bgp --json`.
#[derive(Debug, Clone)]
pub struct PeerStatus {
    pub name: String,
    pub address: String,
    pub state: String,
    pub last_error: Option<String>,
    pub prefixes_received: u64,
    pub prefixes_accepted: u64,
    pub prefixes_advertised: u64,
}

/// `routerctl bgp --json`, parsed.
#[derive(Debug, Clone)]
pub struct BgpStatus {
    pub asn: u64,
    pub router_id: String,
    pub peers: Vec<PeerStatus>,
    pub raw: String,
}

impl BgpStatus {
    pub fn peer(&self, name: &str) -> Result<&PeerStatus> {
        self.peers
            .iter()
            .find(|p| p.name == name)
            .with_context(|| format!("no peer {name} in routerctl bgp --json:\n{}", self.raw))
    }
}

/// `routerctl bgp --json`.
pub fn bgp_status(routerd: &Routerd) -> Result<BgpStatus> {
    let out = routerd.routerctl(&["bgp", "--json"])?;
    if !out.success {
        bail!("routerctl bgp --json failed: {out}");
    }
    let v = e2e::json::parse(&out.stdout)
        .with_context(|| format!("routerctl bgp --json printed:\n{}", out.stdout))?;
    let s = |v: &Value, key: &str| v.get(key).and_then(Value::as_str).map(str::to_string);
    let n = |v: &Value, key: &str| v.get(key).and_then(Value::as_u64);
    let mut peers = Vec::new();
    for p in v.get("peers").and_then(Value::as_array).unwrap_or_default() {
        peers.push(PeerStatus {
            name: s(p, "name").context("peer without name")?,
            address: s(p, "address").unwrap_or_default(),
            state: s(p, "state").context("peer without state")?,
            last_error: s(p, "last_error"),
            prefixes_received: n(p, "prefixes_received").unwrap_or(0),
            prefixes_accepted: n(p, "prefixes_accepted").unwrap_or(0),
            prefixes_advertised: n(p, "prefixes_advertised").unwrap_or(0),
        });
    }
    Ok(BgpStatus {
        asn: n(&v, "asn").unwrap_or(0),
        router_id: s(&v, "router_id").unwrap_or_default(),
        peers,
        raw: out.stdout,
    })
}

/// Waits until routerd's peer `name` satisfies `ok`; returns its status.
pub fn wait_peer(
    routerd: &Routerd,
    name: &str,
    what: &str,
    deadline: Duration,
    ok: impl Fn(&PeerStatus) -> bool,
) -> Result<PeerStatus> {
    let mut last = String::new();
    wait_until(
        deadline,
        &format!("routerd's peer {name} {what}"),
        || match bgp_status(routerd) {
            Ok(status) => {
                last.clone_from(&status.raw);
                status.peer(name).ok().filter(|p| ok(p)).cloned()
            }
            Err(e) => {
                last = format!("{e:#}");
                None
            }
        },
    )
    .with_context(|| format!("last routerctl bgp --json:\n{last}"))
}

/// Waits until routerd's peer `name` is Established.
pub fn wait_peer_established(routerd: &Routerd, name: &str) -> Result<PeerStatus> {
    wait_peer(routerd, name, "to be Established", UP, |p| {
        p.state == "Established"
    })
}

/// One candidate of `routerctl bgp routes --json`.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub peer: Option<String>,
    pub next_hop: String,
    pub as_path: String,
    pub standing: String,
}

/// `routerctl bgp routes [PREFIX] --json`: prefix and its candidates.
pub fn bgp_routes(
    routerd: &Routerd,
    prefix: Option<&str>,
) -> Result<Vec<(String, Vec<Candidate>)>> {
    let mut args = vec!["bgp", "routes"];
    args.extend(prefix);
    args.push("--json");
    let out = routerd.routerctl(&args)?;
    if !out.success {
        bail!("routerctl {args:?} failed: {out}");
    }
    let v = e2e::json::parse(&out.stdout)
        .with_context(|| format!("routerctl {args:?} printed:\n{}", out.stdout))?;
    let s = |v: &Value, key: &str| v.get(key).and_then(Value::as_str).map(str::to_string);
    let mut routes = Vec::new();
    for r in v
        .get("routes")
        .and_then(Value::as_array)
        .unwrap_or_default()
    {
        let prefix = s(r, "prefix").context("route without prefix")?;
        let mut candidates = Vec::new();
        for c in r
            .get("candidates")
            .and_then(Value::as_array)
            .unwrap_or_default()
        {
            candidates.push(Candidate {
                peer: s(c, "peer"),
                next_hop: s(c, "next_hop").unwrap_or_default(),
                as_path: s(c, "as_path").unwrap_or_default(),
                standing: s(c, "standing").unwrap_or_default(),
            });
        }
        routes.push((prefix, candidates));
    }
    Ok(routes)
}

/// One `proto bgp` route of the kernel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelRoute {
    pub prefix: String,
    pub via: Option<String>,
    pub dev: Option<String>,
}

/// `ip -4 route show proto bgp` and `ip -6 ...` in `host`'s namespace
/// (main table), parsed.
pub fn kernel_routes(host: &Host) -> Result<Vec<KernelRoute>> {
    let mut routes = Vec::new();
    for family in ["-4", "-6"] {
        let text = host.run("ip", &[family, "route", "show", "proto", "bgp"])?;
        for line in text.lines() {
            let words: Vec<&str> = line.split_whitespace().collect();
            let Some(first) = words.first() else { continue };
            let after = |key: &str| {
                words
                    .iter()
                    .position(|w| *w == key)
                    .and_then(|i| words.get(i + 1))
                    .map(|w| (*w).to_string())
            };
            // "10.70.1.0/24 via ...": a host route prints without "/32".
            let prefix = if first.contains('/') {
                (*first).to_string()
            } else if family == "-4" {
                format!("{first}/32")
            } else {
                format!("{first}/128")
            };
            routes.push(KernelRoute {
                prefix,
                via: after("via"),
                dev: after("dev"),
            });
        }
    }
    Ok(routes)
}

/// The whole `ip route` picture of `host`, for failure messages.
pub fn kernel_dump(host: &Host) -> String {
    let mut out = String::new();
    for family in ["-4", "-6"] {
        match host.exec("ip", &[family, "route", "show", "table", "all"]) {
            Ok(o) => {
                let _ = writeln!(
                    out,
                    "$ ip {family} route show table all\n{}",
                    String::from_utf8_lossy(&o.stdout)
                );
            }
            Err(e) => {
                let _ = writeln!(out, "ip {family} route: {e:#}");
            }
        }
    }
    out
}

/// Waits until the kernel of `host` has a `proto bgp` route for `prefix`
/// (`present`) or none; returns it when present.
pub fn wait_kernel_route(
    host: &Host,
    prefix: &str,
    present: bool,
    deadline: Duration,
) -> Result<Option<KernelRoute>> {
    let what = if present {
        format!("{prefix} in the kernel (proto bgp)")
    } else {
        format!("{prefix} to leave the kernel")
    };
    wait_until(deadline, &what, || {
        let routes = kernel_routes(host).ok()?;
        let found = routes.into_iter().find(|r| r.prefix == prefix);
        match (present, found) {
            (true, Some(r)) => Some(Some(r)),
            (false, None) => Some(None),
            _ => None,
        }
    })
    .with_context(|| kernel_dump(host))
}

/// Checks that routerd's namespace has BIRD's route `prefix` via `via`
/// (for IPv6: BIRD's global address, or its link-local on eth0).
pub fn expect_kernel_route_via(host: &Host, prefix: &str, via: &str) -> Result<KernelRoute> {
    let route = wait_kernel_route(host, prefix, true, CONVERGE)?
        .with_context(|| format!("no route for {prefix}"))?;
    let got = route.via.clone().unwrap_or_default();
    let link_local = got.starts_with("fe80:") && route.dev.as_deref() == Some("eth0");
    if got != via && !(via.contains(':') && link_local) {
        bail!(
            "{prefix} goes via {got:?}, expected {via}\n{}",
            kernel_dump(host)
        );
    }
    if link_local {
        note(&format!(
            "{prefix} installed via the link-local {got} dev eth0"
        ));
    }
    Ok(route)
}

/// Waits until BIRD is Established and routerd's peer too.
pub fn wait_both_established(bird: &Bird, routerd: &Routerd, peer: &str) -> Result<PeerStatus> {
    bird.wait_established(UP)?;
    wait_peer_established(routerd, peer)
}

/// True if routerd's namespace has an established TCP connection *to*
/// port 179 (routerd dialled), false if only *from* it (it accepted).
pub fn routerd_dialled(router: &Host) -> Result<bool> {
    let out = router.run("ss", &["-Htn", "state", "established", "( dport = :179 )"])?;
    Ok(!out.trim().is_empty())
}

/// The raw peer running on the peer host; killed on drop.
pub struct RawPeer {
    child: Child,
    stdin: Option<ChildStdin>,
    log: PathBuf,
}

impl RawPeer {
    /// Starts it on `host`, toward `target` port 179, as AS 65002 with
    /// the host's address as router id and next hop.
    pub fn start(host: &Host, target: Ipv4Addr) -> RawPeer {
        let bin = e2e::process::cargo_binary(
            "bgp_raw_peer",
            "E2E_BGP_RAW_PEER_BIN",
            "cargo build -p e2e --bins",
        )
        .unwrap();
        let log = host.dir().join("bgp_raw_peer.log");
        let out = std::fs::File::create(&log).unwrap();
        let err = out.try_clone().unwrap();
        let mut child = host
            .command(&bin.to_string_lossy())
            .args([
                &format!("{target}:179"),
                "65002",
                &host.v4.to_string(),
                &host.v4.to_string(),
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            .spawn()
            .unwrap();
        let stdin = child.stdin.take();
        RawPeer { child, stdin, log }
    }

    pub fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Writes a command (see `bgp_raw_peer`) and waits until the peer
    /// takes it up.
    pub fn send(&mut self, command: &str) {
        let stdin = self.stdin.as_mut().expect("raw peer stdin");
        writeln!(stdin, "{command}").unwrap();
        stdin.flush().unwrap();
        let line = format!("sending UPDATE {command}");
        self.wait_for(&line, Duration::from_secs(5));
    }

    /// Waits until the output has a line starting with `prefix`; returns it.
    pub fn wait_for(&self, prefix: &str, deadline: Duration) -> String {
        wait_until(deadline, &format!("raw peer to print {prefix:?}"), || {
            self.output()
                .lines()
                .find(|l| l.starts_with(prefix))
                .map(str::to_string)
        })
        .unwrap_or_else(|e| panic!("{e:#}\nraw peer output:\n{}", self.output()))
    }
}

impl Drop for RawPeer {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("----- bgp_raw_peer output -----\n{}", self.output());
        }
        self.stdin = None;
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
