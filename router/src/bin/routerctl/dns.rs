//! `routerctl dns`: the query log, top lists, filter lists, and why a name
//! is blocked or allowed.

use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

use anyhow::anyhow;
use clap::Subcommand;
use router::client;
use router::table;
use serde_json::{Value, json};

use super::{error_text, indent, text};

/// How often `dns log --follow` asks for new entries.
const FOLLOW_INTERVAL: Duration = Duration::from_millis(500);

#[derive(Debug, Subcommand)]
pub enum DnsCommand {
    /// Recent queries, oldest first: from the history with filters, or
    /// live with --follow.
    Log {
        /// Keep printing queries as they arrive.
        #[arg(long)]
        follow: bool,
        /// Only this client's queries.
        #[arg(long)]
        client: Option<IpAddr>,
        /// Only queries from this policy zone.
        #[arg(long)]
        zone: Option<String>,
        /// Only blocked queries.
        #[arg(long)]
        blocked: bool,
        /// Only names containing this text.
        #[arg(long)]
        name: Option<String>,
        /// How many queries to show.
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// Top queried names, top blocked names and top clients.
    Top {
        /// The window: "15m", "1h", "7d".
        #[arg(long, default_value = "1h", value_parser = router::duration::parse)]
        window: Duration,
        /// Rows per table.
        #[arg(long, default_value_t = 10)]
        n: usize,
    },
    /// Which rule of which list decides a name, and why.
    Why {
        /// The name, e.g. ads.example.com.
        name: String,
        /// Decide as for this client (its zone picks the group); default:
        /// the default group.
        #[arg(long)]
        client: Option<IpAddr>,
    },
    /// The filter lists and groups, with their sizes and last refresh.
    Lists,
    /// Fetch every list now.
    Refresh,
}

pub async fn execute(socket: &Path, json_output: bool, command: &DnsCommand) -> anyhow::Result<()> {
    match command {
        DnsCommand::Log {
            follow,
            client,
            zone,
            blocked,
            name,
            limit,
        } => {
            let filter =
                json!({ "client": client, "zone": zone, "blocked": blocked, "name": name });
            log(socket, json_output, &filter, *limit, *follow).await
        }
        DnsCommand::Top { window, n } => {
            let request = json!({ "window_secs": window.as_secs(), "n": n });
            let body = call(socket, "POST", "/v1/dns/top", Some(&request)).await?;
            print_or(json_output, &body, render_top)
        }
        DnsCommand::Why { name, client } => {
            let request = json!({ "name": name, "client": client });
            let body = call(socket, "POST", "/v1/dns/why", Some(&request)).await?;
            print_or(json_output, &body, render_why)
        }
        DnsCommand::Lists => {
            let body = call(socket, "GET", "/v1/dns/lists", None).await?;
            print_or(json_output, &body, render_lists)
        }
        DnsCommand::Refresh => {
            let body = call(socket, "POST", "/v1/dns/refresh", Some(&json!({}))).await?;
            print_or(json_output, &body, |body| {
                let rows: Vec<Vec<String>> = body["lists"]
                    .as_object()
                    .into_iter()
                    .flatten()
                    .map(|(name, outcome)| vec![name.clone(), text(outcome)])
                    .collect();
                table::render(&["LIST", "OUTCOME"], &rows)
            })
        }
    }
}

pub async fn call(
    socket: &Path,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> anyhow::Result<Value> {
    let (code, body) = client::call_with(socket, method, path, body).await?;
    if code != 200 {
        return Err(anyhow!("{}", error_text(&body)));
    }
    Ok(body)
}

pub fn print_or(
    json_output: bool,
    body: &Value,
    render: impl Fn(&Value) -> String,
) -> anyhow::Result<()> {
    if json_output {
        println!("{}", serde_json::to_string_pretty(body)?);
    } else {
        print!("{}", render(body));
    }
    Ok(())
}

async fn log(
    socket: &Path,
    json_output: bool,
    filter: &Value,
    limit: usize,
    follow: bool,
) -> anyhow::Result<()> {
    let request = json!({ "filter": filter, "limit": limit });
    let body = call(socket, "POST", "/v1/dns/log", Some(&request)).await?;
    print_entries(json_output, &body["entries"])?;
    if !follow {
        return Ok(());
    }
    let mut after = body["newest"].as_u64().unwrap_or(0);
    loop {
        tokio::time::sleep(FOLLOW_INTERVAL).await;
        let request = json!({ "filter": filter, "limit": 10_000, "after": after });
        let body = call(socket, "POST", "/v1/dns/log", Some(&request)).await?;
        print_entries(json_output, &body["entries"])?;
        after = body["newest"].as_u64().unwrap_or(after);
    }
}

fn print_entries(json_output: bool, entries: &Value) -> anyhow::Result<()> {
    for item in entries.as_array().into_iter().flatten() {
        let entry = &item["entry"];
        if json_output {
            println!("{}", serde_json::to_string(entry)?);
        } else {
            println!("{}", entry_line(entry));
        }
    }
    Ok(())
}

/// One query on one line, like a resolver's log.
fn entry_line(entry: &Value) -> String {
    let time_ms = entry["time_ms"].as_i64().unwrap_or(0);
    let mut line = format!(
        "{} {:<15} {:<8} {:<40} {:<5} {:<9} {:<8} {:>6}us",
        clock(time_ms),
        text(&entry["client"]),
        entry["zone"].as_str().unwrap_or("-"),
        text(&entry["name"]),
        text(&entry["qtype"]),
        text(&entry["outcome"]),
        text(&entry["rcode"]),
        text(&entry["latency_us"]),
    );
    if let (Some(list), Some(rule)) = (entry["list"].as_str(), entry["rule"].as_str()) {
        line.push_str(&format!("  {list}: {rule}"));
    }
    if let Some(upstream) = entry["upstream"].as_str() {
        line.push_str(&format!("  via {upstream}"));
    }
    line
}

/// UTC time of day with milliseconds; the log spans hours, not years.
fn clock(time_ms: i64) -> String {
    let ms = time_ms.rem_euclid(86_400_000);
    format!(
        "{:02}:{:02}:{:02}.{:03}",
        ms / 3_600_000,
        ms / 60_000 % 60,
        ms / 1000 % 60,
        ms % 1000
    )
}

fn render_top(body: &Value) -> String {
    let mut out = format!(
        "last {}s: {} queries, {} blocked\n",
        text(&body["window_secs"]),
        text(&body["queries"]),
        text(&body["blocked"])
    );
    for (title, key) in [
        ("TOP NAMES", "top_names"),
        ("TOP BLOCKED", "top_blocked"),
        ("TOP CLIENTS", "top_clients"),
    ] {
        let rows: Vec<Vec<String>> = body[key]
            .as_array()
            .into_iter()
            .flatten()
            .map(|pair| vec![text(&pair[0]), text(&pair[1])])
            .collect();
        out.push('\n');
        out.push_str(&table::render(&[title, "QUERIES"], &rows));
    }
    out
}

fn render_why(body: &Value) -> String {
    let mut out = format!(
        "{}: {}\n  {}\n",
        text(&body["name"]),
        text(&body["verdict"]).to_uppercase(),
        text(&body["reason"])
    );
    let who = match body["client"].as_str() {
        Some(client) => format!(
            "client {client}, zone {}, group {}",
            body["zone"].as_str().unwrap_or("-"),
            text(&body["group"])
        ),
        None => format!("group {}", text(&body["group"])),
    };
    out.push_str(&format!("  {who}\n"));
    if let Some(mode) = body["block_mode"].as_str() {
        out.push_str(&format!("  answered with: {mode}\n"));
    }
    if let Some(target) = body["safe_search"].as_str() {
        out.push_str(&format!("  safe search: answered as {target}\n"));
    }
    let rows: Vec<Vec<String>> = body["rules"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|rule| {
            let at = match (rule["file"].as_str(), rule["line"].as_u64()) {
                (Some(file), Some(line)) => format!("{file}:{line}"),
                (Some(file), None) => file.to_string(),
                _ => "-".into(),
            };
            vec![
                text(&rule["list"]),
                text(&rule["rule"]),
                format!(
                    "{}{}",
                    text(&rule["action"]),
                    if rule["important"].as_bool() == Some(true) {
                        " (important)"
                    } else {
                        ""
                    }
                ),
                at,
                rule["text"].as_str().unwrap_or("-").to_string(),
            ]
        })
        .collect();
    if !rows.is_empty() {
        out.push('\n');
        out.push_str(&indent(&table::render(
            &["LIST", "RULE", "ACTION", "WHERE", "LINE"],
            &rows,
        )));
    }
    out
}

fn render_lists(body: &Value) -> String {
    let rows: Vec<Vec<String>> = body["lists"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|list| {
            vec![
                text(&list["name"]),
                text(&list["rules"]),
                text(&list["malformed"]),
                text(&list["blocked"]),
                list["last_outcome"]
                    .as_str()
                    .or_else(|| list["error"].as_str())
                    .unwrap_or("-")
                    .to_string(),
                text(&list["source"]),
            ]
        })
        .collect();
    let mut out = format!(
        "{} domains, {} regexes, {:.1} MiB, built in {} ms\n\n",
        text(&body["domain_entries"]),
        text(&body["regex_rules"]),
        body["memory_bytes"].as_f64().unwrap_or(0.0) / 1_048_576.0,
        text(&body["build_ms"])
    );
    out.push_str(&table::render(
        &[
            "LIST",
            "RULES",
            "MALFORMED",
            "BLOCKED",
            "LAST REFRESH",
            "SOURCE",
        ],
        &rows,
    ));
    let rows: Vec<Vec<String>> = body["groups"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|group| {
            let join = |key: &str| {
                let items: Vec<String> = group[key]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(text)
                    .collect();
                if items.is_empty() {
                    "-".to_string()
                } else {
                    items.join(", ")
                }
            };
            vec![
                text(&group["name"]),
                join("zones"),
                join("clients"),
                join("lists"),
                text(&group["block_mode"]),
                text(&group["safe_search"]),
                text(&group["blocked"]),
            ]
        })
        .collect();
    out.push('\n');
    out.push_str(&table::render(
        &[
            "GROUP",
            "ZONES",
            "CLIENTS",
            "LISTS",
            "BLOCK MODE",
            "SAFE SEARCH",
            "BLOCKED",
        ],
        &rows,
    ));
    out
}
