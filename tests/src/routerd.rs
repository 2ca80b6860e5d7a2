//! Running routerd inside the lab.
//!
//! [`RouterdConfig`] mirrors the schema of examples/router.toml (only the
//! keys the tests need); each test starts from [`RouterdConfig::recursive`]
//! or [`RouterdConfig::forward`], tweaks fields, and calls
//! [`RouterdConfig::start`].

use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};

use crate::process::Daemon;
use crate::{DnsHierarchy, Host, Query};

/// The routerd binary: `$ROUTERD_BIN`, else `routerd` next to the test
/// binary's directory (tests run from target/<profile>/deps/).
///
/// `cargo test -p e2e` does not build it: run `cargo build -p router` first.
pub fn binary() -> Result<PathBuf> {
    crate::process::cargo_binary("routerd", "ROUTERD_BIN", "cargo build -p router")
}

/// `routerctl`: `$ROUTERCTL_BIN`, else next to the routerd binary that
/// [`binary`] finds (cargo builds both into the same directory).
pub fn routerctl_binary() -> Result<PathBuf> {
    if let Some(path) = std::env::var_os("ROUTERCTL_BIN") {
        let path = PathBuf::from(path);
        if !path.is_file() {
            bail!("ROUTERCTL_BIN={} does not exist", path.display());
        }
        return Ok(path);
    }
    let routerd = binary()?;
    let candidate = routerd.with_file_name("routerctl");
    if candidate.is_file() {
        return Ok(candidate);
    }
    bail!(
        "no routerctl next to {}: run `cargo build -p router` or set ROUTERCTL_BIN",
        routerd.display()
    )
}

/// routerd's log filter unless `E2E_RUST_LOG` says otherwise: debug for
/// our crates, info for hickory (whose debug output drowns everything).
const DEFAULT_LOG: &str = "info,dns=debug,router=debug,routerd=debug";

/// An upstream server (`[[dns.upstreams]]`, forward zone upstreams).
#[derive(Debug, Clone)]
pub struct Upstream {
    /// Address and port.
    pub address: SocketAddr,
    /// "udp", "tcp", "tls" or "https".
    pub protocol: String,
    /// `tls_name` (tls and https only).
    pub tls_name: Option<String>,
    /// `ca_file` (tls and https only).
    pub ca_file: Option<PathBuf>,
}

impl Upstream {
    /// A plain DNS upstream on port 53 over UDP.
    pub fn udp(addr: IpAddr) -> Upstream {
        Upstream {
            address: SocketAddr::new(addr, 53),
            protocol: "udp".to_string(),
            tls_name: None,
            ca_file: None,
        }
    }

    /// A DNS-over-TLS upstream (port 853) whose certificate must name
    /// `tls_name`, with `ca_file` as an extra trust root.
    pub fn tls(addr: IpAddr, tls_name: &str, ca_file: Option<&std::path::Path>) -> Upstream {
        Upstream {
            address: SocketAddr::new(addr, 853),
            protocol: "tls".to_string(),
            tls_name: Some(tls_name.to_string()),
            ca_file: ca_file.map(std::path::Path::to_path_buf),
        }
    }

    /// A DNS-over-HTTPS upstream (port 443, path /dns-query), as [`Upstream::tls`].
    pub fn https(addr: IpAddr, tls_name: &str, ca_file: Option<&std::path::Path>) -> Upstream {
        Upstream {
            address: SocketAddr::new(addr, 443),
            protocol: "https".to_string(),
            tls_name: Some(tls_name.to_string()),
            ca_file: ca_file.map(std::path::Path::to_path_buf),
        }
    }

    /// The key/value pairs, `address = "..", protocol = ".."[, ...]`.
    fn fields(&self) -> Vec<String> {
        let mut fields = vec![
            format!("address = {}", quote(&self.address.to_string())),
            format!("protocol = {}", quote(&self.protocol)),
        ];
        if let Some(name) = &self.tls_name {
            fields.push(format!("tls_name = {}", quote(name)));
        }
        if let Some(ca) = &self.ca_file {
            fields.push(format!("ca_file = {}", quote(&ca.to_string_lossy())));
        }
        fields
    }

    fn to_inline_toml(&self) -> String {
        format!("{{ {} }}", self.fields().join(", "))
    }
}

/// `[[dns.local_records]]`.
#[derive(Debug, Clone)]
pub struct LocalRecord {
    /// Owner name.
    pub name: String,
    /// A, AAAA, CNAME or TXT.
    pub rtype: String,
    /// The value.
    pub value: String,
    /// TTL in seconds.
    pub ttl: u32,
}

/// routerd's configuration, written as TOML by [`RouterdConfig::to_toml`].
#[derive(Debug, Clone)]
pub struct RouterdConfig {
    /// `dns.listen`.
    pub listen: Vec<SocketAddr>,
    /// `dns.allow`.
    pub allow: Vec<String>,
    /// `dns.mode`: "recursive" or "forward".
    pub mode: String,
    /// `dns.workers`.
    pub workers: u32,
    /// `dns.max_udp_payload`.
    pub max_udp_payload: u16,
    /// `dns.udp_segmentation`.
    pub udp_segmentation: bool,
    /// `dns.rate_limit_qps` (0 disables).
    pub rate_limit_qps: u32,
    /// `dns.rate_limit_burst`.
    pub rate_limit_burst: u32,
    /// `dns.cache.max_entries`.
    pub cache_max_entries: u32,
    /// `dns.cache.min_ttl`.
    pub cache_min_ttl: u32,
    /// `dns.cache.max_ttl`.
    pub cache_max_ttl: u32,
    /// `dns.cache.prefetch`.
    pub prefetch: bool,
    /// `dns.cache.serve_stale`.
    pub serve_stale: bool,
    /// `dns.cache.max_stale`.
    pub max_stale: u32,
    /// `dns.recursion.root_hints`.
    pub root_hints: Option<PathBuf>,
    /// `dns.recursion.dnssec`.
    pub dnssec: bool,
    /// `dns.recursion.trust_anchor`.
    pub trust_anchor: Option<PathBuf>,
    /// `dns.recursion.qname_minimisation`.
    pub qname_minimisation: bool,
    /// `dns.recursion.case_randomisation`.
    pub case_randomisation: bool,
    /// `dns.recursion.allow_servers`.
    pub allow_servers: Vec<String>,
    /// `[[dns.upstreams]]`.
    pub upstreams: Vec<Upstream>,
    /// `[[dns.forward_zones]]`: (zone, upstreams).
    pub forward_zones: Vec<(String, Vec<Upstream>)>,
    /// `[[dns.local_records]]`.
    pub local_records: Vec<LocalRecord>,
    /// `control.socket`; `None`: `<lab dir>/routerd-<host>.sock`.
    pub control_socket: Option<PathBuf>,
    /// `metrics.listen`.
    pub metrics_listen: Option<SocketAddr>,
    /// `policies.dir`: the directory of zone and firewall policy files;
    /// `None` leaves the `[policies]` table out.
    pub policies_dir: Option<PathBuf>,
    /// `RUST_LOG` for the daemon.
    pub rust_log: String,
    /// More TOML, appended as written (`[dns.filter]`, `[dns.query_log]`).
    /// Without a `[dns.query_log]` of its own, the log goes next to the
    /// control socket, never to the system's state directory.
    pub extra_toml: String,
}

impl RouterdConfig {
    /// Recursive mode over the lab hierarchy: lab root hints and trust
    /// anchor, lab servers allowed, clients in [`crate::addr::ALLOWED_CLIENTS`].
    pub fn recursive(dns: &DnsHierarchy) -> RouterdConfig {
        RouterdConfig {
            listen: vec![SocketAddr::new(IpAddr::V4(crate::addr::ROUTER), 53)],
            allow: crate::addr::ALLOWED_CLIENTS.map(String::from).to_vec(),
            mode: "recursive".to_string(),
            workers: 2,
            max_udp_payload: 1232,
            udp_segmentation: true,
            rate_limit_qps: 200,
            rate_limit_burst: 400,
            cache_max_entries: 10_000,
            cache_min_ttl: 0,
            cache_max_ttl: 86400,
            prefetch: true,
            serve_stale: true,
            max_stale: 86400,
            root_hints: Some(dns.root_hints.clone()),
            dnssec: true,
            trust_anchor: Some(dns.trust_anchor.clone()),
            qname_minimisation: true,
            case_randomisation: true,
            allow_servers: vec![crate::addr::LAB_NET.to_string()],
            upstreams: Vec::new(),
            forward_zones: Vec::new(),
            local_records: Vec::new(),
            control_socket: None,
            metrics_listen: None,
            policies_dir: None,
            rust_log: std::env::var("E2E_RUST_LOG").unwrap_or_else(|_| DEFAULT_LOG.to_string()),
            extra_toml: String::new(),
        }
    }

    /// Forward mode to `upstreams`, in order, DNSSEC off (the lab's
    /// upstreams are authoritative servers, not validating resolvers).
    pub fn forward(dns: &DnsHierarchy, upstreams: &[IpAddr]) -> RouterdConfig {
        RouterdConfig {
            mode: "forward".to_string(),
            dnssec: false,
            upstreams: upstreams.iter().map(|a| Upstream::udp(*a)).collect(),
            ..RouterdConfig::recursive(dns)
        }
    }

    /// Adds a conditional forward zone.
    pub fn forward_zone(mut self, zone: &str, upstreams: &[IpAddr]) -> Self {
        self.forward_zones.push((
            zone.to_string(),
            upstreams.iter().map(|a| Upstream::udp(*a)).collect(),
        ));
        self
    }

    /// Adds a local record.
    pub fn local_record(mut self, name: &str, rtype: &str, value: &str, ttl: u32) -> Self {
        self.local_records.push(LocalRecord {
            name: name.to_string(),
            rtype: rtype.to_string(),
            value: value.to_string(),
            ttl,
        });
        self
    }

    /// Applies any other change.
    pub fn with(mut self, change: impl FnOnce(&mut RouterdConfig)) -> Self {
        change(&mut self);
        self
    }

    /// The config file's text.
    pub fn to_toml(&self, control_socket: &std::path::Path) -> String {
        let list = toml_list;
        let listen: Vec<String> = self.listen.iter().map(ToString::to_string).collect();
        let mut t = String::new();
        let _ = writeln!(t, "[dns]");
        let _ = writeln!(t, "listen = {}", list(&listen));
        let _ = writeln!(t, "allow = {}", list(&self.allow));
        let _ = writeln!(t, "mode = {}", quote(&self.mode));
        let _ = writeln!(t, "workers = {}", self.workers);
        let _ = writeln!(t, "max_udp_payload = {}", self.max_udp_payload);
        let _ = writeln!(t, "udp_segmentation = {}", self.udp_segmentation);
        let _ = writeln!(t, "rate_limit_qps = {}", self.rate_limit_qps);
        let _ = writeln!(t, "rate_limit_burst = {}", self.rate_limit_burst);
        let _ = writeln!(t, "\n[dns.cache]");
        let _ = writeln!(t, "max_entries = {}", self.cache_max_entries);
        let _ = writeln!(t, "min_ttl = {}", self.cache_min_ttl);
        let _ = writeln!(t, "max_ttl = {}", self.cache_max_ttl);
        let _ = writeln!(t, "prefetch = {}", self.prefetch);
        let _ = writeln!(t, "serve_stale = {}", self.serve_stale);
        let _ = writeln!(t, "max_stale = {}", self.max_stale);
        let _ = writeln!(t, "\n[dns.recursion]");
        if let Some(p) = &self.root_hints {
            let _ = writeln!(t, "root_hints = {}", quote(&p.to_string_lossy()));
        }
        let _ = writeln!(t, "dnssec = {}", self.dnssec);
        if let Some(p) = &self.trust_anchor {
            let _ = writeln!(t, "trust_anchor = {}", quote(&p.to_string_lossy()));
        }
        let _ = writeln!(t, "qname_minimisation = {}", self.qname_minimisation);
        let _ = writeln!(t, "case_randomisation = {}", self.case_randomisation);
        let _ = writeln!(t, "allow_servers = {}", list(&self.allow_servers));
        for u in &self.upstreams {
            let _ = writeln!(t, "\n[[dns.upstreams]]");
            for field in u.fields() {
                let _ = writeln!(t, "{field}");
            }
        }
        for (zone, upstreams) in &self.forward_zones {
            let ups: Vec<String> = upstreams.iter().map(Upstream::to_inline_toml).collect();
            let _ = writeln!(t, "\n[[dns.forward_zones]]");
            let _ = writeln!(t, "zone = {}", quote(zone));
            let _ = writeln!(t, "upstreams = [{}]", ups.join(", "));
        }
        for r in &self.local_records {
            let _ = writeln!(t, "\n[[dns.local_records]]");
            let _ = writeln!(t, "name = {}", quote(&r.name));
            let _ = writeln!(t, "type = {}", quote(&r.rtype));
            let _ = writeln!(t, "value = {}", quote(&r.value));
            let _ = writeln!(t, "ttl = {}", r.ttl);
        }
        let _ = writeln!(t, "\n[control]");
        let _ = writeln!(t, "socket = {}", quote(&control_socket.to_string_lossy()));
        if let Some(m) = &self.metrics_listen {
            let _ = writeln!(t, "\n[metrics]\nlisten = {}", quote(&m.to_string()));
        }
        if let Some(dir) = &self.policies_dir {
            let _ = writeln!(t, "\n[policies]\ndir = {}", quote(&dir.to_string_lossy()));
        }
        if !self.extra_toml.contains("[dns.query_log]") {
            let log = control_socket.with_extension("querylog.sqlite");
            let _ = writeln!(
                t,
                "\n[dns.query_log]\npath = {}",
                quote(&log.to_string_lossy())
            );
        }
        if !self.extra_toml.contains("[dns.filter]") {
            let lists = control_socket.with_extension("lists");
            let _ = writeln!(
                t,
                "\n[dns.filter]\nlists_dir = {}",
                quote(&lists.to_string_lossy())
            );
        }
        t.push('\n');
        t.push_str(&self.extra_toml);
        t
    }

    /// Writes the config to `<lab dir>/routerd-<host>.toml`, starts
    /// `routerd --config PATH` on `host` and waits (10 s at most) until it
    /// answers a query from `host` itself — any answer, even REFUSED.
    pub fn start(&self, host: &Host) -> Result<Routerd> {
        let binary = binary()?;
        let control = self.control_socket_on(host);
        let config = Self::config_path_on(host);
        std::fs::write(&config, self.to_toml(&control))?;
        let label = format!("routerd-{}", host.name);
        let mut daemon = host.spawn_with_env(
            &label,
            &binary.to_string_lossy(),
            &["--config", &config.to_string_lossy()],
            &[("RUST_LOG", &self.rust_log), ("NO_COLOR", "1")],
        )?;
        let addr = self
            .listen
            .first()
            .context("routerd config without a listen address")?;
        let probe = Query::new("readiness.lab.", "A").timeout(1);
        let mut ready = crate::wait_until(Duration::from_secs(10), "routerd to answer", || {
            if !daemon.is_running() {
                return Some(false);
            }
            host.dig(addr.ip(), &probe).is_ok().then_some(true)
        });
        if let Ok(false) = ready {
            ready = Err(anyhow::anyhow!("routerd exited during startup"));
        }
        if let Err(e) = ready {
            bail!(
                "{e}\nconfig {}:\n{}\nrouterd log tail:\n{}",
                config.display(),
                self.to_toml(&control),
                daemon.log_tail(40)
            );
        }
        Ok(Routerd {
            daemon,
            addr: addr.ip(),
            config,
            control_socket: control,
            host: host.clone(),
        })
    }

    /// The control socket routerd on `host` uses with this config.
    pub fn control_socket_on(&self, host: &Host) -> PathBuf {
        self.control_socket
            .clone()
            .unwrap_or_else(|| host.dir().join(format!("routerd-{}.sock", host.name)))
    }

    /// Where [`RouterdConfig::start`] writes the config for `host`.
    pub fn config_path_on(host: &Host) -> PathBuf {
        host.dir().join(format!("routerd-{}.toml", host.name))
    }
}

/// A running routerd; killed on drop (log tail printed if the test failed).
#[derive(Debug)]
pub struct Routerd {
    /// The process guard.
    pub daemon: Daemon,
    addr: IpAddr,
    /// The config file it was started with.
    pub config: PathBuf,
    /// Its control socket.
    pub control_socket: PathBuf,
    /// The host it runs on.
    pub host: Host,
}

impl Routerd {
    /// Its first listen address.
    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    /// Fails (with the log tail) if the daemon has exited.
    pub fn check_running(&mut self) -> Result<()> {
        self.daemon.check_running()
    }

    /// Replaces its config file with `config` (same control socket); the
    /// daemon sees it at the next reload.
    pub fn rewrite_config(&self, config: &RouterdConfig) -> Result<()> {
        self.write_config_text(&config.to_toml(&self.control_socket))
    }

    /// Replaces its config file with arbitrary text (e.g. a broken file).
    pub fn write_config_text(&self, text: &str) -> Result<()> {
        std::fs::write(&self.config, text)
            .with_context(|| format!("writing {}", self.config.display()))
    }

    /// Runs `routerctl --socket <its socket> ARGS` on its host and returns
    /// the output whatever the exit status.
    pub fn routerctl(&self, args: &[&str]) -> Result<Ctl> {
        routerctl(&self.host, &self.control_socket, args)
    }

    /// `routerctl status --json`, parsed; an error unless it exits 0.
    pub fn status_json(&self) -> Result<crate::json::Value> {
        let out = self.routerctl(&["status", "--json"])?;
        if !out.success {
            bail!(
                "routerctl status --json failed: {}{}",
                out.stdout,
                out.stderr
            );
        }
        crate::json::parse(&out.stdout)
            .with_context(|| format!("routerctl status --json printed:\n{}", out.stdout))
    }

    /// Sends a signal (e.g. "HUP") to the daemon.
    pub fn signal(&self, signal: &str) -> Result<()> {
        let status = std::process::Command::new("kill")
            .args(["-s", signal, &self.daemon.pid().to_string()])
            .status()
            .context("running kill")?;
        if !status.success() {
            bail!("kill -s {signal} {} failed", self.daemon.pid());
        }
        Ok(())
    }
}

/// What a `routerctl` (or `routerd check`) run printed.
#[derive(Debug, Clone)]
pub struct Ctl {
    /// Exit status 0.
    pub success: bool,
    /// The exit code, if it exited normally.
    pub code: Option<i32>,
    /// Its stdout.
    pub stdout: String,
    /// Its stderr.
    pub stderr: String,
}

impl Ctl {
    fn from_output(out: &std::process::Output) -> Ctl {
        Ctl {
            success: out.status.success(),
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

impl std::fmt::Display for Ctl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {:?}\n--- stdout ---\n{}--- stderr ---\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

/// Runs `routerctl --socket SOCKET ARGS` on `host` (bounded: the process
/// is killed after 10 s).
pub fn routerctl(host: &Host, socket: &std::path::Path, args: &[&str]) -> Result<Ctl> {
    let ctl = routerctl_binary()?;
    let socket = socket.to_string_lossy();
    let mut all = vec!["10", ctl.to_str().context("non-UTF-8 routerctl path")?];
    all.extend(["--socket", &socket]);
    all.extend(args);
    let out = host.exec("timeout", &all)?;
    Ok(Ctl::from_output(&out))
}

/// Runs `routerd check --config PATH` on `host`.
pub fn routerd_check(host: &Host, config: &std::path::Path) -> Result<Ctl> {
    let routerd = binary()?;
    let config = config.to_string_lossy();
    let out = host.exec(
        "timeout",
        &[
            "10",
            routerd.to_str().context("non-UTF-8 routerd path")?,
            "check",
            "--config",
            &config,
        ],
    )?;
    Ok(Ctl::from_output(&out))
}

/// A TOML array of strings.
pub(crate) fn toml_list(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| quote(s)).collect();
    format!("[{}]", quoted.join(", "))
}

/// A TOML basic string.
pub(crate) fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}
