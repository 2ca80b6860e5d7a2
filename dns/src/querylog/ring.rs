//! The in-memory ring: the newest entries with their sequence numbers, for
//! live viewing (`--follow`) without touching the disk.

use std::collections::VecDeque;
use std::sync::Arc;

use super::entry::Entry;
use super::query::LogFilter;

/// A bounded queue of the newest entries, oldest evicted first.
#[derive(Debug)]
pub(crate) struct Ring {
    entries: VecDeque<(u64, Arc<Entry>)>,
    capacity: usize,
    /// The sequence number last handed out (0 before any).
    last_seq: u64,
}

impl Ring {
    /// An empty ring whose numbering continues after `last_seq`.
    pub(crate) fn new(capacity: usize, last_seq: u64) -> Ring {
        Ring {
            // The ring fills up in normal use, so reserve once; but cap the
            // up-front reservation in case of an absurd setting.
            entries: VecDeque::with_capacity(capacity.min(1 << 20)),
            capacity,
            last_seq,
        }
    }

    /// Adds an entry, evicting the oldest if full; returns its sequence
    /// number.
    pub(crate) fn push(&mut self, entry: Arc<Entry>) -> u64 {
        self.last_seq += 1;
        self.insert(self.last_seq, entry);
        self.last_seq
    }

    /// Puts back an entry read from the database with its stored number.
    /// Numbers must come in increasing order.
    pub(crate) fn restore(&mut self, seq: u64, entry: Entry) {
        self.last_seq = self.last_seq.max(seq);
        self.insert(seq, Arc::new(entry));
    }

    fn insert(&mut self, seq: u64, entry: Arc<Entry>) {
        if self.capacity == 0 {
            return;
        }
        if self.entries.len() >= self.capacity {
            self.entries.pop_front();
        }
        self.entries.push_back((seq, entry));
    }

    pub(crate) fn last_seq(&self) -> u64 {
        self.last_seq
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// All entries, oldest first.
    pub(crate) fn iter(&self) -> impl DoubleEndedIterator<Item = &(u64, Arc<Entry>)> {
        self.entries.iter()
    }

    /// Up to `limit` of the newest entries matching `filter` with a sequence
    /// number above `after_seq`, oldest first. Cloning the `Arc`s only keeps
    /// the caller's lock short.
    pub(crate) fn recent(
        &self,
        filter: &LogFilter,
        after_seq: Option<u64>,
        limit: usize,
    ) -> Vec<(u64, Arc<Entry>)> {
        let needle = filter.name_needle();
        let mut out: Vec<(u64, Arc<Entry>)> = self
            .entries
            .iter()
            .rev()
            .take_while(|(seq, _)| after_seq.is_none_or(|after| *seq > after))
            .filter(|(_, e)| filter.matches_with(e, needle.as_deref()))
            .take(limit)
            .cloned()
            .collect();
        out.reverse();
        out
    }
}
