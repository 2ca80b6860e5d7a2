//! The thin tokio driver around `vrrp::Instance`: one task per instance
//! owns its raw socket, its virtual addresses and its timer, feeds the
//! state machine packets, health verdicts and deadlines, and does what the
//! returned actions say.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot, watch};
use tracing::{info, warn};
use vrrp::{Action, Advertisement, Instance, State};

use super::accept::NoAccept;
use super::addresses::VirtualAddresses;
use super::announce;
use super::health::{self, Health};
use super::settings::{InstanceConfig, VrrpConfig};
use super::socket::{Family, VrrpSocket};
use super::status::{InstanceStatus, VrrpStatus};
use crate::links::AbortOnDrop;

/// How long an instance waits before it retries opening its socket when
/// the interface is missing at start.
const RETRY_OPEN: Duration = Duration::from_secs(1);

enum Control {
    Status(oneshot::Sender<InstanceStatus>),
    Stop(oneshot::Sender<()>),
}

#[derive(Debug)]
struct InstanceHandle {
    config: InstanceConfig,
    control: mpsc::Sender<Control>,
    task: tokio::task::JoinHandle<()>,
}

impl InstanceHandle {
    /// Stops the instance: a master leaves with priority 0 first.
    async fn stop(self) {
        let (tx, rx) = oneshot::channel();
        if self.control.send(Control::Stop(tx)).await.is_ok() {
            let _ = tokio::time::timeout(Duration::from_secs(2), rx).await;
        }
        self.task.abort();
    }
}

/// The running VRRP instances and their health checks.
#[derive(Debug)]
pub struct VrrpService {
    config: VrrpConfig,
    resolver: Option<SocketAddr>,
    instances: Vec<InstanceHandle>,
    health: watch::Receiver<Health>,
    _checks: AbortOnDrop,
}

/// What [`VrrpService::reconfigure`] could not do in place.
#[derive(Debug, PartialEq, Eq)]
pub struct ChecksChanged;

impl VrrpService {
    /// Starts every instance. `resolver` is where the DNS probes go (one
    /// of the service's own listen addresses); `appliance` carries what
    /// the daemon finds failing itself (stale tunnels, BGP sessions down).
    pub fn start(
        config: &VrrpConfig,
        resolver: Option<SocketAddr>,
        appliance: watch::Receiver<Vec<String>>,
    ) -> VrrpService {
        let (health_tx, health_rx) = watch::channel(Health::default());
        let checks = config.checks.clone();
        let checks_task = tokio::spawn(health::run(checks, resolver, appliance, health_tx));
        let instances = config
            .instances
            .iter()
            .map(|instance| spawn_instance(config, instance, &health_rx))
            .collect();
        VrrpService {
            config: config.clone(),
            resolver,
            instances,
            health: health_rx,
            _checks: AbortOnDrop(checks_task),
        }
    }

    /// Brings the running instances to `config` one by one: unchanged
    /// ones keep running (a master stays master, its address untouched),
    /// changed ones restart, removed ones stop and new ones start. Changed
    /// checks, or another probe address, need a new service: the caller
    /// restarts it.
    pub async fn reconfigure(
        &mut self,
        config: &VrrpConfig,
        resolver: Option<SocketAddr>,
    ) -> Result<(), ChecksChanged> {
        if config.checks != self.config.checks || resolver != self.resolver {
            return Err(ChecksChanged);
        }
        let mut kept = Vec::new();
        for handle in std::mem::take(&mut self.instances) {
            if config.instances.contains(&handle.config) {
                kept.push(handle);
            } else {
                info!(instance = %handle.config.name, "VRRP instance changed or removed: stopping it");
                handle.stop().await;
            }
        }
        for instance in &config.instances {
            match kept.iter().position(|h| &h.config == instance) {
                Some(at) => self.instances.push(kept.remove(at)),
                None => {
                    info!(instance = %instance.name, "VRRP instance new or changed: starting it");
                    self.instances
                        .push(spawn_instance(config, instance, &self.health));
                }
            }
        }
        self.config = config.clone();
        Ok(())
    }

    pub async fn status(&self) -> VrrpStatus {
        let mut instances = Vec::new();
        for handle in &self.instances {
            let (tx, rx) = oneshot::channel();
            if handle.control.send(Control::Status(tx)).await.is_ok()
                && let Ok(status) = rx.await
            {
                instances.push(status);
            }
        }
        VrrpStatus {
            instances,
            failing_checks: self.health.borrow().failing.clone(),
        }
    }

    /// Stops every instance: a master sends priority 0 and gives up its
    /// addresses, so the standby takes over after its skew time.
    pub async fn stop(self) {
        for handle in self.instances {
            handle.stop().await;
        }
    }
}

fn spawn_instance(
    config: &VrrpConfig,
    instance: &InstanceConfig,
    health: &watch::Receiver<Health>,
) -> InstanceHandle {
    let (control_tx, control_rx) = mpsc::channel(8);
    let task = tokio::spawn(run(
        instance.clone(),
        config.checks.interface.then_some(config.checks.interval),
        health.clone(),
        control_rx,
    ));
    InstanceHandle {
        config: instance.clone(),
        control: control_tx,
        task,
    }
}

/// One instance's task: state machine, socket, addresses.
struct Runner {
    config: InstanceConfig,
    instance: Option<Instance>,
    socket: Option<VrrpSocket>,
    addresses: Option<VirtualAddresses>,
    /// `Some` with accept mode off: what drops traffic to the addresses.
    no_accept: Option<NoAccept>,
    check_interface: bool,
    interface_down: bool,
    bad_packets: u64,
    error: Option<String>,
    packet: Vec<u8>,
}

/// `check_interface`: how often to look at the interface, if at all.
async fn run(
    config: InstanceConfig,
    check_interface: Option<Duration>,
    mut health: watch::Receiver<Health>,
    mut control: mpsc::Receiver<Control>,
) {
    let mut runner = Runner {
        no_accept: NoAccept::for_instance(&config),
        config,
        instance: None,
        socket: None,
        addresses: None,
        check_interface: check_interface.is_some(),
        interface_down: false,
        bad_packets: 0,
        error: None,
        packet: Vec::with_capacity(64),
    };
    let mut buf = vec![0u8; 2048];
    let mut interface_ticker =
        tokio::time::interval(check_interface.unwrap_or(RETRY_OPEN).min(RETRY_OPEN));
    interface_ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut health_open = true;
    loop {
        if runner.instance.is_none()
            && let Err(e) = runner.open().await
        {
            if runner.error.as_deref() != Some(e.as_str()) {
                warn!(instance = %runner.config.name, error = %e, "VRRP instance not running");
            }
            runner.error = Some(e);
        }
        let deadline = runner.instance.as_ref().and_then(Instance::next_timeout);
        tokio::select! {
            biased;
            message = control.recv() => match message {
                Some(Control::Status(tx)) => {
                    let _ = tx.send(runner.status());
                }
                Some(Control::Stop(tx)) => {
                    runner.stop().await;
                    let _ = tx.send(());
                    return;
                }
                None => {
                    runner.stop().await;
                    return;
                }
            },
            changed = health.changed(), if health_open => {
                if changed.is_err() {
                    // The checks are gone with the service; serve on
                    // until told to stop.
                    health_open = false;
                    continue;
                }
                let verdict = health.borrow_and_update().clone();
                runner.apply_health(&verdict).await;
            }
            received = recv(runner.socket.as_ref(), &mut buf) => {
                runner.receive(received, &buf).await;
            }
            () = sleep_until(deadline) => {
                let actions = match runner.instance.as_mut() {
                    Some(instance) => instance.timeout(Instant::now()),
                    None => Vec::new(),
                };
                runner.perform(actions).await;
            }
            _ = interface_ticker.tick() => {
                if runner.check_interface {
                    let verdict = health.borrow().clone();
                    runner.check_interface_state(&verdict).await;
                }
            }
        }
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline.into()).await,
        None => std::future::pending().await,
    }
}

async fn recv(
    socket: Option<&VrrpSocket>,
    buf: &mut [u8],
) -> std::io::Result<super::socket::Received> {
    match socket {
        Some(socket) => socket.recv(buf).await,
        None => std::future::pending().await,
    }
}

impl Runner {
    /// Opens the socket and the address handle and starts the state
    /// machine; the interface must exist.
    async fn open(&mut self) -> Result<(), String> {
        let family = if self.config.is_ipv4() {
            Family::V4
        } else {
            Family::V6
        };
        let addresses = VirtualAddresses::open(&self.config.interface, &self.config.addresses)
            .map_err(|e| format!("netlink: {e}"))?;
        let socket = VrrpSocket::open(&self.config.interface, family)
            .map_err(|e| format!("opening the VRRP socket on {}: {e}", self.config.interface))?;
        // A predecessor killed with SIGKILL leaves its addresses behind.
        if let Err(e) = addresses.remove().await {
            warn!(instance = %self.config.name, error = %e, "removing stale virtual addresses");
        }
        if let Some(no_accept) = &self.no_accept
            && let Err(e) = no_accept.remove().await
        {
            warn!(instance = %self.config.name, error = %e, "removing a stale accept-mode table");
        }
        let settings = vrrp::Settings {
            vrid: self.config.vrid,
            priority: self.config.priority,
            advert_interval: centis(self.config.advert_interval),
            preempt: self.config.preempt,
            preempt_delay: self.config.preempt_delay,
            addresses: self.config.virtual_ips(),
            announce_again_after: self.config.announce_again_after,
        };
        let now = Instant::now();
        let mut instance = Instance::new(settings, socket.local_address(), now)
            .map_err(|e| format!("instance {}: {e}", self.config.name))?;
        let actions = instance.start(now);
        info!(
            instance = %self.config.name,
            interface = %self.config.interface,
            vrid = self.config.vrid,
            priority = self.config.priority,
            local = %socket.local_address(),
            "VRRP instance started"
        );
        self.instance = Some(instance);
        self.socket = Some(socket);
        self.addresses = Some(addresses);
        self.error = None;
        self.perform(actions).await;
        Ok(())
    }

    async fn stop(&mut self) {
        let actions = match self.instance.as_mut() {
            Some(instance) => instance.shutdown(Instant::now()),
            None => return,
        };
        self.perform(actions).await;
    }

    async fn receive(&mut self, received: std::io::Result<super::socket::Received>, buf: &[u8]) {
        let received = match received {
            Ok(received) => received,
            Err(e) => {
                warn!(instance = %self.config.name, error = %e, "VRRP receive failed");
                tokio::time::sleep(Duration::from_millis(10)).await;
                return;
            }
        };
        let Some(payload) = buf.get(received.payload.clone()) else {
            self.bad_packets += 1;
            return;
        };
        // RFC 5798 7.1: a packet that crossed a router is not from the link.
        if received.ttl != vrrp::packet::TTL {
            self.bad_packets += 1;
            return;
        }
        let advert = match Advertisement::decode(payload, received.source, received.destination) {
            Ok(advert) => advert,
            Err(e) => {
                self.bad_packets += 1;
                tracing::debug!(instance = %self.config.name, source = %received.source, error = %e, "VRRP packet refused");
                return;
            }
        };
        if advert.vrid != self.config.vrid {
            return;
        }
        let actions = match self.instance.as_mut() {
            Some(instance) => instance.receive(Instant::now(), received.source, &advert),
            None => return,
        };
        self.perform(actions).await;
    }

    /// Applies the shared checks and this instance's interface state.
    async fn apply_health(&mut self, health: &Health) {
        let mut failing: Vec<String> = health.failing.clone();
        if self.interface_down {
            failing.push(format!("interface {} down", self.config.interface));
        }
        let now = Instant::now();
        let Some(instance) = self.instance.as_mut() else {
            return;
        };
        let actions = if failing.is_empty() {
            let mut actions = instance.recover(now);
            actions.extend(instance.set_priority(now, self.config.priority));
            actions
        } else {
            match self.config.check_weight {
                // An instance without its interface cannot work at all.
                Some(weight) if !self.interface_down => {
                    let lowered = u32::from(self.config.priority)
                        .saturating_sub(u32::from(weight) * failing.len() as u32)
                        .max(1);
                    instance.set_priority(now, u8::try_from(lowered).unwrap_or(1))
                }
                _ => instance.fault(now, failing.join(", ")),
            }
        };
        self.perform(actions).await;
    }

    async fn check_interface_state(&mut self, health: &Health) {
        let Some(addresses) = &self.addresses else {
            return;
        };
        let down = !addresses.interface_up().await;
        if down != self.interface_down {
            self.interface_down = down;
            self.apply_health(health).await;
        }
    }

    async fn perform(&mut self, actions: Vec<Action>) {
        for action in actions {
            match action {
                Action::Advertise { priority } => self.advertise(priority).await,
                Action::AddAddresses => {
                    // Before the addresses: no packet to them gets in
                    // between.
                    if let Some(no_accept) = &self.no_accept
                        && let Err(e) = no_accept.install().await
                    {
                        warn!(instance = %self.config.name, error = %e, "accept mode off: cannot install the drop");
                    }
                    if let Some(addresses) = &self.addresses
                        && let Err(e) = addresses.add().await
                    {
                        warn!(instance = %self.config.name, error = %e, "adding the virtual addresses failed");
                    }
                }
                Action::RemoveAddresses => {
                    if let Some(addresses) = &self.addresses
                        && let Err(e) = addresses.remove().await
                    {
                        warn!(instance = %self.config.name, error = %e, "removing the virtual addresses failed");
                    }
                    if let Some(no_accept) = &self.no_accept
                        && let Err(e) = no_accept.remove().await
                    {
                        warn!(instance = %self.config.name, error = %e, "accept mode off: cannot remove the drop");
                    }
                }
                Action::Announce => self.announce(),
                Action::Transition { from, to, reason } => {
                    info!(instance = %self.config.name, %from, %to, %reason, "VRRP transition");
                    self.notify(from, to, &reason.to_string());
                }
            }
        }
    }

    async fn advertise(&mut self, priority: u8) {
        let (Some(instance), Some(socket)) = (&self.instance, &self.socket) else {
            return;
        };
        let advert = instance.advertisement(priority);
        let source = socket.local_address();
        let destinations: Vec<IpAddr> = if self.config.unicast_peers.is_empty() {
            vec![if self.config.is_ipv4() {
                IpAddr::V4(vrrp::packet::GROUP_V4)
            } else {
                IpAddr::V6(vrrp::packet::GROUP_V6)
            }]
        } else {
            self.config.unicast_peers.clone()
        };
        for destination in destinations {
            if let Err(e) = advert.encode(source, destination, &mut self.packet) {
                warn!(instance = %self.config.name, error = %e, "VRRP advertisement not encoded");
                return;
            }
            if let Err(e) = socket.send(&self.packet, destination).await {
                warn!(instance = %self.config.name, %destination, error = %e, "VRRP advertisement not sent");
            }
        }
    }

    /// Gratuitous ARP / unsolicited NA, `announce_repeat` times, off the
    /// instance's task so a slow interface cannot delay its adverts.
    fn announce(&self) {
        let interface = self.config.interface.clone();
        let addresses = self.config.virtual_ips();
        let repeat = self.config.announce_repeat;
        let name = self.config.name.clone();
        tokio::task::spawn_blocking(move || {
            let v4: Vec<_> = addresses
                .iter()
                .filter_map(|a| match a {
                    IpAddr::V4(a) => Some(*a),
                    IpAddr::V6(_) => None,
                })
                .collect();
            let v6: Vec<_> = addresses
                .iter()
                .filter_map(|a| match a {
                    IpAddr::V6(a) => Some(*a),
                    IpAddr::V4(_) => None,
                })
                .collect();
            for round in 0..repeat {
                if round > 0 {
                    std::thread::sleep(Duration::from_millis(10));
                }
                // An instance is of one family (checked at config load).
                let result = if v4.is_empty() {
                    announce::announce_ipv6(&interface, &v6)
                } else {
                    announce::announce_ipv4(&interface, &v4)
                };
                if let Err(e) = result {
                    warn!(instance = %name, error = %e, "announcing the virtual addresses failed");
                    return;
                }
            }
        });
    }

    /// Runs the notify hook with NAME OLD NEW REASON; it must not hold
    /// the instance up, so it runs on its own and is reaped there.
    fn notify(&self, from: State, to: State, reason: &str) {
        let Some(program) = self.config.notify.clone() else {
            return;
        };
        let mut command = tokio::process::Command::new(&program);
        command
            .arg(&self.config.name)
            .arg(from.as_str())
            .arg(to.as_str())
            .arg(reason)
            .kill_on_drop(true);
        let name = self.config.name.clone();
        tokio::spawn(async move {
            let outcome = match command.spawn() {
                Ok(mut child) => tokio::time::timeout(Duration::from_secs(30), child.wait()).await,
                Err(e) => {
                    warn!(instance = %name, program = %program.display(), error = %e, "notify hook not started");
                    return;
                }
            };
            match outcome {
                Ok(Ok(status)) if status.success() => {}
                Ok(Ok(status)) => {
                    warn!(instance = %name, program = %program.display(), %status, "notify hook failed");
                }
                Ok(Err(e)) => warn!(instance = %name, error = %e, "notify hook lost"),
                Err(_) => {
                    warn!(instance = %name, program = %program.display(), "notify hook ran over 30 s and was killed")
                }
            }
        });
    }

    fn status(&self) -> InstanceStatus {
        let status = self.instance.as_ref().map(Instance::status);
        let millis = |centis: u16| u64::from(centis) * 10;
        InstanceStatus {
            name: self.config.name.clone(),
            interface: self.config.interface.clone(),
            vrid: self.config.vrid,
            state: status
                .as_ref()
                .map_or("down".to_owned(), |s| s.state.to_string()),
            priority: status.as_ref().map_or(0, |s| s.priority),
            configured_priority: self.config.priority,
            addresses: self
                .config
                .addresses
                .iter()
                .map(ToString::to_string)
                .collect(),
            local_address: self.socket.as_ref().map(VrrpSocket::local_address),
            master: status.as_ref().and_then(|s| s.master),
            master_priority: status.as_ref().and_then(|s| s.master_priority),
            advert_interval_ms: u64::try_from(self.config.advert_interval.as_millis())
                .unwrap_or(u64::MAX),
            master_advert_interval_ms: status
                .as_ref()
                .map_or(0, |s| millis(s.master_advert_interval)),
            transitions: status.as_ref().map_or(0, |s| s.transitions),
            last_reason: status
                .as_ref()
                .and_then(|s| s.last_reason.as_ref().map(ToString::to_string)),
            state_secs: status.as_ref().map_or(0, |s| s.since.elapsed().as_secs()),
            bad_packets: self.bad_packets,
            error: self.error.clone(),
        }
    }
}

/// The advert interval in VRRPv3's centiseconds (checked at config load).
fn centis(interval: Duration) -> u16 {
    u16::try_from(interval.as_millis() / 10)
        .unwrap_or(vrrp::packet::MAX_INTERVAL_CENTIS)
        .clamp(1, vrrp::packet::MAX_INTERVAL_CENTIS)
}
