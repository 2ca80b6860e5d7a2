//! The daemon: starts the services from a checked configuration, keeps
//! them running, reloads on SIGHUP or `routerctl reload`, and stops cleanly
//! on SIGTERM.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use dns::server::DnsService;
use dns::stats::Totals;
use serde::Serialize;
use tokio::signal::unix::{SignalKind, signal};
use tracing::{error, info, warn};

use crate::bgp::driver::BgpService;
use crate::bgp::status::BgpStatus;
use crate::config::{self, Config};
use crate::filtering::{FilterStatus, Filtering};
use crate::firewall::{Firewall, FirewallStatus, NodeFirewall};
use crate::notify::Notifier;
use crate::pair::service::PairService;
use crate::vrrp::driver::VrrpService;
use crate::vrrp::status::VrrpStatus;
use crate::wireguard::manager::Wireguard;
use crate::wireguard::resolve::own_server;
use crate::wireguard::status::WireguardStatus;
use crate::{control, metrics};

/// How often tunnels are read for peer health and endpoint names.
const WIREGUARD_INTERVAL: Duration = Duration::from_secs(1);
/// How often counters are sampled for the queries-per-second figure.
const SAMPLE_INTERVAL: Duration = Duration::from_secs(1);
/// The window the queries-per-second figure is averaged over.
const QPS_WINDOW: usize = 10;

/// State shared by the control API, the metrics endpoint and the signal
/// handlers.
#[derive(Debug)]
pub struct Shared {
    config_path: PathBuf,
    started: Instant,
    running: tokio::sync::Mutex<Running>,
    snapshot: Mutex<Option<MetricsSnapshot>>,
    /// `None` while the configuration has no `[policies]`.
    pub firewall: tokio::sync::Mutex<Option<Firewall>>,
    pub filtering: Arc<Filtering>,
    /// `None` when `[dns.query_log] enabled = false`.
    pub query_log: Option<dns::querylog::QueryLog>,
    pub wireguard: tokio::sync::Mutex<Wireguard>,
    /// `None` when there is no `[bgp]`.
    pub bgp: tokio::sync::Mutex<Option<BgpService>>,
    /// `None` when there is no `[vrrp]`.
    pub vrrp: tokio::sync::Mutex<Option<VrrpService>>,
    /// What the sampler finds failing for VRRP's checks (stale WireGuard
    /// peers, BGP sessions down), as the instances' health sees it.
    vrrp_findings: tokio::sync::watch::Sender<Vec<String>>,
    /// `None` while there is no `[pair]`; replaced when a reload
    /// changes it.
    pair: Mutex<Option<PairService>>,
    /// This daemon, for the services it starts after its own start.
    me: std::sync::Weak<Shared>,
    /// systemd's notification socket (does nothing outside systemd).
    notify: Notifier,
}

#[derive(Debug)]
struct Running {
    config: Config,
    dns: DnsService,
    reloads: u64,
    last_reload_error: Option<String>,
    samples: VecDeque<(Instant, u64)>,
    /// Counts of the services that reloads replaced.
    carried: Totals,
}

impl Running {
    /// Records a refused reload, logs it once, and returns its message.
    fn reject(&mut self, error: &dyn std::fmt::Display) -> String {
        let message = format!("reload rejected, keeping the running configuration: {error}");
        warn!("{message}");
        self.last_reload_error = Some(message.clone());
        message
    }

    async fn dns_status(&self) -> dns::server::DnsStatus {
        let mut status = self.dns.status().await;
        status.totals.add(&self.carried);
        status
    }
}

/// Figures the metrics endpoint serves, refreshed every second.
#[derive(Debug, Clone)]
pub struct MetricsSnapshot {
    pub totals: Totals,
    pub cache_entries: usize,
    pub upstreams: Vec<(String, bool)>,
    pub blocked_by_list: std::collections::BTreeMap<String, u64>,
    pub blocked_by_group: std::collections::BTreeMap<String, u64>,
    pub list_rules: Vec<(String, u64)>,
    pub wireguard: WireguardStatus,
    pub bgp: Option<BgpStatus>,
    pub vrrp: Option<VrrpStatus>,
}

/// `routerctl status` as JSON.
#[derive(Debug, Serialize)]
pub struct Status {
    pub version: &'static str,
    pub uptime_secs: u64,
    pub config: PathBuf,
    pub reloads: u64,
    pub last_reload_error: Option<String>,
    pub dns: DnsSummary,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub firewall: Option<FirewallStatus>,
    pub filter: FilterStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub query_log: Option<dns::querylog::LogStats>,
    /// Present when tunnels are configured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wireguard: Option<WireguardStatus>,
    /// Present when BGP is configured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bgp: Option<BgpStatus>,
    /// Present when VRRP is configured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vrrp: Option<VrrpStatus>,
    /// Present when this node is in a pair (`[pair]`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pair: Option<crate::pair::service::PairStatus>,
}

#[derive(Debug, Serialize)]
pub struct DnsSummary {
    pub qps: f64,
    pub hit_ratio: f64,
    #[serde(flatten)]
    pub status: dns::server::DnsStatus,
}

/// A reload under way: see [`Shared::reload`].
pub type Reloading<'a> =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<ReloadOutcome, String>> + Send + 'a>>;

/// What a reload changes in the firewall.
#[derive(Debug)]
enum PolicyStep {
    /// Apply the policy in this directory, with this node's settings.
    Apply(PathBuf, NodeFirewall),
    /// `[policies]` is gone: stop managing the firewall.
    Release,
}

/// What a reload did.
#[derive(Debug, Serialize)]
pub struct ReloadOutcome {
    pub changed: bool,
    pub message: String,
}

impl Shared {
    pub fn metrics_snapshot(&self) -> Option<MetricsSnapshot> {
        self.snapshot
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    pub async fn status(&self) -> Status {
        let firewall = self.firewall.lock().await.as_ref().map(Firewall::status);
        let wireguard =
            Some(self.wireguard.lock().await.status()).filter(|w| !w.tunnels.is_empty());
        let bgp = self.bgp_status().await;
        let vrrp = self.vrrp_status().await;
        let running = self.running.lock().await;
        let dns = running.dns_status().await;
        let qps = qps(&running.samples);
        Status {
            pair: self.pair_status(),
            wireguard,
            bgp,
            vrrp,
            firewall,
            filter: self.filtering.status(),
            query_log: self.query_log.as_ref().map(dns::querylog::QueryLog::stats),
            version: env!("CARGO_PKG_VERSION"),
            uptime_secs: self.started.elapsed().as_secs(),
            config: self.config_path.clone(),
            reloads: running.reloads,
            last_reload_error: running.last_reload_error.clone(),
            dns: DnsSummary {
                qps,
                hit_ratio: dns.totals.hit_ratio(),
                status: dns,
            },
        }
    }

    pub async fn bgp_status(&self) -> Option<BgpStatus> {
        match self.bgp.lock().await.as_ref() {
            Some(service) => service.status().await,
            None => None,
        }
    }

    pub async fn vrrp_status(&self) -> Option<VrrpStatus> {
        match self.vrrp.lock().await.as_ref() {
            Some(service) => Some(service.status().await),
            None => None,
        }
    }

    /// Brings the VRRP instances to the new configuration: in place when
    /// only instances changed (the others keep their state and address),
    /// else all of them anew. A master that stops steps down with
    /// priority 0 first, so the standby holds the address for the moment
    /// this node takes to come back.
    async fn reload_vrrp(&self, config: &Config) {
        let mut vrrp = self.vrrp.lock().await;
        let resolver = own_server(&config.dns.listen, &config.dns.floating);
        if let (Some(service), Some(new)) = (vrrp.as_mut(), config.vrrp.as_ref())
            && service.reconfigure(new, resolver).await.is_ok()
        {
            return;
        }
        if let Some(old) = vrrp.take() {
            old.stop().await;
        }
        *vrrp = config.vrrp.as_ref().map(|v| {
            VrrpService::start(
                v,
                own_server(&config.dns.listen, &config.dns.floating),
                self.vrrp_findings.subscribe(),
            )
        });
    }

    /// Replaces the BGP speaker when its configuration changed. Sessions
    /// restart: the peers see a clean shutdown communication first.
    async fn reload_bgp(
        &self,
        config: Option<&crate::bgp::settings::BgpConfig>,
    ) -> Result<(), String> {
        let mut bgp = self.bgp.lock().await;
        if let Some(old) = bgp.take() {
            old.stop().await;
        }
        if let Some(config) = config {
            let service = BgpService::start(config.clone())
                .await
                .map_err(|e| format!("BGP not started: {e:#}"))?;
            *bgp = Some(service);
        }
        Ok(())
    }

    /// Re-reads the configuration. A file that fails to load or check, or
    /// services that fail to start with it, leave the running ones as they
    /// are: the error is returned and remembered for `routerctl status`.
    /// systemd sees the unit reloading until it is done, either way.
    ///
    /// Boxed: a reload may restart the pair service, whose sync loop calls
    /// reload, and the compiler cannot see through that cycle otherwise.
    pub fn reload(&self) -> Reloading<'_> {
        Box::pin(async move {
            if let Err(e) = self.notify.reloading() {
                warn!("{e}");
            }
            let outcome = self.reload_now().await;
            let status = match &outcome {
                Ok(outcome) => outcome.message.clone(),
                Err(e) => e.clone(),
            };
            if let Err(e) = self.notify.ready(&status) {
                warn!("{e}");
            }
            outcome
        })
    }

    async fn reload_now(&self) -> Result<ReloadOutcome, String> {
        let mut running = self.running.lock().await;
        let config = match config::load(&self.config_path) {
            Ok(config) => config,
            Err(e) => return Err(running.reject(&e)),
        };
        // The node's zone addresses go to the firewall below; the rest of
        // [pair] is the pair service's.
        let pair_service = |config: &Config| {
            config
                .pair
                .as_ref()
                .map(|pair| crate::pair::settings::PairConfig {
                    zone_addresses: Default::default(),
                    ..pair.clone()
                })
        };
        // The policy is checked before anything changes, so a bad one
        // refuses the whole reload.
        let policy_step = match self.policy_step(&config).await {
            Ok(step) => step,
            Err(e) => return Err(running.reject(&e)),
        };
        // As with BGP, a service that does not start with a valid
        // configuration (a listen address this node lacks) shows in the
        // log and status; the previous settings run again.
        if pair_service(&config) != pair_service(&running.config)
            && let Err(e) = self.restart_pair(config.pair.as_ref()).await
        {
            error!("{e}");
        }
        if self
            .filtering
            .reconfigure(config.filter.clone(), config.dns.clone())
        {
            self.filtering.rebuild().await;
        }
        if config.query_log != running.config.query_log {
            warn!("[dns.query_log] changes take effect at the next restart");
        }
        let bgp_changed = config.bgp != running.config.bgp;
        if config.wireguard != running.config.wireguard {
            // Tunnel problems after a valid configuration (wireguard-go
            // missing, say) do not refuse the reload: they show in status.
            self.wireguard
                .lock()
                .await
                .apply(
                    config.wireguard.clone(),
                    own_server(&config.dns.listen, &config.dns.floating),
                )
                .await;
        }
        if bgp_changed && let Err(e) = self.reload_bgp(config.bgp.as_ref()).await {
            error!("{e}");
        }
        if config.vrrp != running.config.vrrp || config.dns.listen != running.config.dns.listen {
            self.reload_vrrp(&config).await;
        }
        if config.dns == running.config.dns {
            let changed = config != running.config;
            running.config = config;
            running.last_reload_error = None;
            drop(running);
            if let Some(step) = policy_step {
                return self.reload_policy(step).await;
            }
            if changed {
                info!("reload: filter lists reconfigured");
                return Ok(ReloadOutcome {
                    changed: true,
                    message: "configuration reloaded; DNS service unchanged".into(),
                });
            }
            info!("reload: configuration unchanged");
            return Ok(ReloadOutcome {
                changed: false,
                message: "configuration unchanged".into(),
            });
        }
        if config.control_socket != running.config.control_socket
            || config.metrics_listen != running.config.metrics_listen
        {
            warn!("control socket and metrics address changes take effect at the next restart");
        }
        // Everything that can fail happens while the old service still
        // serves; then it stops (its sockets, shared with the new one, keep
        // queueing) and the new one starts, so no answer under the old
        // configuration follows one under the new.
        let prepared = match DnsService::prepare(
            config.dns.clone(),
            Some(&running.dns),
            running.dns.attachments().clone(),
        ) {
            Ok(prepared) => prepared,
            Err(e) => return Err(running.reject(&e)),
        };
        let seed = if config.dns.same_answers(&running.config.dns) {
            running.dns.export_cache().await
        } else {
            Vec::new()
        };
        running.dns.stop_serving().await;
        let stats = std::sync::Arc::clone(running.dns.stats());
        let (lists, groups) = stats.take_blocked();
        self.filtering.count_blocks(&lists, &groups);
        let dns = match prepared.run(seed) {
            Ok(dns) => dns,
            Err(e) => {
                // Only thread creation can fail here. Bring the old
                // configuration back on the same sockets.
                let message = format!("reload failed, restoring the running configuration: {e}");
                error!("{message}");
                running.last_reload_error = Some(message.clone());
                let old = running.config.dns.clone();
                match DnsService::prepare(
                    old,
                    Some(&running.dns),
                    running.dns.attachments().clone(),
                )
                .and_then(|p| p.run(Vec::new()))
                {
                    Ok(restored) => {
                        running.carried.add(&stats.totals());
                        running.dns = restored;
                    }
                    Err(e) => {
                        error!(error = %e, "cannot restore the DNS service; exiting so the supervisor restarts routerd");
                        std::process::exit(1);
                    }
                }
                return Err(message);
            }
        };
        running.dns = dns;
        running.carried.add(&stats.totals());
        running.config = config;
        running.reloads += 1;
        running.last_reload_error = None;
        info!(reloads = running.reloads, "configuration reloaded");
        drop(running);
        if let Some(step) = policy_step {
            return self.reload_policy(step).await;
        }
        Ok(ReloadOutcome {
            changed: true,
            message: "configuration reloaded".into(),
        })
    }

    /// The pair service's slot; held only for quick calls, never across
    /// an await.
    fn pair_slot(&self) -> std::sync::MutexGuard<'_, Option<PairService>> {
        self.pair
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn pair_status(&self) -> Option<crate::pair::service::PairStatus> {
        self.pair_slot().as_ref().map(PairService::status)
    }

    /// Asks the primary now; `false` when this node is not in a pair.
    pub fn pair_sync_now(&self) -> bool {
        self.pair_slot()
            .as_ref()
            .map(PairService::sync_now)
            .is_some()
    }

    fn take_pair(&self) -> Option<PairService> {
        self.pair_slot().take()
    }

    async fn start_pair(
        &self,
        config: &crate::pair::settings::PairConfig,
        initial: Option<crate::pair::service::InitialSync>,
    ) -> Result<(), String> {
        let service =
            PairService::start(config.clone(), &self.config_path, self.me.clone(), initial)
                .await
                .map_err(|e| format!("pair not started: {e:#}"))?;
        *self.pair_slot() = Some(service);
        Ok(())
    }

    /// Replaces the pair service after `[pair]` changed: the old one stops
    /// (its listener closed) before the new one binds. When the new one
    /// does not start (a listener that cannot bind), the old settings run
    /// again and the error is returned.
    async fn restart_pair(
        &self,
        config: Option<&crate::pair::settings::PairConfig>,
    ) -> Result<(), String> {
        let old = self.take_pair();
        let old_config = old.as_ref().map(PairService::config);
        if let Some(old) = old {
            old.stop().await;
        }
        let Some(config) = config else {
            info!("pair: [pair] removed, the pair service stopped");
            return Ok(());
        };
        match self.start_pair(config, None).await {
            Ok(()) => {
                info!(role = %config.role, "pair: restarted with the new [pair]");
                Ok(())
            }
            Err(e) => {
                if let Some(old_config) = old_config
                    && let Err(again) = self.start_pair(&old_config, None).await
                {
                    error!("pair: the previous settings did not start again either: {again}");
                }
                Err(e)
            }
        }
    }

    /// What a reload to `config` does to the firewall (`None`: nothing),
    /// once its policy has checked; the error lists what is wrong with it.
    async fn policy_step(&self, config: &Config) -> Result<Option<PolicyStep>, String> {
        let firewall = self.firewall.lock().await;
        let Some(dir) = &config.policies_dir else {
            return Ok(firewall.is_some().then_some(PolicyStep::Release));
        };
        let node = NodeFirewall::of(config);
        let report = tokio::task::block_in_place(|| match firewall.as_ref() {
            Some(firewall) => firewall.check_as(dir, &node),
            None => {
                crate::firewall::check_dir(dir, None, Some(&policies::nft::Nft::default()), &node)
            }
        });
        if !report.ok {
            let errors: Vec<String> = report.diagnostics.iter().map(ToString::to_string).collect();
            return Err(errors.join("\n"));
        }
        let unchanged = firewall.as_ref().is_some_and(|firewall| {
            // The node's zone addresses and tunnels change the links, not
            // the ruleset, so they count on their own.
            firewall.dir() == dir
                && firewall.node() == &node
                && report.nft_diff.is_empty()
                && report.changes.is_empty()
        });
        Ok((!unchanged).then(|| PolicyStep::Apply(dir.clone(), node)))
    }

    /// Applies the policy files again (from another directory, or with
    /// this node's settings changed), unless an apply awaits confirmation;
    /// or lets the firewall go when `[policies]` is gone.
    async fn reload_policy(&self, step: PolicyStep) -> Result<ReloadOutcome, String> {
        let mut slot = self.firewall.lock().await;
        let (dir, node) = match step {
            PolicyStep::Release => {
                *slot = None;
                warn!(
                    "[policies] removed: routerd no longer manages the firewall; the kernel keeps the last ruleset (nft delete table inet router removes it)"
                );
                return Ok(ReloadOutcome {
                    changed: true,
                    message: "configuration reloaded; the firewall is no longer managed, its last ruleset stays".into(),
                });
            }
            PolicyStep::Apply(dir, node) => (dir, node),
        };
        let applied = match slot.as_mut() {
            Some(firewall) => {
                // Only an applied policy moves the firewall to the new
                // directory and settings: after a refusal (an apply
                // awaiting confirmation, say) the next reload tries again.
                let previous = firewall.reconfigure(dir, node);
                let applied = firewall.apply(None).await;
                if applied.is_err() {
                    firewall.reconfigure(previous.0, previous.1);
                }
                applied
            }
            None => slot.insert(Firewall::new(dir, node)).apply(None).await,
        };
        // Reloads take `running` before the firewall: never the reverse.
        drop(slot);
        match applied {
            Ok(report) => Ok(ReloadOutcome {
                changed: true,
                message: format!("configuration reloaded; {}", report.message),
            }),
            Err(e) => {
                let mut running = self.running.lock().await;
                Err(running.reject(&e.error))
            }
        }
    }

    /// Whether the daemon is well enough to feed systemd's watchdog: the
    /// runtime runs this (a wedged runtime does not), the running state
    /// can be had within `patience` (no deadlock; a reload may hold it a
    /// moment) and the DNS service's workers and dispatcher are alive.
    async fn health(&self, patience: Duration) -> Result<(), String> {
        let running = tokio::time::timeout(patience, self.running.lock())
            .await
            .map_err(|_| format!("the daemon's state stayed locked for {patience:?}"))?;
        if !running.dns.is_serving() {
            return Err("a DNS worker thread or the dispatcher has stopped".into());
        }
        Ok(())
    }

    /// Feeds systemd's watchdog every `interval` while [`Shared::health`]
    /// passes; logs once when it stops passing and when it passes again.
    async fn feed_watchdog(&self, interval: Duration) {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut failing = false;
        loop {
            tick.tick().await;
            match self.health(interval / 2).await {
                Ok(()) => {
                    if failing {
                        info!("healthy again: feeding the watchdog");
                        failing = false;
                    }
                    if let Err(e) = self.notify.watchdog() {
                        warn!("{e}");
                    }
                }
                Err(reason) => {
                    if !failing {
                        error!("not feeding systemd's watchdog: {reason}");
                        failing = true;
                    }
                }
            }
        }
    }

    async fn sample(&self) {
        let mut running = self.running.lock().await;
        let (lists, groups) = running.dns.stats().take_blocked();
        self.filtering.count_blocks(&lists, &groups);
        let status = running.dns_status().await;
        let now = Instant::now();
        running.samples.push_back((now, status.totals.queries()));
        while running.samples.len() > QPS_WINDOW + 1 {
            running.samples.pop_front();
        }
        let mut upstreams: Vec<(String, bool)> = status
            .resolver
            .upstreams
            .iter()
            .map(|u| (u.upstream.clone(), u.healthy))
            .collect();
        for zone in &status.resolver.forward_zones {
            upstreams.extend(
                zone.upstreams
                    .iter()
                    .map(|u| (format!("{} ({})", u.upstream, zone.zone), u.healthy)),
            );
        }
        let (blocked_by_list, blocked_by_group) = self.filtering.blocked();
        let list_rules = self.filtering.list_rules();
        let wireguard = self.wireguard.lock().await.status();
        let bgp = self.bgp_status().await;
        let vrrp = self.vrrp_status().await;
        if let Some(checks) = running.config.vrrp.as_ref().map(|v| &v.checks) {
            let findings =
                crate::vrrp::health::appliance_findings(checks, &wireguard, bgp.as_ref());
            self.vrrp_findings.send_if_modified(|now| {
                let changed = *now != findings;
                *now = findings;
                changed
            });
        }
        *self
            .snapshot
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(MetricsSnapshot {
            totals: status.totals,
            cache_entries: status.cache_entries,
            upstreams,
            blocked_by_list,
            blocked_by_group,
            list_rules,
            wireguard,
            bgp,
            vrrp,
        });
    }
}

/// Opens the query log; a database that cannot be opened leaves a log in
/// memory only, so a broken file never keeps DNS down.
fn open_query_log(config: &config::filter::QueryLogConfig) -> Option<dns::querylog::QueryLog> {
    if !config.enabled {
        return None;
    }
    let settings = config.settings();
    match dns::querylog::QueryLog::open(settings.clone()) {
        Ok(log) => Some(log),
        Err(e) => {
            error!(error = %e, "query log history unavailable; keeping the recent queries in memory only");
            dns::querylog::QueryLog::open(dns::querylog::LogSettings {
                path: None,
                ..settings
            })
            .ok()
        }
    }
}

/// The line `systemctl status` shows once routerd is ready.
async fn ready_status(shared: &Shared) -> String {
    let running = shared.running.lock().await;
    let listen = &running.config.dns.listen;
    format!(
        "ready: DNS on {} address(es){}",
        listen.len(),
        match shared.pair_status() {
            Some(pair) => format!(", pair {}", pair.role),
            None => String::new(),
        }
    )
}

fn qps(samples: &VecDeque<(Instant, u64)>) -> f64 {
    match (samples.front(), samples.back()) {
        (Some((t0, q0)), Some((t1, q1))) if t1 > t0 => {
            q1.saturating_sub(*q0) as f64 / t1.duration_since(*t0).as_secs_f64()
        }
        _ => 0.0,
    }
}

/// Runs the daemon with the configuration at `path` until SIGTERM or SIGINT.
pub async fn run(path: &Path) -> anyhow::Result<()> {
    let initial = match config::load_local(path).map(|c| c.pair) {
        Ok(Some(pair)) => crate::pair::service::initial_sync(&pair, path).await,
        _ => None,
    };
    let config = match config::load(path) {
        Ok(config) => config,
        // A standby whose copy of the primary's part no longer checks
        // with its own file still starts, on its own file alone.
        Err(e) => match config::load_local(path) {
            Ok(local) if local.pair.is_some() => {
                error!("the primary's configuration is not used: {e}");
                local
            }
            _ => anyhow::bail!("{e}"),
        },
    };
    run_started(path, config, initial).await
}

/// Runs the daemon with an already checked configuration.
pub async fn run_with(path: &Path, config: Config) -> anyhow::Result<()> {
    run_started(path, config, None).await
}

async fn run_started(
    path: &Path,
    config: Config,
    initial: Option<crate::pair::service::InitialSync>,
) -> anyhow::Result<()> {
    // Bind the control socket first: if another routerd owns it, fail
    // before touching port 53.
    let control_listener = control::bind(&config.control_socket)?;
    // The policy goes in before DNS answers: a zone's DNS interception and
    // its addresses are part of it. A policy that fails leaves whatever
    // ruleset the kernel has (the last good one, across restarts) alone.
    let firewall = match &config.policies_dir {
        Some(dir) => {
            let mut firewall = Firewall::new(dir.clone(), NodeFirewall::of(&config));
            if let Err(e) = firewall.apply(None).await {
                error!(dir = %dir.display(), error = %e.error, "policy not applied at start");
            }
            Some(firewall)
        }
        None => None,
    };
    // Everything else that can fail is bound before anything is served, so
    // a failure leaves nothing half-started behind.
    // The filter is built from the lists' stored copies before DNS
    // answers, so the first query is already filtered.
    let filtering = Filtering::start(config.filter.clone(), config.dns.clone())
        .await
        .context("cannot start the filter builder")?;
    let query_log = open_query_log(&config.query_log);
    let attachments = dns::server::Attachments {
        filter: filtering.handle(),
        log: match &query_log {
            Some(log) => Some(dns::server::logging::LogSink::start(log.clone())?),
            None => None,
        },
    };
    let started = async {
        let metrics_listener = match config.metrics_listen {
            Some(addr) => Some(metrics::bind(addr).await?),
            None => None,
        };
        let dns = DnsService::start_with(config.dns.clone(), attachments)
            .context("cannot start the DNS service")?;
        anyhow::Ok((metrics_listener, dns))
    };
    let (metrics_listener, dns) = match started.await {
        Ok(started) => started,
        Err(e) => {
            let _ = std::fs::remove_file(&config.control_socket);
            return Err(e);
        }
    };
    let socket_path = config.control_socket.clone();
    filtering.spawn_refresher();
    // After DNS, which resolves the endpoint names.
    let mut wireguard = Wireguard::new(own_server(&config.dns.listen, &config.dns.floating));
    wireguard
        .apply(
            config.wireguard.clone(),
            own_server(&config.dns.listen, &config.dns.floating),
        )
        .await;
    // After the tunnels, which carry the sessions.
    let bgp = match &config.bgp {
        Some(bgp) => match BgpService::start(bgp.clone()).await {
            Ok(service) => Some(service),
            Err(e) => {
                error!("BGP not started: {e:#}");
                None
            }
        },
        None => None,
    };
    // After DNS, whose answers the checks probe and whose sockets already
    // wait on the virtual addresses.
    let (vrrp_findings, _) = tokio::sync::watch::channel(Vec::new());
    let vrrp = config.vrrp.as_ref().map(|v| {
        VrrpService::start(
            v,
            own_server(&config.dns.listen, &config.dns.floating),
            vrrp_findings.subscribe(),
        )
    });
    let config_pair = config.pair.clone();
    let shared = Arc::new_cyclic(|me| Shared {
        me: me.clone(),
        vrrp: tokio::sync::Mutex::new(vrrp),
        vrrp_findings,
        firewall: tokio::sync::Mutex::new(firewall),
        filtering,
        query_log,
        wireguard: tokio::sync::Mutex::new(wireguard),
        bgp: tokio::sync::Mutex::new(bgp),
        config_path: path.to_path_buf(),
        started: Instant::now(),
        running: tokio::sync::Mutex::new(Running {
            config,
            dns,
            reloads: 0,
            last_reload_error: None,
            samples: VecDeque::new(),
            carried: Totals::default(),
        }),
        snapshot: Mutex::new(None),
        pair: Mutex::new(None),
        notify: Notifier::from_env().unwrap_or_else(|e| {
            warn!("{e}; not notifying systemd");
            Notifier::disabled()
        }),
    });
    if let Some(pair) = &config_pair
        && let Err(e) = shared.start_pair(pair, initial).await
    {
        error!("{e}");
    }
    if let Some(listener) = metrics_listener {
        metrics::serve(listener, Arc::clone(&shared));
    }
    tokio::spawn(control::serve(control_listener, Arc::clone(&shared)));
    let sampler = Arc::clone(&shared);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(SAMPLE_INTERVAL);
        loop {
            tick.tick().await;
            sampler.sample().await;
        }
    });
    let watcher = Arc::clone(&shared);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(WIREGUARD_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            watcher.wireguard.lock().await.tick().await;
        }
    });

    let mut hangup = signal(SignalKind::hangup())?;
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    info!(config = %path.display(), socket = %socket_path.display(), "routerd ready");
    if let Err(e) = shared.notify.ready(&ready_status(&shared).await) {
        warn!("{e}");
    }
    if let Some(interval) = shared.notify.watchdog_interval() {
        let watchdog = Arc::clone(&shared);
        tokio::spawn(async move { watchdog.feed_watchdog(interval).await });
    }
    loop {
        tokio::select! {
            _ = hangup.recv() => {
                info!("SIGHUP: reloading");
                // Outcome already logged by reload itself.
                let _ = shared.reload().await;
            }
            _ = terminate.recv() => break,
            _ = interrupt.recv() => break,
        }
    }
    info!("stopping");
    if let Err(e) = shared.notify.stopping() {
        warn!("{e}");
    }
    if let Some(pair) = shared.take_pair() {
        pair.stop().await;
    }
    if let Some(vrrp) = shared.vrrp.lock().await.take() {
        vrrp.stop().await;
    }
    if let Some(bgp) = shared.bgp.lock().await.take() {
        bgp.stop().await;
    }
    shared.wireguard.lock().await.shutdown().await;
    let _ = std::fs::remove_file(&socket_path);
    Ok(())
}
