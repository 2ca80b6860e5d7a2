//! `routerctl policy`: check, apply, confirm, show and count the firewall.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{anyhow, bail};
use clap::Subcommand;
use router::client;
use router::config::DEFAULT_POLICIES_DIR;
use router::table;
use serde_json::{Value, json};

use super::{error_text, indent, text};

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Validate a policy directory (default: the daemon's) and show what
    /// applying it would change, in zone terms and as nft text.
    Check {
        /// The directory to check.
        dir: Option<PathBuf>,
    },
    /// Apply the policy files; with --confirm, the previous ruleset comes
    /// back by itself unless `routerctl policy confirm` follows in time.
    Apply {
        /// How long to wait for the confirmation: "90s", "2m", "1h".
        #[arg(long, value_parser = parse_duration)]
        confirm: Option<Duration>,
    },
    /// Keep the policy applied with --confirm.
    Confirm,
    /// The running policy: zones, sizes and the live nft table.
    Show,
    /// Packet and byte counters per rule, zone pair and zone default.
    Stats,
}

pub async fn execute(
    socket: &Path,
    json_output: bool,
    command: &PolicyCommand,
) -> anyhow::Result<()> {
    match command {
        PolicyCommand::Check { dir } => check(socket, json_output, dir.as_deref()).await,
        PolicyCommand::Apply { confirm } => {
            let request = json!({ "confirm_secs": confirm.map(|c| c.as_secs()) });
            let body = post(socket, "/v1/policy/apply", &request, json_output).await?;
            if !json_output {
                for warning in body["warnings"].as_array().into_iter().flatten() {
                    println!("{}", diagnostic_text(warning));
                }
                println!("{}", text(&body["message"]));
                println!("{}", summary_text(&body["summary"]));
            }
            Ok(())
        }
        PolicyCommand::Confirm => {
            let body = post(socket, "/v1/policy/confirm", &json!({}), json_output).await?;
            if !json_output {
                println!("{}", text(&body["message"]));
            }
            Ok(())
        }
        PolicyCommand::Show => {
            let body = get(socket, "/v1/policy", json_output).await?;
            if !json_output {
                print!("{}", render_show(&body));
            }
            Ok(())
        }
        PolicyCommand::Stats => {
            let body = get(socket, "/v1/policy/stats", json_output).await?;
            if !json_output {
                print!("{}", render_stats(&body));
            }
            Ok(())
        }
    }
}

async fn get(socket: &Path, path: &str, json_output: bool) -> anyhow::Result<Value> {
    let (code, body) = client::call(socket, "GET", path).await?;
    answer(code, body, json_output)
}

async fn post(
    socket: &Path,
    path: &str,
    request: &Value,
    json_output: bool,
) -> anyhow::Result<Value> {
    let (code, body) = client::call_with(socket, "POST", path, Some(request)).await?;
    answer(code, body, json_output)
}

fn answer(code: u16, body: Value, json_output: bool) -> anyhow::Result<Value> {
    if json_output {
        println!("{}", serde_json::to_string_pretty(&body)?);
    }
    if code != 200 {
        let mut message = error_text(&body);
        for diagnostic in body["diagnostics"].as_array().into_iter().flatten() {
            message.push('\n');
            message.push_str(&diagnostic_text(diagnostic));
        }
        return Err(anyhow!("{message}"));
    }
    Ok(body)
}

/// Asks the daemon, which diffs against what runs; without a daemon, a
/// directory given on the command line is checked here, against nothing.
async fn check(socket: &Path, json_output: bool, dir: Option<&Path>) -> anyhow::Result<()> {
    let request =
        json!({ "dir": dir.map(|d| d.canonicalize().unwrap_or_else(|_| d.to_path_buf())) });
    let report = match client::call_with(socket, "POST", "/v1/policy/check", Some(&request)).await {
        Ok((200 | 422, report)) => report,
        Ok((_, body)) => bail!("{}", error_text(&body)),
        Err(e) => {
            let dir = dir.map_or_else(|| PathBuf::from(DEFAULT_POLICIES_DIR), Path::to_path_buf);
            eprintln!(
                "routerctl: {e:#}; checking {} here, against an empty ruleset",
                dir.display()
            );
            local_check(&dir)
        }
    };
    if json_output {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", render_check(&report));
    }
    if report["ok"].as_bool() == Some(true) {
        Ok(())
    } else {
        Err(anyhow!(
            "the policy in {} is not valid",
            text(&report["dir"])
        ))
    }
}

fn local_check(dir: &Path) -> Value {
    json!(router::firewall::check_dir(
        dir,
        None,
        None,
        &Default::default()
    ))
}

fn diagnostic_text(d: &Value) -> String {
    let place = match d["line"].as_u64() {
        Some(0) | None => text(&d["path"]),
        Some(line) => format!("{}:{line}:{}", text(&d["path"]), text(&d["column"])),
    };
    let mut out = format!("{place}: {}: {}", text(&d["severity"]), text(&d["message"]));
    if let Some(fix) = d["fix"].as_str() {
        out.push_str(&format!("\n  fix: {fix}"));
    }
    out
}

fn summary_text(summary: &Value) -> String {
    format!(
        "{} zones, {} zone pair policies, {} rules, {} port forwards -> {} nft rules, {} set and map elements",
        text(&summary["zones"]),
        text(&summary["zone_pairs"]),
        text(&summary["rules"]),
        text(&summary["port_forwards"]),
        text(&summary["nft_rules"]),
        text(&summary["nft_elements"]),
    )
}

fn render_check(report: &Value) -> String {
    let mut out = String::new();
    for diagnostic in report["diagnostics"].as_array().into_iter().flatten() {
        out.push_str(&diagnostic_text(diagnostic));
        out.push('\n');
    }
    if report["ok"].as_bool() != Some(true) {
        return out;
    }
    out.push_str(&format!(
        "policy OK: {}\n",
        summary_text(&report["summary"])
    ));
    let changes: Vec<&str> = report["changes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    if changes.is_empty() {
        out.push_str("\nNo changes against the running policy.\n");
        return out;
    }
    out.push_str("\nChanges, in zone terms:\n");
    for change in changes {
        out.push_str(&format!("  {change}\n"));
    }
    out.push_str("\nChanges, as nft text (running -> new):\n");
    out.push_str(&indent(report["nft_diff"].as_str().unwrap_or_default()));
    out
}

fn render_show(body: &Value) -> String {
    let status = &body["status"];
    let mut out = format!("policy directory {}\n", text(&status["dir"]));
    if status["applied"].as_bool() != Some(true) {
        out.push_str("no policy applied by this routerd\n");
    } else {
        out.push_str(&format!("applied: {}\n", summary_text(&status["summary"])));
    }
    if let Some(secs) = status["confirm_within_secs"].as_u64() {
        out.push_str(&format!(
            "AWAITING CONFIRMATION: rolls back in {secs}s unless `routerctl policy confirm`\n"
        ));
    }
    if let Some(error) = status["last_error"].as_str() {
        out.push_str(&format!("last error: {error}\n"));
    }
    let rows: Vec<Vec<String>> = status["zones"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|zone| {
            let subnets: Vec<String> = zone["subnets"]
                .as_array()
                .into_iter()
                .flatten()
                .map(text)
                .collect();
            vec![
                text(&zone["name"]),
                text(&zone["interface"]),
                subnets.join(" "),
                text(&zone["input"]),
                text(&zone["forward"]),
            ]
        })
        .collect();
    if !rows.is_empty() {
        out.push('\n');
        out.push_str(&indent(&table::render(
            &["ZONE", "INTERFACE", "SUBNETS", "INPUT", "FORWARD"],
            &rows,
        )));
    }
    match body["nft_text"].as_str() {
        Some(live) => {
            out.push_str("\nThe table in the kernel:\n");
            out.push_str(live);
        }
        None => out.push_str("\nThe kernel has no `inet router` table.\n"),
    }
    out
}

fn render_stats(body: &Value) -> String {
    let Some(counters) = body["counters"].as_object() else {
        return "no counters: no policy applied\n".into();
    };
    let rows: Vec<Vec<String>> = counters
        .iter()
        .map(|(what, count)| vec![what.clone(), text(&count["packets"]), text(&count["bytes"])])
        .collect();
    table::render(&["COUNTER", "PACKETS", "BYTES"], &rows)
}

/// "90s", "2m", "1h" or plain seconds.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let duration = router::duration::parse(text)?;
    if duration.is_zero() {
        return Err("a confirmation window of 0 would roll back at once".into());
    }
    Ok(duration)
}

#[cfg(test)]
mod tests {
    use super::parse_duration;
    use std::time::Duration;

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("45"), Ok(Duration::from_secs(45)));
        assert!(parse_duration("0").is_err());
        assert!(parse_duration("2 weeks").is_err());
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
    }
}
