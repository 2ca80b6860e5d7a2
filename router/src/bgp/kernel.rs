//! Best routes into the kernel: protocol `bgp` (186) in the configured
//! table, so they are told apart from everything else and only ours are
//! ever replaced or removed.

use std::io;
use std::net::IpAddr;

use ipnet::IpNet;
use rtnetlink::packet_route::route::{RouteMessage, RouteProtocol};
use rtnetlink::{Handle, RouteMessageBuilder};
use tracing::debug;

use crate::links::{AbortOnDrop, os_error};

use super::settings::ROUTE_PROTOCOL;

#[derive(Debug)]
pub struct KernelRoutes {
    handle: Handle,
    table: u32,
    _connection: AbortOnDrop,
}

fn invalid(e: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, e.to_string())
}

fn protocol() -> RouteProtocol {
    RouteProtocol::from(ROUTE_PROTOCOL)
}

impl KernelRoutes {
    pub fn open(table: u32) -> io::Result<KernelRoutes> {
        let (connection, handle, _) = rtnetlink::new_connection()?;
        Ok(KernelRoutes {
            handle,
            table,
            _connection: AbortOnDrop(tokio::spawn(connection)),
        })
    }

    fn message(&self, prefix: IpNet, next_hop: Option<IpAddr>) -> io::Result<RouteMessage> {
        let mut builder = RouteMessageBuilder::<IpAddr>::new()
            .destination_prefix(prefix.addr(), prefix.prefix_len())
            .map_err(invalid)?;
        if let Some(hop) = next_hop {
            builder = builder.gateway(hop).map_err(invalid)?;
        }
        Ok(builder.table_id(self.table).protocol(protocol()).build())
    }

    /// Adds or replaces the route for `prefix`.
    pub async fn install(&self, prefix: IpNet, next_hop: IpAddr) -> io::Result<()> {
        let message = self.message(prefix, Some(next_hop))?;
        self.handle
            .route()
            .add(message)
            .replace()
            .execute()
            .await
            .map_err(os_error)
    }

    /// Removes our route for `prefix`; one that is already gone is fine.
    pub async fn remove(&self, prefix: IpNet) -> io::Result<()> {
        let message = self.message(prefix, None)?;
        match self
            .handle
            .route()
            .del(message)
            .execute()
            .await
            .map_err(os_error)
        {
            Err(e) if e.raw_os_error() == Some(libc::ESRCH) => Ok(()),
            other => other,
        }
    }

    /// Removes every route of protocol `bgp` in our table: left by an
    /// earlier run that did not stop cleanly. Returns how many.
    pub async fn flush(&self) -> io::Result<usize> {
        let mut removed = 0;
        for route in crate::links::routes_in_table(&self.handle, self.table).await? {
            if route.header.protocol != protocol() {
                continue;
            }
            debug!(?route, "removing a stale BGP route");
            self.handle
                .route()
                .del(route)
                .execute()
                .await
                .map_err(os_error)?;
            removed += 1;
        }
        Ok(removed)
    }
}

/// What the speaker wants of the kernel for one prefix: a next hop, or
/// no route.
type Wanted = Option<IpAddr>;

/// Kernel programming off the speaker's path: the speaker queues changes
/// and goes on; this task applies them, the latest per prefix winning, a
/// few dozen netlink requests in flight at once.
#[derive(Debug)]
pub struct KernelWriter {
    tx: tokio::sync::mpsc::UnboundedSender<Op>,
}

enum Op {
    Set(IpNet, Wanted),
    /// Apply everything queued, then remove all our routes, then answer.
    FlushAll(tokio::sync::oneshot::Sender<()>),
}

/// Requests in flight at once.
const IN_FLIGHT: usize = 32;

impl KernelWriter {
    pub fn start(routes: KernelRoutes) -> KernelWriter {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Op>();
        tokio::spawn(async move {
            while let Some(first) = rx.recv().await {
                let mut pending: std::collections::HashMap<IpNet, Wanted> =
                    std::collections::HashMap::new();
                let mut flush = None;
                let mut next = Some(first);
                while let Some(op) = next.take().or_else(|| rx.try_recv().ok()) {
                    match op {
                        Op::Set(prefix, wanted) => {
                            pending.insert(prefix, wanted);
                        }
                        Op::FlushAll(reply) => {
                            flush = Some(reply);
                            break;
                        }
                    }
                }
                apply(&routes, pending).await;
                if let Some(reply) = flush {
                    if let Err(e) = routes.flush().await {
                        tracing::warn!(error = %e, "cannot remove BGP routes");
                    }
                    let _ = reply.send(());
                }
            }
        });
        KernelWriter { tx }
    }

    pub fn set(&self, prefix: IpNet, wanted: Wanted) {
        let _ = self.tx.send(Op::Set(prefix, wanted));
    }

    /// Waits until everything queued is applied, then removes all our routes.
    pub async fn flush_all(&self) {
        let (reply, done) = tokio::sync::oneshot::channel();
        if self.tx.send(Op::FlushAll(reply)).is_ok() {
            let _ = done.await;
        }
    }
}

async fn apply(routes: &KernelRoutes, pending: std::collections::HashMap<IpNet, Wanted>) {
    use futures_util::StreamExt;
    futures_util::stream::iter(pending)
        .map(|(prefix, wanted)| async move {
            let result = match wanted {
                Some(hop) => routes.install(prefix, hop).await,
                None => routes.remove(prefix).await,
            };
            if let Err(e) = result {
                tracing::warn!(%prefix, next_hop = ?wanted, error = %e, "kernel route not changed");
            }
        })
        .buffer_unordered(IN_FLIGHT)
        .collect::<()>()
        .await;
}
