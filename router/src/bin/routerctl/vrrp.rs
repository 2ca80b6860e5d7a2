//! `routerctl vrrp`: each instance's state, priority and master.

use std::path::Path;

use router::table;
use serde_json::Value;

use super::dns::{call, print_or};
use super::text;

pub async fn execute(socket: &Path, json_output: bool) -> anyhow::Result<()> {
    let body = call(socket, "GET", "/v1/vrrp", None).await?;
    print_or(json_output, &body, render)
}

fn render(body: &Value) -> String {
    let rows: Vec<Vec<String>> = body["instances"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|instance| {
            let priority = if instance["priority"] == instance["configured_priority"] {
                text(&instance["priority"])
            } else {
                format!(
                    "{} (configured {})",
                    text(&instance["priority"]),
                    text(&instance["configured_priority"])
                )
            };
            let master = match instance["master"].as_str() {
                Some(master) => format!("{master} ({})", text(&instance["master_priority"])),
                None => "-".into(),
            };
            let reason = instance["error"]
                .as_str()
                .or(instance["last_reason"].as_str())
                .unwrap_or("-")
                .to_string();
            vec![
                text(&instance["name"]),
                text(&instance["interface"]),
                text(&instance["vrid"]),
                format!(
                    "{} {}s",
                    text(&instance["state"]),
                    text(&instance["state_secs"])
                ),
                priority,
                master,
                text(&instance["transitions"]),
                reason,
            ]
        })
        .collect();
    let mut out = table::render(
        &[
            "instance",
            "interface",
            "vrid",
            "state",
            "priority",
            "master",
            "transitions",
            "last reason",
        ],
        &rows,
    );
    if let Some(failing) = body["failing_checks"].as_array()
        && !failing.is_empty()
    {
        let names: Vec<String> = failing.iter().map(text).collect();
        out.push_str(&format!("failing checks: {}\n", names.join(", ")));
    }
    out
}
