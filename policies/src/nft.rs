//! Running `nft`: apply or check a ruleset in one transaction, read the
//! appliance's table back, and its counters.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use serde::Serialize;
use serde_json::Value as Json;

use crate::Ruleset;
use crate::compile::{ir::TABLE, json};
use crate::error::PolicyError;

/// The `nft` program to run.
#[derive(Debug, Clone)]
pub struct Nft {
    pub program: PathBuf,
}

impl Default for Nft {
    fn default() -> Nft {
        Nft {
            program: PathBuf::from("nft"),
        }
    }
}

/// Packets and bytes counted for one rule, zone pair policy or default.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Count {
    pub packets: u64,
    pub bytes: u64,
}

impl Nft {
    /// Replaces the appliance's table with `ruleset`, all or nothing.
    pub fn apply(&self, ruleset: &Ruleset) -> Result<(), PolicyError> {
        self.run_json(&["-j", "-f", "-"], &json::replace_table(ruleset))
    }

    /// Asks nft whether it would accept `ruleset`, changing nothing.
    pub fn check(&self, ruleset: &Ruleset) -> Result<(), PolicyError> {
        self.run_json(&["-c", "-j", "-f", "-"], &json::replace_table(ruleset))
    }

    /// Removes the appliance's table; other tables are left alone.
    pub fn remove(&self) -> Result<(), PolicyError> {
        self.run_json(&["-j", "-f", "-"], &json::remove_table())
    }

    /// Puts back a table from its `nft list` text (a snapshot taken
    /// before an apply), replacing the current one in one transaction.
    pub fn restore_text(&self, listing: &str) -> Result<(), PolicyError> {
        let script = format!("table inet {TABLE}\ndelete table inet {TABLE}\n{listing}");
        self.run(&["-f", "-"], script.as_bytes())
    }

    /// The appliance's table as nft prints it, or `None` when absent.
    pub fn list_text(&self) -> Result<Option<String>, PolicyError> {
        let output = self
            .command()
            .args(["list", "table", "inet", TABLE])
            .output()
            .map_err(|e| self.unavailable(e))?;
        if output.status.success() {
            Ok(Some(String::from_utf8_lossy(&output.stdout).into_owned()))
        } else {
            Ok(None)
        }
    }

    /// Counters of the appliance's table, summed by the comment of the
    /// rule or map element that carries them (`rule:<name>`,
    /// `policy:<from>><to>`, `default:<zone>`, ...).
    pub fn counters(&self) -> Result<BTreeMap<String, Count>, PolicyError> {
        let output = self
            .command()
            .args(["-j", "list", "table", "inet", TABLE])
            .output()
            .map_err(|e| self.unavailable(e))?;
        if !output.status.success() {
            return Ok(BTreeMap::new());
        }
        let listing: Json = serde_json::from_slice(&output.stdout)
            .map_err(|e| PolicyError::Nft(format!("unreadable listing: {e}")))?;
        Ok(sum_counters(&listing))
    }

    fn command(&self) -> Command {
        let mut command = Command::new(&self.program);
        command.stdin(Stdio::null());
        command
    }

    fn unavailable(&self, e: std::io::Error) -> PolicyError {
        PolicyError::NftUnavailable(format!("{}: {e}", self.program.display()))
    }

    fn run_json(&self, args: &[&str], payload: &Json) -> Result<(), PolicyError> {
        self.run(args, payload.to_string().as_bytes())
    }

    fn run(&self, args: &[&str], input: &[u8]) -> Result<(), PolicyError> {
        let mut child = Command::new(&self.program)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| self.unavailable(e))?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin.write_all(input).map_err(|e| self.unavailable(e))?;
        }
        let output = child.wait_with_output().map_err(|e| self.unavailable(e))?;
        if output.status.success() {
            Ok(())
        } else {
            Err(PolicyError::Nft(
                String::from_utf8_lossy(&output.stderr).trim().to_string(),
            ))
        }
    }
}

/// The objects of an `nft -j list` document.
pub fn listing_objects(listing: &Json) -> &[Json] {
    listing
        .get("nftables")
        .and_then(Json::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
}

/// Sums counters in an `nft -j list` document by their comments.
pub fn sum_counters(listing: &Json) -> BTreeMap<String, Count> {
    let mut sums: BTreeMap<String, Count> = BTreeMap::new();
    let mut add = |comment: &str, counter: &Json| {
        let count = sums.entry(comment.to_string()).or_default();
        count.packets += counter.get("packets").and_then(Json::as_u64).unwrap_or(0);
        count.bytes += counter.get("bytes").and_then(Json::as_u64).unwrap_or(0);
    };
    for object in listing_objects(listing) {
        if let Some(rule) = object.get("rule") {
            let comment = rule.get("comment").and_then(Json::as_str);
            let counter = rule
                .get("expr")
                .and_then(Json::as_array)
                .and_then(|exprs| exprs.iter().find_map(|e| e.get("counter")));
            if let (Some(comment), Some(counter)) = (comment, counter) {
                add(comment, counter);
            }
        }
        if let Some(map) = object.get("map").or_else(|| object.get("set")) {
            for element in map
                .get("elem")
                .and_then(Json::as_array)
                .into_iter()
                .flatten()
            {
                // A map element is [key, verdict]; the key may be an elem
                // object carrying the counter and the comment.
                let key = element.get(0).unwrap_or(element);
                if let Some(elem) = key.get("elem") {
                    let comment = elem.get("comment").and_then(Json::as_str);
                    if let (Some(comment), Some(counter)) = (comment, elem.get("counter")) {
                        add(comment, counter);
                    }
                }
            }
        }
    }
    sums
}
