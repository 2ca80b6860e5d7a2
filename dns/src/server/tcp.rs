//! DNS over TCP (RFC 7766): length-prefixed messages, several per
//! connection, answered through the dispatcher. Used by clients after a
//! truncated UDP answer, and by those that prefer TCP.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, Socket, Type};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc, oneshot, watch};
use tracing::debug;

use super::udp::{answer_without_lookup, canonical};
use super::{Job, JobKind, Reply, write_blocked};
use crate::error::DnsError;
use crate::fastpath::acl::AllowList;
use crate::fastpath::synth;
use crate::fastpath::wire::{self, KeyBuf};
use crate::filter::{Filter, Screened};
use crate::stats::{Outcome, Stats, bump};

/// An idle connection is closed after this long (RFC 7766 section 6.2.3).
const IDLE_TIMEOUT: Duration = Duration::from_secs(10);
/// Concurrent connections; more wait for a slot, so a flood of connections
/// cannot exhaust memory or file descriptors.
const MAX_CONNECTIONS: usize = 512;

/// Binds a listening socket; the caller makes it a tokio listener (a
/// reload hands a duplicate of it to the next service).
/// `floating`: the address may not be on an interface yet (IP_FREEBIND).
pub fn bind(addr: SocketAddr, floating: bool) -> Result<std::net::TcpListener, DnsError> {
    let bind_error = |source| DnsError::Bind {
        transport: "TCP",
        addr,
        source,
    };
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))
        .map_err(bind_error)?;
    if addr.is_ipv6() {
        socket.set_only_v6(true).map_err(bind_error)?;
    }
    // SO_REUSEPORT lets a reload bind the new listener before the old one
    // closes, so TCP clients see no gap.
    socket.set_reuse_port(true).map_err(bind_error)?;
    socket.set_reuse_address(true).map_err(bind_error)?;
    socket.set_nonblocking(true).map_err(bind_error)?;
    super::set_freebind(&socket, addr, floating).map_err(bind_error)?;
    socket.bind(&addr.into()).map_err(bind_error)?;
    socket.listen(1024).map_err(bind_error)?;
    Ok(socket.into())
}

/// What every TCP connection shares.
#[derive(Debug, Clone)]
pub struct TcpContext {
    pub allow: AllowList,
    pub max_udp_payload: u16,
    pub jobs: mpsc::Sender<Job>,
    pub stats: Arc<Stats>,
    pub filter: Arc<arc_swap::ArcSwap<Filter>>,
}

pub async fn serve(listener: TcpListener, context: TcpContext, mut stop: watch::Receiver<bool>) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let permit = tokio::select! {
            permit = Arc::clone(&slots).acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => return,
            },
            _ = stop.changed() => return,
        };
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stop.changed() => return,
        };
        match accepted {
            Ok((stream, peer)) => {
                let context = context.clone();
                let stop = stop.clone();
                tokio::spawn(async move {
                    if let Err(error) = connection(stream, peer, &context, stop).await {
                        debug!(%peer, %error, "TCP connection ended");
                    }
                    drop(permit);
                });
            }
            Err(error) => {
                debug!(%error, "TCP accept failed");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

async fn connection(
    mut stream: TcpStream,
    peer: SocketAddr,
    context: &TcpContext,
    mut stop: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let ip = canonical(peer.ip());
    let _ = stream.set_nodelay(true);
    let mut key = KeyBuf::default();
    loop {
        let mut len = [0u8; 2];
        tokio::select! {
            read = tokio::time::timeout(IDLE_TIMEOUT, stream.read_exact(&mut len)) => match read {
                Ok(Ok(_)) => {}
                Ok(Err(_)) | Err(_) => return Ok(()),
            },
            _ = stop.changed() => return Ok(()),
        }
        let mut packet = vec![0u8; usize::from(u16::from_be_bytes(len))];
        tokio::time::timeout(IDLE_TIMEOUT, stream.read_exact(&mut packet))
            .await
            .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))??;
        bump(&context.stats.slow_path.tcp_queries, 1);
        let Some(response) = respond(&packet, ip, context, &mut key).await else {
            // Unanswerable (a response, or garbage without a header): a TCP
            // peer sending that is not speaking DNS, so hang up.
            return Ok(());
        };
        let Ok(len) = u16::try_from(response.len()) else {
            return Ok(());
        };
        let mut framed = Vec::with_capacity(response.len() + 2);
        framed.extend_from_slice(&len.to_be_bytes());
        framed.extend_from_slice(&response);
        stream.write_all(&framed).await?;
    }
}

async fn respond(
    packet: &[u8],
    ip: std::net::IpAddr,
    context: &TcpContext,
    key: &mut KeyBuf,
) -> Option<Vec<u8>> {
    let stats = &context.stats.slow_path;
    let mut out = Vec::with_capacity(512);
    let query = match wire::parse_query(packet) {
        Ok(query) => query,
        Err(error) => {
            stats.count(Outcome::FormErr);
            let rcode = error.reply_rcode()?;
            return synth::header_only(packet, rcode, &mut out).then_some(out);
        }
    };
    let payload = context.max_udp_payload;
    let allowed = context.allow.allows(ip);
    if answer_without_lookup(&query, packet, allowed, payload, stats, &mut out) {
        return Some(out);
    }
    let filter = context.filter.load();
    let who = filter.classify(ip);
    let view = match filter.screen(who, query.name_wire()) {
        Screened::Blocked(found) => {
            write_blocked(
                &filter, who, &found, &query, packet, payload, stats, &mut out,
            );
            return Some(out);
        }
        Screened::View(view) => view,
    };
    let (tx, rx) = oneshot::channel();
    let job = Job {
        key: Box::from(wire::cache_key_in(&query, view, key)),
        packet: Box::from(packet),
        kind: JobKind::Client,
        stale: None,
        reply: Reply::Tcp(tx),
        max_udp: 0,
        received: Instant::now(),
        client: ip,
        who,
        view,
    };
    if context.jobs.send(job).await.is_err() {
        synth::error_response(
            &query,
            packet,
            u16::from(wire::RCODE_SERVFAIL),
            payload,
            &mut out,
        );
        return Some(out);
    }
    match rx.await {
        Ok(response) => Some(response),
        Err(_) => {
            synth::error_response(
                &query,
                packet,
                u16::from(wire::RCODE_SERVFAIL),
                payload,
                &mut out,
            );
            Some(out)
        }
    }
}
