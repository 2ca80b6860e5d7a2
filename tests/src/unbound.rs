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

impl Unbound {
    /// Starts unbound on `host` with the lab's root hints and trust anchor,
    /// a stub zone for site2.internal (insecure, as it is not delegated),
    /// and waits until it answers.
    pub fn start(host: &Host, dns: &DnsHierarchy) -> Result<Unbound> {
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
    verbosity: 1
    val-log-level: 2
    do-daemonize: no
    num-threads: 1
    so-reuseport: no
    access-control: 10.53.0.0/16 allow
    root-hints: \"{hints}\"
    trust-anchor-file: \"{anchor}\"
    domain-insecure: \"site2.internal\"
    qname-minimisation: yes
remote-control:
    control-enable: no
stub-zone:
    name: \"site2.internal\"
    stub-addr: {site2}
",
            v4 = host.v4,
            d = dir.display(),
            hints = dns.root_hints.display(),
            anchor = dns.trust_anchor.display(),
            site2 = crate::addr::SITE2,
        );
        let path = dir.join("unbound.conf");
        std::fs::write(&path, conf)?;
        let path = path.to_string_lossy().into_owned();
        let mut daemon = host.spawn("unbound", "unbound", &["-d", "-c", &path])?;
        let addr = IpAddr::V4(host.v4);
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

    /// Where it listens.
    pub fn addr(&self) -> IpAddr {
        self.addr
    }
}
