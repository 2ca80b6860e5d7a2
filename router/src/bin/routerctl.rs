//! `routerctl`: the operator's CLI for a running `routerd`.
#![allow(clippy::print_stdout)] // reason: printing is this program's job

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::anyhow;
use clap::{CommandFactory, Parser, Subcommand};
use router::client;
use router::config::DEFAULT_CONTROL_SOCKET;
use router::table;
use serde_json::Value;

#[path = "routerctl/bgp.rs"]
mod bgp;
#[path = "routerctl/dns.rs"]
mod dns;
#[path = "routerctl/pair.rs"]
mod pair;
#[path = "routerctl/policy.rs"]
mod policy;
#[path = "routerctl/vrrp.rs"]
mod vrrp;
#[path = "routerctl/wg.rs"]
mod wg;

/// The operator's CLI for a running routerd.
///
/// Status, reload, the firewall, DNS, BGP, VRRP, the pair and WireGuard:
/// tables by default, the same data with --json.
#[derive(Debug, Parser)]
#[command(name = "routerctl", version)]
struct Cli {
    /// The daemon's control socket.
    #[arg(long, global = true, env = "ROUTER_CONTROL_SOCKET", default_value = DEFAULT_CONTROL_SOCKET)]
    socket: PathBuf,
    /// Print JSON instead of tables.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Status of every subsystem: DNS, filtering, firewall, BGP, VRRP,
    /// the pair and WireGuard.
    Status,
    /// Re-read the configuration file; a bad file is rejected and the
    /// running configuration kept.
    Reload,
    /// The firewall: zones and policies.
    #[command(subcommand)]
    Policy(policy::PolicyCommand),
    /// DNS: the query log, top lists, filter lists and decisions.
    #[command(subcommand)]
    Dns(dns::DnsCommand),
    /// BGP sessions (`show`, the default) and routes.
    Bgp {
        #[command(subcommand)]
        command: Option<bgp::BgpCommand>,
    },
    /// VRRP instances: state, priority now and configured, master,
    /// transitions and the last reason.
    Vrrp,
    /// The primary/standby pair: role, the other node, both configuration
    /// versions, the last sync, VRRP per instance; `pair sync` asks now.
    Pair {
        #[command(subcommand)]
        command: Option<pair::PairCommand>,
    },
    /// WireGuard tunnels and peers (`wg show` by default), and keys.
    Wg {
        #[command(subcommand)]
        command: Option<wg::WgCommand>,
    },
}

fn main() -> ExitCode {
    if let Some(code) = router::cli_docs::generate_if_asked(Cli::command()) {
        return code;
    }
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("routerctl: cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(execute(&cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("routerctl: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn execute(cli: &Cli) -> anyhow::Result<()> {
    match &cli.command {
        Command::Policy(command) => policy::execute(&cli.socket, cli.json, command).await,
        Command::Dns(command) => dns::execute(&cli.socket, cli.json, command).await,
        Command::Bgp { command } => bgp::execute(&cli.socket, cli.json, command.as_ref()).await,
        Command::Wg { command } => wg::execute(&cli.socket, cli.json, command.as_ref()).await,
        Command::Vrrp => vrrp::execute(&cli.socket, cli.json).await,
        Command::Pair { command } => pair::execute(&cli.socket, cli.json, command.as_ref()).await,
        Command::Status => {
            let (code, body) = client::call(&cli.socket, "GET", "/v1/status").await?;
            if code != 200 {
                return Err(anyhow!(
                    "status failed (HTTP {code}): {}",
                    error_text(&body)
                ));
            }
            if cli.json {
                println!("{}", serde_json::to_string_pretty(&body)?);
            } else {
                print!("{}", render_status(&body));
            }
            Ok(())
        }
        Command::Reload => {
            let (code, body) = client::call(&cli.socket, "POST", "/v1/reload").await?;
            if cli.json {
                println!("{}", serde_json::to_string_pretty(&body)?);
            }
            if code != 200 {
                return Err(anyhow!("{}", error_text(&body)));
            }
            if !cli.json {
                println!("{}", body["message"].as_str().unwrap_or("reloaded"));
            }
            Ok(())
        }
    }
}

fn error_text(body: &Value) -> String {
    body["error"]
        .as_str()
        .map_or_else(|| body.to_string(), str::to_string)
}

fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    }
}

fn render_status(status: &Value) -> String {
    let dns = &status["dns"];
    let totals = &dns["totals"];
    let listen: Vec<String> = dns["listen"]
        .as_array()
        .map(|a| a.iter().map(text).collect())
        .unwrap_or_default();
    let mode = format!(
        "{}{}",
        text(&dns["resolver"]["mode"]),
        if dns["resolver"]["dnssec"].as_bool() == Some(true) {
            " (DNSSEC validating)"
        } else {
            ""
        }
    );
    let mut out = format!(
        "routerd {}  up {}s  config {}  reloads {}\n",
        text(&status["version"]),
        text(&status["uptime_secs"]),
        text(&status["config"]),
        text(&status["reloads"]),
    );
    if let Some(error) = status["last_reload_error"].as_str() {
        out.push_str(&format!("last reload failed: {error}\n"));
    }
    out.push_str("\nDNS\n");
    let rows = vec![
        vec!["mode".into(), mode],
        vec!["listen".into(), listen.join(", ")],
        vec!["workers".into(), text(&dns["workers"])],
        vec!["cache entries".into(), text(&dns["cache_entries"])],
        vec![
            "hit ratio".into(),
            format!("{:.1}%", dns["hit_ratio"].as_f64().unwrap_or(0.0) * 100.0),
        ],
        vec![
            "queries/s".into(),
            format!("{:.1}", dns["qps"].as_f64().unwrap_or(0.0)),
        ],
        vec![
            "queries".into(),
            format!(
                "{} udp, {} tcp",
                text(&totals["udp_queries"]),
                text(&totals["tcp_queries"])
            ),
        ],
        vec![
            "answers".into(),
            format!(
                "{} cached, {} resolved, {} stale, {} servfail, {} refused, {} rate-limited",
                text(&totals["cache_hits"]),
                text(&totals["cache_misses"]),
                text(&totals["stale_answers"]),
                text(&totals["servfail"]),
                text(&totals["refused"]),
                text(&totals["rate_limited"]),
            ),
        ],
    ];
    out.push_str(&indent(&table::render(&["", ""], &rows)));
    let filter = &status["filter"];
    let lists = filter["lists"].as_array().map_or(0, Vec::len);
    let mut rows = vec![vec![
        "lists".into(),
        format!(
            "{lists} ({} domains, {} regexes, {:.1} MiB)",
            text(&filter["domain_entries"]),
            text(&filter["regex_rules"]),
            filter["memory_bytes"].as_f64().unwrap_or(0.0) / 1_048_576.0
        ),
    ]];
    rows.push(vec![
        "groups".into(),
        filter["groups"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|g| text(&g["name"]))
            .collect::<Vec<_>>()
            .join(", "),
    ]);
    rows.push(vec!["blocked".into(), text(&totals["blocked"])]);
    for list in filter["lists"].as_array().into_iter().flatten() {
        if let Some(error) = list["error"].as_str() {
            rows.push(vec![
                format!("list {}", text(&list["name"])),
                error.to_string(),
            ]);
        }
    }
    let log = &status["query_log"];
    if !log.is_null() {
        rows.push(vec![
            "query log".into(),
            format!(
                "{} rows, {:.1} MiB, {} dropped{}",
                text(&log["rows"]),
                log["db_bytes"].as_f64().unwrap_or(0.0) / 1_048_576.0,
                text(&log["dropped"]),
                log["last_error"]
                    .as_str()
                    .map_or_else(String::new, |e| format!(", last error: {e}"))
            ),
        ]);
    }
    out.push_str(
        "
Filtering
",
    );
    out.push_str(&indent(&table::render(&["", ""], &rows)));
    let mut upstream_rows = Vec::new();
    let mut push_upstreams = |zone: &str, list: &Value| {
        for u in list.as_array().into_iter().flatten() {
            upstream_rows.push(vec![
                text(&u["upstream"]),
                zone.to_string(),
                if u["healthy"].as_bool() == Some(true) {
                    "up".into()
                } else {
                    "DOWN".into()
                },
                text(&u["queries"]),
                text(&u["failures"]),
                u["last_rtt_ms"]
                    .as_f64()
                    .map_or_else(|| "-".into(), |ms| format!("{ms:.1} ms")),
                text(&u["last_error"]),
            ]);
        }
    };
    push_upstreams("(all)", &dns["resolver"]["upstreams"]);
    for zone in dns["resolver"]["forward_zones"]
        .as_array()
        .into_iter()
        .flatten()
    {
        push_upstreams(&text(&zone["zone"]), &zone["upstreams"]);
    }
    if !upstream_rows.is_empty() {
        out.push('\n');
        out.push_str(&indent(&table::render(
            &[
                "UPSTREAM",
                "ZONE",
                "HEALTH",
                "QUERIES",
                "FAILURES",
                "RTT",
                "LAST ERROR",
            ],
            &upstream_rows,
        )));
    }
    let firewall = &status["firewall"];
    if !firewall.is_null() {
        out.push_str("\nFirewall\n");
        let applied = if firewall["applied"].as_bool() == Some(true) {
            let summary = &firewall["summary"];
            format!(
                "{} zones, {} rules -> {} nft rules",
                text(&summary["zones"]),
                text(&summary["rules"]),
                text(&summary["nft_rules"])
            )
        } else {
            "no policy applied".into()
        };
        let mut rows = vec![
            vec!["policy".into(), text(&firewall["dir"])],
            vec!["applied".into(), applied],
        ];
        if let Some(secs) = firewall["confirm_within_secs"].as_u64() {
            rows.push(vec!["confirm".into(), format!("rolls back in {secs}s")]);
        }
        if let Some(error) = firewall["last_error"].as_str() {
            rows.push(vec!["last error".into(), error.to_string()]);
        }
        out.push_str(&indent(&table::render(&["", ""], &rows)));
    }
    if let Some(peers) = status["bgp"]["peers"].as_array() {
        out.push_str("\nBGP\n");
        let rows: Vec<Vec<String>> = peers
            .iter()
            .map(|peer| {
                let detail = match peer["last_error"].as_str() {
                    Some(error) if peer["state"] != "Established" => format!(" ({error})"),
                    _ => String::new(),
                };
                vec![
                    text(&peer["name"]),
                    format!(
                        "{} AS {}, {} prefixes accepted{detail}",
                        text(&peer["state"]),
                        text(&peer["remote_asn"]),
                        text(&peer["prefixes_accepted"])
                    ),
                ]
            })
            .collect();
        out.push_str(&indent(&table::render(&["", ""], &rows)));
    }
    if let Some(instances) = status["vrrp"]["instances"].as_array() {
        out.push_str("\nVRRP\n");
        let rows: Vec<Vec<String>> = instances
            .iter()
            .map(|instance| {
                vec![
                    text(&instance["name"]),
                    format!(
                        "{} priority {}, master {}",
                        text(&instance["state"]),
                        text(&instance["priority"]),
                        text(&instance["master"])
                    ),
                ]
            })
            .collect();
        out.push_str(&indent(&table::render(&["", ""], &rows)));
    }
    if status["pair"].is_object() {
        out.push_str("\nPair\n");
        out.push_str(&indent(&table::render(
            &["", ""],
            &pair::status_rows(&status["pair"]),
        )));
    }
    if let Some(tunnels) = status["wireguard"]["tunnels"].as_array() {
        out.push_str("\nWireGuard\n");
        let rows: Vec<Vec<String>> = tunnels.iter().map(wg::summary).collect();
        out.push_str(&indent(&table::render(&["", ""], &rows)));
    }
    out
}

fn indent(text: &str) -> String {
    text.lines()
        .map(|line| format!("  {line}\n"))
        .collect::<String>()
        .lines()
        .skip_while(|l| l.trim().is_empty())
        .map(|l| format!("{l}\n"))
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests

    use serde_json::json;

    use super::*;

    fn status_with_pair(pair: Value) -> Value {
        json!({
            "version": "0.1.0", "uptime_secs": 60, "config": "/etc/router/router.toml",
            "reloads": 0, "last_reload_error": null,
            "dns": { "listen": ["127.0.0.1:53"], "workers": 1, "cache_entries": 0,
                     "hit_ratio": 0.0, "qps": 0.0, "totals": {},
                     "resolver": { "mode": "recursive", "dnssec": true, "upstreams": [], "forward_zones": [] } },
            "filter": { "lists": [], "groups": [] },
            "pair": pair,
        })
    }

    #[test]
    fn status_shows_a_healthy_pair() {
        let out = render_status(&status_with_pair(json!({
            "role": "standby", "listen": null, "peer": "192.168.10.2:8054",
            "peer_reachable": true, "last_contact_secs": 4,
            "version": "0123456789abcdef", "peer_version": "0123456789abcdef",
            "in_sync": true, "last_sync": null, "last_error": null,
        })));
        let pair = out.split("\nPair\n").nth(1).unwrap();
        let lines: Vec<&str> = pair.lines().map(str::trim).collect();
        assert_eq!(
            lines,
            [
                "pair     healthy",
                "role     standby",
                "primary  192.168.10.2:8054, reachable, last contact 4s ago",
                "config   this node 0123456789ab, primary 0123456789ab (in sync)",
            ],
            "{out}"
        );
    }

    #[test]
    fn status_names_a_split() {
        let out = render_status(&status_with_pair(json!({
            "role": "primary", "listen": "192.168.10.2:8054", "peer": null,
            "peer_reachable": true, "last_contact_secs": 1,
            "version": "0123456789abcdef", "peer_version": "0123456789abcdef",
            "in_sync": true, "last_sync": null, "last_error": null,
            "both_hold": ["192.168.20.1", "192.168.30.1"],
        })));
        assert!(
            out.contains("pair     DEGRADED: SPLIT, both nodes hold 192.168.20.1, 192.168.30.1"),
            "{out}"
        );
    }

    #[test]
    fn status_says_why_a_pair_is_degraded() {
        let out = render_status(&status_with_pair(json!({
            "role": "primary", "listen": "192.168.10.2:8054", "peer": null,
            "peer_reachable": false, "last_contact_secs": null,
            "version": "0123456789abcdef", "peer_version": null,
            "in_sync": false, "last_sync": null,
            "last_error": "the configuration is not handed to the standby: bad",
        })));
        assert!(
            out.contains("pair     DEGRADED: standby not reachable, versions differ, see error"),
            "{out}"
        );
        assert!(
            out.contains("standby  NOT reachable, never in contact"),
            "{out}"
        );
        assert!(
            out.contains("config   this node 0123456789ab, standby none (DIFFERENT)"),
            "{out}"
        );
        assert!(
            out.contains("error    the configuration is not handed to the standby: bad"),
            "{out}"
        );
    }

    #[test]
    fn status_without_a_pair_has_no_pair_section() {
        let mut status = status_with_pair(Value::Null);
        status.as_object_mut().unwrap().remove("pair");
        assert!(!render_status(&status).contains("Pair"));
    }
}
