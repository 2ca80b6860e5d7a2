//! Accept mode off (RFC 5798's Accept_Mode = False, 6.4.3): a master that
//! does not own its virtual addresses takes no traffic addressed to them,
//! only what keeps them reachable (ARP, which is not IP, and IPv6
//! neighbour discovery). Useful for a floating gateway; never for an
//! address the DNS service answers on, which the configuration refuses.
//!
//! nftables does the dropping: one table per instance, present while the
//! instance is master, written and removed whole.

use std::io;
use std::process::Stdio;

use ipnet::IpNet;
use tokio::io::AsyncWriteExt;

use super::settings::InstanceConfig;
use vrrp::OWNER_PRIORITY;

#[derive(Debug)]
pub struct NoAccept {
    table: String,
    ruleset: String,
}

impl NoAccept {
    /// `None` when the instance accepts: accept mode on, or the owner.
    pub fn for_instance(config: &InstanceConfig) -> Option<NoAccept> {
        if config.accept || config.priority == OWNER_PRIORITY {
            return None;
        }
        let table = table_name(config);
        let ruleset = ruleset(&table, &config.addresses);
        Some(NoAccept { table, ruleset })
    }

    /// Puts the table in place (replacing any left behind).
    pub async fn install(&self) -> io::Result<()> {
        nft(&format!("{}{}", self.clear(), self.ruleset)).await
    }

    /// Removes the table; absent is fine.
    pub async fn remove(&self) -> io::Result<()> {
        nft(&self.clear()).await
    }

    /// Creating the table first makes the delete succeed when it is
    /// absent, in the same transaction.
    fn clear(&self) -> String {
        format!("table inet {0}\ndelete table inet {0}\n", self.table)
    }
}

fn table_name(config: &InstanceConfig) -> String {
    let name: String = config
        .name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    format!("vrrp_noaccept_{}_{name}", config.vrid)
}

fn ruleset(table: &str, addresses: &[IpNet]) -> String {
    let list = |v6: bool| {
        addresses
            .iter()
            .filter(|a| a.addr().is_ipv6() == v6)
            .map(|a| a.addr().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let (v4, v6) = (list(false), list(true));
    let mut rules = String::new();
    if !v4.is_empty() {
        rules.push_str(&format!("    ip daddr {{ {v4} }} drop\n"));
    }
    if !v6.is_empty() {
        rules.push_str(&format!(
            "    ip6 daddr {{ {v6} }} icmpv6 type {{ nd-neighbor-solicit, nd-neighbor-advert }} accept\n    ip6 daddr {{ {v6} }} drop\n"
        ));
    }
    format!(
        "table inet {table} {{\n  chain input {{\n    type filter hook input priority -5; policy accept;\n{rules}  }}\n}}\n"
    )
}

async fn nft(script: &str) -> io::Result<()> {
    let mut child = tokio::process::Command::new("nft")
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(script.as_bytes()).await?;
    }
    let output = child.wait_with_output().await?;
    if output.status.success() {
        Ok(())
    } else {
        Err(io::Error::other(format!(
            "nft: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_drops_traffic_to_the_addresses_but_not_neighbour_discovery() {
        let addresses: Vec<IpNet> = ["192.168.10.1/24", "fd00:10::1/64"]
            .iter()
            .filter_map(|a| a.parse().ok())
            .collect();
        let text = ruleset("vrrp_noaccept_10_gw", &addresses);
        assert!(text.contains("ip daddr { 192.168.10.1 } drop"), "{text}");
        let accept = text.find("nd-neighbor-solicit").unwrap_or(usize::MAX);
        let drop = text.find("ip6 daddr { fd00:10::1 } drop").unwrap_or(0);
        assert!(
            accept < drop,
            "neighbour discovery is accepted first:\n{text}"
        );
    }
}
