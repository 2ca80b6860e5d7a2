//! `routerctl bgp`: sessions, and the candidate routes behind each best one.

use std::path::Path;

use clap::Subcommand;
use router::table;
use serde_json::Value;

use super::dns::{call, print_or};
use super::text;

#[derive(Debug, Subcommand)]
pub enum BgpCommand {
    /// Each peer: remote AS, state, uptime or last error, prefixes.
    Show,
    /// Candidate routes per prefix, with why the best one won.
    Routes {
        /// Only this prefix and those inside it, e.g. 10.61.0.0/16.
        prefix: Option<String>,
    },
    /// Restart a peer's session, e.g. after max-prefix stopped it.
    Reset {
        /// The peer's name in router.toml.
        peer: String,
    },
}

pub async fn execute(
    socket: &Path,
    json_output: bool,
    command: Option<&BgpCommand>,
) -> anyhow::Result<()> {
    match command {
        None | Some(BgpCommand::Show) => {
            let body = call(socket, "GET", "/v1/bgp", None).await?;
            print_or(json_output, &body, render_peers)
        }
        Some(BgpCommand::Routes { prefix }) => {
            let path = match prefix {
                Some(prefix) => format!("/v1/bgp/routes?prefix={}", prefix.replace('/', "%2F")),
                None => "/v1/bgp/routes".to_string(),
            };
            let body = call(socket, "GET", &path, None).await?;
            print_or(json_output, &body, render_routes)
        }
        Some(BgpCommand::Reset { peer }) => {
            let request = serde_json::json!({ "peer": peer });
            let body = call(socket, "POST", "/v1/bgp/reset", Some(&request)).await?;
            print_or(json_output, &body, |body| {
                format!("{}\n", text(&body["message"]))
            })
        }
    }
}

fn render_peers(body: &Value) -> String {
    let rows: Vec<Vec<String>> = body["peers"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|peer| {
            let since = match (peer["uptime_secs"].as_u64(), peer["last_error"].as_str()) {
                (Some(secs), _) => format!("up {secs}s"),
                (None, Some(error)) => error.to_string(),
                (None, None) => "-".into(),
            };
            vec![
                text(&peer["name"]),
                text(&peer["address"]),
                text(&peer["remote_asn"]),
                text(&peer["state"]),
                text(&peer["prefixes_received"]),
                text(&peer["prefixes_accepted"]),
                text(&peer["prefixes_advertised"]),
                since,
            ]
        })
        .collect();
    format!(
        "AS {}  router id {}\n{}",
        text(&body["asn"]),
        text(&body["router_id"]),
        table::render(
            &[
                "PEER",
                "ADDRESS",
                "AS",
                "STATE",
                "RECEIVED",
                "ACCEPTED",
                "ADVERTISED",
                "UPTIME / LAST ERROR"
            ],
            &rows,
        )
    )
}

fn render_routes(body: &Value) -> String {
    let mut rows = Vec::new();
    for route in body["routes"].as_array().into_iter().flatten() {
        for (i, candidate) in route["candidates"]
            .as_array()
            .into_iter()
            .flatten()
            .enumerate()
        {
            rows.push(vec![
                if i == 0 {
                    text(&route["prefix"])
                } else {
                    String::new()
                },
                candidate["peer"].as_str().unwrap_or("(local)").to_string(),
                text(&candidate["next_hop"]),
                if candidate["as_path"].as_str() == Some("") {
                    "-".into()
                } else {
                    text(&candidate["as_path"])
                },
                text(&candidate["local_pref"]),
                text(&candidate["med"]),
                text(&candidate["origin"]),
                text(&candidate["standing"]),
            ]);
        }
    }
    if rows.is_empty() {
        return "no routes\n".into();
    }
    table::render(
        &[
            "PREFIX",
            "FROM",
            "NEXT HOP",
            "AS PATH",
            "LOCAL PREF",
            "MED",
            "ORIGIN",
            "STANDING",
        ],
        &rows,
    )
}
