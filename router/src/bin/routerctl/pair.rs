//! `routerctl pair`: this node's role, the other node, both configuration
//! versions, the last sync and this node's VRRP instances.

use std::fmt::Write;
use std::path::Path;

use clap::Subcommand;
use serde_json::Value;

use super::dns::{call, print_or};
use super::text;

#[derive(Debug, Subcommand)]
pub enum PairCommand {
    /// Ask the primary now instead of at the next interval (standby), and
    /// try again a version refused before.
    Sync,
}

pub async fn execute(
    socket: &Path,
    json_output: bool,
    command: Option<&PairCommand>,
) -> anyhow::Result<()> {
    match command {
        None => {
            let body = call(socket, "GET", "/v1/pair", None).await?;
            print_or(json_output, &body, render)
        }
        Some(PairCommand::Sync) => {
            let body = call(socket, "POST", "/v1/pair/sync", None).await?;
            print_or(json_output, &body, |b| format!("{}\n", text(&b["message"])))
        }
    }
}

fn short(version: &Value) -> String {
    match version.as_str() {
        Some(v) => v.get(..12).unwrap_or(v).to_string(),
        None => "none".into(),
    }
}

/// The other node's role, as this node's status names it.
fn other_role(pair: &Value) -> &'static str {
    if pair["role"].as_str() == Some("primary") {
        "standby"
    } else {
        "primary"
    }
}

/// "reachable" or "NOT reachable", and when the nodes last spoke.
fn reach_and_contact(pair: &Value) -> (&'static str, String) {
    let reachable = if pair["peer_reachable"].as_bool() == Some(true) {
        "reachable"
    } else {
        "NOT reachable"
    };
    let contact = match pair["last_contact_secs"].as_u64() {
        Some(secs) => format!("last contact {secs}s ago"),
        None => "never in contact".into(),
    };
    (reachable, contact)
}

/// The pair in `routerctl status`: one verdict, then what it rests on.
/// Healthy means the other node is reachable, both run the same version
/// of the shared configuration and nothing failed since.
pub fn status_rows(pair: &Value) -> Vec<Vec<String>> {
    let role = text(&pair["role"]);
    let other = other_role(pair);
    let reachable = pair["peer_reachable"].as_bool() == Some(true);
    let in_sync = pair["in_sync"].as_bool() == Some(true);
    let error = pair["last_error"].as_str();
    let mut problems = Vec::new();
    if !reachable {
        problems.push(format!("{other} not reachable"));
    }
    if !in_sync {
        problems.push("versions differ".to_string());
    }
    if error.is_some() {
        problems.push("see error".to_string());
    }
    let split = both_hold(pair);
    if !split.is_empty() {
        problems.push(format!("SPLIT, both nodes hold {split}"));
    }
    let verdict = if problems.is_empty() {
        "healthy".to_string()
    } else {
        format!("DEGRADED: {}", problems.join(", "))
    };
    let (reach, contact) = reach_and_contact(pair);
    let address = match (pair["peer"].as_str(), pair["listen"].as_str()) {
        (Some(peer), _) => format!("{peer}, "),
        _ => String::new(),
    };
    let mut rows = vec![
        vec!["pair".into(), verdict],
        vec!["role".into(), role.clone()],
        vec![other.into(), format!("{address}{reach}, {contact}")],
        vec![
            "config".into(),
            format!(
                "this node {}, {other} {}{}",
                short(&pair["version"]),
                short(&pair["peer_version"]),
                if in_sync {
                    " (in sync)"
                } else {
                    " (DIFFERENT)"
                }
            ),
        ],
    ];
    if let Some(error) = error {
        rows.push(vec!["error".into(), error.to_string()]);
    }
    rows
}

/// The floating addresses both nodes hold as master, by commas; empty
/// when there is no split.
fn both_hold(pair: &Value) -> String {
    pair["both_hold"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect::<Vec<_>>()
        .join(", ")
}

fn render(body: &Value) -> String {
    let role = text(&body["role"]);
    let other = other_role(body);
    let mut out = String::new();
    let _ = writeln!(out, "role      {role}");
    let peer = match (body["peer"].as_str(), body["listen"].as_str()) {
        (Some(peer), _) => peer.to_string(),
        (None, Some(listen)) => format!("(asks this node on {listen})"),
        (None, None) => "-".into(),
    };
    let (reachable, contact) = reach_and_contact(body);
    let _ = writeln!(out, "{other:<9} {peer}  {reachable}, {contact}");
    let sync = if body["in_sync"].as_bool() == Some(true) {
        "in sync"
    } else {
        "DIFFERENT"
    };
    let _ = writeln!(
        out,
        "versions  this node {}  {other} {}  ({sync})",
        short(&body["version"]),
        short(&body["peer_version"])
    );
    if let Some(last) = body["last_sync"].as_object() {
        let _ = writeln!(
            out,
            "last sync {}s ago: {} {}: {}",
            text(&last["secs_ago"]),
            text(&last["outcome"]),
            short(&last["version"]),
            text(&last["message"])
        );
    }
    if let Some(error) = body["last_error"].as_str() {
        let _ = writeln!(out, "error     {error}");
    }
    let split = both_hold(body);
    if !split.is_empty() {
        let _ = writeln!(
            out,
            "SPLIT     both nodes hold {split} as VRRP master: their adverts do not reach each other (multicast filtered on the way, or a firewall)"
        );
    }
    for instance in body["vrrp"].as_array().into_iter().flatten() {
        let master = instance["master"]
            .as_str()
            .map_or(String::new(), |m| format!(", master {m}"));
        let _ = writeln!(
            out,
            "vrrp      {}: {} (priority {}{master})",
            text(&instance["name"]),
            text(&instance["state"]),
            text(&instance["priority"])
        );
    }
    out
}
