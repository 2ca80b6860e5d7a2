//! The serving side: sockets, workers and the service that owns them.

pub mod logging;
pub mod sys;
pub mod tcp;
pub mod udp;

mod service;

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::Arc;
use std::time::Instant;

use arc_swap::ArcSwap;

use crate::fastpath::answer::CachedAnswer;
use crate::filter::{Client, Filter};
use logging::LogSink;

pub use service::{DnsService, DnsStatus, Prepared};

/// Why a job was sent to the dispatcher.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobKind {
    /// A client waits for the answer.
    Client,
    /// Refresh a popular entry before it expires; nobody waits.
    Prefetch,
}

/// Where the answer to a job goes.
#[derive(Debug)]
pub enum Reply {
    Udp {
        socket: Arc<UdpSocket>,
        peer: SocketAddr,
    },
    Tcp(tokio::sync::oneshot::Sender<Vec<u8>>),
    None,
}

impl Reply {
    pub fn send(self, response: Vec<u8>) {
        match self {
            // UDP is best effort: a failed send is a lost packet, and the
            // client retries.
            Reply::Udp { socket, peer } => {
                let _ = socket.send_to(&response, peer);
            }
            Reply::Tcp(sender) => {
                let _ = sender.send(response);
            }
            Reply::None => {}
        }
    }
}

/// A miss handed from a worker or a TCP connection to the dispatcher.
#[derive(Debug)]
pub struct Job {
    /// Cache key of the question (see [`crate::fastpath::wire::cache_key`]).
    pub key: Box<[u8]>,
    /// The client's query as received.
    pub packet: Box<[u8]>,
    pub kind: JobKind,
    /// An expired entry the worker holds, for RFC 8767 serve-stale.
    pub stale: Option<Arc<CachedAnswer>>,
    pub reply: Reply,
    /// The largest UDP payload we send; 0 for TCP.
    pub max_udp: u16,
    pub received: Instant,
    pub client: IpAddr,
    /// The client's zone and filtering group.
    pub who: Client,
    /// Where the question is resolved (the last byte of its key).
    pub view: u8,
}

/// Writes the blocked answer a client's group gives and counts the block.
#[allow(clippy::too_many_arguments)] // reason: the hot path passes its scratch state explicitly
pub(crate) fn write_blocked(
    filter: &Filter,
    who: Client,
    found: &crate::filter::Match,
    query: &crate::fastpath::wire::QueryView,
    packet: &[u8],
    payload: u16,
    stats: &crate::stats::WorkerStats,
    out: &mut Vec<u8>,
) {
    let group = filter.group(who.group);
    crate::fastpath::blocked::blocked_response(
        query,
        packet,
        &group.block_mode,
        group.block_ttl,
        payload,
        out,
    );
    stats.count_block(found.list, who.group);
}

/// What a service shares with the daemon around it and with the service
/// a reload puts in its place.
#[derive(Debug, Clone)]
pub struct Attachments {
    /// The compiled filter; the daemon swaps in a new one when lists change.
    pub filter: Arc<ArcSwap<Filter>>,
    /// The query log, when enabled.
    pub log: Option<LogSink>,
}

impl Default for Attachments {
    fn default() -> Self {
        Self {
            filter: Arc::new(ArcSwap::from_pointee(Filter::default())),
            log: None,
        }
    }
}

/// What the dispatcher tells a worker between batches.
#[derive(Debug)]
pub enum WorkerMessage {
    /// A new cache entry (settings never change under a running worker:
    /// a reload starts new workers).
    Insert(Arc<[u8]>, Arc<CachedAnswer>),
}

/// IP_FREEBIND (or its IPv6 twin) on a listening socket whose address
/// floats: the bind succeeds before the address is on an interface, and
/// traffic arrives as soon as it is.
fn set_freebind(socket: &socket2::Socket, addr: SocketAddr, floating: bool) -> std::io::Result<()> {
    if !floating {
        return Ok(());
    }
    if addr.is_ipv4() {
        socket.set_freebind_v4(true)
    } else {
        socket.set_freebind_v6(true)
    }
}
