//! The hash index of a prefix map: positions of entries by the hash of
//! their key, in one flat array with linear probing.
//!
//! A general hash table hides where a key's bucket is. This one shows it,
//! so that a caller about to look up a batch of prefixes can touch their
//! slots first (`warm`): the loads are independent of each other, the
//! processor overlaps their cache misses, and the lookups that follow find
//! the slots cached. At a million prefixes nearly every first touch is a
//! miss, and taking them in parallel rather than one after another is most
//! of what loading or withdrawing a table costs.
//!
//! Each slot is one `u64`: the low 32 bits of the key's hash (its tag,
//! which also gives its home slot) and the entry's position plus one. Zero
//! is an empty slot; a position of `GONE` marks a removed one, skipped by
//! lookups and reused by insertions, and cleared by the next rebuild.

/// A removed slot's position field.
const GONE: u32 = u32::MAX;

#[derive(Debug, Clone, Default)]
pub(crate) struct Index {
    /// A power of two in length, or empty.
    slots: Vec<u64>,
    /// Slots not empty: live and removed.
    used: usize,
    live: usize,
}

/// A slot holding `field` (a position plus one, or `GONE`) under the
/// hash's tag.
fn slot(hash: u64, field: u32) -> u64 {
    (u64::from(tag(hash)) << 32) | u64::from(field)
}

fn position(slot: u64) -> u32 {
    slot as u32
}

fn tag(hash: u64) -> u32 {
    hash as u32
}

impl Index {
    /// An index with room for `capacity` entries before it must grow.
    pub(crate) fn with_capacity(capacity: usize) -> Index {
        // At most half full: a lookup of an absent key (every prefix of a
        // table being loaded) probes until an empty slot, 2.5 slots on
        // average at half load and 8.5 at three quarters.
        let len = (capacity.max(8) * 2).next_power_of_two();
        Index {
            slots: vec![0; len],
            used: 0,
            live: 0,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.live
    }

    /// Entries it can hold before `insert` needs a rebuild.
    pub(crate) fn capacity(&self) -> usize {
        self.slots.len() / 2
    }

    /// Whether one more insertion fits without a rebuild.
    pub(crate) fn has_room(&self) -> bool {
        self.used < self.capacity()
    }

    fn mask(&self) -> usize {
        self.slots.len().wrapping_sub(1)
    }

    /// The slot number holding an entry whose hash is `hash` and for
    /// whose position `eq` holds.
    fn find_slot(&self, hash: u64, mut eq: impl FnMut(u32) -> bool) -> Option<usize> {
        if self.slots.is_empty() {
            return None;
        }
        let mask = self.mask();
        let mut at = tag(hash) as usize & mask;
        loop {
            let s = self.slots[at];
            if s == 0 {
                return None;
            }
            if (s >> 32) as u32 == tag(hash) && position(s) != GONE && eq(position(s) - 1) {
                return Some(at);
            }
            at = (at + 1) & mask;
        }
    }

    /// The position of the entry whose hash is `hash` and for which `eq`
    /// holds.
    pub(crate) fn find(&self, hash: u64, eq: impl FnMut(u32) -> bool) -> Option<u32> {
        let at = self.find_slot(hash, eq)?;
        Some(position(self.slots[at]) - 1)
    }

    /// Adds an entry known not to be present. The caller checked
    /// `has_room`.
    pub(crate) fn insert(&mut self, hash: u64, position_: u32) {
        let mask = self.mask();
        let mut at = tag(hash) as usize & mask;
        loop {
            let s = self.slots[at];
            if s == 0 || position(s) == GONE {
                if s == 0 {
                    self.used += 1;
                }
                self.slots[at] = slot(hash, position_ + 1);
                self.live += 1;
                return;
            }
            at = (at + 1) & mask;
        }
    }

    /// Removes the entry at `position_`, whose hash is `hash`.
    pub(crate) fn remove(&mut self, hash: u64, position_: u32) {
        if let Some(at) = self.find_slot(hash, |p| p == position_) {
            self.slots[at] = slot(hash, GONE);
            self.live -= 1;
        }
    }

    /// Loads the home slot of each hash and returns the position plus one
    /// stored there (0 for none, `GONE` for a removed entry): touching the
    /// slots brings them into the cache, and the loads do not wait for one
    /// another.
    pub(crate) fn touch(&self, hashes: &[u64], found: &mut [u32]) {
        if self.slots.is_empty() {
            return;
        }
        let mask = self.mask();
        for (hash, found) in hashes.iter().zip(found.iter_mut()) {
            *found = position(self.slots[tag(*hash) as usize & mask]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_what_was_inserted_across_collisions_and_removals() {
        let mut index = Index::with_capacity(16);
        // Equal tags collide on one home slot and probe onward.
        let hashes = [7u64, 7 | (1 << 40), 7 | (2 << 40), 8, 23];
        for (at, hash) in hashes.iter().enumerate() {
            assert!(index.has_room());
            index.insert(*hash, at as u32);
        }
        for (at, hash) in hashes.iter().enumerate() {
            assert_eq!(index.find(*hash, |p| p == at as u32), Some(at as u32));
        }
        index.remove(hashes[1], 1);
        assert_eq!(index.find(hashes[1], |p| p == 1), None);
        // Past the removed slot, the probe still reaches the others.
        assert_eq!(index.find(hashes[2], |p| p == 2), Some(2));
        assert_eq!(index.len(), 4);
        // The removed slot is reused.
        let used = index.used;
        index.insert(hashes[1], 9);
        assert_eq!(index.used, used);
        assert_eq!(index.find(hashes[1], |p| p == 9), Some(9));
        assert_eq!(Index::default().find(1, |_| true), None);
    }

    #[test]
    fn fills_to_half() {
        let mut index = Index::with_capacity(100);
        let mut n = 0u32;
        while index.has_room() {
            index.insert(u64::from(n).wrapping_mul(0x9e37_79b9_7f4a_7c15), n);
            n += 1;
        }
        assert!(n as usize >= 100);
        assert_eq!(n as usize, index.slots.len() / 2);
        for p in 0..n {
            let hash = u64::from(p).wrapping_mul(0x9e37_79b9_7f4a_7c15);
            assert_eq!(index.find(hash, |q| q == p), Some(p));
        }
    }
}
