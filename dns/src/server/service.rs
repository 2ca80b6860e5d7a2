//! The running DNS service: binds everything up front (so a bad address
//! fails the start, not a later query), then runs the workers, the TCP
//! listeners and the dispatcher until stopped.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

use serde::Serialize;
use tokio::sync::{mpsc, oneshot, watch};
use tracing::{info, warn};

use super::tcp::{self, TcpContext};
use super::udp::{self, Worker, WorkerSettings};
use super::{Job, WorkerMessage};
use crate::error::DnsError;
use crate::fastpath::acl::AllowList;
use crate::fastpath::cache::WorkerCache;
use crate::resolve::dispatch::Dispatcher;
use crate::resolve::{Resolver, ResolverStatus};
use crate::settings::DnsSettings;
use crate::stats::{Stats, Totals};

/// Misses queued for the dispatcher before workers start shedding them.
const JOB_QUEUE: usize = 8192;

/// A running DNS service.
pub struct DnsService {
    settings: DnsSettings,
    resolver: Arc<Resolver>,
    stats: Arc<Stats>,
    shutdown: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
    stop_tcp: watch::Sender<bool>,
    cache_size: mpsc::Sender<oneshot::Sender<usize>>,
    worker_count: usize,
    /// Kept so the dispatcher lives until `stop`.
    _jobs: mpsc::Sender<Job>,
}

impl std::fmt::Debug for DnsService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DnsService")
            .field("listen", &self.settings.listen)
            .field("workers", &self.worker_count)
            .finish_non_exhaustive()
    }
}

/// What `routerctl status` shows about DNS.
#[derive(Debug, Clone, Serialize)]
pub struct DnsStatus {
    pub listen: Vec<SocketAddr>,
    pub workers: usize,
    pub cache_entries: usize,
    pub resolver: ResolverStatus,
    pub totals: Totals,
}

impl DnsService {
    /// Builds the resolver and binds every socket; nothing is served unless
    /// all of it succeeds. Must be called inside a tokio runtime.
    pub fn start(settings: DnsSettings) -> Result<Self, DnsError> {
        let resolver = Arc::new(Resolver::new(&settings)?);
        let threads_per_addr = if settings.workers == 0 {
            std::thread::available_parallelism().map_or(1, usize::from)
        } else {
            settings.workers
        };
        let allow = AllowList::new(settings.allow.iter().copied());

        let mut sockets = Vec::new();
        for addr in &settings.listen {
            for _ in 0..threads_per_addr {
                sockets.push(Arc::new(udp::bind(*addr)?));
            }
        }
        let listeners = settings
            .listen
            .iter()
            .map(|addr| tcp::bind(*addr))
            .collect::<Result<Vec<_>, _>>()?;

        let worker_count = sockets.len();
        let stats = Arc::new(Stats::new(worker_count));
        let shutdown = Arc::new(AtomicBool::new(false));
        let (jobs_tx, jobs_rx) = mpsc::channel(JOB_QUEUE);
        let (cache_size_tx, cache_size_rx) = mpsc::channel(4);
        let worker_settings = WorkerSettings {
            allow: allow.clone(),
            rate_limit_qps: settings.rate_limit_qps,
            rate_limit_burst: settings.rate_limit_burst,
            max_udp_payload: settings.max_udp_payload,
            prefetch: settings.cache.prefetch,
            serve_stale: settings.cache.serve_stale,
        };

        let mut inboxes = Vec::new();
        let mut threads = Vec::new();
        for (index, socket) in sockets.into_iter().enumerate() {
            let (inbox_tx, inbox_rx) = std::sync::mpsc::channel::<WorkerMessage>();
            inboxes.push(inbox_tx);
            let worker = Worker {
                socket,
                index,
                settings: worker_settings.clone(),
                cache: WorkerCache::new(settings.cache.max_entries, settings.cache.max_stale),
                inbox: inbox_rx,
                jobs: jobs_tx.clone(),
                stats: Arc::clone(&stats),
                shutdown: Arc::clone(&shutdown),
            };
            let thread = std::thread::Builder::new()
                .name(format!("dns-udp-{index}"))
                .spawn(move || worker.run())?;
            threads.push(thread);
        }

        let dispatcher = Dispatcher::new(
            Arc::clone(&resolver),
            settings.cache.clone(),
            settings.max_udp_payload,
            inboxes,
            Arc::clone(&stats),
        );
        tokio::spawn(dispatcher.run(jobs_rx, cache_size_rx));

        let (stop_tcp, stop_rx) = watch::channel(false);
        for listener in listeners {
            let context = TcpContext {
                allow: allow.clone(),
                max_udp_payload: settings.max_udp_payload,
                jobs: jobs_tx.clone(),
                stats: Arc::clone(&stats),
            };
            tokio::spawn(tcp::serve(listener, context, stop_rx.clone()));
        }
        info!(
            listen = ?settings.listen,
            workers = worker_count,
            mode = ?settings.mode,
            "DNS service started"
        );
        Ok(Self {
            settings,
            resolver,
            stats,
            shutdown,
            threads,
            stop_tcp,
            cache_size: cache_size_tx,
            worker_count,
            _jobs: jobs_tx,
        })
    }

    pub fn settings(&self) -> &DnsSettings {
        &self.settings
    }

    pub fn stats(&self) -> &Arc<Stats> {
        &self.stats
    }

    pub async fn status(&self) -> DnsStatus {
        let (tx, rx) = oneshot::channel();
        let cache_entries = match self.cache_size.send(tx).await {
            Ok(()) => rx.await.unwrap_or(0),
            Err(_) => 0,
        };
        DnsStatus {
            listen: self.settings.listen.clone(),
            workers: self.worker_count,
            cache_entries,
            resolver: self.resolver.status(),
            totals: self.stats.totals(),
        }
    }

    /// Stops serving: workers finish their batch, listeners close.
    pub async fn stop(self) {
        self.shutdown.store(true, Ordering::Relaxed);
        let _ = self.stop_tcp.send(true);
        let threads = self.threads;
        let joined = tokio::task::spawn_blocking(move || {
            for thread in threads {
                if thread.join().is_err() {
                    warn!("a DNS worker thread panicked");
                }
            }
        })
        .await;
        if joined.is_err() {
            warn!("could not join the DNS workers");
        }
        info!("DNS service stopped");
    }
}
