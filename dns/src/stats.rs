//! Query counters, kept per worker so that counting never shares a cache
//! line between cores; readers (status, metrics) add them up.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::Serialize;

/// Upper bounds of the latency histogram buckets, in microseconds.
pub const LATENCY_BUCKETS_US: [u64; 14] = [
    50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000,
    1_000_000,
];

/// How a query ended, for counting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    CacheHit,
    Resolved,
    Stale,
    Refused,
    FormErr,
    RateLimited,
    Dropped,
    Blocked,
}

/// Counters of one worker (or of the shared slow path). Aligned to its own
/// cache lines so two workers never write the same line.
#[derive(Debug, Default)]
#[repr(align(128))]
pub struct WorkerStats {
    pub udp_queries: AtomicU64,
    pub tcp_queries: AtomicU64,
    pub cache_hits: AtomicU64,
    pub cache_misses: AtomicU64,
    pub stale_answers: AtomicU64,
    pub refused: AtomicU64,
    pub formerr: AtomicU64,
    pub rate_limited: AtomicU64,
    pub dropped: AtomicU64,
    pub truncated: AtomicU64,
    pub servfail: AtomicU64,
    pub nxdomain: AtomicU64,
    pub upstream_errors: AtomicU64,
    pub prefetches: AtomicU64,
    /// Answers that left in a segmented (UDP GSO) send with others.
    pub udp_segmented: AtomicU64,
    pub blocked: AtomicU64,
    /// Blocks by list index and by group index, drained by
    /// [`Stats::take_blocked`].
    pub blocked_by_list: Box<[AtomicU64]>,
    pub blocked_by_group: Box<[AtomicU64]>,
    /// Bucket i counts answers slower than bucket i-1's bound and at most
    /// `LATENCY_BUCKETS_US[i]`; the last slot counts everything slower.
    /// Readers make them cumulative for Prometheus.
    pub latency: [AtomicU64; LATENCY_BUCKETS_US.len() + 1],
    pub latency_sum_us: AtomicU64,
}

impl WorkerStats {
    pub fn new() -> Self {
        let zeros = |n| (0..n).map(|_| AtomicU64::new(0)).collect();
        Self {
            blocked_by_list: zeros(crate::filter::MAX_LISTS),
            blocked_by_group: zeros(crate::filter::MAX_GROUPS),
            ..Self::default()
        }
    }

    /// Counts a blocked answer.
    pub fn count_block(&self, list: u8, group: u8) {
        bump(&self.blocked, 1);
        if let Some(counter) = self.blocked_by_list.get(usize::from(list)) {
            bump(counter, 1);
        }
        if let Some(counter) = self.blocked_by_group.get(usize::from(group)) {
            bump(counter, 1);
        }
    }

    pub fn count(&self, outcome: Outcome) {
        let counter = match outcome {
            Outcome::CacheHit => &self.cache_hits,
            Outcome::Resolved => &self.cache_misses,
            Outcome::Stale => &self.stale_answers,
            Outcome::Refused => &self.refused,
            Outcome::FormErr => &self.formerr,
            Outcome::RateLimited => &self.rate_limited,
            Outcome::Dropped => &self.dropped,
            Outcome::Blocked => &self.blocked,
        };
        bump(counter, 1);
    }

    pub fn observe_latency(&self, elapsed: Duration, answers: u64) {
        let micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        let slot = LATENCY_BUCKETS_US
            .iter()
            .position(|bound| micros <= *bound)
            .unwrap_or(LATENCY_BUCKETS_US.len());
        bump(&self.latency[slot], answers);
        bump(&self.latency_sum_us, micros.saturating_mul(answers));
    }
}

/// Adds to a counter. Relaxed: these are statistics, not synchronisation.
pub fn bump(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}

/// All counters of the service.
#[derive(Debug)]
pub struct Stats {
    pub workers: Vec<WorkerStats>,
    /// The dispatcher and TCP tasks, which share one set of counters.
    pub slow_path: WorkerStats,
}

/// The sum of every worker's counters, as reported.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Totals {
    pub udp_queries: u64,
    pub tcp_queries: u64,
    pub cache_hits: u64,
    pub cache_misses: u64,
    pub stale_answers: u64,
    pub refused: u64,
    pub formerr: u64,
    pub rate_limited: u64,
    pub dropped: u64,
    pub truncated: u64,
    pub servfail: u64,
    pub nxdomain: u64,
    pub upstream_errors: u64,
    pub prefetches: u64,
    pub udp_segmented: u64,
    pub blocked: u64,
    /// Non-cumulative bucket counts, matching `LATENCY_BUCKETS_US` plus +Inf.
    pub latency_buckets: Vec<u64>,
    pub latency_sum_us: u64,
}

impl Totals {
    /// Adds `other` in, e.g. the counts of a service a reload replaced, so
    /// totals keep growing across reloads as Prometheus counters should.
    pub fn add(&mut self, other: &Totals) {
        self.udp_queries += other.udp_queries;
        self.tcp_queries += other.tcp_queries;
        self.cache_hits += other.cache_hits;
        self.cache_misses += other.cache_misses;
        self.stale_answers += other.stale_answers;
        self.refused += other.refused;
        self.formerr += other.formerr;
        self.rate_limited += other.rate_limited;
        self.dropped += other.dropped;
        self.truncated += other.truncated;
        self.servfail += other.servfail;
        self.nxdomain += other.nxdomain;
        self.upstream_errors += other.upstream_errors;
        self.prefetches += other.prefetches;
        self.udp_segmented += other.udp_segmented;
        self.blocked += other.blocked;
        if self.latency_buckets.len() < other.latency_buckets.len() {
            self.latency_buckets.resize(other.latency_buckets.len(), 0);
        }
        for (sum, n) in self.latency_buckets.iter_mut().zip(&other.latency_buckets) {
            *sum += n;
        }
        self.latency_sum_us += other.latency_sum_us;
    }

    pub fn queries(&self) -> u64 {
        self.udp_queries + self.tcp_queries
    }

    /// Share of answered queries served from the cache, 0 to 1.
    pub fn hit_ratio(&self) -> f64 {
        let lookups = self.cache_hits + self.cache_misses + self.stale_answers;
        if lookups == 0 {
            0.0
        } else {
            self.cache_hits as f64 / lookups as f64
        }
    }
}

impl Stats {
    pub fn new(workers: usize) -> Self {
        Self {
            workers: (0..workers).map(|_| WorkerStats::new()).collect(),
            slow_path: WorkerStats::new(),
        }
    }

    /// Blocks by list index and by group index since the last call.
    pub fn take_blocked(&self) -> (Vec<u64>, Vec<u64>) {
        let mut lists = vec![0; crate::filter::MAX_LISTS];
        let mut groups = vec![0; crate::filter::MAX_GROUPS];
        for w in self.workers.iter().chain(std::iter::once(&self.slow_path)) {
            for (sum, c) in lists.iter_mut().zip(w.blocked_by_list.iter()) {
                *sum += c.swap(0, Ordering::Relaxed);
            }
            for (sum, c) in groups.iter_mut().zip(w.blocked_by_group.iter()) {
                *sum += c.swap(0, Ordering::Relaxed);
            }
        }
        (lists, groups)
    }

    pub fn totals(&self) -> Totals {
        let mut totals = Totals {
            latency_buckets: vec![0; LATENCY_BUCKETS_US.len() + 1],
            ..Totals::default()
        };
        let read = |c: &AtomicU64| c.load(Ordering::Relaxed);
        for w in self.workers.iter().chain(std::iter::once(&self.slow_path)) {
            totals.udp_queries += read(&w.udp_queries);
            totals.tcp_queries += read(&w.tcp_queries);
            totals.cache_hits += read(&w.cache_hits);
            totals.cache_misses += read(&w.cache_misses);
            totals.stale_answers += read(&w.stale_answers);
            totals.refused += read(&w.refused);
            totals.formerr += read(&w.formerr);
            totals.rate_limited += read(&w.rate_limited);
            totals.dropped += read(&w.dropped);
            totals.truncated += read(&w.truncated);
            totals.servfail += read(&w.servfail);
            totals.nxdomain += read(&w.nxdomain);
            totals.upstream_errors += read(&w.upstream_errors);
            totals.prefetches += read(&w.prefetches);
            totals.udp_segmented += read(&w.udp_segmented);
            totals.blocked += read(&w.blocked);
            for (sum, bucket) in totals.latency_buckets.iter_mut().zip(&w.latency) {
                *sum += read(bucket);
            }
            totals.latency_sum_us += read(&w.latency_sum_us);
        }
        totals
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn totals_add_up_workers_and_slow_path() {
        let stats = Stats::new(2);
        stats.workers[0].count(Outcome::CacheHit);
        stats.workers[1].count(Outcome::CacheHit);
        stats.slow_path.count(Outcome::Resolved);
        stats.workers[1].observe_latency(Duration::from_micros(70), 3);
        stats.slow_path.observe_latency(Duration::from_secs(5), 1);
        let totals = stats.totals();
        assert_eq!(totals.cache_hits, 2);
        assert_eq!(totals.cache_misses, 1);
        assert!((totals.hit_ratio() - 2.0 / 3.0).abs() < 1e-9);
        assert_eq!(totals.latency_buckets[1], 3);
        assert_eq!(totals.latency_buckets[LATENCY_BUCKETS_US.len()], 1);
        assert_eq!(totals.latency_sum_us, 210 + 5_000_000);
    }
}
