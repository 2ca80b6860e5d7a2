//! A map from prefixes to values sized for a full table: a million entries
//! in the Adj-RIB-In and again in the Loc-RIB.
//!
//! A `HashMap<IpNet, V>` stores an 18-byte key in every bucket and keeps
//! at most 7/8 of its buckets full, rounded up to a power of two: at a
//! million prefixes it has two million buckets, each key and value padded
//! to 8 bytes. Here entries live densely in a `Vec` (an IPv4 key takes 5
//! bytes) and the hash table holds only a `u32` index into it, so the
//! empty buckets cost 5 bytes each instead of a whole entry. Removal
//! leaves a hole, squeezed out once holes are most of the entries, so
//! iteration order is arbitrary.
//!
//! Capacity is given back when the map falls below a quarter of it (a full
//! withdrawal, a peer going down), not on every removal.

use std::hash::BuildHasher;

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

use crate::prefix_index::Index;

type Hasher = foldhash::fast::RandomState;

/// Below this many entries capacity is never given back: small maps are
/// not worth the reallocations.
const MIN_SHRINK: usize = 1024;

/// Keys warmed at a time: about as many cache misses as a core keeps in
/// flight.
pub(crate) const WARM: usize = 16;

/// The prefix types, hashed by value in one word or two.
trait Key: Copy + Eq {
    fn hash(&self, hasher: &Hasher) -> u64;
    /// Some bits of the key, read to make sure it was loaded.
    fn hash_hint(&self) -> u64;
}

impl Key for Ipv4Net {
    fn hash(&self, hasher: &Hasher) -> u64 {
        hasher.hash_one((u64::from(self.addr().to_bits()) << 8) | u64::from(self.prefix_len()))
    }

    fn hash_hint(&self) -> u64 {
        u64::from(self.addr().to_bits())
    }
}

impl Key for Ipv6Net {
    fn hash(&self, hasher: &Hasher) -> u64 {
        hasher.hash_one((self.addr().to_bits(), self.prefix_len()))
    }

    fn hash_hint(&self) -> u64 {
        self.addr().to_bits() as u64
    }
}

#[derive(Clone)]
struct Dense<K, V> {
    /// `None`: removed, and no longer in `index`.
    entries: Vec<(K, Option<V>)>,
    /// Positions in `entries` of the live ones.
    index: Index,
    /// Removed entries still in `entries`.
    dead: usize,
}

impl<K, V> Default for Dense<K, V> {
    fn default() -> Self {
        Dense {
            entries: Vec::new(),
            index: Index::default(),
            dead: 0,
        }
    }
}

impl<K: Key, V> Dense<K, V> {
    fn len(&self) -> usize {
        self.entries.len() - self.dead
    }

    fn position(&self, hasher: &Hasher, key: &K) -> Option<usize> {
        let entries = &self.entries;
        self.index
            .find(key.hash(hasher), |i| entries[i as usize].0 == *key)
            .map(|i| i as usize)
    }

    /// Brings the index slots of `keys`, and the entries they point at,
    /// into the cache: two rounds of independent loads whose misses
    /// overlap, where the lookups one by one would take them in turn.
    fn warm(&self, hasher: &Hasher, keys: impl Iterator<Item = K>) -> u64 {
        let mut hashes = [0u64; WARM];
        let mut found = [0u32; WARM];
        let mut n = 0;
        for key in keys.take(WARM) {
            hashes[n] = key.hash(hasher);
            n += 1;
        }
        self.index.touch(&hashes[..n], &mut found[..n]);
        let mut sum = 0u64;
        for at in &found[..n] {
            if let Some((key, _)) = self.entries.get(at.wrapping_sub(1) as usize) {
                sum = sum.wrapping_add(key.hash_hint());
            }
        }
        sum
    }

    /// Appends an entry whose key is not in the map.
    fn push(&mut self, hasher: &Hasher, key: K, value: V) {
        if !self.index.has_room() {
            self.reindex(hasher, self.index.len() * 2);
        }
        let at = self.entries.len() as u32;
        self.entries.push((key, Some(value)));
        self.index.insert(key.hash(hasher), at);
    }

    /// Builds the index anew, with room for `capacity`, in entry order,
    /// so that the keys are read sequentially. (The insertions need no
    /// warming: the loop is short, and the processor runs ahead into the
    /// next ones while a slot is fetched.)
    fn reindex(&mut self, hasher: &Hasher, capacity: usize) {
        let mut index = Index::with_capacity(capacity);
        for (at, (key, value)) in self.entries.iter().enumerate() {
            if value.is_some() {
                index.insert(key.hash(hasher), at as u32);
            }
        }
        self.index = index;
    }

    /// Removes an entry by leaving a hole. Moving the last entry into it
    /// instead would mean finding that entry in the index to repoint it, a
    /// cache miss per withdrawn prefix; the holes are squeezed out in one
    /// sequential pass once they are three quarters of `entries` (the
    /// index is rebuilt then, and at a half the rebuilds of a full
    /// withdrawal cost as much as the withdrawal itself).
    fn remove_at(&mut self, hasher: &Hasher, at: usize) -> Option<V> {
        let (key, value) = self.entries.get_mut(at)?;
        let value = value.take()?;
        self.index.remove(key.hash(hasher), at as u32);
        self.dead += 1;
        if self.dead >= MIN_SHRINK && self.dead * 4 >= self.entries.len() * 3 {
            self.compact(hasher);
        }
        Some(value)
    }

    fn retain(&mut self, hasher: &Hasher, mut keep: impl FnMut(K, &mut V) -> bool) {
        let before = self.len();
        for (key, slot) in &mut self.entries {
            if let Some(value) = slot
                && !keep(*key, value)
            {
                *slot = None;
                self.dead += 1;
            }
        }
        if self.len() != before {
            self.compact(hasher);
        }
    }

    /// Drops the holes and rebuilds the index; gives capacity back once
    /// the map is below a quarter of it, keeping room for it to double
    /// again without reallocating.
    fn compact(&mut self, hasher: &Hasher) {
        self.entries.retain(|(_, value)| value.is_some());
        self.dead = 0;
        let len = self.entries.len();
        if self.entries.capacity() > MIN_SHRINK && len < self.entries.capacity() / 4 {
            self.entries.shrink_to((len * 2).max(MIN_SHRINK));
        }
        self.reindex(hasher, len * 2);
    }
}

/// Prefixes of both families to values.
#[derive(Clone)]
pub(crate) struct PrefixMap<V> {
    v4: Dense<Ipv4Net, V>,
    v6: Dense<Ipv6Net, V>,
    hasher: Hasher,
}

impl<V> Default for PrefixMap<V> {
    fn default() -> Self {
        PrefixMap {
            v4: Dense::default(),
            v6: Dense::default(),
            hasher: Hasher::default(),
        }
    }
}

impl<V: std::fmt::Debug> std::fmt::Debug for PrefixMap<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

/// Where a prefix is: its family's table and the entry's position.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Slot {
    V4(usize),
    V6(usize),
}

impl<V> PrefixMap<V> {
    pub(crate) fn len(&self) -> usize {
        self.v4.len() + self.v6.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub(crate) fn find(&self, prefix: &IpNet) -> Option<Slot> {
        match prefix {
            IpNet::V4(net) => self.v4.position(&self.hasher, net).map(Slot::V4),
            IpNet::V6(net) => self.v6.position(&self.hasher, net).map(Slot::V6),
        }
    }

    /// Brings what looking up the first `WARM` of `prefixes` will read
    /// into the cache (see `Dense::warm`), to be called a batch ahead.
    pub(crate) fn warm(&self, prefixes: &[IpNet]) {
        let batch = &prefixes[..prefixes.len().min(WARM)];
        let v4 = batch.iter().filter_map(|p| match p {
            IpNet::V4(net) => Some(*net),
            IpNet::V6(_) => None,
        });
        let v6 = batch.iter().filter_map(|p| match p {
            IpNet::V6(net) => Some(*net),
            IpNet::V4(_) => None,
        });
        let sum = self.v4.warm(&self.hasher, v4) ^ self.v6.warm(&self.hasher, v6);
        std::hint::black_box(sum);
    }

    pub(crate) fn get(&self, prefix: &IpNet) -> Option<&V> {
        self.at(self.find(prefix)?)
    }

    /// The value at a slot `find` returned, while no entry was removed
    /// since (`None` otherwise, or the wrong entry).
    pub(crate) fn at(&self, slot: Slot) -> Option<&V> {
        match slot {
            Slot::V4(i) => self.v4.entries.get(i)?.1.as_ref(),
            Slot::V6(i) => self.v6.entries.get(i)?.1.as_ref(),
        }
    }

    pub(crate) fn at_mut(&mut self, slot: Slot) -> Option<&mut V> {
        match slot {
            Slot::V4(i) => self.v4.entries.get_mut(i)?.1.as_mut(),
            Slot::V6(i) => self.v6.entries.get_mut(i)?.1.as_mut(),
        }
    }

    /// Adds a prefix `find` did not find.
    pub(crate) fn push(&mut self, prefix: IpNet, value: V) {
        match prefix {
            IpNet::V4(net) => self.v4.push(&self.hasher, net, value),
            IpNet::V6(net) => self.v6.push(&self.hasher, net, value),
        }
    }

    pub(crate) fn remove_at(&mut self, slot: Slot) -> Option<V> {
        match slot {
            Slot::V4(i) => self.v4.remove_at(&self.hasher, i),
            Slot::V6(i) => self.v6.remove_at(&self.hasher, i),
        }
    }

    #[cfg(test)]
    pub(crate) fn remove(&mut self, prefix: &IpNet) -> Option<V> {
        let slot = self.find(prefix)?;
        self.remove_at(slot)
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = (IpNet, &V)> + '_ {
        let v4 = (self.v4.entries.iter()).filter_map(|(k, v)| Some((IpNet::V4(*k), v.as_ref()?)));
        let v6 = (self.v6.entries.iter()).filter_map(|(k, v)| Some((IpNet::V6(*k), v.as_ref()?)));
        v4.chain(v6)
    }

    pub(crate) fn retain(&mut self, mut keep: impl FnMut(IpNet, &mut V) -> bool) {
        self.v4.retain(&self.hasher, |k, v| keep(IpNet::V4(k), v));
        self.v6.retain(&self.hasher, |k, v| keep(IpNet::V6(k), v));
    }
}

#[cfg(test)]
impl<V> PrefixMap<V> {
    /// Entries each family's storage has room for.
    pub(crate) fn capacity(&self) -> (usize, usize) {
        (self.v4.entries.capacity(), self.v4.index.capacity())
    }
}
