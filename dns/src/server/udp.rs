//! UDP workers: one OS thread per core, each with its own SO_REUSEPORT
//! socket per listen address and its own cache replica.
//!
//! A worker answers cache hits, refusals and malformed packets itself, in
//! batches, without locks or allocation; it hands misses to the dispatcher
//! and receives the dispatcher's new cache entries through its inbox.

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, TryRecvError};
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, Socket, Type};
use tracing::{debug, warn};

use arc_swap::ArcSwap;

use super::logging::{Captured, LogBatch, LogSink};
use super::sys::{BATCH, RecvBatch, SendBatch};
use super::{Job, JobKind, Reply, WorkerMessage, write_blocked};
use crate::error::DnsError;
use crate::fastpath::acl::AllowList;
use crate::fastpath::cache::{Lookup, WorkerCache};
use crate::fastpath::ratelimit::RateLimiter;
use crate::fastpath::wire::{self, KeyBuf, QueryView};
use crate::fastpath::{answer, synth};
use crate::filter::{Client, Filter, Match, Screened};
use crate::querylog::Outcome as Logged;
use crate::stats::{Outcome, WorkerStats, bump};

/// How long a worker blocks in `recvmmsg` before it looks at its inbox and
/// the shutdown flag. Cache entries reach idle workers this late at most.
const POLL_INTERVAL: Duration = Duration::from_millis(50);
/// Query type ANY, answered minimally (RFC 8482).
const QTYPE_ANY: u16 = 255;
/// Cache entries examined per idle wake-up.
const IDLE_SWEEP: usize = 2048;
/// Clients tracked by one worker's rate limiter.
const RATE_LIMIT_CLIENTS: usize = 65_536;

/// Opens one UDP socket bound with SO_REUSEPORT, so that every worker can
/// bind the same address and the kernel spreads clients across them.
/// `floating`: the address may not be on an interface yet (IP_FREEBIND).
pub fn bind(addr: SocketAddr, floating: bool) -> Result<UdpSocket, DnsError> {
    let bind_error = |source| DnsError::Bind {
        transport: "UDP",
        addr,
        source,
    };
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))
        .map_err(bind_error)?;
    if addr.is_ipv6() {
        socket.set_only_v6(true).map_err(bind_error)?;
    }
    socket.set_reuse_port(true).map_err(bind_error)?;
    socket.set_reuse_address(true).map_err(bind_error)?;
    super::set_freebind(&socket, addr, floating).map_err(bind_error)?;
    // Room for bursts while a worker is busy; the kernel clamps to rmem_max.
    let _ = socket.set_recv_buffer_size(4 << 20);
    let _ = socket.set_send_buffer_size(4 << 20);
    socket
        .set_read_timeout(Some(POLL_INTERVAL))
        .map_err(bind_error)?;
    socket.bind(&addr.into()).map_err(bind_error)?;
    Ok(socket.into())
}

/// Per-worker settings that a reload may change.
#[derive(Debug, Clone)]
pub struct WorkerSettings {
    pub allow: AllowList,
    pub rate_limit_qps: u32,
    pub rate_limit_burst: u32,
    pub max_udp_payload: u16,
    pub udp_segmentation: bool,
    pub prefetch: bool,
    pub serve_stale: bool,
}

/// Everything one worker thread owns.
#[allow(missing_debug_implementations)] // reason: holds channels and a cache; nothing useful to print
pub struct Worker {
    pub socket: Arc<UdpSocket>,
    pub index: usize,
    pub settings: WorkerSettings,
    pub cache: WorkerCache,
    pub inbox: Receiver<WorkerMessage>,
    pub jobs: tokio::sync::mpsc::Sender<Job>,
    pub stats: Arc<crate::stats::Stats>,
    pub shutdown: Arc<AtomicBool>,
    pub filter: Arc<ArcSwap<Filter>>,
    pub log: Option<LogSink>,
}

/// What one query needs besides the packet: the worker's scratch state and
/// the filter of this batch.
struct Scratch<'a> {
    now: Instant,
    key: &'a mut KeyBuf,
    limiter: &'a mut RateLimiter,
    send: &'a mut SendBatch,
    stats: &'a WorkerStats,
    filter: &'a Arc<Filter>,
    log: Option<&'a mut LogBatch>,
}

impl Worker {
    /// The worker loop; returns when the shutdown flag is set or the
    /// dispatcher is gone.
    pub fn run(mut self) {
        let mut recv = RecvBatch::new();
        let mut send = SendBatch::new(self.settings.udp_segmentation);
        let mut key = KeyBuf::default();
        let mut limiter = RateLimiter::new(
            self.settings.rate_limit_qps,
            self.settings.rate_limit_burst,
            RATE_LIMIT_CLIENTS,
        );
        let stats = Arc::clone(&self.stats);
        let Some(my_stats) = stats.workers.get(self.index) else {
            return;
        };
        while !self.shutdown.load(Ordering::Relaxed) {
            match recv.recv(&self.socket) {
                Ok(_) => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock
                            | std::io::ErrorKind::TimedOut
                            | std::io::ErrorKind::Interrupted
                    ) =>
                {
                    // Idle: reclaim some expired entries without a full scan.
                    self.cache.sweep(Instant::now(), IDLE_SWEEP);
                    continue;
                }
                Err(e) => {
                    warn!(error = %e, worker = self.index, "UDP receive failed");
                    std::thread::sleep(POLL_INTERVAL);
                    continue;
                }
            }
            // Entries that arrived while we slept must be visible to this
            // batch: a client's second query often follows its first
            // answer by less than a poll interval.
            if !self.drain_inbox() {
                return;
            }
            let now = Instant::now();
            // One filter for the whole batch: a refresh takes effect
            // between batches, never in the middle of one.
            let filter = self.filter.load_full();
            let mut log = self
                .log
                .as_ref()
                .map(|_| LogBatch::new(Arc::clone(&filter)));
            for i in 0..recv.len() {
                let Some((packet, peer)) = recv.packet(i) else {
                    continue;
                };
                bump(&my_stats.udp_queries, 1);
                let mut scratch = Scratch {
                    now,
                    key: &mut key,
                    limiter: &mut limiter,
                    send: &mut send,
                    stats: my_stats,
                    filter: &filter,
                    log: log.as_mut(),
                };
                self.handle(packet, peer, &mut scratch);
            }
            let answered = send.len() as u64;
            if let Err(e) = send.flush(&self.socket) {
                debug!(error = %e, "some UDP answers could not be sent");
            }
            bump(&my_stats.udp_segmented, send.segmented() as u64);
            if yields_after(recv.len()) {
                std::thread::yield_now();
            }
            if answered > 0 {
                my_stats.observe_latency(now.elapsed(), answered);
            }
            if let (Some(sink), Some(mut log)) = (&self.log, log) {
                log.set_latency(0, now.elapsed());
                sink.send(log);
            }
        }
    }

    /// Applies the cache entries the dispatcher has sent. Returns false
    /// when the dispatcher has gone away.
    fn drain_inbox(&mut self) -> bool {
        loop {
            match self.inbox.try_recv() {
                Ok(WorkerMessage::Insert(key, answer)) => {
                    self.cache.insert(Box::from(&key[..]), answer);
                }
                Err(TryRecvError::Empty) => return true,
                Err(TryRecvError::Disconnected) => return false,
            }
        }
    }

    fn handle(&mut self, packet: &[u8], peer: SocketAddr, scratch: &mut Scratch<'_>) {
        let ip = canonical(peer.ip());
        let stats = scratch.stats;
        if !scratch.limiter.check(ip, scratch.now) {
            stats.count(Outcome::RateLimited);
            return;
        }
        let query = match wire::parse_query(packet) {
            Ok(query) => query,
            Err(error) => {
                stats.count(Outcome::FormErr);
                if let (Some(rcode), Some(out)) = (error.reply_rcode(), scratch.send.next_buf())
                    && synth::header_only(packet, rcode, out)
                {
                    scratch.send.commit(peer);
                }
                return;
            }
        };
        let Some(out) = scratch.send.next_buf() else {
            return;
        };
        let payload = self.settings.max_udp_payload;
        let allowed = self.settings.allow.allows(ip);
        let filter = scratch.filter;
        let who = filter.classify(ip);
        if answer_without_lookup(&query, packet, allowed, payload, stats, out) {
            let rcode = out_rcode(out);
            scratch.send.commit(peer);
            if !allowed {
                log(
                    &mut scratch.log,
                    ip,
                    who,
                    &query,
                    Logged::Refused,
                    rcode,
                    None,
                );
            }
            return;
        }
        let view = match filter.screen(who, query.name_wire()) {
            Screened::Blocked(found) => {
                let blocked = (found, query.name_wire());
                return block(payload, &query, packet, peer, ip, who, blocked, scratch);
            }
            Screened::View(view) => view,
        };
        let cache_key = wire::cache_key_in(&query, view, scratch.key);
        let job = |stale, reply| JobSpec {
            stale,
            reply,
            client: ip,
            who,
            view,
        };
        match self.cache.get(cache_key, scratch.now) {
            Lookup::Fresh(cached, prefetch_due) => {
                // CNAME inspection: the chain of a cached answer is checked
                // against this client's group on every hit.
                if let Some((name, found)) = filter.check_chain(who.group, cached.cname_chain()) {
                    return block(
                        payload,
                        &query,
                        packet,
                        peer,
                        ip,
                        who,
                        (found, name),
                        scratch,
                    );
                }
                let served =
                    cached.write_response(&query, packet, scratch.now, payload, payload, out);
                if served.is_truncated() {
                    bump(&stats.truncated, 1);
                }
                stats.count(Outcome::CacheHit);
                scratch.send.commit(peer);
                let rcode = cached.rcode();
                log(
                    &mut scratch.log,
                    ip,
                    who,
                    &query,
                    Logged::Cached,
                    rcode,
                    None,
                );
                if prefetch_due && self.settings.prefetch {
                    bump(&stats.prefetches, 1);
                    self.submit(
                        cache_key,
                        packet,
                        job(None, Reply::None),
                        JobKind::Prefetch,
                        stats,
                    );
                }
            }
            Lookup::Stale(stale) => {
                let stale = self.settings.serve_stale.then(|| Arc::clone(stale));
                let reply = Reply::Udp {
                    socket: Arc::clone(&self.socket),
                    peer,
                };
                self.submit(cache_key, packet, job(stale, reply), JobKind::Client, stats);
            }
            Lookup::Miss => {
                let reply = Reply::Udp {
                    socket: Arc::clone(&self.socket),
                    peer,
                };
                self.submit(cache_key, packet, job(None, reply), JobKind::Client, stats);
            }
        }
    }

    fn submit(&self, key: &[u8], packet: &[u8], spec: JobSpec, kind: JobKind, stats: &WorkerStats) {
        let job = Job {
            key: Box::from(key),
            packet: Box::from(packet),
            kind,
            stale: spec.stale,
            reply: spec.reply,
            max_udp: self.settings.max_udp_payload,
            received: Instant::now(),
            client: spec.client,
            who: spec.who,
            view: spec.view,
        };
        // A full queue means the slow path is saturated: shed the query
        // rather than block the cache-hit path; the client will retry.
        if self.jobs.try_send(job).is_err() {
            stats.count(Outcome::Dropped);
        }
    }
}

/// A job's fields that the worker decides.
struct JobSpec {
    stale: Option<Arc<answer::CachedAnswer>>,
    reply: Reply,
    client: std::net::IpAddr,
    who: Client,
    view: u8,
}

/// Answers a blocked query: the group's block answer, counted and logged.
#[allow(clippy::too_many_arguments)] // reason: the hot path passes its scratch state explicitly
fn block(
    payload: u16,
    query: &QueryView,
    packet: &[u8],
    peer: SocketAddr,
    ip: std::net::IpAddr,
    who: Client,
    (found, name): (Match, &[u8]),
    scratch: &mut Scratch<'_>,
) {
    let Some(out) = scratch.send.next_buf() else {
        return;
    };
    write_blocked(
        scratch.filter,
        who,
        &found,
        query,
        packet,
        payload,
        scratch.stats,
        out,
    );
    let rcode = out_rcode(out);
    scratch.send.commit(peer);
    log(
        &mut scratch.log,
        ip,
        who,
        query,
        Logged::Blocked,
        rcode,
        Some((found, name)),
    );
}

/// The RCODE of a response just written.
fn out_rcode(out: &[u8]) -> u8 {
    out.get(3).map_or(0, |b| b & 0x0F)
}

/// Records a query the worker settled itself, when the log is on.
fn log(
    log: &mut Option<&mut LogBatch>,
    client: std::net::IpAddr,
    who: Client,
    query: &QueryView,
    outcome: Logged,
    rcode: u8,
    matched: Option<(Match, &[u8])>,
) {
    if let Some(log) = log.as_deref_mut() {
        let captured = Captured {
            client,
            who,
            name_wire: query.name_wire(),
            qtype: query.qtype,
            outcome,
            rcode,
            matched,
        };
        log.push(captured, None, Duration::ZERO);
    }
}

/// What every query gets before any lookup, over UDP and TCP alike:
/// REFUSED outside the allow list, BADVERS for unknown EDNS versions,
/// NOTIMP for opcodes other than QUERY, REFUSED for classes other than
/// IN, and the minimal RFC 8482 answer to ANY. Writes the response into
/// `out` and returns true when the query is settled here.
pub fn answer_without_lookup(
    query: &QueryView,
    packet: &[u8],
    client_allowed: bool,
    payload: u16,
    stats: &WorkerStats,
    out: &mut Vec<u8>,
) -> bool {
    let rcode = if !client_allowed {
        stats.count(Outcome::Refused);
        Some(u16::from(wire::RCODE_REFUSED))
    } else if query.needs_badvers() {
        Some(wire::RCODE_BADVERS)
    } else if query.opcode != 0 {
        Some(u16::from(wire::RCODE_NOTIMP))
    } else if query.qclass != 1 {
        Some(u16::from(wire::RCODE_REFUSED))
    } else {
        None
    };
    match rcode {
        Some(rcode) => synth::error_response(query, packet, rcode, payload, out),
        None if query.qtype == QTYPE_ANY => synth::any_response(query, packet, payload, out),
        None => return false,
    }
    true
}

/// Whether a worker yields its core after answering a batch of `received`
/// queries, before it receives again.
///
/// The answers just sent have woken their readers. When a reader shares
/// this core (a client on the same machine, or our own dispatcher picking
/// up the batch's misses), letting it run now means its next queries are
/// already queued when the worker looks again, so the worker takes them
/// without going to sleep and being woken: under load that is one context
/// switch instead of a sleep, a timer and a wake-up. A full batch means
/// more is queued anyway, and a lone query means no load, so neither
/// yields; with nothing else runnable the yield returns at once.
fn yields_after(received: usize) -> bool {
    (2..BATCH).contains(&received)
}

/// IPv4-mapped IPv6 peers (from dual-stack sockets) are IPv4 clients.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yields_only_between_a_lone_query_and_a_full_batch() {
        // Idle traffic (one query at a time) and a full batch (more is
        // queued) go straight back to receiving.
        assert!(!yields_after(0));
        assert!(!yields_after(1));
        assert!(!yields_after(BATCH));
        assert!(yields_after(2));
        assert!(yields_after(BATCH - 1));
    }
}
