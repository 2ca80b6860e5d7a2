//! The blocklist and its three other forms, and the query files.
//!
//! The hosts file comes from `dns::filter::testdata::generate_list`
//! (the same names for the same seed everywhere), plus one last line, the
//! probe name: a name the lab serves, so that any answer other than the
//! block (its real address, or before that nothing) tells the probe the
//! list is not in force yet, whatever the server's block answer is. The
//! other forms are derived by reading the hosts file back, so every server
//! is given exactly the same names.

use std::fmt::Write as _;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, ensure};
use dns::filter::testdata;

/// The name the start probes ask for: the hosts file's last line, and an
/// A/AAAA record in the lab's `plain.lab`.
pub const PROBE_NAME: &str = "listprobe.plain.lab";
/// Its address in the lab (data only: nothing is ever sent to it).
pub const PROBE_A: Ipv4Addr = Ipv4Addr::new(10, 201, 0, 1);
const PROBE_AAAA: Ipv6Addr = Ipv6Addr::new(0xfd61, 0, 0, 0, 0, 0, 0, 1);
/// The RPZ zone's origin (names in the file are relative to it).
const RPZ_ORIGIN: &str = "rpz.bench.";

/// The list in every server's format, and what writing it took.
#[derive(Debug, Clone)]
pub struct ListFiles {
    /// Generated names (the probe name not counted).
    pub domains: u64,
    pub seed: u64,
    /// `0.0.0.0 name` lines: routerd's list.
    pub hosts: PathBuf,
    /// `0.0.0.0 name` and `:: name` lines, dnsmasq's `addn-hosts`: from
    /// 0.0.0.0 lines alone, dnsmasq knows no AAAA for a listed name and
    /// forwards its AAAA queries upstream, so it would not block them.
    /// Pi-hole's `gravity.list` had both lines when IPv6 was on.
    pub dnsmasq: PathBuf,
    /// `local-zone: "name." always_null` lines, for an Unbound `include:`.
    pub unbound: PathBuf,
    /// An RPZ zone, `name CNAME .` and `*.name CNAME .`, for `rpzFile`.
    pub rpz: PathBuf,
    /// Seconds spent generating the hosts file.
    pub generate_s: f64,
}

impl ListFiles {
    /// Writes the hosts file for `domains` names of `seed` into `dir`,
    /// then the Unbound and RPZ forms of it.
    pub fn write(dir: &Path, domains: u64, seed: u64) -> Result<ListFiles> {
        let files = ListFiles {
            domains,
            seed,
            hosts: dir.join("blocklist.hosts"),
            dnsmasq: dir.join("blocklist.dnsmasq.hosts"),
            unbound: dir.join("blocklist.unbound.conf"),
            rpz: dir.join("blocklist.rpz"),
            generate_s: 0.0,
        };
        let started = Instant::now();
        let mut hosts = create(&files.hosts)?;
        let count = usize::try_from(domains).context("--domains too large")?;
        testdata::generate_list(count, seed, &mut hosts)
            .with_context(|| format!("writing {}", files.hosts.display()))?;
        writeln!(hosts, "0.0.0.0 {PROBE_NAME}")?;
        hosts.flush()?;
        drop(hosts);
        let generate_s = started.elapsed().as_secs_f64();

        let mut dnsmasq = create(&files.dnsmasq)?;
        let mut unbound = create(&files.unbound)?;
        let mut rpz = create(&files.rpz)?;
        // The SOA comes first: it names the zone the policy is loaded as.
        write!(
            rpz,
            "$TTL 60\n$ORIGIN {RPZ_ORIGIN}\n\
             @ SOA localhost. hostmaster.localhost. 1 3600 600 86400 60\n\
             @ NS localhost.\n"
        )?;
        let mut seen = 0u64;
        let reader = BufReader::with_capacity(1 << 16, File::open(&files.hosts)?);
        for line in reader.lines() {
            let line = line?;
            let Some(name) = line.strip_prefix("0.0.0.0 ") else {
                continue;
            };
            writeln!(dnsmasq, "0.0.0.0 {name}\n:: {name}")?;
            writeln!(unbound, "local-zone: \"{name}.\" always_null")?;
            writeln!(rpz, "{name} CNAME .\n*.{name} CNAME .")?;
            seen += 1;
        }
        dnsmasq.flush()?;
        unbound.flush()?;
        rpz.flush()?;
        ensure!(
            seen == domains + 1,
            "{} holds {seen} names, expected {} (the list and the probe name)",
            files.hosts.display(),
            domains + 1
        );
        Ok(ListFiles {
            generate_s,
            ..files
        })
    }

    /// Size of a file in MB, for the report.
    pub fn mb(path: &Path) -> f64 {
        std::fs::metadata(path).map_or(f64::NAN, |m| m.len() as f64 / 1e6)
    }

    /// `count` names of the list, spread evenly over it.
    pub fn sample(&self, count: u64) -> Vec<String> {
        let count = count.clamp(1, self.domains.max(1));
        (0..count)
            .map(|i| testdata::name(self.seed, i * self.domains / count))
            .collect()
    }
}

fn create(path: &Path) -> Result<BufWriter<File>> {
    let file = File::create(path).with_context(|| format!("creating {}", path.display()))?;
    Ok(BufWriter::with_capacity(1 << 16, file))
}

/// The probe name's records for `plain.lab`.
pub fn probe_records(ttl: u32) -> String {
    format!("{PROBE_NAME}. {ttl} IN A {PROBE_A}\n{PROBE_NAME}. {ttl} IN AAAA {PROBE_AAAA}\n")
}

/// A dnsperf data file asking for A and AAAA of each of `names`.
pub fn blocked_queries(names: &[String]) -> String {
    let mut text = String::new();
    for name in names {
        let _ = writeln!(text, "{name} A\n{name} AAAA");
    }
    text
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // reason: test code
mod tests {
    use super::*;

    #[test]
    fn every_form_holds_the_same_names() {
        let dir = std::env::temp_dir().join(format!("blocklist-list-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let files = ListFiles::write(&dir, 50, 3).unwrap();
        let hosts = std::fs::read_to_string(&files.hosts).unwrap();
        let unbound = std::fs::read_to_string(&files.unbound).unwrap();
        let rpz = std::fs::read_to_string(&files.rpz).unwrap();
        let dnsmasq = std::fs::read_to_string(&files.dnsmasq).unwrap();
        let first = testdata::name(3, 0);
        assert!(hosts.contains(&format!("0.0.0.0 {first}\n")));
        assert!(hosts.ends_with(&format!("0.0.0.0 {PROBE_NAME}\n")));
        assert!(dnsmasq.starts_with(&format!("0.0.0.0 {first}\n:: {first}\n")));
        assert_eq!(dnsmasq.lines().count(), 2 * 51);
        assert!(unbound.starts_with(&format!("local-zone: \"{first}.\" always_null\n")));
        assert_eq!(unbound.lines().count(), 51);
        assert!(rpz.contains(&format!("\n{first} CNAME .\n*.{first} CNAME .\n")));
        assert_eq!(rpz.lines().count(), 4 + 2 * 51);
        let sample = files.sample(10);
        assert_eq!(sample.len(), 10);
        assert!(sample.iter().all(|n| hosts.contains(&format!(" {n}\n"))));
        assert_eq!(blocked_queries(&sample).lines().count(), 20);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
