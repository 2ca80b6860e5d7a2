//! The thin tokio driver around [`bgp::speaker::Speaker`]: one task owns
//! the speaker and turns its outputs into sockets, timers and kernel
//! routes; small tasks read and write each connection and run each timer,
//! and report back through one channel.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use bgp::error::{Notification, code, subcode};
use bgp::fsm::{Action, Event, State, Timer};
use bgp::route::{Origin, Source};
use bgp::speaker::{Output, PeerId, PeerSettings, Speaker, SpeakerConfig};
use bgp::wire;
use futures_util::TryStreamExt;
use ipnet::IpNet;
use socket2::{Domain, Protocol, Socket, Type};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};

use super::kernel::{KernelRoutes, KernelWriter};
use super::settings::{BgpConfig, PeerConfig};
use super::socket::{set_gtsm, set_md5};
use super::status::{BgpStatus, CandidateStatus, PeerStatus, RouteEntry, RoutesReport};
use crate::links::address_of;

/// How long a colliding connection has to send its OPEN.
const FIRST_MESSAGE: Duration = Duration::from_secs(10);
/// How often status recounts the prefixes advertised to each peer.
const ADVERTISED_RECOUNT: Duration = Duration::from_secs(1);
/// How long the driver waits for NOTIFICATIONs to leave at shutdown.
const FLUSH_ON_STOP: Duration = Duration::from_millis(500);

enum Input {
    Accepted(TcpStream, SocketAddr),
    Connected {
        peer: PeerId,
        result: io::Result<TcpStream>,
    },
    /// Whole messages back to back, as read (framed by `read_loop`).
    Messages {
        peer: PeerId,
        conn: u64,
        batch: Vec<u8>,
    },
    BadHeader {
        peer: PeerId,
        conn: u64,
        notification: Notification,
    },
    Closed {
        peer: PeerId,
        conn: u64,
    },
    /// A second connection from the peer, and the OPEN it sent: the
    /// collision to resolve (RFC 4271 6.8).
    PendingOpen {
        peer: PeerId,
        stream: TcpStream,
        open: Vec<u8>,
    },
    Timer {
        peer: PeerId,
        timer: Timer,
        generation: u64,
    },
    Status(oneshot::Sender<BgpStatus>),
    Routes(Option<IpNet>, oneshot::Sender<RoutesReport>),
    /// Restart a peer's session by name; answers whether the peer exists.
    Reset(String, oneshot::Sender<bool>),
    Stop(oneshot::Sender<()>),
}

/// The running speaker.
#[derive(Debug)]
pub struct BgpService {
    control: mpsc::Sender<Input>,
    listeners: Vec<JoinHandle<()>>,
}

impl BgpService {
    /// Binds the listeners (a failure stops here, before anything runs),
    /// clears stale kernel routes of ours and starts every session.
    pub async fn start(config: BgpConfig) -> anyhow::Result<BgpService> {
        let kernel = if config.kernel {
            Some(KernelRoutes::open(config.kernel_table)?)
        } else {
            None
        };
        let (tx, rx) = mpsc::channel(1024);
        // Operator requests skip the queue of protocol input: status stays
        // quick while a full table streams in.
        let (control, control_rx) = mpsc::channel(16);
        let mut listeners = Vec::new();
        for addr in &config.listen {
            let listener = listen(*addr, &config.peers)
                .map_err(|e| anyhow::anyhow!("cannot listen for BGP on {addr}: {e}"))?;
            let tx = tx.clone();
            listeners.push(tokio::spawn(accept_loop(listener, tx)));
        }
        if let Some(kernel) = &kernel {
            match kernel.flush().await {
                Ok(0) => {}
                Ok(n) => info!(
                    removed = n,
                    table = config.kernel_table,
                    "stale BGP routes removed"
                ),
                Err(e) => warn!(error = %e, "cannot remove stale BGP routes"),
            }
        }
        let kernel = kernel.map(KernelWriter::start);
        let speaker = Speaker::new(
            SpeakerConfig {
                asn: config.asn,
                router_id: config.router_id,
                hold_time: config.hold_time,
                connect_retry: config.connect_retry,
                networks: config.networks.clone(),
            },
            config
                .peers
                .iter()
                .map(|p| PeerSettings {
                    name: p.name.clone(),
                    address: p.address,
                    remote_asn: p.remote_asn,
                    passive: p.passive,
                    max_prefixes: p.max_prefixes,
                    import: p.import.clone(),
                    export: p.export.clone(),
                })
                .collect(),
        );
        let mut driver = Driver {
            peers: config
                .peers
                .iter()
                .map(|_| PeerRuntime::default())
                .collect(),
            config,
            speaker,
            tx: tx.clone(),
            kernel,
            next_conn: 0,
            advertised: (Vec::new(), None),
        };
        let outputs = driver.speaker.start();
        driver.carry_out(outputs).await;
        tokio::spawn(driver.run(rx, control_rx));
        Ok(BgpService { control, listeners })
    }

    pub async fn status(&self) -> Option<BgpStatus> {
        let (reply, answer) = oneshot::channel();
        self.control.send(Input::Status(reply)).await.ok()?;
        answer.await.ok()
    }

    pub async fn routes(&self, prefix: Option<IpNet>) -> Option<RoutesReport> {
        let (reply, answer) = oneshot::channel();
        self.control.send(Input::Routes(prefix, reply)).await.ok()?;
        answer.await.ok()
    }

    /// Restarts the named peer's session; `false` when there is no such peer.
    pub async fn reset(&self, peer: &str) -> Option<bool> {
        let (reply, answer) = oneshot::channel();
        self.control
            .send(Input::Reset(peer.to_owned(), reply))
            .await
            .ok()?;
        answer.await.ok()
    }

    /// Ends every session with a shutdown communication and removes the
    /// kernel routes.
    pub async fn stop(self) {
        for listener in &self.listeners {
            listener.abort();
        }
        let (reply, answer) = oneshot::channel();
        if self.control.send(Input::Stop(reply)).await.is_ok() {
            let _ = answer.await;
        }
    }
}

/// A listening socket with every peer's MD5 key on it.
fn listen(addr: SocketAddr, peers: &[PeerConfig]) -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    for peer in peers {
        if let Some(password) = &peer.md5_password
            && peer.address.is_ipv4() == addr.is_ipv4()
        {
            set_md5(&socket, peer.address, password.0.as_bytes())?;
        }
    }
    socket.bind(&addr.into())?;
    socket.listen(16)?;
    socket.set_nonblocking(true)?;
    TcpListener::from_std(socket.into())
}

async fn accept_loop(listener: TcpListener, tx: mpsc::Sender<Input>) {
    loop {
        match listener.accept().await {
            Ok((stream, remote)) => {
                if tx.send(Input::Accepted(stream, remote)).await.is_err() {
                    return;
                }
            }
            Err(e) => {
                warn!(error = %e, "BGP accept failed");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}

#[derive(Debug, Default)]
struct PeerRuntime {
    conn: Option<Conn>,
    connecting: Option<JoinHandle<()>>,
    timers: HashMap<Timer, TimerSlot>,
    generation: u64,
    up_since: Option<Instant>,
}

/// A running timer. Restarting it to a later deadline (the hold timer, on
/// every message) only moves `deadline`; the task sleeps on until then.
#[derive(Debug)]
struct TimerSlot {
    generation: u64,
    deadline: std::sync::Arc<std::sync::Mutex<tokio::time::Instant>>,
    task: JoinHandle<()>,
}

#[derive(Debug)]
struct Conn {
    id: u64,
    /// We dialled it (rather than accepted it).
    outgoing: bool,
    writer: mpsc::UnboundedSender<Vec<u8>>,
    writer_task: JoinHandle<()>,
    reader: JoinHandle<()>,
}

struct Driver {
    config: BgpConfig,
    speaker: Speaker,
    peers: Vec<PeerRuntime>,
    tx: mpsc::Sender<Input>,
    /// `None` when `[bgp] kernel = false`.
    kernel: Option<KernelWriter>,
    next_conn: u64,
    /// Prefixes advertised per peer, and when and at which speaker
    /// generation they were counted: the count walks the whole table, so
    /// status reuses it while nothing changed, and for a second at least.
    advertised: (Vec<usize>, Option<(Instant, u64)>),
}

impl Driver {
    async fn run(mut self, mut rx: mpsc::Receiver<Input>, mut control: mpsc::Receiver<Input>) {
        loop {
            let input = tokio::select! {
                biased;
                Some(input) = control.recv() => input,
                Some(input) = rx.recv() => input,
                else => return,
            };
            match input {
                Input::Accepted(stream, remote) => self.accepted(stream, remote).await,
                Input::Connected { peer, result } => {
                    if let Some(runtime) = self.peers.get_mut(peer) {
                        runtime.connecting = None;
                    }
                    let busy = self.peers.get(peer).is_some_and(|r| r.conn.is_some());
                    match result {
                        // The peer's own connection won the race: keep it.
                        Ok(stream) if busy => {
                            let _ = reject(stream).await;
                        }
                        Ok(stream) => self.adopt(peer, stream, true).await,
                        Err(e) => {
                            debug!(peer = self.name(peer), error = %e, "BGP connect failed");
                            let outputs = self.speaker.event(peer, Event::ConnectionLost);
                            self.carry_out(outputs).await;
                        }
                    }
                }
                Input::Messages { peer, conn, batch } => {
                    let mut at = 0;
                    while let Ok(Some(len)) = wire::frame(&batch[at..]) {
                        // A message may end the connection: the rest of the
                        // batch belongs to a connection that is gone.
                        if !self.current(peer, conn) {
                            break;
                        }
                        let message = &batch[at..at + len];
                        at += len;
                        let outputs = self.speaker.event(peer, Event::Message(message));
                        self.carry_out(outputs).await;
                    }
                }
                Input::BadHeader {
                    peer,
                    conn,
                    notification,
                } if self.current(peer, conn) => {
                    let outputs = self.speaker.event(peer, Event::BadHeader(notification));
                    self.carry_out(outputs).await;
                }
                Input::Closed { peer, conn } if self.current(peer, conn) => {
                    self.drop_conn(peer);
                    let outputs = self.speaker.event(peer, Event::ConnectionLost);
                    self.carry_out(outputs).await;
                }
                Input::BadHeader { .. } | Input::Closed { .. } => {}
                Input::PendingOpen { peer, stream, open } => {
                    self.collision(peer, stream, open).await;
                }
                Input::Timer {
                    peer,
                    timer,
                    generation,
                } => {
                    let live = self
                        .peers
                        .get(peer)
                        .and_then(|r| r.timers.get(&timer))
                        .is_some_and(|slot| slot.generation == generation);
                    // The deadline may have moved while this was queued.
                    let moved = self
                        .peers
                        .get(peer)
                        .and_then(|r| r.timers.get(&timer))
                        .map(|slot| {
                            *slot
                                .deadline
                                .lock()
                                .unwrap_or_else(std::sync::PoisonError::into_inner)
                        })
                        .filter(|due| *due > tokio::time::Instant::now());
                    if let (true, Some(due)) = (live, moved) {
                        if let Some(runtime) = self.peers.get_mut(peer) {
                            runtime.timers.remove(&timer);
                        }
                        self.start_timer_at(peer, timer, due);
                    } else if live {
                        if let Some(runtime) = self.peers.get_mut(peer) {
                            runtime.timers.remove(&timer);
                        }
                        let outputs = self.speaker.event(peer, Event::Timer(timer));
                        self.carry_out(outputs).await;
                    }
                }
                Input::Status(reply) => {
                    let status = self.status();
                    let _ = reply.send(status);
                }
                Input::Routes(prefix, reply) => {
                    let _ = reply.send(self.routes(prefix));
                }
                Input::Reset(name, reply) => {
                    let peer = self.config.peers.iter().position(|p| p.name == name);
                    let _ = reply.send(peer.is_some());
                    if let Some(peer) = peer {
                        info!(peer = %name, "BGP session reset by the operator");
                        let outputs = self.speaker.reset(peer);
                        self.carry_out(outputs).await;
                    }
                }
                Input::Stop(reply) => {
                    let outputs = self.speaker.shutdown("routerd is stopping");
                    self.carry_out(outputs).await;
                    let writers: Vec<JoinHandle<()>> = self
                        .peers
                        .iter_mut()
                        .filter_map(|r| r.conn.take())
                        .map(|c| c.writer_task)
                        .collect();
                    for writer in writers {
                        let _ = tokio::time::timeout(FLUSH_ON_STOP, writer).await;
                    }
                    if let Some(kernel) = &self.kernel {
                        kernel.flush_all().await;
                    }
                    let _ = reply.send(());
                    return;
                }
            }
        }
    }

    fn name(&self, peer: PeerId) -> &str {
        self.config.peers.get(peer).map_or("?", |p| p.name.as_str())
    }

    fn current(&self, peer: PeerId, conn: u64) -> bool {
        self.peers
            .get(peer)
            .and_then(|r| r.conn.as_ref())
            .is_some_and(|c| c.id == conn)
    }

    async fn accepted(&mut self, stream: TcpStream, remote: SocketAddr) {
        let Some(peer) = self.speaker.peer_by_address(remote.ip()) else {
            debug!(%remote, "BGP connection from an address that is no peer: closed");
            return;
        };
        let state = self.speaker.state(peer);
        let busy = self.peers.get(peer).is_some_and(|r| r.conn.is_some());
        if let Some(p) = self.config.peers.get(peer)
            && p.gtsm
        {
            let socket = socket2::SockRef::from(&stream);
            if let Err(e) = set_gtsm(&socket, remote.is_ipv6()) {
                warn!(peer = self.name(peer), error = %e, "cannot set GTSM");
            }
        }
        if busy {
            if matches!(state, Some(State::OpenSent | State::OpenConfirm)) {
                // A collision (RFC 4271 6.8): which connection stays
                // depends on the identifier in this one's OPEN.
                let tx = self.tx.clone();
                tokio::spawn(async move {
                    if let Some((stream, open)) = first_message(stream).await {
                        let _ = tx.send(Input::PendingOpen { peer, stream, open }).await;
                    }
                });
            } else {
                debug!(
                    peer = self.name(peer),
                    ?state,
                    "second BGP connection refused"
                );
                let _ = reject(stream).await;
            }
            return;
        }
        if let Some(runtime) = self.peers.get_mut(peer)
            && let Some(connecting) = runtime.connecting.take()
        {
            connecting.abort();
        }
        self.adopt(peer, stream, false).await;
    }

    /// RFC 4271 6.8: of two connections with one peer, keep the one opened
    /// by the speaker with the higher BGP identifier, and close the other
    /// with Cease/7. The peer's identifier is in the new connection's
    /// OPEN. An older connection the peer itself opened is stale (it would
    /// not dial again otherwise) and gives way.
    async fn collision(&mut self, peer: PeerId, stream: TcpStream, open: Vec<u8>) {
        let Ok(wire::Message::Open(their_open)) = wire::decode(&open, true) else {
            let _ = reject(stream).await;
            return;
        };
        let existing_outgoing = self
            .peers
            .get(peer)
            .and_then(|r| r.conn.as_ref())
            .map(|c| c.outgoing);
        let state = self.speaker.state(peer);
        let keep_new = match (existing_outgoing, state) {
            // The old connection went away meanwhile.
            (None, _) => true,
            (_, Some(State::Established)) => false,
            (Some(true), _) => {
                !bgp::fsm::keep_outgoing(self.config.router_id, their_open.router_id)
            }
            (Some(false), _) => true,
        };
        if !keep_new {
            debug!(
                peer = self.name(peer),
                "collision: keeping the existing connection"
            );
            let _ = reject(stream).await;
            return;
        }
        debug!(
            peer = self.name(peer),
            "collision: the peer's new connection replaces ours"
        );
        if let Some(conn) = self.peers.get(peer).and_then(|r| r.conn.as_ref())
            && let Ok(bytes) = wire::encode_notification(&Notification::new(
                code::CEASE,
                subcode::CONNECTION_COLLISION,
            ))
        {
            let _ = conn.writer.send(bytes);
        }
        self.drop_conn(peer);
        let outputs = self.speaker.event(peer, Event::ConnectionLost);
        self.carry_out(outputs).await;
        if let Some(runtime) = self.peers.get_mut(peer)
            && let Some(connecting) = runtime.connecting.take()
        {
            connecting.abort();
        }
        self.adopt(peer, stream, false).await;
        let outputs = self.speaker.event(peer, Event::Message(&open));
        self.carry_out(outputs).await;
    }

    /// Makes `stream` the peer's connection and tells the session.
    async fn adopt(&mut self, peer: PeerId, stream: TcpStream, outgoing: bool) {
        let _ = stream.set_nodelay(true);
        let Ok(local) = stream.local_addr() else {
            return;
        };
        let other = other_family_address(local.ip()).await;
        self.next_conn += 1;
        let id = self.next_conn;
        let (read, mut write) = stream.into_split();
        let (writer, mut queue) = mpsc::unbounded_channel::<Vec<u8>>();
        let writer_task = tokio::spawn(async move {
            while let Some(bytes) = queue.recv().await {
                if write.write_all(&bytes).await.is_err() {
                    return;
                }
            }
            let _ = write.shutdown().await;
        });
        let reader = tokio::spawn(read_loop(read, peer, id, self.tx.clone()));
        self.drop_conn(peer);
        if let Some(runtime) = self.peers.get_mut(peer) {
            runtime.conn = Some(Conn {
                id,
                outgoing,
                writer,
                writer_task,
                reader,
            });
        }
        let outputs = self.speaker.connected(peer, local.ip(), other);
        self.carry_out(outputs).await;
        // A session stopped by hand or by max-prefix takes no connection:
        // close it rather than leave the peer waiting for an OPEN.
        if self.speaker.state(peer) == Some(State::Idle) {
            debug!(
                peer = self.name(peer),
                "connection to a stopped session closed"
            );
            self.drop_conn(peer);
        }
    }

    fn drop_conn(&mut self, peer: PeerId) {
        if let Some(conn) = self.peers.get_mut(peer).and_then(|r| r.conn.take()) {
            conn.reader.abort();
            // The writer drains what was queued (a NOTIFICATION) and closes.
            drop(conn.writer);
        }
    }

    async fn carry_out(&mut self, outputs: Vec<Output>) {
        for output in outputs {
            match output {
                Output::Install { prefix, next_hop } => {
                    if let Some(kernel) = &self.kernel {
                        kernel.set(prefix, Some(next_hop));
                    }
                }
                Output::Remove { prefix } => {
                    if let Some(kernel) = &self.kernel {
                        kernel.set(prefix, None);
                    }
                }
                Output::Peer(peer, action) => self.peer_action(peer, action),
            }
        }
    }

    fn peer_action(&mut self, peer: PeerId, action: Action) {
        // Named where logged only: this runs for every message received.
        match action {
            Action::Connect => self.connect(peer),
            Action::Send(bytes) => {
                if let Some(conn) = self.peers.get(peer).and_then(|r| r.conn.as_ref()) {
                    let _ = conn.writer.send(bytes);
                }
            }
            Action::Close => self.drop_conn(peer),
            Action::StartTimer(timer, after) => self.start_timer(peer, timer, after),
            Action::StopTimer(timer) => {
                if let Some(slot) = self
                    .peers
                    .get_mut(peer)
                    .and_then(|r| r.timers.remove(&timer))
                {
                    slot.task.abort();
                }
            }
            Action::Up(negotiated) => {
                info!(peer = %self.name(peer), remote_asn = negotiated.peer_asn, hold_time = negotiated.hold_time, families = ?negotiated.families, "BGP session established");
                if let Some(runtime) = self.peers.get_mut(peer) {
                    runtime.up_since = Some(Instant::now());
                }
            }
            Action::Down(reason) => {
                let was_up = self
                    .peers
                    .get_mut(peer)
                    .and_then(|r| r.up_since.take())
                    .is_some();
                if was_up {
                    warn!(peer = %self.name(peer), %reason, "BGP session down");
                } else {
                    debug!(peer = %self.name(peer), %reason, "BGP session attempt failed");
                }
            }
            Action::TreatedAsWithdraw(reason) => {
                warn!(peer = %self.name(peer), %reason, "malformed UPDATE: its routes were withdrawn (RFC 7606)");
            }
            Action::RefreshRequested(family) => {
                debug!(peer = %self.name(peer), ?family, "route refresh answered");
            }
            Action::Routes(_) => {}
        }
    }

    fn start_timer(&mut self, peer: PeerId, timer: Timer, after: Duration) {
        // RFC 4271 10: jitter connection attempts so two speakers that
        // collided do not collide again.
        let after = if timer == Timer::ConnectRetry {
            after.mul_f64(0.75 + rand::random::<f64>() * 0.25)
        } else {
            after
        };
        self.start_timer_at(peer, timer, tokio::time::Instant::now() + after);
    }

    fn start_timer_at(&mut self, peer: PeerId, timer: Timer, deadline: tokio::time::Instant) {
        let Some(runtime) = self.peers.get_mut(peer) else {
            return;
        };
        if let Some(slot) = runtime.timers.get(&timer)
            && !slot.task.is_finished()
        {
            let mut current = slot
                .deadline
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if deadline >= *current {
                *current = deadline;
                return;
            }
        }
        runtime.generation += 1;
        let generation = runtime.generation;
        let shared = std::sync::Arc::new(std::sync::Mutex::new(deadline));
        let watched = std::sync::Arc::clone(&shared);
        let tx = self.tx.clone();
        let task = tokio::spawn(async move {
            loop {
                let due = *watched
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                if tokio::time::Instant::now() >= due {
                    break;
                }
                tokio::time::sleep_until(due).await;
            }
            let _ = tx
                .send(Input::Timer {
                    peer,
                    timer,
                    generation,
                })
                .await;
        });
        let slot = TimerSlot {
            generation,
            deadline: shared,
            task,
        };
        if let Some(old) = runtime.timers.insert(timer, slot) {
            old.task.abort();
        }
    }

    fn connect(&mut self, peer: PeerId) {
        let Some(settings) = self.config.peers.get(peer).cloned() else {
            return;
        };
        let timeout = self.config.connect_retry;
        let tx = self.tx.clone();
        let task = tokio::spawn(async move {
            let result = tokio::time::timeout(timeout, dial(&settings))
                .await
                .unwrap_or_else(|_| {
                    Err(io::Error::new(io::ErrorKind::TimedOut, "connect timed out"))
                });
            let _ = tx.send(Input::Connected { peer, result }).await;
        });
        if let Some(runtime) = self.peers.get_mut(peer)
            && let Some(old) = runtime.connecting.replace(task)
        {
            old.abort();
        }
    }

    fn status(&mut self) -> BgpStatus {
        let generation = self.speaker.generation();
        let recount = self.advertised.1.is_none_or(|(at, counted)| {
            counted != generation && at.elapsed() >= ADVERTISED_RECOUNT
        });
        let peers = self.speaker.peers(recount);
        if recount {
            self.advertised = (
                peers
                    .iter()
                    .map(|p| p.prefixes_advertised.unwrap_or(0))
                    .collect(),
                Some((Instant::now(), generation)),
            );
        }
        let counted = self.advertised.0.clone();
        let peers = peers
            .into_iter()
            .enumerate()
            .map(|(id, p)| PeerStatus {
                name: p.name,
                address: p.address,
                remote_asn: p.remote_asn,
                state: p.state.name(),
                uptime_secs: self
                    .peers
                    .get(id)
                    .and_then(|r| r.up_since)
                    .map(|t| t.elapsed().as_secs()),
                last_error: p.last_error,
                prefixes_received: p.prefixes_received,
                prefixes_accepted: p.prefixes_accepted,
                prefixes_advertised: p
                    .prefixes_advertised
                    .or_else(|| counted.get(id).copied())
                    .unwrap_or(0),
            })
            .collect();
        BgpStatus {
            asn: self.config.asn,
            router_id: self.config.router_id,
            peers,
        }
    }

    fn routes(&self, prefix: Option<IpNet>) -> RoutesReport {
        let routes = self
            .speaker
            .routes_table(prefix)
            .into_iter()
            .map(|(prefix, candidates)| RouteEntry {
                prefix,
                candidates: candidates
                    .into_iter()
                    .map(|c| {
                        let local = matches!(c.route.source, Source::Local);
                        let attributes = &c.route.attributes;
                        CandidateStatus {
                            peer: c.peer,
                            next_hop: (!local).then_some(attributes.next_hop),
                            as_path: attributes.as_path.to_string(),
                            origin: match attributes.origin {
                                Origin::Igp => "IGP",
                                Origin::Egp => "EGP",
                                Origin::Incomplete => "incomplete",
                            },
                            local_pref: attributes.local_pref,
                            med: attributes.med,
                            standing: c.standing.to_string(),
                        }
                    })
                    .collect(),
            })
            .collect();
        RoutesReport { routes }
    }
}

/// The first message on a new connection (the peer's OPEN), read with a
/// deadline; `None` when it does not come or does not frame.
async fn first_message(mut stream: TcpStream) -> Option<(TcpStream, Vec<u8>)> {
    let read = async {
        let mut buffer = Vec::with_capacity(wire::MAX_LEN);
        let mut chunk = [0u8; 4096];
        loop {
            if let Some(len) = wire::frame(&buffer).ok()? {
                // Nothing follows an OPEN until the other side's OPEN.
                return (buffer.len() == len).then(|| buffer[..len].to_vec());
            }
            let n = stream.read(&mut chunk).await.ok()?;
            if n == 0 {
                return None;
            }
            buffer.extend_from_slice(&chunk[..n]);
        }
    };
    let open = tokio::time::timeout(FIRST_MESSAGE, read).await.ok()??;
    Some((stream, open))
}

/// Refuses a second connection with the NOTIFICATION RFC 4271 6.8 names.
async fn reject(mut stream: TcpStream) -> io::Result<()> {
    let notification = Notification::new(code::CEASE, subcode::CONNECTION_COLLISION);
    if let Ok(bytes) = wire::encode_notification(&notification) {
        stream.write_all(&bytes).await?;
    }
    stream.shutdown().await
}

/// Opens a connection to the peer with its MD5 key and GTSM applied
/// before the first segment.
async fn dial(peer: &PeerConfig) -> io::Result<TcpStream> {
    let remote = SocketAddr::new(peer.address, peer.port);
    let socket = Socket::new(
        Domain::for_address(remote),
        Type::STREAM,
        Some(Protocol::TCP),
    )?;
    if let Some(password) = &peer.md5_password {
        set_md5(&socket, peer.address, password.0.as_bytes())?;
    }
    if peer.gtsm {
        set_gtsm(&socket, remote.is_ipv6())?;
    }
    if let Some(local) = peer.local_address {
        socket.bind(&SocketAddr::new(local, 0).into())?;
    }
    socket.set_nonblocking(true)?;
    let std_stream: std::net::TcpStream = socket.into();
    TcpSocket::from_std_stream(std_stream).connect(remote).await
}

/// What one connection's reader holds: room for many full-size messages.
const READ_BUFFER: usize = 128 * 1024;

/// Frames the byte stream into messages for the driver, all the messages
/// of one read in one batch.
async fn read_loop(
    mut read: tokio::net::tcp::OwnedReadHalf,
    peer: PeerId,
    conn: u64,
    tx: mpsc::Sender<Input>,
) {
    let mut buffer: Vec<u8> = Vec::with_capacity(READ_BUFFER);
    loop {
        let mut start = 0;
        let mut bad = None;
        loop {
            match wire::frame(&buffer[start..]) {
                Ok(Some(len)) => start += len,
                Ok(None) => break,
                Err(notification) => {
                    bad = Some(notification);
                    break;
                }
            }
        }
        if start > 0 {
            // The framed messages leave in the buffer they were read into
            // (one allocation per read, not one per message); the unframed
            // tail starts the next one.
            let mut rest = Vec::with_capacity(READ_BUFFER);
            rest.extend_from_slice(&buffer[start..]);
            let mut batch = std::mem::replace(&mut buffer, rest);
            batch.truncate(start);
            if tx
                .send(Input::Messages { peer, conn, batch })
                .await
                .is_err()
            {
                return;
            }
        }
        if let Some(notification) = bad {
            let _ = tx
                .send(Input::BadHeader {
                    peer,
                    conn,
                    notification,
                })
                .await;
            return;
        }
        // Room for at least one more full-size message.
        buffer.reserve(wire::MAX_LEN);
        match read.read_buf(&mut buffer).await {
            Ok(0) | Err(_) => {
                let _ = tx.send(Input::Closed { peer, conn }).await;
                return;
            }
            Ok(_) => {}
        }
    }
}

/// An address of the other family on the interface that has `local`: the
/// next hop this router gives for that family's routes on the session.
async fn other_family_address(local: IpAddr) -> Option<IpAddr> {
    let (connection, handle, _) = rtnetlink::new_connection().ok()?;
    let _connection = crate::links::AbortOnDrop(tokio::spawn(connection));
    let addresses: Vec<(u32, IpNet)> = handle
        .address()
        .get()
        .execute()
        .try_filter_map(|m| {
            let index = m.header.index;
            std::future::ready(Ok(address_of(&m).map(|net| (index, net))))
        })
        .try_collect()
        .await
        .ok()?;
    let index = addresses.iter().find(|(_, net)| net.addr() == local)?.0;
    addresses
        .iter()
        .filter(|(i, net)| *i == index && net.addr().is_ipv4() != local.is_ipv4())
        .map(|(_, net)| net.addr())
        .find(|ip| match ip {
            IpAddr::V6(v6) => v6.segments()[0] & 0xffc0 != 0xfe80,
            IpAddr::V4(_) => true,
        })
}
