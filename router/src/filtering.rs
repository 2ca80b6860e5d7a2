//! The daemon's side of filtering: keeps the lists' stored copies fresh,
//! compiles them into a [`Filter`] and swaps it into the running DNS
//! service, counts blocks by list and group, and explains decisions.
//!
//! A boot builds the filter from the stored copies before DNS starts, so
//! the house is filtered from the first query even without internet; the
//! refresher then fetches whatever is due. A list that fails to refresh
//! keeps its last good copy, so a refresh can only ever swap one complete,
//! valid filter for another.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use dns::DnsSettings;
use dns::filter::list::locate;
use dns::filter::{Action, Filter, ListLoad, Match, MatchKind, ParseOptions, Pattern};
use dns::server::logging::dotted;
use serde::Serialize;
use tracing::{info, warn};

use crate::config::filter::FilterConfig;
use crate::lists::{ListMeta, ListStore, Location, RefreshOutcome};

/// How often the refresher looks for lists that are due.
const TICK: Duration = Duration::from_secs(1);
/// How long a failed refresh waits before it is tried again.
const RETRY: Duration = Duration::from_secs(300);

/// See the module documentation.
#[derive(Debug)]
pub struct Filtering {
    handle: Arc<ArcSwap<Filter>>,
    state: Mutex<State>,
    /// One build at a time: two refreshes finishing together build once
    /// each, in turn, and the last one wins with everything in it.
    building: tokio::sync::Mutex<()>,
    /// One round of refreshes at a time, so `routerctl dns refresh` reports
    /// what it did, not what the refresher did a moment before.
    refreshing: tokio::sync::Mutex<()>,
    /// Builds run on one thread of their own: with glibc's allocator, a
    /// build on whichever blocking thread is free would leave each
    /// thread's arena holding a compiled set's worth of freed memory (a
    /// 1M-domain list: 90 MB resident after five refreshes, 63 MB with
    /// one arena).
    builder: std::sync::mpsc::Sender<BuildRequest>,
}

/// A build for the builder thread.
struct BuildRequest {
    settings: DnsSettings,
    store: Arc<ListStore>,
    reply: tokio::sync::oneshot::Sender<(Filter, Vec<ListLoad>)>,
}

impl std::fmt::Debug for BuildRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BuildRequest").finish_non_exhaustive()
    }
}

/// The builder thread: compiles the stored copies until the sender goes.
fn build_loop(requests: std::sync::mpsc::Receiver<BuildRequest>) {
    while let Ok(BuildRequest {
        settings,
        store,
        reply,
    }) = requests.recv()
    {
        let built = Filter::build(&settings, |list| {
            let path = store.current(&list.name)?;
            let file = File::open(path).ok()?;
            let size = file.metadata().map_or(0, |m| m.len());
            let reader = BufReader::with_capacity(1 << 16, file);
            Some((Box::new(reader) as Box<dyn BufRead>, size))
        });
        let _ = reply.send(built);
    }
}

#[derive(Debug)]
struct State {
    config: FilterConfig,
    settings: DnsSettings,
    store: Arc<ListStore>,
    next_due: HashMap<String, Instant>,
    last_outcome: HashMap<String, String>,
    loads: Vec<ListLoad>,
    build_ms: u64,
    blocked_by_list: BTreeMap<String, u64>,
    blocked_by_group: BTreeMap<String, u64>,
}

/// One list in `routerctl dns lists`.
#[derive(Debug, Clone, Serialize)]
pub struct ListStatus {
    pub name: String,
    pub source: String,
    pub exact: bool,
    pub refresh_secs: u64,
    /// Rules in the copy the running filter was built from.
    pub rules: Option<u64>,
    pub malformed: Option<u64>,
    /// The first malformed lines, as "line N: reason: text".
    pub malformed_samples: Vec<String>,
    pub stored: Option<ListMeta>,
    pub last_outcome: Option<String>,
    pub error: Option<String>,
    pub blocked: u64,
}

/// `routerctl dns lists` as JSON.
#[derive(Debug, Clone, Serialize)]
pub struct FilterStatus {
    pub lists: Vec<ListStatus>,
    pub groups: Vec<GroupStatus>,
    pub domain_entries: usize,
    pub regex_rules: usize,
    pub memory_bytes: usize,
    pub build_ms: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct GroupStatus {
    pub name: String,
    pub zones: Vec<String>,
    pub clients: Vec<String>,
    pub lists: Vec<String>,
    pub block_mode: String,
    pub safe_search: bool,
    pub blocked: u64,
}

/// One rule that matches a name, for `routerctl dns why`.
#[derive(Debug, Clone, Serialize)]
pub struct RuleHit {
    pub list: String,
    /// The rule in canonical form, e.g. `||ads.example.com^`.
    pub rule: String,
    pub action: &'static str,
    pub important: bool,
    /// The stored copy of the list and the line the rule is on.
    pub file: Option<PathBuf>,
    pub line: Option<u32>,
    pub text: Option<String>,
}

/// `routerctl dns why` as JSON.
#[derive(Debug, Clone, Serialize)]
pub struct Why {
    pub name: String,
    pub client: Option<IpAddr>,
    pub zone: Option<String>,
    pub group: String,
    pub group_lists: Vec<String>,
    /// blocked, allowed or unlisted.
    pub verdict: &'static str,
    /// Why the verdict, in a sentence.
    pub reason: String,
    /// The deciding rule first, then every other rule that matches.
    pub rules: Vec<RuleHit>,
    pub block_mode: Option<String>,
    /// Where safe search sends the name, when the group enforces it.
    pub safe_search: Option<String>,
}

impl Filtering {
    /// Builds the first filter from the stored copies (refreshing local
    /// files first: they cost nothing), for a DNS service not yet started.
    pub async fn start(
        config: FilterConfig,
        settings: DnsSettings,
    ) -> std::io::Result<Arc<Filtering>> {
        let (builder, requests) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("filter-build".into())
            .spawn(move || build_loop(requests))?;
        let store = Arc::new(ListStore::new(config.lists_dir.clone()));
        let now = Instant::now();
        let mut next_due = HashMap::new();
        for list in &config.lists {
            let due = match (&list.source.location, store.meta(&list.source.name)) {
                (Location::File(_), _) => now,
                (Location::Url { .. }, Some(meta)) if meta.fetched_at_ms > 0 => {
                    now + remaining(meta.fetched_at_ms, list.refresh)
                }
                (Location::Url { .. }, _) => now,
            };
            next_due.insert(list.source.name.clone(), due);
        }
        let filtering = Arc::new(Filtering {
            handle: Arc::new(ArcSwap::from_pointee(Filter::default())),
            state: Mutex::new(State {
                config,
                settings,
                store,
                next_due,
                last_outcome: HashMap::new(),
                loads: Vec::new(),
                build_ms: 0,
                blocked_by_list: BTreeMap::new(),
                blocked_by_group: BTreeMap::new(),
            }),
            building: tokio::sync::Mutex::new(()),
            refreshing: tokio::sync::Mutex::new(()),
            builder,
        });
        filtering.refresh(Which::Files).await;
        filtering.rebuild().await;
        Ok(filtering)
    }

    /// The handle the DNS service reads its filter from.
    pub fn handle(&self) -> Arc<ArcSwap<Filter>> {
        Arc::clone(&self.handle)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Takes a new configuration; returns true when the filter must be
    /// rebuilt (lists or groups changed). The caller rebuilds.
    pub fn reconfigure(&self, config: FilterConfig, settings: DnsSettings) -> bool {
        let mut state = self.lock();
        // The groups' upstream views are part of `settings.filter`.
        let changed = state.config != config || state.settings.filter != settings.filter;
        if state.config.lists_dir != config.lists_dir {
            state.store = Arc::new(ListStore::new(config.lists_dir.clone()));
        }
        let now = Instant::now();
        for list in &config.lists {
            let moved = state
                .config
                .lists
                .iter()
                .find(|l| l.source.name == list.source.name)
                .is_none_or(|old| old.source.location != list.source.location);
            if moved {
                state.next_due.insert(list.source.name.clone(), now);
            }
        }
        state.config = config;
        state.settings = settings;
        changed
    }

    /// Compiles the stored copies into a new filter and swaps it in.
    pub async fn rebuild(&self) {
        let _building = self.building.lock().await;
        let (settings, store) = {
            let state = self.lock();
            (state.settings.clone(), Arc::clone(&state.store))
        };
        let started = Instant::now();
        let (reply, built) = tokio::sync::oneshot::channel();
        let request = BuildRequest {
            settings,
            store,
            reply,
        };
        if self.builder.send(request).is_err() {
            warn!("the filter builder has stopped; keeping the running filter");
            return;
        }
        let Ok((filter, loads)) = built.await else {
            warn!("the filter build failed; keeping the running filter");
            return;
        };
        let build_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        info!(
            lists = loads.len(),
            domains = filter.set.domain_entries(),
            regexes = filter.set.regex_rules(),
            bytes = filter.set.heap_bytes(),
            build_ms,
            "filter built"
        );
        for load in &loads {
            if let Some(summary) = load.summary.as_ref().filter(|s| s.malformed > 0) {
                warn!(
                    list = %load.name,
                    malformed = summary.malformed,
                    rules = summary.rules,
                    samples = %malformed_samples(summary).join("; "),
                    "filter list has lines that are not rules; they were skipped"
                );
            }
        }
        self.handle.store(Arc::new(filter));
        let mut state = self.lock();
        state.loads = loads;
        state.build_ms = build_ms;
    }

    /// Refreshes some lists; returns each one's outcome.
    async fn refresh(&self, which: Which) -> BTreeMap<String, RefreshOutcome> {
        let _refreshing = self.refreshing.lock().await;
        let (due, store) = {
            let state = self.lock();
            let now = Instant::now();
            let due: Vec<_> = state
                .config
                .lists
                .iter()
                .filter(|l| match which {
                    Which::All => true,
                    Which::Files => matches!(l.source.location, Location::File(_)),
                    Which::Due => state
                        .next_due
                        .get(&l.source.name)
                        .is_none_or(|at| *at <= now),
                })
                .cloned()
                .collect();
            (due, Arc::clone(&state.store))
        };
        let mut outcomes = BTreeMap::new();
        for list in due {
            let outcome = store.refresh(&list.source).await;
            let next = match &outcome {
                RefreshOutcome::Kept { .. }
                    if !matches!(list.source.location, Location::File(_)) =>
                {
                    RETRY.min(list.refresh)
                }
                _ => list.refresh,
            };
            // A refusal was logged by the store, with the list and source.
            if let RefreshOutcome::Updated { .. } = &outcome {
                info!(list = %list.source.name, %outcome, "filter list refreshed");
            }
            let mut state = self.lock();
            state
                .next_due
                .insert(list.source.name.clone(), Instant::now() + next);
            state
                .last_outcome
                .insert(list.source.name.clone(), outcome.to_string());
            outcomes.insert(list.source.name.clone(), outcome);
        }
        outcomes
    }

    /// Refreshes every list now (`routerctl dns refresh`), rebuilding when
    /// one changed; returns each list's outcome.
    pub async fn refresh_now(&self) -> BTreeMap<String, String> {
        let outcomes = self.refresh(Which::All).await;
        if outcomes.values().any(is_update) {
            self.rebuild().await;
        }
        outcomes
            .into_iter()
            .map(|(name, outcome)| (name, outcome.to_string()))
            .collect()
    }

    /// Refreshes lists as they fall due, until the daemon exits.
    pub fn spawn_refresher(self: &Arc<Self>) {
        let filtering = Arc::clone(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(TICK);
            loop {
                tick.tick().await;
                if filtering.refresh(Which::Due).await.values().any(is_update) {
                    filtering.rebuild().await;
                }
            }
        });
    }

    /// Adds the blocks counted since the last call, by name.
    pub fn count_blocks(&self, by_list: &[u64], by_group: &[u64]) {
        let filter = self.handle.load();
        let mut state = self.lock();
        for (info, n) in filter.set.lists().iter().zip(by_list) {
            if *n > 0 {
                *state.blocked_by_list.entry(info.name.clone()).or_default() += n;
            }
        }
        for (group, n) in filter.groups.iter().zip(by_group) {
            if *n > 0 {
                *state
                    .blocked_by_group
                    .entry(group.name.clone())
                    .or_default() += n;
            }
        }
    }

    /// Rules in each list's copy the running filter was built from (for
    /// metrics: read from memory, unlike [`Self::status`], which also
    /// reads every list's metadata file).
    pub fn list_rules(&self) -> Vec<(String, u64)> {
        let state = self.lock();
        state
            .loads
            .iter()
            .map(|l| (l.name.clone(), l.summary.as_ref().map_or(0, |s| s.rules)))
            .collect()
    }

    /// Blocks so far by list and by group (for metrics).
    pub fn blocked(&self) -> (BTreeMap<String, u64>, BTreeMap<String, u64>) {
        let state = self.lock();
        (
            state.blocked_by_list.clone(),
            state.blocked_by_group.clone(),
        )
    }

    pub fn status(&self) -> FilterStatus {
        let filter = self.handle.load();
        let state = self.lock();
        let lists = state
            .config
            .lists
            .iter()
            .map(|list| {
                let name = &list.source.name;
                let load = state.loads.iter().find(|l| &l.name == name);
                ListStatus {
                    name: name.clone(),
                    source: list.source.location.to_string(),
                    exact: list.source.exact,
                    refresh_secs: list.refresh.as_secs(),
                    rules: load.and_then(|l| l.summary.as_ref()).map(|s| s.rules),
                    malformed: load.and_then(|l| l.summary.as_ref()).map(|s| s.malformed),
                    malformed_samples: load
                        .and_then(|l| l.summary.as_ref())
                        .map(malformed_samples)
                        .unwrap_or_default(),
                    stored: state.store.meta(name),
                    last_outcome: state.last_outcome.get(name).cloned(),
                    error: load.and_then(|l| l.error.clone()),
                    blocked: state.blocked_by_list.get(name).copied().unwrap_or(0),
                }
            })
            .collect();
        let groups = state
            .settings
            .filter
            .groups
            .iter()
            .map(|group| GroupStatus {
                name: group.name.clone(),
                zones: group.zones.clone(),
                clients: group.clients.iter().map(ToString::to_string).collect(),
                lists: group.lists.clone(),
                block_mode: block_mode_name(&group.block_mode),
                safe_search: group.safe_search,
                blocked: state
                    .blocked_by_group
                    .get(&group.name)
                    .copied()
                    .unwrap_or(0),
            })
            .collect();
        FilterStatus {
            lists,
            groups,
            domain_entries: filter.set.domain_entries(),
            regex_rules: filter.set.regex_rules(),
            memory_bytes: filter.set.heap_bytes(),
            build_ms: state.build_ms,
        }
    }

    /// Explains what the filter decides for `name` asked by `client`.
    pub fn why(&self, name: &str, client: Option<IpAddr>) -> Result<Why, String> {
        let wire = name_to_wire(name)?;
        let filter = self.handle.load_full();
        let who = client.map(|ip| filter.classify(ip));
        let group_index = who.map_or(0, |w| w.group);
        let group = filter.group(group_index);
        let matches = if group.filters {
            filter.set.matches(usize::from(group_index), &wire)
        } else {
            Vec::new()
        };
        let store = Arc::clone(&self.lock().store);
        let rules: Vec<RuleHit> = matches
            .iter()
            .map(|m| rule_hit(&filter, &store, m, &wire))
            .collect();
        let (verdict, reason) = match (matches.first(), rules.first()) {
            (Some(m), Some(hit)) if m.blocks() => (
                "blocked",
                format!(
                    "{} in list `{}` blocks it{}",
                    hit.rule,
                    hit.list,
                    outranks(&rules)
                ),
            ),
            (Some(_), Some(hit)) => (
                "allowed",
                format!(
                    "{} in list `{}` allows it{}",
                    hit.rule,
                    hit.list,
                    outranks(&rules)
                ),
            ),
            _ if !group.filters => ("unlisted", format!("group `{}` uses no lists", group.name)),
            _ => (
                "unlisted",
                format!(
                    "no rule of group `{}`'s lists ({}) matches it",
                    group.name,
                    group.lists.join(", ")
                ),
            ),
        };
        let safe_search = if group.safe_search {
            dns::filter::safesearch::target(&wire).map(str::to_string)
        } else {
            None
        };
        Ok(Why {
            name: dotted(&wire),
            client,
            zone: who.and_then(|w| filter.zone_name(w.zone).map(str::to_string)),
            group: group.name.clone(),
            group_lists: group.lists.clone(),
            verdict,
            block_mode: (verdict == "blocked").then(|| block_mode_name(&group.block_mode)),
            reason,
            rules,
            safe_search,
        })
    }
}

/// The sampled malformed lines of a list, for logs and status.
fn malformed_samples(summary: &dns::filter::ListSummary) -> Vec<String> {
    summary
        .samples
        .iter()
        .map(|m| format!("line {}: {}: {}", m.line, m.reason, m.text))
        .collect()
}

/// Which lists a round of refreshes covers.
#[derive(Debug, Clone, Copy)]
enum Which {
    All,
    /// Local files only: they cost nothing, so a start reads them at once.
    Files,
    /// Those whose refresh interval has run out.
    Due,
}

fn is_update(outcome: &RefreshOutcome) -> bool {
    matches!(outcome, RefreshOutcome::Updated { .. })
}

/// How long until a list fetched at `fetched_at_ms` is due again.
fn remaining(fetched_at_ms: i64, refresh: Duration) -> Duration {
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    let age = Duration::from_millis(u64::try_from(now_ms - fetched_at_ms).unwrap_or(0));
    refresh.saturating_sub(age)
}

fn outranks(rules: &[RuleHit]) -> String {
    match rules.len() {
        0 | 1 => String::new(),
        n => format!(", outranking {} other matching rule(s)", n - 1),
    }
}

fn rule_hit(filter: &Filter, store: &ListStore, m: &Match, wire: &[u8]) -> RuleHit {
    let info = filter.set.lists().get(usize::from(m.list));
    let list = info.map_or_else(|| format!("#{}", m.list), |i| i.name.clone());
    let options = info.map_or(ParseOptions::default(), |i| i.options);
    let suffix;
    let pattern = match m.kind {
        MatchKind::Domain { scope, offset } => {
            suffix = dotted(wire.get(usize::from(offset)..).unwrap_or(&[]));
            Pattern::Domain(&suffix, scope)
        }
        MatchKind::Regex { index } => Pattern::Regex(filter.set.regex_source(index).unwrap_or("")),
    };
    let file = store.current(&list);
    let located = file.as_ref().and_then(|path| {
        let reader = BufReader::new(File::open(path).ok()?);
        locate(reader, options, m.action, m.important, pattern)
            .ok()
            .flatten()
    });
    RuleHit {
        rule: m.rule_text(wire, &filter.set),
        list,
        action: match m.action {
            Action::Block => "block",
            Action::Allow => "allow",
        },
        important: m.important,
        file,
        line: located.as_ref().map(|(line, _)| *line),
        text: located.map(|(_, text)| text),
    }
}

fn block_mode_name(mode: &dns::settings::BlockMode) -> String {
    use dns::settings::BlockMode;
    match mode {
        BlockMode::NxDomain => "nxdomain".into(),
        BlockMode::NullAddress => "null".into(),
        BlockMode::Refused => "refused".into(),
        BlockMode::Address { v4, v6 } => {
            let all: Vec<String> = v4
                .iter()
                .map(ToString::to_string)
                .chain(v6.iter().map(ToString::to_string))
                .collect();
            format!("address {}", all.join(", "))
        }
    }
}

/// A name as typed by an operator, in lowercase wire form (IDNs in
/// punycode), normalised as list entries are.
fn name_to_wire(name: &str) -> Result<Vec<u8>, String> {
    let mut buf = String::new();
    let normal = dns::filter::name::normalize(name.trim(), &mut buf)
        .map_err(|reason| format!("`{name}` is not a domain name: {reason}"))?;
    let mut wire = [0u8; 256];
    dns::filter::name::to_wire(normal, &mut wire)
        .map(<[u8]>::to_vec)
        .ok_or_else(|| format!("`{name}` is longer than a domain name may be"))
}
