//! Network namespaces on a private bridge: the lab's hosts and its switch.
//!
//! Layout: one "switch" namespace holds a bridge `br0`; every host is a
//! namespace whose `eth0` is a veth whose peer sits in the switch namespace,
//! enslaved to `br0`. Hosts share one L2 segment (10.53.0.0/16, fd53::/64),
//! so no routes are needed for the common case, and nothing is connected to
//! the root namespace at all.
//!
//! Names: `rl<pid>x<n><host>`, unique per process (pid) and per lab (n).
//! Interface names stay short (`eth0` in hosts, `h<i>` in the switch) since
//! they only need to be unique inside their namespace.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};

use anyhow::{Context, Result, bail};

use crate::process::Daemon;

/// Numbers the labs of this process.
static LAB_COUNTER: AtomicU32 = AtomicU32::new(0);
/// Serialises namespace creation and stale-namespace cleanup: `ip netns
/// add` sets up the /run/netns mount on first use, which races.
static NETNS_LOCK: Mutex<()> = Mutex::new(());

/// Every namespace of one test, removed (with all processes in them) on
/// drop, also when the test panics.
#[derive(Debug)]
pub struct Lab {
    prefix: String,
    dir: PathBuf,
    switch: String,
    /// Hosts in creation order; the namespace list for teardown.
    hosts: Mutex<Vec<Host>>,
}

/// One host of the lab: a namespace with `eth0` on the lab switch.
#[derive(Debug, Clone)]
pub struct Host {
    /// Short name given by the test ("client", "root", ...).
    pub name: String,
    /// The network namespace's name.
    pub ns: String,
    /// Its IPv4 address on the lab segment (/16).
    pub v4: Ipv4Addr,
    /// Its IPv6 address on the lab segment (/64, no DAD).
    pub v6: Ipv6Addr,
    /// The lab's temp dir, where logs of processes on this host go.
    dir: PathBuf,
}

impl Lab {
    /// Creates the temp dir and the switch, after removing namespaces left
    /// behind by earlier runs that crashed (their pid is gone).
    pub fn new() -> Result<Lab> {
        let n = LAB_COUNTER.fetch_add(1, Ordering::SeqCst);
        let prefix = format!("rl{}x{n}", std::process::id());
        let base = std::env::var_os("E2E_TMPDIR")
            .map(PathBuf::from)
            .unwrap_or_else(std::env::temp_dir);
        let dir = base.join(format!("e2e-{prefix}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;

        let switch = format!("{prefix}sw");
        {
            let _guard = NETNS_LOCK.lock().unwrap_or_else(|p| p.into_inner());
            remove_stale_namespaces();
            ip(&["netns", "add", &switch])?;
        }
        let lab = Lab {
            prefix,
            dir,
            switch,
            hosts: Mutex::new(Vec::new()),
        };
        ip(&["-n", &lab.switch, "link", "set", "lo", "up"])?;
        ip(&["-n", &lab.switch, "link", "add", "br0", "type", "bridge"])?;
        ip(&["-n", &lab.switch, "link", "set", "br0", "up"])?;
        Ok(lab)
    }

    /// The per-test temp dir (kept after a failure, removed otherwise).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The name prefix of this lab's namespaces.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Adds a host on the switch with `v4`/16 and its fd53::/64 twin
    /// ([`crate::addr::v6_of`]), loopback up.
    pub fn add_host(&self, name: &str, v4: Ipv4Addr) -> Result<Host> {
        let mut hosts = self.hosts.lock().unwrap_or_else(|p| p.into_inner());
        if hosts.iter().any(|h| h.name == name) {
            bail!("lab already has a host named {name}");
        }
        let host = Host {
            name: name.to_string(),
            ns: format!("{}{name}", self.prefix),
            v4,
            v6: crate::addr::v6_of(v4),
            dir: self.dir.clone(),
        };
        {
            let _guard = NETNS_LOCK.lock().unwrap_or_else(|p| p.into_inner());
            ip(&["netns", "add", &host.ns])?;
        }
        // Registered before configuring, so a failure below still tears
        // the namespace down.
        hosts.push(host.clone());
        let port = format!("h{}", hosts.len());
        let ns = host.ns.as_str();
        ip(&["-n", ns, "link", "set", "lo", "up"])?;
        ip(&[
            "-n",
            &self.switch,
            "link",
            "add",
            &port,
            "type",
            "veth",
            "peer",
            "name",
            "eth0",
            "netns",
            ns,
        ])?;
        ip(&[
            "-n",
            &self.switch,
            "link",
            "set",
            &port,
            "master",
            "br0",
            "up",
        ])?;
        ip(&["-n", ns, "addr", "add", &format!("{v4}/16"), "dev", "eth0"])?;
        host.add_addr(IpAddr::V6(host.v6), 64)?;
        ip(&["-n", ns, "link", "set", "eth0", "up"])?;
        Ok(host)
    }

    /// Stops the host's bridge netfilter hooks (`br_netfilter`, when the
    /// module is loaded, e.g. by Docker) from running the host's iptables
    /// on traffic between lab hosts: the lab's switch is a plain L2
    /// switch, and load benchmarks should not pay for a firewall that is
    /// not part of what they measure. The sysctls are per namespace, so
    /// only this lab's switch is affected. A no-op without the module.
    pub fn disable_bridge_netfilter(&self) -> Result<()> {
        let script = "for f in /proc/sys/net/bridge/bridge-nf-call-*; do \
                      [ -e \"$f\" ] && echo 0 > \"$f\"; done; true";
        let out = Command::new("ip")
            .args(["netns", "exec", &self.switch, "sh", "-c", script])
            .stdin(Stdio::null())
            .output()
            .context("running ip netns exec")?;
        if !out.status.success() {
            bail!(
                "disabling bridge netfilter in {} failed: {}",
                self.switch,
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(())
    }

    /// A host added earlier, by name.
    pub fn host(&self, name: &str) -> Option<Host> {
        let hosts = self.hosts.lock().unwrap_or_else(|p| p.into_inner());
        hosts.iter().find(|h| h.name == name).cloned()
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let hosts = self.hosts.lock().unwrap_or_else(|p| p.into_inner());
        for ns in hosts
            .iter()
            .rev()
            .map(|h| h.ns.as_str())
            .chain([&*self.switch])
        {
            delete_namespace(ns);
        }
        let keep = std::env::var_os("E2E_KEEP").is_some();
        if std::thread::panicking() || keep {
            eprintln!("e2e: lab files kept in {}", self.dir.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

impl Host {
    /// A command running `program` inside this host's namespace.
    /// `program` is resolved through PATH and the sbin dirs when it has
    /// no slash.
    pub fn command(&self, program: &str) -> Command {
        let program = if program.contains('/') {
            PathBuf::from(program)
        } else {
            crate::require::find_tool(program).unwrap_or_else(|| PathBuf::from(program))
        };
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.ns]).arg(program);
        cmd
    }

    /// Runs `program args` in the namespace and returns its output,
    /// whatever its exit status.
    pub fn exec(&self, program: &str, args: &[&str]) -> Result<Output> {
        self.command(program)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .with_context(|| format!("running {program} in {}", self.ns))
    }

    /// Runs `program args` in the namespace; an error with its stderr
    /// unless it succeeds. Returns stdout.
    pub fn run(&self, program: &str, args: &[&str]) -> Result<String> {
        let out = self.exec(program, args)?;
        if !out.status.success() {
            bail!(
                "{program} {args:?} in {} failed ({}): {}{}",
                self.ns,
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Starts a daemon in the namespace, logging to `<lab dir>/<label>.log`.
    pub fn spawn(&self, label: &str, program: &str, args: &[&str]) -> Result<Daemon> {
        self.spawn_with_env(label, program, args, &[])
    }

    /// Like [`Host::spawn`], with extra environment variables.
    pub fn spawn_with_env(
        &self,
        label: &str,
        program: &str,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Result<Daemon> {
        let mut cmd = self.command(program);
        cmd.args(args);
        for (k, v) in env {
            cmd.env(k, v);
        }
        Daemon::spawn(label, cmd, &self.dir.join(format!("{label}.log")))
    }

    /// Adds another address to `eth0` (IPv6 without DAD, so it is usable
    /// at once).
    pub fn add_addr(&self, addr: IpAddr, prefix_len: u8) -> Result<()> {
        let cidr = format!("{addr}/{prefix_len}");
        match addr {
            IpAddr::V4(_) => ip(&["-n", &self.ns, "addr", "add", &cidr, "dev", "eth0"]),
            IpAddr::V6(_) => ip(&["-n", &self.ns, "addr", "add", &cidr, "dev", "eth0", "nodad"]),
        }
    }

    /// Adds a route inside the namespace, e.g. `("10.54.0.0/16", gateway)`.
    pub fn add_route(&self, dest: &str, via: IpAddr) -> Result<()> {
        let family = if via.is_ipv4() { "-4" } else { "-6" };
        ip(&[
            family,
            "-n",
            &self.ns,
            "route",
            "add",
            dest,
            "via",
            &via.to_string(),
        ])
    }

    /// Runs `dig` here; see [`crate::dig`].
    pub fn dig(&self, server: IpAddr, query: &crate::Query) -> Result<crate::DigResult> {
        crate::dig::dig(self, server, query)
    }

    /// The lab temp dir.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

/// Runs `ip ARGS`, an error with its stderr unless it succeeds.
pub fn ip(args: &[&str]) -> Result<()> {
    let out = Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .context("running ip")?;
    if !out.status.success() {
        bail!(
            "ip {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// Kills every process in `ns` and deletes it; errors are ignored since
/// this runs in Drop and during cleanup of stale namespaces.
pub fn delete_namespace(ns: &str) {
    if let Ok(out) = Command::new("ip").args(["netns", "pids", ns]).output() {
        let pids = String::from_utf8_lossy(&out.stdout);
        for pid in pids.split_whitespace() {
            let _ = Command::new("kill")
                .args(["-s", "KILL", pid])
                .stderr(Stdio::null())
                .status();
        }
    }
    let _ = Command::new("ip")
        .args(["netns", "del", ns])
        .stderr(Stdio::null())
        .status();
}

/// Deletes `rl<pid>...` namespaces whose pid no longer exists: leftovers of
/// a run that was killed before its Drop ran.
fn remove_stale_namespaces() {
    let Ok(entries) = std::fs::read_dir("/run/netns") else {
        return;
    };
    let me = std::process::id();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = owner_pid(&name) else {
            continue;
        };
        if pid != me && !Path::new(&format!("/proc/{pid}")).exists() {
            delete_namespace(&name);
        }
    }
}

/// The pid encoded in a lab namespace name `rl<pid>x...`.
fn owner_pid(ns: &str) -> Option<u32> {
    let rest = ns.strip_prefix("rl")?;
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    if !rest[digits.len()..].starts_with('x') {
        return None;
    }
    digits.parse().ok()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // test code
mod tests {
    use super::owner_pid;

    #[test]
    fn parses_owner_pid() {
        assert_eq!(owner_pid("rl1234x0client"), Some(1234));
        assert_eq!(owner_pid("rl1234x12sw"), Some(1234));
        assert_eq!(owner_pid("rlx0"), None);
        assert_eq!(owner_pid("red"), None);
        assert_eq!(owner_pid("rl12"), None);
    }
}
