//! The four servers, each with and without the list: how each is
//! configured and spawned. Spawning returns at once; when the server
//! answers is for the probe to tell.

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;

use anyhow::{Context, Result};
use e2e::unbound::{Unbound, UnboundOptions};
use e2e::{Daemon, DnsHierarchy, Host, RouterdConfig, addr};

use crate::list::ListFiles;
use crate::probe::Answer;

/// routerd without the list, beside the one with it.
pub const ROUTERD_NO_LIST: Ipv4Addr = Ipv4Addr::new(10, 53, 0, 56);
/// PowerDNS Recursor.
pub const PDNS: Ipv4Addr = Ipv4Addr::new(10, 53, 0, 57);
/// The Unbound dnsmasq forwards to (not measured).
pub const UPSTREAM: Ipv4Addr = Ipv4Addr::new(10, 53, 0, 60);

/// routerd's log filter: quiet, but for the line that reports the build.
const ROUTERD_LOG: &str = "warn,router::filtering=info";

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    Routerd,
    Unbound,
    /// With the list as `addn-hosts`, as Pi-hole loads gravity into its
    /// dnsmasq (FTL); forwarding to the lab's Unbound.
    Dnsmasq,
    /// PowerDNS Recursor with the list as an RPZ.
    Pdns,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Routerd => "routerd",
            Kind::Unbound => "unbound",
            Kind::Dnsmasq => "dnsmasq",
            Kind::Pdns => "pdns-recursor",
        }
    }

    /// How it answers a blocked name's A query.
    pub fn block_answer(self) -> Answer {
        match self {
            Kind::Pdns => Answer::Nxdomain,
            Kind::Routerd | Kind::Unbound | Kind::Dnsmasq => Answer::Null,
        }
    }

    /// The response code of its blocked answers, as dnsperf counts it.
    pub fn block_rcode(self) -> &'static str {
        match self.block_answer() {
            Answer::Nxdomain => "NXDOMAIN",
            _ => "NOERROR",
        }
    }

    /// Where it runs. Only routerd runs twice at once (with and without
    /// the list, for the QPS comparison); the others' list-less runs take
    /// turns with their list runs on the same host.
    pub fn addr(self, list: bool) -> Ipv4Addr {
        match (self, list) {
            (Kind::Routerd, true) => addr::ROUTER,
            (Kind::Routerd, false) => ROUTERD_NO_LIST,
            (Kind::Unbound, _) => addr::REFERENCE,
            (Kind::Dnsmasq, _) => addr::REFERENCE2,
            (Kind::Pdns, _) => PDNS,
        }
    }

    /// Its lab host's name.
    pub fn host_name(self, list: bool) -> &'static str {
        match (self, list) {
            (Kind::Routerd, false) => "router0",
            (Kind::Routerd, true) => "router",
            (Kind::Unbound, _) => "unbound",
            (Kind::Dnsmasq, _) => "dnsmasq",
            (Kind::Pdns, _) => "pdns",
        }
    }
}

/// What every server is started from.
#[derive(Debug)]
pub struct Setup<'a> {
    pub dns: &'a DnsHierarchy,
    pub list: &'a ListFiles,
    /// Threads for the multi-threaded servers (one per core).
    pub threads: u32,
    /// The lab's directory, for configs and state.
    pub dir: &'a Path,
}

/// A spawned server.
#[derive(Debug)]
pub struct Running {
    pub kind: Kind,
    pub list: bool,
    pub daemon: Daemon,
    pub addr: IpAddr,
}

/// Spawns `kind` on `host`, with the list or without; `start` numbers the
/// cold starts, so each gets fresh state (routerd's list store).
pub fn spawn(kind: Kind, list: bool, host: &Host, setup: &Setup, start: u32) -> Result<Running> {
    let daemon = match kind {
        Kind::Routerd => spawn_routerd(host, setup, list, start)?,
        Kind::Unbound => spawn_unbound(host, setup, list)?,
        Kind::Dnsmasq => spawn_dnsmasq(host, setup, list)?,
        Kind::Pdns => spawn_pdns(host, setup, list)?,
    };
    Ok(Running {
        kind,
        list,
        daemon,
        addr: IpAddr::V4(host.v4),
    })
}

/// routerd as the load benchmark runs it (one worker per core, no rate
/// limit, 100 000 cache entries, prefetch), the query log off like the
/// peers' and, with the list, one group blocking it in null mode
/// (0.0.0.0 and ::, as Unbound's `always_null` and the hosts file's
/// 0.0.0.0 entries answer).
fn spawn_routerd(host: &Host, setup: &Setup, list: bool, start: u32) -> Result<Daemon> {
    let store = setup.dir.join(format!("lists-store-{}-{start}", host.name));
    let mut extra = String::from("[dns.query_log]\nenabled = false\npath = \"\"\n");
    let _ = write!(
        extra,
        "\n[dns.filter]\nlists_dir = {}\n",
        toml_string(&store)
    );
    if list {
        let _ = write!(
            extra,
            "\n[[dns.filter.lists]]\nname = \"bench\"\npath = {}\n\
             \n[[dns.filter.groups]]\nname = \"default\"\nlists = [\"bench\"]\nblock_mode = \"null\"\n",
            toml_string(&setup.list.hosts)
        );
    }
    let config = RouterdConfig::recursive(setup.dns).with(|c| {
        c.listen = vec![SocketAddr::new(IpAddr::V4(host.v4), 53)];
        c.workers = 0;
        c.rate_limit_qps = 0;
        c.cache_max_entries = 100_000;
        c.prefetch = true;
        c.rust_log = ROUTERD_LOG.to_string();
        c.extra_toml = extra;
    });
    // RouterdConfig::start would wait until routerd answers; the probe
    // times that instead, so the config is written and spawned here.
    let path = RouterdConfig::config_path_on(host);
    std::fs::write(&path, config.to_toml(&config.control_socket_on(host)))
        .with_context(|| format!("writing {}", path.display()))?;
    let binary = e2e::routerd::binary()?;
    host.spawn_with_env(
        &format!("routerd-{}", host.name),
        &binary.to_string_lossy(),
        &["--config", &path.to_string_lossy()],
        &[("RUST_LOG", &config.rust_log), ("NO_COLOR", "1")],
    )
}

/// A TOML basic string of a path (JSON's escaping is a subset of TOML's).
fn toml_string(path: &Path) -> String {
    format!("{:?}", path.to_string_lossy())
}

/// Unbound as the load benchmark runs it, plus the list's `local-zone`s.
fn spawn_unbound(host: &Host, setup: &Setup, list: bool) -> Result<Daemon> {
    let mut options = UnboundOptions::load_test(setup.threads);
    if list {
        let _ = writeln!(
            options.extra_server,
            "    include: \"{}\"",
            setup.list.unbound.display()
        );
    }
    let Unbound { daemon, .. } = Unbound::spawn_with(host, setup.dns, &options)?;
    Ok(daemon)
}

/// dnsmasq as the load benchmark runs it, forwarding to the upstream
/// Unbound; the list as `addn-hosts`, 0.0.0.0 and :: for every name.
fn spawn_dnsmasq(host: &Host, setup: &Setup, list: bool) -> Result<Daemon> {
    let mut args = benches::dnsmasq::args(IpAddr::V4(host.v4), IpAddr::V4(UPSTREAM));
    if list {
        args.push(format!("--addn-hosts={}", setup.list.dnsmasq.display()));
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    host.spawn("dnsmasq", "dnsmasq", &args)
}

/// PowerDNS Recursor recursing from the lab's root hints and validating
/// with its trust anchor, one thread per core each with its own socket
/// (SO_REUSEPORT, as Unbound and routerd run), no query logging, as root
/// without chroot in its own directory; the list as an RPZ.
fn spawn_pdns(host: &Host, setup: &Setup, list: bool) -> Result<Daemon> {
    let dir = setup
        .dir
        .join(if list { "pdns-list" } else { "pdns-no-list" });
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let lua = dir.join("recursor.lua");
    let mut lua_text = format!(
        "clearTA()\nreadTrustAnchorsFromFile({:?}, 0)\n",
        setup.dns.trust_anchor.to_string_lossy()
    );
    if list {
        let _ = writeln!(
            lua_text,
            "rpzFile({:?}, {{policyName=\"bench\"}})",
            setup.list.rpz.to_string_lossy()
        );
    }
    std::fs::write(&lua, lua_text)?;
    let conf = pdns_conf(host.v4, &dir, &lua, &setup.dns.root_hints, setup.threads);
    std::fs::write(dir.join("recursor.conf"), conf)?;
    let config_dir = format!("--config-dir={}", dir.display());
    host.spawn("pdns-recursor", "pdns_recursor", &[&config_dir])
}

fn pdns_conf(listen: Ipv4Addr, dir: &Path, lua: &Path, hints: &Path, threads: u32) -> String {
    let lines = [
        format!("local-address={listen}"),
        "local-port=53".to_string(),
        "allow-from=10.53.0.0/16".to_string(),
        format!("socket-dir={}", dir.display()),
        format!("hint-file={}", hints.display()),
        format!("lua-config-file={}", lua.display()),
        "dnssec=validate".to_string(),
        format!("threads={threads}"),
        "reuseport=yes".to_string(),
        "pdns-distributes-queries=no".to_string(),
        "quiet=yes".to_string(),
        "daemon=no".to_string(),
        "write-pid=no".to_string(),
        "disable-syslog=yes".to_string(),
        "log-timestamp=no".to_string(),
        "loglevel=4".to_string(),
        // The lab's servers are in 10.0.0.0/8, which it skips by default.
        "dont-query=".to_string(),
        // No version check: it would be a query to the real DNS.
        "security-poll-suffix=".to_string(),
    ];
    let mut text = lines.join("\n");
    text.push('\n');
    text
}

/// routerd's own report of its filter build (the "filter built" log
/// line): domains, bytes of the compiled set, milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct FilterBuilt {
    pub domains: u64,
    pub bytes: u64,
    pub build_ms: u64,
}

/// The last "filter built" line of routerd's log, if any.
pub fn filter_built(log: &str) -> Option<FilterBuilt> {
    let line = log.lines().rev().find(|l| l.contains("filter built"))?;
    let field = |key: &str| {
        line.split_whitespace()
            .find_map(|w| w.strip_prefix(key))
            .and_then(|v| v.parse().ok())
    };
    Some(FilterBuilt {
        domains: field("domains=")?,
        bytes: field("bytes=")?,
        build_ms: field("build_ms=")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_filter_built_line() {
        let log = "2026-11-21T12:00:00Z  INFO router::filtering: filter built lists=1 \
                   domains=1000001 regexes=0 bytes=9437184 build_ms=812\n";
        assert_eq!(
            filter_built(log),
            Some(FilterBuilt {
                domains: 1_000_001,
                bytes: 9_437_184,
                build_ms: 812
            })
        );
        assert_eq!(filter_built("nothing here\n"), None);
    }

    #[test]
    fn pdns_config_queries_the_lab() {
        let conf = pdns_conf(
            PDNS,
            Path::new("/d"),
            Path::new("/d/r.lua"),
            Path::new("/h"),
            2,
        );
        assert!(conf.contains("\ndont-query=\n"));
        assert!(conf.contains("\nhint-file=/h\n"));
        assert!(conf.contains("\nthreads=2\n"));
    }
}
