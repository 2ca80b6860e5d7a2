//! `routerctl wg`: tunnel and peer health, and key generation so that an
//! operator never needs the `wg` tool.

use std::io::Read;
use std::path::Path;

use anyhow::Context;
use clap::Subcommand;
use router::table;
use router::wireguard::keys;
use serde_json::Value;

use super::dns::{call, print_or};
use super::text;

#[derive(Debug, Subcommand)]
pub enum WgCommand {
    /// Each tunnel and peer: endpoint, last handshake, bytes, verdict.
    Show,
    /// Print a new private key (base64), like `wg genkey`.
    Genkey,
    /// Read a private key on standard input and print its public key.
    Pubkey,
}

pub async fn execute(
    socket: &Path,
    json_output: bool,
    command: Option<&WgCommand>,
) -> anyhow::Result<()> {
    match command {
        None | Some(WgCommand::Show) => {
            let body = call(socket, "GET", "/v1/wireguard", None).await?;
            print_or(json_output, &body, render)
        }
        Some(WgCommand::Genkey) => {
            println!("{}", keys::generate_private());
            Ok(())
        }
        Some(WgCommand::Pubkey) => {
            let mut private = String::new();
            std::io::stdin()
                .take(1024)
                .read_to_string(&mut private)
                .context("cannot read the private key from standard input")?;
            let public = keys::public_of(&private).map_err(|e| anyhow::anyhow!("{e}"))?;
            println!("{public}");
            Ok(())
        }
    }
}

fn render(body: &Value) -> String {
    let tunnels = body["tunnels"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    if tunnels.is_empty() {
        return "no WireGuard tunnels configured\n".into();
    }
    let mut out = String::new();
    for tunnel in tunnels {
        out.push_str(&format!(
            "{}  {}  port {}  {}  public key {}\n",
            text(&tunnel["interface"]),
            text(&tunnel["backend"]),
            text(&tunnel["listen_port"]),
            join(&tunnel["addresses"]),
            text(&tunnel["public_key"]),
        ));
        if let Some(error) = tunnel["error"].as_str() {
            out.push_str(&format!("  error: {error}\n"));
        }
        let rows: Vec<Vec<String>> = tunnel["peers"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|peer| {
                vec![
                    text(&peer["name"]),
                    endpoint(peer),
                    handshake(&peer["latest_handshake_secs_ago"]),
                    text(&peer["rx_bytes"]),
                    text(&peer["tx_bytes"]),
                    join(&peer["allowed_ips"]),
                    text(&peer["verdict"]),
                ]
            })
            .collect();
        let peers = table::render(
            &[
                "PEER",
                "ENDPOINT",
                "HANDSHAKE",
                "RX",
                "TX",
                "ALLOWED IPS",
                "VERDICT",
            ],
            &rows,
        );
        for line in peers.lines() {
            out.push_str("  ");
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// One line of `routerctl status` for a tunnel: its peers by verdict.
pub fn summary(tunnel: &Value) -> Vec<String> {
    let peers = tunnel["peers"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    let count = |verdict: &str| peers.iter().filter(|p| p["verdict"] == verdict).count();
    let mut line = format!(
        "{} peers up of {} ({}",
        count("up"),
        peers.len(),
        text(&tunnel["backend"])
    );
    let names = |verdict: &str| -> Vec<String> {
        peers
            .iter()
            .filter(|p| p["verdict"] == verdict)
            .map(|p| text(&p["name"]))
            .collect()
    };
    for verdict in ["stale", "never"] {
        let down = names(verdict);
        if !down.is_empty() {
            line.push_str(&format!("; {verdict}: {}", down.join(", ")));
        }
    }
    line.push(')');
    if let Some(error) = tunnel["error"].as_str() {
        line.push_str(&format!("; error: {error}"));
    }
    vec![text(&tunnel["interface"]), line]
}

/// The address in use, and the name it came from when there is one.
fn endpoint(peer: &Value) -> String {
    let current = text(&peer["endpoint"]);
    match peer["configured_endpoint"].as_str() {
        Some(configured) if configured != current => format!("{current} ({configured})"),
        _ => current,
    }
}

fn handshake(secs: &Value) -> String {
    match secs.as_u64() {
        None => "never".into(),
        Some(s) if s < 120 => format!("{s}s ago"),
        Some(s) if s < 7200 => format!("{}m ago", s / 60),
        Some(s) => format!("{}h ago", s / 3600),
    }
}

fn join(list: &Value) -> String {
    let items: Vec<String> = list.as_array().into_iter().flatten().map(text).collect();
    if items.is_empty() {
        "-".into()
    } else {
        items.join(",")
    }
}
