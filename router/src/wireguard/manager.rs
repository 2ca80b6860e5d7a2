//! The driver: brings the configured tunnels into being, reconciles them on
//! reload without disturbing unchanged peers, watches peers' health and
//! re-resolves endpoint names. The decisions are in [`super::plan`] and
//! [`super::health`]; this module does the I/O.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant, SystemTime};

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tracing::{debug, info, warn};
use wireguard_control::{Backend, Device, InterfaceName, Key};

use super::health::{Activity, verdict};
use super::netlink::{Netlink, WantedRoute};
use super::plan::{Changes, DeviceState, plan};
use super::resolve::{Resolved, resolve};
use super::settings::{BackendChoice, Endpoint, RouteMode, Tunnel, WireguardConfig};
use super::status::{PeerStatus, TunnelStatus, WireguardStatus};

/// Where wireguard-go puts its control sockets, in every network namespace.
const USERSPACE_SOCKET_DIR: &str = "/var/run/wireguard";
/// How long wireguard-go may take to open its control socket.
const USERSPACE_START: Duration = Duration::from_secs(5);
/// A name that failed to resolve is asked again after this long.
const RESOLVE_RETRY: Duration = Duration::from_secs(5);
/// A silent peer's name is asked again at most this often, whatever its TTL.
const STALE_RERESOLVE: Duration = Duration::from_secs(10);

/// Every tunnel routerd runs, and what it knows about each.
#[derive(Debug, Default)]
pub struct Wireguard {
    config: WireguardConfig,
    /// The DNS service endpoint names are resolved with.
    resolver: Option<SocketAddr>,
    tunnels: BTreeMap<String, Runtime>,
}

/// One tunnel's live state.
#[derive(Debug, Default)]
struct Runtime {
    backend: Option<Backend>,
    /// The wireguard-go routerd started, if it did.
    child: Option<Child>,
    index: Option<u32>,
    error: Option<String>,
    device: Option<DeviceState>,
    /// Addresses endpoint names stand for now.
    resolved: HashMap<Key, SocketAddr>,
    /// When each name is due to be asked again.
    resolve_due: HashMap<Key, Instant>,
    last_asked: HashMap<Key, Instant>,
    resolve_error: HashMap<Key, String>,
    /// What routerd last set as each peer's endpoint.
    pushed: HashMap<Key, SocketAddr>,
    activity: HashMap<Key, Activity>,
}

impl Wireguard {
    pub fn new(resolver: Option<SocketAddr>) -> Wireguard {
        Wireguard {
            resolver,
            ..Wireguard::default()
        }
    }

    /// Makes the system match `config`: removes the tunnels it no longer
    /// has, creates or reconciles the others, then the routes. A tunnel
    /// that fails keeps its error for the status and does not stop the
    /// others. Returns a line per problem.
    pub async fn apply(
        &mut self,
        config: WireguardConfig,
        resolver: Option<SocketAddr>,
    ) -> Vec<String> {
        self.resolver = resolver;
        let netlink = match Netlink::open() {
            Ok(netlink) => netlink,
            Err(e) => return vec![format!("wireguard: cannot open rtnetlink: {e}")],
        };
        let gone: Vec<String> = self
            .tunnels
            .keys()
            .filter(|name| !config.tunnels.iter().any(|t| &t.interface == *name))
            .cloned()
            .collect();
        for name in gone {
            if let Some(runtime) = self.tunnels.remove(&name) {
                remove_tunnel(&netlink, &name, runtime).await;
            }
        }
        self.config = config;
        let mut problems = Vec::new();
        for tunnel in self.config.tunnels.clone() {
            let runtime = self.tunnels.entry(tunnel.interface.clone()).or_default();
            let result = reconcile(&netlink, &self.config, &tunnel, runtime, self.resolver).await;
            if let Err(e) = &result {
                warn!(interface = %tunnel.interface, error = %e, "tunnel not in place");
                problems.push(format!("tunnel {}: {e}", tunnel.interface));
            }
            runtime.error = result.err();
        }
        if let Err(e) = self.sync_routes(&netlink).await {
            warn!(error = %e, "tunnel routes not in place");
            problems.push(format!("tunnel routes: {e}"));
        }
        problems
    }

    /// Routes for every table-mode tunnel's peers, and the rule to use them.
    async fn sync_routes(&self, netlink: &Netlink) -> Result<(), String> {
        let mut wanted: Vec<WantedRoute> = Vec::new();
        for tunnel in &self.config.tunnels {
            let Some(index) = self.tunnels.get(&tunnel.interface).and_then(|r| r.index) else {
                continue;
            };
            if tunnel.routes == RouteMode::Table {
                for peer in &tunnel.peers {
                    wanted.extend(peer.allowed_ips.iter().map(|net| (*net, index)));
                }
            }
        }
        if !wanted.is_empty() {
            netlink
                .ensure_rule(self.config.route_table, self.config.rule_priority)
                .await
                .map_err(|e| {
                    format!("adding the rule for table {}: {e}", self.config.route_table)
                })?;
        }
        netlink
            .sync_routes(self.config.route_table, &wanted)
            .await
            .map_err(|e| format!("table {}: {e}", self.config.route_table))
    }

    /// Called every second or so: reads each device for the status,
    /// recreates a tunnel whose interface vanished, and pushes endpoint
    /// names that now resolve elsewhere.
    pub async fn tick(&mut self) {
        if self.config.tunnels.is_empty() {
            return;
        }
        let now = Instant::now();
        let mut recreate = false;
        for tunnel in &self.config.tunnels {
            let Some(runtime) = self.tunnels.get_mut(&tunnel.interface) else {
                continue;
            };
            let exited = match runtime.child.as_mut().map(Child::try_wait) {
                Some(Ok(Some(status))) => Some(status.to_string()),
                _ => None,
            };
            if let Some(status) = exited {
                warn!(interface = %tunnel.interface, %status, "wireguard-go exited; recreating the tunnel");
                runtime.child = None;
                recreate = true;
                continue;
            }
            if runtime.backend.is_none() {
                recreate |= runtime.error.is_some();
                continue;
            }
            if let Err(e) = observe(&tunnel.interface, runtime, now).await {
                warn!(interface = %tunnel.interface, error = %e, "tunnel device unreadable; recreating it");
                runtime.device = None;
                recreate = true;
                continue;
            }
            if let Some(server) = self.resolver
                && refresh_names(tunnel, runtime, server, now).await
                && let Err(e) = push(tunnel, runtime).await
            {
                warn!(interface = %tunnel.interface, error = %e, "new endpoint not pushed");
            }
        }
        if recreate {
            let config = self.config.clone();
            let resolver = self.resolver;
            self.apply(config, resolver).await;
        }
    }

    /// Reads every device now, so a status that follows is current.
    pub async fn refresh(&mut self) {
        let now = Instant::now();
        for (name, runtime) in &mut self.tunnels {
            if runtime.backend.is_some()
                && let Err(e) = observe(name, runtime, now).await
            {
                debug!(interface = %name, error = %e, "tunnel device unreadable");
            }
        }
    }

    pub fn status(&self) -> WireguardStatus {
        let now = Instant::now();
        let wall = SystemTime::now();
        let tunnels = self
            .config
            .tunnels
            .iter()
            .map(|tunnel| {
                let runtime = self.tunnels.get(&tunnel.interface);
                let device = runtime.and_then(|r| r.device.as_ref());
                TunnelStatus {
                    interface: tunnel.interface.clone(),
                    backend: runtime.and_then(|r| r.backend).map(backend_name),
                    public_key: tunnel.private_key.public().to_base64(),
                    listen_port: device.and_then(|d| d.listen_port).or(tunnel.listen_port),
                    addresses: tunnel.addresses.clone(),
                    mtu: tunnel.mtu,
                    zone: tunnel.zone.clone(),
                    routes: tunnel.routes,
                    error: runtime.and_then(|r| r.error.clone()),
                    peers: tunnel
                        .peers
                        .iter()
                        .map(|peer| {
                            let state = device.and_then(|d| {
                                d.peers.iter().find(|p| p.public_key == peer.public_key)
                            });
                            let handshake_age = state
                                .and_then(|s| s.last_handshake)
                                .map(|t| wall.duration_since(t).unwrap_or_default());
                            let since_received = runtime
                                .and_then(|r| r.activity.get(&peer.public_key))
                                .and_then(|a| a.since_received(now));
                            PeerStatus {
                                name: peer.name.clone(),
                                public_key: peer.public_key.to_base64(),
                                configured_endpoint: peer
                                    .endpoint
                                    .as_ref()
                                    .map(ToString::to_string),
                                endpoint: state.and_then(|s| s.endpoint),
                                allowed_ips: peer.allowed_ips.clone(),
                                latest_handshake_secs_ago: handshake_age.map(|a| a.as_secs()),
                                last_received_secs_ago: since_received.map(|a| a.as_secs()),
                                rx_bytes: state.map_or(0, |s| s.rx_bytes),
                                tx_bytes: state.map_or(0, |s| s.tx_bytes),
                                persistent_keepalive: peer.persistent_keepalive,
                                verdict: verdict(handshake_age, since_received, tunnel.stale_after),
                                resolve_error: runtime
                                    .and_then(|r| r.resolve_error.get(&peer.public_key).cloned()),
                            }
                        })
                        .collect(),
                }
            })
            .collect();
        WireguardStatus { tunnels }
    }

    /// Removes every tunnel routerd made, as wg-quick down would.
    pub async fn shutdown(&mut self) {
        let Ok(netlink) = Netlink::open() else {
            return;
        };
        for (name, runtime) in std::mem::take(&mut self.tunnels) {
            remove_tunnel(&netlink, &name, runtime).await;
        }
    }
}

/// Reads the device and notes which peers' receive counters moved.
async fn observe(name: &str, runtime: &mut Runtime, now: Instant) -> Result<(), String> {
    let Some(backend) = runtime.backend else {
        return Ok(());
    };
    let device = read_device(name, backend).await?;
    for peer in &device.peers {
        runtime
            .activity
            .entry(peer.public_key.clone())
            .or_default()
            .observe(peer.rx_bytes, now);
    }
    runtime.device = Some(device);
    Ok(())
}

fn backend_name(backend: Backend) -> &'static str {
    match backend {
        Backend::Kernel => "kernel",
        Backend::Userspace => "userspace",
    }
}

/// Brings one tunnel to its settings.
async fn reconcile(
    netlink: &Netlink,
    config: &WireguardConfig,
    tunnel: &Tunnel,
    runtime: &mut Runtime,
    resolver: Option<SocketAddr>,
) -> Result<(), String> {
    let name = &tunnel.interface;
    let index = netlink
        .index(name)
        .await
        .map_err(|e| format!("looking up the interface: {e}"))?;
    let index = match (index, runtime.backend) {
        (Some(index), Some(_)) => index,
        (Some(index), None) => {
            // Left by an earlier routerd: adopted as it is, peers and all.
            let backend = if userspace_socket(name).exists() {
                Backend::Userspace
            } else {
                Backend::Kernel
            };
            info!(interface = %name, backend = backend_name(backend), "adopting the existing tunnel interface");
            runtime.backend = Some(backend);
            index
        }
        (None, _) => {
            runtime.device = None;
            runtime.pushed.clear();
            create(netlink, config, name, runtime).await?;
            netlink
                .index(name)
                .await
                .map_err(|e| format!("looking up the new interface: {e}"))?
                .ok_or_else(|| "the interface vanished right after it was created".to_string())?
        }
    };
    runtime.index = Some(index);
    let Some(backend) = runtime.backend else {
        return Err("no backend".into());
    };
    if let Some(server) = resolver {
        refresh_names(tunnel, runtime, server, Instant::now()).await;
    }
    runtime.device = Some(read_device(name, backend).await?);
    push(tunnel, runtime).await?;
    netlink
        .configure_link(index, tunnel.mtu, &tunnel.addresses)
        .await
        .map_err(|e| format!("configuring the interface: {e}"))?;
    Ok(())
}

/// Applies what differs between the tunnel's settings and its device.
async fn push(tunnel: &Tunnel, runtime: &mut Runtime) -> Result<(), String> {
    let Some(backend) = runtime.backend else {
        return Ok(());
    };
    let changes = plan(
        tunnel,
        runtime.device.as_ref(),
        &runtime.resolved,
        &runtime.pushed,
    );
    if changes.is_empty() {
        return Ok(());
    }
    log_changes(&tunnel.interface, &changes);
    let update = changes.to_update();
    let name = interface_name(&tunnel.interface)?;
    tokio::task::spawn_blocking(move || update.apply(&name, backend))
        .await
        .map_err(|e| format!("applying the configuration: {e}"))?
        .map_err(|e| format!("applying the configuration: {e}"))?;
    for change in &changes.upsert {
        if let Some(endpoint) = change.endpoint {
            runtime.pushed.insert(change.public_key.clone(), endpoint);
        }
    }
    for key in &changes.remove {
        runtime.pushed.remove(key);
        runtime.activity.remove(key);
    }
    runtime.device = Some(read_device(&tunnel.interface, backend).await?);
    Ok(())
}

fn log_changes(interface: &str, changes: &Changes) {
    for key in &changes.remove {
        info!(interface, public_key = %key.to_base64(), "peer removed");
    }
    for change in &changes.upsert {
        if change.added {
            info!(interface, peer = %change.name, endpoint = ?change.endpoint, "peer added");
        } else {
            info!(
                interface,
                peer = %change.name,
                endpoint = ?change.endpoint,
                allowed_ips = ?change.allowed_ips,
                keepalive = ?change.persistent_keepalive,
                preshared_key_changed = change.preshared_key.is_some(),
                "peer changed"
            );
        }
    }
    if changes.private_key.is_some() || changes.listen_port.is_some() {
        info!(interface, listen_port = ?changes.listen_port, "interface key or port set");
    }
}

/// Asks again for the names that are due: their TTL ran out, or the peer
/// has gone quiet (its address may have changed under it). Returns whether
/// any name now stands for a new address.
async fn refresh_names(
    tunnel: &Tunnel,
    runtime: &mut Runtime,
    server: SocketAddr,
    now: Instant,
) -> bool {
    let mut changed = false;
    let wall = SystemTime::now();
    for peer in &tunnel.peers {
        let Some(Endpoint::Name { host, port }) = &peer.endpoint else {
            continue;
        };
        let key = &peer.public_key;
        let due = runtime.resolve_due.get(key).is_none_or(|at| now >= *at);
        let quiet = runtime.device.as_ref().is_some_and(|device| {
            let state = device.peers.iter().find(|p| &p.public_key == key);
            let handshake_age = state
                .and_then(|s| s.last_handshake)
                .map(|t| wall.duration_since(t).unwrap_or_default());
            let since = runtime
                .activity
                .get(key)
                .and_then(|a| a.since_received(now));
            verdict(handshake_age, since, tunnel.stale_after) != super::health::Verdict::Up
        });
        let quiet_due = quiet
            && runtime
                .last_asked
                .get(key)
                .is_none_or(|at| now >= *at + STALE_RERESOLVE);
        if !due && !quiet_due {
            continue;
        }
        runtime.last_asked.insert(key.clone(), now);
        match resolve(server, host, *port).await {
            Ok(Resolved { address, ttl }) => {
                runtime.resolve_due.insert(key.clone(), now + ttl);
                runtime.resolve_error.remove(key);
                if runtime.resolved.insert(key.clone(), address) != Some(address) {
                    info!(interface = %tunnel.interface, peer = %peer.name, %host, %address, "endpoint resolved");
                    changed = true;
                }
            }
            Err(e) => {
                debug!(interface = %tunnel.interface, peer = %peer.name, error = %e, "endpoint not resolved");
                runtime.resolve_due.insert(key.clone(), now + RESOLVE_RETRY);
                if runtime
                    .resolve_error
                    .insert(key.clone(), e.clone())
                    .as_ref()
                    != Some(&e)
                {
                    warn!(interface = %tunnel.interface, peer = %peer.name, error = %e, "endpoint name does not resolve; keeping the last address");
                }
            }
        }
    }
    changed
}

/// Creates the interface with the configured backend, or the best one.
async fn create(
    netlink: &Netlink,
    config: &WireguardConfig,
    name: &str,
    runtime: &mut Runtime,
) -> Result<(), String> {
    if config.backend != BackendChoice::Userspace {
        match netlink.create_kernel_link(name).await {
            Ok(()) => {
                info!(interface = %name, backend = "kernel", "tunnel interface created");
                runtime.backend = Some(Backend::Kernel);
                return Ok(());
            }
            Err(e) if config.backend == BackendChoice::Kernel => {
                return Err(format!("the kernel refused a WireGuard interface: {e}"));
            }
            Err(e) => {
                debug!(interface = %name, error = %e, "no kernel WireGuard; using wireguard-go")
            }
        }
    }
    let child = start_userspace(&config.userspace_binary, name).await?;
    info!(interface = %name, backend = "userspace", pid = child.id(), "tunnel interface created");
    runtime.child = Some(child);
    runtime.backend = Some(Backend::Userspace);
    Ok(())
}

fn userspace_socket(name: &str) -> PathBuf {
    Path::new(USERSPACE_SOCKET_DIR).join(format!("{name}.sock"))
}

/// Starts wireguard-go in the foreground as routerd's child, its log lines
/// forwarded to routerd's, and waits for its control socket.
async fn start_userspace(binary: &Path, name: &str) -> Result<Child, String> {
    let socket = userspace_socket(name);
    // A socket left by a wireguard-go that died would make it refuse to start.
    if socket.exists() && std::os::unix::net::UnixStream::connect(&socket).is_err() {
        let _ = std::fs::remove_file(&socket);
    }
    let mut child = Command::new(binary)
        .arg("-f")
        .arg(name)
        .env("LOG_LEVEL", "error")
        // The kernel has no WireGuard, or the operator chose userspace.
        .env("WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start {}: {e} (install Debian's wireguard-go, or set [wireguard] userspace_binary)", binary.display()))?;
    for output in [
        child
            .stdout
            .take()
            .map(|o| Box::new(o) as Box<dyn tokio::io::AsyncRead + Send + Unpin>),
        child
            .stderr
            .take()
            .map(|o| Box::new(o) as Box<dyn tokio::io::AsyncRead + Send + Unpin>),
    ]
    .into_iter()
    .flatten()
    {
        let interface = name.to_string();
        tokio::spawn(async move {
            let mut lines = BufReader::new(output).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                // Its banner (a box urging the kernel module) says nothing
                // routerd does not already report as the backend.
                if line.starts_with(['┌', '│', '└']) {
                    continue;
                }
                // A peer without an endpoint waits for the other side to
                // call; status already says it has none.
                if line.contains("no known endpoint for peer") {
                    debug!(%interface, "wireguard-go: {line}");
                } else {
                    warn!(%interface, "wireguard-go: {line}");
                }
            }
        });
    }
    let deadline = Instant::now() + USERSPACE_START;
    loop {
        if std::os::unix::net::UnixStream::connect(&socket).is_ok() {
            return Ok(child);
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("{} exited at start ({status})", binary.display()));
        }
        if Instant::now() > deadline {
            let _ = child.start_kill();
            return Err(format!(
                "{} did not open {} within {USERSPACE_START:?}",
                binary.display(),
                socket.display()
            ));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn read_device(name: &str, backend: Backend) -> Result<DeviceState, String> {
    let name = interface_name(name)?;
    tokio::task::spawn_blocking(move || Device::get(&name, backend))
        .await
        .map_err(|e| format!("reading the device: {e}"))?
        .map(|device| DeviceState::from(&device))
        .map_err(|e| format!("reading the device: {e}"))
}

fn interface_name(name: &str) -> Result<InterfaceName, String> {
    name.parse()
        .map_err(|e| format!("{name} is not a valid interface name: {e:?}"))
}

/// Deletes the interface (its routes go with it) and stops wireguard-go.
async fn remove_tunnel(netlink: &Netlink, name: &str, mut runtime: Runtime) {
    match netlink.index(name).await {
        Ok(Some(index)) => match netlink.delete_link(index).await {
            Ok(()) => info!(interface = %name, "tunnel interface removed"),
            Err(e) => warn!(interface = %name, error = %e, "cannot remove the tunnel interface"),
        },
        Ok(None) => {}
        Err(e) => warn!(interface = %name, error = %e, "cannot look up the tunnel interface"),
    }
    if let Some(mut child) = runtime.child.take() {
        let _ = child.start_kill();
        let _ = tokio::time::timeout(Duration::from_secs(2), child.wait()).await;
    }
    if runtime.backend == Some(Backend::Userspace) {
        let _ = std::fs::remove_file(userspace_socket(name));
    }
}
