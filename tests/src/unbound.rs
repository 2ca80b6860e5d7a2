//! Unbound as a reference resolver over the lab hierarchy.
//!
//! It proves the lab itself is right (chain of trust, bogus zone, glue)
//! independently of routerd, and gives tests a known-good answer to compare
//! routerd's with.

use std::net::IpAddr;
use std::time::Duration;

use anyhow::{Result, bail};

use crate::process::Daemon;
use crate::{DnsHierarchy, Host, Query};

/// A running unbound; stopped on drop.
#[derive(Debug)]
pub struct Unbound {
    /// The guard of the unbound process.
    pub daemon: Daemon,
    addr: IpAddr,
}

/// Knobs of the unbound config that differ between the functional tests
/// (the defaults: one thread, verbose enough to debug validation) and the
/// load benchmark (`benches/`: one thread per core, quiet, big caches).
#[derive(Debug, Clone)]
pub struct UnboundOptions {
    /// `num-threads`.
    pub num_threads: u32,
    /// `so-reuseport`.
    pub so_reuseport: bool,
    /// `verbosity`.
    pub verbosity: u32,
    /// `val-log-level`.
    pub val_log_level: u32,
    /// Extra lines for the `server:` clause, verbatim, e.g.
    /// `"    prefetch: yes\n"` (each line indented and newline-terminated).
    pub extra_server: String,
}

impl Default for UnboundOptions {
    /// What [`Unbound::start`] uses.
    fn default() -> Self {
        UnboundOptions {
            num_threads: 1,
            so_reuseport: false,
            verbosity: 1,
            val_log_level: 2,
            extra_server: String::new(),
        }
    }
}

impl UnboundOptions {
    /// A configuration for load tests: `threads` threads with SO_REUSEPORT,
    /// no logging, no rate limits, prefetch on, caches large enough that
    /// nothing is evicted during a run (msg 64 MB, rrset 128 MB), and 4 MB
    /// socket buffers (what routerd asks for).
    pub fn load_test(threads: u32) -> UnboundOptions {
        UnboundOptions {
            num_threads: threads.max(1),
            so_reuseport: true,
            verbosity: 0,
            val_log_level: 0,
            extra_server: [
                "ratelimit: 0",
                "ip-ratelimit: 0",
                "prefetch: yes",
                "msg-cache-size: 64m",
                "rrset-cache-size: 128m",
                "key-cache-size: 16m",
                "so-rcvbuf: 4m",
                "so-sndbuf: 4m",
                "log-queries: no",
                "log-replies: no",
                "log-servfail: no",
                "statistics-interval: 0",
                "extended-statistics: no",
            ]
            .iter()
            .map(|l| format!("    {l}\n"))
            .collect(),
        }
    }
}

impl Unbound {
    /// Starts unbound on `host` with the lab's root hints and trust anchor,
    /// a stub zone for site2.internal (insecure, as it is not delegated),
    /// and waits until it answers.
    pub fn start(host: &Host, dns: &DnsHierarchy) -> Result<Unbound> {
        Unbound::start_with(host, dns, &UnboundOptions::default())
    }

    /// Like [`Unbound::start`], with `options` applied.
    pub fn start_with(
        host: &Host,
        dns: &DnsHierarchy,
        options: &UnboundOptions,
    ) -> Result<Unbound> {
        let Unbound { mut daemon, addr } = Unbound::spawn_with(host, dns, options)?;
        let probe = Query::new("lab.", "SOA").timeout(1);
        let ready = crate::wait_until(Duration::from_secs(10), "unbound", || {
            host.dig(addr, &probe).ok()
        });
        if let Err(e) = ready {
            daemon.check_running()?;
            bail!("{e}; unbound log:\n{}", daemon.log_tail(20));
        }
        Ok(Unbound { daemon, addr })
    }

    /// Like [`Unbound::start_with`], without waiting until it answers: for
    /// benchmarks that time the start themselves, from the outside (a
    /// large `local-zone` include can take longer to load than that wait
    /// allows).
    pub fn spawn_with(
        host: &Host,
        dns: &DnsHierarchy,
        options: &UnboundOptions,
    ) -> Result<Unbound> {
        let dir = dns.dir.join(format!("unbound-{}", host.name));
        std::fs::create_dir_all(&dir)?;
        let conf = format!(
            "server:
    interface: {v4}
    port: 53
    username: \"\"
    chroot: \"\"
    directory: \"{d}\"
    pidfile: \"{d}/unbound.pid\"
    use-syslog: no
    logfile: \"\"
    verbosity: {verbosity}
    val-log-level: {val_log_level}
    do-daemonize: no
    num-threads: {threads}
    so-reuseport: {reuseport}
    access-control: 10.53.0.0/16 allow
    root-hints: \"{hints}\"
    trust-anchor-file: \"{anchor}\"
    domain-insecure: \"site2.internal\"
    qname-minimisation: yes
{extra}remote-control:
    control-enable: no
stub-zone:
    name: \"site2.internal\"
    stub-addr: {site2}
",
            v4 = host.v4,
            d = dir.display(),
            verbosity = options.verbosity,
            val_log_level = options.val_log_level,
            threads = options.num_threads,
            reuseport = if options.so_reuseport { "yes" } else { "no" },
            hints = dns.root_hints.display(),
            anchor = dns.trust_anchor.display(),
            extra = options.extra_server,
            site2 = crate::addr::SITE2,
        );
        let path = dir.join("unbound.conf");
        std::fs::write(&path, conf)?;
        let path = path.to_string_lossy().into_owned();
        let daemon = host.spawn("unbound", "unbound", &["-d", "-c", &path])?;
        Ok(Unbound {
            daemon,
            addr: IpAddr::V4(host.v4),
        })
    }

    /// Where it listens.
    pub fn addr(&self) -> IpAddr {
        self.addr
    }
}

/// True when the installed unbound serves DNS over HTTPS (`unbound -V`
/// lists `--with-libnghttp2` in its configure line).
pub fn unbound_has_doh() -> bool {
    let Ok(unbound) = crate::require::tool("unbound") else {
        return false;
    };
    std::process::Command::new(unbound)
        .arg("-V")
        .output()
        .map(|out| String::from_utf8_lossy(&out.stdout).contains("--with-libnghttp2"))
        .unwrap_or(false)
}

impl Unbound {
    /// Like [`Unbound::start`], and also serving DNS over TLS on port 853
    /// and DNS over HTTPS on port 443 (path `/dns-query`) with `tls`'s
    /// server certificate; waits until both ports listen.
    ///
    /// DoH needs an unbound built with libnghttp2 (Debian's is): see
    /// [`unbound_has_doh`]; without it only DoT is configured.
    pub fn start_encrypted(
        host: &Host,
        dns: &DnsHierarchy,
        tls: &crate::tls::TlsFiles,
    ) -> Result<Unbound> {
        let doh = unbound_has_doh();
        let mut extra = format!(
            "    interface: {v4}@853\n    tls-port: 853\n    \
             tls-service-pem: \"{cert}\"\n    tls-service-key: \"{key}\"\n",
            v4 = host.v4,
            cert = tls.cert.display(),
            key = tls.key.display(),
        );
        if doh {
            extra.push_str(&format!(
                "    interface: {}@443\n    https-port: 443\n    \
                 http-endpoint: \"/dns-query\"\n",
                host.v4
            ));
        }
        let options = UnboundOptions {
            extra_server: extra,
            ..UnboundOptions::default()
        };
        let mut unbound = Unbound::start_with(host, dns, &options)?;
        let ports: &[u16] = if doh { &[853, 443] } else { &[853] };
        for port in ports {
            let ready = crate::process::wait_for_port(
                host,
                crate::process::Proto::Tcp,
                *port,
                Duration::from_secs(5),
            );
            if let Err(e) = ready {
                unbound.daemon.check_running()?;
                bail!("{e}; unbound log:\n{}", unbound.daemon.log_tail(20));
            }
        }
        Ok(unbound)
    }
}
