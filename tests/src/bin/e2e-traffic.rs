//! Traffic probes and listeners for the firewall lab, run inside a
//! namespace with `ip netns exec` (see `e2e::traffic`):
//!
//! - `e2e-traffic tcp-connect ADDR:PORT TIMEOUT_MS` opens a connection;
//! - `e2e-traffic tcp-greeting ADDR:PORT TIMEOUT_MS` also reads the
//!   listener's greeting;
//! - `e2e-traffic udp-request ADDR:PORT TIMEOUT_MS` sends a datagram and
//!   waits for the reply;
//!
//!   each prints one line: `accepted [LABEL PEER]`, `rejected DETAIL` or
//!   `dropped`, and exits 0;
//! - `e2e-traffic tcp-listen LABEL ADDR:PORT...` and
//!   `e2e-traffic udp-echo LABEL ADDR:PORT...` serve until killed,
//!   answering every client with `LABEL PEER` (the address they saw) and
//!   logging that line to stdout.
#![allow(clippy::print_stdout)] // reason: printing is this program's job

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use e2e::traffic::{format_exchange, serve_tcp, serve_udp, tcp_probe, udp_probe};

const USAGE: &str = "usage: e2e-traffic tcp-connect|tcp-greeting|udp-request ADDR:PORT TIMEOUT_MS \
                     | tcp-listen|udp-echo LABEL ADDR:PORT...";

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match args.as_slice() {
        [
            mode @ ("tcp-connect" | "tcp-greeting" | "udp-request"),
            target,
            timeout_ms,
        ] => {
            let target: SocketAddr = target.parse().context("ADDR:PORT")?;
            let timeout = Duration::from_millis(timeout_ms.parse().context("TIMEOUT_MS")?);
            let exchange = match *mode {
                "tcp-connect" => tcp_probe(target, timeout, false),
                "tcp-greeting" => tcp_probe(target, timeout, true),
                _ => udp_probe(target, timeout),
            };
            println!("{}", format_exchange(&exchange));
        }
        [mode @ ("tcp-listen" | "udp-echo"), label, binds @ ..] if !binds.is_empty() => {
            let binds = binds
                .iter()
                .map(|b| b.parse().with_context(|| format!("ADDR:PORT {b:?}")))
                .collect::<Result<Vec<SocketAddr>>>()?;
            if *mode == "tcp-listen" {
                serve_tcp(label, &binds)?;
            } else {
                serve_udp(label, &binds)?;
            }
        }
        _ => bail!(USAGE),
    }
    Ok(())
}
