//! The firewall as the daemon runs it: the policy directory, the applied
//! ruleset, commit-confirm and its rollback.
//!
//! Nothing here changes the kernel's ruleset unless the whole policy has
//! loaded, checked and compiled, and then only in one nft transaction: a
//! bad policy leaves the running one in place.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use policies::nft::{Count, Nft};
use policies::{Diagnostic, Loaded, NodeServices, PolicyError, Protected, Ruleset, Severity};
use serde::Serialize;
use tracing::{info, warn};

use crate::config::Config;
use crate::links::{self, ZoneLink};

/// What this node's own configuration adds to the policy files, which a
/// primary and its standby share.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NodeFirewall {
    /// Interfaces the WireGuard tunnels bring up with their own
    /// addresses: their zones' links are left to the tunnels.
    pub tunnel_interfaces: Vec<String>,
    /// This node's own zone addresses, in place of the policy's.
    pub own_addresses: policies::NodeAddresses,
    /// What the input chain lets through whatever the zones say.
    pub services: NodeServices,
    /// The node's own services the management zone must keep reaching.
    pub protected: Protected,
}

impl NodeFirewall {
    pub fn of(config: &Config) -> NodeFirewall {
        let mut vrrp_interfaces: Vec<String> = config
            .vrrp
            .iter()
            .flat_map(|vrrp| &vrrp.instances)
            .map(|instance| instance.interface.clone())
            .collect();
        vrrp_interfaces.sort();
        vrrp_interfaces.dedup();
        let pair = config.pair.as_ref();
        NodeFirewall {
            tunnel_interfaces: config.wireguard.interfaces(),
            own_addresses: pair
                .map(|pair| pair.zone_addresses.clone())
                .unwrap_or_default(),
            services: NodeServices { vrrp_interfaces },
            protected: Protected {
                tcp_ports: pair
                    .and_then(|pair| pair.listen)
                    .map(|listen| (listen.port(), "pair listener".to_string()))
                    .into_iter()
                    .collect(),
            },
        }
    }
}

/// The running firewall.
#[derive(Debug)]
pub struct Firewall {
    dir: PathBuf,
    nft: Nft,
    applied: Option<Applied>,
    pending: Option<Pending>,
    last_error: Option<String>,
    rollbacks: u64,
    next_pending_id: u64,
    node: NodeFirewall,
}

#[derive(Debug, Clone)]
struct Applied {
    loaded: Loaded,
    ruleset: Ruleset,
    at: SystemTime,
}

/// An apply waiting for `routerctl policy confirm`.
#[derive(Debug)]
struct Pending {
    id: u64,
    deadline: Instant,
    /// The table as nft printed it before the apply (`None`: there was
    /// none); rollback restores exactly this.
    snapshot: Option<String>,
    previous: Option<Applied>,
}

/// A checked policy and what applying it would change.
#[derive(Debug, Serialize)]
pub struct CheckReport {
    pub dir: PathBuf,
    pub ok: bool,
    pub diagnostics: Vec<Diagnostic>,
    pub summary: Option<Summary>,
    /// Changes in zone terms against the running policy.
    pub changes: Vec<String>,
    /// A unified diff of the nft text, running against new.
    pub nft_diff: String,
    /// The new ruleset as nft text.
    pub nft_text: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub files: Vec<PathBuf>,
    pub zones: usize,
    pub zone_pairs: usize,
    pub rules: usize,
    pub port_forwards: usize,
    pub nft_rules: usize,
    pub nft_elements: usize,
}

#[derive(Debug, Serialize)]
pub struct ApplyReport {
    pub message: String,
    pub summary: Summary,
    pub warnings: Vec<Diagnostic>,
    pub links: links::LinksReport,
    /// Seconds left to confirm, when the apply awaits confirmation.
    pub confirm_within_secs: Option<u64>,
    /// Identifies the pending apply for its rollback timer.
    #[serde(skip)]
    pub pending_id: Option<u64>,
}

/// Why an apply did not happen; the running ruleset is unchanged.
#[derive(Debug, Serialize)]
pub struct ApplyError {
    pub error: String,
    pub diagnostics: Vec<Diagnostic>,
}

impl ApplyError {
    fn from_policy(e: &PolicyError) -> ApplyError {
        let diagnostics = e.diagnostics().to_vec();
        let errors = diagnostics
            .iter()
            .filter(|d| d.severity == Severity::Error)
            .count();
        let error = if errors > 0 {
            format!(
                "the policy has {errors} error{}; the running ruleset stays",
                if errors == 1 { "" } else { "s" }
            )
        } else {
            format!("{e}; the running ruleset stays")
        };
        ApplyError { error, diagnostics }
    }

    fn message(error: impl Into<String>) -> ApplyError {
        ApplyError {
            error: error.into(),
            diagnostics: Vec::new(),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct FirewallStatus {
    pub dir: PathBuf,
    pub applied: bool,
    pub applied_at_unix: Option<u64>,
    pub summary: Option<Summary>,
    pub zones: Vec<ZoneStatus>,
    pub confirm_within_secs: Option<u64>,
    pub rollbacks: u64,
    pub last_error: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct ZoneStatus {
    pub name: String,
    pub interface: String,
    pub subnets: Vec<String>,
    pub input: String,
    pub forward: String,
}

#[derive(Debug, Serialize)]
pub struct StatsReport {
    /// Counters by what they count: `rule:<name>`, `policy:<from>><to>`,
    /// `default:<zone>`, `forward:<name>`, `masquerade`, `dns-intercept`.
    pub counters: BTreeMap<String, Count>,
}

impl Firewall {
    pub fn new(dir: PathBuf, node: NodeFirewall) -> Firewall {
        Firewall {
            dir,
            nft: Nft::default(),
            applied: None,
            pending: None,
            last_error: None,
            rollbacks: 0,
            next_pending_id: 1,
            node,
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn node(&self) -> &NodeFirewall {
        &self.node
    }

    /// Points the firewall at another directory and node configuration,
    /// and returns the ones it had; nothing changes in the kernel until
    /// the next [`Firewall::apply`].
    pub fn reconfigure(&mut self, dir: PathBuf, node: NodeFirewall) -> (PathBuf, NodeFirewall) {
        (
            std::mem::replace(&mut self.dir, dir),
            std::mem::replace(&mut self.node, node),
        )
    }

    /// Validates `dir` (default: the configured one) and compares it with
    /// the running policy. Changes nothing.
    pub fn check(&self, dir: Option<&Path>) -> CheckReport {
        self.check_as(dir.unwrap_or(&self.dir), &self.node)
    }

    /// As [`Firewall::check`], for `dir` on a node configured as `node`.
    pub fn check_as(&self, dir: &Path, node: &NodeFirewall) -> CheckReport {
        let running = self
            .applied
            .as_ref()
            .map(|applied| (&applied.loaded.policy, &applied.ruleset));
        check_dir(dir, running, Some(&self.nft), node)
    }

    fn load(&self, dir: &Path) -> Result<(Loaded, Ruleset), PolicyError> {
        load(dir, Some(&self.nft), &self.node)
    }

    /// Loads the policy from disk and applies it: zone interfaces first,
    /// then the ruleset in one transaction. With `confirm`, the previous
    /// ruleset comes back unless [`Firewall::confirm`] is called in time.
    pub async fn apply(&mut self, confirm: Option<Duration>) -> Result<ApplyReport, ApplyError> {
        if let Some(pending) = &self.pending {
            return Err(ApplyError::message(format!(
                "an apply awaits confirmation for {} more seconds: run `routerctl policy confirm`, or wait for the rollback",
                pending
                    .deadline
                    .saturating_duration_since(Instant::now())
                    .as_secs()
            )));
        }
        let (loaded, ruleset) = match tokio::task::block_in_place(|| self.load(&self.dir)) {
            Ok(loaded) => loaded,
            Err(e) => return Err(self.failed(ApplyError::from_policy(&e))),
        };
        let zone_links: Vec<ZoneLink> = loaded
            .policy
            .zones
            .iter()
            .filter(|zone| !self.node.tunnel_interfaces.contains(&zone.interface))
            .map(|zone| ZoneLink {
                zone: zone.name.clone(),
                name: zone.interface.clone(),
                vlan: zone.vlan.as_ref().map(|vlan| links::Vlan {
                    parent: vlan.parent.clone(),
                    id: vlan.id,
                }),
                addresses: zone.router_addresses().collect(),
            })
            .collect();
        let links = match links::ensure_zone_links(&zone_links).await {
            Ok(report) => report,
            Err(e) => {
                return Err(self.failed(ApplyError::message(format!(
                    "zone interfaces: {e:#}; the ruleset was not changed"
                ))));
            }
        };
        let snapshot = if confirm.is_some() {
            match tokio::task::block_in_place(|| self.nft.list_text()) {
                Ok(snapshot) => snapshot,
                Err(e) => return Err(self.failed(ApplyError::from_policy(&e))),
            }
        } else {
            None
        };
        if let Err(e) = tokio::task::block_in_place(|| self.nft.apply(&ruleset)) {
            return Err(self.failed(ApplyError::from_policy(&e)));
        }
        let summary = summary(&loaded, &ruleset);
        let warnings = loaded.warnings.clone();
        for warning in &warnings {
            warn!("{warning}");
        }
        let previous = self.applied.replace(Applied {
            loaded,
            ruleset,
            at: SystemTime::now(),
        });
        self.last_error = None;
        let mut report = ApplyReport {
            message: "policy applied".into(),
            summary,
            warnings,
            links,
            confirm_within_secs: None,
            pending_id: None,
        };
        if let Some(confirm) = confirm {
            let id = self.next_pending_id;
            self.next_pending_id += 1;
            self.pending = Some(Pending {
                id,
                deadline: Instant::now() + confirm,
                snapshot,
                previous,
            });
            report.message = format!(
                "policy applied; it rolls back in {}s unless `routerctl policy confirm` arrives",
                confirm.as_secs()
            );
            report.confirm_within_secs = Some(confirm.as_secs());
            report.pending_id = Some(id);
        }
        info!(
            zones = report.summary.zones,
            rules = report.summary.rules,
            nft_rules = report.summary.nft_rules,
            confirm_secs = report.confirm_within_secs,
            "policy applied"
        );
        Ok(report)
    }

    fn failed(&mut self, error: ApplyError) -> ApplyError {
        warn!(error = %error.error, "policy not applied; the running ruleset stays");
        self.last_error = Some(error.error.clone());
        error
    }

    /// Keeps a pending apply.
    pub fn confirm(&mut self) -> Result<String, String> {
        match self.pending.take() {
            Some(_) => {
                info!("policy confirmed");
                Ok("policy confirmed; it stays".into())
            }
            None => Err("no apply awaits confirmation".into()),
        }
    }

    /// Puts the ruleset from before a pending apply back, if `id` is still
    /// the one pending (a confirm or another rollback may have come first).
    pub fn roll_back(&mut self, id: u64) {
        let Some(pending) = self.pending.take_if(|pending| pending.id == id) else {
            return;
        };
        let restored = tokio::task::block_in_place(|| match &pending.snapshot {
            Some(text) => self.nft.restore_text(text),
            None => self.nft.remove(),
        });
        match restored {
            Ok(()) => {
                self.applied = pending.previous;
                self.rollbacks += 1;
                let message = "not confirmed in time: the previous ruleset is back".to_string();
                warn!("{message}");
                self.last_error = Some(message);
            }
            Err(e) => {
                let message = format!("rollback failed, the new ruleset stays: {e}");
                warn!("{message}");
                self.last_error = Some(message);
            }
        }
    }

    pub fn status(&self) -> FirewallStatus {
        let zones = self
            .applied
            .as_ref()
            .map(|applied| {
                applied
                    .loaded
                    .policy
                    .zones
                    .iter()
                    .map(|zone| ZoneStatus {
                        name: zone.name.clone(),
                        interface: zone.interface.clone(),
                        subnets: zone.subnets().map(|net| net.to_string()).collect(),
                        input: zone.input.to_string(),
                        forward: zone.forward.to_string(),
                    })
                    .collect()
            })
            .unwrap_or_default();
        FirewallStatus {
            dir: self.dir.clone(),
            applied: self.applied.is_some(),
            applied_at_unix: self.applied.as_ref().and_then(|applied| {
                applied
                    .at
                    .duration_since(UNIX_EPOCH)
                    .ok()
                    .map(|d| d.as_secs())
            }),
            summary: self
                .applied
                .as_ref()
                .map(|applied| summary(&applied.loaded, &applied.ruleset)),
            zones,
            confirm_within_secs: self.pending.as_ref().map(|pending| {
                pending
                    .deadline
                    .saturating_duration_since(Instant::now())
                    .as_secs()
            }),
            rollbacks: self.rollbacks,
            last_error: self.last_error.clone(),
        }
    }

    /// The table as the kernel holds it now.
    pub fn live_text(&self) -> Result<Option<String>, String> {
        tokio::task::block_in_place(|| self.nft.list_text()).map_err(|e| e.to_string())
    }

    pub fn stats(&self) -> Result<StatsReport, String> {
        let counters =
            tokio::task::block_in_place(|| self.nft.counters()).map_err(|e| e.to_string())?;
        Ok(StatsReport { counters })
    }
}

/// Loads and compiles the policy in `dir`; with `nft`, also asks nft
/// whether it would take the ruleset, which catches what our model cannot
/// (a kernel without a needed expression) and changes nothing.
fn load(
    dir: &Path,
    nft: Option<&Nft>,
    node: &NodeFirewall,
) -> Result<(Loaded, Ruleset), PolicyError> {
    let mut loaded = policies::load_dir(dir, &node.protected)?;
    policies::localize(&mut loaded.policy, &node.own_addresses)?;
    let ruleset = policies::compile(&loaded.policy, &node.services);
    if let Some(nft) = nft {
        nft.check(&ruleset)?;
    }
    Ok((loaded, ruleset))
}

/// Validates the policy in `dir` and compares it with `running` (none:
/// against an empty ruleset). Changes nothing. Without `nft` (no daemon,
/// no root), nft's own check is skipped.
pub fn check_dir(
    dir: &Path,
    running: Option<(&policies::Policy, &Ruleset)>,
    nft: Option<&Nft>,
    node: &NodeFirewall,
) -> CheckReport {
    let dir = dir.to_path_buf();
    match load(&dir, nft, node) {
        Err(e) => CheckReport {
            dir,
            ok: false,
            diagnostics: diagnostics_of(&e),
            summary: None,
            changes: Vec::new(),
            nft_diff: String::new(),
            nft_text: String::new(),
        },
        Ok((loaded, ruleset)) => {
            let text = ruleset.to_text();
            let running_text = running
                .map(|(_, ruleset)| ruleset.to_text())
                .unwrap_or_default();
            CheckReport {
                dir,
                ok: true,
                diagnostics: loaded.warnings.clone(),
                summary: Some(summary(&loaded, &ruleset)),
                changes: policies::diff::zone_terms(
                    running.map(|(policy, _)| policy),
                    &loaded.policy,
                ),
                nft_diff: policies::diff::text(&running_text, &text),
                nft_text: text,
            }
        }
    }
}

fn diagnostics_of(e: &PolicyError) -> Vec<Diagnostic> {
    match e {
        PolicyError::Invalid(found) => found.clone(),
        other => vec![Diagnostic {
            severity: Severity::Error,
            path: PathBuf::new(),
            line: 0,
            column: 0,
            message: other.to_string(),
            fix: None,
        }],
    }
}

fn summary(loaded: &Loaded, ruleset: &Ruleset) -> Summary {
    let policy = &loaded.policy;
    Summary {
        files: loaded.files.clone(),
        zones: policy.zones.len(),
        zone_pairs: policy.pairs.len(),
        rules: policy.rules.len(),
        port_forwards: policy.port_forwards.len(),
        nft_rules: ruleset.rule_count(),
        nft_elements: ruleset.element_count(),
    }
}
