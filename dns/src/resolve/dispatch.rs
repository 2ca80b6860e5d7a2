//! The dispatcher: the single owner of everything a miss touches.
//!
//! Workers (and TCP connections) send it jobs. It answers from the master
//! cache when a replica was merely behind, coalesces identical questions in
//! flight into one resolution, serves stale data when resolution is slow or
//! fails (RFC 8767), and replicates each new cache entry to every worker.
//! Running as one task, it needs no locks for any of this.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::Arc;
use std::sync::mpsc::Sender as StdSender;
use std::time::{Duration, Instant};

use hickory_proto::op::{Edns, Message, ResponseCode};
use hickory_proto::rr::{Name, RecordType};
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder};
use tokio::sync::mpsc;
use tracing::debug;

use super::{Question, Resolved, Resolver};
use crate::fastpath::answer::{CachedAnswer, udp_limit};
use crate::fastpath::cache::{Lookup, WorkerCache};
use crate::fastpath::synth;
use crate::fastpath::wire::{self, QueryView};
use crate::filter::{Client, Filter};
use crate::querylog::Outcome as Logged;
use crate::server::logging::{Captured, LogBatch};
use crate::server::{Attachments, Job, JobKind, Reply, WorkerMessage, write_blocked};
use crate::settings::CacheSettings;
use crate::stats::{Outcome, Stats, bump};

/// RFC 8767 section 5 suggests 1.8 s: after this long without an answer, a
/// client that has stale data available gets it.
const STALE_CLIENT_TIMEOUT: Duration = Duration::from_millis(1800);
/// A resolution still running after this long is answered with SERVFAIL.
const RESOLUTION_TIMEOUT: Duration = Duration::from_secs(10);

struct Waiter {
    packet: Box<[u8]>,
    reply: Reply,
    max_udp: u16,
    received: Instant,
    client: std::net::IpAddr,
    who: Client,
}

/// How an answer came about, for the query log.
#[derive(Clone, Copy)]
struct How<'a> {
    outcome: Logged,
    upstream: Option<&'a str>,
}

const FROM_CACHE: How<'static> = How {
    outcome: Logged::Cached,
    upstream: None,
};
const FROM_STALE: How<'static> = How {
    outcome: Logged::Stale,
    upstream: None,
};

struct Inflight {
    waiters: Vec<Waiter>,
    stale: Option<Arc<CachedAnswer>>,
}

enum Done {
    Resolved(Box<[u8]>, Resolved),
    StaleTimer(Box<[u8]>),
}

/// See the module documentation.
pub struct Dispatcher {
    resolver: Arc<Resolver>,
    cache: WorkerCache,
    cache_settings: CacheSettings,
    max_udp_payload: u16,
    workers: Vec<StdSender<WorkerMessage>>,
    inflight: HashMap<Box<[u8]>, Inflight>,
    done_tx: mpsc::UnboundedSender<Done>,
    done_rx: mpsc::UnboundedReceiver<Done>,
    stats: Arc<Stats>,
    attachments: Attachments,
    /// Records of the event being handled, sent once it is done.
    log: Option<LogBatch>,
}

impl std::fmt::Debug for Dispatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dispatcher")
            .field("inflight", &self.inflight.len())
            .finish_non_exhaustive()
    }
}

impl Dispatcher {
    pub fn new(
        resolver: Arc<Resolver>,
        cache_settings: CacheSettings,
        max_udp_payload: u16,
        workers: Vec<StdSender<WorkerMessage>>,
        stats: Arc<Stats>,
        attachments: Attachments,
    ) -> Self {
        let (done_tx, done_rx) = mpsc::unbounded_channel();
        Self {
            resolver,
            cache: WorkerCache::new(cache_settings.max_entries, cache_settings.max_stale),
            cache_settings,
            max_udp_payload,
            workers,
            inflight: HashMap::new(),
            done_tx,
            done_rx,
            stats,
            attachments,
            log: None,
        }
    }

    /// Runs until every job sender is gone (the service is stopping).
    pub async fn run(mut self, mut jobs: mpsc::Receiver<Job>, status: StatusRequests) {
        let mut status = status;
        loop {
            if self.attachments.log.is_some() {
                self.log = Some(LogBatch::new(self.attachments.filter.load_full()));
            }
            tokio::select! {
                job = jobs.recv() => match job {
                    Some(job) => self.on_job(job),
                    None => return,
                },
                Some(done) = self.done_rx.recv() => match done {
                    Done::Resolved(key, resolved) => self.on_resolved(key, resolved),
                    Done::StaleTimer(key) => self.on_stale_timer(&key),
                },
                Some(request) = status.recv() => match request {
                    CacheRequest::Size(reply) => {
                        let _ = reply.send(self.cache.len());
                    }
                    CacheRequest::Export(reply) => {
                        let entries = self
                            .cache
                            .iter()
                            .map(|(key, answer)| (Box::from(key), Arc::clone(answer)))
                            .collect();
                        let _ = reply.send(entries);
                    }
                },
            }
            if let (Some(sink), Some(log)) = (&self.attachments.log, self.log.take()) {
                sink.send(log);
            }
        }
    }

    fn on_job(&mut self, job: Job) {
        let now = Instant::now();
        let mut stale = job.stale.clone();
        if job.kind == JobKind::Client {
            match self.cache.get(&job.key, now) {
                Lookup::Fresh(answer, prefetch_due) => {
                    let answer = Arc::clone(answer);
                    let view = job.view;
                    // Hits seen here (TCP clients, replicas a moment behind)
                    // count toward prefetch like the workers' own.
                    let refresh = prefetch_due && self.cache_settings.prefetch;
                    let key = job.key.clone();
                    let query = wire::parse_query(&job.packet).ok();
                    let waiter = waiter_of(job);
                    self.stats.slow_path.count(Outcome::CacheHit);
                    self.answer(waiter, &answer, false, now, FROM_CACHE);
                    if let (true, Some(query)) = (refresh, query)
                        && let Entry::Vacant(entry) = self.inflight.entry(key)
                    {
                        let key = entry.key().clone();
                        entry.insert(Inflight {
                            waiters: Vec::new(),
                            stale: None,
                        });
                        bump(&self.stats.slow_path.prefetches, 1);
                        self.spawn_resolution(key, &query, view);
                    }
                    return;
                }
                Lookup::Stale(answer) if self.cache_settings.serve_stale => {
                    stale = stale.or_else(|| Some(Arc::clone(answer)));
                }
                Lookup::Stale(_) | Lookup::Miss => {}
            }
        }
        let Ok(query) = wire::parse_query(&job.packet) else {
            return;
        };
        let key = job.key.clone();
        let kind = job.kind;
        let view = job.view;
        match self.inflight.entry(key) {
            Entry::Occupied(mut entry) => {
                let inflight = entry.get_mut();
                if inflight.stale.is_none() {
                    inflight.stale = stale;
                }
                if kind == JobKind::Client {
                    inflight.waiters.push(waiter_of(job));
                }
            }
            Entry::Vacant(entry) => {
                let key = entry.key().clone();
                let has_stale = stale.is_some();
                let waiters = if kind == JobKind::Client {
                    vec![waiter_of(job)]
                } else {
                    Vec::new()
                };
                entry.insert(Inflight { waiters, stale });
                self.spawn_resolution(key.clone(), &query, view);
                if has_stale {
                    let done = self.done_tx.clone();
                    tokio::spawn(async move {
                        tokio::time::sleep(STALE_CLIENT_TIMEOUT).await;
                        let _ = done.send(Done::StaleTimer(key));
                    });
                }
            }
        }
    }

    fn spawn_resolution(&self, key: Box<[u8]>, query: &QueryView, view: u8) {
        let Some(question) = question_of(query) else {
            return;
        };
        let resolver = Arc::clone(&self.resolver);
        let done = self.done_tx.clone();
        tokio::spawn(async move {
            let resolved = match tokio::time::timeout(
                RESOLUTION_TIMEOUT,
                resolver.resolve_in(&question, view),
            )
            .await
            {
                Ok(resolved) => resolved,
                Err(_) => {
                    debug!(name = %question.name, qtype = %question.qtype, "resolution timed out");
                    super::servfail(&question, true)
                }
            };
            let _ = done.send(Done::Resolved(key, resolved));
        });
    }

    fn on_resolved(&mut self, key: Box<[u8]>, resolved: Resolved) {
        let Some(inflight) = self.inflight.remove(&key) else {
            return;
        };
        let now = Instant::now();
        let rcode = resolved.message.metadata.response_code;
        if resolved.unreachable {
            bump(&self.stats.slow_path.upstream_errors, 1);
            if let Some(stale) = inflight.stale.as_deref() {
                for waiter in inflight.waiters {
                    self.stats.slow_path.count(Outcome::Stale);
                    self.answer(waiter, stale, true, now, FROM_STALE);
                }
                return;
            }
        }
        let how = How {
            outcome: match (rcode, &resolved.upstream) {
                (ResponseCode::ServFail, _) => Logged::Failed,
                (_, Some(_)) => Logged::Forwarded,
                (_, None) => Logged::Answered,
            },
            upstream: resolved.upstream.as_deref(),
        };
        let answer = resolved
            .message
            .to_vec()
            .ok()
            .and_then(|wire| CachedAnswer::from_response(&wire, now, self.ttl_clamp()).ok())
            .map(Arc::new);
        match answer {
            Some(answer) => {
                if matches!(rcode, ResponseCode::NoError | ResponseCode::NXDomain)
                    && answer.remaining_ttl(now).is_some_and(|ttl| ttl > 0)
                {
                    self.replicate(&key, &answer);
                }
                for waiter in inflight.waiters {
                    self.count_result(rcode);
                    self.answer(waiter, &answer, false, now, how);
                }
            }
            // Not cacheable but with content (a TTL of 0, say): built per
            // client from the message itself.
            None if has_records(&resolved.message) => {
                for waiter in inflight.waiters {
                    self.count_result(rcode);
                    self.answer_uncached(waiter, &resolved.message, how);
                }
            }
            None => {
                for waiter in inflight.waiters {
                    self.count_result(rcode);
                    self.answer_error(waiter, u16::from(rcode), how);
                }
            }
        }
    }

    fn on_stale_timer(&mut self, key: &[u8]) {
        let now = Instant::now();
        let Some(inflight) = self.inflight.get_mut(key) else {
            return;
        };
        let Some(stale) = inflight.stale.clone() else {
            return;
        };
        let waiters = std::mem::take(&mut inflight.waiters);
        for waiter in waiters {
            self.stats.slow_path.count(Outcome::Stale);
            self.answer(waiter, &stale, true, now, FROM_STALE);
        }
    }

    /// Fills the master cache and every replica, e.g. from the service a
    /// reload replaces.
    pub fn seed(&mut self, entries: CacheEntries) {
        for (key, answer) in entries {
            self.replicate(&key, &answer);
        }
    }

    fn replicate(&mut self, key: &[u8], answer: &Arc<CachedAnswer>) {
        self.cache.insert(Box::from(key), Arc::clone(answer));
        let shared: Arc<[u8]> = Arc::from(key);
        // A worker that has stopped simply misses the update.
        for worker in &self.workers {
            let _ = worker.send(WorkerMessage::Insert(
                Arc::clone(&shared),
                Arc::clone(answer),
            ));
        }
    }

    fn ttl_clamp(&self) -> (u32, u32) {
        (self.cache_settings.min_ttl, self.cache_settings.max_ttl)
    }

    fn count_result(&self, rcode: ResponseCode) {
        let stats = &self.stats.slow_path;
        stats.count(Outcome::Resolved);
        match rcode {
            ResponseCode::ServFail => bump(&stats.servfail, 1),
            ResponseCode::NXDomain => bump(&stats.nxdomain, 1),
            _ => {}
        }
    }

    fn answer(
        &mut self,
        waiter: Waiter,
        answer: &CachedAnswer,
        stale: bool,
        now: Instant,
        how: How<'_>,
    ) {
        let Ok(query) = wire::parse_query(&waiter.packet) else {
            return;
        };
        let mut out = Vec::with_capacity(512);
        let filter = self.attachments.filter.load_full();
        if let Some((name, found)) = filter.check_chain(waiter.who.group, answer.cname_chain()) {
            return self.answer_blocked(waiter, &query, &filter, found, name);
        }
        let limit = waiter.max_udp;
        let served = if stale {
            answer.write_stale_response(
                &query,
                &waiter.packet,
                limit,
                self.max_udp_payload,
                &mut out,
            )
        } else {
            answer.write_response(
                &query,
                &waiter.packet,
                now,
                limit,
                self.max_udp_payload,
                &mut out,
            )
        };
        if served.is_truncated() {
            bump(&self.stats.slow_path.truncated, 1);
        }
        self.finish(waiter, &query, out, how, None);
    }

    /// Blocks an answer whose CNAME chain passes through a blocked name.
    fn answer_blocked(
        &mut self,
        waiter: Waiter,
        query: &QueryView,
        filter: &Filter,
        found: crate::filter::Match,
        name: &[u8],
    ) {
        let mut out = Vec::with_capacity(128);
        write_blocked(
            filter,
            waiter.who,
            &found,
            query,
            &waiter.packet,
            self.max_udp_payload,
            &self.stats.slow_path,
            &mut out,
        );
        let how = How {
            outcome: Logged::Blocked,
            upstream: None,
        };
        self.finish(waiter, query, out, how, Some((found, name)));
    }

    /// Sends a response, counting and logging it.
    fn finish(
        &mut self,
        waiter: Waiter,
        query: &QueryView,
        out: Vec<u8>,
        how: How<'_>,
        matched: Option<(crate::filter::Match, &[u8])>,
    ) {
        let latency = waiter.received.elapsed();
        self.stats.slow_path.observe_latency(latency, 1);
        if let Some(log) = &mut self.log {
            let captured = Captured {
                client: waiter.client,
                who: waiter.who,
                name_wire: query.name_wire(),
                qtype: query.qtype,
                outcome: how.outcome,
                rcode: out.get(3).map_or(0, |b| b & 0x0F),
                matched,
            };
            log.push(captured, how.upstream, latency);
        }
        waiter.reply.send(out);
    }

    fn answer_uncached(&mut self, waiter: Waiter, message: &Message, how: How<'_>) {
        let (Ok(query), Ok(request)) = (
            wire::parse_query(&waiter.packet),
            Message::from_vec(&waiter.packet),
        ) else {
            return;
        };
        let filter = self.attachments.filter.load_full();
        let chain = cname_chain(message);
        if let Some((name, found)) = filter.check_chain(waiter.who.group, &chain) {
            return self.answer_blocked(waiter, &query, &filter, found, name);
        }
        let mut response = message.clone();
        response.metadata.id = query.id;
        response.metadata.recursion_desired = query.rd;
        response.metadata.checking_disabled = query.cd;
        response.metadata.authentic_data &= query.do_bit() || query.ad;
        response.queries = request.queries;
        if query.edns.is_some() {
            let mut edns = Edns::new();
            edns.set_max_payload(self.max_udp_payload);
            edns.set_dnssec_ok(query.do_bit());
            response.edns = Some(edns);
        }
        let limit = udp_limit(&query, waiter.max_udp, self.max_udp_payload);
        let mut out = response.to_vec().unwrap_or_default();
        if out.len() > limit {
            bump(&self.stats.slow_path.truncated, 1);
            response.answers.clear();
            response.authorities.clear();
            response.additionals.clear();
            response.metadata.truncation = true;
            out = response.to_vec().unwrap_or_default();
        }
        if out.is_empty() {
            return self.answer_error(waiter, u16::from(wire::RCODE_SERVFAIL), how);
        }
        self.finish(waiter, &query, out, how, None);
    }

    fn answer_error(&mut self, waiter: Waiter, rcode: u16, how: How<'_>) {
        let Ok(query) = wire::parse_query(&waiter.packet) else {
            return;
        };
        let mut out = Vec::with_capacity(64);
        synth::error_response(
            &query,
            &waiter.packet,
            rcode,
            self.max_udp_payload,
            &mut out,
        );
        self.finish(waiter, &query, out, how, None);
    }
}

/// The CNAME targets of a message's answer section as lowercased wire
/// names back to back, as [`CachedAnswer::cname_chain`] has them.
fn cname_chain(message: &Message) -> Vec<u8> {
    use hickory_proto::rr::RData;
    use hickory_proto::serialize::binary::{BinEncodable, BinEncoder};
    let mut chain = Vec::new();
    for record in &message.answers {
        if let RData::CNAME(target) = &record.data {
            let lower = hickory_proto::rr::LowerName::from(&target.0);
            let mut name = Vec::with_capacity(64);
            if lower.emit(&mut BinEncoder::new(&mut name)).is_ok() {
                chain.extend_from_slice(&name);
            }
        }
    }
    chain
}

/// Questions about the master cache, answered between jobs.
#[derive(Debug)]
pub enum CacheRequest {
    Size(tokio::sync::oneshot::Sender<usize>),
    Export(tokio::sync::oneshot::Sender<CacheEntries>),
}

/// Cache entries handed from one service to the next on reload.
pub type CacheEntries = Vec<(Box<[u8]>, Arc<CachedAnswer>)>;

pub type StatusRequests = mpsc::Receiver<CacheRequest>;

fn has_records(message: &Message) -> bool {
    !(message.answers.is_empty() && message.authorities.is_empty())
}

fn waiter_of(job: Job) -> Waiter {
    Waiter {
        packet: job.packet,
        reply: job.reply,
        max_udp: job.max_udp,
        received: job.received,
        client: job.client,
        who: job.who,
    }
}

/// The resolver's view of a parsed query.
pub fn question_of(query: &QueryView) -> Option<Question> {
    let mut decoder = BinDecoder::new(query.name_wire());
    let name = Name::read(&mut decoder).ok()?;
    Some(Question {
        name,
        qtype: RecordType::from(query.qtype),
        dnssec_ok: query.do_bit(),
        checking_disabled: query.cd,
    })
}
