//! A fake DNS hierarchy served by NSD, signed with ldns at run time.
//!
//! ```text
//! .                 root  10.53.0.1   signed, DS lab.
//! lab.              tld   10.53.0.2   signed, DS secure.lab. and bogus.lab.
//!   plain.lab.      leaf  10.53.0.3   unsigned: A/AAAA, CNAME chain, NODATA, big TXT
//!   secure.lab.     leaf              signed (root -> lab -> secure.lab)
//!   bogus.lab.      leaf              signed, then an A record altered: bogus
//!   stale.lab.      leaf              unsigned, TTLs of 2 s (serve-stale tests)
//!   fwd.lab.        fwd1 10.53.0.11 and fwd2 10.53.0.12 (`*.fwd.lab` TXT names the server)
//! site2.internal.   site2 10.53.0.21  not delegated: only conditional forwarding reaches it
//! ```
//!
//! Every server is its own host (namespace) so one can be stopped alone.
//! Keys, zone files, NSD configs, the root hints and the trust anchor are
//! written to `<lab dir>/dns`.

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result, bail};

use crate::addr::{FWD1, FWD2, LEAF, ROOT, SITE2, TLD};
use crate::process::Daemon;
use crate::{Host, Lab, Query};

/// What a [`DnsHierarchy`] needs: NSD and the tools that sign its zones
/// (and `dig`, which every suite asks it with).
pub const HIERARCHY_TOOLS: &[&str] = &["nsd", "dig", "ldns-keygen", "ldns-signzone", "ldns-key2ds"];

/// One authoritative server of the hierarchy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Server {
    /// `.` on a.root.lab.
    Root,
    /// `lab.` on ns.lab.
    Tld,
    /// plain.lab, secure.lab, bogus.lab and stale.lab on ns.leaf.lab.
    Leaf,
    /// fwd.lab, first upstream.
    Fwd1,
    /// fwd.lab, second upstream.
    Fwd2,
    /// site2.internal.
    Site2,
}

impl Server {
    /// All servers, in start order.
    pub const ALL: [Server; 6] = [
        Server::Root,
        Server::Tld,
        Server::Leaf,
        Server::Fwd1,
        Server::Fwd2,
        Server::Site2,
    ];

    /// Host name in the lab.
    pub fn name(self) -> &'static str {
        match self {
            Server::Root => "root",
            Server::Tld => "tld",
            Server::Leaf => "leaf",
            Server::Fwd1 => "fwd1",
            Server::Fwd2 => "fwd2",
            Server::Site2 => "site2",
        }
    }

    /// Its IPv4 address.
    pub fn v4(self) -> Ipv4Addr {
        match self {
            Server::Root => ROOT,
            Server::Tld => TLD,
            Server::Leaf => LEAF,
            Server::Fwd1 => FWD1,
            Server::Fwd2 => FWD2,
            Server::Site2 => SITE2,
        }
    }

    /// The zones it serves, as (origin, zone file name).
    fn zones(self) -> &'static [(&'static str, &'static str)] {
        match self {
            Server::Root => &[(".", "root.zone.signed")],
            Server::Tld => &[("lab.", "lab.zone.signed")],
            Server::Leaf => &[
                ("plain.lab.", "plain.lab.zone"),
                ("secure.lab.", "secure.lab.zone.signed"),
                ("bogus.lab.", "bogus.lab.zone.signed"),
                ("stale.lab.", "stale.lab.zone"),
            ],
            Server::Fwd1 => &[("fwd.lab.", "fwd1.fwd.lab.zone")],
            Server::Fwd2 => &[("fwd.lab.", "fwd2.fwd.lab.zone")],
            Server::Site2 => &[("site2.internal.", "site2.internal.zone")],
        }
    }
}

/// The data tests assert on.
pub mod data {
    /// www.plain.lab A
    pub const PLAIN_A: &str = "10.53.1.1";
    /// www.plain.lab AAAA
    pub const PLAIN_AAAA: &str = "fd53::1:1";
    /// v4only.plain.lab A (it has no AAAA: NODATA)
    pub const V4ONLY_A: &str = "10.53.1.2";
    /// c1 -> c2 -> c3 -> target.plain.lab A
    pub const CHAIN_A: &str = "10.53.1.3";
    /// Number of strings in the big.plain.lab TXT RRset.
    pub const BIG_TXT_COUNT: usize = 12;
    /// Negative TTL (SOA minimum) of plain.lab.
    pub const PLAIN_NEG_TTL: u32 = 5;
    /// www.secure.lab A
    pub const SECURE_A: &str = "10.53.2.1";
    /// www.bogus.lab A as signed ...
    pub const BOGUS_SIGNED_A: &str = "10.53.66.66";
    /// ... and as served after the tampering.
    pub const BOGUS_SERVED_A: &str = "10.53.66.67";
    /// www.stale.lab A (TTL [`STALE_TTL`])
    pub const STALE_A: &str = "10.53.3.1";
    /// TTL of everything in stale.lab.
    pub const STALE_TTL: u32 = 2;
    /// www.fwd.lab A (both upstreams)
    pub const FWD_A: &str = "10.53.4.1";
    /// host.site2.internal A
    pub const SITE2_A: &str = "10.53.5.1";
}

/// The running hierarchy. Dropping it stops every server.
#[derive(Debug)]
pub struct DnsHierarchy {
    /// Where keys, zones and configs are.
    pub dir: PathBuf,
    /// Root hints in zone-file format (`. NS a.root.lab.` + its A).
    pub root_hints: PathBuf,
    /// The root KSK as a DNSKEY line, the format hickory's
    /// `TrustAnchors::from_file` (and unbound's trust-anchor-file) reads.
    pub trust_anchor: PathBuf,
    /// The same key as a BIND `trust-anchors { };` clause, for delv.
    pub trust_anchor_bind: PathBuf,
    servers: Vec<AuthServer>,
}

#[derive(Debug)]
struct AuthServer {
    server: Server,
    host: Host,
    conf: PathBuf,
    daemon: Option<Daemon>,
}

impl DnsHierarchy {
    /// Adds one host per server to `lab`, writes and signs the zones,
    /// starts NSD everywhere and waits until each server answers.
    pub fn start(lab: &Lab) -> Result<DnsHierarchy> {
        let dir = lab.dir().join("dns");
        std::fs::create_dir_all(&dir)?;
        let anchor = write_zones(&dir)?;

        let root_hints = dir.join("root.hints");
        std::fs::write(
            &root_hints,
            format!(". 3600000 IN NS a.root.lab.\na.root.lab. 3600000 IN A {ROOT}\n"),
        )?;
        let trust_anchor = dir.join("root.anchor");
        std::fs::write(&trust_anchor, format!(". 3600 IN DNSKEY {anchor}\n"))?;
        let trust_anchor_bind = dir.join("root.anchor.conf");
        let (flags_proto_alg, key) = anchor.rsplit_once(' ').unwrap_or((&anchor, ""));
        std::fs::write(
            &trust_anchor_bind,
            format!("trust-anchors {{\n  \".\" static-key {flags_proto_alg} \"{key}\";\n}};\n"),
        )?;

        let mut servers = Vec::new();
        for server in Server::ALL {
            let host = lab.add_host(server.name(), server.v4())?;
            let conf = write_nsd_conf(&dir, server, &host)?;
            servers.push(AuthServer {
                server,
                host,
                conf,
                daemon: None,
            });
        }
        let mut hierarchy = DnsHierarchy {
            dir,
            root_hints,
            trust_anchor,
            trust_anchor_bind,
            servers,
        };
        hierarchy.start_all()?;
        Ok(hierarchy)
    }

    /// A server's address.
    pub fn addr(&self, server: Server) -> IpAddr {
        IpAddr::V4(server.v4())
    }

    /// A server's host.
    pub fn host(&self, server: Server) -> Option<&Host> {
        self.servers
            .iter()
            .find(|s| s.server == server)
            .map(|s| &s.host)
    }

    /// Stops one server (SIGTERM, then SIGKILL): its address then answers
    /// with ICMP port unreachable.
    pub fn stop(&mut self, server: Server) {
        let s = self.servers.iter_mut().find(|s| s.server == server);
        if let Some(mut daemon) = s.and_then(|s| s.daemon.take()) {
            daemon.stop();
        }
    }

    /// Starts one server again and waits until it answers.
    pub fn start_server(&mut self, server: Server) -> Result<()> {
        let s = self
            .servers
            .iter_mut()
            .find(|s| s.server == server)
            .context("unknown server")?;
        if s.daemon.is_none() {
            let conf = s.conf.to_string_lossy().into_owned();
            let label = format!("nsd-{}", server.name());
            let mut daemon = s.host.spawn(&label, "nsd", &["-d", "-c", &conf])?;
            // NSD logs little; a few lines show a crash or a zone error.
            daemon.set_tail_lines(5);
            s.daemon = Some(daemon);
        }
        let (zone, _) = server.zones().first().context("server without zones")?;
        let query = Query::new(zone, "SOA").norecurse().timeout(1);
        let addr = IpAddr::V4(server.v4());
        let host = s.host.clone();
        let result = crate::wait_until(
            Duration::from_secs(10),
            &format!("nsd on {}", server.name()),
            || host.dig(addr, &query).ok().filter(|r| r.aa()),
        );
        if let Err(e) = result {
            let tail = s
                .daemon
                .as_ref()
                .map(|d| d.log_tail(20))
                .unwrap_or_default();
            bail!("{e}; nsd log:\n{tail}");
        }
        Ok(())
    }

    /// Appends `records` (zone-file lines; relative names are relative to
    /// the zone) to the unsigned zone `origin` (e.g. `"plain.lab."`) on
    /// every server that serves it, and restarts those servers so they
    /// serve the new names. For benchmarks and tests that need more names
    /// than the built-in data. Signed zones are refused: the new records
    /// would have no signatures.
    pub fn add_records(&mut self, origin: &str, records: &str) -> Result<()> {
        for (server, path) in self.unsigned_zone_files(origin)? {
            let mut text = std::fs::read_to_string(&path)
                .with_context(|| format!("reading {}", path.display()))?;
            if !text.ends_with('\n') {
                text.push('\n');
            }
            text.push_str(records);
            if !text.ends_with('\n') {
                text.push('\n');
            }
            std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
            self.stop(server);
            self.start_server(server)?;
        }
        Ok(())
    }

    /// The servers of the unsigned zone `origin` with their copy of its
    /// file; an error for a signed zone (changed records would have no
    /// signatures) or one no server serves.
    fn unsigned_zone_files(&self, origin: &str) -> Result<Vec<(Server, PathBuf)>> {
        let origin = if origin.ends_with('.') {
            origin.to_string()
        } else {
            format!("{origin}.")
        };
        let mut targets = Vec::new();
        for server in Server::ALL {
            for (zone, file) in server.zones() {
                if zone.eq_ignore_ascii_case(&origin) {
                    if file.ends_with(".signed") {
                        bail!("{origin} is signed: cannot change records in it");
                    }
                    targets.push((server, self.dir.join(file)));
                }
            }
        }
        if targets.is_empty() {
            bail!("no lab server serves {origin}");
        }
        Ok(targets)
    }

    /// Replaces the line `old` (compared without surrounding whitespace)
    /// of the unsigned zone `origin` with `new`, on every server that
    /// serves it, and restarts those servers: a record that changes, such
    /// as a name whose address moves. An error if no line of the zone is
    /// `old`; signed zones are refused, as by [`Self::add_records`].
    pub fn replace_record(&mut self, origin: &str, old: &str, new: &str) -> Result<()> {
        let old = old.trim();
        for (server, path) in self.unsigned_zone_files(origin)? {
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("reading {}", path.display()))?;
            let mut found = false;
            let mut changed = String::with_capacity(text.len() + new.len());
            for line in text.lines() {
                if line.trim() == old {
                    found = true;
                    changed.push_str(new.trim());
                } else {
                    changed.push_str(line);
                }
                changed.push('\n');
            }
            if !found {
                bail!("no line {old:?} in {}", path.display());
            }
            std::fs::write(&path, changed)
                .with_context(|| format!("writing {}", path.display()))?;
            self.stop(server);
            self.start_server(server)?;
        }
        Ok(())
    }

    /// Starts another NSD on `host` serving the same zone files as
    /// `server` (records added with [`Self::add_records`] included), with
    /// `server_count` serving processes on SO_REUSEPORT sockets. Not part
    /// of the hierarchy (nothing delegates to it): the load benchmark asks
    /// it directly, as the floor of what answering from memory costs.
    pub fn serve_copy(&self, host: &Host, server: Server, server_count: u32) -> Result<Daemon> {
        let label = format!("{}-copy", server.name());
        let addrs = host_addrs(host);
        let conf = nsd_conf_with(&self.dir, &label, &addrs, server.zones(), server_count)?;
        start_nsd(host, &label, &conf, server.zones())
    }

    /// Stops every server (the "internet is down" case).
    pub fn stop_all(&mut self) {
        for server in Server::ALL {
            self.stop(server);
        }
    }

    /// Starts every stopped server.
    pub fn start_all(&mut self) -> Result<()> {
        for server in Server::ALL {
            self.start_server(server)?;
        }
        Ok(())
    }
}

/// NSD in the foreground, no chroot, no user switch, every state file in
/// the server's own directory so several instances never share one.
fn write_nsd_conf(dir: &Path, server: Server, host: &Host) -> Result<PathBuf> {
    let addrs = [IpAddr::V4(host.v4), IpAddr::V6(host.v6)];
    nsd_conf(dir, server.name(), &addrs, server.zones())
}

/// Starts an NSD on `host` (all its addresses) serving `zones` given as
/// (origin, zone-file text), written under `dir`; waits until the first
/// zone answers authoritatively. For tests that need an upstream of their
/// own outside the hierarchy.
pub fn serve_zones(host: &Host, dir: &Path, label: &str, zones: &[(&str, &str)]) -> Result<Daemon> {
    std::fs::create_dir_all(dir)?;
    let mut files = Vec::new();
    for (origin, text) in zones {
        let file = format!(
            "{label}-{}zone",
            origin.trim_end_matches('.').replace('.', "_") + "."
        );
        std::fs::write(dir.join(&file), text)?;
        files.push((*origin, file));
    }
    let refs: Vec<(&str, &str)> = files.iter().map(|(o, f)| (*o, f.as_str())).collect();
    let conf = nsd_conf(dir, label, &host_addrs(host), &refs)?;
    start_nsd(host, label, &conf, &refs)
}

/// The addresses an NSD on `host` listens on: its IPv4 address, and its
/// IPv6 one when it has one.
fn host_addrs(host: &Host) -> Vec<IpAddr> {
    let mut addrs = vec![IpAddr::V4(host.v4)];
    if !host.v6.is_unspecified() {
        addrs.push(IpAddr::V6(host.v6));
    }
    addrs
}

/// Starts NSD on `host` with `conf` and waits until the first of `zones`
/// answers authoritatively on the host's IPv4 address.
fn start_nsd(host: &Host, label: &str, conf: &Path, zones: &[(&str, &str)]) -> Result<Daemon> {
    let mut daemon = host.spawn(
        &format!("nsd-{label}"),
        "nsd",
        &["-d", "-c", &conf.to_string_lossy()],
    )?;
    daemon.set_tail_lines(5);
    let (origin, _) = zones.first().context("no zones to serve")?;
    let query = Query::new(origin, "SOA").norecurse().timeout(1);
    let addr = IpAddr::V4(host.v4);
    let served = crate::wait_until(Duration::from_secs(10), &format!("nsd {label}"), || {
        host.dig(addr, &query).ok().filter(|r| r.aa())
    });
    if let Err(e) = served {
        bail!("{e}; nsd log:\n{}", daemon.log_tail(20));
    }
    Ok(daemon)
}

/// Writes `<dir>/nsd-<label>/nsd.conf` for an NSD serving `zones`
/// (origin, file name relative to `dir`) on `addrs`, port 53, unprivileged
/// and unchrooted. Returns the file's path.
pub fn nsd_conf(
    dir: &Path,
    label: &str,
    addrs: &[IpAddr],
    zones: &[(&str, &str)],
) -> Result<PathBuf> {
    nsd_conf_with(dir, label, addrs, zones, 1)
}

/// Like [`nsd_conf`], with `server_count` serving processes; more than one
/// share the port through SO_REUSEPORT, as NSD's manual advises.
fn nsd_conf_with(
    dir: &Path,
    label: &str,
    addrs: &[IpAddr],
    zones: &[(&str, &str)],
    server_count: u32,
) -> Result<PathBuf> {
    let server_count = server_count.max(1);
    let reuseport = if server_count > 1 { "yes" } else { "no" };
    let sdir = dir.join(format!("nsd-{label}"));
    std::fs::create_dir_all(&sdir)?;
    let s = sdir.display();
    let mut conf = String::from("server:\n");
    for addr in addrs {
        let _ = writeln!(conf, "    ip-address: {addr}");
    }
    let _ = write!(
        conf,
        "    port: 53
    username: \"\"
    chroot: \"\"
    zonesdir: \"{zones}\"
    database: \"\"
    zonelistfile: \"{s}/zone.list\"
    pidfile: \"{s}/nsd.pid\"
    xfrdfile: \"{s}/xfrd.state\"
    xfrdir: \"{s}\"
    server-count: {server_count}
    reuseport: {reuseport}
    verbosity: 1
    hide-version: yes
    refuse-any: no
    rrl-ratelimit: 0
remote-control:
    control-enable: no
",
        zones = dir.display(),
    );
    for (origin, file) in zones {
        let _ = write!(
            conf,
            "zone:\n    name: \"{origin}\"\n    zonefile: \"{file}\"\n"
        );
    }
    let path = sdir.join("nsd.conf");
    std::fs::write(&path, conf)?;
    Ok(path)
}

/// Writes every zone, signing bottom-up so each parent gets its children's
/// DS. Returns the root KSK's DNSKEY rdata ("257 3 13 <base64>").
fn write_zones(dir: &Path) -> Result<String> {
    use data::*;
    let soa = |origin: &str, ns: &str, neg: u32| {
        // The root's contact would be "hostmaster.." otherwise.
        let mail = match origin {
            "." => "hostmaster.lab.".to_string(),
            _ => format!("hostmaster.{origin}"),
        };
        format!("{origin} IN SOA {ns} {mail} 1 1800 900 604800 {neg}\n{origin} IN NS {ns}\n")
    };

    // plain.lab: unsigned.
    let mut plain = format!(
        "$TTL 300\n{}",
        soa("plain.lab.", "ns.leaf.lab.", PLAIN_NEG_TTL)
    );
    let _ = writeln!(plain, "www IN A {PLAIN_A}\nwww IN AAAA {PLAIN_AAAA}");
    let _ = writeln!(plain, "v4only IN A {V4ONLY_A}");
    let _ = writeln!(
        plain,
        "c1 IN CNAME c2\nc2 IN CNAME c3\nc3 IN CNAME target\ntarget IN A {CHAIN_A}"
    );
    for i in 0..BIG_TXT_COUNT {
        // 12 x ~200 bytes: well over 1500 bytes, so it never fits in 1232.
        let _ = writeln!(plain, "big IN TXT \"big-{i:02}-{}\"", "x".repeat(190));
    }
    std::fs::write(dir.join("plain.lab.zone"), plain)?;

    // stale.lab: unsigned, tiny TTLs.
    let mut stale = format!(
        "$TTL {STALE_TTL}\n{}",
        soa("stale.lab.", "ns.leaf.lab.", STALE_TTL)
    );
    let _ = writeln!(stale, "www IN A {STALE_A}");
    std::fs::write(dir.join("stale.lab.zone"), stale)?;

    // secure.lab: signed.
    let mut secure = format!("$TTL 300\n{}", soa("secure.lab.", "ns.leaf.lab.", 60));
    let _ = writeln!(
        secure,
        "www IN A {SECURE_A}\nwww IN AAAA fd53::2:1\ntxt IN TXT \"secure\""
    );
    std::fs::write(dir.join("secure.lab.zone"), secure)?;
    let secure_ds = sign(dir, "secure.lab.", "secure.lab.zone")?;

    // bogus.lab: signed, then one A record changed so its RRSIG fails.
    let mut bogus = format!("$TTL 300\n{}", soa("bogus.lab.", "ns.leaf.lab.", 60));
    let _ = writeln!(bogus, "www IN A {BOGUS_SIGNED_A}");
    std::fs::write(dir.join("bogus.lab.zone"), bogus)?;
    let bogus_ds = sign(dir, "bogus.lab.", "bogus.lab.zone")?;
    let signed = dir.join("bogus.lab.zone.signed");
    let text = std::fs::read_to_string(&signed)?;
    let needle = format!("\tA\t{BOGUS_SIGNED_A}");
    if !text.contains(&needle) {
        bail!(
            "cannot find {needle:?} to tamper with in {}",
            signed.display()
        );
    }
    std::fs::write(
        &signed,
        text.replace(&needle, &format!("\tA\t{BOGUS_SERVED_A}")),
    )?;

    // fwd.lab: one zone file per upstream, so answers tell them apart.
    for name in ["fwd1", "fwd2"] {
        let mut fwd = format!("$TTL 60\n{}", soa("fwd.lab.", "ns1.fwd.lab.", 5));
        let _ = writeln!(
            fwd,
            "fwd.lab. IN NS ns2.fwd.lab.\nns1 IN A {FWD1}\nns2 IN A {FWD2}"
        );
        let _ = writeln!(fwd, "www IN A {FWD_A}\n* IN TXT \"{name}\"");
        std::fs::write(dir.join(format!("{name}.fwd.lab.zone")), fwd)?;
    }

    // site2.internal: unsigned, reachable only by conditional forwarding.
    let mut site2 = format!(
        "$TTL 300\n{}",
        soa("site2.internal.", "ns.site2.internal.", 60)
    );
    let _ = writeln!(site2, "ns IN A {SITE2}\nhost IN A {SITE2_A}");
    std::fs::write(dir.join("site2.internal.zone"), site2)?;

    // lab.: delegations, and DS for the signed children.
    let mut lab = format!("$TTL 3600\n{}", soa("lab.", "ns.lab.", 60));
    let _ = writeln!(
        lab,
        "ns.lab. IN A {TLD}\na.root.lab. IN A {ROOT}\nns.leaf.lab. IN A {LEAF}"
    );
    for child in ["plain", "secure", "bogus"] {
        let _ = writeln!(lab, "{child}.lab. IN NS ns.leaf.lab.");
    }
    let _ = writeln!(lab, "stale.lab. {STALE_TTL} IN NS ns.leaf.lab.");
    let _ = writeln!(
        lab,
        "fwd.lab. IN NS ns1.fwd.lab.\nfwd.lab. IN NS ns2.fwd.lab."
    );
    let _ = writeln!(lab, "ns1.fwd.lab. IN A {FWD1}\nns2.fwd.lab. IN A {FWD2}");
    let _ = writeln!(lab, "{secure_ds}\n{bogus_ds}");
    std::fs::write(dir.join("lab.zone"), lab)?;
    let lab_ds = sign(dir, "lab.", "lab.zone")?;

    // The root.
    let mut root = format!("$TTL 86400\n{}", soa(".", "a.root.lab.", 60));
    let _ = writeln!(
        root,
        "lab. 3600 IN NS ns.lab.\nns.lab. 3600 IN A {TLD}\na.root.lab. 3600 IN A {ROOT}"
    );
    let _ = writeln!(root, "{lab_ds}");
    std::fs::write(dir.join("root.zone"), root)?;
    sign(dir, ".", "root.zone")?;

    let ksk = std::fs::read_to_string(dir.join(format!("{}.key", key_base(dir, ".", true)?)))?;
    dnskey_rdata(&ksk).context("parsing the root KSK")
}

/// Generates a KSK and a ZSK for `origin`, signs `file` into
/// `file.signed`, and returns the DS record line for the parent.
fn sign(dir: &Path, origin: &str, file: &str) -> Result<String> {
    let ksk = keygen(dir, origin, true)?;
    let zsk = keygen(dir, origin, false)?;
    std::fs::write(dir.join(key_marker(origin, true)), &ksk)?;
    // Inception an hour back, so a validator's clock never sees the
    // signatures as not yet valid.
    let inception = run(dir, "date", &["-u", "-d", "-1 hour", "+%Y%m%d%H%M%S"])?;
    run(
        dir,
        "ldns-signzone",
        &["-i", inception.trim(), "-o", origin, file, &ksk, &zsk],
    )?;
    let ds = run(dir, "ldns-key2ds", &["-n", "-2", &format!("{ksk}.key")])?;
    let ds = ds.trim();
    if !ds.contains("DS") {
        bail!("ldns-key2ds gave no DS for {origin}: {ds:?}");
    }
    Ok(ds.to_string())
}

/// `ldns-keygen` in `dir`; returns the key's base name (K<origin>+013+id).
fn keygen(dir: &Path, origin: &str, ksk: bool) -> Result<String> {
    let mut args = vec!["-a", "ECDSAP256SHA256"];
    if ksk {
        args.push("-k");
    }
    args.push(origin);
    let base = run(dir, "ldns-keygen", &args)?;
    Ok(base.trim().to_string())
}

/// File recording a zone's KSK base name ("." is written as "root").
fn key_marker(origin: &str, ksk: bool) -> String {
    let zone = if origin == "." {
        "root"
    } else {
        origin.trim_end_matches('.')
    };
    format!("{zone}.{}", if ksk { "ksk" } else { "zsk" })
}

fn key_base(dir: &Path, origin: &str, ksk: bool) -> Result<String> {
    Ok(std::fs::read_to_string(dir.join(key_marker(origin, ksk)))?
        .trim()
        .to_string())
}

/// "257 3 13 <base64>" from a `.key` file line
/// (`. IN DNSKEY 257 3 13 <base64> ;{id = ...}`, tab-separated).
fn dnskey_rdata(key_file: &str) -> Option<String> {
    let record = key_file.lines().find(|l| l.contains("DNSKEY"))?;
    let record = record.split(';').next()?;
    let (_, rdata) = record.split_once("DNSKEY")?;
    let words: Vec<&str> = rdata.split_whitespace().collect();
    (words.len() >= 4).then(|| words.join(" "))
}

/// Runs an offline tool (no network) with `dir` as working directory.
fn run(dir: &Path, program: &str, args: &[&str]) -> Result<String> {
    let path = crate::require::tool(program)?;
    let out = Command::new(&path)
        .args(args)
        .current_dir(dir)
        .output()
        .with_context(|| format!("running {program}"))?;
    if !out.status.success() {
        bail!(
            "{program} {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // test code
mod tests {
    #[test]
    fn parses_key_file() {
        let line = ".\tIN\tDNSKEY\t257 3 13 abc+/def== ;{id = 1 (ksk), size = 256b}\n";
        assert_eq!(
            super::dnskey_rdata(line).as_deref(),
            Some("257 3 13 abc+/def==")
        );
    }
}
