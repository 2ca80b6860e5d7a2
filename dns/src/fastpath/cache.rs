//! The per-worker answer cache.
//!
//! Each UDP worker owns one `WorkerCache` (no locks): the resolver sends
//! finished answers to the workers as `Arc<CachedAnswer>`, so replicas share
//! the wire bytes and a hit costs a hash, a table probe and a key compare.
//!
//! Layout: entries live in a dense `Vec` (key, answer, counters); a
//! `HashMap<u64, u32>` maps the randomly seeded foldhash of the key to the
//! entry's index. Lookups by `&[u8]` therefore never allocate, and the dense
//! vector makes random sampling for eviction O(1). Two keys with the same
//! 64-bit hash simply displace each other (the full key is compared on
//! lookup, so this can only cost a miss, never a wrong answer); with a
//! random seed this is not attacker-controllable.
//!
//! Eviction, when full: sample [`EVICTION_SAMPLES`] random entries; evict
//! the first that is expired beyond the serve-stale window, else the
//! least-recently-used of the sample (Redis-style approximate LRU). Exact
//! LRU would need a linked list touched on every hit, i.e. writes to two
//! more cache lines per packet; sampling costs nothing on the hit path
//! beyond storing a counter and is close to LRU in practice. Dead entries
//! can also be reclaimed incrementally with [`WorkerCache::sweep`].

use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault, Hasher};
use std::sync::Arc;
use std::time::Instant;

use foldhash::fast::RandomState;

use super::answer::CachedAnswer;

/// Entries sampled per eviction.
pub const EVICTION_SAMPLES: usize = 8;
/// Hits an entry needs before it is worth prefetching.
pub const PREFETCH_MIN_HITS: u32 = 3;

/// A cache entry's answer and counters.
#[derive(Debug, Clone)]
pub struct Slot {
    /// The cached answer (shared with other workers' replicas).
    pub answer: Arc<CachedAnswer>,
    /// Fresh hits since insertion (saturating).
    pub hits: u32,
    /// A prefetch was already signalled for this answer.
    pub prefetch_requested: bool,
}

#[derive(Debug)]
struct Entry {
    key: Box<[u8]>,
    hash: u64,
    slot: Slot,
    /// Value of `WorkerCache::clock` at the last hit or insertion.
    last_used: u64,
}

/// Result of [`WorkerCache::get`].
#[derive(Debug)]
pub enum Lookup<'a> {
    /// A live answer; the flag is true (once per entry) when the caller
    /// should ask the resolver to refresh it in the background.
    Fresh(&'a Arc<CachedAnswer>, bool),
    /// Expired, but within `max_stale` seconds of expiry: serve it (with
    /// [`CachedAnswer::write_stale_response`]) only if resolution fails
    /// (RFC 8767). The `Arc` can be cloned to keep it across the attempt.
    Stale(&'a Arc<CachedAnswer>),
    /// Not cached, or dead.
    Miss,
}

/// Counters for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Entries evicted for space while still usable (fresh or stale).
    pub evicted_live: u64,
    /// Dead entries (expired beyond the stale window) removed.
    pub evicted_dead: u64,
}

/// Identity hasher for keys that already are random 64-bit hashes.
#[derive(Default)]
struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        // Only u64 keys are hashed; fold anything else defensively.
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// One worker's answer cache.
#[derive(Debug)]
pub struct WorkerCache {
    index: HashMap<u64, u32, BuildHasherDefault<IdHasher>>,
    entries: Vec<Entry>,
    hasher: RandomState,
    max_entries: usize,
    max_stale: u32,
    clock: u64,
    rng: u64,
    sweep_cursor: usize,
    stats: CacheStats,
}

impl std::fmt::Debug for IdHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("IdHasher")
    }
}

impl WorkerCache {
    /// A cache of at most `max_entries` answers (at least 1), serving stale
    /// answers up to `max_stale` seconds past expiry (0 disables).
    pub fn new(max_entries: usize, max_stale: u32) -> Self {
        let max_entries = max_entries.clamp(1, u32::MAX as usize);
        let hasher = RandomState::default();
        let rng = hasher.hash_one(0x9e37_79b9_7f4a_7c15_u64) | 1;
        WorkerCache {
            index: HashMap::with_capacity_and_hasher(
                max_entries.min(1 << 20),
                BuildHasherDefault::default(),
            ),
            entries: Vec::with_capacity(max_entries.min(1 << 20)),
            hasher,
            max_entries,
            max_stale,
            clock: 0,
            rng,
            sweep_cursor: 0,
            stats: CacheStats::default(),
        }
    }

    #[inline]
    fn hash(&self, key: &[u8]) -> u64 {
        self.hasher.hash_one(key)
    }

    /// xorshift64: the eviction sampler needs speed, not quality.
    fn next_random(&mut self) -> u64 {
        let mut x = self.rng;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng = x;
        x
    }

    /// Looks `key` up. Counts a hit and may flag a prefetch on fresh
    /// entries; removes entries that are past the stale window.
    pub fn get(&mut self, key: &[u8], now: Instant) -> Lookup<'_> {
        let hash = self.hash(key);
        let Some(&idx) = self.index.get(&hash) else {
            return Lookup::Miss;
        };
        let idx = idx as usize;
        // Decide first with a shared borrow, then act: returning a borrow
        // from one branch and mutating `self` in another is not expressible
        // with a single mutable borrow.
        let remaining = match self.entries.get(idx) {
            Some(e) if *e.key == *key => e.slot.answer.remaining_ttl(now),
            _ => return Lookup::Miss,
        };
        if remaining.is_none() && self.entries.get(idx).is_some_and(|e| self.is_dead(e, now)) {
            self.remove_at(idx);
            self.stats.evicted_dead += 1;
            return Lookup::Miss;
        }
        self.clock += 1;
        let clock = self.clock;
        let Some(e) = self.entries.get_mut(idx) else {
            return Lookup::Miss;
        };
        e.last_used = clock;
        let Some(remaining) = remaining else {
            return Lookup::Stale(&e.slot.answer);
        };
        let s = &mut e.slot;
        s.hits = s.hits.saturating_add(1);
        // Due when < 10% of the TTL remains, once per entry.
        let due = !s.prefetch_requested
            && s.hits >= PREFETCH_MIN_HITS
            && u64::from(remaining) * 10 < u64::from(s.answer.ttl());
        if due {
            s.prefetch_requested = true;
        }
        Lookup::Fresh(&e.slot.answer, due)
    }

    /// Inserts or replaces the answer for `key`, resetting its counters.
    /// May evict one entry (see the module docs); the answer's insertion
    /// time serves as "now" for judging which entries are dead.
    pub fn insert(&mut self, key: Box<[u8]>, answer: Arc<CachedAnswer>) {
        let now = answer.inserted();
        let hash = self.hash(&key);
        self.clock += 1;
        let slot = Slot {
            answer,
            hits: 0,
            prefetch_requested: false,
        };
        if let Some(&idx) = self.index.get(&hash)
            && let Some(e) = self.entries.get_mut(idx as usize)
        {
            // Same key, or a 64-bit hash collision: replace either way.
            e.key = key;
            e.slot = slot;
            e.last_used = self.clock;
            return;
        }
        if self.entries.len() >= self.max_entries {
            self.evict_one(now);
        }
        let idx = self.entries.len() as u32;
        self.entries.push(Entry {
            key,
            hash,
            slot,
            last_used: self.clock,
        });
        self.index.insert(hash, idx);
    }

    /// Every entry, expired ones included (a reload hands them to the next
    /// service so the house does not start from a cold cache).
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &Arc<CachedAnswer>)> {
        self.entries.iter().map(|e| (&*e.key, &e.slot.answer))
    }

    /// Removes `key`; returns whether it was present.
    pub fn remove(&mut self, key: &[u8]) -> bool {
        let hash = self.hash(key);
        match self.index.get(&hash) {
            Some(&idx)
                if self
                    .entries
                    .get(idx as usize)
                    .is_some_and(|e| *e.key == *key) =>
            {
                self.remove_at(idx as usize);
                true
            }
            _ => false,
        }
    }

    fn remove_at(&mut self, idx: usize) {
        if idx >= self.entries.len() {
            return;
        }
        let removed = self.entries.swap_remove(idx);
        self.index.remove(&removed.hash);
        if let Some(moved) = self.entries.get(idx) {
            self.index.insert(moved.hash, idx as u32);
        }
    }

    fn is_dead(&self, e: &Entry, now: Instant) -> bool {
        e.slot.answer.is_expired(now)
            && (self.max_stale == 0 || e.slot.answer.expired_for(now) > self.max_stale)
    }

    fn evict_one(&mut self, now: Instant) {
        let n = self.entries.len();
        if n == 0 {
            return;
        }
        let mut best = usize::MAX;
        let mut best_used = u64::MAX;
        for _ in 0..EVICTION_SAMPLES.min(n) {
            let i = (self.next_random() % n as u64) as usize;
            let Some(e) = self.entries.get(i) else {
                continue;
            };
            if self.is_dead(e, now) {
                self.remove_at(i);
                self.stats.evicted_dead += 1;
                return;
            }
            if e.last_used < best_used {
                best_used = e.last_used;
                best = i;
            }
        }
        if best != usize::MAX {
            self.remove_at(best);
            self.stats.evicted_live += 1;
        }
    }

    /// Removes dead entries among the next `budget` entries (round robin),
    /// returning how many were removed. Call it from the worker's idle path
    /// (e.g. every few hundred milliseconds with a budget of a few thousand)
    /// to reclaim space without a stop-the-world scan.
    pub fn sweep(&mut self, now: Instant, budget: usize) -> usize {
        let mut removed = 0;
        for _ in 0..budget {
            if self.entries.is_empty() {
                break;
            }
            if self.sweep_cursor >= self.entries.len() {
                self.sweep_cursor = 0;
            }
            let i = self.sweep_cursor;
            if self.entries.get(i).is_some_and(|e| self.is_dead(e, now)) {
                // swap_remove moved another entry into i: examine it next.
                self.remove_at(i);
                removed += 1;
            } else {
                self.sweep_cursor += 1;
            }
        }
        self.stats.evicted_dead += removed as u64;
        removed
    }

    /// Current slot of `key`, without counting a hit.
    pub fn peek(&self, key: &[u8]) -> Option<&Slot> {
        let idx = *self.index.get(&self.hash(key))?;
        self.entries
            .get(idx as usize)
            .filter(|e| *e.key == *key)
            .map(|e| &e.slot)
    }

    /// Number of entries (fresh, stale or not yet reclaimed).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Maximum number of entries.
    pub fn capacity(&self) -> usize {
        self.max_entries
    }

    /// Eviction counters.
    pub fn stats(&self) -> CacheStats {
        self.stats
    }

    /// Drops every entry (e.g. on a configuration reload).
    pub fn clear(&mut self) {
        self.entries.clear();
        self.index.clear();
        self.sweep_cursor = 0;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)] // tests
mod tests {
    use super::*;
    use crate::fastpath::answer::tests::a_response;
    use std::time::Duration;

    fn answer(ttl: u32, t: Instant) -> Arc<CachedAnswer> {
        Arc::new(
            CachedAnswer::from_response(&a_response("c.example.", 1, ttl), t, (0, 86400)).unwrap(),
        )
    }

    fn key(i: u32) -> Box<[u8]> {
        format!("key-{i}").into_bytes().into_boxed_slice()
    }

    #[test]
    fn fresh_stale_miss() {
        let t0 = Instant::now();
        let mut c = WorkerCache::new(10, 60);
        c.insert(key(1), answer(100, t0));
        assert!(matches!(c.get(&key(1), t0), Lookup::Fresh(_, false)));
        assert!(matches!(c.get(&key(2), t0), Lookup::Miss));
        let t1 = t0 + Duration::from_secs(130);
        assert!(matches!(c.get(&key(1), t1), Lookup::Stale(_)));
        let t2 = t0 + Duration::from_secs(161);
        assert!(matches!(c.get(&key(1), t2), Lookup::Miss));
        assert_eq!(c.len(), 0);
        assert_eq!(c.stats().evicted_dead, 1);

        let mut c = WorkerCache::new(10, 0);
        c.insert(key(1), answer(100, t0));
        assert!(matches!(c.get(&key(1), t1), Lookup::Miss));
        assert!(c.is_empty());
    }

    #[test]
    fn prefetch_once() {
        let t0 = Instant::now();
        let mut c = WorkerCache::new(10, 0);
        c.insert(key(1), answer(100, t0));
        for _ in 0..5 {
            assert!(matches!(c.get(&key(1), t0), Lookup::Fresh(_, false)));
        }
        let late = t0 + Duration::from_secs(95);
        assert!(matches!(c.get(&key(1), late), Lookup::Fresh(_, true)));
        assert!(matches!(c.get(&key(1), late), Lookup::Fresh(_, false)));
        assert!(c.peek(&key(1)).unwrap().prefetch_requested);
        // A refreshed answer resets the flag.
        c.insert(key(1), answer(100, late));
        assert!(!c.peek(&key(1)).unwrap().prefetch_requested);
        // Too few hits: no prefetch.
        c.insert(key(2), answer(100, t0));
        assert!(matches!(c.get(&key(2), late), Lookup::Fresh(_, false)));
    }

    #[test]
    fn bounded_and_lru_ish() {
        let t0 = Instant::now();
        let mut c = WorkerCache::new(100, 0);
        let a = answer(300, t0);
        c.insert(key(0), a.clone());
        for i in 1..10_000 {
            // Keep key 0 hot.
            assert!(matches!(c.get(&key(0), t0), Lookup::Fresh(..)));
            c.insert(key(i), a.clone());
            assert!(c.len() <= 100);
        }
        assert!(c.peek(&key(0)).is_some());
        assert!(c.stats().evicted_live >= 9_900);
        // Index and entries agree.
        for e in &c.entries {
            assert!(c.peek(&e.key).is_some());
        }
        assert!(c.remove(&key(0)));
        assert!(!c.remove(&key(0)));
        c.clear();
        assert!(c.is_empty());
    }

    #[test]
    fn dead_first_and_sweep() {
        let t0 = Instant::now();
        let mut c = WorkerCache::new(50, 10);
        for i in 0..50 {
            c.insert(key(i), answer(if i % 2 == 0 { 5 } else { 300 }, t0));
        }
        let t1 = t0 + Duration::from_secs(100);
        assert_eq!(c.sweep(t1, 1000), 25);
        assert_eq!(c.len(), 25);
        for e in &c.entries {
            assert!(!e.slot.answer.is_expired(t1));
            assert!(c.peek(&e.key).is_some());
        }
    }
}
