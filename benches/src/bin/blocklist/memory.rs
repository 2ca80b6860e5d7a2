//! A server's resident memory, from `/proc/<pid>/status`.

use anyhow::{Context, Result};

/// Resident memory now and at its peak, in kB.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Memory {
    /// VmRSS: resident now (anonymous, file-backed and shared pages).
    pub rss_kb: u64,
    /// VmHWM: the most it was ever resident, loading included.
    pub hwm_kb: u64,
}

impl Memory {
    pub fn read(pid: u32) -> Result<Memory> {
        let path = format!("/proc/{pid}/status");
        let status = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
        parse(&status).with_context(|| format!("no VmRSS/VmHWM in {path}"))
    }
}

fn parse(status: &str) -> Option<Memory> {
    let field = |key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
    };
    Some(Memory {
        rss_kb: field("VmRSS:")?,
        hwm_kb: field("VmHWM:")?,
    })
}

/// kB as MB (10^6 bytes), the unit of the tables.
pub fn mb(kb: u64) -> f64 {
    kb as f64 * 1024.0 / 1e6
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_status() {
        let status = "Name:\tunbound\nVmPeak:\t  900 kB\nVmHWM:\t  51200 kB\nVmRSS:\t  40960 kB\n";
        assert_eq!(
            parse(status),
            Some(Memory {
                rss_kb: 40960,
                hwm_kb: 51200
            })
        );
        assert_eq!(parse("Name:\tx\n"), None);
        assert!((mb(1000) - 1.024).abs() < 1e-9);
    }
}
