//! The Loc-RIB's path attribute sets, each stored once and named by a
//! `u32`.
//!
//! A full table holds a million candidates but only as many distinct
//! attribute sets as there are distinct paths. A candidate that held an
//! `Arc` paid two atomic operations to be stored and dropped, and an
//! atomic read-modify-write waits for every earlier store to drain: at a
//! million prefixes a second that was the largest single cost of loading a
//! table. Here a candidate holds an index and the count of candidates per
//! set is a plain integer. The sets themselves stay in `Arc`s, handed out
//! when a `Route` leaves the Loc-RIB.
//!
//! A set no candidate holds any more is not freed at once: the
//! `BestChange`s that announced its withdrawal still name it. `sweep` frees
//! such sets, and ids are reused only after it.

use std::hash::BuildHasher;
use std::sync::Arc;

use hashbrown::HashTable;

use crate::route::PathAttributes;

type Hasher = foldhash::fast::RandomState;

/// Below this many unheld sets, `sweep` keeps them.
pub(crate) const MIN_SWEEP: usize = 64;

/// An interned attribute set, valid in the store that gave it until that
/// store's next `sweep`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AttrId(u32);

#[derive(Debug, Clone)]
struct Entry {
    attributes: Arc<PathAttributes>,
    hash: u64,
    /// Candidates holding this set.
    held: u32,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct AttrStore {
    /// Indexed by `AttrId`; `None` is a free slot, listed in `free`.
    entries: Vec<Option<Entry>>,
    free: Vec<u32>,
    /// Ids by content, for interning.
    index: HashTable<u32>,
    hasher: Hasher,
    /// The set interned last: a table dump sends the same set in UPDATE
    /// after UPDATE, and comparing with it is cheaper than hashing.
    last: Option<u32>,
    /// Interned sets no candidate holds.
    unheld: usize,
}

impl AttrStore {
    /// The id of the stored set equal to `attributes`, or of `attributes`
    /// stored. A new set is unheld until a candidate takes it.
    pub(crate) fn intern(&mut self, attributes: Arc<PathAttributes>) -> AttrId {
        if let Some(last) = self.last
            && let Some(entry) = &self.entries[last as usize]
            && same(&entry.attributes, &attributes)
        {
            return AttrId(last);
        }
        let hash = self.hasher.hash_one(&*attributes);
        let entries = &self.entries;
        // The full hash first: comparing sets means following their
        // pointers, a cache miss each at a few hundred thousand sets.
        let found = self.index.find(hash, |&i| {
            entries[i as usize]
                .as_ref()
                .is_some_and(|e| e.hash == hash && same(&e.attributes, &attributes))
        });
        let id = match found {
            Some(&id) => id,
            None => self.insert(attributes, hash),
        };
        self.last = Some(id);
        AttrId(id)
    }

    fn insert(&mut self, attributes: Arc<PathAttributes>, hash: u64) -> u32 {
        let entry = Some(Entry {
            attributes,
            hash,
            held: 0,
        });
        let id = match self.free.pop() {
            Some(id) => {
                self.entries[id as usize] = entry;
                id
            }
            None => {
                self.entries.push(entry);
                (self.entries.len() - 1) as u32
            }
        };
        let entries = &self.entries;
        self.index.insert_unique(hash, id, |&i| {
            entries[i as usize].as_ref().map_or(0, |e| e.hash)
        });
        self.unheld += 1;
        id
    }

    /// The set of an id this store gave out (and has not swept since).
    pub(crate) fn get(&self, id: AttrId) -> &Arc<PathAttributes> {
        match &self.entries[id.0 as usize] {
            Some(entry) => &entry.attributes,
            // Unreachable while ids are used as documented; a stale id is
            // a bug in this crate, not bad input.
            None => unreachable!("attribute set {id:?} used after it was swept"),
        }
    }

    /// A candidate took the set.
    pub(crate) fn hold(&mut self, id: AttrId) {
        if let Some(entry) = &mut self.entries[id.0 as usize] {
            if entry.held == 0 {
                self.unheld -= 1;
            }
            entry.held += 1;
        }
    }

    /// A candidate let the set go.
    pub(crate) fn release(&mut self, id: AttrId) {
        if let Some(entry) = &mut self.entries[id.0 as usize]
            && entry.held > 0
        {
            entry.held -= 1;
            if entry.held == 0 {
                self.unheld += 1;
            }
        }
    }

    /// Sets stored, held or not.
    pub(crate) fn len(&self) -> usize {
        self.entries.len() - self.free.len()
    }

    /// Frees the sets no candidate holds once they are at least half of
    /// the store, so that the cost per freed set stays constant. Every
    /// `AttrId` not held by a candidate is invalid afterwards.
    pub(crate) fn sweep(&mut self) {
        if self.unheld < MIN_SWEEP || self.unheld * 2 < self.len() {
            return;
        }
        self.last = None;
        for (id, slot) in self.entries.iter_mut().enumerate() {
            if let Some(entry) = slot
                && entry.held == 0
            {
                let hash = entry.hash;
                if let Ok(found) = self.index.find_entry(hash, |&i| i as usize == id) {
                    found.remove();
                }
                *slot = None;
                self.free.push(id as u32);
            }
        }
        self.unheld = 0;
        // Free slots at the end give their memory back.
        while let Some(None) = self.entries.last() {
            self.entries.pop();
        }
        let len = self.entries.len();
        self.free.retain(|&id| (id as usize) < len);
        if self.entries.capacity() > MIN_SWEEP && len < self.entries.capacity() / 4 {
            self.entries.shrink_to(len * 2);
            self.free.shrink_to_fit();
        }
        if self.index.capacity() > MIN_SWEEP && self.index.len() < self.index.capacity() / 4 {
            let entries = &self.entries;
            self.index.shrink_to(self.index.len() * 2, |&i| {
                entries[i as usize].as_ref().map_or(0, |e| e.hash)
            });
        }
    }
}

fn same(a: &Arc<PathAttributes>, b: &Arc<PathAttributes>) -> bool {
    Arc::ptr_eq(a, b) || a == b
}

#[cfg(test)]
#[path = "attr_store_tests.rs"]
mod tests;
