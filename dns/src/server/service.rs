//! The running DNS service: binds everything up front (so a bad address
//! fails the start, not a later query), then runs the workers, the TCP
//! listeners and the dispatcher until stopped.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

use serde::Serialize;
use tokio::sync::{mpsc, oneshot, watch};
use tracing::{info, warn};

use super::tcp::{self, TcpContext};
use super::udp::{self, Worker, WorkerSettings};
use super::{Attachments, Job, WorkerMessage};
use crate::error::DnsError;
use crate::fastpath::acl::AllowList;
use crate::fastpath::cache::WorkerCache;
use crate::resolve::dispatch::{CacheEntries, CacheRequest, Dispatcher};
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
    cache_requests: mpsc::Sender<CacheRequest>,
    worker_count: usize,
    sockets: BoundSockets,
    attachments: Attachments,
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

/// A service ready to run: see [`DnsService::prepare`].
pub struct Prepared {
    settings: DnsSettings,
    resolver: Arc<Resolver>,
    bound: BoundSockets,
    listeners: Vec<tokio::net::TcpListener>,
    attachments: Attachments,
}

impl std::fmt::Debug for Prepared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prepared")
            .field("listen", &self.settings.listen)
            .finish_non_exhaustive()
    }
}

/// Every socket a service serves on.
#[derive(Debug)]
struct BoundSockets {
    listen: Vec<SocketAddr>,
    threads_per_addr: usize,
    /// `threads_per_addr` SO_REUSEPORT sockets per listen address.
    udp: Vec<Arc<std::net::UdpSocket>>,
    tcp: Vec<std::net::TcpListener>,
}

impl BoundSockets {
    fn bind(
        listen: &[SocketAddr],
        floating: &[IpAddr],
        threads_per_addr: usize,
    ) -> Result<Self, DnsError> {
        let floats = |addr: &SocketAddr| floating.contains(&addr.ip());
        let mut udp = Vec::new();
        for addr in listen {
            for _ in 0..threads_per_addr {
                udp.push(Arc::new(udp::bind(*addr, floats(addr))?));
            }
        }
        let tcp = listen
            .iter()
            .map(|addr| tcp::bind(*addr, floats(addr)))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            listen: listen.to_vec(),
            threads_per_addr,
            udp,
            tcp,
        })
    }

    fn try_clone(&self) -> Result<Self, DnsError> {
        Ok(Self {
            listen: self.listen.clone(),
            threads_per_addr: self.threads_per_addr,
            udp: self.udp.clone(),
            tcp: self
                .tcp
                .iter()
                .map(std::net::TcpListener::try_clone)
                .collect::<Result<Vec<_>, _>>()?,
        })
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
        Self::start_with(settings, Attachments::default())
    }

    /// [`Self::start`] with the daemon's filter and query log.
    pub fn start_with(settings: DnsSettings, attachments: Attachments) -> Result<Self, DnsError> {
        Self::prepare(settings, None, attachments)?.run(Vec::new())
    }

    /// The filter and query log this service uses.
    pub fn attachments(&self) -> &Attachments {
        &self.attachments
    }

    /// Does everything that can fail before serving: builds the resolver
    /// and binds the sockets. On reload, `previous` is the running service:
    /// where the listen addresses and thread count are unchanged its
    /// sockets carry over, so queued packets and pending connections reach
    /// the new workers instead of dying with the old sockets.
    pub fn prepare(
        settings: DnsSettings,
        previous: Option<&DnsService>,
        attachments: Attachments,
    ) -> Result<Prepared, DnsError> {
        let resolver = Arc::new(Resolver::new(&settings)?);
        let threads_per_addr = if settings.workers == 0 {
            std::thread::available_parallelism().map_or(1, usize::from)
        } else {
            settings.workers
        };
        let bound = match previous.map(|p| &p.sockets) {
            Some(previous)
                if previous.listen == settings.listen
                    && previous.threads_per_addr == threads_per_addr =>
            {
                previous.try_clone()?
            }
            _ => BoundSockets::bind(&settings.listen, &settings.floating, threads_per_addr)?,
        };
        let listeners = bound
            .tcp
            .iter()
            .map(|l| {
                let l = l.try_clone()?;
                l.set_nonblocking(true)?;
                tokio::net::TcpListener::from_std(l)
            })
            .collect::<Result<Vec<_>, std::io::Error>>()?;
        Ok(Prepared {
            settings,
            resolver,
            bound,
            listeners,
            attachments,
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
        let cache_entries = match self.cache_requests.send(CacheRequest::Size(tx)).await {
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

    /// Whether the service still runs whole: every UDP worker thread and
    /// the dispatcher alive. False after [`DnsService::stop_serving`] or
    /// once one of them died (a panic), which nothing restarts: the
    /// daemon's watchdog stops being fed and the supervisor restarts it.
    pub fn is_serving(&self) -> bool {
        !self.shutdown.load(Ordering::Relaxed)
            && !self.cache_requests.is_closed()
            && self.threads.iter().all(|thread| !thread.is_finished())
    }

    /// A copy of the master cache, for the service that replaces this one.
    pub async fn export_cache(&self) -> CacheEntries {
        let (tx, rx) = oneshot::channel();
        match self.cache_requests.send(CacheRequest::Export(tx)).await {
            Ok(()) => rx.await.unwrap_or_default(),
            Err(_) => Vec::new(),
        }
    }

    /// Stops serving: workers finish their batch and exit, TCP listeners
    /// stop accepting. Sockets stay open until the service is dropped, so
    /// a successor that shares them loses nothing queued.
    pub async fn stop_serving(&mut self) {
        self.shutdown.store(true, Ordering::Relaxed);
        let _ = self.stop_tcp.send(true);
        let threads = std::mem::take(&mut self.threads);
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

    /// Stops serving and closes everything.
    pub async fn stop(mut self) {
        self.stop_serving().await;
    }
}

impl Prepared {
    /// Starts serving: worker threads, the dispatcher (its cache filled
    /// from `seed`, entries a previous service exported) and the TCP
    /// listeners. On reload the previous service stops serving first, so
    /// no answer under the old configuration follows one under the new.
    pub fn run(self, seed: CacheEntries) -> Result<DnsService, DnsError> {
        let Prepared {
            settings,
            resolver,
            bound,
            listeners,
            attachments,
        } = self;
        let allow = AllowList::new(settings.allow.iter().copied());
        let sockets = bound.udp.clone();
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
            udp_segmentation: settings.udp_segmentation,
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
                filter: Arc::clone(&attachments.filter),
                log: attachments.log.clone(),
            };
            let thread = std::thread::Builder::new()
                .name(format!("dns-udp-{index}"))
                .spawn(move || worker.run())?;
            threads.push(thread);
        }

        let mut dispatcher = Dispatcher::new(
            Arc::clone(&resolver),
            settings.cache.clone(),
            settings.max_udp_payload,
            inboxes,
            Arc::clone(&stats),
            attachments.clone(),
        );
        dispatcher.seed(seed);
        tokio::spawn(dispatcher.run(jobs_rx, cache_size_rx));

        let (stop_tcp, stop_rx) = watch::channel(false);
        for listener in listeners {
            let context = TcpContext {
                allow: allow.clone(),
                max_udp_payload: settings.max_udp_payload,
                jobs: jobs_tx.clone(),
                stats: Arc::clone(&stats),
                filter: Arc::clone(&attachments.filter),
            };
            tokio::spawn(tcp::serve(listener, context, stop_rx.clone()));
        }
        info!(
            listen = ?settings.listen,
            workers = worker_count,
            mode = ?settings.mode,
            "DNS service started"
        );
        Ok(DnsService {
            settings,
            resolver,
            stats,
            shutdown,
            threads,
            stop_tcp,
            cache_requests: cache_size_tx,
            worker_count,
            sockets: bound,
            attachments,
            _jobs: jobs_tx,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests

    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn serving_until_stopped() {
        let settings = DnsSettings {
            listen: vec!["127.0.0.1:0".parse().unwrap()],
            workers: 1,
            ..DnsSettings::default()
        };
        let mut service = DnsService::start(settings).unwrap();
        assert!(service.is_serving());
        service.stop_serving().await;
        assert!(!service.is_serving());
    }
}
