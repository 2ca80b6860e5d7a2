//! The pair's tasks: on the primary a listener that hands out the bundle
//! to whoever shows the token; on the standby a loop that asks every
//! `interval` (or when told to) and applies a new version through the
//! daemon's own reload.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use axum::Json;
use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http_body_util::Full;
use hyper::Request;
use hyper::body::Bytes;
use serde::{Deserialize, Serialize};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tracing::{info, warn};

use super::bundle::{self, Bundle};
use super::settings::{PairConfig, Role, Token};
use super::store::Store;
use crate::daemon::Shared;
use crate::{client, config};

/// One request to the primary, connection included.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a starting standby waits for the primary.
const INITIAL_TIMEOUT: Duration = Duration::from_secs(3);
/// The primary counts the standby as reachable while it asked within
/// this many intervals.
const REACHABLE_INTERVALS: u32 = 3;

/// The primary's answer to `GET /v1/pair/bundle?have=V`.
#[derive(Debug, Serialize, Deserialize)]
pub struct Answer {
    pub version: String,
    /// `None` when the asker already has `version`.
    pub bundle: Option<Bundle>,
    /// The floating addresses the primary holds as VRRP master.
    #[serde(default)]
    pub holding: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SyncRecord {
    pub secs_ago: u64,
    pub version: String,
    /// "applied" or "refused".
    pub outcome: &'static str,
    pub message: String,
}

/// `routerctl pair` as JSON (without the VRRP part the control API adds).
#[derive(Debug, Clone, Serialize)]
pub struct PairStatus {
    pub role: Role,
    pub listen: Option<SocketAddr>,
    pub peer: Option<SocketAddr>,
    /// Standby: the primary answered the last request. Primary: the
    /// standby asked within three intervals.
    pub peer_reachable: bool,
    pub last_contact_secs: Option<u64>,
    /// This node's version of the shared configuration: what the primary
    /// hands out, or the copy the standby runs.
    pub version: Option<String>,
    /// The other node's: what the primary hands out, or what the standby
    /// last said it runs.
    pub peer_version: Option<String>,
    pub in_sync: bool,
    pub last_sync: Option<SyncRecord>,
    pub last_error: Option<String>,
    /// Floating addresses both nodes held as VRRP master when they last
    /// spoke: a split, the adverts not reaching the other node.
    pub both_hold: Vec<String>,
}

#[derive(Debug)]
struct PairState {
    version: Option<String>,
    peer_version: Option<String>,
    last_contact: Option<Instant>,
    last_sync: Option<(Instant, String, &'static str, String)>,
    last_error: Option<String>,
    /// The version the standby refused last, not tried again until the
    /// primary changes or an operator asks.
    refused: Option<String>,
    /// The primary's last bundle that checked, handed out while a newer
    /// change does not.
    good: Option<Arc<Bundle>>,
    /// What both nodes held as master at the last exchange.
    both_hold: Vec<String>,
}

impl PairState {
    /// Compares what each node holds as master at an exchange; both
    /// holding an address means their VRRP adverts do not get through.
    fn compare_holdings(&mut self, own: &[String], peer: &[String]) {
        let both: Vec<String> = own.iter().filter(|a| peer.contains(a)).cloned().collect();
        if both != self.both_hold {
            if both.is_empty() {
                info!("pair: the split is over, one node holds each floating address");
            } else {
                warn!(
                    addresses = %both.join(", "),
                    "pair: both nodes hold these floating addresses as VRRP master: their adverts do not reach each other"
                );
            }
        }
        self.both_hold = both;
    }
}

#[derive(Debug)]
struct Inner {
    config: PairConfig,
    config_path: PathBuf,
    shared: Weak<Shared>,
    state: Mutex<PairState>,
    wake: Notify,
}

impl Inner {
    fn state(&self) -> std::sync::MutexGuard<'_, PairState> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[derive(Debug)]
pub struct PairService {
    inner: Arc<Inner>,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for PairService {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl PairService {
    /// Starts the listener (when `listen` is set) and, on the standby, the
    /// sync loop, which reloads `shared` after each new version.
    pub async fn start(
        config: PairConfig,
        config_path: &Path,
        shared: Weak<Shared>,
        initial: Option<InitialSync>,
    ) -> anyhow::Result<PairService> {
        let last_sync = initial.as_ref().map(|i| {
            let (outcome, message) = match &i.refused {
                None => ("applied", "at start".to_string()),
                Some(e) => ("refused", e.clone()),
            };
            (Instant::now(), i.version.clone(), outcome, message)
        });
        let refused = initial.and_then(|i| i.refused.map(|_| i.version));
        let inner = Arc::new(Inner {
            config,
            config_path: config_path.to_path_buf(),
            state: Mutex::new(PairState {
                version: None,
                peer_version: None,
                last_contact: None,
                last_sync,
                last_error: None,
                refused,
                good: None,
                both_hold: Vec::new(),
            }),
            wake: Notify::new(),
            shared,
        });
        let mut tasks = Vec::new();
        if let Some(listen) = inner.config.listen {
            let listener = TcpListener::bind(listen)
                .await
                .map_err(|e| anyhow::anyhow!("cannot listen for the pair on {listen}: {e}"))?;
            let app = Router::new()
                .route("/v1/pair/bundle", get(serve_bundle))
                .with_state(Arc::clone(&inner));
            tasks.push(tokio::spawn(async move {
                if let Err(e) = axum::serve(listener, app).await {
                    warn!(error = %e, "the pair listener stopped");
                }
            }));
        }
        let looped = Arc::clone(&inner);
        tasks.push(tokio::spawn(async move {
            loop {
                match looped.config.role {
                    Role::Primary => {
                        let _ = collect(&looped).await;
                    }
                    Role::Standby => sync_once(&looped).await,
                }
                tokio::select! {
                    _ = tokio::time::sleep(looped.config.interval) => {}
                    _ = looped.wake.notified() => {}
                }
            }
        }));
        Ok(PairService { inner, tasks })
    }

    /// Stops the listener and the loop, and waits until they are gone
    /// (the listening socket closed with them).
    pub async fn stop(mut self) {
        let tasks = std::mem::take(&mut self.tasks);
        for task in &tasks {
            task.abort();
        }
        for task in tasks {
            // Cancelled is the expected end.
            let _ = task.await;
        }
    }

    pub fn config(&self) -> PairConfig {
        self.inner.config.clone()
    }

    /// Asks the primary now, and tries again a version refused before.
    pub fn sync_now(&self) {
        self.inner.state().refused = None;
        self.inner.wake.notify_one();
    }

    pub fn status(&self) -> PairStatus {
        let inner = &self.inner;
        let state = inner.state();
        let reachable_within = inner.config.interval * REACHABLE_INTERVALS;
        let peer_reachable = match inner.config.role {
            Role::Standby => state.last_contact.is_some() && state.last_error.is_none(),
            Role::Primary => state
                .last_contact
                .is_some_and(|t| t.elapsed() <= reachable_within),
        };
        PairStatus {
            role: inner.config.role,
            listen: inner.config.listen,
            peer: inner.config.peer,
            peer_reachable,
            last_contact_secs: state.last_contact.map(|t| t.elapsed().as_secs()),
            version: state.version.clone(),
            peer_version: state.peer_version.clone(),
            in_sync: state.version.is_some() && state.version == state.peer_version,
            last_sync: state
                .last_sync
                .as_ref()
                .map(|(at, version, outcome, message)| SyncRecord {
                    secs_ago: at.elapsed().as_secs(),
                    version: version.clone(),
                    outcome,
                    message: message.clone(),
                }),
            last_error: state.last_error.clone(),
            both_hold: if peer_reachable {
                state.both_hold.clone()
            } else {
                Vec::new()
            },
        }
    }
}

/// The floating addresses this node holds as VRRP master now.
async fn holding(shared: &Weak<Shared>) -> Vec<String> {
    let Some(shared) = shared.upgrade() else {
        return Vec::new();
    };
    let Some(vrrp) = shared.vrrp_status().await else {
        return Vec::new();
    };
    vrrp.instances
        .iter()
        .filter(|instance| instance.state == "master")
        .flat_map(|instance| &instance.addresses)
        .map(|address| address.split('/').next().unwrap_or(address).to_string())
        .collect()
}

/// The primary: the bundle of its files as they are now, or the last one
/// that checked when they do not.
async fn collect(inner: &Arc<Inner>) -> Option<Arc<Bundle>> {
    let path = inner.config_path.clone();
    let collected = tokio::task::spawn_blocking(move || Bundle::collect(&path)).await;
    let mut state = inner.state();
    match collected {
        Ok(Ok(bundle)) => {
            if state.version.as_ref() != Some(&bundle.version) {
                info!(
                    version = Bundle::short(&bundle.version),
                    "pair: configuration version"
                );
            }
            state.version = Some(bundle.version.clone());
            state.last_error = None;
            let bundle = Arc::new(bundle);
            state.good = Some(Arc::clone(&bundle));
            Some(bundle)
        }
        Ok(Err(e)) => {
            let message = format!("the configuration is not handed to the standby: {e}");
            if state.last_error.as_ref() != Some(&message) {
                warn!("pair: {message}");
            }
            state.last_error = Some(message);
            state.good.clone()
        }
        Err(e) => {
            state.last_error = Some(format!("collecting the configuration failed: {e}"));
            state.good.clone()
        }
    }
}

#[derive(Debug, Deserialize)]
struct BundleQuery {
    have: Option<String>,
    /// The floating addresses the standby holds as master, by commas.
    holding: Option<String>,
}

async fn serve_bundle(
    State(inner): State<Arc<Inner>>,
    headers: HeaderMap,
    Query(query): Query<BundleQuery>,
) -> Response {
    let offered = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    if !inner.config.token.matches(offered) {
        warn!("pair: a request without the right token was refused");
        return (StatusCode::UNAUTHORIZED, "token required\n").into_response();
    }
    if inner.config.role != Role::Primary {
        return (
            StatusCode::CONFLICT,
            "this node is the standby: ask the primary\n",
        )
            .into_response();
    }
    let own = holding(&inner.shared).await;
    let peer: Vec<String> = query
        .holding
        .iter()
        .flat_map(|list| list.split(','))
        .filter(|address| !address.is_empty())
        .map(str::to_string)
        .collect();
    {
        let mut state = inner.state();
        state.last_contact = Some(Instant::now());
        state.peer_version = query.have.clone();
        state.compare_holdings(&own, &peer);
    }
    let Some(bundle) = collect(&inner).await else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "the primary has no configuration that checks\n",
        )
            .into_response();
    };
    let unchanged = query.have.as_deref() == Some(bundle.version.as_str());
    Json(Answer {
        version: bundle.version.clone(),
        bundle: (!unchanged).then(|| (*bundle).clone()),
        holding: own,
    })
    .into_response()
}

/// One round on the standby: ask, and apply what is new.
async fn sync_once(inner: &Arc<Inner>) {
    let Some(peer) = inner.config.peer else {
        return;
    };
    let store = Store::new(&inner.config.state_dir);
    let have = store.current().map(|m| m.version);
    inner.state().version = have.clone();
    let own = holding(&inner.shared).await;
    let asked = Asked {
        have: have.as_deref(),
        holding: &own,
    };
    let answer = match fetch(peer, &inner.config.token, &asked, FETCH_TIMEOUT).await {
        Ok(answer) => answer,
        Err(e) => {
            let mut state = inner.state();
            if state.last_error.as_ref() != Some(&e) {
                warn!(
                    "pair: {e}; keeping version {}",
                    have.as_deref().map_or("(none)", Bundle::short)
                );
            }
            state.last_error = Some(e);
            return;
        }
    };
    {
        let mut state = inner.state();
        state.last_contact = Some(Instant::now());
        state.last_error = None;
        state.peer_version = Some(answer.version.clone());
        state.compare_holdings(&own, &answer.holding);
    }
    let Some(bundle) = answer.bundle else {
        return;
    };
    if inner.state().refused.as_ref() == Some(&bundle.version) {
        return;
    }
    let version = bundle.version.clone();
    let outcome = match take(&store, &inner.config_path, bundle).await {
        Err(e) => Err(e),
        Ok(previous) => match inner.shared.upgrade() {
            None => return,
            // Its own task: the reload may restart this service, whose
            // tasks (this one) it stops, and must not be cut short.
            Some(shared) => match tokio::spawn(async move { shared.reload().await })
                .await
                .unwrap_or_else(|e| Err(format!("the reload failed: {e}")))
            {
                Ok(outcome) => {
                    store.prune(&[version.as_str(), previous.as_deref().unwrap_or("")]);
                    Ok(outcome.message)
                }
                Err(e) => {
                    // The running configuration is the old one: so is
                    // the copy in use.
                    if let Err(restore) = store.restore(previous.as_deref()) {
                        warn!("pair: cannot restore the previous copy: {restore}");
                    }
                    Err(e)
                }
            },
        },
    };
    let mut state = inner.state();
    match outcome {
        Ok(message) => {
            info!(
                version = Bundle::short(&version),
                "pair: the primary's configuration is applied"
            );
            state.version = Some(version.clone());
            state.refused = None;
            state.last_sync = Some((Instant::now(), version, "applied", message));
        }
        Err(message) => {
            warn!(
                version = Bundle::short(&version),
                "pair: the primary's configuration is refused: {message}"
            );
            state.refused = Some(version.clone());
            state.last_sync = Some((Instant::now(), version, "refused", message));
        }
    }
}

/// At the standby's start, before any service: one try to take the
/// primary's current version, so the standby comes up with the pair's
/// configuration (its policy included) rather than its own file's. An
/// unreachable primary or a copy that does not check leaves what is
/// there.
pub async fn initial_sync(config: &PairConfig, config_path: &Path) -> Option<InitialSync> {
    let (Role::Standby, Some(peer)) = (config.role, config.peer) else {
        return None;
    };
    let store = Store::new(&config.state_dir);
    let have = store.current().map(|m| m.version);
    let asked = Asked {
        have: have.as_deref(),
        ..Asked::default()
    };
    let bundle = match fetch(peer, &config.token, &asked, INITIAL_TIMEOUT).await {
        Ok(Answer {
            bundle: Some(bundle),
            ..
        }) => bundle,
        Ok(Answer { bundle: None, .. }) => return None,
        Err(e) => {
            warn!(
                "pair: {e}; starting with version {}",
                have.as_deref().map_or("(none)", Bundle::short)
            );
            return None;
        }
    };
    let version = bundle.version.clone();
    Some(match take(&store, config_path, bundle).await {
        Ok(_) => {
            info!(
                version = Bundle::short(&version),
                "pair: starting with the primary's configuration"
            );
            InitialSync {
                version,
                refused: None,
            }
        }
        Err(e) => {
            warn!(
                version = Bundle::short(&version),
                "pair: the primary's configuration is refused: {e}"
            );
            InitialSync {
                version,
                refused: Some(e),
            }
        }
    })
}

/// What [`initial_sync`] did, for the status.
#[derive(Debug, Clone)]
pub struct InitialSync {
    pub version: String,
    /// Why the copy was refused; `None`: applied.
    pub refused: Option<String>,
}

/// [`stage_and_commit`] off the async threads (it reads and writes files
/// and loads the policy).
async fn take(store: &Store, config_path: &Path, bundle: Bundle) -> Result<Option<String>, String> {
    let (store, config_path) = (store.clone(), config_path.to_path_buf());
    tokio::task::spawn_blocking(move || stage_and_commit(&store, &config_path, &bundle))
        .await
        .unwrap_or_else(|e| Err(format!("checking the copy failed: {e}")))
}

/// Verifies, stores and checks a bundle against this node's own file, and
/// puts it in use when everything holds; returns the version it replaced.
pub(crate) fn stage_and_commit(
    store: &Store,
    config_path: &Path,
    bundle: &Bundle,
) -> Result<Option<String>, String> {
    bundle.verify().map_err(|e| e.to_string())?;
    let dir = store.stage(bundle).map_err(|e| e.to_string())?;
    let checked = (|| {
        let local = config::load_local(config_path).map_err(|e| e.to_string())?;
        let effective = bundle::overlay(local, &dir.join("files"), &bundle.config_path)
            .map_err(|e| e.to_string())?;
        if let Some(policies) = &effective.policies_dir {
            let mut loaded = policies::load_dir(policies, &policies::Protected::default())
                .map_err(|e| e.to_string())?;
            let own = effective
                .pair
                .as_ref()
                .map(|p| p.zone_addresses.clone())
                .unwrap_or_default();
            policies::localize(&mut loaded.policy, &own).map_err(|e| e.to_string())?;
        }
        Ok::<_, String>(())
    })();
    if let Err(e) = checked {
        let _ = std::fs::remove_dir_all(&dir);
        return Err(e);
    }
    store.commit(&bundle.version).map_err(|e| e.to_string())
}

/// What the standby tells the primary when it asks.
#[derive(Debug, Default)]
struct Asked<'a> {
    /// The version it runs.
    have: Option<&'a str>,
    /// The floating addresses it holds as master.
    holding: &'a [String],
}

impl Asked<'_> {
    fn path(&self) -> String {
        let mut query = Vec::new();
        if let Some(version) = self.have {
            query.push(format!("have={version}"));
        }
        if !self.holding.is_empty() {
            // Addresses need no escaping in a query: digits, dots, colons.
            query.push(format!("holding={}", self.holding.join(",")));
        }
        if query.is_empty() {
            "/v1/pair/bundle".to_string()
        } else {
            format!("/v1/pair/bundle?{}", query.join("&"))
        }
    }
}

/// `GET /v1/pair/bundle` on the primary, answered within `within`.
async fn fetch(
    peer: SocketAddr,
    token: &Token,
    asked: &Asked<'_>,
    within: Duration,
) -> Result<Answer, String> {
    let asked = async {
        let stream = TcpStream::connect(peer)
            .await
            .map_err(|e| format!("cannot reach the primary at {peer}: {e}"))?;
        let path = asked.path();
        let request = Request::builder()
            .method("GET")
            .uri(path)
            .header("host", peer.to_string())
            .header("authorization", format!("Bearer {}", token.as_str()))
            .body(Full::new(Bytes::new()))
            .map_err(|e| e.to_string())?;
        let limit = bundle::MAX_BYTES * 2 + (1 << 20);
        client::exchange(stream, request, limit)
            .await
            .map_err(|e| format!("the primary at {peer}: {e:#}"))
    };
    let (status, body) = tokio::time::timeout(within, asked)
        .await
        .unwrap_or_else(|_| {
            Err(format!(
                "the primary at {peer} did not answer within {within:?}"
            ))
        })?;
    if !(200..300).contains(&status) {
        return Err(format!(
            "the primary at {peer} answered HTTP {status}: {}",
            String::from_utf8_lossy(&body).trim()
        ));
    }
    serde_json::from_slice(&body).map_err(|e| format!("the primary's answer is not a bundle: {e}"))
}
